"""SharedFoldersService: the "VBoxSharedFolders" HGCM host service.

Dispatch is the generic one of ``hgcmlab.services.framework.TableService`` over the function
table ``functions.FUNCTIONS``: validate the parameters against the function's signature,
run its handler on the service's ``ShflState`` (state.py).  ``RtError`` is caught at that
boundary and only there: a guest mistake or host failure becomes the call's status (and an
``hgcm_service_error`` trace event with its reason), anything else is a bug of ours and
propagates.

Policy beyond VirtualBox 7.0.14 (docs/deviations.md): a client may use only root ids it
mapped itself (others answer VERR_INVALID_PARAMETER like an unknown root); handles carry a
generation (handles.py); host symlinks are followed only beneath the share root; a client
holds at most ``MAX_HANDLES_PER_CLIENT`` handles; an empty share root is never removed
(SF19); under SymlinkPolicy.SUBTREE a RENAME never moves a link to where it would point
outside (SF20).

Thread safety: every entry point (guest and host API) runs under one re-entrant lock, so
calls from several vCPU threads are serialised at the dispatcher; handle lookup, use and
close can never interleave (docs/security.md, R05).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Mapping as AbcMapping

from hgcmlab.runtime.fs import HostFile, HostRoot
from hgcmlab.runtime.status import Status
from hgcmlab.services.framework import TableService
from hgcmlab.services.hgcm import HgcmCall, _AsyncMarker
from hgcmlab.services.sharedfolders import saved_state
from hgcmlab.services.sharedfolders.abi import SERVICE_NAME, SHFL_MAX_MAPPINGS, ShflFn
from hgcmlab.services.sharedfolders.context import ClientState
from hgcmlab.services.sharedfolders.functions import FUNCTIONS
from hgcmlab.services.sharedfolders.handles import HandleKind, HandleTable
from hgcmlab.services.sharedfolders.mappings import Mapping, MappingTable, SymlinkPolicy
from hgcmlab.services.sharedfolders.reproducible import Reproducible
from hgcmlab.services.sharedfolders.state import MAX_HANDLES_PER_CLIENT, ShflState

__all__ = ["MAX_HANDLES_PER_CLIENT", "SharedFoldersService"]

#: Functions that never open, close or re-point a handle, a mapping or a client (the rest
#: bump ``native_generation``).
_NO_HANDLE_CHANGE = frozenset(int(fn) for fn in (ShflFn.READ, ShflFn.WRITE, ShflFn.INFORMATION, ShflFn.FLUSH,
                                                 ShflFn.LOCK))


class SharedFoldersService(TableService):
    """The Shared Folders host service.

    ``use_openat2`` None lets hgcmlab.runtime.fs pick openat2 when the kernel has it; tests force
    the manual-walk fallback with False.  With ``reproducible`` every share shows the guest
    reproducible object and volume information instead of the host's (reproducible.py).  Host API: ``add_mapping``, ``remove_mapping``,
    ``mappings``.  Guest calls arrive through ``connect`` / ``call`` / ``disconnect``.
    """

    name = SERVICE_NAME
    functions = FUNCTIONS
    #: VBoxSharedFoldersSvc.cpp:VBoxHGCMSvcLoad sets its own limits in place of HGCM's:
    #: acMaxCallsPerClient 64K kernel, 16K root, 1K user (categories 0, 1, 2), and
    #: acMaxClients SHFL_MAX_MAPPINGS + 2 in every category.
    call_limits = {0: 64 * 1024, 1: 16 * 1024, 2: 1024}
    client_limits = dict.fromkeys(range(3), SHFL_MAX_MAPPINGS + 2)

    def __init__(self, *, use_openat2: bool | None = None,
                 reproducible: Reproducible | None = None) -> None:
        self.reproducible = reproducible
        factory = reproducible.root_factory() if reproducible is not None else HostRoot
        self.state = ShflState(use_openat2=use_openat2, root_factory=factory)
        self.table.on_change.append(self._mappings_changed)
        self.lock = threading.RLock()
        #: Bumped whenever a handle, mapping or client may have changed: the native
        #: accelerator (devices/vmmdev/accel.py) uses a handle it was given
        #: (``native_handle``) only while this has the value it had then.
        self.native_generation = ctypes.c_uint64(1)

    def _changed(self) -> None:
        self.native_generation.value += 1

    def native_handle(self, client_id: int, root: int, value: int) -> tuple[int, bool] | None:
        """(host fd, writable share) of file handle ``value`` that client ``client_id``
        opened under ``root``, when READ and WRITE on it need nothing but a positional
        system call on that fd; else None.  Valid until ``native_generation`` changes."""
        with self.lock:
            client = self.clients.get(client_id)
            handle = self.handles.lookup(value, client_id)
            if client is None or handle is None or handle.kind is not HandleKind.FILE or handle.root != root:
                return None
            mapping = self.table.get(root)
            host = handle.obj
            if mapping is not handle.mapping or mapping.placeholder or not isinstance(host, HostFile) or host.append:
                return None
            return host.fd, bool(mapping.writable)

    @property
    def table(self) -> MappingTable:
        """The mapping table (``state.table``)."""
        return self.state.table

    @property
    def handles(self) -> HandleTable:
        """The handle table (``state.handles``)."""
        return self.state.handles

    @property
    def clients(self) -> dict[int, ClientState]:
        """Connected clients by id (``state.clients``)."""
        return self.state.clients

    def client_of(self, client_id: int) -> ClientState | None:
        """The connected client ``client_id`` (None when unknown)."""
        return self.state.clients.get(client_id)

    # --- host API ---------------------------------------------------------------------

    def add_mapping(self, name: str, host_path: str, *, writable: bool = True,
                    auto_mount: bool = False, create_symlinks: bool = False,
                    auto_mount_point: str = "",
                    symlink_policy: SymlinkPolicy = SymlinkPolicy.SUBTREE) -> int:
        """Share ``host_path`` as ``name`` (SHFL_FN_ADD_MAPPING); returns a status.

        Guests may create symlinks only when ``create_symlinks`` is set (off by default) and
        ``symlink_policy`` allows the target (see ``SymlinkPolicy``).

        VERR_ALREADY_EXISTS (name taken, any case), VERR_TOO_MUCH_DATA (64 mappings), or the
        host error when the folder cannot be opened; VINF_SUCCESS otherwise.
        """
        if not name or "\0" in name:
            return Status.VERR_INVALID_PARAMETER
        with self.lock:
            self._changed()
            return self.table.add(name, host_path, writable=writable, auto_mount=auto_mount,
                                  create_symlinks=create_symlinks, auto_mount_point=auto_mount_point,
                                  symlink_policy=symlink_policy)

    def remove_mapping(self, name: str) -> int:
        """Unshare ``name`` (SHFL_FN_REMOVE_MAPPING); VINF_PERMISSION_DENIED when still
        mapped by a guest (it stays as a placeholder), VERR_FILE_NOT_FOUND when unknown."""
        with self.lock:
            self._changed()
            return self.table.remove(name)

    @property
    def mappings(self) -> dict[int, Mapping]:
        """Root id -> mapping (placeholders included), for introspection."""
        return dict(self.table.items())

    def close(self) -> None:
        """Unload: disconnect every client and release every host fd."""
        with self.lock:
            self._changed()
            for client_id in list(self.clients):
                self.disconnect(client_id)
            self.table.close()

    def save_state(self) -> dict:
        """Everything a later call can observe, as plain data (saved_state.py)."""
        with self.lock:
            return saved_state.save(self)

    def load_state(self, state: dict, pending: AbcMapping[int, HgcmCall]) -> list[str]:
        """Replace this service's state with a saved one, re-opening every handle beneath
        its share; one line per problem (saved_state.py).  ValueError for malformed state."""
        with self.lock:
            self._changed()
            return saved_state.load(self, state, pending)

    # --- HGCM entry points ------------------------------------------------------------

    def connect(self, client_id: int, requestor: int) -> int:
        """A guest client connects: fresh client data (UTF-16, no delimiter, Linux style)."""
        with self.lock:
            self.clients[client_id] = ClientState(client_id, requestor)
        return Status.VINF_SUCCESS

    def disconnect(self, client_id: int) -> None:
        """Cancel the client's waits, close its handles and unmap its roots."""
        with self.lock:
            self._changed()
            self._disconnect(client_id)

    def _disconnect(self, client_id: int) -> None:
        client = self.clients.pop(client_id, None)
        if client is None:
            return
        for waiting in client.waits:
            waiting.params[0].value = self.table.version
            waiting.complete(Status.VERR_CANCELLED)
        client.waits.clear()
        for handle in self.handles.owned_by(client_id):
            self.state.close_handle(handle)
        for root, count in client.map_counts.items():
            for _ in range(count):
                self.table.release(root)
        client.map_counts.clear()

    def call(self, call: HgcmCall) -> int | _AsyncMarker:
        """Validate and run one guest call (under the lock); its status or ASYNC."""
        with self.lock:
            if call.function not in _NO_HANDLE_CHANGE:
                self._changed()
            return super().call(call)

    def cancel(self, call: HgcmCall) -> None:
        """The guest cancelled a pending wait: forget it and, unless already done, complete
        it with VERR_CANCELLED (so ``call.completed`` is True afterwards)."""
        with self.lock:
            client = self.clients.get(call.client_id)
            if client is not None and call in client.waits:
                client.waits.remove(call)
            if not call.completed:
                call.complete(Status.VERR_CANCELLED)

    def _mappings_changed(self, version: int) -> None:
        for client in self.clients.values():
            waits, client.waits = client.waits, []
            for waiting in waits:
                waiting.params[0].value = version
                waiting.complete(Status.VERR_CANCELLED)

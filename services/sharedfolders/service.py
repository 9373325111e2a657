"""SharedFoldersService: the "VBoxSharedFolders" HGCM host service.

Dispatch is generic: look the function up in ``functions.FUNCTIONS``, validate the
parameters against its signature, run its handler.  ``RtError`` is caught here and only
here: a guest mistake or host failure becomes the call's status, anything else is a bug of
ours and propagates.

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

import threading
from collections.abc import Iterable

from hgcmlab.runtime.fs import HostFile, HostRoot
from hgcmlab.runtime.paths import GuestPath, convert_guest_path, has_wildcard
from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.hgcm import DirectBuffer, HgcmCall, HgcmService, _AsyncMarker
from hgcmlab.services.sharedfolders.abi import SERVICE_NAME, SHFL_HANDLE_NIL, SHFL_HANDLE_ROOT, ShflFn
from hgcmlab.services.sharedfolders.casefix import correct_case
from hgcmlab.services.sharedfolders.context import CallContext, ClientState
from hgcmlab.services.sharedfolders.functions import FUNCTIONS
from hgcmlab.services.sharedfolders.handles import Handle, HandleKind, HandleTable
from hgcmlab.services.sharedfolders.mappings import Mapping, MappingTable, SymlinkPolicy
from hgcmlab.services.sharedfolders.reproducible import Reproducible

#: Handles one client may hold open at once (a further open: VERR_TOO_MANY_OPEN_FILES).
#: VirtualBox only has the global table of 4095; this keeps one client from starving others.
MAX_HANDLES_PER_CLIENT = 1024


class SharedFoldersService(HgcmService):
    """The Shared Folders host service.

    ``use_openat2`` None lets hgcmlab.runtime.fs pick openat2 when the kernel has it; tests force
    the manual-walk fallback with False.  With ``reproducible`` every share shows the guest
    reproducible object and volume information instead of the host's (reproducible.py).  Host API: ``add_mapping``, ``remove_mapping``,
    ``mappings``.  Guest calls arrive through ``connect`` / ``call`` / ``disconnect``.
    """

    name = SERVICE_NAME
    function_names = {fn.value: fn.name for fn in ShflFn}
    #: READ and WRITE may move their payload straight between the host file and guest
    #: memory (h_file.read / h_file.write keep the DirectBuffer promises: READ stores the
    #: cb bytes it read at the start of the buffer and nothing on failure; WRITE only
    #: reads the buffer).
    direct_buffers = {
        ShflFn.READ: DirectBuffer(buffer=4, stored=3),
        ShflFn.WRITE: DirectBuffer(buffer=4, reads=True),
    }

    def __init__(self, *, use_openat2: bool | None = None,
                 reproducible: Reproducible | None = None) -> None:
        factory = reproducible.root_factory() if reproducible is not None else HostRoot
        self.table = MappingTable(use_openat2=use_openat2, root_factory=factory)
        self.handles = HandleTable()
        self.clients: dict[int, ClientState] = {}
        self.table.on_change.append(self._mappings_changed)
        self.lock = threading.RLock()

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
            return self.table.add(name, host_path, writable=writable, auto_mount=auto_mount,
                                  create_symlinks=create_symlinks, auto_mount_point=auto_mount_point,
                                  symlink_policy=symlink_policy)

    def remove_mapping(self, name: str) -> int:
        """Unshare ``name`` (SHFL_FN_REMOVE_MAPPING); VINF_PERMISSION_DENIED when still
        mapped by a guest (it stays as a placeholder), VERR_FILE_NOT_FOUND when unknown."""
        with self.lock:
            return self.table.remove(name)

    @property
    def mappings(self) -> dict[int, Mapping]:
        """Root id -> mapping (placeholders included), for introspection."""
        return dict(self.table.items())

    def close(self) -> None:
        """Unload: disconnect every client and release every host fd."""
        with self.lock:
            for client_id in list(self.clients):
                self.disconnect(client_id)
            self.table.close()

    # --- HGCM entry points ------------------------------------------------------------

    def function_cycles(self, function: int) -> int | None:
        """The cost declared next to the function in ``functions.FUNCTIONS`` (None for a
        function the service does not implement: the device's default applies)."""
        spec = FUNCTIONS.get(function)
        return spec.cycles if spec is not None else None

    def connect(self, client_id: int, requestor: int) -> int:
        """A guest client connects: fresh client data (UTF-16, no delimiter, Linux style)."""
        with self.lock:
            self.clients[client_id] = ClientState(client_id, requestor)
        return Status.VINF_SUCCESS

    def disconnect(self, client_id: int) -> None:
        """Cancel the client's waits, close its handles and unmap its roots."""
        with self.lock:
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
            self.close_handle(handle)
        for root, count in client.map_counts.items():
            for _ in range(count):
                self.table.release(root)
        client.map_counts.clear()

    def call(self, call: HgcmCall) -> int | _AsyncMarker:
        """Validate and run one guest call; return its status or ASYNC."""
        with self.lock:
            return self._call(call)

    def _call(self, call: HgcmCall) -> int | _AsyncMarker:
        client = self.clients.get(call.client_id)
        if client is None:
            return Status.VERR_INVALID_CLIENT_ID
        spec = FUNCTIONS.get(call.function)
        if spec is None:
            return Status.VERR_NOT_IMPLEMENTED
        try:
            strings = spec.validate(call.params, client.utf8)
            return spec.handler(CallContext(self, client, call, strings))
        except RtError as err:
            return err.status

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

    # --- helpers for handlers ---------------------------------------------------------

    def path_mapping(self, client: ClientState, root: int) -> Mapping:
        """The mapping behind ``root`` for a path operation of ``client``.

        VERR_INVALID_PARAMETER unless the client has ``root`` mapped (policy); VERR_NOT_FOUND
        for a placeholder.
        """
        mapping = self.table.get(root)
        if mapping is None or client.map_counts.get(root, 0) == 0:
            raise RtError(Status.VERR_INVALID_PARAMETER, f"root {root} not mapped by client")
        if mapping.placeholder or mapping.root is None:
            raise RtError(Status.VERR_NOT_FOUND, "mapping is gone")
        return mapping

    @staticmethod
    def host_path(client: ClientState, mapping: Mapping, text: str, *, wildcard: bool = False,
                  preserve_last: bool = False) -> GuestPath:
        """Convert guest path text for a path operation on ``mapping`` (reference §4.3).

        Lexical conversion with the client's delimiter, then case correction when the host
        is case-sensitive and the guest mapped case-insensitively.  The final component is
        never corrected for a rename destination (``preserve_last``) nor, for a LIST filter
        (``wildcard``), when it holds wildcards.
        """
        path = convert_guest_path(text, client.delimiter)
        if mapping.guest_case_sensitive or not mapping.host_case_sensitive or mapping.root is None:
            return path
        keep_last = preserve_last or (wildcard and has_wildcard(path.name))
        return correct_case(mapping.root, path, follow=not client.symlinks, keep_last=keep_last)

    @staticmethod
    def check_reserved(value: int) -> None:
        """svcCall's pre-check: ROOT -> VERR_INVALID_PARAMETER, NIL -> VERR_INVALID_HANDLE."""
        if value == SHFL_HANDLE_ROOT:
            raise RtError(Status.VERR_INVALID_PARAMETER, "SHFL_HANDLE_ROOT")
        if value == SHFL_HANDLE_NIL:
            raise RtError(Status.VERR_INVALID_HANDLE, "SHFL_HANDLE_NIL")

    def lookup_handle(self, client: ClientState, root: int, value: int,
                      kinds: Iterable[HandleKind],
                      missing: Status = Status.VERR_INVALID_HANDLE) -> Handle:
        """This client's handle ``value`` of one of ``kinds`` opened under ``root``."""
        handle = self.handles.lookup(value, client.client_id)
        if handle is None or handle.kind not in tuple(kinds) or handle.root != root:
            raise RtError(missing, f"handle {value:#x}")
        return handle

    def access_handle(self, client: ClientState, root: int, value: int,
                      kinds: Iterable[HandleKind], write: bool,
                      missing: Status = Status.VERR_INVALID_HANDLE) -> Handle:
        """Handle access check (reference §5.1): lookup, mapping still the one the handle
        was opened under and present (else VERR_ACCESS_DENIED), writable for write-class
        operations (else VERR_WRITE_PROTECT)."""
        handle = self.lookup_handle(client, root, value, kinds, missing)
        mapping = self.table.get(root)
        if mapping is not handle.mapping or mapping.placeholder:
            raise RtError(Status.VERR_ACCESS_DENIED, "mapping removed")
        if write and not mapping.writable:
            raise RtError(Status.VERR_WRITE_PROTECT, "read-only mapping")
        return handle

    def reserve_handle(self, client: ClientState) -> None:
        """Check, before a CREATE touches the host, that a handle can be allocated for
        ``client``: VERR_TOO_MANY_OPEN_FILES past ``MAX_HANDLES_PER_CLIENT``,
        VERR_NO_MEMORY when the global table is full (VirtualBox allocates the handle
        before the host open, vbsf.cpp:vbsfOpenFile).  Nothing changes; the caller then
        either registers the opened object with ``new_handle`` (which takes the slot this
        check saw, the service lock being held throughout) or, when the open fails, calls
        ``handles.pass_over()``."""
        if self.handles.count_owned(client.client_id) >= MAX_HANDLES_PER_CLIENT:
            raise RtError(Status.VERR_TOO_MANY_OPEN_FILES, "per-client handle limit")
        if self.handles.full():
            raise RtError(Status.VERR_NO_MEMORY, "handle table full")

    def new_handle(self, client: ClientState, root: int, mapping: Mapping, kind: HandleKind,
                   obj: HostFile, path: GuestPath) -> Handle:
        """Register an open object for ``client``; on failure the object is closed and
        RtError raised: VERR_TOO_MANY_OPEN_FILES past ``MAX_HANDLES_PER_CLIENT``,
        VERR_NO_MEMORY when the global table is full."""
        if self.handles.count_owned(client.client_id) >= MAX_HANDLES_PER_CLIENT:
            obj.close()
            raise RtError(Status.VERR_TOO_MANY_OPEN_FILES, "per-client handle limit")
        handle = self.handles.alloc(client.client_id, root, mapping, kind, obj, path)
        if handle is None:
            obj.close()
            raise RtError(Status.VERR_NO_MEMORY, "handle table full")
        return handle

    def close_handle(self, handle: Handle) -> int:
        """Close the object and free the handle; the host close status."""
        self.handles.free(handle)
        if handle.search is not None:
            handle.search.dir.close()
        try:
            handle.obj.close()
        except RtError as err:
            return err.status if handle.kind is HandleKind.FILE else Status.VINF_SUCCESS
        return Status.VINF_SUCCESS


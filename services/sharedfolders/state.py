"""The Shared Folders service's state and the operations handlers perform on it.

``ShflState`` is what a function handler works on (``CallContext.state``): the mapping
table, the handle table, the connected clients, and the checks and bookkeeping every
handler shares (mapping and handle access, handle allocation within the per-client
limit, guest path conversion).  The service (service.py) owns one and adds the HGCM entry
points and the host API around it; handlers never reach back into the service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hgcmlab.runtime.fs import HostFile, HostRoot
from hgcmlab.runtime.paths import GuestPath, convert_guest_path, has_wildcard
from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, SHFL_HANDLE_ROOT
from hgcmlab.services.sharedfolders.casefix import correct_case
from hgcmlab.services.sharedfolders.context import ClientState
from hgcmlab.services.sharedfolders.handles import Handle, HandleKind, HandleTable
from hgcmlab.services.sharedfolders.mappings import Mapping, MappingTable

#: Handles one client may hold open at once (a further open: VERR_TOO_MANY_OPEN_FILES).
#: VirtualBox only has the global table of 4095; this keeps one client from starving others.
MAX_HANDLES_PER_CLIENT = 1024


class ShflState:
    """Mappings, handles and clients of one Shared Folders service.

    ``use_openat2`` and ``root_factory`` configure the mapping table (see MappingTable).
    """

    def __init__(self, *, use_openat2: bool | None, root_factory: Callable[..., HostRoot]) -> None:
        self.table = MappingTable(use_openat2=use_openat2, root_factory=root_factory)
        self.handles = HandleTable()
        self.clients: dict[int, ClientState] = {}

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


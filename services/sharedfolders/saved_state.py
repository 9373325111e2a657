"""Saved state of the Shared Folders service (snapshots): plain data out, plain data in.

``save`` records everything a later guest call can observe, as dicts (str keys), lists,
str, int, bool, None and bytes:

* the mapping table: per root id the mapping (name, host folder, flags, auto-mount point,
  symlink policy, case options, use count, placeholder state, the host folder's identity),
  the per-root and global version counters; in reproducible mode each share's number and
  node table, and the mode's epoch and share counter;
* the handle table: the next-fit cursor and every slot's generation (so later opens get the
  same values), and per live handle its value, owner, root, kind, the path it was opened
  by, how its host object was opened (access, append), where that object is now beneath
  the share (it may have been renamed), its identity (device, inode; for files also size
  and modification time), and its LIST state: both streams' name snapshot and position,
  the search stream's pattern and directory, and the entry parked for the next call;
* per client, in connection order: requestor, encoding, delimiter, symlink mode, error
  style, the cancel-next-wait flag, its map counts per root, and its pending
  WAIT_FOR_MAPPINGS_CHANGES calls by ``HgcmCall.tag``.

VirtualBox saves far less (VBoxSharedFoldersSvc.cpp:svcSaveState keeps the client data and
the mappings only; svcLoadState checks them against the configured folders): handles do
not survive a restore and a resubmitted wait returns VINF_TRY_AGAIN at once
(mappings.cpp:vbsfMappingsWaitForChanges, fRestored).  We keep handles, cursors and waits
so that a resumed run continues exactly as the uninterrupted one (docs/deviations.md SF21).

``load`` first parses the whole state (state_parse.py: ``StateError``, a ValueError with
a one-line message, for anything malformed; the service is unchanged then), then replaces the
service's state.  Every handle is re-opened beneath its share through the confined
resolver, with the access it had, at the place its object was at save time, and must
find the same object (same device and inode; a file also the same size and modification
time).  A handle that cannot be re-opened, or finds another or a changed object, is not
restored: its value answers VERR_INVALID_HANDLE (as every handle does after a VirtualBox
restore) and one problem line says why.  A share whose folder cannot be opened is restored
without it (its path operations answer VERR_NOT_FOUND, as for a removed share).  Handles
under a mapping the guest can no longer reach (removed by the host) need no host object:
they keep answering VERR_ACCESS_DENIED, and CLOSE succeeds.
"""

from __future__ import annotations

import stat as st_mod
from collections.abc import Callable
from collections.abc import Mapping as AbcMapping
from dataclasses import asdict
from typing import TYPE_CHECKING

from hgcmlab.runtime.fs import Disposition, HostDir, HostFile, HostRoot
from hgcmlab.runtime.paths import GuestPath
from hgcmlab.runtime.status import RtError, status_name
from hgcmlab.services.hgcm import HgcmCall
from hgcmlab.services.sharedfolders.context import ClientState
from hgcmlab.services.sharedfolders.handles import DirStream, Handle, HandleKind, HandleTable
from hgcmlab.services.sharedfolders.mappings import Mapping
from hgcmlab.services.sharedfolders.reproducible import ReproducibleRoot
from hgcmlab.services.sharedfolders.state_parse import (
    STATE_VERSION,
    Saved,
    SavedHandle,
    SavedMapping,
    SavedObject,
    StateError,
    parse,
)

if TYPE_CHECKING:
    from hgcmlab.services.sharedfolders.service import SharedFoldersService


# --- save ----------------------------------------------------------------------------


def save(service: SharedFoldersService) -> dict:
    """The service's state as plain data (module docstring); the caller holds its lock."""
    table = service.table
    cursor, generations = service.handles.allocation_state()
    settings = service.reproducible
    return {
        "version": STATE_VERSION,
        "mappings": {
            "version": table.version,
            "root_versions": list(table.root_versions),
            "slots": [None if m is None else _save_mapping(m) for m in table.slots],
        },
        "handles": {
            "cursor": cursor,
            "generations": [[slot, gen] for slot, gen in generations],
            "live": [_save_handle(service, h) for h in service.handles.live()],
        },
        "clients": [_save_client(c) for c in service.clients.values()],
        "reproducible": None if settings is None else {"epoch_ns": settings.epoch_ns,
                                                       "shares": settings.shares},
    }


def _save_path(path: GuestPath) -> dict:
    return {"components": list(path.components), "trailing": path.trailing_delimiter}


def _save_mapping(mapping: Mapping) -> dict:
    root = mapping.root
    return {
        "name": mapping.name, "host_path": mapping.host_path, "writable": mapping.writable,
        "auto_mount": mapping.auto_mount, "create_symlinks": mapping.create_symlinks,
        "auto_mount_point": mapping.auto_mount_point,
        "symlink_policy": mapping.symlink_policy.value,
        "host_case_sensitive": mapping.host_case_sensitive,
        "guest_case_sensitive": mapping.guest_case_sensitive,
        "use_count": mapping.use_count, "placeholder": mapping.placeholder,
        "identity": None if root is None else list(root.dev_ino),
        "nodes": _save_nodes(root) if isinstance(root, ReproducibleRoot) else None,
    }


def _save_nodes(root: ReproducibleRoot) -> dict:
    return {"share_number": root.share_number, "last_id": root.last_node_id,
            "rows": [list(row) for row in root.node_rows()]}


def _save_object(root: HostRoot, fobj: HostFile, opened_as: GuestPath) -> dict:
    """How to find ``fobj`` again: where it is now, what it is, how it was opened."""
    try:
        st = fobj.stat()
        access = fobj.access()
    except RtError as err:
        return {"lost": status_name(err.status)}
    return {
        "opened_as": _save_path(opened_as),
        "at": _save_path(root.locate(fobj) or opened_as),
        "identity": [st.st_dev, st.st_ino], "directory": st_mod.S_ISDIR(st.st_mode),
        "size": st.st_size, "mtime_ns": st.st_mtime_ns,
        "access": int(access), "append": fobj.append,
    }


def _save_stream(stream: DirStream | None) -> dict | None:
    if stream is None:
        return None
    return {"names": None if stream.names is None else list(stream.names), "pos": stream.pos}


def _save_handle(service: SharedFoldersService, handle: Handle) -> dict:
    mapping = handle.mapping
    reachable = (mapping is service.table.get(handle.root) and not mapping.placeholder
                 and mapping.root is not None)
    record: dict = {
        "value": handle.value, "client_id": handle.client_id, "root": handle.root,
        "kind": handle.kind.value, "path": _save_path(handle.path),
        "orphan": mapping is not service.table.get(handle.root),
        "object": None, "stream": None, "search": None, "saved": None,
    }
    if not reachable:
        return record  # nothing but CLOSE can reach its object again
    assert mapping.root is not None
    opened_as = handle.obj.path if isinstance(handle.obj, HostDir) else handle.path
    record["object"] = _save_object(mapping.root, handle.obj, opened_as)
    record["stream"] = _save_stream(handle.stream)
    if handle.search is not None:
        search = _save_stream(handle.search)
        assert search is not None
        search["pattern"] = handle.search.pattern
        search["dir"] = _save_object(mapping.root, handle.search.dir, handle.search.dir.path)
        record["search"] = search
    if handle.saved is not None:
        record["saved"] = {"name": handle.saved.name, "info": asdict(handle.saved.info),
                           "has_info": handle.saved.has_info}
    return record


def _save_client(client: ClientState) -> dict:
    return {
        "client_id": client.client_id, "requestor": client.requestor, "utf8": client.utf8,
        "delimiter": client.delimiter, "symlinks": client.symlinks,
        "error_style": int(client.error_style), "cancel_next_wait": client.cancel_next_wait,
        "map_counts": [[root, count] for root, count in client.map_counts.items()],
        "waits": [call.tag for call in client.waits],
    }


# --- load -----------------------------------------------------------------------------


def load(service: SharedFoldersService, state: dict,
         pending: AbcMapping[int, HgcmCall]) -> list[str]:
    """Replace ``service``'s state with ``state`` (module docstring); the problem lines.

    Raises StateError (nothing changed) when ``state`` is malformed.  The caller holds the
    service lock.
    """
    saved = parse(state)
    handles = HandleTable()
    try:
        handles.restore_allocation(saved.cursor, saved.generations)
    except ValueError as exc:
        raise StateError(f"saved Shared Folders state: handles: {exc}") from None
    problems: list[str] = []
    _release(service)
    service.state.handles = handles
    _load_mappings(service, saved, problems)
    for record in saved.handles:
        _load_handle(service, record, problems)
    _load_clients(service, saved, pending, problems)
    return problems


def _release(service: SharedFoldersService) -> None:
    """Drop the current state: clients (their waits complete with VERR_CANCELLED, their
    handles close) and share roots."""
    for client_id in list(service.clients):
        service.disconnect(client_id)
    service.table.close()


def _load_mappings(service: SharedFoldersService, saved: Saved, problems: list[str]) -> None:
    table = service.table
    settings = service.reproducible
    if saved.reproducible is not None and settings is None:
        problems.append("shares: saved in reproducible mode, restored without it: the guest "
                        "now sees host object information")
    elif saved.reproducible is None and settings is not None:
        problems.append("shares: saved without reproducible mode, restored with it: the guest "
                        "now sees reproducible object information")
    table.slots = [None if s is None else s.mapping for s in saved.slots]
    table.root_versions = list(saved.root_versions)
    table.version = saved.version
    for root, entry in enumerate(saved.slots):
        if entry is not None and not entry.mapping.placeholder:
            _open_share(table.root_factory, table.use_openat2, root, entry, problems)
    if settings is not None and saved.reproducible is not None:
        settings.restore(*saved.reproducible)


def _open_share(factory: Callable[..., HostRoot], use_openat2: bool | None, root: int,
                entry: SavedMapping, problems: list[str]) -> None:
    mapping = entry.mapping
    where = f"share {mapping.name!r} (root {root}, {mapping.host_path})"
    try:
        host = factory(mapping.host_path, use_openat2=use_openat2)
    except RtError as err:
        problems.append(f"{where}: cannot open the folder: {status_name(err.status)}; its "
                        "paths answer VERR_NOT_FOUND")
        return
    mapping.root = host
    if entry.identity is not None and host.dev_ino != entry.identity:
        problems.append(f"{where}: the folder is another directory than at save time")
    if entry.nodes is not None and isinstance(host, ReproducibleRoot):
        host.restore_nodes(*entry.nodes)


def _describe(mapping: Mapping | None, record: SavedHandle) -> str:
    share = mapping.name if mapping is not None else f"root {record.root}"
    path = b"/".join(record.path.components).decode("utf-8", "backslashreplace")
    return f"handle {record.value:#x} of client {record.client_id} ({share}:/{path})"


def _load_handle(service: SharedFoldersService, record: SavedHandle, problems: list[str]) -> None:
    current = service.table.get(record.root)
    if record.orphan or record.obj is None:
        # Unreachable by the guest (removed or replaced share): only CLOSE remains, which
        # needs no host object.
        mapping = current if current is not None and not record.orphan else _dead_mapping()
        obj: HostFile = (HostDir(-1, record.path) if record.kind is HandleKind.DIR
                         else HostFile(-1, False))
        _place(service, Handle(record.value, record.client_id, record.root, mapping,
                               record.kind, obj, record.path), problems,
               _describe(None if record.orphan else current, record))
        return
    try:
        handle = _reopen_handle(current, record)
    except _Lost as lost:
        problems.append(f"{_describe(current, record)}: {lost}; it now answers VERR_INVALID_HANDLE")
        return
    _place(service, handle, problems, _describe(current, record))


def _place(service: SharedFoldersService, handle: Handle, problems: list[str], what: str) -> None:
    if not service.handles.place(handle):
        _close_handle_objects(handle)
        problems.append(f"{what}: its slot is taken or the value was never handed out; dropped")


def _dead_mapping() -> Mapping:
    """A mapping object no table holds: access checks of a handle under it fail."""
    return Mapping("", "", None, False, False, False, "", placeholder=True)


class _Lost(Exception):
    """A handle's object cannot be restored; the message says why."""


def _reopen_handle(mapping: Mapping | None, record: SavedHandle) -> Handle:
    if mapping is None or mapping.root is None or mapping.placeholder:
        raise _Lost("its share is not available")
    host = mapping.root
    obj = _reopen(host, record.obj, as_dir=record.kind is HandleKind.DIR)
    handle = Handle(record.value, record.client_id, record.root, mapping, record.kind, obj,
                    record.path)
    try:
        if record.stream is not None:
            if not isinstance(obj, HostDir):
                raise _Lost("a listing state on a file handle")
            handle.stream = DirStream(obj, None, record.stream.names, record.stream.pos)
        if record.search is not None:
            search_dir = _reopen(host, record.search.dir, as_dir=True)
            assert isinstance(search_dir, HostDir)
            handle.search = DirStream(search_dir, record.search.pattern, record.search.names,
                                      record.search.pos)
    except _Lost:
        _close_handle_objects(handle)
        raise
    handle.saved = record.saved
    return handle


def _reopen(host: HostRoot, saved: SavedObject | str | None, as_dir: bool) -> HostFile:
    """Open the saved object again (confined, as a guest open would be) and check that it
    is the same, unchanged object; _Lost otherwise."""
    if not isinstance(saved, SavedObject):
        raise _Lost(f"its host object could not be examined at save time: {saved}")
    try:
        if as_dir:
            obj: HostFile = host.open_dir(saved.at)
        else:
            obj, _ = host.open_file(saved.at, saved.access, Disposition.OPEN,
                                    append=saved.append, dirs=True)
    except RtError as err:
        raise _Lost(f"host object cannot be re-opened: {status_name(err.status)}") from None
    try:
        st = obj.stat()
    except RtError as err:
        obj.close()
        raise _Lost(f"host object cannot be examined: {status_name(err.status)}") from None
    change = _change(saved, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if change:
        obj.close()
        raise _Lost(f"host object changed since the save ({change})")
    if isinstance(obj, HostDir):
        obj.path = saved.opened_as
    return obj


def _change(saved: SavedObject, dev: int, ino: int, size: int, mtime_ns: int) -> str:
    """What differs from the saved object ("" when nothing): identity, and for a
    non-directory its size and modification time (a directory's listing is in the saved
    name snapshot, so added or removed entries do not matter)."""
    if (dev, ino) != saved.identity:
        return "another object"
    if saved.directory:
        return ""
    if size != saved.size:
        return f"size {saved.size} -> {size}"
    if mtime_ns != saved.mtime_ns:
        return "modification time"
    return ""


def _close_handle_objects(handle: Handle) -> None:
    for obj in (handle.obj, handle.search.dir if handle.search is not None else None):
        if obj is not None:
            try:
                obj.close()
            except RtError:
                pass  # a failed close of an object never handed out changes nothing


def _load_clients(service: SharedFoldersService, saved: Saved,
                  pending: AbcMapping[int, HgcmCall], problems: list[str]) -> None:
    service.state.clients = {}
    for client, tags in saved.clients:
        service.state.clients[client.client_id] = client
        for tag in tags:
            call = pending.get(tag)
            if call is None or call.client_id != client.client_id or call.completed:
                problems.append(f"client {client.client_id}: its pending mappings-change wait "
                                f"(tag {tag}) was not handed back; dropped")
                continue
            client.waits.append(call)

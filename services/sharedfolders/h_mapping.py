"""Handlers of the mapping-level functions (reference §5.2.1, .2, .12-.14, .17, .20-.23,
.25, .28): mapping queries, map/unmap, client mode switches, change notification."""

from __future__ import annotations

import ctypes

from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.hgcm import ASYNC, _AsyncMarker
from hgcmlab.services.sharedfolders import strings
from hgcmlab.services.sharedfolders.abi import (
    SHFL_FEATURE_WRITE_UPDATES_OFFSET,
    SHFL_FN_LAST,
    SHFL_MAX_MAPPING_WAITS,
    SHFL_MAX_MAPS_PER_CLIENT_ROOT,
    SHFL_MS_NEW,
    SHFLSTRING_HEADER_SIZE,
    ShflErrorStyle,
    ShflMapping,
    ShflMf,
    ShflMif,
    ShflMiqf,
)
from hgcmlab.services.sharedfolders.context import CallContext
from hgcmlab.services.sharedfolders.mappings import Mapping, SymlinkPolicy

_DELIMITERS = (0x2F, 0x5C)


def query_mappings(ctx: CallContext) -> int:
    """QUERY_MAPPINGS: fill up to ``count`` SHFLMAPPING entries, report the total."""
    flags, count, array = ctx.params
    entry_size = ctypes.sizeof(ShflMapping)
    if flags.value & ~int(ShflMf.MASK) or len(array.buffer) // entry_size != count.value:
        raise RtError(Status.VERR_INVALID_PARAMETER, "flags or array size")
    if flags.value & ShflMf.UTF8:
        ctx.client.utf8 = True  # a query with a side effect, as in VirtualBox
    auto_only = bool(flags.value & ShflMf.AUTOMOUNT)
    roots = [root for root, m in ctx.state.table.items()
             if not auto_only or (m.auto_mount and not m.placeholder)]
    capacity = count.value
    for slot, root in enumerate(roots[:capacity]):
        entry = ShflMapping(u32Status=SHFL_MS_NEW, root=root)
        array.buffer[slot * entry_size:(slot + 1) * entry_size] = bytes(entry)
    count.value = len(roots)
    return Status.VINF_BUFFER_OVERFLOW if capacity < len(roots) else Status.VINF_SUCCESS


def query_map_name(ctx: CallContext) -> int:
    """QUERY_MAP_NAME: the mapping's name in the client's encoding."""
    root, name = ctx.params
    mapping = ctx.state.table.get(root.value)
    if mapping is None:
        raise RtError(Status.VERR_INVALID_PARAMETER, "unknown root")
    if ctx.client.utf8:
        return strings.copy_out_utf8(name.buffer, mapping.name)
    size, _ = strings.header(name.buffer)
    stored = strings.build(mapping.name, utf8=False)
    stored_size, stored_len = strings.header(stored)
    if size < stored_size:
        raise RtError(Status.VERR_INVALID_PARAMETER, "name buffer too small")
    name.buffer[SHFLSTRING_HEADER_SIZE:SHFLSTRING_HEADER_SIZE + stored_size] = stored[SHFLSTRING_HEADER_SIZE:]
    strings.set_length(name.buffer, stored_len)
    return Status.VINF_SUCCESS


def _map_name(ctx: CallContext, fudge: bool) -> str:
    """The mapping name of a MAP_FOLDER(_OLD) call, with MAP_FOLDER's UTF-16 length fudge:
    a UTF-16 length that counted the terminator is decremented in the buffer."""
    buf = ctx.params[0].buffer
    try:
        return strings.parse_in(buf, ctx.client.utf8)
    except RtError:
        if not fudge or ctx.client.utf8 or len(buf) < SHFLSTRING_HEADER_SIZE + len(strings.UTF16_NUL):
            raise
        _, length = strings.header(buf)
        if not strings.ends_in_utf16_nul(buf, length):
            raise
        strings.set_length(buf, length - len(strings.UTF16_NUL))
        try:
            return strings.parse_in(buf, utf8=False)
        except RtError:
            strings.set_length(buf, length)
            raise


def _map(ctx: CallContext, name: str, root_parm_index: int, delimiter: int,
         case_sensitive: bool) -> int:
    """vbsfMapFolder: the delimiter must be '/' or '\\' and, once the client has one, the
    same (VERR_INVALID_PARAMETER); a client's first valid delimiter is stored BEFORE the
    name lookup, so it sticks even when the map then fails (VERR_FILE_NOT_FOUND,
    VERR_TOO_MANY_OPENS, VERR_INCOMPATIBLE_CONFIG)."""
    client = ctx.client
    if delimiter not in _DELIMITERS:
        raise RtError(Status.VERR_INVALID_PARAMETER, "delimiter")
    if client.delimiter == 0:
        client.delimiter = delimiter
    elif client.delimiter != delimiter:
        raise RtError(Status.VERR_INVALID_PARAMETER, "delimiter differs from the client's")
    table = ctx.state.table
    root = table.find(name)
    if root is None:
        raise RtError(Status.VERR_FILE_NOT_FOUND, f"no mapping {name!r}")
    mapping = table.get(root)
    assert mapping is not None
    if client.map_counts.get(root, 0) >= SHFL_MAX_MAPS_PER_CLIENT_ROOT:
        raise RtError(Status.VERR_TOO_MANY_OPENS, "mapped too often")
    if mapping.use_count > 0 and mapping.guest_case_sensitive != case_sensitive:
        raise RtError(Status.VERR_INCOMPATIBLE_CONFIG, "case sensitivity differs")
    client.map_counts[root] = client.map_counts.get(root, 0) + 1
    mapping.use_count += 1
    mapping.guest_case_sensitive = case_sensitive
    ctx.params[root_parm_index].value = root
    return Status.VINF_SUCCESS


def map_folder(ctx: CallContext) -> int:
    """MAP_FOLDER: map a share by name; returns the root id in parameter 1."""
    name = _map_name(ctx, fudge=True)
    _, _, delimiter, case = ctx.params
    return _map(ctx, name, 1, delimiter.value & 0xFFFF, case.value != 0)


def map_folder_old(ctx: CallContext) -> int:
    """MAP_FOLDER_OLD: as MAP_FOLDER, always case-insensitive, no length fudge."""
    name = _map_name(ctx, fudge=False)
    return _map(ctx, name, 1, ctx.params[2].value & 0xFFFF, False)


def unmap_folder(ctx: CallContext) -> int:
    """UNMAP_FOLDER: drop one of this client's maps of a root (handles stay open)."""
    root = ctx.params[0].value
    if ctx.state.table.get(root) is None:
        raise RtError(Status.VERR_FILE_NOT_FOUND, "unknown root")
    count = ctx.client.map_counts.get(root, 0)
    if count == 0:
        raise RtError(Status.VERR_INVALID_HANDLE, "root not mapped by this client")
    if count == 1:
        del ctx.client.map_counts[root]
    else:
        ctx.client.map_counts[root] = count - 1
    ctx.state.table.release(root)
    return Status.VINF_SUCCESS


def set_utf8(ctx: CallContext) -> int:
    """SET_UTF8: the client's strings are UTF-8 from now on."""
    ctx.client.utf8 = True
    return Status.VINF_SUCCESS


def set_symlinks(ctx: CallContext) -> int:
    """SET_SYMLINKS: path queries report symlinks themselves (lstat semantics)."""
    ctx.client.symlinks = True
    return Status.VINF_SUCCESS


def _mif_flags(mapping: Mapping) -> int:
    flags = 0
    if mapping.writable:
        flags |= ShflMif.WRITABLE
    if mapping.auto_mount:
        flags |= ShflMif.AUTO_MOUNT
    # Inverted as in VirtualBox (quirk 3): the ICASE bits say "case-sensitive".
    if mapping.host_case_sensitive:
        flags |= ShflMif.HOST_ICASE
    if mapping.guest_case_sensitive:
        flags |= ShflMif.GUEST_ICASE
    if mapping.create_symlinks and mapping.symlink_policy is not SymlinkPolicy.FORBIDDEN:
        flags |= ShflMif.SYMLINK_CREATION
    return flags


def query_map_info(ctx: CallContext) -> int:
    """QUERY_MAP_INFO: name, auto-mount point, SHFL_MIF_* flags, root id version."""
    root, name, mount_point, flags, version = ctx.params
    if flags.value & ~int(ShflMiqf.DRIVE_LETTER | ShflMiqf.PATH):
        raise RtError(Status.VERR_INVALID_PARAMETER, "query flags")
    mapping = ctx.state.table.get(root.value)
    if mapping is None:
        raise RtError(Status.VERR_INVALID_PARAMETER, "unknown root")
    version.value = ctx.state.table.root_versions[root.value]
    flags.value = _mif_flags(mapping)
    copy = strings.copy_out_utf8 if ctx.client.utf8 else strings.copy_out_utf16
    rc_name = copy(name.buffer, mapping.name)
    rc_mount = copy(mount_point.buffer, mapping.auto_mount_point)
    return rc_name if rc_name < 0 else rc_mount


def wait_for_changes(ctx: CallContext) -> int | _AsyncMarker:
    """WAIT_FOR_MAPPINGS_CHANGES: return at once if the guest's version is stale, else pend
    until the mappings change (completed with VERR_CANCELLED, as VirtualBox does)."""
    parm = ctx.params[0]
    client = ctx.client
    current = ctx.state.table.version
    if client.cancel_next_wait:
        client.cancel_next_wait = False
        parm.value = current
        return Status.VERR_CANCELLED
    if parm.value != current:
        parm.value = current
        return Status.VINF_SUCCESS
    pending = sum(len(c.waits) for c in ctx.state.clients.values())
    if pending >= SHFL_MAX_MAPPING_WAITS:
        raise RtError(Status.VERR_OUT_OF_RESOURCES, "too many pending waits")
    client.waits.append(ctx.call)
    return ASYNC


def cancel_waits(ctx: CallContext) -> int:
    """CANCEL_MAPPINGS_CHANGES_WAITS: complete this client's waits, cancel the next one."""
    client = ctx.client
    waits, client.waits = client.waits, []
    for waiting in waits:
        waiting.params[0].value = ctx.state.table.version
        waiting.complete(Status.VERR_CANCELLED)
    client.cancel_next_wait = True
    return Status.VINF_SUCCESS


def query_features(ctx: CallContext) -> int:
    """QUERY_FEATURES: feature bits and the last function number."""
    features, last = ctx.params
    features.value = SHFL_FEATURE_WRITE_UPDATES_OFFSET
    last.value = SHFL_FN_LAST
    return Status.VINF_SUCCESS


def set_error_style(ctx: CallContext) -> int:
    """SET_ERROR_STYLE: 1 (Windows) or 2 (Linux); svcCall refuses other values and a
    non-zero reserved word with VERR_WRONG_PARAMETER_TYPE (signature in functions.py)."""
    style, _reserved = ctx.params
    ctx.client.error_style = ShflErrorStyle(style.value)
    return Status.VINF_SUCCESS


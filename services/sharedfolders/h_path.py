"""Handlers of path-based name operations (reference §5.2.10, .15, .18): REMOVE, RENAME,
READLINK."""

from __future__ import annotations

import stat as st_mod

from runtime.paths import GuestPath
from runtime.status import RtError, Status
from services.sharedfolders.abi import ShflRemove, ShflRename
from services.sharedfolders.context import CallContext
from services.sharedfolders.mappings import Mapping


def _path(ctx: CallContext, index: int) -> GuestPath:
    text = ctx.strings[index]
    assert text is not None
    return ctx.service.guest_path(ctx.client, text)


def _writable(mapping: Mapping) -> None:
    if not mapping.writable:
        raise RtError(Status.VERR_WRITE_PROTECT, "read-only mapping")


def remove(ctx: CallContext) -> int:
    """REMOVE: SYMLINK bit -> a symlink, else FILE bit -> a file, else a directory."""
    root, _, flags = ctx.params
    if flags.value & ~int(ShflRemove.FILE | ShflRemove.DIR | ShflRemove.SYMLINK):
        raise RtError(Status.VERR_INVALID_FLAGS, "remove flags")
    mapping = ctx.service.path_mapping(ctx.client, root.value)
    path = _path(ctx, 1)
    _writable(mapping)
    host = mapping.root
    assert host is not None
    if flags.value & ShflRemove.SYMLINK:
        st = host.lstat_at(path)
        if st is None:
            raise RtError(Status.VERR_FILE_NOT_FOUND, "missing")
        if not st_mod.S_ISLNK(st.st_mode):
            raise RtError(Status.VERR_NOT_SYMLINK, "not a symlink")
        host.unlink(path)
    elif flags.value & ShflRemove.FILE:
        host.unlink(path)
    else:
        host.rmdir(path)
    return Status.VINF_SUCCESS


def rename(ctx: CallContext) -> int:
    """RENAME: POSIX rename with VirtualBox's type and replace rules (§5.2.15)."""
    root, _, _, flags = ctx.params
    fl = flags.value
    if fl & ~int(ShflRename.FILE | ShflRename.DIR | ShflRename.REPLACE_IF_EXISTS):
        raise RtError(Status.VERR_INVALID_PARAMETER, "rename flags")
    mapping = ctx.service.path_mapping(ctx.client, root.value)
    src, dst = _path(ctx, 1), _path(ctx, 2)
    _writable(mapping)
    host = mapping.root
    assert host is not None
    src_st = host.lstat_at(src)
    if src_st is None:
        raise RtError(Status.VERR_FILE_NOT_FOUND, "source missing")
    kind = fl & (ShflRename.FILE | ShflRename.DIR)
    if kind == ShflRename.FILE and st_mod.S_ISDIR(src_st.st_mode):
        raise RtError(Status.VERR_IS_A_DIRECTORY, "source is a directory")
    if kind in (0, ShflRename.DIR) and not st_mod.S_ISDIR(src_st.st_mode):
        raise RtError(Status.VERR_NOT_A_DIRECTORY, "source is not a directory")
    dst_st = host.lstat_at(dst)
    if dst_st is not None and (dst_st.st_dev, dst_st.st_ino) != (src_st.st_dev, src_st.st_ino):
        if st_mod.S_ISDIR(dst_st.st_mode) or not fl & ShflRename.REPLACE_IF_EXISTS:
            raise RtError(Status.VERR_ALREADY_EXISTS, "destination exists")
    host.rename(src, dst)
    return Status.VINF_SUCCESS


def readlink(ctx: CallContext) -> int:
    """READLINK: the target as NUL-terminated UTF-8; '/' shown as the client delimiter."""
    root, _, buf = ctx.params
    if ctx.strings[1] is None or len(buf.buffer) == 0:
        raise RtError(Status.VERR_INVALID_PARAMETER, "empty path or buffer")
    mapping = ctx.service.path_mapping(ctx.client, root.value)
    path = _path(ctx, 1)
    assert mapping.root is not None
    target = mapping.root.readlink(path)
    room = len(buf.buffer) - 1
    if len(target) > room:
        buf.buffer[:room + 1] = target[:room] + b"\0"
        return Status.VERR_BUFFER_OVERFLOW
    if ctx.client.delimiter:
        target = target.replace(b"/", bytes([ctx.client.delimiter]))
    buf.buffer[:len(target) + 1] = target + b"\0"
    return Status.VINF_SUCCESS

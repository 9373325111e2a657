"""Handlers of path-based name operations (reference §5.2.10, .11, .15, .18, .19, .26):
REMOVE, CLOSE_AND_REMOVE, RENAME, READLINK, SYMLINK, COPY_FILE."""

from __future__ import annotations

import stat as st_mod
from contextlib import closing, suppress

from hgcmlab.runtime.fs import Access, Disposition, HostRoot
from hgcmlab.runtime.paths import DELIM_BACKSLASH, PATH_MAX, GuestPath, symlink_target_inside
from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.sharedfolders import errstyle
from hgcmlab.services.sharedfolders.abi import (
    SHFL_HANDLE_NIL,
    SHFL_HANDLE_ROOT,
    ShflRemove,
    ShflRename,
)
from hgcmlab.services.sharedfolders.context import CallContext
from hgcmlab.services.sharedfolders.handles import HandleKind
from hgcmlab.services.sharedfolders.mappings import Mapping, SymlinkPolicy
from hgcmlab.services.sharedfolders.objinfo import to_shfl

#: A symlink target holds at most PATH_MAX bytes, so it climbs at most this many levels.
_MAX_CLIMB = (PATH_MAX + 1) // 3
#: Permission bits of a COPY_FILE destination (the host default of a new file).
_COPY_MODE = 0o600


def _path(ctx: CallContext, mapping: Mapping, index: int, *, preserve_last: bool = False) -> GuestPath:
    text = ctx.decoded[index]
    assert text is not None
    return ctx.state.host_path(ctx.client, mapping, text, preserve_last=preserve_last)


def _host(mapping: Mapping) -> HostRoot:
    assert mapping.root is not None  # path_mapping refuses placeholders
    return mapping.root


def _writable(mapping: Mapping) -> None:
    if not mapping.writable:
        raise RtError(Status.VERR_WRITE_PROTECT, "read-only mapping")


def _remove(host: HostRoot, path: GuestPath, flags: int) -> None:
    """vbsfRemove's dispatch: SYMLINK bit -> RTSymlinkDelete, else FILE bit ->
    RTFileDelete, else RTDirRemove (hgcmlab.runtime.fs has each one's host answers)."""
    if flags & ShflRemove.SYMLINK:
        host.delete_symlink(path)
    elif flags & ShflRemove.FILE:
        host.unlink(path)
    else:
        host.rmdir(path)


def remove(ctx: CallContext) -> int:
    """REMOVE(root, path, flags) as vbsfRemove: svcCall checked the flags (signature in
    functions.py); the root (path conversion), then the writable check
    (VERR_WRITE_PROTECT), then ``_remove``."""
    root, _, flags = ctx.params
    mapping = ctx.state.path_mapping(ctx.client, root.value)
    path = _path(ctx, mapping, 1)
    _writable(mapping)
    _remove(_host(mapping), path, flags.value)
    return Status.VINF_SUCCESS


def close_and_remove(ctx: CallContext) -> int:
    """CLOSE_AND_REMOVE(root, path, flags, handle): vbsfRemove with a handle to close.

    svcCall checks the flags (VERR_INVALID_FLAGS, signature in functions.py) and refuses
    SHFL_HANDLE_ROOT (VERR_INVALID_HANDLE); the handle parameter's type is not checked
    (quirk 6).  Then, as
    vbsfRemove does, the handle is closed FIRST (vbsfClose: unknown, another client's or
    another root's handle -> VERR_INVALID_HANDLE and nothing else happens; NIL closes
    nothing), and only then are the root, the path and the writable flag checked: a
    failure there leaves the handle closed.
    """
    root, _, flags, handle = ctx.params
    if handle.value == SHFL_HANDLE_ROOT:
        raise RtError(Status.VERR_INVALID_HANDLE, "SHFL_HANDLE_ROOT")
    if handle.value != SHFL_HANDLE_NIL:
        found = ctx.state.lookup_handle(ctx.client, root.value, handle.value, tuple(HandleKind))
        status = ctx.state.close_handle(found)
        if status < 0:
            return status
    mapping = ctx.state.path_mapping(ctx.client, root.value)
    path = _path(ctx, mapping, 1)
    _writable(mapping)
    _remove(_host(mapping), path, flags.value)
    return Status.VINF_SUCCESS


def rename(ctx: CallContext) -> int:
    """RENAME as vbsfRename: flags (VERR_INVALID_PARAMETER), source then destination path
    (root checks), writable (VERR_WRITE_PROTECT), then by the type flags RTPathRename
    (FILE|DIR: any source), RTFileMove (FILE: not a directory) or RTDirRename (DIR or
    none: a directory); REPLACE_IF_EXISTS replaces a non-directory.  Host answers:
    ``HostRoot.rename``; for RTFileMove a rename(2) refused with EXDEV becomes a copy and
    an unlink (``_move_by_copy``).

    Windows error style (§4.5): VERR_FILE_NOT_FOUND becomes VERR_PATH_NOT_FOUND when the
    source's parent is missing or not a directory, or when the source exists and the
    destination's parent is missing or not a directory.

    Policy (SF20, docs/security.md G4): on a mapping whose guests may create symlinks under
    SymlinkPolicy.SUBTREE, a rename that would carry a symlink (the source itself or one
    beneath a source directory) to a shallower place where its target, judged lexically
    as SYMLINK judges it, leaves the share while it stayed inside before is refused with
    VERR_ACCESS_DENIED, after every check VirtualBox makes and before the host changes.
    """
    root, _, _, flags = ctx.params
    fl = flags.value
    if fl & ~int(ShflRename.FILE | ShflRename.DIR | ShflRename.REPLACE_IF_EXISTS):
        raise RtError(Status.VERR_INVALID_PARAMETER, "rename flags")
    mapping = ctx.state.path_mapping(ctx.client, root.value)
    src, dst = _path(ctx, mapping, 1), _path(ctx, mapping, 2, preserve_last=True)
    _writable(mapping)
    host = _host(mapping)
    kind = fl & (ShflRename.FILE | ShflRename.DIR)
    want = None if kind == ShflRename.FILE | ShflRename.DIR else "file" if kind == ShflRename.FILE else "dir"
    guards_links = mapping.create_symlinks and mapping.symlink_policy is SymlinkPolicy.SUBTREE
    guard = (lambda _src_st: _check_moved_links(host, src, dst)) if guards_links else None
    try:
        try:
            host.rename(src, dst, replace=bool(fl & ShflRename.REPLACE_IF_EXISTS), want=want,
                        before=guard)
        except RtError as err:
            if err.status != Status.VERR_NOT_SAME_DEVICE or want != "file":
                raise
            _move_by_copy(host, src, dst)
    except RtError as err:
        if err.status == Status.VERR_FILE_NOT_FOUND and errstyle.windows(ctx.client) \
                and _rename_path_not_found(host, src, dst):
            raise RtError(Status.VERR_PATH_NOT_FOUND, "parent directory missing") from None
        raise
    return Status.VINF_SUCCESS


def _move_by_copy(host: HostRoot, src: GuestPath, dst: GuestPath) -> None:
    """RTFileMove's fallback when rename(2) says EXDEV (a mount point inside the share):
    open the source (links followed, regular files only here: SF6), create or truncate the
    destination (mode 0600), copy, then unlink the source; on a failed copy the destination
    is unlinked instead.  The copy's status is the call's."""
    source, _ = host.open_file(src, Access.READ, Disposition.OPEN)
    try:
        target, _ = host.open_file(dst, Access.WRITE, Disposition.CREATE_REPLACE, _COPY_MODE)
        try:
            source.copy_to(target)
        except RtError:
            target.close()
            with suppress(RtError):
                host.unlink(dst)
            raise
        target.close()
    finally:
        source.close()
    with suppress(RtError):  # RTFileMove ignores a failed delete of the source
        host.unlink(src)


def _check_moved_links(host: HostRoot, src: GuestPath, dst: GuestPath) -> None:
    """SF20: refuse (VERR_ACCESS_DENIED) when a symlink moved from ``src`` to ``dst`` would
    leave the share at its new depth while it stayed inside at its old one.  Whether a
    target stays inside is monotone in depth, so only a move to a shallower directory can
    change a link's meaning that way; then every link beneath the source is judged."""
    if src.is_root or dst.is_root:
        return  # the root never moves (HostRoot.rename)
    if src.trailing_delimiter:
        st = host.lstat_at(src)
        if st is not None and st_mod.S_ISLNK(st.st_mode):
            return  # renameat refuses a symlink named with a slash (ENOTDIR): nothing moves
    old_depth = host.dir_depth(src.parent())
    try:
        new_depth = host.dir_depth(dst.parent())
    except RtError:
        return  # the destination directory does not resolve: renameat fails by itself
    if new_depth >= old_depth:
        return
    # A link whose directory ends up _MAX_CLIMB or more levels deep can never point above
    # the root, so the walk need not go deeper than that.
    with closing(host.symlinks_beneath(src, _MAX_CLIMB - new_depth - 1)) as links:
        for below, target in links:
            was_inside = symlink_target_inside(target, old_depth + below)
            if was_inside and not symlink_target_inside(target, new_depth + below):
                raise RtError(Status.VERR_ACCESS_DENIED, "a moved symlink would point outside the share")


def _rename_path_not_found(host: HostRoot, src: GuestPath, dst: GuestPath) -> bool:
    """vbsfErrorStyleIsWindowsPathNotFound2: the source's directory is missing or not a
    directory; or the source itself exists (stat, links followed) and the destination's
    directory is missing or not a directory."""
    if errstyle.parent_not_found(host, src):
        return True
    try:
        host.stat(src, follow=True, slash=src.trailing_delimiter)
    except RtError:
        return False
    return errstyle.parent_not_found(host, dst)


def readlink(ctx: CallContext) -> int:
    """READLINK: the target as NUL-terminated UTF-8; '/' shown as the client delimiter."""
    root, _, buf = ctx.params
    if ctx.decoded[1] is None or len(buf.buffer) == 0:
        raise RtError(Status.VERR_INVALID_PARAMETER, "empty path or buffer")
    mapping = ctx.state.path_mapping(ctx.client, root.value)
    target = _host(mapping).readlink(_path(ctx, mapping, 1))
    room = len(buf.buffer) - 1
    if len(target) > room:
        buf.buffer[:room + 1] = target[:room] + b"\0"
        return Status.VERR_BUFFER_OVERFLOW
    if ctx.client.delimiter:
        target = target.replace(b"/", bytes([ctx.client.delimiter]))
    buf.buffer[:len(target) + 1] = target + b"\0"
    return Status.VINF_SUCCESS


def symlink(ctx: CallContext) -> int:
    """SYMLINK(root, link path, target text, info): create a symlink (§5.2.19, project policy).

    svcCall first checks both strings in the client's encoding and that info is exactly 92
    bytes (VERR_INVALID_PARAMETER); vbsfSymlink then refuses UTF-16 clients
    (VERR_NOT_IMPLEMENTED).  The mapping must allow symlink creation and, unlike VirtualBox 7.0,
    be writable (VERR_WRITE_PROTECT), and its ``SymlinkPolicy`` decides the targets:
    FORBIDDEN refuses all (VERR_WRITE_PROTECT); SUBTREE (the default) stores the text only
    when it stays beneath the share root, judged lexically from the link's real directory
    (VERR_ACCESS_DENIED otherwise); ANY stores any text (following it stays confined).  On success param 3 receives the link's own info.
    """
    # Both strings and the info size were checked by the generic validation (functions.py).
    root, _link_parm, _target_parm, info = ctx.params
    link_text, target_text = ctx.decoded[1], ctx.decoded[2]
    assert link_text is not None and target_text is not None  # STR_IN never accepts empty
    if not ctx.client.utf8:
        raise RtError(Status.VERR_NOT_IMPLEMENTED, "SYMLINK needs a UTF-8 client")
    mapping = ctx.state.path_mapping(ctx.client, root.value)
    if not mapping.create_symlinks or mapping.symlink_policy is SymlinkPolicy.FORBIDDEN:
        raise RtError(Status.VERR_WRITE_PROTECT, "symlink creation not allowed on this share")
    _writable(mapping)
    link = ctx.state.host_path(ctx.client, mapping, link_text)
    if ctx.client.delimiter == DELIM_BACKSLASH and "/" in target_text:
        # VirtualBox runs the target through the converter only to vet its characters.
        raise RtError(Status.VERR_INVALID_NAME, "'/' inside a target component")
    host = _host(mapping)
    target = target_text.encode("utf-8")
    if (mapping.symlink_policy is SymlinkPolicy.SUBTREE
            and not symlink_target_inside(target, host.dir_depth(link.parent()))):
        raise RtError(Status.VERR_ACCESS_DENIED, "symlink target leaves the share")
    st = host.symlink(link, target)
    info.buffer[:] = bytes(to_shfl(host.describe(st, link.name)))
    return Status.VINF_SUCCESS


def copy_file(ctx: CallContext) -> int:
    """COPY_FILE(root src, path src, root dst, path dst, flags): copy a regular file (§5.2.26).

    flags must be 0 (VERR_INVALID_FLAGS, checked by svcCall).  Unlike VirtualBox (quirk 4) the destination
    mapping must be writable (VERR_WRITE_PROTECT).  The source must be a regular file
    beneath its share; the destination is created exclusively (VERR_ALREADY_EXISTS) and
    removed again if the copy fails half way.
    """
    root_src, _, root_dst, _, _ = ctx.params  # flags: svcCall wants 0 (functions.py)
    state = ctx.state
    src_map = state.path_mapping(ctx.client, root_src.value)
    src = _path(ctx, src_map, 1)
    dst_map = state.path_mapping(ctx.client, root_dst.value)
    dst = _path(ctx, dst_map, 3)
    _writable(dst_map)
    source, _ = _host(src_map).open_file(src, Access.READ, Disposition.OPEN)
    try:
        target, _ = _host(dst_map).open_file(dst, Access.WRITE, Disposition.CREATE, _COPY_MODE)
        try:
            source.copy_to(target)
        except RtError:
            target.close()
            with suppress(RtError):  # the copy's own failure is what the guest must see
                _host(dst_map).unlink(dst)
            raise
        target.close()
    finally:
        source.close()
    return Status.VINF_SUCCESS

"""SHFL_FN_LIST (reference §5.2.8, quirk 19): read a directory handle into packed
SHFLDIRINFO records.

A directory handle has up to two streams: its plain listing, and the filtered "search"
stream that the first LIST with a non-empty path opens (the path's last component is an NT
wildcard pattern, the rest the directory, both beneath the share root).  Later calls with
a path keep using that search stream whatever path they pass; calls without a path use the
plain one.  An entry that does not fit is parked in the handle's single saved slot and
returned first by the next call, on whichever stream.

The stream position is the only cursor (the guest's resume point is ignored).  Record
layout: SHFLFSOBJINFO, cucShortName 0, the 28-byte short name left as the buffer had it,
then the SHFLSTRING name; a record takes 126 + name.u16Size bytes, back to back.
"""

from __future__ import annotations

import ctypes

from hgcmlab.runtime.fs import DirEntry, HostDir
from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.sharedfolders.abi import (
    SHFLDIRINFO_NAME_SIZES,
    SHFLDIRINFO_SHORT_NAME_LENGTH,
    SHFLDIRINFO_SIZE,
    ShflDirInfoHeader,
    ShflList,
)
from hgcmlab.services.sharedfolders.context import CallContext
from hgcmlab.services.sharedfolders.handles import DirStream, Handle, HandleKind
from hgcmlab.services.sharedfolders.objinfo import to_shfl

_HEADER = ctypes.sizeof(ShflDirInfoHeader)
_INFO_END = ShflDirInfoHeader.cucShortName.offset


def _client_name(name: bytes, utf8: bool) -> bytes | None:
    """The entry name in the client encoding, or None when it has no valid form there."""
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return name if utf8 else text.encode("utf-16-le")


def _space_needed(entry: DirEntry, utf8: bool) -> int:
    """VirtualBox's check: 126 + name + terminator, where a UTF-16 client is charged twice
    the UTF-8 size (an over-estimate; the record itself is smaller)."""
    return _HEADER + (len(entry.name) + 1) * (1 if utf8 else 2)


def _put_record(buf: bytearray, offset: int, entry: DirEntry, name: bytes, utf8: bool) -> int:
    """Write one SHFLDIRINFO at ``offset``; returns its size (126 + u16Size)."""
    terminator = b"\0" if utf8 else b"\0\0"
    size = len(name) + len(terminator)
    buf[offset:offset + _INFO_END] = bytes(to_shfl(entry.info))
    SHFLDIRINFO_SHORT_NAME_LENGTH.pack(buf, offset, 0)  # no short names on POSIX
    SHFLDIRINFO_NAME_SIZES.pack(buf, offset, size, len(name))
    buf[offset + _HEADER:offset + _HEADER + size] = name + terminator
    return _HEADER + size


class _Listing:
    """One LIST call: fills the buffer and keeps the counters the write-back needs."""

    def __init__(self, ctx: CallContext, handle: Handle, stream: DirStream, capacity: int) -> None:
        self.handle = handle
        self.stream = stream
        self.capacity = capacity
        self.utf8 = ctx.client.utf8
        self.follow = not ctx.client.symlinks
        self.buf = ctx.params[5].buffer
        self.used = 0
        self.count = 0
        self.at_end = False

    def _next(self) -> tuple[DirEntry, int] | None:
        """The saved entry, else the next readable one, with the status of reading it (a saved
        entry is not read again: VINF_SUCCESS); None at the end of the directory."""
        saved, self.handle.saved = self.handle.saved, None
        if saved is not None:
            return saved, Status.VINF_SUCCESS
        host = self.handle.mapping.root
        assert host is not None  # access_handle refused placeholders
        while (name := self.stream.next_name()) is not None:
            if _client_name(name, self.utf8) is None:
                continue  # IPRT drops names it cannot convert before the service sees them
            entry = host.dir_entry(self.stream.dir, name, self.follow)
            return entry, Status.VINF_SUCCESS if entry.has_info else Status.VWRN_NO_DIRENT_INFO
        return None

    def run(self, return_one: bool) -> int:
        """The loop of vbsfDirList; returns the call status."""
        last_read: int = Status.VINF_SUCCESS
        while self.used < self.capacity:
            item = self._next()
            if item is None:
                self.at_end = True
                return Status.VINF_SUCCESS if self.count else Status.VERR_NO_MORE_FILES
            entry, last_read = item
            if _space_needed(entry, self.utf8) > self.capacity - self.used:
                self.handle.saved = entry
                return Status.VINF_SUCCESS if self.count else Status.VINF_BUFFER_OVERFLOW
            name = _client_name(entry.name, self.utf8)
            assert name is not None
            self.used += _put_record(self.buf, self.used, entry, name, self.utf8)
            self.count += 1
            if return_one:
                break
        return last_read


def _search_stream(ctx: CallContext, handle: Handle, text: str) -> DirStream:
    """Open the filtered stream for guest path ``text`` (§4.3 with the WILDCARD option).

    A path ending in a delimiter, or naming the share root itself, lists that directory
    unfiltered; otherwise the last component is the pattern ('*' meaning everything).
    """
    mapping = handle.mapping
    path = ctx.state.host_path(ctx.client, mapping, text, wildcard=True)
    if path.is_root or path.trailing_delimiter:
        directory, pattern = path, None
    else:
        directory, pattern = path.parent(), path.name.decode("utf-8")
    assert mapping.root is not None
    opened: HostDir = mapping.root.open_dir(directory)
    return DirStream(opened, None if pattern == "*" else pattern)


def _stream(ctx: CallContext, handle: Handle, text: str | None, restart: bool) -> DirStream:
    """The stream this call reads, opened or rewound as VirtualBox does: any path string,
    an empty one included (only a zero-size parameter means "no path"), selects the search
    stream."""
    if text is not None:
        if handle.search is None:
            handle.search = _search_stream(ctx, handle, text)
            return handle.search  # opened by this call: RESTART is ignored
        stream = handle.search
    else:
        if handle.stream is None:
            assert isinstance(handle.obj, HostDir)
            handle.stream = DirStream(handle.obj)
        stream = handle.stream
    if restart:
        stream.rewind()  # the saved entry survives a rewind (quirk 19)
    return stream


def list_dir(ctx: CallContext) -> int:
    """LIST(root, handle, flags, cb, path, buffer, resume point, count).

    cb must be at least 128 and at most the buffer (VERR_INVALID_PARAMETER, nothing written
    back).  After that cb, resume point and count are always written: on success bytes used,
    1 unless the end was reached, and the record count; on failure 0, 0 and the count.
    """
    root, handle_parm, flags, cb, _, buf, resume, count = ctx.params
    if cb.value < SHFLDIRINFO_SIZE or cb.value > len(buf.buffer):
        raise RtError(Status.VERR_INVALID_PARAMETER, "LIST buffer size")
    state = ctx.state
    listing: _Listing | None = None
    try:
        handle = state.access_handle(ctx.client, root.value, handle_parm.value, (HandleKind.DIR,),
                                   write=False)
        stream = _stream(ctx, handle, ctx.decoded[4], bool(flags.value & ShflList.RESTART))
        listing = _Listing(ctx, handle, stream, cb.value)
        status = listing.run(bool(flags.value & ShflList.RETURN_ONE))
    except RtError:
        cb.value, resume.value = 0, 0
        count.value = listing.count if listing is not None else 0
        raise
    count.value = listing.count
    if status < 0:
        cb.value, resume.value = 0, 0
    else:
        cb.value, resume.value = listing.used, 0 if listing.at_end else 1
    return status

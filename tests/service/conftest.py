"""Shared fixtures for Shared Folders service tests: a real host tree and a guest driver."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fuzz.tree import Tree, build_tree
from hgcmlab.services.hgcm import HgcmCall, SvcParm
from hgcmlab.services.sharedfolders import strings
from hgcmlab.services.sharedfolders.abi import (
    SHFL_HANDLE_NIL,
    ShflCf,
    ShflCreateParms,
    ShflFn,
    ShflFsObjInfo,
)
from hgcmlab.services.sharedfolders.service import SharedFoldersService

READ_OPEN = ShflCf.ACCESS_READ | ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_FAIL_IF_NEW


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    """The host tree; asserts afterwards that nothing outside the shares changed."""
    t = build_tree(tmp_path)
    before = t.snapshot_outside()
    yield t
    assert t.snapshot_outside() == before


@pytest.fixture(params=[True, False], ids=["openat2", "walk"])
def svc(request: pytest.FixtureRequest, tree: Tree) -> Iterator[SharedFoldersService]:
    """A service with "sf" (writable) and "ro" (read-only), for both resolvers."""
    service = SharedFoldersService(use_openat2=request.param)
    assert service.add_mapping("sf", str(tree.share)) == 0
    assert service.add_mapping("ro", str(tree.ro), writable=False) == 0
    yield service
    service.close()


@dataclass
class DirRecord:
    """One parsed SHFLDIRINFO record."""

    name: str
    info: ShflFsObjInfo
    u16_size: int
    u16_length: int


@dataclass
class Listing:
    """The outcome of one LIST call: status, written-back parameters and parsed records."""

    status: int
    cb: int
    resume: int
    count: int
    records: list[DirRecord]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.records]


def parse_dir_records(data: bytes, count: int, utf8: bool) -> list[DirRecord]:
    """Walk ``count`` back-to-back records the way the Linux client does (126 + u16Size)."""
    out, offset = [], 0
    for _ in range(count):
        info = ShflFsObjInfo.from_buffer_copy(data[offset:offset + 92])
        size, length = struct.unpack_from("<HH", data, offset + 122)
        raw = data[offset + 126:offset + 126 + length]
        out.append(DirRecord(raw.decode("utf-8" if utf8 else "utf-16-le"), info, size, length))
        offset += 126 + size
    assert offset == len(data), (offset, len(data))
    return out


class Guest:
    """A guest client driving the service with SvcParm lists, as the device would."""

    _next_id = 1

    def __init__(self, svc: SharedFoldersService, utf8: bool = True) -> None:
        self.svc = svc
        self.client_id = Guest._next_id
        Guest._next_id += 1
        assert svc.connect(self.client_id, 0) == 0
        self.utf8 = False
        if utf8:
            assert self.call(ShflFn.SET_UTF8) == 0
            self.utf8 = True
        self.completions: list[tuple[HgcmCall, int]] = []

    def call(self, fn: int, *params: SvcParm) -> int:
        call = HgcmCall(self.client_id, int(fn), list(params),
                        on_complete=lambda c, st: self.completions.append((c, st)))
        return self.svc.call(call)  # type: ignore[return-value]

    def s(self, text: str) -> SvcParm:
        """A path/name string parameter in this client's encoding."""
        return SvcParm.ptr(strings.build(text, self.utf8))

    def map(self, name: str, delimiter: str = "/", case_sensitive: bool = True) -> int:
        root = SvcParm.u32(0)
        st = self.call(ShflFn.MAP_FOLDER, self.s(name), root, SvcParm.u32(ord(delimiter)),
                       SvcParm.u32(int(case_sensitive)))
        assert st == 0, st
        return root.value

    def create(self, root: int, path: str, flags: int, *, handle_in: int = SHFL_HANDLE_NIL,
               mode: int = 0, size: int = 0) -> tuple[int, ShflCreateParms]:
        cp = ShflCreateParms()
        cp.Handle = handle_in
        cp.CreateFlags = flags
        cp.Info.Attr.fMode = mode
        cp.Info.cbObject = size
        parm = SvcParm.ptr(bytes(cp))
        st = self.call(ShflFn.CREATE, SvcParm.u32(root), self.s(path), parm)
        return st, ShflCreateParms.from_buffer_copy(bytes(parm.buffer))

    def open(self, root: int, path: str, flags: int = READ_OPEN) -> int:
        st, cp = self.create(root, path, flags)
        assert st == 0 and cp.Handle != SHFL_HANDLE_NIL, (st, cp.Result)
        return cp.Handle

    def read(self, root: int, handle: int, offset: int, cb: int,
             bufsize: int | None = None) -> tuple[int, bytes, int]:
        buf = SvcParm.ptr(cb if bufsize is None else bufsize)
        cbp = SvcParm.u32(cb)
        st = self.call(ShflFn.READ, SvcParm.u32(root), SvcParm.u64(handle), SvcParm.u64(offset),
                       cbp, buf)
        return st, bytes(buf.buffer[:cbp.value]), cbp.value

    def write(self, root: int, handle: int, offset: int, data: bytes,
              cb: int | None = None, pages: bool = False) -> tuple[int, int, int]:
        buf = SvcParm.pages(data) if pages else SvcParm.ptr(data)
        cbp = SvcParm.u32(len(data) if cb is None else cb)
        off = SvcParm.u64(offset)
        st = self.call(ShflFn.WRITE, SvcParm.u32(root), SvcParm.u64(handle), off, cbp, buf)
        return st, off.value, cbp.value

    def list(self, root: int, handle: int, flags: int = 0, cb: int = 4096, *,
             path: str | None = None, bufsize: int | None = None) -> Listing:
        """One LIST call; resume point preset to 0x55 and count to 0x77 to catch write-back."""
        buf = SvcParm.ptr(cb if bufsize is None else bufsize)
        cbp, resume, count = SvcParm.u32(cb), SvcParm.u32(0x55), SvcParm.u32(0x77)
        st = self.call(ShflFn.LIST, SvcParm.u32(root), SvcParm.u64(handle), SvcParm.u32(flags), cbp,
                       self.s(path) if path is not None else SvcParm.ptr(0), buf, resume, count)
        records = parse_dir_records(bytes(buf.buffer[:cbp.value]), count.value, self.utf8) \
            if st >= 0 else []
        return Listing(st, cbp.value, resume.value, count.value, records)

    def close(self, root: int, handle: int) -> int:
        return self.call(ShflFn.CLOSE, SvcParm.u32(root), SvcParm.u64(handle))

    def disconnect(self) -> None:
        self.svc.disconnect(self.client_id)


@pytest.fixture
def guest(svc: SharedFoldersService) -> Guest:
    """A UTF-8 client (like Linux vboxsf) connected to ``svc``."""
    return Guest(svc)

"""The seed corpus: one small program per interesting request shape.

``python -m fuzz.seeds DIR`` (re)writes the committed corpus ``fuzz/corpus``; the files are
deterministic, so regenerating changes nothing unless this module changed.  Every program
assumes the harness prelude: client 1, UTF-8, "sf" = root 0, "ro" = root 1.
"""

from __future__ import annotations

import ctypes
import hashlib
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

from hgcmlab.devices.vmmdev import builder
from hgcmlab.devices.vmmdev.abi import VMMDEV_REQUEST_HEADER_VERSION, HgcmCancel2, HgcmParmType, RequestHeader, RequestType
from hgcmlab.devices.vmmdev.builder import CallBuilder, Param
from fuzz.harness import create_parms, shfl_call, utf8
from hgcmlab.services.sharedfolders import strings
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn, ShflFsObjAttr, ShflFsObjInfo, ShflInfo, ShflRemove

CF = ShflCf
READ_OPEN = CF.ACCESS_READ | CF.ACT_OPEN_IF_EXISTS | CF.ACT_FAIL_IF_NEW
#: Guest-physical address of the data area the seeds use for LinAddr buffers.
DATA = 0x10000
#: Handle value the first CREATE of a run gets (generation 0, slot 1).
H1 = 1


def ram(offset: int, data: bytes) -> bytes:
    """Record: write ``data`` at ``offset`` (a multiple of 4)."""
    assert offset % 4 == 0
    payload = struct.pack("<H", offset // 4) + data
    return bytes([0]) + struct.pack("<H", len(payload)) + payload


def req(request: bytes | bytearray, slot: int = 1) -> bytes:
    """Record: place ``request`` at 0x1000 * slot and submit it."""
    return bytes([1 | (slot << 2)]) + struct.pack("<H", len(request)) + bytes(request)


def port(value: int) -> bytes:
    """Record: OUT ``value`` to the request port."""
    return bytes([2]) + struct.pack("<HI", 4, value & 0xFFFFFFFF)


def other(arg: int) -> bytes:
    """Record: fast-port read (even ``arg``) or host removal of "sf" (odd)."""
    return bytes([3 | (arg << 2)]) + struct.pack("<H", 0)


def create(root: int, path: str, flags: int) -> bytes:
    return req(shfl_call(1, ShflFn.CREATE, Param.u32(root), utf8(path), create_parms(flags)))


def read(root: int, handle: int, cb: int = 16) -> bytes:
    return req(shfl_call(1, ShflFn.READ, Param.u32(root), Param.u64(handle), Param.u64(0),
                         Param.u32(cb), Param.linaddr(DATA, cb, HgcmParmType.LinAddr_Out)))


def write(root: int, handle: int, data: bytes) -> bytes:
    return req(shfl_call(1, ShflFn.WRITE, Param.u32(root), Param.u64(handle), Param.u64(0),
                         Param.u32(len(data)), data))


def programs() -> Iterator[tuple[str, bytes]]:
    """(name, program) for every seed."""
    yield "empty", b""
    yield "open_read", create(0, "sub/file.txt", READ_OPEN) + read(0, H1)
    yield "dotdot", create(0, "../outside/secret.txt", READ_OPEN) + read(0, H1)
    yield "links", (create(0, "rel_out/secret.txt", READ_OPEN) + create(0, "abs_out", CF.DIRECTORY | READ_OPEN)
                    + create(0, "dangling", CF.ACCESS_WRITE) + create(0, "link_in/file.txt", READ_OPEN)
                    + create(0, "loop", READ_OPEN) + create(0, "fifo", READ_OPEN))
    yield "create_write", (create(0, "new.txt", CF.ACCESS_READWRITE) + write(0, H1, b"data")
                           + req(shfl_call(1, ShflFn.FLUSH, Param.u32(0), Param.u64(H1)))
                           + req(shfl_call(1, ShflFn.SET_FILE_SIZE, Param.u32(0), Param.u64(H1), Param.u64(2)))
                           + req(shfl_call(1, ShflFn.CLOSE, Param.u32(0), Param.u64(H1))))
    yield "ro_write", (create(1, "file.txt", CF.ACCESS_READWRITE) + write(1, H1, b"x")
                       + create(1, "new.txt", CF.ACCESS_WRITE)
                       + req(shfl_call(1, ShflFn.REMOVE, Param.u32(1), utf8("file.txt"), Param.u32(ShflRemove.FILE))))
    yield "list", (create(0, "sub", CF.DIRECTORY | READ_OPEN)
                   + req(shfl_call(1, ShflFn.LIST, Param.u32(0), Param.u64(H1), Param.u32(0), Param.u32(512),
                                   b"", Param.linaddr(DATA, 512, HgcmParmType.LinAddr_Out),
                                   Param.u32(0), Param.u32(0))))
    yield "info", (create(0, "sub/file.txt", READ_OPEN)
                   + req(shfl_call(1, ShflFn.INFORMATION, Param.u32(0), Param.u64(H1),
                                   Param.u32(ShflInfo.GET | ShflInfo.FILE), Param.u32(92), bytes(92)))
                   + req(shfl_call(1, ShflFn.INFORMATION, Param.u32(0), Param.u64(H1),
                                   Param.u32(ShflInfo.SET | ShflInfo.FILE), Param.u32(92),
                                   bytes(ShflFsObjInfo(Attr=ShflFsObjAttr(fMode=0o104777))))))
    yield "rename_remove", (req(shfl_call(1, ShflFn.RENAME, Param.u32(0), utf8("sub/file.txt"),
                                          utf8("../outside/stolen.txt"), Param.u32(1)))
                            + req(shfl_call(1, ShflFn.REMOVE, Param.u32(0), utf8("abs_out"),
                                            Param.u32(ShflRemove.SYMLINK))))
    yield "symlink_readlink", (req(shfl_call(1, ShflFn.SYMLINK, Param.u32(0), utf8("l1"), utf8("/etc/passwd"),
                                             bytes(92)))
                               + req(shfl_call(1, ShflFn.READLINK, Param.u32(0), utf8("rel_out"),
                                               Param.linaddr(DATA, 64, HgcmParmType.LinAddr_Out))))
    yield "copy", (req(shfl_call(1, ShflFn.COPY_FILE, Param.u32(0), utf8("sub/file.txt"), Param.u32(1),
                                 utf8("copy.txt"), Param.u32(0)))
                   + req(shfl_call(1, ShflFn.COPY_FILE, Param.u32(0), utf8("sub/file.txt"), Param.u32(0),
                                   utf8("copy.txt"), Param.u32(0))))
    yield "mappings", (req(shfl_call(1, ShflFn.QUERY_MAPPINGS, Param.u32(0), Param.u32(4), bytes(32)))
                       + req(shfl_call(1, ShflFn.QUERY_MAP_INFO, Param.u32(0), bytes(strings.empty_buffer(64)),
                                       bytes(strings.empty_buffer(64)), Param.u64(0), Param.u32(0)))
                       + req(shfl_call(1, ShflFn.UNMAP_FOLDER, Param.u32(0))) + other(1))
    yield "wait_cancel", (req(shfl_call(1, ShflFn.WAIT_FOR_MAPPINGS_CHANGES, Param.u32(2)), slot=2)
                          + req(bytes(HgcmCancel2(header=RequestHeader(size=ctypes.sizeof(HgcmCancel2),
                                                                       version=VMMDEV_REQUEST_HEADER_VERSION,
                                                                       requestType=RequestType.HGCMCancel2, rc=-1),
                                                  physReqToCancel=0x2000)))
                          + other(0))
    page_list = CallBuilder(1, ShflFn.READ)
    for param in (Param.u32(0), Param.u64(H1), Param.u64(0), Param.u32(8)):
        page_list.add(param)
    page_list.add_page_list(8, [DATA], flags=2, param_type=HgcmParmType.NoBouncePageList)
    yield "page_list", create(0, "sub/file.txt", READ_OPEN) + req(page_list.build())
    call32 = CallBuilder(1, ShflFn.QUERY_FEATURES, request_type=RequestType.HGCMCall32)
    call32.add(Param.u64(0))
    call32.add(Param.u32(0))
    yield "call32", req(call32.build())
    yield "transport", (port(0x3FFF0) + port(0xFFFFFFF0) + req(builder.disconnect(1))
                        + req(builder.connect("VBoxSharedFolders"), slot=0)
                        + ram(DATA, b"\xff" * 16) + port(DATA))


def write_corpus(directory: Path) -> int:
    """Write every seed as ``<name>-<sha1 prefix>``; returns how many."""
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for name, data in programs():
        digest = hashlib.sha1(data).hexdigest()[:12]
        (directory / f"{name}-{digest}").write_bytes(data)
        count += 1
    return count


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "corpus"
    print(write_corpus(target))

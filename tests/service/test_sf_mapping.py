"""Mappings: QUERY_MAPPINGS, QUERY_MAP_NAME, MAP/UNMAP, SET_UTF8, host add/remove, info."""

from __future__ import annotations

import struct
from pathlib import Path

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders import strings
from hgcmlab.services.sharedfolders.abi import ShflFn, ShflMf, ShflMif
from hgcmlab.services.sharedfolders.service import SharedFoldersService
from tests.service.conftest import Guest, Tree


def query(g: Guest, flags: int, capacity: int, bufsize: int | None = None) -> tuple[int, int, list[tuple[int, int]]]:
    count = SvcParm.u32(capacity)
    arr = SvcParm.ptr(8 * capacity if bufsize is None else bufsize)
    st = g.call(ShflFn.QUERY_MAPPINGS, SvcParm.u32(flags), count, arr)
    entries = [struct.unpack_from("<II", arr.buffer, i * 8) for i in range(len(arr.buffer) // 8)]
    return st, count.value, entries


def test_query_mappings(svc: SharedFoldersService, tree: Tree) -> None:
    g = Guest(svc, utf8=False)
    assert query(g, 0, 4) == (0, 2, [(1, 0), (1, 1), (0, 0), (0, 0)])
    assert query(g, 0, 1) == (Status.VINF_BUFFER_OVERFLOW, 2, [(1, 0)])
    assert query(g, 0, 0, 0)[:2] == (Status.VINF_BUFFER_OVERFLOW, 2)
    assert query(g, 0, 2, 17)[0] == 0  # 17 // 8 == 2
    assert query(g, 0, 2, 15)[0] == Status.VERR_INVALID_PARAMETER
    assert query(g, 0x2, 2)[0] == Status.VERR_INVALID_PARAMETER
    assert query(g, 0x100, 2)[0] == Status.VERR_INVALID_PARAMETER
    assert svc.add_mapping("auto", str(tree.share / "sub"), auto_mount=True) == 0
    assert query(g, ShflMf.AUTOMOUNT, 4)[:2] == (0, 1)
    assert query(g, ShflMf.AUTOMOUNT, 4)[2][0] == (1, 2)
    assert not g.svc.clients[g.client_id].utf8
    query(g, ShflMf.UTF8, 4)
    assert g.svc.clients[g.client_id].utf8  # side effect (quirk 20)


def test_query_map_name_utf8_and_utf16(svc: SharedFoldersService) -> None:
    g8 = Guest(svc)
    buf = SvcParm.ptr(strings.empty_buffer(20))
    assert g8.call(ShflFn.QUERY_MAP_NAME, SvcParm.u32(1), buf) == 0
    assert strings.header(buf.buffer) == (16, 2) and bytes(buf.buffer[4:7]) == b"ro\0"
    small = SvcParm.ptr(strings.empty_buffer(6))
    assert g8.call(ShflFn.QUERY_MAP_NAME, SvcParm.u32(1), small) == Status.VERR_BUFFER_OVERFLOW
    assert strings.header(small.buffer) == (2, 2)
    assert g8.call(ShflFn.QUERY_MAP_NAME, SvcParm.u32(9), SvcParm.ptr(strings.empty_buffer(20))) == \
        Status.VERR_INVALID_PARAMETER
    assert g8.call(ShflFn.QUERY_MAP_NAME, SvcParm.u32(1), SvcParm.ptr(4)) == Status.VERR_INVALID_PARAMETER
    g16 = Guest(svc, utf8=False)
    buf = SvcParm.ptr(strings.empty_buffer(12))
    assert g16.call(ShflFn.QUERY_MAP_NAME, SvcParm.u32(0), buf) == 0
    assert strings.header(buf.buffer) == (8, 4) and bytes(buf.buffer[4:10]) == "sf\0".encode("utf-16-le")
    tiny = SvcParm.ptr(strings.empty_buffer(9))  # u16Size 5 < stored 6
    assert g16.call(ShflFn.QUERY_MAP_NAME, SvcParm.u32(0), tiny) == Status.VERR_INVALID_PARAMETER


def test_map_folder_rules(svc: SharedFoldersService) -> None:
    g = Guest(svc)
    assert g.map("SF") == 0  # case-insensitive name match
    assert g.map("sf") == 0  # mapping twice is counted
    def mapst(name: str, delim: int, case: int = 1) -> int:
        return g.call(ShflFn.MAP_FOLDER, g.s(name), SvcParm.u32(0), SvcParm.u32(delim), SvcParm.u32(case))
    assert mapst("nope", 0x2F) == Status.VERR_FILE_NOT_FOUND
    assert mapst("ro", 0x5C) == Status.VERR_INVALID_PARAMETER  # delimiter differs from the first
    assert mapst("ro", ord(":")) == Status.VERR_INVALID_PARAMETER
    assert mapst("sf", 0x2F, 0) == Status.VERR_INCOMPATIBLE_CONFIG
    unmap = lambda r: g.call(ShflFn.UNMAP_FOLDER, SvcParm.u32(r))  # noqa: E731
    assert unmap(0) == 0 and unmap(0) == 0
    assert unmap(0) == Status.VERR_INVALID_HANDLE  # H11
    assert unmap(1) == Status.VERR_INVALID_HANDLE
    assert unmap(40) == Status.VERR_FILE_NOT_FOUND
    assert svc.mappings[0].use_count == 0
    assert mapst("sf", 0x2F, 0) == 0  # nobody has it mapped now


def test_map_folder_utf16_length_fudge(svc: SharedFoldersService) -> None:
    g = Guest(svc, utf8=False)
    raw = bytearray(strings.build("sf", utf8=False, size=8))
    struct.pack_into("<H", raw, 2, 6)  # length counted the terminator
    name = SvcParm.ptr(raw)
    root = SvcParm.u32(7)
    assert g.call(ShflFn.MAP_FOLDER, name, root, SvcParm.u32(0x2F), SvcParm.u32(1)) == 0
    assert root.value == 0 and strings.header(name.buffer)[1] == 4
    bad = SvcParm.ptr(bytes(strings.build("sf", utf8=False))[:5])
    assert g.call(ShflFn.MAP_FOLDER, bad, SvcParm.u32(0), SvcParm.u32(0x2F), SvcParm.u32(1)) == \
        Status.VERR_INVALID_PARAMETER
    old = SvcParm.u32(0)
    assert g.call(ShflFn.MAP_FOLDER_OLD, g.s("ro"), old, SvcParm.u32(0x2F)) == 0 and old.value == 1


def test_client_must_map_root_itself(svc: SharedFoldersService) -> None:
    a, b = Guest(svc), Guest(svc)
    root = a.map("sf")
    st, _ = b.create(root, "sub/file.txt", 0x1100)
    assert st == Status.VERR_INVALID_PARAMETER
    st, _ = b.create(50, "x", 0x1100)
    assert st == Status.VERR_INVALID_PARAMETER


def test_host_add_remove_and_root_reuse(svc: SharedFoldersService, tree: Tree, tmp_path: Path) -> None:
    assert svc.add_mapping("SF", str(tree.share)) == Status.VERR_ALREADY_EXISTS
    assert svc.add_mapping("x", str(tmp_path / "missing")) == Status.VERR_FILE_NOT_FOUND
    assert svc.remove_mapping("nope") == Status.VERR_FILE_NOT_FOUND
    version = svc.table.version
    assert svc.remove_mapping("RO") == 0 and 1 not in svc.mappings
    assert svc.table.version == version + 1
    assert svc.add_mapping("again", str(tree.ro)) == 0
    assert svc.mappings[1].name == "again" and svc.table.root_versions[1] == 3
    for i in range(62):
        assert svc.add_mapping(f"m{i}", str(tree.ro)) == 0
    assert svc.add_mapping("full", str(tree.ro)) == Status.VERR_TOO_MUCH_DATA


def test_remove_in_use_leaves_placeholder(svc: SharedFoldersService) -> None:  # H13
    g = Guest(svc)
    root = g.map("sf")
    h = g.open(root, "sub/file.txt")
    assert svc.remove_mapping("sf") == Status.VINF_PERMISSION_DENIED
    assert svc.mappings[root].placeholder
    assert g.read(root, h, 0, 5)[0] == Status.VERR_ACCESS_DENIED
    assert g.create(root, "sub/file.txt", 0x1100)[0] == Status.VERR_NOT_FOUND
    assert g.call(ShflFn.MAP_FOLDER, g.s("sf"), SvcParm.u32(0), SvcParm.u32(0x2F), SvcParm.u32(1)) == \
        Status.VERR_FILE_NOT_FOUND
    assert g.close(root, h) == 0  # CLOSE has no mapping check
    assert g.call(ShflFn.UNMAP_FOLDER, SvcParm.u32(root)) == 0
    assert root not in svc.mappings


def test_stale_root_after_reuse_does_not_reach_new_share(svc: SharedFoldersService, tree: Tree) -> None:
    g = Guest(svc)
    root = g.map("sf")
    h = g.open(root, "sub/file.txt")
    svc.remove_mapping("sf")
    g.call(ShflFn.UNMAP_FOLDER, SvcParm.u32(root))
    assert svc.add_mapping("other", str(tree.ro)) == 0 and svc.mappings[root].name == "other"
    assert g.read(root, h, 0, 5)[0] in (Status.VERR_ACCESS_DENIED, Status.VERR_INVALID_HANDLE)


def test_set_utf8_and_set_symlinks_ignore_parameters(svc: SharedFoldersService) -> None:
    g = Guest(svc, utf8=False)
    assert g.call(ShflFn.SET_UTF8, SvcParm.u32(1), SvcParm.u32(2)) == 0
    assert g.call(ShflFn.SET_SYMLINKS, SvcParm.u32(1)) == 0
    c = svc.clients[g.client_id]
    assert c.utf8 and c.symlinks


def test_disconnect_closes_handles_and_unmaps(svc: SharedFoldersService) -> None:  # H09
    a = Guest(svc)
    root = a.map("sf")
    handles = [a.open(root, "sub/file.txt") for _ in range(20)]
    a.disconnect()
    assert svc.mappings[root].use_count == 0
    b = Guest(svc)
    assert b.map("sf") == root
    for h in handles:
        assert b.read(root, h, 0, 1)[0] == Status.VERR_INVALID_HANDLE
    assert not svc.handles.owned_by(a.client_id)


def test_query_map_info(svc: SharedFoldersService) -> None:
    g = Guest(svc)
    g.map("sf")
    name, mp = SvcParm.ptr(strings.empty_buffer(16)), SvcParm.ptr(strings.empty_buffer(16))
    flags, ver = SvcParm.u64(0), SvcParm.u32(0)
    assert g.call(ShflFn.QUERY_MAP_INFO, SvcParm.u32(0), name, mp, flags, ver) == 0
    assert flags.value == ShflMif.WRITABLE | ShflMif.HOST_ICASE | ShflMif.GUEST_ICASE
    assert ver.value == 1 and bytes(name.buffer[4:7]) == b"sf\0"
    assert g.call(ShflFn.QUERY_MAP_INFO, SvcParm.u32(0), name, mp, SvcParm.u64(4), ver) == \
        Status.VERR_INVALID_PARAMETER

"""Saved state of the Shared Folders service (services/sharedfolders/saved_state.py), both resolvers.

The pattern: build state with guest calls, ``save_state``, pass it through a JSON round trip
(bytes tagged), then run the same probe calls on the original service and on a fresh
service that loaded the state: the results must be identical.  Probes only read the host,
so both services see the same host objects; host-changing calls are checked against values
known independently.

VirtualBox itself keeps no handles across a restore (VBoxSharedFoldersSvc.cpp:svcSaveState
saves client data and mappings only); docs/deviations.md SF21 states what we keep instead
and what a handle whose host object changed answers.
"""

from __future__ import annotations

import base64
import errno
import copy
import ctypes
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hgcmlab.runtime.faults import Fault, inject
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import ASYNC, HgcmCall, SvcParm
from hgcmlab.services.sharedfolders.abi import (
    ShflCf,
    ShflCreateResult,
    ShflErrorStyle,
    ShflFn,
    ShflFsObjInfo,
    ShflInfo,
    ShflList,
    ShflRename,
    ShflVolInfo,
)
from hgcmlab.services.sharedfolders.reproducible import Reproducible
from hgcmlab.services.sharedfolders.service import SharedFoldersService
from hgcmlab.services.sharedfolders.state_parse import StateError
from tests.service.conftest import READ_OPEN, Guest, Tree

DIR_OPEN = ShflCf.DIRECTORY | READ_OPEN
RW_CREATE = ShflCf.ACCESS_READWRITE | ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_CREATE_IF_NEW
APPEND_CREATE = (ShflCf.ACCESS_WRITE | ShflCf.ACCESS_APPEND | ShflCf.ACT_OPEN_IF_EXISTS
                 | ShflCf.ACT_CREATE_IF_NEW)
WAIT_TAG = 7


# --- plain data ---------------------------------------------------------------------------


def assert_plain(value: object, where: str = "state") -> None:
    """Only dict (str keys), list, str, int, bool, None and bytes, all the way down."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), f"{where}: key {key!r}"
            assert_plain(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_plain(item, f"{where}[{index}]")
    else:
        assert value is None or type(value) in (str, int, bool, bytes), f"{where}: {type(value)}"


def _encode(value: object) -> object:
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: object) -> object:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def json_round_trip(state: dict) -> dict:
    """The state through JSON text (bytes as tagged base64): nothing pickled, nothing shared."""
    back = _decode(json.loads(json.dumps(_encode(state))))
    assert isinstance(back, dict)
    return back


# --- helpers ------------------------------------------------------------------------------


def fresh_like(svc: SharedFoldersService,
               reproducible: Reproducible | None = None) -> SharedFoldersService:
    """A new service with the same resolver and no mappings at all."""
    return SharedFoldersService(use_openat2=svc.table.use_openat2, reproducible=reproducible)


def rebind(guest: Guest, svc: SharedFoldersService) -> Guest:
    """The same client (id, encoding) talking to ``svc`` (restored: no connect)."""
    twin = copy.copy(guest)
    twin.svc = svc
    twin.completions = []
    return twin


def info(g: Guest, root: int, handle: int, flags: int = ShflInfo.FILE) -> tuple[int, bytes]:
    size = ctypes.sizeof(ShflVolInfo if flags & ShflInfo.VOLUME else ShflFsObjInfo)
    buf, cb = SvcParm.ptr(size), SvcParm.u32(size)
    st = g.call(ShflFn.INFORMATION, SvcParm.u32(root), SvcParm.u64(handle), SvcParm.u32(flags),
                cb, buf)
    return st, bytes(buf.buffer[:cb.value])


_ATIME = slice(ShflFsObjInfo.AccessTime.offset, ShflFsObjInfo.AccessTime.offset + 8)


def no_atime(raw: bytes) -> bytes:
    """Object info without the host access time: the first probe's reads may move it
    (relatime), which is the host's doing, not state either service keeps."""
    out = bytearray(raw)
    out[_ATIME] = bytes(8)
    return bytes(out)


def wait_call(g: Guest, version: int) -> HgcmCall:
    """A WAIT_FOR_MAPPINGS_CHANGES call as the device hands it over (tag WAIT_TAG)."""
    return HgcmCall(g.client_id, int(ShflFn.WAIT_FOR_MAPPINGS_CHANGES), [SvcParm.u32(version)],
                    tag=WAIT_TAG, on_complete=lambda c, st: g.completions.append((c, st)))


@dataclass
class Scene:
    """A service with every kind of state, and the values the probes need."""

    a: Guest            # UTF-8, '/', case-insensitive map of "sf"
    b: Guest            # UTF-16, '\\', Windows errors, symlink mode, "sf" mapped twice, "ro"
    c: Guest            # cancel-next-wait set
    root: int
    b_root: int
    ro_root: int
    read: int           # sub/file.txt, read access
    rw: int             # sub/new.txt, read/write, holds b"abc"
    append: int         # sub/app.txt, write|append, holds b"12"
    listing: int        # share root, plain stream mid-way with a parked entry
    search: int         # share root, search stream "sub/*" mid-way
    closed: int         # a value handed out and closed again
    version: int        # mapping table version the wait was issued with


def build_scene(svc: SharedFoldersService) -> Scene:
    a = Guest(svc)
    root = a.map("sf", case_sensitive=False)
    read = a.open(root, "SUB/FILE.TXT")  # case-corrected to sub/file.txt
    rw = a.open(root, "sub/new.txt", RW_CREATE)
    assert a.write(root, rw, 0, b"abc")[0] == 0
    append = a.open(root, "sub/app.txt", APPEND_CREATE)
    assert a.write(root, append, 0, b"12")[0] == 0
    listing = a.open(root, "", DIR_OPEN)
    first = a.list(root, listing, cb=300)  # ".", "..", then "abs_out" does not fit: parked
    assert first.names == [".", ".."]
    search = a.open(root, "", DIR_OPEN)
    one = a.list(root, search, ShflList.RETURN_ONE, path="sub/*")
    assert one.names == ["."]
    gone = a.open(root, "sub/file.txt")
    assert a.close(root, gone) == 0  # a freed slot with a used generation

    b = Guest(svc, utf8=False)
    b_root = b.map("sf", delimiter="\\", case_sensitive=False)
    assert b.map("sf", delimiter="\\", case_sensitive=False) == b_root
    ro_root = b.map("ro", delimiter="\\")
    assert b.call(ShflFn.SET_SYMLINKS) == 0
    assert b.call(ShflFn.SET_ERROR_STYLE, SvcParm.u32(ShflErrorStyle.WINDOWS), SvcParm.u32(0)) == 0
    version = svc.table.version
    assert svc.call(wait_call(b, version)) is ASYNC
    assert b.completions == []

    c = Guest(svc)
    assert c.call(ShflFn.CANCEL_MAPPINGS_CHANGES_WAITS) == 0
    return Scene(a, b, c, root, b_root, ro_root, read, rw, append, listing, search, gone, version)


def probe(s: Scene, a: Guest, b: Guest, c: Guest) -> list[object]:
    """Calls that only read the host; every result the guest sees."""
    out: list[object] = []
    rest = a.list(s.root, s.listing)
    out.append((rest.status, rest.names, rest.cb, rest.resume,
                [(r.name, no_atime(bytes(r.info)), r.u16_size) for r in rest.records]))
    out.append(a.list(s.root, s.listing).status)
    more = a.list(s.root, s.search, path="ignored")  # the search stream keeps its filter
    out.append((more.status, more.names, [no_atime(bytes(r.info)) for r in more.records]))
    out.append(a.read(s.root, s.read, 1, 10))
    out.append(a.read(s.root, s.rw, 0, 10))
    for handle in (s.read, s.listing):
        st, raw = info(a, s.root, handle)
        out.append((st, no_atime(raw)))
    st, cp = a.create(s.root, "Sub/Empty", DIR_OPEN)  # case correction; next handle value
    out.append((st, cp.Handle, cp.Result))
    out.append(a.read(s.root, s.closed, 0, 1)[0])
    # The UTF-16 Windows-style client: its delimiter, error style and symlink mode.
    st, cp = b.create(s.b_root, "nodir\\x", READ_OPEN)
    out.append((st, cp.Result))
    link = b.create(s.b_root, "link_in", ShflCf.LOOKUP)[1]
    out.append(link.Info.Attr.fMode)
    ro_dir = b.open(s.ro_root, "", DIR_OPEN)
    out.append(b.list(s.ro_root, ro_dir).names)
    mappings = SvcParm.ptr(8 * 4)
    out.append((a.call(ShflFn.QUERY_MAPPINGS, SvcParm.u32(0), SvcParm.u32(4), mappings),
                bytes(mappings.buffer)))
    parm = SvcParm.u32(s.version)
    out.append((c.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, parm), parm.value))  # cancelled once
    return out


@pytest.fixture
def scene(svc: SharedFoldersService) -> Scene:
    return build_scene(svc)


Restore = Callable[..., tuple[SharedFoldersService, list[str], HgcmCall | None]]


@pytest.fixture
def restore() -> Iterator[Restore]:
    """``restore(svc, state, b=None, reproducible=None)``: load ``state`` into a fresh
    service like ``svc`` (closed after the test), handing back a rebuilt wait of guest
    ``b`` under WAIT_TAG; returns the service, the problem lines and the rebuilt call."""
    made: list[SharedFoldersService] = []

    def load(svc: SharedFoldersService, state: dict, b: Guest | None = None,
             reproducible: Reproducible | None = None
             ) -> tuple[SharedFoldersService, list[str], HgcmCall | None]:
        new = fresh_like(svc, reproducible)
        made.append(new)
        rebuilt = wait_call(b, 0) if b is not None else None
        pending = {WAIT_TAG: rebuilt} if rebuilt is not None else {}
        return new, new.load_state(state, pending), rebuilt

    yield load
    for service in made:
        service.close()


# --- tests --------------------------------------------------------------------------------


def test_state_is_plain_data_and_survives_json(svc: SharedFoldersService, scene: Scene) -> None:
    state = svc.save_state()
    assert_plain(state)
    assert json_round_trip(state) == state
    with pytest.raises(AssertionError):
        assert_plain({"x": (1, 2)})  # the walker itself rejects what is not plain


def test_restored_service_answers_exactly_like_the_original(
        restore: Restore, svc: SharedFoldersService, scene: Scene) -> None:
    state = json_round_trip(svc.save_state())
    expected = probe(scene, scene.a, scene.b, scene.c)
    new, problems, _ = restore(svc, state, rebind(scene.b, svc))
    assert problems == []
    got = probe(scene, rebind(scene.a, new), rebind(scene.b, new), rebind(scene.c, new))
    assert got == expected
    # The probes saw real continuation, not two empty answers.
    assert expected[0][1] == ["abs_out", "dangling", "fifo", "link_in", "loop", "rel_out", "sub"]
    assert expected[2][:2] == (Status.VINF_SUCCESS,
                               ["..", "app.txt", "empty", "file.txt", "new.txt"])
    assert expected[3] == (Status.VINF_SUCCESS, b"ello", 4)


def test_pending_wait_completes_through_the_rebuilt_call(
        restore: Restore, svc: SharedFoldersService, scene: Scene,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    extra = tmp_path_factory.mktemp("extra")
    state = json_round_trip(svc.save_state())
    b2 = rebind(scene.b, svc)
    new, problems, rebuilt = restore(svc, state, b2)
    assert problems == [] and rebuilt is not None and not rebuilt.completed
    assert svc.add_mapping("extra", str(extra)) == 0
    assert new.add_mapping("extra", str(extra)) == 0
    # mappings.cpp:vbsfMappingsAdd -> the waits complete with VERR_CANCELLED and the
    # new version, in both services.
    assert [(st, c.params[0].value) for c, st in scene.b.completions] == \
        [(Status.VERR_CANCELLED, scene.version + 1)]
    assert [(st, c is rebuilt, c.params[0].value) for c, st in b2.completions] == \
        [(Status.VERR_CANCELLED, True, scene.version + 1)]


def test_a_wait_not_handed_back_is_a_problem_line(
        restore: Restore, svc: SharedFoldersService, scene: Scene) -> None:
    new, problems, _ = restore(svc, json_round_trip(svc.save_state()))
    assert problems == [f"client {scene.b.client_id}: its pending mappings-change wait "
                        f"(tag {WAIT_TAG}) was not handed back; dropped"]


def test_writes_continue_on_restored_handles(
        restore: Restore, svc: SharedFoldersService, scene: Scene, tree: Tree) -> None:
    state = json_round_trip(svc.save_state())
    new, problems, _ = restore(svc, state, rebind(scene.b, svc))
    a = rebind(scene.a, new)
    assert problems == []
    assert a.write(scene.root, scene.rw, 3, b"def")[:2] == (Status.VINF_SUCCESS, 6)
    assert a.write(scene.root, scene.append, 0, b"34")[0] == Status.VINF_SUCCESS
    assert (tree.share / "sub/new.txt").read_bytes() == b"abcdef"
    assert (tree.share / "sub/app.txt").read_bytes() == b"1234"  # still appending
    # Still opened for reading only: the write fails on the fd (EBADF) as on the original.
    assert a.write(scene.root, scene.read, 0, b"x") == \
        scene.a.write(scene.root, scene.read, 0, b"x") == (Status.VERR_INVALID_HANDLE, 0, 0)
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello"
    # The restored client still holds its handles: CLOSE frees them.
    assert a.close(scene.root, scene.rw) == Status.VINF_SUCCESS
    assert a.close(scene.root, scene.rw) == Status.VERR_INVALID_HANDLE


def test_a_file_renamed_while_open_is_found_where_it_is(
        restore: Restore, svc: SharedFoldersService, guest: Guest, tree: Tree) -> None:
    root = guest.map("sf")
    handle = guest.open(root, "sub/file.txt")
    st = guest.call(ShflFn.RENAME, SvcParm.u32(root), guest.s("sub/file.txt"), guest.s("moved.txt"),
                    SvcParm.u32(ShflRename.FILE))
    assert st == Status.VINF_SUCCESS
    new, problems, _ = restore(svc, json_round_trip(svc.save_state()))
    assert problems == []
    assert rebind(guest, new).read(root, handle, 0, 10) == (Status.VINF_SUCCESS, b"hello", 5)


def test_changed_host_objects_are_problem_lines_and_invalid_handles(
        restore: Restore, svc: SharedFoldersService, scene: Scene, tree: Tree) -> None:
    state = json_round_trip(svc.save_state())
    with open(tree.share / "sub/file.txt", "ab") as grown:
        grown.write(b"!")                                 # read: size changed
    os.unlink(tree.share / "sub/new.txt")                 # rw: gone
    os.unlink(tree.share / "sub/app.txt")                 # append: another object, same size
    (tree.share / "sub/app.txt").write_bytes(b"12")
    new, problems, _ = restore(svc, state, rebind(scene.b, svc))
    a = rebind(scene.a, new)
    who = f"of client {scene.a.client_id} (sf:/sub/"
    assert problems == [
        f"handle {scene.read:#x} {who}file.txt): host object changed since the save "
        "(size 5 -> 6); it now answers VERR_INVALID_HANDLE",
        f"handle {scene.rw:#x} {who}new.txt): host object cannot be re-opened: "
        "VERR_FILE_NOT_FOUND; it now answers VERR_INVALID_HANDLE",
        f"handle {scene.append:#x} {who}app.txt): host object changed since the save "
        "(another object); it now answers VERR_INVALID_HANDLE",
    ]
    for handle in (scene.read, scene.rw, scene.append):
        assert a.read(scene.root, handle, 0, 4)[0] == Status.VERR_INVALID_HANDLE
        assert a.close(scene.root, handle) == Status.VERR_INVALID_HANDLE
    # Everything else was restored: the listing continues.
    assert a.list(scene.root, scene.listing).names[0] == "abs_out"


def test_a_vanished_share_folder_restores_without_it(
        restore: Restore, svc: SharedFoldersService, guest: Guest, tree: Tree) -> None:
    root = guest.map("ro")
    handle = guest.open(root, "file.txt")
    state = json_round_trip(svc.save_state())
    os.rename(tree.ro, tree.base / "ro-moved")
    new, problems, _ = restore(svc, state)
    g = rebind(guest, new)
    assert problems == [
        f"share 'ro' (root {root}, {tree.ro}): cannot open the folder: VERR_FILE_NOT_FOUND; "
        "its paths answer VERR_NOT_FOUND",
        f"handle {handle:#x} of client {guest.client_id} (ro:/file.txt): its share is not "
        "available; it now answers VERR_INVALID_HANDLE"]
    assert g.create(root, "file.txt", READ_OPEN)[0] == Status.VERR_NOT_FOUND
    assert g.read(root, handle, 0, 1)[0] == Status.VERR_INVALID_HANDLE
    os.rename(tree.base / "ro-moved", tree.ro)


def test_handles_of_a_removed_share_keep_answering(
        restore: Restore, svc: SharedFoldersService, guest: Guest) -> None:
    root = guest.map("ro")
    handle = guest.open(root, "file.txt")
    assert svc.remove_mapping("ro") == Status.VINF_PERMISSION_DENIED  # placeholder
    assert guest.read(root, handle, 0, 1)[0] == Status.VERR_ACCESS_DENIED
    new, problems, _ = restore(svc, json_round_trip(svc.save_state()))
    g = rebind(guest, new)
    assert problems == []
    assert g.read(root, handle, 0, 1)[0] == Status.VERR_ACCESS_DENIED
    assert g.close(root, handle) == Status.VINF_SUCCESS
    unmap = g.call(ShflFn.UNMAP_FOLDER, SvcParm.u32(root))
    assert unmap == Status.VINF_SUCCESS and root not in new.mappings  # placeholder freed


def test_reproducible_nodes_times_and_share_numbers_continue(
        restore: Restore, request: pytest.FixtureRequest, svc: SharedFoldersService, tree: Tree,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    second = tmp_path_factory.mktemp("second")
    clock = {"now": 1000}
    settings = Reproducible(5_000_000_000, lambda: clock["now"])
    old = fresh_like(svc, settings)
    request.addfinalizer(old.close)
    assert old.add_mapping("sf", str(tree.share)) == 0
    g = Guest(old)
    root = g.map("sf")
    clock["now"] = 2000
    created = g.open(root, "sub/made.txt", RW_CREATE)  # new node, times at 2000 ns
    state = json_round_trip(old.save_state())
    clock["now"] = 3000
    new, problems, _ = restore(old, state, reproducible=Reproducible(0, lambda: clock["now"]))
    assert problems == []
    results = []
    for service in (old, new):
        guest = rebind(g, service)
        d = guest.open(root, "", DIR_OPEN)
        listed = guest.list(root, d)
        assert service.add_mapping("second", str(second)) == 0
        other = guest.map("second")
        top = guest.open(other, "", DIR_OPEN)
        results.append((info(guest, root, created), [(r.name, r.info.Attr.u.INodeId)
                                                     for r in listed.records],
                        info(guest, other, top, ShflInfo.VOLUME)))
    assert results[0] == results[1]
    made = ShflFsObjInfo.from_buffer_copy(results[0][0][1])
    assert made.BirthTime == 5_000_000_000 + 2000  # the restored epoch and node
    assert ShflVolInfo.from_buffer_copy(results[0][2][1]).ulSerial == 2


def test_mode_mismatch_is_reported(
        restore: Restore, svc: SharedFoldersService, guest: Guest) -> None:
    guest.map("sf")
    new, problems, _ = restore(svc, json_round_trip(svc.save_state()),
                               reproducible=Reproducible(0, lambda: 0))
    assert problems == ["shares: saved without reproducible mode, restored with it: the "
                        "guest now sees reproducible object information"]


@pytest.mark.parametrize("damage", [
    lambda s: s.update(version=99),
    lambda s: s["mappings"].update(slots=[]),
    lambda s: s["handles"].update(cursor=0),
    lambda s: s["handles"]["live"][0].update(kind="pipe"),
    lambda s: s["handles"]["live"][0]["path"].update(components=[b".."]),
    lambda s: s["handles"]["live"][0].update(client_id=999),
    lambda s: s["clients"][0].update(map_counts=[]),
    lambda s: s["clients"][0].update(utf8=1),
    lambda s: s["handles"]["live"][3]["saved"]["info"].pop("ino"),
], ids=["version", "slots", "cursor", "kind", "dotdot", "owner", "use-count", "type", "info"])
def test_malformed_state_is_one_line_and_changes_nothing(
        request: pytest.FixtureRequest, svc: SharedFoldersService, scene: Scene,
        damage: object) -> None:
    state = json_round_trip(svc.save_state())
    damage(state)  # type: ignore[operator]
    new = fresh_like(svc)
    request.addfinalizer(new.close)
    assert new.add_mapping("kept", str(Path(svc.mappings[0].host_path))) == 0
    user = Guest(new)
    kept = user.map("kept")
    handle = user.open(kept, "sub/file.txt")
    with pytest.raises(StateError) as err:
        new.load_state(state, {})
    assert "\n" not in str(err.value) and str(err.value).startswith("saved Shared Folders state")
    assert [m.name for m in new.mappings.values()] == ["kept"]
    assert user.read(kept, handle, 0, 5) == (Status.VINF_SUCCESS, b"hello", 5)


def test_create_result_after_restore_uses_restored_cursor(
        restore: Restore, svc: SharedFoldersService, guest: Guest) -> None:
    """A failed open moves the next-fit cursor (vbsf.cpp:vbsfOpenFile); the saved cursor
    keeps that, so the next handle value is the same after a restore."""
    root = guest.map("sf")
    st, cp = guest.create(root, "missing.txt", READ_OPEN)
    assert (st, cp.Result) == (Status.VINF_SUCCESS, ShflCreateResult.FILE_NOT_FOUND)
    new, problems, _ = restore(svc, json_round_trip(svc.save_state()))
    assert problems == []
    assert rebind(guest, new).open(root, "sub/file.txt") == guest.open(root, "sub/file.txt") == 2


def test_a_tampered_state_never_opens_outside_the_share(
        restore: Restore, svc: SharedFoldersService, scene: Scene, tree: Tree) -> None:
    """A saved location is re-opened through the confined resolver like a guest open: a
    state edited to point through an escaping link (abs_out -> outside) reaches nothing."""
    state = json_round_trip(svc.save_state())
    record = next(h for h in state["handles"]["live"] if h["value"] == scene.read)
    record["object"]["at"]["components"] = [b"abs_out", b"secret.txt"]
    new, problems, _ = restore(svc, state, rebind(scene.b, svc))
    assert problems == [
        f"handle {scene.read:#x} of client {scene.a.client_id} (sf:/sub/file.txt): host "
        "object cannot be re-opened: VERR_ACCESS_DENIED; it now answers VERR_INVALID_HANDLE"]
    assert rebind(scene.a, new).read(scene.root, scene.read, 0, 9)[0] == Status.VERR_INVALID_HANDLE


def test_an_object_that_cannot_be_examined_at_save_is_a_problem_at_load(
        restore: Restore, svc: SharedFoldersService, guest: Guest) -> None:
    root = guest.map("sf")
    handle = guest.open(root, "sub/file.txt")
    with inject(Fault("fcntl", errno.EIO)):
        state = json_round_trip(svc.save_state())  # never raises for a host failure
    _new, problems, _ = restore(svc, state)
    assert problems == [
        f"handle {handle:#x} of client {guest.client_id} (sf:/sub/file.txt): its host object "
        "could not be examined at save time: VERR_DEV_IO_ERROR; it now answers VERR_INVALID_HANDLE"]

"""ReproducibleRoot, field by field (services/sharedfolders/reproducible.py): what a share
in reproducible mode shows for each host-dependent field, and that host effects and
statuses stay those of HostRoot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hgcmlab.runtime.fs import Access, Disposition, HostRoot, OpenAction, RtFs, obj_info
from hgcmlab.runtime.paths import GuestPath
from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.sharedfolders.reproducible import Reproducible, ReproducibleRoot

EPOCH = 1_704_067_200_000_000_000


class Clock:
    """Virtual cycles the test moves by hand."""

    def __init__(self) -> None:
        self.cycles = 1000

    def __call__(self) -> int:
        return self.cycles


def p(text: str) -> GuestPath:
    return GuestPath(tuple(part.encode() for part in text.split("/") if part))


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    root.mkdir()
    (root / "f.txt").write_bytes(b"x" * 5000)
    (root / "d").mkdir()
    (root / "d" / "inner").mkdir()
    for path in (root / "f.txt", root / "d", root):
        os.utime(path, ns=(123_456_789, 987_654_321))
    return root


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=[True, False], ids=["openat2", "walk"])
def root(request: pytest.FixtureRequest, share: Path, clock: Clock) -> ReproducibleRoot:
    settings = Reproducible(EPOCH, clock)
    made = settings.root_factory()(str(share), use_openat2=request.param)
    assert isinstance(made, ReproducibleRoot)
    return made


def test_unchanged_objects_show_the_epoch_and_fixed_owner(root: ReproducibleRoot) -> None:
    info = root.query_info(p("f.txt"), follow=True)
    assert (info.access_ns, info.modification_ns, info.change_ns, info.birth_ns) == (EPOCH,) * 4
    assert (info.uid, info.gid, info.dev) == (0, 0, 1)
    assert info.size == 5000 and info.allocated == 8192  # real size, rounded to 4096
    assert info.mode & RtFs.TYPE_MASK == RtFs.TYPE_FILE


def test_directories_show_size_zero_and_one_link(root: ReproducibleRoot) -> None:
    info = root.query_info(p("d"), follow=True)  # two links and 4096 bytes on ext4
    assert (info.size, info.allocated, info.nlink) == (0, 0, 1)


def test_node_ids_count_objects_by_first_use(root: ReproducibleRoot) -> None:
    assert root.query_info(p("d"), follow=True).ino == 1
    assert root.query_info(p("f.txt"), follow=True).ino == 2
    assert root.query_info(p("d"), follow=True).ino == 1
    listed = root.open_dir(p(""))
    try:
        entries = {e.name: e.info.ino for e in (root.dir_entry(listed, n, True) for n in listed.names())}
    finally:
        listed.close()
    assert entries == {b".": 3, b"..": 3, b"d": 1, b"f.txt": 2}


def test_each_share_has_its_own_device_id_and_serial(share: Path, clock: Clock) -> None:
    settings = Reproducible(EPOCH, clock)
    first = ReproducibleRoot(str(share), settings=settings)
    second = ReproducibleRoot(str(share / "d"), settings=settings)
    assert (first.volume_serial(), second.volume_serial()) == (1, 2)
    assert second.query_info(p("inner"), follow=True).dev == 2


def test_volume_figures_are_fixed(root: ReproducibleRoot) -> None:
    vfs = root.statvfs()
    assert vfs.f_frsize == 4096
    assert vfs.f_blocks * vfs.f_frsize == 64 << 30
    assert vfs.f_bavail * vfs.f_frsize == 32 << 30
    assert vfs.f_namemax == 255


def test_created_file_and_its_directory_take_the_virtual_time(root: ReproducibleRoot, clock: Clock) -> None:
    root.query_info(p("d"), follow=True)
    clock.cycles = 5000
    fobj, action = root.open_file(p("d/new.txt"), Access.READWRITE, Disposition.CREATE)
    assert action is OpenAction.CREATED
    info = fobj.info()
    assert (info.access_ns, info.modification_ns, info.change_ns, info.birth_ns) == (EPOCH + 5000,) * 4
    folder = root.query_info(p("d"), follow=True)
    assert (folder.modification_ns, folder.change_ns, folder.birth_ns) == (EPOCH + 5000, EPOCH + 5000, EPOCH)
    clock.cycles = 9000
    assert fobj.write_at(0, b"abc") == 3
    info = fobj.info()
    assert (info.access_ns, info.modification_ns, info.change_ns, info.birth_ns) == (
        EPOCH + 5000, EPOCH + 9000, EPOCH + 9000, EPOCH + 5000)
    clock.cycles = 9500
    fobj.set_mode(0o600)
    assert fobj.info().change_ns == EPOCH + 9500 and fobj.info().modification_ns == EPOCH + 9000
    fobj.close()


def test_times_the_guest_sets_are_shown_exactly(root: ReproducibleRoot, clock: Clock) -> None:
    fobj, _ = root.open_file(p("f.txt"), Access.READWRITE, Disposition.OPEN)
    clock.cycles = 7777
    fobj.set_times(42, None)
    info = fobj.info()
    assert (info.access_ns, info.modification_ns, info.change_ns) == (42, EPOCH, EPOCH + 7777)
    fobj.close()


def test_truncation_moves_modification_time(root: ReproducibleRoot, clock: Clock) -> None:
    clock.cycles = 3000
    fobj, action = root.open_file(p("f.txt"), Access.WRITE, Disposition.CREATE_REPLACE)
    assert action is OpenAction.REPLACED
    assert fobj.info().modification_ns == EPOCH + 3000
    clock.cycles = 4000
    fobj.set_size(10)
    assert fobj.info().modification_ns == EPOCH + 4000
    fobj.close()


def test_rename_remove_and_mkdir_move_directory_times(root: ReproducibleRoot, clock: Clock) -> None:
    clock.cycles = 100
    root.mkdir(p("d/made"))
    made = root.query_info(p("d/made"), follow=True)
    assert made.birth_ns == EPOCH + 100
    assert root.query_info(p("d"), follow=True).modification_ns == EPOCH + 100
    clock.cycles = 200
    root.rename(p("f.txt"), p("d/g.txt"), replace=False)
    moved = root.query_info(p("d/g.txt"), follow=True)
    assert (moved.modification_ns, moved.change_ns) == (EPOCH, EPOCH + 200)
    assert root.query_info(p(""), follow=True).modification_ns == EPOCH + 200
    assert root.query_info(p("d"), follow=True).modification_ns == EPOCH + 200
    clock.cycles = 300
    root.rmdir(p("d/made"))
    assert root.query_info(p("d"), follow=True).modification_ns == EPOCH + 300


def test_a_created_object_never_inherits_an_old_node(root: ReproducibleRoot, clock: Clock) -> None:
    # The host may give the new file the removed one's inode number; the guest still sees
    # a new node with new times.
    first, _ = root.open_file(p("x"), Access.WRITE, Disposition.CREATE)
    old_id = first.info().ino
    first.close()
    root.unlink(p("x"))
    clock.cycles = 60_000
    second, _ = root.open_file(p("x"), Access.WRITE, Disposition.CREATE)
    info = second.info()
    second.close()
    # node 1 was the first "x", node 2 the share root (its entries changed)
    assert (old_id, info.ino, info.birth_ns) == (1, 3, EPOCH + 60_000)


def test_create_remove_loops_do_not_grow_the_node_table(root: ReproducibleRoot) -> None:
    for _ in range(300):
        fobj, _ = root.open_file(p("tmp"), Access.WRITE, Disposition.CREATE)
        fobj.close()
        root.unlink(p("tmp"))
        root.mkdir(p("tmpdir"))
        root.rmdir(p("tmpdir"))
    assert len(root._nodes) <= 2  # the share root, touched by every entry change


def test_failures_keep_hostroot_statuses(root: ReproducibleRoot, share: Path) -> None:
    plain = HostRoot(str(share))
    for operation in (lambda r: r.unlink(p("missing")), lambda r: r.rmdir(p("f.txt")),
                      lambda r: r.rename(p("missing"), p("y"), replace=False), lambda r: r.mkdir(p("d"))):
        with pytest.raises(RtError) as ours:
            operation(root)
        with pytest.raises(RtError) as theirs:
            operation(plain)
        assert ours.value.status == theirs.value.status != Status.VINF_SUCCESS
    plain.close()


def test_plain_hostroot_shows_the_host_values(share: Path) -> None:
    # The default (VirtualBox's behaviour): describe is obj_info of the host's stat.
    plain = HostRoot(str(share))
    info = plain.query_info(p("f.txt"), follow=True)
    st = os.stat(share / "f.txt")
    assert info == obj_info(st, b"f.txt")
    assert info.modification_ns == 987_654_321
    assert plain.volume_serial() == st.st_dev & 0xFFFFFFFF
    plain.close()

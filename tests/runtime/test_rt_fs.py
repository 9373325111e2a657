"""hgcmlab.runtime.fs: confined host file API, exercised with both resolvers on a real tree."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hgcmlab.runtime.fs import (
    Access,
    Disposition,
    HostRoot,
    OpenAction,
    RtFs,
    obj_info,
    openat2_available,
)
from hgcmlab.runtime.paths import GuestPath
from hgcmlab.runtime.status import RtError, Status


def gp(text: str) -> GuestPath:
    return GuestPath(tuple(c.encode() for c in text.split("/") if c))


@pytest.fixture
def base(tmp_path: Path) -> Path:
    share = tmp_path / "share"
    (share / "sub").mkdir(parents=True)
    (share / "sub/file.txt").write_bytes(b"hello")
    os.symlink("sub", share / "link_in")
    os.symlink("sub/file.txt", share / "file_link")
    os.symlink("../outside", share / "rel_out")
    os.symlink(str(tmp_path / "outside"), share / "abs_out")
    os.symlink("../outside/new.txt", share / "dangling_out")
    os.symlink("sub/new_in.txt", share / "dangling_in")
    os.symlink("sub/../../outside", share / "dotdot_out")
    os.symlink("loop", share / "loop")
    os.mkfifo(share / "fifo")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.txt").write_bytes(b"TOPSECRET")
    return tmp_path


@pytest.fixture(params=[True, False], ids=["openat2", "walk"])
def root(request: pytest.FixtureRequest, base: Path) -> Iterator[HostRoot]:
    r = HostRoot(str(base / "share"), use_openat2=request.param)
    yield r
    r.close()
    assert sorted(os.listdir(base / "outside")) == ["secret.txt"]


def status_of(fn, *args, **kw) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(RtError) as info:
        fn(*args, **kw)
    return info.value.status


def test_openat2_is_available_here() -> None:
    # The CI kernel has openat2; if this fails the "openat2" tests silently test nothing new.
    assert openat2_available()


@pytest.mark.parametrize("path", ["rel_out/secret.txt", "abs_out/secret.txt", "dotdot_out/secret.txt"])
def test_escaping_links_are_access_denied(root: HostRoot, path: str) -> None:
    assert status_of(root.open_file, gp(path), Access.READ, Disposition.OPEN) == Status.VERR_ACCESS_DENIED
    assert status_of(root.stat, gp(path), True) == Status.VERR_ACCESS_DENIED


def test_create_through_escaping_dangling_link_refused(root: HostRoot, base: Path) -> None:
    st = status_of(root.open_file, gp("dangling_out"), Access.WRITE, Disposition.OPEN_CREATE)
    assert st == Status.VERR_ACCESS_DENIED
    assert not (base / "outside/new.txt").exists()


def test_create_through_inside_dangling_link_creates_target(root: HostRoot, base: Path) -> None:
    """RTFileOpenEx (fileio-posix.cpp) reports "opened" here: O_EXCL says EEXIST, the plain
    open ENOENT, 64 times, then the O_CREAT open creates the target."""
    f, action = root.open_file(gp("dangling_in"), Access.WRITE, Disposition.OPEN_CREATE)
    f.close()
    assert action is OpenAction.OPENED
    assert (base / "share/sub/new_in.txt").is_file()


def test_exclusive_create_on_dangling_link_is_already_exists(root: HostRoot) -> None:
    assert status_of(root.open_file, gp("dangling_in"), Access.WRITE, Disposition.CREATE) == \
        Status.VERR_ALREADY_EXISTS


def test_inside_links_followed(root: HostRoot) -> None:
    f, action = root.open_file(gp("link_in/file.txt"), Access.READ, Disposition.OPEN)
    assert action is OpenAction.OPENED and f.read_at(0, 10) == b"hello"
    f.close()
    f, _ = root.open_file(gp("file_link"), Access.READ, Disposition.OPEN)
    assert f.read_at(1, 2) == b"el"
    f.close()


def test_stat_follow_and_nofollow(root: HostRoot) -> None:
    assert root.query_info(gp("file_link"), follow=True).size == 5
    assert root.query_info(gp("file_link"), follow=False).mode & RtFs.TYPE_MASK == RtFs.TYPE_SYMLINK
    assert root.query_info(gp("abs_out"), follow=False).mode & RtFs.TYPE_MASK == RtFs.TYPE_SYMLINK
    assert status_of(root.stat, gp("loop"), True) == Status.VERR_TOO_MANY_SYMLINKS


def test_missing_intermediate_vs_file_intermediate(root: HostRoot) -> None:
    assert status_of(root.stat, gp("nope/x"), True) == Status.VERR_FILE_NOT_FOUND
    assert status_of(root.stat, gp("sub/file.txt/x"), True) == Status.VERR_PATH_NOT_FOUND


def test_dispositions(root: HostRoot, base: Path) -> None:
    path = gp("sub/d.txt")
    assert status_of(root.open_file, path, Access.READ, Disposition.OPEN) == Status.VERR_FILE_NOT_FOUND
    f, a = root.open_file(path, Access.WRITE, Disposition.CREATE, 0o640)
    assert a is OpenAction.CREATED and f.write_at(0, b"abc") == 3
    f.close()
    assert (base / "share/sub/d.txt").stat().st_mode & 0o777 == 0o640 & ~_umask()
    assert status_of(root.open_file, path, Access.WRITE, Disposition.CREATE) == Status.VERR_ALREADY_EXISTS
    f, a = root.open_file(path, Access.READ, Disposition.OPEN_CREATE)
    assert a is OpenAction.OPENED
    f.close()
    f, a = root.open_file(path, Access.WRITE, Disposition.TRUNCATE)
    assert a is OpenAction.REPLACED and f.size() == 0
    f.close()
    f, a = root.open_file(gp("sub/e.txt"), Access.WRITE, Disposition.CREATE_REPLACE)
    assert a is OpenAction.CREATED
    f.close()


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_non_regular_files_refused(root: HostRoot) -> None:
    assert status_of(root.open_file, gp("fifo"), Access.READ, Disposition.OPEN) == Status.VERR_ACCESS_DENIED
    assert status_of(root.open_file, gp("sub"), Access.READ, Disposition.OPEN) == Status.VERR_IS_A_DIRECTORY


def test_append_and_positional_io(root: HostRoot, base: Path) -> None:
    f, _ = root.open_file(gp("sub/file.txt"), Access.WRITE, Disposition.OPEN, append=True)
    assert f.write_at(0, b"!!") == 2
    f.close()
    assert (base / "share/sub/file.txt").read_bytes() == b"hello!!"
    f, _ = root.open_file(gp("sub/file.txt"), Access.READWRITE, Disposition.OPEN)
    f.write_at(10, b"X")
    assert f.read_at(0, 20) == b"hello!!\0\0\0X"
    assert f.read_at(100, 5) == b""
    assert status_of(f.read_at, 1 << 63, 1) == Status.VERR_INVALID_PARAMETER
    f.set_size(2)
    f.flush()
    f.close()
    assert (base / "share/sub/file.txt").read_bytes() == b"he"


def test_name_operations(root: HostRoot, base: Path) -> None:
    root.mkdir(gp("sub/newdir"))
    assert status_of(root.mkdir, gp("sub/newdir")) == Status.VERR_ALREADY_EXISTS
    assert status_of(root.mkdir, gp("missing/x")) == Status.VERR_FILE_NOT_FOUND
    assert status_of(root.mkdir, gp("rel_out/x")) == Status.VERR_ACCESS_DENIED
    assert status_of(root.rmdir, gp("sub")) == Status.VERR_DIR_NOT_EMPTY
    assert status_of(root.rmdir, gp("sub/file.txt")) == Status.VERR_NOT_A_DIRECTORY
    assert status_of(root.unlink, gp("sub/newdir")) == Status.VERR_IS_A_DIRECTORY
    root.rmdir(gp("sub/newdir"))
    root.rename(gp("sub/file.txt"), gp("moved.txt"), replace=False)
    assert (base / "share/moved.txt").read_bytes() == b"hello"
    assert root.readlink(gp("abs_out")) == str(base / "outside").encode()
    assert status_of(root.readlink, gp("moved.txt")) == Status.VERR_NOT_SYMLINK
    root.symlink(gp("newlink"), b"../outside/secret.txt")
    assert os.readlink(base / "share/newlink") == "../outside/secret.txt"
    root.unlink(gp("abs_out"))  # removes the link only
    assert (base / "outside/secret.txt").exists() and not (base / "share/abs_out").is_symlink()
    assert status_of(root.rmdir, gp("")) == Status.VERR_DIR_NOT_EMPTY  # as rmdir(2) of the root path
    assert status_of(lambda s, d: root.rename(s, d, replace=False), gp("rel_out/secret.txt"), gp("x")) == \
        Status.VERR_ACCESS_DENIED


def test_listing_and_dirs(root: HostRoot) -> None:
    d = root.open_dir(gp("link_in"))
    assert d.names() == [b".", b"..", b"file.txt"]
    d.close()
    assert status_of(root.open_dir, gp("abs_out")) == Status.VERR_ACCESS_DENIED
    assert status_of(root.open_dir, gp("sub/file.txt")) == Status.VERR_PATH_NOT_FOUND
    assert root.is_root(root.stat(gp(""), True))


def test_obj_info_dos_bits(base: Path) -> None:
    p = base / "share/.hidden"
    p.write_bytes(b"x")
    os.chmod(p, 0o4444)
    info = obj_info(os.stat(p), b".hidden")
    assert info.mode & RtFs.DOS_READONLY and info.mode & RtFs.DOS_HIDDEN
    assert not info.mode & RtFs.DOS_NT_NORMAL
    assert info.mode & 0o7777 == 0o4444  # IPRT keeps setuid; the service strips it
    plain = obj_info(os.stat(base / "share/sub/file.txt"), b"file.txt")
    assert plain.mode & RtFs.DOS_MASK == RtFs.DOS_NT_NORMAL
    d = obj_info(os.stat(base / "share/sub"), b"..")
    assert d.mode & RtFs.DOS_MASK == RtFs.DOS_DIRECTORY
    assert obj_info(os.stat(p)).mode & RtFs.DOS_HIDDEN == 0
    st = os.stat(base / "share/sub/file.txt")
    assert plain.birth_ns == st.st_ctime_ns and plain.allocated == st.st_blocks * 512


def test_missing_root_is_an_error(tmp_path: Path) -> None:
    assert status_of(HostRoot, str(tmp_path / "nope")) == Status.VERR_FILE_NOT_FOUND


def test_dir_entry_info_is_confined(root: HostRoot, base: Path) -> None:
    d = root.open_dir(gp(""))
    try:
        dot, dotdot = root.dir_entry(d, b".", True), root.dir_entry(d, b"..", True)
        assert dot.info.ino == dotdot.info.ino == os.stat(base / "share").st_ino
        followed = root.dir_entry(d, b"file_link", True)
        assert followed.has_info and followed.info.size == 5
        escaping = root.dir_entry(d, b"abs_out", True)
        assert not escaping.has_info and escaping.info.mode == RtFs.TYPE_SYMLINK | RtFs.DOS_NT_NORMAL
        assert root.dir_entry(d, b"abs_out", False).info.mode & RtFs.TYPE_MASK == RtFs.TYPE_SYMLINK
        gone = root.dir_entry(d, b"vanished", True)
        assert not gone.has_info and gone.info.mode == RtFs.DOS_NT_NORMAL
    finally:
        d.close()


def test_dir_depth_follows_real_location(root: HostRoot, base: Path) -> None:
    assert root.dir_depth(gp("")) == 0
    assert root.dir_depth(gp("sub")) == 1
    assert root.dir_depth(gp("link_in")) == 1
    assert status_of(root.dir_depth, gp("abs_out")) == Status.VERR_ACCESS_DENIED
    assert status_of(root.dir_depth, gp("sub/file.txt")) == Status.VERR_PATH_NOT_FOUND


def test_copy_to_whole_file(root: HostRoot, base: Path) -> None:
    src, _ = root.open_file(gp("sub/file.txt"), Access.READ, Disposition.OPEN)
    dst, _ = root.open_file(gp("sub/copy.txt"), Access.WRITE, Disposition.CREATE)
    assert src.copy_to(dst) == 5
    src.close()
    dst.close()
    assert (base / "share/sub/copy.txt").read_bytes() == b"hello"

"""Windows error-style adjustments (reference §4.5) after SET_ERROR_STYLE(1), and the Linux
style (the default, and after SET_ERROR_STYLE(2)) left as it was."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hgcmlab.runtime.fs import HostRoot
from hgcmlab.runtime.paths import GuestPath, convert_guest_path
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders import errstyle
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCf, ShflCreateResult, ShflFn, ShflRemove, ShflRename
from hgcmlab.services.sharedfolders.service import SharedFoldersService
from tests.service.conftest import READ_OPEN, Guest, Tree

R, CF = ShflCreateResult, ShflCf
DIR_OPEN = CF.DIRECTORY | CF.ACT_OPEN_IF_EXISTS | CF.ACT_FAIL_IF_NEW
DIR_MKDIR = CF.DIRECTORY | CF.ACT_FAIL_IF_EXISTS | CF.ACT_CREATE_IF_NEW   # no open after a failed mkdir
DIR_MKDIR_OPEN = CF.DIRECTORY | CF.ACT_OPEN_IF_EXISTS | CF.ACT_CREATE_IF_NEW


def set_style(g: Guest, style: int) -> None:
    assert g.call(ShflFn.SET_ERROR_STYLE, SvcParm.u32(style), SvcParm.u32(0)) == 0


@pytest.fixture(params=["linux-default", "linux-set", "windows"])
def style(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def client(guest: Guest, style: str) -> tuple[Guest, int, bool]:
    """(guest, root of "sf", windows?) in the requested error style."""
    if style == "windows":
        set_style(guest, 1)
    elif style == "linux-set":
        set_style(guest, 1)
        set_style(guest, 2)  # back to Linux
    return guest, guest.map("sf"), style == "windows"


def outcome(g: Guest, root: int, path: str, flags: int) -> tuple[int, int]:
    st, cp = g.create(root, path, flags)
    assert cp.Handle == SHFL_HANDLE_NIL
    return st, cp.Result


def rename(g: Guest, root: int, src: str, dst: str, flags: int = ShflRename.FILE) -> int:
    return g.call(ShflFn.RENAME, SvcParm.u32(root), g.s(src), g.s(dst), SvcParm.u32(flags))


def test_file_open_file_not_found(client: tuple[Guest, int, bool]) -> None:
    g, root, win = client
    # Missing parent: Linux says FILE_NOT_FOUND, Windows style PATH_NOT_FOUND; rc stays success.
    assert outcome(g, root, "nope/x", READ_OPEN) == (0, R.PATH_NOT_FOUND if win else R.FILE_NOT_FOUND)
    assert outcome(g, root, "nope/deeper/x", READ_OPEN) == (0, R.PATH_NOT_FOUND if win else R.FILE_NOT_FOUND)
    # Parent present: no adjustment.
    assert outcome(g, root, "sub/nope", READ_OPEN) == (0, R.FILE_NOT_FOUND)
    assert outcome(g, root, "link_in/nope", READ_OPEN) == (0, R.FILE_NOT_FOUND)


def test_file_open_path_not_found(client: tuple[Guest, int, bool], tree: Tree) -> None:
    g, root, win = client
    # Trailing delimiter on a file whose parent is a directory: invalid name for a non-dir.
    expected = (Status.VERR_INVALID_NAME, R.NO_RESULT) if win else (0, R.PATH_NOT_FOUND)
    assert outcome(g, root, "sub/file.txt/", READ_OPEN) == expected
    assert outcome(g, root, "link_in/file.txt/", READ_OPEN) == expected
    # No trailing delimiter, or a parent that is not a directory: PATH_NOT_FOUND as before.
    assert outcome(g, root, "sub/file.txt/x", READ_OPEN) == (0, R.PATH_NOT_FOUND)
    assert outcome(g, root, "sub/file.txt/x/", READ_OPEN) == (0, R.PATH_NOT_FOUND)
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello"


def test_trailing_delimiter_file_open_as_the_host_sees_it(client: tuple[Guest, int, bool], tree: Tree) -> None:
    """Both styles: the guest's trailing delimiter reaches the host open (VirtualBox keeps one
    trailing slash), so a creating or truncating open never touches a file by that name."""
    g, root, _ = client
    rw_create = CF.ACCESS_READWRITE | CF.ACT_OPEN_IF_EXISTS | CF.ACT_CREATE_IF_NEW
    assert outcome(g, root, "sub/new/", rw_create) == (Status.VERR_IS_A_DIRECTORY, R.NO_RESULT)
    assert outcome(g, root, "sub/file.txt/", rw_create) == (Status.VERR_IS_A_DIRECTORY, R.NO_RESULT)
    assert not (tree.share / "sub/new").exists()
    _, result = outcome(g, root, "sub/file.txt/", CF.ACCESS_WRITE | CF.ACT_REPLACE_IF_EXISTS | CF.ACT_FAIL_IF_NEW)
    assert result != R.FILE_REPLACED and (tree.share / "sub/file.txt").read_bytes() == b"hello"
    # A directory with a trailing delimiter still opens as a directory.
    st, cp = g.create(root, "sub/", READ_OPEN)
    assert st == 0 and cp.Result == R.FILE_EXISTS and cp.Handle != SHFL_HANDLE_NIL


def test_dir_create_file_not_found(client: tuple[Guest, int, bool], tree: Tree) -> None:
    g, root, win = client
    expected = (Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND) if win else (Status.VERR_FILE_NOT_FOUND, R.FILE_NOT_FOUND)
    assert outcome(g, root, "nope/newdir", DIR_MKDIR) == expected
    assert outcome(g, root, "nope/newdir", DIR_MKDIR_OPEN) == expected  # the open after it agrees
    # ENOTDIR from mkdir is PATH_NOT_FOUND in both styles.
    assert outcome(g, root, "sub/file.txt/d", DIR_MKDIR) == (Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND)
    assert not (tree.share / "nope").exists()


def test_dir_open_file_not_found(client: tuple[Guest, int, bool]) -> None:
    g, root, win = client
    expected = (Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND) if win else (Status.VERR_FILE_NOT_FOUND, R.FILE_NOT_FOUND)
    assert outcome(g, root, "nope/d", DIR_OPEN) == expected
    assert outcome(g, root, "sub/nope", DIR_OPEN) == (Status.VERR_FILE_NOT_FOUND, R.FILE_NOT_FOUND)


def test_dir_open_path_not_found(client: tuple[Guest, int, bool]) -> None:
    g, root, win = client
    # The path itself is an existing file.
    expected = (Status.VERR_NOT_A_DIRECTORY, R.FILE_EXISTS) if win else (Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND)
    assert outcome(g, root, "sub/file.txt", DIR_OPEN) == expected
    # A non-directory in the middle: the path does not exist, nothing to adjust.
    assert outcome(g, root, "sub/file.txt/d", DIR_OPEN) == (Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND)


def test_rename(client: tuple[Guest, int, bool], tree: Tree) -> None:
    g, root, win = client
    adjusted = Status.VERR_PATH_NOT_FOUND if win else Status.VERR_FILE_NOT_FOUND
    assert rename(g, root, "nope/a", "sub/b") == adjusted          # source's parent missing
    assert rename(g, root, "sub/file.txt", "nope/b") == adjusted   # destination's parent missing
    assert rename(g, root, "sub/empty", "nope/b", ShflRename.DIR) == adjusted
    # Source's parent present but the source missing: stays FILE_NOT_FOUND, whatever the destination.
    assert rename(g, root, "sub/nope", "sub/b") == Status.VERR_FILE_NOT_FOUND
    assert rename(g, root, "sub/nope", "nope/b") == Status.VERR_FILE_NOT_FOUND
    # A non-directory parent is PATH_NOT_FOUND from the host in both styles.
    assert rename(g, root, "sub/file.txt", "sub/file.txt/b") == Status.VERR_PATH_NOT_FOUND
    assert (tree.share / "sub/file.txt").read_bytes() == b"hello"
    assert rename(g, root, "sub/file.txt", "sub/moved.txt") == 0


def test_remove_and_lookup_are_never_adjusted(client: tuple[Guest, int, bool]) -> None:
    g, root, _ = client
    assert g.call(ShflFn.REMOVE, SvcParm.u32(root), g.s("nope/x"), SvcParm.u32(ShflRemove.FILE)) == \
        Status.VERR_FILE_NOT_FOUND
    assert g.call(ShflFn.REMOVE, SvcParm.u32(root), g.s("nope/x"), SvcParm.u32(ShflRemove.DIR)) == \
        Status.VERR_FILE_NOT_FOUND
    assert outcome(g, root, "nope/deeper", CF.LOOKUP) == (0, R.FILE_NOT_FOUND)


def test_windows_guest_with_backslashes(svc: SharedFoldersService) -> None:
    """What a Windows guest sends: UTF-16, '\\' delimiter, case-insensitive mapping."""
    g = Guest(svc, utf8=False)
    set_style(g, 1)
    root = g.map("sf", delimiter="\\", case_sensitive=False)
    assert outcome(g, root, "\\Nope\\x.txt", READ_OPEN) == (0, R.PATH_NOT_FOUND)
    assert outcome(g, root, "\\SUB\\File.txt\\", READ_OPEN) == (Status.VERR_INVALID_NAME, R.NO_RESULT)
    assert outcome(g, root, "\\Sub\\FILE.TXT", DIR_OPEN) == (Status.VERR_NOT_A_DIRECTORY, R.FILE_EXISTS)
    assert outcome(g, root, "\\Sub\\nope", DIR_OPEN) == (Status.VERR_FILE_NOT_FOUND, R.FILE_NOT_FOUND)


def test_style_is_per_client(svc: SharedFoldersService) -> None:
    win, lin = Guest(svc), Guest(svc)
    set_style(win, 1)
    assert outcome(win, win.map("sf"), "nope/x", READ_OPEN) == (0, R.PATH_NOT_FOUND)
    assert outcome(lin, lin.map("sf"), "nope/x", READ_OPEN) == (0, R.FILE_NOT_FOUND)


# --- the checks themselves stay inside the share -------------------------------------------

@pytest.fixture(params=[True, False], ids=["openat2", "walk"])
def host(request: pytest.FixtureRequest, tree: Tree) -> Iterator[HostRoot]:
    # Links whose targets outside the share would answer differently from the confined view.
    os.symlink("../outside/secret.txt", tree.share / "out_file")
    (tree.outside / "dir").mkdir()
    os.symlink("../outside/dir", tree.share / "out_dir")
    root = HostRoot(str(tree.share), use_openat2=request.param)
    yield root
    root.close()
    (tree.outside / "dir").rmdir()


def p(text: str) -> GuestPath:
    return convert_guest_path(text, ord("/"))


def test_checks(host: HostRoot) -> None:
    assert errstyle.parent_not_found(host, p("nope/x"))
    assert errstyle.parent_not_found(host, p("sub/file.txt/x"))     # parent is a file
    assert not errstyle.parent_not_found(host, p("sub/x"))
    assert not errstyle.parent_not_found(host, p("x"))              # parent is the root
    assert not errstyle.parent_not_found(host, p(""))
    assert errstyle.not_a_directory(host, p("sub/file.txt"))
    assert not errstyle.not_a_directory(host, p("sub"))
    assert not errstyle.not_a_directory(host, p("nope"))
    assert errstyle.invalid_name_for_non_dir(host, p("sub/file.txt/"))
    assert not errstyle.invalid_name_for_non_dir(host, p("sub/file.txt"))  # no trailing delimiter
    assert not errstyle.invalid_name_for_non_dir(host, p("nope/x/"))


def test_checks_never_look_outside(host: HostRoot) -> None:
    """Followed outside the share, each of these would be True; confined, an escaping link is
    neither found nor a directory, so no check reveals anything about the outside."""
    assert not errstyle.not_a_directory(host, p("out_file"))
    assert not errstyle.parent_not_found(host, p("out_file/x"))
    assert not errstyle.invalid_name_for_non_dir(host, p("out_dir/secret/"))
    assert not errstyle.invalid_name_for_non_dir(host, p("rel_out/secret.txt/"))

"""SHFL_FN_REMOVE: svcCall's checks, vbsfRemove's order, and what the host says for each
kind of object, with and without a trailing delimiter (which survives the path conversion
and reaches unlink/rmdir/lstat)."""

from __future__ import annotations

import os

import pytest

from hgcmlab.guest_asm import assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn, ShflRemove
from tests.conformance._path import kind, remove, snapshot
from tests.service.conftest import Guest, Tree

RM = ShflRemove
FILE, DIR, LINK = int(RM.FILE), int(RM.DIR), int(RM.SYMLINK)
S = Status

pytestmark = pytest.mark.shfl("REMOVE")


def _extra(tree: Tree) -> None:
    """Objects the matrix needs besides the fixture tree."""
    os.symlink("sub/file.txt", tree.share / "flink")          # link to a file
    os.symlink("nowhere", tree.share / "dang_in")             # dangling, inside


# (path, flags, status, what must be gone afterwards or None)
FILE_DELETE = [
    # RTFileDelete = unlink(2) of the host path.
    ("sub/file.txt", FILE, S.VINF_SUCCESS, "sub/file.txt"),
    ("sub/file.txt/", FILE, S.VERR_PATH_NOT_FOUND, None),     # ENOTDIR: the slash reaches unlink
    ("sub/empty", FILE, S.VERR_IS_A_DIRECTORY, None),         # EISDIR
    ("sub/empty/", FILE, S.VERR_IS_A_DIRECTORY, None),
    ("sub/nope", FILE, S.VERR_FILE_NOT_FOUND, None),
    ("sub/nope/", FILE, S.VERR_FILE_NOT_FOUND, None),
    ("sub/file.txt/x", FILE, S.VERR_PATH_NOT_FOUND, None),    # ENOTDIR in the middle
    ("nodir/x", FILE, S.VERR_FILE_NOT_FOUND, None),
    ("link_in", FILE, S.VINF_SUCCESS, "link_in"),             # the link itself, never its target
    ("link_in/", FILE, S.VERR_PATH_NOT_FOUND, None),          # unlink("link/"): ENOTDIR
    ("flink", FILE, S.VINF_SUCCESS, "flink"),
    ("dang_in", FILE, S.VINF_SUCCESS, "dang_in"),
    ("", FILE, S.VERR_IS_A_DIRECTORY, None),                  # the share root: unlink(root) EISDIR
    ("/", FILE, S.VERR_IS_A_DIRECTORY, None),
]
DIR_REMOVE = [
    # RTDirRemove = rmdir(2); ENOTDIR refined by a stat that follows links.
    ("sub/empty", DIR, S.VINF_SUCCESS, "sub/empty"),
    ("sub/empty/", DIR, S.VINF_SUCCESS, "sub/empty"),         # rmdir accepts the slash
    ("sub", DIR, S.VERR_DIR_NOT_EMPTY, None),
    ("sub/file.txt", DIR, S.VERR_NOT_A_DIRECTORY, None),
    ("sub/file.txt/", DIR, S.VERR_NOT_A_DIRECTORY, None),
    ("sub/nope", DIR, S.VERR_FILE_NOT_FOUND, None),
    ("link_in", DIR, S.VERR_PATH_NOT_FOUND, None),            # link to a directory: stat says dir
    ("link_in/", DIR, S.VERR_PATH_NOT_FOUND, None),
    ("flink", DIR, S.VERR_NOT_A_DIRECTORY, None),             # link to a file: stat says file
    ("dang_in", DIR, S.VERR_PATH_NOT_FOUND, None),            # stat fails
    ("sub/empty", 0, S.VINF_SUCCESS, "sub/empty"),            # no type flag: a directory
    ("", DIR, S.VERR_DIR_NOT_EMPTY, None),                    # rmdir(root) of a non-empty share
]
SYMLINK_DELETE = [
    # RTSymlinkDelete: lstat, must be a link, unlink.  The slash makes lstat follow.
    ("link_in", LINK, S.VINF_SUCCESS, "link_in"),
    ("link_in", LINK | FILE | DIR, S.VINF_SUCCESS, "link_in"),  # SYMLINK bit wins
    ("link_in/", LINK, S.VERR_NOT_SYMLINK, None),             # lstat("link/") sees the directory
    ("flink/", LINK, S.VERR_PATH_NOT_FOUND, None),            # lstat("flink/"): ENOTDIR
    ("dang_in", LINK, S.VINF_SUCCESS, "dang_in"),
    ("dang_in/", LINK, S.VERR_FILE_NOT_FOUND, None),
    ("sub/file.txt", LINK, S.VERR_NOT_SYMLINK, None),
    ("sub", LINK, S.VERR_NOT_SYMLINK, None),
    ("sub/nope", LINK, S.VERR_FILE_NOT_FOUND, None),
    ("", LINK, S.VERR_NOT_SYMLINK, None),
]


@pytest.mark.parametrize(("path", "flags", "status", "gone"), FILE_DELETE + DIR_REMOVE + SYMLINK_DELETE)
def test_remove_matrix(guest: Guest, tree: Tree, path: str, flags: int, status: int, gone: str | None) -> None:
    """Each host object kind, each type flag, with and without a trailing delimiter.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRemove, HostServices/SharedFolders/vbsfpath.cpp:vbsfPathGuestToHost, Runtime/common/path/RTPathAbsEx.cpp:rtPathAbsExWithCwdOrBaseCommon, Runtime/r3/posix/fileio-posix.cpp:RTFileDelete, Runtime/r3/posix/dir-posix.cpp:RTDirRemove, Runtime/r3/posix/symlink-posix.cpp:RTSymlinkDelete
    """
    _extra(tree)
    root = guest.map("sf")
    before = snapshot(tree.share)
    assert remove(guest, root, path, flags) == status
    after = snapshot(tree.share)
    if gone is None:
        assert after == before
    else:
        assert {k: v for k, v in before.items() if k != gone and not k.startswith(gone + "/")} == after
    assert kind(tree.outside / "secret.txt") == "file:TOPSECRET"


@pytest.mark.parametrize("flags", [0, FILE, DIR])
def test_empty_share_root_is_never_removed(guest: Guest, tree: Tree, flags: int) -> None:
    """REMOVE of an empty share root: rmdir(2) of the root path would delete the share's own
    directory (outside the share): refused with VERR_ACCESS_DENIED (SF19); unlink answers EISDIR.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRemove, Runtime/r3/posix/dir-posix.cpp:RTDirRemove, Runtime/r3/posix/fileio-posix.cpp:RTFileDelete
    """
    empty = tree.share / "emptyshare"
    empty.mkdir()
    assert guest.svc.add_mapping("e", str(empty)) == 0
    root = guest.map("e")
    expected = S.VERR_IS_A_DIRECTORY if flags == FILE else S.VERR_ACCESS_DENIED
    assert remove(guest, root, "", flags) == expected
    assert empty.is_dir()


@pytest.mark.parametrize(("params", "status"), [
    # svcCall: count, root type, path type, path string, flags type, flags value.
    (lambda g: [SvcParm.u32(0), g.s("x")], S.VERR_WRONG_PARAMETER_COUNT),
    (lambda g: [SvcParm.u64(0), SvcParm.ptr(2), SvcParm.u64(99)], S.VERR_WRONG_PARAMETER_TYPE),
    (lambda g: [SvcParm.u32(0), SvcParm.u32(0), SvcParm.u64(99)], S.VERR_WRONG_PARAMETER_TYPE),
    (lambda g: [SvcParm.u32(0), SvcParm.ptr(2), SvcParm.u64(99)], S.VERR_INVALID_PARAMETER),
    (lambda g: [SvcParm.u32(0), g.s("x"), SvcParm.u64(99)], S.VERR_WRONG_PARAMETER_TYPE),
    (lambda g: [SvcParm.u32(77), g.s("x"), SvcParm.u32(8)], S.VERR_INVALID_FLAGS),
    (lambda g: [SvcParm.u32(77), g.s("sub/file.txt"), SvcParm.u32(FILE)], S.VERR_INVALID_PARAMETER),
])
def test_svccall_order(guest: Guest, tree: Tree, params, status: int) -> None:
    """Which status wins when several parameters are wrong: svcCall's check order, then
    vbsfRemove's root check (an unknown root is VERR_INVALID_PARAMETER).

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/mappings.cpp:vbsfMappingsQueryHostRootEx
    """
    guest.map("sf")
    assert guest.call(ShflFn.REMOVE, *params(guest)) == status
    assert kind(tree.share / "sub/file.txt") == "file:hello"


def test_read_only_share_after_path_conversion(guest: Guest, tree: Tree) -> None:
    """A read-only mapping: the path is converted first (a bad name wins), then
    VERR_WRITE_PROTECT, whatever the object.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRemove, HostServices/SharedFolders/mappings.cpp:vbsfMappingsQueryWritable
    """
    ro = guest.map("ro")
    assert remove(guest, ro, "../x", FILE) == S.VERR_INVALID_NAME
    assert remove(guest, ro, "file.txt", FILE) == S.VERR_WRITE_PROTECT
    assert remove(guest, ro, "nope", DIR) == S.VERR_WRITE_PROTECT
    assert os.listdir(tree.ro) == ["file.txt"]


def test_escaping_links_are_never_followed_out(guest: Guest, tree: Tree) -> None:
    """A path through a link leaving the share (SF1): VERR_ACCESS_DENIED, nothing outside
    changes; the link itself can be removed.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRemove, Runtime/r3/posix/fileio-posix.cpp:RTFileDelete
    """
    root = guest.map("sf")
    assert remove(guest, root, "rel_out/secret.txt", FILE) == S.VERR_ACCESS_DENIED
    assert remove(guest, root, "abs_out/", LINK) == S.VERR_ACCESS_DENIED
    assert remove(guest, root, "abs_out", LINK) == S.VINF_SUCCESS
    assert kind(tree.share / "abs_out") == "missing"
    assert kind(tree.outside / "secret.txt") == "file:TOPSECRET"


RM_PROGRAM = r"""
.include "tool.s"
_start:
    ccall2 tool_start, 1, rm_usage
    ccall2 tool_open_arg, rm_file, 0
    ccall2 tool_remove, rm_file, SHFL_REMOVE_FILE
    tool_check TOOL_EXIT_FAILED, rm_msg, rm_file
    call tool_finish
rm_usage: .asciz "rm SHARE:FILE"
rm_msg:   .asciz "rm"
.align 8
rm_file: .space TF_SIZE
"""


@pytest.mark.parametrize("mode", [64, 32])
def test_guest_rm_with_a_trailing_delimiter_keeps_the_file(tmp_path, mode: int) -> None:
    """Guest level: REMOVE(FILE) of "notes.txt/" fails with VERR_PATH_NOT_FOUND (-103) and
    the file stays; without the delimiter it is removed.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRemove, Runtime/r3/posix/fileio-posix.cpp:RTFileDelete
    """
    (tmp_path / "notes.txt").write_bytes(b"keep me")
    program = assemble(RM_PROGRAM, mode=mode)

    def rm(arg: str):
        machine = vbox_board(mode=mode)
        machine.add_share("d", tmp_path)
        machine.set_arguments([arg])
        machine.load(program)
        result = machine.run()
        assert result.fault is None
        return result.exit_code, result.log_lines

    assert rm("d:/notes.txt/") == (3, ["error: rm d:/notes.txt/: -103"])
    assert (tmp_path / "notes.txt").read_bytes() == b"keep me"
    assert rm("d:/notes.txt") == (0, [])
    assert not (tmp_path / "notes.txt").exists()

"""SHFL_FN_RENAME: svcCall's checks, vbsfRename's order and type flags, and IPRT's
rtPathPosixRename down to rename(2), with trailing delimiters reaching the host; the
SUBTREE symlink policy for moved links (SF20)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from hgcmlab.guest_asm import assemble
from hgcmlab.guest_asm.source import LIB_DIR
from hgcmlab.machine.boards import vbox_board
from hgcmlab.runtime.faults import Fault, inject
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn, ShflRename
from tests.conformance._path import kind, moved, remove_tree, rename, snapshot
from tests.service.conftest import Guest, Tree

RN = ShflRename
F, D, R = int(RN.FILE), int(RN.DIR), int(RN.REPLACE_IF_EXISTS)
FD = F | D
S = Status

pytestmark = pytest.mark.shfl("RENAME")


def _extra(tree: Tree) -> None:
    (tree.share / "b.txt").write_bytes(b"b")
    (tree.share / "dir2").mkdir()
    os.symlink("nowhere", tree.share / "dang_in")


# (src, dst, flags, status, moved: whether the host shows src renamed to dst)
MATRIX = [
    # vbsfRename's type flags: FILE -> RTFileMove (source not a directory), DIR or none ->
    # RTDirRename (source a directory), FILE|DIR -> RTPathRename (any source).
    ("sub/file.txt", "new.txt", F, S.VINF_SUCCESS, True),
    ("sub", "x", F, S.VERR_IS_A_DIRECTORY, False),
    ("b.txt", "x", D, S.VERR_NOT_A_DIRECTORY, False),
    ("b.txt", "x", 0, S.VERR_NOT_A_DIRECTORY, False),
    ("sub", "x", 0, S.VINF_SUCCESS, True),
    ("sub", "x", FD, S.VINF_SUCCESS, True),
    ("b.txt", "x", FD, S.VINF_SUCCESS, True),
    ("link_in", "x", D, S.VERR_NOT_A_DIRECTORY, False),     # lstat: the link, not a directory
    ("link_in", "x", F, S.VINF_SUCCESS, True),              # the link moves, target text kept
    ("dang_in", "x", F, S.VINF_SUCCESS, True),
    ("nope", "x", F, S.VERR_FILE_NOT_FOUND, False),
    # The destination: an existing other object is VERR_ALREADY_EXISTS when it is a directory
    # or REPLACE_IF_EXISTS is clear; the same object renames onto itself.
    ("sub/file.txt", "b.txt", F, S.VERR_ALREADY_EXISTS, False),
    ("sub/file.txt", "b.txt", F | R, S.VINF_SUCCESS, True),
    ("sub/file.txt", "sub/empty", F | R, S.VERR_ALREADY_EXISTS, False),
    ("sub", "dir2", D | R, S.VERR_ALREADY_EXISTS, False),
    ("b.txt", "link_in", F, S.VERR_ALREADY_EXISTS, False),
    ("b.txt", "link_in", F | R, S.VINF_SUCCESS, True),      # replaces the link, not its target
    ("b.txt", "b.txt", F, S.VINF_SUCCESS, False),
    ("sub", "sub/empty/x", D, S.VERR_INVALID_PARAMETER, False),  # EINVAL: into its own subtree
    ("sub/file.txt", "nodir/x", F, S.VERR_FILE_NOT_FOUND, False),
    ("sub/file.txt", "b.txt/x", F, S.VERR_PATH_NOT_FOUND, False),  # lstat: ENOTDIR
    # rename(2) answers ENOTDIR/EEXIST with REPLACE_IF_EXISTS: the destination (not a
    # directory) is unlinked and the rename retried; ENOTDIR without it: VERR_ALREADY_EXISTS.
    ("dir2", "b.txt", FD | R, S.VINF_SUCCESS, True),
    ("dir2", "b.txt", FD, S.VERR_ALREADY_EXISTS, False),
    # Trailing delimiters survive the conversion: lstat("x/") follows a link and wants a
    # directory, rename(2) refuses a slash on a non-directory.
    ("sub/file.txt/", "x", F, S.VERR_PATH_NOT_FOUND, False),
    ("sub/", "x", D, S.VINF_SUCCESS, True),
    ("sub", "x/", D, S.VINF_SUCCESS, True),
    ("b.txt", "x/", F, S.VERR_ALREADY_EXISTS, False),       # rename: ENOTDIR
    ("b.txt", "x/", F | R, S.VERR_FILE_NOT_FOUND, False),   # ENOTDIR, unlink("x/"): ENOENT
    ("b.txt", "sub/file.txt/", F | R, S.VERR_PATH_NOT_FOUND, False),
    ("link_in/", "x", D, S.VERR_ALREADY_EXISTS, False),     # lstat follows; rename: ENOTDIR
    ("link_in/", "x", D | R, S.VERR_FILE_NOT_FOUND, False),
    # The share root (path ""): nothing on the host changes in any case.
    ("", "x", F, S.VERR_IS_A_DIRECTORY, False),
    ("", "x", D, S.VERR_INVALID_PARAMETER, False),          # rename(root, root/x): EINVAL
    ("", "nodir/x", D, S.VERR_FILE_NOT_FOUND, False),
    ("", "sub", D, S.VERR_ALREADY_EXISTS, False),
    ("", "b.txt", FD | R, S.VERR_INVALID_PARAMETER, False),  # EINVAL, nothing unlinked
    ("", "", D, S.VINF_SUCCESS, False),                     # same object
    ("b.txt", "", F | R, S.VERR_ALREADY_EXISTS, False),
]


@pytest.mark.parametrize(("src", "dst", "flags", "status", "is_moved"), MATRIX)
def test_rename_matrix(guest: Guest, tree: Tree, src: str, dst: str, flags: int, status: int,
                       is_moved: bool) -> None:
    """Each type flag, replace or not, each kind of source and destination, trailing delimiters, the root.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRename, HostServices/SharedFolders/vbsfpath.cpp:vbsfPathGuestToHost, Runtime/r3/posix/path-posix.cpp:rtPathPosixRename, Runtime/generic/RTFileMove-generic.cpp:RTFileMove, Runtime/r3/posix/dir-posix.cpp:RTDirRename, Runtime/r3/posix/path-posix.cpp:RTPathRename
    """
    _extra(tree)
    root = guest.map("sf")
    before = snapshot(tree.share)
    assert rename(guest, root, src, dst, flags) == status
    assert snapshot(tree.share) == (moved(before, src, dst) if is_moved else before)
    assert kind(tree.outside / "secret.txt") == "file:TOPSECRET"


@pytest.mark.parametrize(("params", "status"), [
    # svcCall (old style): count and every type, then both strings; then vbsfRename:
    # flags, source path (root), destination path, writable.
    (lambda g: [SvcParm.u32(0), g.s("a"), g.s("b")], S.VERR_INVALID_PARAMETER),
    (lambda g: [SvcParm.u32(0), g.s("a"), g.s("b"), SvcParm.u64(F)], S.VERR_INVALID_PARAMETER),
    (lambda g: [SvcParm.u32(0), SvcParm.ptr(2), g.s("b"), SvcParm.u32(F)], S.VERR_INVALID_PARAMETER),
    (lambda g: [SvcParm.u32(77), g.s("b.txt"), g.s("x"), SvcParm.u32(8)], S.VERR_INVALID_PARAMETER),
    (lambda g: [SvcParm.u32(0), g.s("../a"), g.s("../b"), SvcParm.u32(F)], S.VERR_INVALID_NAME),
    (lambda g: [SvcParm.u32(0), g.s("b.txt"), g.s("a/../../b"), SvcParm.u32(F)], S.VERR_INVALID_NAME),
    (lambda g: [SvcParm.u32(1), g.s("../x"), g.s("y"), SvcParm.u32(F)], S.VERR_INVALID_NAME),
    (lambda g: [SvcParm.u32(1), g.s("file.txt"), g.s("y"), SvcParm.u32(F)], S.VERR_WRITE_PROTECT),
    (lambda g: [SvcParm.u32(1), g.s("nope"), g.s("y"), SvcParm.u32(F)], S.VERR_WRITE_PROTECT),
])
def test_order_of_checks(guest: Guest, tree: Tree, params, status: int) -> None:
    """Which status wins when several inputs are wrong: svcCall, then vbsfRename's flags,
    source, destination and writable checks (root 1 is the read-only share).

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfRename
    """
    _extra(tree)
    assert guest.map("sf") == 0 and guest.map("ro") == 1
    before, ro_before = snapshot(tree.share), snapshot(tree.ro)
    assert guest.call(ShflFn.RENAME, *params(guest)) == status
    assert snapshot(tree.share) == before and snapshot(tree.ro) == ro_before


# --- SF20: moving links under SymlinkPolicy.SUBTREE ---------------------------------------

@pytest.fixture
def lsvc(svc, tree: Tree):
    """``svc`` plus "ln": a share allowing symlink creation (SUBTREE) with a/b/ and deep links."""
    base = tree.share / "lnshare"
    (base / "a/b").mkdir(parents=True)
    (base / "top.txt").write_bytes(b"top")
    os.symlink("../../top.txt", base / "a/b/up2")        # inside at depth 2, outside at 0 or 1
    os.symlink("../b", base / "a/b/sib")                 # inside at depth >= 1
    assert svc.add_mapping("ln", str(base), create_symlinks=True) == 0
    return svc


@pytest.mark.shfl("RENAME", "SYMLINK")
@pytest.mark.parametrize(("src", "dst", "flags", "status"), [
    ("a/b/up2", "up2", F, S.VERR_ACCESS_DENIED),         # would point above the share root
    ("a/b/up2", "a/up2", F, S.VERR_ACCESS_DENIED),
    ("a/b", "b", D, S.VERR_ACCESS_DENIED),               # a directory holding such a link
    ("a", "z", D, S.VINF_SUCCESS),                       # same depth: meanings unchanged
    ("a/b/sib", "a/sib", F, S.VINF_SUCCESS),             # still inside at depth 1
    ("a/b/up2", "a/b/c", F, S.VINF_SUCCESS),
    ("a/b/up2", "up2", D, S.VERR_NOT_A_DIRECTORY),       # VirtualBox's own checks come first
    ("a/b/up2", "top.txt", F, S.VERR_ALREADY_EXISTS),
])
def test_subtree_policy_judges_moved_links(lsvc, tree: Tree, src: str, dst: str, flags: int,
                                           status: int) -> None:
    """A rename that would carry a symlink to where its target leaves the share: refused
    with the SUBTREE policy's VERR_ACCESS_DENIED after VirtualBox's checks (SF20).

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRename, Runtime/r3/posix/path-posix.cpp:rtPathPosixRename
    """
    g = Guest(lsvc)
    root = g.map("ln")
    base = tree.share / "lnshare"
    before = snapshot(base)
    assert rename(g, root, src, dst, flags) == status
    assert snapshot(base) == (moved(before, src, dst) if status == 0 else before)


@pytest.mark.shfl("RENAME")
def test_policy_applies_only_where_subtree_guards_creation(svc, tree: Tree) -> None:
    """Without symlink creation (or with policy ANY) RENAME is VirtualBox's: links move freely.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRename
    """
    base = tree.share / "plain"
    (base / "a/b").mkdir(parents=True)
    os.symlink("../../x", base / "a/b/up2")
    assert svc.add_mapping("plain", str(base)) == 0
    g = Guest(svc)
    root = g.map("plain")
    assert rename(g, root, "a/b/up2", "up2", F) == S.VINF_SUCCESS
    assert kind(base / "up2") == "link->../../x"


def test_guest_mv_of_a_link_to_a_shallower_place_is_refused(tmp_path: Path) -> None:
    """Guest level: ln_s creates an in-share link at depth 2 (allowed), mv to depth 0 is
    refused (-38) and the host keeps the link where it was; mv to depth 2 elsewhere works.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRename, HostServices/SharedFolders/vbsf.cpp:vbsfSymlink
    """
    programs = Path(LIB_DIR).parent / "programs"
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "a/c").mkdir()
    (tmp_path / "top.txt").write_bytes(b"top")

    def run(program: str, args: list[str]):
        machine = vbox_board(mode=64)
        machine.add_share("d", tmp_path, create_symlinks=True)
        machine.set_arguments(args)
        machine.load(assemble(programs / program, mode=64))
        result = machine.run()
        assert result.fault is None
        return result

    assert run("ln_s.s", ["../../top.txt", "d:/a/b/up"]).exit_code == 0
    refused = run("mv.s", ["d:/a/b/up", "d:/up"])
    assert (refused.exit_code, refused.log_lines) == (3, ["error: mv d:/a/b/up: -38"])
    assert kind(tmp_path / "a/b/up") == "link->../../top.txt" and kind(tmp_path / "up") == "missing"
    assert run("mv.s", ["d:/a/b/up", "d:/a/c/up"]).exit_code == 0
    assert kind(tmp_path / "a/c/up") == "link->../../top.txt"


@pytest.mark.shfl("RENAME")
def test_policy_leaves_a_failing_rename_its_own_status(lsvc, tree: Tree) -> None:
    """A link named with a trailing delimiter never moves (rename(2): ENOTDIR), so the policy
    does not step in: VirtualBox's VERR_ALREADY_EXISTS.

    VBox: Runtime/r3/posix/path-posix.cpp:rtPathPosixRename
    """
    base = tree.share / "lnshare"
    os.symlink("../../a", base / "a/b/updir")          # a link to a directory, inside at depth 2
    g = Guest(lsvc)
    root = g.map("ln")
    before = snapshot(base)
    assert rename(g, root, "a/b/updir/", "updir", D) == S.VERR_ALREADY_EXISTS
    assert snapshot(base) == before


@pytest.mark.shfl("RENAME", "SET_ERROR_STYLE")
@pytest.mark.parametrize(("src", "dst", "windows_status"), [
    ("nodir/a", "x", S.VERR_PATH_NOT_FOUND),          # the source's directory is missing
    ("b.txt/a", "x", S.VERR_PATH_NOT_FOUND),          # ... or not a directory (host: ENOTDIR)
    ("b.txt", "nodir/x", S.VERR_PATH_NOT_FOUND),      # source exists, destination's directory missing
    ("dang_in", "nodir/x", S.VERR_FILE_NOT_FOUND),    # the source (stat follows links) does not exist
    ("nope", "nodir/x", S.VERR_FILE_NOT_FOUND),
])
def test_windows_error_style(svc, tree: Tree, src: str, dst: str, windows_status: int) -> None:
    """After SET_ERROR_STYLE(Windows) a VERR_FILE_NOT_FOUND becomes VERR_PATH_NOT_FOUND when
    the source's directory, or (for an existing source, stat following links) the
    destination's directory, is missing or not a directory.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRename, HostServices/SharedFolders/vbsf.cpp:vbsfErrorStyleIsWindowsPathNotFound2
    """
    _extra(tree)
    g = Guest(svc)
    assert g.call(ShflFn.SET_ERROR_STYLE, SvcParm.u32(1), SvcParm.u32(0)) == 0
    root = g.map("sf")
    before = snapshot(tree.share)
    assert rename(g, root, src, dst, F) == windows_status
    assert snapshot(tree.share) == before


@pytest.mark.parametrize(("src", "dst", "flags", "status", "after"), [
    # RTFileMove (FILE only): EXDEV -> copy to a created/truncated destination, unlink source.
    ("b.txt", "x", F, S.VINF_SUCCESS, {"b.txt": "missing", "x": "file:b"}),
    ("b.txt", "sub/file.txt", F | R, S.VINF_SUCCESS, {"b.txt": "missing", "sub/file.txt": "file:b"}),
    ("flink", "x", F, S.VINF_SUCCESS, {"flink": "missing", "x": "file:hello"}),  # the link's target copied
    ("fifo", "x", F, S.VERR_ACCESS_DENIED, {}),                                   # SF6: never opened
    # RTDirRename and RTPathRename have no fallback.
    ("b.txt", "x", FD, S.VERR_NOT_SAME_DEVICE, {}),
    ("dir2", "x", D, S.VERR_NOT_SAME_DEVICE, {}),
])
def test_cross_device_rename(guest: Guest, tree: Tree, src: str, dst: str, flags: int, status: int,
                             after: dict[str, str]) -> None:
    """rename(2) answering EXDEV (a mount point inside the share; injected here): FILE-only
    renames move by copying (new file mode 0600), the others answer VERR_NOT_SAME_DEVICE.

    VBox: Runtime/generic/RTFileMove-generic.cpp:RTFileMove, Runtime/r3/posix/path-posix.cpp:rtPathPosixRename
    """
    _extra(tree)
    os.symlink("sub/file.txt", tree.share / "flink")
    root = guest.map("sf")
    before = snapshot(tree.share)
    with inject(Fault("rename", errno.EXDEV)):
        assert rename(guest, root, src, dst, flags) == status
    assert snapshot(tree.share) == {k: v for k, v in {**before, **after}.items() if v != "missing"}
    if status == 0 and dst not in before:  # created: RTFileOpen's default mode
        assert (tree.share / dst).stat().st_mode & 0o777 == 0o600 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.shfl("RENAME", "SYMLINK")
@pytest.mark.parametrize("bad_link", [False, True])
def test_policy_walk_of_a_very_deep_tree_is_bounded(lsvc, tree: Tree, bad_link: bool) -> None:
    """A directory chain 1200 levels deep moved to the root: the walk uses one fd at a time
    and no recursion; a link at its bottom that climbs 1201 levels is found (refused), and
    without it the rename succeeds; no fd is left open.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfRename
    """
    base = tree.share / "lnshare"
    try:
        fd = os.open(base / "a/b", os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name in ["top"] + ["d"] * 1199:
                os.mkdir(name, dir_fd=fd)
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = sub
            if bad_link:
                os.symlink("../" * 1201 + "top.txt", "deep", dir_fd=fd)   # inside at depth 1202 only
        finally:
            os.close(fd)
        g = Guest(lsvc)
        root = g.map("ln")
        fds = len(os.listdir("/proc/self/fd"))
        status = rename(g, root, "a/b/top", "top", D)
        assert len(os.listdir("/proc/self/fd")) == fds
        assert status == (S.VERR_ACCESS_DENIED if bad_link else S.VINF_SUCCESS)
        assert (base / "a/b/top").is_dir() is bad_link and (base / "top").is_dir() is not bad_link
    finally:
        remove_tree(base)

"""SHFL_FN_CREATE: lookup, the file action matrix, directories, read-only shares."""

from __future__ import annotations

import os

import pytest

from hgcmlab.runtime.fs import RtFs
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCf, ShflCreateResult, ShflFn
from tests.service.conftest import READ_OPEN, Guest, Tree

R = ShflCreateResult
CF = ShflCf


@pytest.fixture
def root(guest: Guest) -> int:
    return guest.map("sf")


def test_lookup_existing_missing_and_path_not_found(guest: Guest, root: int) -> None:
    st, cp = guest.create(root, "/sub/file.txt", CF.LOOKUP | CF.ACT_FAIL_IF_NEW)
    assert (st, cp.Result, cp.Handle, cp.Info.cbObject) == (0, R.FILE_EXISTS, SHFL_HANDLE_NIL, 5)
    assert cp.Info.Attr.enmAdditional == 2 and cp.Info.Attr.fMode & RtFs.TYPE_FILE
    st, cp = guest.create(root, "/sub/nope", CF.LOOKUP)
    assert (st, cp.Result, cp.Handle) == (0, R.FILE_NOT_FOUND, SHFL_HANDLE_NIL)
    st, cp = guest.create(root, "/nope/deeper", CF.LOOKUP)
    assert (st, cp.Result) == (0, R.FILE_NOT_FOUND)  # missing intermediate: ENOENT (quirk 27)
    st, cp = guest.create(root, "/sub/file.txt/x", CF.LOOKUP)
    assert (st, cp.Result) == (0, R.PATH_NOT_FOUND)


def test_lookup_follows_links_unless_set_symlinks(guest: Guest, root: int) -> None:
    st, cp = guest.create(root, "link_in", CF.LOOKUP)
    assert cp.Info.Attr.fMode & RtFs.TYPE_MASK == RtFs.TYPE_DIRECTORY
    assert guest.call(ShflFn.SET_SYMLINKS) == 0
    st, cp = guest.create(root, "link_in", CF.LOOKUP)
    assert st == 0 and cp.Info.Attr.fMode & RtFs.TYPE_MASK == RtFs.TYPE_SYMLINK
    assert cp.Info.cbObject == 3  # target length


@pytest.mark.parametrize("if_exists,if_new,existing,result,handle,content", [
    (CF.ACT_OPEN_IF_EXISTS, CF.ACT_CREATE_IF_NEW, True, R.FILE_EXISTS, True, b"hello"),
    (CF.ACT_OPEN_IF_EXISTS, CF.ACT_CREATE_IF_NEW, False, R.FILE_CREATED, True, b""),
    (CF.ACT_OPEN_IF_EXISTS, CF.ACT_FAIL_IF_NEW, True, R.FILE_EXISTS, True, b"hello"),
    (CF.ACT_OPEN_IF_EXISTS, CF.ACT_FAIL_IF_NEW, False, R.FILE_NOT_FOUND, False, None),
    (CF.ACT_FAIL_IF_EXISTS, CF.ACT_CREATE_IF_NEW, True, R.FILE_EXISTS, False, b"hello"),
    (CF.ACT_FAIL_IF_EXISTS, CF.ACT_CREATE_IF_NEW, False, R.FILE_CREATED, True, b""),
    (CF.ACT_REPLACE_IF_EXISTS, CF.ACT_CREATE_IF_NEW, True, R.FILE_REPLACED, True, b""),
    (CF.ACT_REPLACE_IF_EXISTS, CF.ACT_CREATE_IF_NEW, False, R.FILE_CREATED, True, b""),
    (CF.ACT_OVERWRITE_IF_EXISTS, CF.ACT_CREATE_IF_NEW, True, R.FILE_REPLACED, True, b""),
    (CF.ACT_OVERWRITE_IF_EXISTS, CF.ACT_FAIL_IF_NEW, True, R.FILE_REPLACED, True, b""),
    (CF.ACT_REPLACE_IF_EXISTS, CF.ACT_FAIL_IF_NEW, False, R.FILE_NOT_FOUND, False, None),
])
def test_file_action_matrix(guest: Guest, root: int, tree: Tree, if_exists: int, if_new: int,
                            existing: bool, result: int, handle: bool, content: bytes | None) -> None:
    name = "sub/file.txt" if existing else "sub/new.txt"
    st, cp = guest.create(root, name, if_exists | if_new | CF.ACCESS_READWRITE)
    assert st == 0
    assert cp.Result == result
    assert (cp.Handle != SHFL_HANDLE_NIL) == handle
    host = tree.share / name
    assert (host.read_bytes() if host.exists() else None) == content
    if result == R.FILE_EXISTS and not handle:
        assert cp.Info.cbObject == 5  # FAIL_IF_EXISTS reports the existing object's info


def test_fail_if_exists_and_fail_if_new_together_is_invalid(guest: Guest, root: int) -> None:
    st, cp = guest.create(root, "sub/file.txt", CF.ACT_FAIL_IF_EXISTS | CF.ACT_FAIL_IF_NEW)
    assert (st, cp.Result, cp.Handle) == (Status.VERR_INVALID_PARAMETER, R.NO_RESULT, SHFL_HANDLE_NIL)
    st, _ = guest.create(root, "sub/file.txt", 0x40 | CF.ACT_FAIL_IF_NEW)
    assert st == Status.VERR_INVALID_PARAMETER


def test_replace_sets_guest_supplied_size(guest: Guest, root: int, tree: Tree) -> None:
    st, cp = guest.create(root, "sub/file.txt", CF.ACT_REPLACE_IF_EXISTS | CF.ACCESS_WRITE, size=100)
    assert st == 0 and cp.Result == R.FILE_REPLACED and cp.Info.cbObject == 100
    assert (tree.share / "sub/file.txt").read_bytes() == b"\0" * 100


def test_create_mode_rules(guest: Guest, root: int, tree: Tree) -> None:
    umask = os.umask(0)
    os.umask(umask)
    guest.create(root, "m1", CF.ACCESS_WRITE, mode=0o100640)
    assert (tree.share / "m1").stat().st_mode & 0o777 == 0o640 & ~umask
    guest.create(root, "m2", CF.ACCESS_WRITE, mode=0o100640, handle_in=0)  # legacy marker
    assert (tree.share / "m2").stat().st_mode & 0o777 == 0o600 & ~umask
    guest.create(root, "m3", CF.ACCESS_WRITE, mode=RtFs.DOS_READONLY)
    assert (tree.share / "m3").stat().st_mode & 0o777 == 0o444 & ~umask
    guest.create(root, "m4", CF.ACCESS_WRITE, mode=0o107777)
    assert (tree.share / "m4").stat().st_mode & 0o7000 == 0


def test_existing_directory_detected_without_flag(guest: Guest, root: int) -> None:
    st, cp = guest.create(root, "sub", READ_OPEN)
    assert st == 0 and cp.Result == R.FILE_EXISTS and cp.Handle != SHFL_HANDLE_NIL
    assert cp.CreateFlags & CF.DIRECTORY
    st, _, _ = guest.read(root, cp.Handle, 0, 4)
    assert st == Status.VERR_INVALID_HANDLE  # it is a directory handle


def test_directory_create_and_open(guest: Guest, root: int, tree: Tree) -> None:
    st, cp = guest.create(root, "test/dir", CF.DIRECTORY | CF.ACCESS_READ)
    assert st == Status.VERR_FILE_NOT_FOUND and cp.Result == R.FILE_NOT_FOUND  # parent missing
    st, cp = guest.create(root, "sub/dir", CF.DIRECTORY | CF.ACCESS_READ)
    assert (st, cp.Result) == (0, R.FILE_CREATED) and (tree.share / "sub/dir").is_dir()
    assert cp.Info.Attr.fMode & RtFs.DOS_DIRECTORY and cp.Handle != SHFL_HANDLE_NIL
    st, cp = guest.create(root, "sub/dir", CF.DIRECTORY | CF.ACT_FAIL_IF_EXISTS | CF.ACCESS_READ)
    assert (st, cp.Result, cp.Handle) == (Status.VERR_ALREADY_EXISTS, R.FILE_EXISTS, SHFL_HANDLE_NIL)
    st, cp = guest.create(root, "sub/dir", CF.DIRECTORY | CF.ACT_REPLACE_IF_EXISTS | CF.ACT_FAIL_IF_NEW)
    assert (st, cp.Result) == (0, R.FILE_EXISTS) and cp.Handle != SHFL_HANDLE_NIL
    st, cp = guest.create(root, "sub/nodir", CF.DIRECTORY | CF.ACT_FAIL_IF_NEW)
    assert (st, cp.Result, cp.Handle) == (Status.VERR_FILE_NOT_FOUND, R.FILE_NOT_FOUND, SHFL_HANDLE_NIL)
    st, cp = guest.create(root, "sub/file.txt/x", CF.DIRECTORY | CF.ACT_FAIL_IF_NEW)
    assert (st, cp.Result) == (Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND)


def test_directory_flag_on_existing_file_opens_nothing_as_dir(guest: Guest, root: int) -> None:
    st, cp = guest.create(root, "sub/file.txt", CF.DIRECTORY | CF.ACT_OPEN_IF_EXISTS | CF.ACT_FAIL_IF_NEW)
    assert (st, cp.Result, cp.Handle) == (Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND, SHFL_HANDLE_NIL)


def test_open_target_directory(guest: Guest, root: int) -> None:
    st, cp = guest.create(root, "sub/file.txt", CF.OPEN_TARGET_DIRECTORY | READ_OPEN)
    assert st == 0 and cp.Result == R.FILE_EXISTS
    assert cp.CreateFlags == CF.OPEN_TARGET_DIRECTORY | CF.DIRECTORY | CF.ACT_FAIL_IF_NEW | CF.ACCESS_READ
    assert cp.Info.Attr.fMode & RtFs.DOS_DIRECTORY
    # P23: the parent of a top-level entry is the root itself.
    st, cp = guest.create(root, "sub", CF.OPEN_TARGET_DIRECTORY | READ_OPEN)
    assert st == 0 and cp.Handle != SHFL_HANDLE_NIL and cp.CreateFlags & CF.DIRECTORY
    # Ignored for a path that does not exist.
    st, cp = guest.create(root, "sub/none", CF.OPEN_TARGET_DIRECTORY | READ_OPEN)
    assert (st, cp.Result) == (0, R.FILE_NOT_FOUND)


def test_read_only_mapping_gates(guest: Guest, tree: Tree) -> None:
    rr = guest.map("ro")
    for flags in (CF.ACCESS_WRITE, CF.ACCESS_READ,  # CREATE_IF_NEW is 0: the default (quirk 11)
                  CF.ACCESS_WRITE | CF.ACT_REPLACE_IF_EXISTS | CF.ACT_FAIL_IF_NEW,
                  CF.ACT_OVERWRITE_IF_EXISTS | CF.ACT_FAIL_IF_NEW):
        st, cp = guest.create(rr, "new.txt" if flags & 0xF00 == 0 else "file.txt", flags)
        assert (st, cp.Result, cp.Handle) == (Status.VERR_WRITE_PROTECT, R.NO_RESULT, SHFL_HANDLE_NIL)
    st, cp = guest.create(rr, "file.txt", CF.ACCESS_WRITE | CF.ACT_FAIL_IF_NEW)
    assert (st, cp.Handle) == (Status.VERR_INVALID_PARAMETER, SHFL_HANDLE_NIL)
    st, cp = guest.create(rr, "file.txt", CF.ACCESS_READWRITE | CF.ACT_FAIL_IF_NEW)
    assert st == 0 and cp.Result == R.FILE_EXISTS  # write access silently dropped
    st, _, _ = guest.write(rr, cp.Handle, 0, b"x")
    assert st == Status.VERR_WRITE_PROTECT
    st, data, _ = guest.read(rr, cp.Handle, 0, 20)
    assert (st, data) == (0, b"ro-data")
    st, cp = guest.create(rr, "dir", CF.DIRECTORY | CF.ACCESS_READ)
    assert st == Status.VERR_WRITE_PROTECT
    assert sorted(os.listdir(tree.ro)) == ["file.txt"]
    assert (tree.ro / "file.txt").read_bytes() == b"ro-data"


def test_path_conversion_failure_leaves_parms_untouched(guest: Guest, root: int) -> None:
    st, cp = guest.create(root, "../outside/secret.txt", READ_OPEN, handle_in=0x1234)
    assert st == Status.VERR_INVALID_NAME
    assert (cp.Handle, cp.Result) == (0x1234, 0)


def test_create_parms_size_must_be_exact(guest: Guest, root: int) -> None:
    for size in (107, 109, 0):
        st = guest.call(ShflFn.CREATE, SvcParm.u32(root), guest.s("sub"), SvcParm.ptr(size))
        assert st == Status.VERR_INVALID_PARAMETER


def test_lookup_hidden_and_special_bits_cleared(guest: Guest, root: int, tree: Tree) -> None:
    p = tree.share / ".dot"
    p.write_bytes(b"")
    os.chmod(p, 0o6755)
    st, cp = guest.create(root, ".dot", CF.LOOKUP)
    assert cp.Info.Attr.fMode & RtFs.DOS_HIDDEN
    assert cp.Info.Attr.fMode & 0o7777 == 0o755

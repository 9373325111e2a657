"""Case correction for case-insensitive guests on a case-sensitive host (§4.3 step 7, P21)."""

from __future__ import annotations

import os

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCf, ShflCreateResult, ShflFn, ShflRename
from hgcmlab.services.sharedfolders.service import SharedFoldersService
from tests.service.conftest import READ_OPEN, Guest, Tree

CF, R = ShflCf, ShflCreateResult


@pytest.fixture
def icase(svc: SharedFoldersService) -> tuple[Guest, int]:
    g = Guest(svc)
    return g, g.map("sf", case_sensitive=False)


def test_p21_case_insensitive_open_and_escape(icase: tuple[Guest, int]) -> None:
    g, root = icase
    st, cp = g.create(root, "SUB/FILE.TXT", READ_OPEN)
    assert (st, cp.Result) == (0, R.FILE_EXISTS)
    assert g.read(root, cp.Handle, 0, 5)[1] == b"hello"
    st, cp = g.create(root, "SUB/../../OUTSIDE/SECRET.TXT", READ_OPEN)
    assert st == Status.VERR_INVALID_NAME and cp.Handle == SHFL_HANDLE_NIL


def test_case_sensitive_mapping_is_not_corrected(guest: Guest) -> None:
    root = guest.map("sf")
    st, cp = guest.create(root, "SUB/FILE.TXT", READ_OPEN)
    assert (st, cp.Result) == (0, R.FILE_NOT_FOUND)


def test_map_folder_old_is_case_insensitive(svc: SharedFoldersService) -> None:
    g = Guest(svc)
    root = SvcParm.u32(0)
    assert g.call(ShflFn.MAP_FOLDER_OLD, g.s("sf"), root, SvcParm.u32(ord("/"))) == 0
    assert g.create(root.value, "Sub/File.Txt", READ_OPEN)[1].Result == R.FILE_EXISTS


def test_new_file_in_corrected_directory(icase: tuple[Guest, int], tree: Tree) -> None:
    g, root = icase
    st, cp = g.create(root, "SUB/EMPTY/New.Txt", CF.ACCESS_WRITE)
    assert (st, cp.Result) == (0, R.FILE_CREATED)
    assert (tree.share / "sub/empty/New.Txt").is_file()


def test_first_match_wins_and_byte_length_must_agree(icase: tuple[Guest, int], tree: Tree) -> None:
    g, root = icase
    (tree.share / "sub/aTestJe.bat").write_bytes(b"1")
    (tree.share / "sub/aTestje.bat").write_bytes(b"2")
    (tree.share / "sub/é.txt").write_bytes(b"3")
    (tree.share / "sub/s.txt").write_bytes(b"4")
    h = g.open(root, "SUB/ATESTJE.BAT")
    assert g.read(root, h, 0, 1)[1] == b"1"  # the first listed match (tstShflCase case 4)
    h = g.open(root, "sub/É.TXT")  # same UTF-8 length: corrected
    assert g.read(root, h, 0, 1)[1] == b"3"
    st, cp = g.create(root, "sub/ſ.txt", READ_OPEN)  # upper-cases to S but is 2 bytes long
    assert (st, cp.Result) == (0, R.FILE_NOT_FOUND)


def test_rename_destination_keeps_its_last_component(icase: tuple[Guest, int], tree: Tree) -> None:
    g, root = icase
    st = g.call(ShflFn.RENAME, SvcParm.u32(root), g.s("SUB/FILE.TXT"), g.s("SUB/FILE.TXT"),
                SvcParm.u32(ShflRename.FILE))
    assert st == 0
    assert sorted(os.listdir(tree.share / "sub")) == ["FILE.TXT", "empty"]


def test_list_filter_directory_corrected_pattern_kept(icase: tuple[Guest, int], tree: Tree) -> None:
    g, root = icase
    (tree.share / "sub/FILE.dat").write_bytes(b"")
    d = g.open(root, "", CF.DIRECTORY | READ_OPEN)
    assert g.list(root, d, path="SUB/F*.TXT").names == ["file.txt"]


def test_correction_stays_inside(icase: tuple[Guest, int], tree: Tree) -> None:
    g, root = icase
    for path in ("ABS_OUT/SECRET.TXT", "REL_OUT/secret.txt", "Abs_Out/secret.txt"):
        st, cp = g.create(root, path, READ_OPEN)
        assert st == Status.VERR_ACCESS_DENIED and cp.Handle == SHFL_HANDLE_NIL
    st, cp = g.create(root, "DANGLING", CF.ACCESS_WRITE | CF.ACT_OVERWRITE_IF_EXISTS)
    assert st == Status.VERR_ACCESS_DENIED
    assert not (tree.outside / "created.txt").exists()

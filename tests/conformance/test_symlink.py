"""SHFL_FN_SYMLINK against VirtualBox 7.0.14: svcCall's checks, vbsfSymlink, RTSymlinkCreate.

The project's creation policy (SEC2, SF17: in-share targets, writable mapping) is pinned in
tests/service/test_sf_symlink.py and tests/service/test_sf_limits.py.
"""

from __future__ import annotations

import os

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn
from hgcmlab.services.sharedfolders.service import SharedFoldersService
from tests.conformance._info import assert_info_is_stat
from tests.service.conftest import Guest, Tree


@pytest.fixture
def links(svc: SharedFoldersService, tree: Tree) -> SharedFoldersService:
    """Adds "sl": the share again, with symlink creation enabled."""
    assert svc.add_mapping("sl", str(tree.share), create_symlinks=True) == 0
    return svc


def symlink(g: Guest, root: int, link: SvcParm | str, target: SvcParm | str,
            info_size: int = 92) -> tuple[int, bytes]:
    info = SvcParm.ptr(b"\xAB" * info_size)
    st = g.call(ShflFn.SYMLINK, SvcParm.u32(root), g.s(link) if isinstance(link, str) else link,
                g.s(target) if isinstance(target, str) else target, info)
    return st, bytes(info.buffer)


@pytest.mark.shfl("SYMLINK")
@pytest.mark.parametrize("name", ["newlink", ".hidden_link"])
def test_created_link_and_its_info(links: SharedFoldersService, tree: Tree, name: str) -> None:
    """A new link: status 0, the target text stored as given, info = its lstat (HIDDEN for a dot name).

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSymlink, Runtime/r3/posix/symlink-posix.cpp:RTSymlinkCreate, Runtime/r3/posix/path2-posix.cpp:RTPathQueryInfoEx
    """
    g = Guest(links)
    root = g.map("sl")
    st, info = symlink(g, root, f"sub/{name}", "file.txt")
    assert st == Status.VINF_SUCCESS
    assert_info_is_stat(info, os.lstat(tree.share / "sub" / name), name.encode())
    assert os.readlink(tree.share / "sub" / name) == "file.txt"  # after: readlink sets atime


_UTF16 = [
    ("valid strings: vbsfSymlink refuses UTF-16 clients", None, 92, Status.VERR_NOT_IMPLEMENTED),
    ("malformed string: svcCall's check comes first", b"\x02\x00\x03\x00", 92, Status.VERR_INVALID_PARAMETER),
    ("info not 92 bytes: svcCall's check comes first", None, 91, Status.VERR_INVALID_PARAMETER),
]


@pytest.mark.shfl("SYMLINK")
@pytest.mark.parametrize("what,bad,info_size,status", _UTF16, ids=[r[0] for r in _UTF16])
def test_utf16_client_check_order(links: SharedFoldersService, tree: Tree, what: str,
                                  bad: bytes | None, info_size: int, status: int) -> None:
    """A UTF-16 client: strings and info size are checked (VERR_INVALID_PARAMETER) before VERR_NOT_IMPLEMENTED.

    VBox: HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall, HostServices/SharedFolders/vbsf.cpp:vbsfSymlink
    """
    g = Guest(links, utf8=False)
    root = g.map("sl")
    link = SvcParm.ptr(bad) if bad is not None else "l1"
    st, info = symlink(g, root, link, "sub", info_size)
    assert st == status
    assert info == b"\xAB" * info_size
    assert not os.path.lexists(tree.share / "l1")


_TRAILING = [
    ("free name + delimiter: symlink(2) ENOENT, nothing created", "l2/", Status.VERR_FILE_NOT_FOUND),
    ("existing directory + delimiter: EEXIST", "sub/", Status.VERR_ALREADY_EXISTS),
    ("existing file name: EEXIST", "sub/file.txt", Status.VERR_ALREADY_EXISTS),
]


@pytest.mark.shfl("SYMLINK")
@pytest.mark.parametrize("what,link,status", _TRAILING, ids=[r[0] for r in _TRAILING])
def test_link_path_reaching_the_host_call(links: SharedFoldersService, tree: Tree, what: str,
                                          link: str, status: int) -> None:
    """A link path with a trailing delimiter or an existing name: the status symlink(2) gives; nothing created, info untouched.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSymlink, Runtime/r3/posix/symlink-posix.cpp:RTSymlinkCreate
    """
    g = Guest(links)
    root = g.map("sl")
    before = sorted(os.listdir(tree.share))
    st, info = symlink(g, root, link, "sub")
    assert (st, info) == (status, b"\xAB" * 92)
    assert sorted(os.listdir(tree.share)) == before
    assert not os.path.islink(tree.share / "sub/file.txt")


@pytest.mark.shfl("SYMLINK")
def test_creation_disabled_is_write_protect(guest: Guest, tree: Tree) -> None:
    """A mapping without symlink creation: VERR_WRITE_PROTECT, nothing created.

    VBox: HostServices/SharedFolders/vbsf.cpp:vbsfSymlink
    """
    root = guest.map("sf")
    assert symlink(guest, root, "l3", "sub") == (Status.VERR_WRITE_PROTECT, b"\xAB" * 92)
    assert not os.path.lexists(tree.share / "l3")

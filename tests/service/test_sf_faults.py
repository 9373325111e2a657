"""Host failures injected into runtime/'s syscall layer (hgcmlab.runtime.faults): the guest gets the
matching status and byte count, acknowledged data stays on the host, FLUSH reaches fsync."""

from __future__ import annotations

import errno
import os

import pytest

from hgcmlab.runtime.faults import Fault, inject
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCf, ShflFn
from tests.service.conftest import READ_OPEN, Guest, Tree

CF = ShflCf
RW_NEW = CF.ACCESS_READWRITE | CF.ACT_CREATE_IF_NEW | CF.ACT_OPEN_IF_EXISTS


@pytest.fixture
def root(guest: Guest) -> int:
    return guest.map("sf")


def test_enospc_write_keeps_earlier_acknowledged_data(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "f.bin", RW_NEW)
    assert guest.write(root, h, 0, b"first")[::2] == (0, 5)
    with inject(Fault("pwrite", errno.ENOSPC)):
        st, offset, cb = guest.write(root, h, 5, b"second")
    assert (st, offset, cb) == (Status.VERR_DISK_FULL, 5, 0)
    assert (tree.share / "f.bin").read_bytes() == b"first"


@pytest.mark.parametrize(("err", "status"), [(errno.EIO, Status.VERR_DEV_IO_ERROR),
                                             (errno.EACCES, Status.VERR_ACCESS_DENIED)])
def test_read_errors_map_to_status_and_zero_count(guest: Guest, root: int, err: int, status: int) -> None:
    h = guest.open(root, "sub/file.txt")
    with inject(Fault("preadv", err)):
        assert guest.read(root, h, 0, 5) == (status, b"", 0)
    assert guest.read(root, h, 0, 5)[1] == b"hello"


@pytest.mark.parametrize(("err", "status"), [(errno.EACCES, Status.VERR_ACCESS_DENIED),
                                             (errno.EMFILE, Status.VERR_TOO_MANY_OPEN_FILES),
                                             (errno.EIO, Status.VERR_DEV_IO_ERROR)])
def test_open_errors(guest: Guest, root: int, err: int, status: int) -> None:
    with inject(Fault("open", err, times=None), Fault("openat2", err, times=None)):
        st, cp = guest.create(root, "sub/file.txt", READ_OPEN)
    assert (st, cp.Handle) == (status, SHFL_HANDLE_NIL)
    assert guest.create(root, "sub/file.txt", READ_OPEN)[0] == 0


def test_eintr_is_retried(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "f.bin", RW_NEW)
    with inject(Fault("pwrite", errno.EINTR, times=3), Fault("preadv", errno.EINTR)) as log:
        assert guest.write(root, h, 0, b"data")[::2] == (0, 4)
        assert guest.read(root, h, 0, 4)[1] == b"data"
    assert log.count("pwrite") == 4 and log.count("preadv") == 2
    assert (tree.share / "f.bin").read_bytes() == b"data"


def test_short_writes_are_continued(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "f.bin", RW_NEW)
    with inject(Fault("pwrite", short=3, times=None)) as log:
        assert guest.write(root, h, 0, b"0123456789")[::2] == (0, 10)
    assert log.count("pwrite") == 4
    assert (tree.share / "f.bin").read_bytes() == b"0123456789"


@pytest.mark.parametrize("pages", [False, True])
def test_short_write_then_enospc_reports_what_is_on_disk(guest: Guest, root: int, tree: Tree,
                                                         pages: bool) -> None:
    h = guest.open(root, "f.bin", RW_NEW)
    with inject(Fault("pwrite", short=3), Fault("pwrite", errno.ENOSPC, after=1)):
        st, offset, cb = guest.write(root, h, 0, b"0123456789", pages=pages)
    assert (st, offset, cb) == (0, 3, 3)
    assert (tree.share / "f.bin").read_bytes() == b"012"


def test_flush_reaches_fsync_of_the_handle(guest: Guest, root: int) -> None:
    h = guest.open(root, "f.bin", RW_NEW)
    guest.write(root, h, 0, b"data")
    with inject(record=("fsync",)) as log:
        assert guest.call(ShflFn.FLUSH, SvcParm.u32(root), SvcParm.u64(h)) == 0
    assert log.count("fsync") == 1
    fd = log.calls[0][1]
    assert os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) == "f.bin"
    with inject(Fault("fsync", errno.EIO)):
        assert guest.call(ShflFn.FLUSH, SvcParm.u32(root), SvcParm.u64(h)) == Status.VERR_DEV_IO_ERROR


def test_set_size_and_mkdir_errors(guest: Guest, root: int, tree: Tree) -> None:
    h = guest.open(root, "f.bin", RW_NEW)
    with inject(Fault("ftruncate", errno.ENOSPC)):
        st = guest.call(ShflFn.SET_FILE_SIZE, SvcParm.u32(root), SvcParm.u64(h), SvcParm.u64(1 << 20))
    assert st == Status.VERR_DISK_FULL and (tree.share / "f.bin").stat().st_size == 0
    with inject(Fault("mkdir", errno.ENOSPC)):
        st, cp = guest.create(root, "newdir", CF.DIRECTORY)
    # As in VirtualBox the directory open that follows a failed mkdir decides the status.
    assert st == Status.VERR_FILE_NOT_FOUND and cp.Handle == SHFL_HANDLE_NIL
    assert not (tree.share / "newdir").exists()


def test_injector_is_off_outside_the_block() -> None:
    from hgcmlab.runtime import fs
    assert all(fs.SYSCALLS[name] is getattr(os, name) for name in ("pread", "pwrite", "fsync", "open"))
    with pytest.raises(ValueError):
        Fault("nosuchcall", errno.EIO)

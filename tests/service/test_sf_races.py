"""Race cases of security.md §5.7 against the service: host-side swaps and renames during
guest operations (R03, R07) and CLOSE racing READ from two vCPU threads (R05).  The service
serialises its entry points with one lock; file resolution is fd-relative and confined, so a
swapped-in symlink can never lead outside."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCreateResult
from hgcmlab.services.sharedfolders.service import SharedFoldersService
from tests.service.conftest import Guest, Tree

R = ShflCreateResult


@pytest.fixture
def root(guest: Guest) -> int:
    return guest.map("sf")


@contextmanager
def running(step: Callable[[], None]) -> Iterator[None]:
    """Run ``step`` in a loop on a helper thread for the duration of the block."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            while not stop.is_set():
                step()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    if errors:
        raise errors[0]


def test_r03_symlink_swap_never_reads_outside(guest: Guest, root: int, tree: Tree) -> None:
    sub, real = tree.share / "sub", tree.share / "sub_real"
    (tree.share / "sub/secret.txt").write_bytes(b"inside")
    state = {"link": False}

    def swap() -> None:
        if state["link"]:
            os.unlink(sub)
            os.rename(real, sub)
        else:
            os.rename(sub, real)
            os.symlink(str(tree.outside), sub)
        state["link"] = not state["link"]

    seen: set[bytes] = set()
    with running(swap):
        for i in range(1500):
            st, cp = guest.create(root, "sub/secret.txt" if i % 2 else "sub/file.txt",
                                  0x1000 | 0x100)
            if st == 0 and cp.Handle != SHFL_HANDLE_NIL:
                rst, data, _ = guest.read(root, cp.Handle, 0, 16)
                assert rst == 0
                seen.add(data)
                assert guest.close(root, cp.Handle) == 0
            else:
                assert st in (0, Status.VERR_ACCESS_DENIED, Status.VERR_PATH_NOT_FOUND,
                              Status.VERR_FILE_NOT_FOUND), st
    if state["link"]:
        swap()
    assert b"TOPSECRET" not in seen and seen <= {b"hello", b"inside"}


def test_r07_rename_during_walk(guest: Guest, root: int, tree: Tree) -> None:
    a, b = tree.share / "sub", tree.share / "sub2"
    flip = {"moved": False}

    def rename() -> None:
        os.rename(*((b, a) if flip["moved"] else (a, b)))
        flip["moved"] = not flip["moved"]

    outcomes: set[tuple[int, int]] = set()
    with running(rename):
        for _ in range(1500):
            st, cp = guest.create(root, "sub/file.txt", 0x1000 | 0x100)
            outcomes.add((st, cp.Result))
            if cp.Handle != SHFL_HANDLE_NIL:
                assert guest.read(root, cp.Handle, 0, 5)[1] == b"hello"
                guest.close(root, cp.Handle)
    if flip["moved"]:
        rename()
    assert outcomes <= {(0, R.FILE_EXISTS), (0, R.PATH_NOT_FOUND), (0, R.FILE_NOT_FOUND)}


def test_r05_close_vs_read(svc: SharedFoldersService) -> None:
    g = Guest(svc)
    root = g.map("sf")
    fds_before = len(os.listdir("/proc/self/fd"))
    reads: set[int] = set()
    closes: set[int] = set()
    for _ in range(300):
        h = g.open(root, "sub/file.txt")
        barrier = threading.Barrier(2)

        def reader() -> None:
            barrier.wait()
            reads.add(g.read(root, h, 0, 5)[0])

        def closer() -> None:
            barrier.wait()
            closes.add(g.close(root, h))

        threads = [threading.Thread(target=reader), threading.Thread(target=closer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert g.read(root, h, 0, 5)[0] == Status.VERR_INVALID_HANDLE
    assert reads <= {0, Status.VERR_INVALID_HANDLE} and closes == {0}
    assert len(os.listdir("/proc/self/fd")) == fds_before

"""Machines release what they hold, deterministically, and engines are closed safely per
thread (issue 12).  Structural checks: engine, fd and thread counts; no timing."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator

import pytest

from hgcmlab.guest_asm import assemble
from hgcmlab.guest_asm.assembler import AssembledProgram
from hgcmlab.machine import cpu
from hgcmlab.machine.device import AttachContext, PortRange
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import RunEnd

SMALL_RAM = 0x20000
#: Count to 50 in a loop, then exit with code 7.
LOOP = """
_start:
    xor ecx, ecx
again:
    inc ecx
    cmp ecx, 50
    jb again
    mov al, 7
    out 0xF4, al
"""
#: Write to port 0x700 (the test device), then exit 0.
POKE = """
_start:
    mov dx, 0x700
    mov al, 1
    out dx, al
    mov al, 0
    out 0xF4, al
"""


@pytest.fixture(scope="module")
def loop_program() -> AssembledProgram:
    return assemble(LOOP, mode=64)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.fixture
def collector_off() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def test_a_thousand_machines_leave_no_engine_fd_or_thread_behind(loop_program: AssembledProgram,
                                                                   collector_off: None) -> None:
    """Created, run and closed with the cyclic collector off: close alone releases them."""
    engines, fds, threads, os_threads = cpu.open_engines(), _open_fds(), threading.active_count(), _os_threads()
    for _ in range(1000):
        machine = vbox_board(64, SMALL_RAM)
        machine.load(loop_program)
        result = machine.run()
        assert (result.end, result.exit_code) == (RunEnd.EXIT, 7)
        machine.close()
    assert cpu.open_engines() == engines
    assert _open_fds() == fds
    assert (threading.active_count(), _os_threads()) == (threads, os_threads)


def test_close_releases_the_engine_at_once(loop_program: AssembledProgram, collector_off: None) -> None:
    before = cpu.open_engines()
    machine = vbox_board(64, SMALL_RAM)
    assert cpu.open_engines() == before + 1
    machine.close()
    assert cpu.open_engines() == before
    machine.close()  # idempotent
    assert cpu.open_engines() == before


def test_a_dropped_machine_is_released_by_the_collector() -> None:
    before = cpu.open_engines()
    vbox_board(64, SMALL_RAM)
    gc.collect()
    assert cpu.open_engines() == before


class _Hook:
    """A device on port 0x700 that runs ``action`` when written (inside the guest's run)."""

    name = "hook"

    def __init__(self) -> None:
        self.action = lambda: None

    def port_ranges(self) -> list[PortRange]:
        return [PortRange("poke", 0, 1, frozenset({1}), fixed_base=0x700)]

    def attach(self, context: AttachContext) -> None:
        pass

    def io_read(self, range_name: str, offset: int, size: int) -> int:
        return 0xFF

    def io_write(self, range_name: str, offset: int, size: int, value: int) -> None:
        self.action()


def test_an_engine_released_inside_another_engines_run_is_closed_after_that_run() -> None:
    """A collection inside a hook (here: forced) must not uc_close an engine while this
    thread is inside emu_start; it is closed as soon as the run returns."""
    running = vbox_board(64, SMALL_RAM)
    hook = _Hook()
    running.add_device(hook)
    running.load(assemble(POKE, mode=64))
    other = vbox_board(64, SMALL_RAM)
    before = cpu.open_engines()
    seen: list[int] = []

    def drop_other() -> None:
        nonlocal other
        other = None  # type: ignore[assignment]  # the last reference: a garbage cycle now
        gc.collect()
        seen.append(cpu.open_engines())

    hook.action = drop_other
    try:
        result = running.run()
        assert (result.end, result.exit_code) == (RunEnd.EXIT, 0)
        assert seen == [before], "not closed inside the run"
        assert cpu.open_engines() == before - 1, "closed when the run returned"
    finally:
        running.close()


def test_machines_in_two_threads_run_and_close_while_the_collector_runs(loop_program: AssembledProgram) -> None:
    """The former process-wide "no GC while Unicorn runs" switch was broken by a second
    thread re-enabling collection; now collections may run anywhere."""
    before = cpu.open_engines()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(40):
                machine = vbox_board(64, SMALL_RAM)
                machine.load(loop_program)
                assert machine.run().exit_code == 7
                if _ % 2:
                    machine.close()  # the others are left to the collector
                gc.collect()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gc.collect()
    assert errors == []
    assert cpu.open_engines() == before

"""A run stopped and resumed under gdb executes, counts and traces exactly like one that was
never stopped: breakpoints at every label, single steps, watchpoints on the HGCM requests'
flags and interrupt requests, with synchronous and asynchronous HGCM, polling and
interrupt-driven guests, both modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.gdbstub.client import GdbClient
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import RunResult
from hgcmlab.machine.programs import PROGRAMS_DIR
from hgcmlab.machine.tracing import ListSink
from tests.machine.test_gdb_protocol import start_stub

_OFF_FLAGS = 24


def plain_run(name: str, mode: int, async_hgcm: bool, share: Path) -> tuple[RunResult, list[str]]:
    config = VMMDevConfig(timing=HgcmTiming(force_async=True)) if async_hgcm else None
    machine = vbox_board(mode, vmmdev_config=config)
    events = ListSink()
    machine.tracer.add_sink(events)
    machine.add_share("demo", share)
    machine.load(assemble(PROGRAMS_DIR / name, mode=mode))
    try:
        return machine.run(), [event.host_independent().to_json() for event in events.events]
    finally:
        machine.close()


def drive(client: GdbClient, symbols: dict[str, int], end: int) -> int:
    """Break at every label, watch the connect and call requests' flags, step now and
    then, interrupt now and then; continue to the end.  Returns the number of stops."""
    for address in sorted(set(symbols.values())):
        if address < end:
            assert client.request(f"Z0,{address:x},1".encode()) == b"OK"
    for name in ("hgcm_connect_req", "hgcm_call_req"):
        if name in symbols:
            assert client.request(f"Z2,{symbols[name] + _OFF_FLAGS:x},4".encode()) == b"OK"
    stops = 0
    while True:
        if stops % 7 == 3:
            client.send(b"c")
            client.send_raw(b"\x03")
            reply = client.receive()
        elif stops % 5 == 1:
            reply = client.request(b"vCont;s:1")
        else:
            reply = client.request(b"vCont;c")
        if reply.startswith(b"W"):
            return stops
        assert reply.startswith(b"T0"), reply
        stops += 1
        assert stops < 20_000


@pytest.mark.parametrize("name, mode, async_hgcm", [
    ("demo.s", 64, False), ("demo.s", 32, True), ("demo_irq.s", 64, True), ("demo_irq.s", 32, False),
    ("demo_poll_async.s", 64, True),
])
def test_stops_change_nothing(tmp_path: Path, name: str, mode: int, async_hgcm: bool) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "gdb").mkdir()
    expected, expected_events = plain_run(name, mode, async_hgcm, tmp_path / "plain")
    events = ListSink()
    stub = start_stub(PROGRAMS_DIR / name, mode=mode, share=tmp_path / "gdb", async_hgcm=async_hgcm, trace=events)
    try:
        stops = drive(stub.client, stub.program.symbols, stub.program.end)
        result = stub.finish()
    finally:
        stub.client.close()
        stub.thread.join(30)
        stub.machine.close()
    assert stops > 100
    assert isinstance(result, RunResult)
    assert (result.end, result.exit_code, result.instructions, result.cycles) == (
        expected.end, expected.exit_code, expected.instructions, expected.cycles)
    assert [event.host_independent().to_json() for event in events.events] == expected_events


def step_counts(client: GdbClient) -> dict[int, int]:
    """Single-step from the first instruction to the end: how often each pc was reported."""
    counts: dict[int, int] = {}
    number = 16  # rip (64-bit layout)
    while True:
        pc = int.from_bytes(bytes.fromhex(client.request(f"p{number:x}".encode()).decode()), "little")
        counts[pc] = counts.get(pc, 0) + 1
        reply = client.request(b"s")
        if reply.startswith(b"W"):
            return counts
        assert reply == b"T05thread:1;"


@pytest.mark.parametrize("name", ["demo_poll_async.s", "demo_irq.s"])
def test_every_execution_is_reported_once(tmp_path: Path, name: str) -> None:
    """Single steps visit each executed instruction once (the count equals the machine's
    instruction count) and a breakpoint reports each execution of its address once, also
    where a device deadline or an interrupt stops the run right before it."""
    stepped = start_stub(PROGRAMS_DIR / name, share=tmp_path, async_hgcm=True)
    try:
        counts = step_counts(stepped.client)
        result = stepped.finish()
    finally:
        stepped.client.close()
        stepped.thread.join(30)
        stepped.machine.close()
    assert isinstance(result, RunResult)
    assert sum(counts.values()) == result.instructions
    stub = start_stub(PROGRAMS_DIR / name, share=tmp_path, async_hgcm=True)
    labels = sorted({address for address in stub.program.symbols.values() if address < stub.program.end})
    hits: dict[int, int] = {}
    try:
        for address in labels:
            assert stub.client.request(f"Z0,{address:x},1".encode()) == b"OK"
        while (reply := stub.client.request(b"c")).startswith(b"T05"):
            pc = stub.register("rip")
            hits[pc] = hits.get(pc, 0) + 1
        assert reply == b"W00"
        counter = stub.program.symbols.get("vmmdev_irq_count")
        irq_count = stub.machine.memory.read_u32(counter) if counter is not None else 0
        stub.finish()
    finally:
        stub.client.close()
        stub.thread.join(30)
        stub.machine.close()
    expected = {pc: counts.get(pc, 0) for pc in labels}
    # Resuming does not report a breakpoint at the pc it resumes from (here: the entry).
    expected[stub.program.entry] -= 1
    assert {pc: hits.get(pc, 0) for pc in labels} == expected
    if name == "demo_irq.s":
        assert irq_count > 0 and hits[stub.program.symbols["vmmdev_isr"]] == irq_count

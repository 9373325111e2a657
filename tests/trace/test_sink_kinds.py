"""Sinks that declare the event kinds they want see only those, and an event nobody wants
is never built (issue 15, item 1)."""

from __future__ import annotations

import pytest

from hgcmlab.devices.vmmdev import device as vmmdev_device
from hgcmlab.guest_asm import assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.tracing import CallbackSink, CountingSink, ListSink, TraceEvent, Tracer

#: Connect, one call (QUERY_MAPPINGS without parameters), disconnect.
ONE_CALL = """
.include "ccall.s"
_start:
    ccall1 hgcm_connect, service
    mov dword ptr [client], edx
    ccall3 hgcm_call_begin, [client], 1, 0
    ccall0 hgcm_call
    ccall1 hgcm_disconnect, [client]
    ccall1 exit, 0
.include "hgcm.s"
.include "log.s"
service: .asciz "VBoxSharedFolders"
.align 8
client: .quad 0
"""


def test_a_sink_with_kinds_sees_only_those_and_unwanted_events_are_not_built() -> None:
    stamps: list[int] = []

    def stamp() -> tuple[int, int, int]:
        stamps.append(1)
        return 0, 0, 0

    tracer = Tracer(stamp)
    wanted = ListSink()
    tracer.add_sink(wanted, kinds={"guest_log"})
    tracer.emit("cpu_halt", interrupts_enabled=False)
    assert stamps == [] and not tracer.wants("cpu_halt"), "no event built for a kind nobody wants"
    tracer.emit("guest_log", line="a")
    assert [e.kind for e in wanted.events] == ["guest_log"] and tracer.wants("guest_log")
    everything = ListSink()
    tracer.add_sink(everything)
    tracer.emit("cpu_halt", interrupts_enabled=True)
    assert [e.kind for e in everything.events] == ["cpu_halt"] and [e.kind for e in wanted.events] == ["guest_log"]
    tracer.remove_sink(everything)
    assert not tracer.wants("cpu_halt")
    with pytest.raises(ValueError):
        tracer.remove_sink(everything)


def test_callback_sinks_declare_their_kinds() -> None:
    tracer = Tracer()
    seen: list[TraceEvent] = []
    tracer.add_sink(CallbackSink({"guest_log"}, seen.append))
    assert tracer.wants("guest_log") and not tracer.wants("port_io")


def test_counting_sink_counts_without_keeping_events() -> None:
    counts = CountingSink({"hgcm_call": "function_name", "hgcm_connect": None})
    tracer = Tracer(strict=False)  # the events carry only the fields counted
    tracer.add_sink(counts)
    for name in ("READ", "READ", "WRITE"):
        tracer.emit("hgcm_call", function_name=name)
    tracer.emit("hgcm_connect", client=1)
    tracer.emit("port_io", port=1)
    assert counts.totals == {"hgcm_call": 3, "hgcm_connect": 1}
    assert counts.values["hgcm_call"] == {"READ": 2, "WRITE": 1}
    assert not tracer.wants("port_io")


def test_the_device_builds_no_call_fields_when_only_log_lines_are_wanted(monkeypatch: pytest.MonkeyPatch) -> None:
    described: list[object] = []
    real = vmmdev_device.describe
    monkeypatch.setattr(vmmdev_device, "describe", lambda *a, **k: described.append(a) or real(*a, **k))
    machine = vbox_board(64, 0x100000)
    try:
        machine.tracer.add_sink(CallbackSink({"guest_log"}, lambda event: None))
        program = assemble(ONE_CALL, mode=64)
        machine.load(program)
        assert machine.run().exit_code == 0
        assert described == []
        calls = ListSink()
        machine.tracer.add_sink(calls, kinds={"hgcm_call"})
        machine.load(program)
        assert machine.run().exit_code == 0
        assert [e.fields["function_name"] for e in calls.events] == ["QUERY_MAPPINGS"]
    finally:
        machine.close()

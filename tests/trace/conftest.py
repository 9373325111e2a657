"""Shared helpers for the trace and test-kit tests: one recorded demo run per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.programs import bundled_program
from hgcmlab.machine.trace.blocks import trace_blocks
from hgcmlab.machine.tracing import ListSink, TraceEvent


def record_demo(share: Path, mode: int = 64, *, blocks: bool = False,
                defines: dict[str, int] | None = None, program: str = "demo.s") -> tuple[list[TraceEvent], object]:
    """Run a bundled program against ``share`` and return (events, result)."""
    machine = vbox_board(mode)
    try:
        machine.add_share("demo", share)
        sink = ListSink()
        machine.tracer.add_sink(sink)
        machine.load(bundled_program(program, mode=mode, defines=defines))
        if blocks:
            trace_blocks(machine)
        result = machine.run()
        return sink.events, result
    finally:
        machine.close()


@pytest.fixture(scope="module")
def demo_events(tmp_path_factory: pytest.TempPathFactory) -> list[TraceEvent]:
    events, result = record_demo(tmp_path_factory.mktemp("share"))
    assert result.exit_code == 0
    return events

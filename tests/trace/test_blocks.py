"""Block events (formatting side and the interim hook) and drcov export."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.trace.blocks import BlockTracer, read_drcov, trace_blocks, write_drcov
from hgcmlab.machine.tracing import ListSink, TraceEvent, Tracer

from .conftest import record_demo


def test_block_tracer_disassembles_each_distinct_block_once() -> None:
    tracer = Tracer(lambda: (0, 0, 0))
    sink = ListSink()
    tracer.add_sink(sink)
    blocks = BlockTracer(tracer, 64)
    code = bytes.fromhex("b801000000" "4889c3" "c3")  # mov eax, 1; mov rbx, rax; ret
    blocks(0x1000, code)
    blocks(0x1000, code)
    blocks(0x1000, code[:5] + b"\xf4")  # rewritten in place: decoded again
    first, second, third = (e.fields for e in sink.events)
    assert first == {"address": 0x1000, "size": 9, "count": 3,
                     "disasm": [[0x1000, "mov eax, 1"], [0x1005, "mov rbx, rax"], [0x1008, "ret"]]}
    assert second == {"address": 0x1000, "size": 9, "count": 3}
    assert third["disasm"] == [[0x1000, "mov eax, 1"], [0x1005, "hlt"]]
    blocks32 = BlockTracer(tracer, 32)
    assert blocks32.disassemble(0, bytes.fromhex("50")) == [[0, "push eax"]]


@pytest.mark.parametrize("mode", [64, 32])
def test_block_counts_add_up_to_the_executed_instructions(mode: int) -> None:
    machine = vbox_board(mode)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    machine.load(assemble("_start:\n mov ecx, 50\nagain:\n dec ecx\n jnz again\n hlt\n", mode=mode))
    trace_blocks(machine)
    result = machine.run()
    machine.close()
    blocks = sink.of_kind("block")
    assert sum(e.fields["count"] for e in blocks) == result.instructions == 1 + 50 * 2 + 1
    # The first block runs mov, dec, jnz; the loop block (dec, jnz) then runs 49 times.
    assert blocks[0].fields["count"] == 3
    loop = [e for e in blocks if e.fields["address"] == 0x10005]
    assert len(loop) == 49 and "disasm" in loop[0].fields and "disasm" not in loop[1].fields
    # Stamps: each block event is stamped with the instructions completed before it.
    assert [e.instructions for e in blocks[:4]] == [0, 3, 5, 7]
    module = sink.of_kind("module")[0]
    assert (module.fields["base"], module.fields["entry"]) == (0x10000, 0x10000)


def test_drcov_export_round_trips(tmp_path: Path) -> None:
    events, _ = record_demo(tmp_path, blocks=True)
    out = io.BytesIO()
    count = write_drcov(events, out)
    modules, bbs = read_drcov(out.getvalue())
    unique = {e.fields["address"]: e.fields["size"] for e in events if e.kind == "block"}
    assert count == len(bbs) == len(unique)
    assert len(modules) == 1 and modules[0]["base"] == 0x10000 and modules[0]["path"].endswith("demo.s")
    assert {(modules[0]["base"] + offset, size) for offset, size, mod in bbs if mod == 0} == set(unique.items())


def test_drcov_synthesises_a_module_for_stray_blocks_and_needs_blocks() -> None:
    events = [TraceEvent("block", 0, 0, 0, {"address": 0x5010, "size": 4, "count": 1}),
              TraceEvent("block", 0, 0, 0, {"address": 0x6ff0, "size": 0x20, "count": 2})]
    out = io.BytesIO()
    write_drcov(events, out, default_module="raw")
    modules, bbs = read_drcov(out.getvalue())
    assert modules == [{"id": 0, "base": 0x5000, "end": 0x8000, "entry": 0, "path": "raw"}]
    assert bbs == [(0x10, 4, 0), (0x1ff0, 0x20, 0)]
    with pytest.raises(ValueError, match="no block events"):
        write_drcov([TraceEvent("run_end", 0, 0, 0, {})], io.BytesIO())
    with pytest.raises(ValueError, match="truncated"):
        read_drcov(out.getvalue()[:-3])

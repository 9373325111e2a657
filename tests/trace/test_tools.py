"""show / stats / diff / export over real traces, through the library and the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.cli import main
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.trace.blocks import read_drcov
from hgcmlab.machine.trace.files import read_trace, write_trace
from hgcmlab.machine.trace.tools import ShowFilter, compute_stats, export_perfetto, first_divergence, show
from hgcmlab.machine.tracing import ListSink, TraceEvent
from tests.machine.test_interrupts import program as interrupt_program



def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def shown(events: list[TraceEvent], **selection) -> list[str]:
    out = io.StringIO()
    show(events, out, ShowFilter(**selection))
    return out.getvalue().splitlines()


def test_show_decodes_calls_and_filters(demo_events: list[TraceEvent]) -> None:
    lines = shown(demo_events, functions=frozenset({"create"}))
    assert len(lines) == 2
    assert 'hgcm_call' in lines[0] and 'SHFL_FN_CREATE(root=0, path="hello.txt"' in lines[0]
    assert "hgcm_complete" in lines[1] and "result=FILE_CREATED" in lines[1] and "latency" in lines[1]
    assert len(shown(demo_events, functions=frozenset({"SHFL_FN_READ", "6"}))) == 4  # READ and WRITE (fn 6)
    logs = shown(demo_events, kinds=frozenset({"guest_log"}))
    assert len(logs) == 7 and "'sf: start'" in logs[0]
    window = [e for e in demo_events if 10_000 <= e.cycle <= 20_000]
    assert len(shown(demo_events, from_cycle=10_000, to_cycle=20_000)) == len(window) > 0
    debuglog = shown(demo_events, devices=frozenset({"debuglog"}))
    assert debuglog and all(("guest_log" in line or "(debuglog)" in line) for line in debuglog)


def test_stats_counts_latency_bytes_and_phases(demo_events: list[TraceEvent]) -> None:
    stats = compute_stats(demo_events)
    assert sorted(stats.functions) == ["CLOSE", "CREATE", "MAP_FOLDER", "READ", "SET_UTF8", "UNMAP_FOLDER", "WRITE"]
    completes = {e.fields["function_name"]: e for e in demo_events
                 if e.kind == "hgcm_complete" and e.fields["command"] == "call"}
    for name, entry in stats.functions.items():
        assert (entry.calls, entry.completed, entry.failed) == (1, 1, 0)
        assert entry.latencies == [completes[name].fields["latency"]]
    assert (stats.functions["WRITE"].written, stats.functions["READ"].read) == (30, 30)
    assert stats.functions["CREATE"].read == stats.functions["CREATE"].written == 0
    end = demo_events[-1]
    assert [p.name for p in stats.phases][:2] == ["(start)", "sf: start"]
    assert sum(p.instructions for p in stats.phases) == end.instructions
    assert sum(p.cycles for p in stats.phases) == end.cycle


def test_diff_finds_the_first_divergence_with_context(demo_events: list[TraceEvent]) -> None:
    assert first_divergence(demo_events, list(demo_events)) is None
    changed = list(demo_events)
    index = next(i for i, e in enumerate(changed) if e.kind == "hgcm_call" and e.fields["function_name"] == "READ")
    event = changed[index]
    changed[index] = TraceEvent(event.kind, event.cycle, event.instructions, event.pc, {**event.fields, "bytes": 31})
    found = first_divergence(demo_events, changed, context=3)
    assert found is not None and found.index == index and found.context == demo_events[index - 3:index]
    assert "bytes: 30 != 31" in found.format()
    assert "B decoded: client 1 VBoxSharedFolders: SHFL_FN_READ(" in found.format()
    assert first_divergence(demo_events, changed, ignore=frozenset({"bytes"})) is None
    shorter = first_divergence(demo_events, demo_events[:-1])
    assert shorter is not None and shorter.right is None and "<end of trace>" in shorter.format()
    shifted = [TraceEvent(e.kind, e.cycle + 1, e.instructions, e.pc, e.fields) for e in demo_events]
    assert first_divergence(demo_events, shifted) is not None
    assert first_divergence(demo_events, shifted, stamps=False) is None


def test_perfetto_export_has_client_slices_and_interrupt_instants() -> None:
    config = VMMDevConfig(timing=HgcmTiming(call_cycles=50_000, byte_cycles=0, force_async=True, declared_costs=False))
    machine = vbox_board(64, vmmdev_config=config)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    machine.load(assemble(interrupt_program(64, use_irq=True), mode=64))
    machine.run()
    machine.close()
    out = io.StringIO()
    export_perfetto(sink.events, out)
    document = json.loads(out.getvalue())
    records = document["traceEvents"]
    assert all({"ph", "pid", "tid", "name"} <= set(r) for r in records)
    threads = {r["tid"]: r["args"]["name"] for r in records if r["name"] == "thread_name"}
    slices = [r for r in records if r["ph"] == "X"]
    connect = sink.of_kind("hgcm_connect")[0]
    assert [(s["name"], s["ts"], s["dur"]) for s in slices] == [("connect", connect.cycle, 50_000)]
    assert threads[slices[0]["tid"]] == "HGCM client 1 (VBoxSharedFolders)"
    irqs = [r for r in records if r["ph"] == "i" and r["name"].startswith("IRQ 11")]
    delivered = sink.of_kind("interrupt_delivered")[0]
    assert len(irqs) == 1 and irqs[0]["ts"] == delivered.cycle and threads[irqs[0]["tid"]] == "guest CPU"


def test_perfetto_call_slices_carry_decoded_parameters(demo_events: list[TraceEvent]) -> None:
    out = io.StringIO()
    export_perfetto(demo_events, out)
    slices = {r["name"]: r for r in json.loads(out.getvalue())["traceEvents"] if r["ph"] == "X"}
    assert set(slices) == {"connect", "disconnect", "SET_UTF8", "MAP_FOLDER", "CREATE", "WRITE", "READ", "CLOSE",
                           "UNMAP_FOLDER"}
    create = slices["CREATE"]
    assert create["args"]["call"].startswith('SHFL_FN_CREATE(root=0, path="hello.txt"')
    assert create["dur"] == create["args"]["latency_cycles"] > 0


def test_cli_trace_actions(demo_events: list[TraceEvent], tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    write_trace(a, demo_events)
    status, out, _ = cli("trace", "show", str(a), "--kind", "hgcm_call", "--limit", "2")
    assert status == 0 and len(out.splitlines()) == 2 and "SHFL_FN_SET_UTF8()" in out
    status, out, _ = cli("trace", "stats", str(a))
    assert status == 0 and "CREATE" in out and "sf: read back and verified" in out
    assert cli("trace", "diff", str(a), str(a))[:2] == (0, "traces are equal\n")
    b = tmp_path / "b.jsonl.gz"
    write_trace(b, demo_events[:-1])
    status, out, _ = cli("trace", "diff", str(a), str(b))
    assert status == 1 and "<end of trace>" in out
    status, out, _ = cli("trace", "export", "--format", "perfetto", str(a), "-o", str(tmp_path / "p.json"))
    assert status == 0 and json.loads((tmp_path / "p.json").read_text())["traceEvents"]
    status, _, err = cli("trace", "export", "--format", "drcov", str(a), "-o", str(tmp_path / "x.drcov"))
    assert status == 2 and "no block events" in err and not (tmp_path / "x.drcov").exists()


def test_cli_record_then_drcov(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    trace = tmp_path / "run.jsonl"
    from hgcmlab.guest_asm.source import LIB_DIR
    demo = Path(LIB_DIR).parent / "programs" / "demo.s"
    status, out, _ = cli("trace", "record", str(demo), "--share", f"demo={share}", "-o", str(trace), "--blocks")
    assert status == 0 and "wrote" in out and (share / "hello.txt").exists()
    events = list(read_trace(trace))
    assert any(e.kind == "block" for e in events) and any("params" in e.fields for e in events)
    status, _, _ = cli("trace", "export", "--format", "drcov", str(trace), "-o", str(tmp_path / "c.drcov"))
    assert status == 0
    modules, bbs = read_drcov((tmp_path / "c.drcov").read_bytes())
    assert modules[0]["path"].endswith("demo.s") and len(bbs) > 50


@pytest.mark.parametrize("content", ["garbage\n", '{"kind": 3, "cycle": 0, "instructions": 0, "pc": 0}\n'])
@pytest.mark.parametrize("action", [["show"], ["stats"], ["export", "--format", "perfetto", "-o", "OUT"]])
def test_cli_bad_input_is_a_one_line_error(tmp_path: Path, content: str, action: list[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    argv = ["trace", action[0], str(bad), *[str(tmp_path / "out") if a == "OUT" else a for a in action[1:]]]
    status, _, err = cli(*argv)
    assert status == 2 and err.startswith(f"hgcmlab: error: {bad}:1: not a trace event") and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    status, _, err = cli("trace", "diff", str(bad), str(tmp_path / "missing.jsonl"))
    assert status == 2 and "not a trace event" in err

"""Trace files: the JSON Lines round trip, compression, and clear errors for bad files."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from hgcmlab.machine.trace.files import TraceFileError, TraceWriter, read_trace, write_trace
from hgcmlab.machine.tracing import JsonLinesSink, TraceEvent, Tracer


def test_a_real_run_reads_back_as_the_same_events(demo_events: list[TraceEvent], tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    assert write_trace(path, demo_events) == len(demo_events)
    again = list(read_trace(path))
    assert again == demo_events
    # run_end carries a field named like a stamp key; it survives the round trip.
    assert again[-1].kind == "run_end" and again[-1].fields["instructions"] == demo_events[-1].instructions


def test_files_written_by_run_trace_sink_read_back(demo_events: list[TraceEvent], tmp_path: Path) -> None:
    path = tmp_path / "cli.jsonl"
    with path.open("w") as stream:
        sink = JsonLinesSink(stream)
        for event in demo_events:
            sink(event)
    assert list(read_trace(path)) == demo_events


def test_gzip_round_trip_and_kind_filter(demo_events: list[TraceEvent], tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl.gz"
    with TraceWriter(path, kinds={"hgcm_call"}) as writer:
        for event in demo_events:
            writer(event)
    assert gzip.open(path).read(2)  # really compressed
    calls = [e for e in demo_events if e.kind == "hgcm_call"]
    assert writer.count == len(calls) == 7
    assert list(read_trace(path)) == calls


def test_tracer_transforms_run_before_sinks_in_order() -> None:
    tracer = Tracer(lambda: (5, 4, 3), strict=False)  # transforms may add fields the catalog lacks
    seen: list[TraceEvent] = []
    tracer.add_sink(seen.append)
    tracer.add_transform(lambda e: TraceEvent(e.kind, e.cycle, e.instructions, e.pc, {**e.fields, "a": 1}))
    tracer.add_transform(lambda e: TraceEvent(e.kind, e.cycle, e.instructions, e.pc, {**e.fields, "b": e.fields["a"] + 1}))
    tracer.emit("guest_log", line="x")
    assert seen == [TraceEvent("guest_log", 5, 4, 3, {"line": "x", "a": 1, "b": 2})]


@pytest.mark.parametrize(("content", "message"), [
    ('{"kind":"x","cycle":1,"instructions":1,"pc":0}\nnot json\n', ":2: not a trace event"),
    ("[1, 2]\n", ":1: not a trace event (not a JSON object)"),
    ('{"kind":"x","cycle":1,"pc":0}\n', "missing key 'instructions'"),
    ('{"kind":"x","cycle":"1","instructions":1,"pc":0}\n', "integers"),
])
def test_bad_lines_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(TraceFileError, match=re.escape(message)) as caught:
        list(read_trace(path))
    assert str(caught.value).startswith(str(path))


def test_missing_and_corrupt_compressed_files(tmp_path: Path) -> None:
    with pytest.raises(TraceFileError, match="cannot read"):
        list(read_trace(tmp_path / "absent.jsonl"))
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"this is not gzip")
    with pytest.raises(TraceFileError, match="unreadable"):
        list(read_trace(bad))
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(b'{"kind":"x","cycle":1,"instructions":1,"pc":0}\n' * 100)[:-20])
    with pytest.raises(TraceFileError, match="unreadable"):
        list(read_trace(truncated))

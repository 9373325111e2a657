"""The recording format (machine/trace/record.py) and the replay cursor, below the machine:
what a record holds, how returned bytes are encoded and restored, bounds, and the checks
``load_recording`` makes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hgcmlab.machine.replay import ReplayCursor
from hgcmlab.machine.trace.files import TraceWriter
from hgcmlab.machine.trace.record import (
    HEADER_KIND,
    RECORD_KIND,
    RECORDING_VERSION,
    Recording,
    RecordingError,
    RecordingService,
    load_recording,
)
from hgcmlab.machine.tracing import TraceEvent
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import ASYNC, HgcmCall, HgcmService, SvcParm, _AsyncMarker


class Echo(HgcmService):
    """Function 1 writes "ab" into a 4-byte in/out buffer (the rest zero) and 7 into parm 1;
    function 2 is kept (ASYNC) until ``finish``."""

    name = "Echo"
    function_names = {1: "WRITE", 2: "KEEP"}

    def __init__(self) -> None:
        self.kept: list[HgcmCall] = []

    def function_cycles(self, function: int) -> int | None:
        return 100 * function

    def call(self, call: HgcmCall) -> int | _AsyncMarker:
        if call.function == 2:
            self.kept.append(call)
            return ASYNC
        call.params[0].buffer[:] = b"ab\0\0"
        call.params[1].value = 7
        return Status.VINF_SUCCESS

    def finish(self) -> None:
        for call in self.kept:
            call.params[0].value = 9
            call.complete(Status.VERR_CANCELLED)
        self.kept.clear()


def _recorder() -> tuple[RecordingService, Echo, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    inner = Echo()
    service = RecordingService(inner, lambda kind, **fields: events.append({"kind": kind, **fields}), lambda: 1234)
    return service, inner, events


def test_a_synchronous_call_records_inputs_and_what_changed() -> None:
    service, _inner, events = _recorder()
    call = HgcmCall(5, 1, [SvcParm.ptr(b"xyzw"), SvcParm.u32(3), SvcParm.u64(1 << 40)])
    assert service.call(call) == Status.VINF_SUCCESS
    (record,) = events
    assert record["kind"] == RECORD_KIND
    assert (record["index"], record["op"], record["client"], record["function"], record["at"]) == (
        0, "call", 5, 1, 1234)
    assert record["params"][0]["data"] == b"xyzw".hex() and record["params"][0]["size"] == 4
    assert record["params"][1:] == [{"type": "u32", "value": 3}, {"type": "u64", "value": 1 << 40}]
    # Trailing zeros are dropped; unchanged parameters are null.
    assert record["out"] == [{"size": 4, "data": "6162"}, {"value": 7}, None]
    assert (record["result"], record["done"]) == (Status.VINF_SUCCESS, [])


def test_kept_calls_are_recorded_where_they_complete_and_then_forgotten() -> None:
    service, inner, events = _recorder()
    completions: list[int] = []
    call = HgcmCall(5, 2, [SvcParm.u32(0)], on_complete=lambda c, status: completions.append(status))
    assert service.call(call) is ASYNC
    assert events[-1]["result"] == "async" and "out" not in events[-1]
    assert len(service._pending) == 1
    inner.finish()  # outside any operation: a host record
    assert completions == [Status.VERR_CANCELLED]  # the device still hears of it
    assert events[-1]["op"] == "host"
    assert events[-1]["done"] == [{"call": 0, "status": Status.VERR_CANCELLED, "out": [{"value": 9}]}]
    assert service._pending == {}  # bounded by the calls still pending


def _recording(records: list[dict[str, Any]]) -> Recording:
    header = {"version": RECORDING_VERSION, "program": "p", "image_sha256": "0", "mode": 64, "ram": 1 << 20,
              "arguments": [], "services": [{"name": "Echo", "functions": [[1, "WRITE", 100]]}], "settings": {}}
    return Recording("mem", header, [{k: v for k, v in r.items() if k != "kind"} for r in records])


def test_replay_restores_the_zero_fill_the_recording_dropped() -> None:
    service, _inner, events = _recorder()
    service.call(HgcmCall(5, 1, [SvcParm.ptr(b"xyzw"), SvcParm.u32(3), SvcParm.u64(1)]))
    stops: list[str] = []
    cursor = ReplayCursor(_recording(events), lambda: 1234, stops.append, lambda kind, **fields: None)
    call = HgcmCall(5, 1, [SvcParm.ptr(b"xyzw"), SvcParm.u32(3), SvcParm.u64(1)])
    record = cursor.expect({"op": "call", "service": "Echo", "client": 5, "function": 1,
                            "requestor": 0xFFFFFFFF, "params": events[0]["params"]}, {})
    assert record is not None and stops == []
    assert cursor.apply_outputs(call, record["out"], 0)
    assert (bytes(call.params[0].buffer), call.params[1].value, call.params[2].value) == (b"ab\0\0", 7, 1)


def test_a_replay_cycle_mismatch_stops_with_both_sides() -> None:
    service, _inner, events = _recorder()
    service.connect(5, 0xFFFFFFFF)
    stops: list[str] = []
    cursor = ReplayCursor(_recording(events), lambda: 999, stops.append, lambda kind, **fields: None)
    assert cursor.expect({"op": "connect", "service": "Echo", "client": 5, "requestor": 0xFFFFFFFF}, {}) is None
    assert stops == ["replay diverged at recorded operation #0: different cycle: recorded 1234, guest 999\n"
                     "  recording: #0 connect client 5 at cycle 1234 requestor 0xffffffff\n"
                     "  guest:     #0 connect client 5 at cycle 999 requestor 0xffffffff"]
    # Only the first divergence is reported.
    assert cursor.expect({"op": "connect", "service": "Echo", "client": 6, "requestor": 0}, {}) is None
    assert len(stops) == 1


def _write(path: Path, events: list[tuple[str, dict[str, Any]]]) -> Path:
    with TraceWriter(path) as writer:
        for kind, fields in events:
            writer(TraceEvent(kind, 0, 0, 0x10000, fields))
    return path


def test_load_recording_reads_gzip_and_keeps_old_traces_readable(tmp_path: Path) -> None:
    header = _recording([]).header
    record = {"index": 0, "op": "connect", "service": "Echo", "client": 1, "at": 5, "requestor": 0, "status": 0,
              "done": []}
    path = _write(tmp_path / "r.jsonl.gz", [(HEADER_KIND, header), ("guest_log", {"line": "x"}), (RECORD_KIND, record),
                                            ("run_end", {"end": "exit", "exit_code": 0, "instructions": 3})])
    loaded = load_recording(path)
    assert (loaded.header, loaded.records, loaded.run_end) == (header, [record],
                                                                {"end": "exit", "exit_code": 0, "instructions": 3})


@pytest.mark.parametrize(("events", "message"), [
    ([(RECORD_KIND, {})], "hgcm_record event before the hgcm_recording header"),
    ([(HEADER_KIND, "HEADER"), (HEADER_KIND, "HEADER")], "more than one hgcm_recording event"),
    ([(HEADER_KIND, {"version": 99})], "recording version 99 is not 1"),
    ([(HEADER_KIND, "HEADER"), (RECORD_KIND, {"index": 0, "op": "reboot"})], "unknown op 'reboot'"),
    ([(HEADER_KIND, "HEADER"), (RECORD_KIND, {"index": 0, "op": "call", "service": "Echo", "client": 1, "at": 0,
                                              "done": [], "function": 1, "requestor": 0, "params": [],
                                              "result": "later"})], 'result is neither a status nor "async"'),
    ([(HEADER_KIND, "HEADER"), (RECORD_KIND, {"index": 0, "op": "cancel", "service": "Echo", "client": 1, "at": 0,
                                              "done": [{"call": 7, "status": 0, "out": []}], "call": 0})],
     "a done entry is malformed"),
])
def test_load_recording_refuses_damage_in_one_line(tmp_path: Path, events: list[tuple[str, Any]],
                                                   message: str) -> None:
    header = _recording([]).header
    path = _write(tmp_path / "bad.jsonl", [(kind, header if fields == "HEADER" else fields) for kind, fields in events])
    with pytest.raises(RecordingError) as caught:
        load_recording(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_load_recording_refuses_a_file_that_is_not_a_trace(tmp_path: Path) -> None:
    path = tmp_path / "junk.jsonl"
    path.write_text(json.dumps({"kind": HEADER_KIND}) + "\nnot json\n")
    with pytest.raises(RecordingError, match=f"^{path}:"):
        load_recording(path)

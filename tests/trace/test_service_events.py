"""Services emit trace events: a failing guest call leaves its reason in the trace
(``hgcm_service_error``), ``trace show`` prints it, and a replay re-emits it in place."""

from __future__ import annotations

import io
import json
from pathlib import Path

from hgcmlab.machine.cli import main as cli_main

DEMO = Path(__file__).resolve().parents[2] / "guest_asm" / "programs" / "demo.s"


def _cli(*words: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli_main(list(words), out, err)
    return status, out.getvalue(), err.getvalue()


def test_a_failed_guest_call_is_traced_with_its_reason_and_replayed_in_place(tmp_path: Path) -> None:
    """demo.s maps the share "demo"; with only "other" shared, MAP_FOLDER fails with
    VERR_FILE_NOT_FOUND (mappings.cpp:vbsfMapFolder finds no such name) and the guest stops."""
    share = tmp_path / "share"
    share.mkdir()
    trace = tmp_path / "recorded.jsonl"
    status, _out, err = _cli("run", str(DEMO), "--share", f"other={share}", "--trace", str(trace), "--record", "-q")
    assert status != 0 and err == ""
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    errors = [e for e in events if e["kind"] == "hgcm_service_error"]
    assert [(e["function_name"], e["status_name"], e["reason"]) for e in errors] == \
        [("MAP_FOLDER", "VERR_FILE_NOT_FOUND", "no mapping 'demo'")]
    position = events.index(errors[0])
    assert events[position - 1]["kind"] == "hgcm_call" and events[position + 1]["kind"] == "hgcm_record"
    assert events[position + 1]["result"] == errors[0]["status"]
    shown = _cli("trace", "show", str(trace), "--kind", "hgcm_service_error")[1]
    assert "MAP_FOLDER: VERR_FILE_NOT_FOUND (no mapping 'demo')" in shown
    replayed = tmp_path / "replayed.jsonl"
    assert _cli("replay", str(trace), "--trace", str(replayed), "-q")[0] == status
    assert replayed.read_bytes() == trace.read_bytes()

"""``hgcmlab run --record`` and ``hgcmlab replay``: every bundled program replays to the same
trace without its shares, and a changed program is reported at its first divergence."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hgcmlab.machine.cli import main as cli_main
from hgcmlab.machine.replaycli import EXIT_DIVERGED
from tests.machine.test_reproducible import DAY_2040, PROGRAMS, make_tree

PROGRAMS_DIR = Path(__file__).parents[2] / "guest_asm" / "programs"
#: Programs that use asynchronous completion, cancel or WAIT_FOR_MAPPINGS_CHANGES, replayed
#: with every HGCM command asynchronous too.
ASYNC_PROGRAMS = ["cancel.s", "demo_poll_async.s", "demo_irq.s", "cp.s"]


def cli(*words: str) -> tuple[int, str, str]:
    """Run ``hgcmlab WORDS``; (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    status = cli_main(list(words), out, err)
    return status, out.getvalue(), err.getvalue()


def record(tmp_path: Path, program: Path, name: str, *options: str) -> tuple[Path, int]:
    """Record ``program`` (of ``PROGRAMS`` entry ``name``) on a fresh tree; (trace, status)."""
    mode, arguments, _expected = PROGRAMS[name]
    share = make_tree(tmp_path, DAY_2040, reverse=False)
    trace = tmp_path / "recorded.jsonl"
    status, _out, err = cli("run", str(program), "--mode", str(mode), "--share", f"d={share}",
                            "--share", f"demo={share}", "--reproducible", "--trace", str(trace), "--record",
                            "-q", *options, "--", *arguments)
    assert err == ""
    return trace, status


def changed_copy(tmp_path: Path, name: str) -> Path:
    """``name`` with one extra instruction at ``_start``: same calls, every one a little later."""
    source = (PROGRAMS_DIR / name).read_text()
    assert source.count("\n_start:\n") == 1
    changed = tmp_path / f"changed_{name}"
    changed.write_text(source.replace("\n_start:\n", "\n_start:\n    nop\n"))
    return changed


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_replay_reproduces_the_recorded_trace_without_shares(tmp_path: Path, name: str) -> None:
    trace, status = record(tmp_path, PROGRAMS_DIR / name, name)
    # A command-line share cannot allow symlinks: ln_s.s records its refusal (exit 3); the
    # kit test in test_replay_kit.py records it on a share that allows them.
    assert status == (3 if name == "ln_s.s" else PROGRAMS[name][2])
    replayed = tmp_path / "replayed.jsonl"
    again, out, err = cli("replay", str(trace), "--trace", str(replayed))
    assert (again, err) == (status, "")
    assert replayed.read_bytes() == trace.read_bytes()
    operations = sum(1 for line in trace.read_text().splitlines() if '"kind":"hgcm_record"' in line)
    assert f"replay: {operations} of {operations} recorded host operations matched" in out


@pytest.mark.parametrize("name", ASYNC_PROGRAMS)
def test_replay_reproduces_asynchronous_completions_and_cancels(tmp_path: Path, name: str) -> None:
    trace, status = record(tmp_path, PROGRAMS_DIR / name, name, "--async-hgcm")
    assert status == 0
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    records = [e for e in events if e["kind"] == "hgcm_record"]
    assert all(e["settings"]["async_hgcm"] for e in events if e["kind"] == "hgcm_recording")
    if name == "cancel.s":  # the kept wait and its cancel are in the recording
        assert any(r["op"] == "call" and r["result"] == "async" for r in records)
        cancel = next(r for r in records if r["op"] == "cancel")
        assert cancel["done"] and cancel["done"][0]["call"] == cancel["call"]
    replayed = tmp_path / "replayed.jsonl"
    assert cli("replay", str(trace), "--trace", str(replayed), "-q")[0] == 0
    assert replayed.read_bytes() == trace.read_bytes()


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_changed_program_is_reported_at_its_first_divergence(tmp_path: Path, name: str) -> None:
    trace, _status = record(tmp_path, PROGRAMS_DIR / name, name)
    status, _out, err = cli("replay", str(trace), str(changed_copy(tmp_path, name)), "-q")
    assert status == EXIT_DIVERGED
    assert "is not the recorded program" in err
    if '"op":"connect"' in trace.read_text():
        # One more instruction before the first connect: it arrives later than recorded.
        assert "replay diverged at recorded operation #0: different cycle: recorded " in err
        assert "  recording: #0 connect client 1 at cycle " in err
        assert "  guest:     #0 connect client 1 at cycle " in err
    else:  # no host operation at all: the run's end tells
        assert "replay diverged after all 0 recorded operations matched" in err


def test_different_parameters_show_both_sides_and_the_matched_calls_before(tmp_path: Path) -> None:
    # cat.s recorded; ls.s makes the same first calls, then opens its path differently.
    trace, _ = record(tmp_path, PROGRAMS_DIR / "cat.s", "cat.s")
    status, _out, err = cli("replay", str(trace), str(PROGRAMS_DIR / "cat.s").replace("cat.s", "ls.s"), "-q")
    assert status == EXIT_DIVERGED
    lines = err.splitlines()
    assert lines[1] == "replay diverged at recorded operation #3: parameter 2 has different bytes: from byte 12: " \
                       "recorded 0011000000000000, guest 0411000000000000"
    assert lines[2].startswith("  recording: #3 call client 1 at cycle ") and " CREATE(u32 0x0, " in lines[2]
    assert lines[3].startswith("  guest:     #3 call client 1 at cycle ") and " CREATE(u32 0x0, " in lines[3]
    assert lines[4:] == ["  last matched operations:",
                         lines[5], lines[6], lines[7]] and "SET_UTF8()" in lines[6] and "MAP_FOLDER(" in lines[7]


def test_a_guest_that_stops_asking_early_diverges(tmp_path: Path) -> None:
    trace, _ = record(tmp_path, PROGRAMS_DIR / "cat.s", "cat.s")
    status, _out, err = cli("replay", str(trace), str(PROGRAMS_DIR / "exit_code.s"), "-q")
    assert status == EXIT_DIVERGED
    assert "replay diverged at recorded operation #0: the guest ended (exit, exit code 42) before asking it" in err


def test_the_recorded_program_must_be_unchanged_unless_given(tmp_path: Path) -> None:
    program = tmp_path / "demo.s"
    program.write_text((PROGRAMS_DIR / "demo.s").read_text())
    trace, _ = record(tmp_path, program, "demo.s")
    program.write_text(changed_copy(tmp_path, "demo.s").read_text())
    status, out, err = cli("replay", str(trace))
    assert (status, out) == (2, "")
    assert err == (f"hgcmlab: error: {program} has changed since the recording (its image differs); give it "
                   f"explicitly to replay it anyway: hgcmlab replay {trace} {program}\n")
    program.unlink()
    status, _out, err = cli("replay", str(trace))
    assert status == 2 and err.startswith("hgcmlab: error: the recorded program cannot be loaded (")
    assert len(err.splitlines()) == 1


def test_record_needs_a_trace_file(tmp_path: Path) -> None:
    status, _out, err = cli("run", str(PROGRAMS_DIR / "hello_log.s"), "--record")
    assert status == 2
    assert err == "hgcmlab: error: --record keeps the recording in the trace: give --trace FILE too\n"


def test_a_trace_without_recording_is_one_line(tmp_path: Path) -> None:
    trace = tmp_path / "plain.jsonl"
    assert cli("run", str(PROGRAMS_DIR / "hello_log.s"), "--trace", str(trace), "-q")[0] == 0
    status, _out, err = cli("replay", str(trace))
    assert status == 2
    assert err == (f"hgcmlab: error: {trace} holds no recording (make one with: hgcmlab run PROGRAM "
                   "--trace FILE --record)\n")
    status, _out, err = cli("replay", str(tmp_path / "missing.jsonl"))
    assert status == 2 and err.startswith("hgcmlab: error: ") and len(err.splitlines()) == 1


def _rewrite(trace: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of ``trace`` with ``edit(event)`` applied to every hgcm_record event."""
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    for event in events:
        if event["kind"] == "hgcm_record":
            edit(event)
    damaged = trace.with_name("damaged.jsonl")
    damaged.write_text("".join(json.dumps(event, separators=(",", ":")) + "\n" for event in events))
    return damaged


def test_damaged_and_truncated_recordings_are_one_line_errors(tmp_path: Path) -> None:
    trace, _ = record(tmp_path, PROGRAMS_DIR / "cat.s", "cat.s")
    text = trace.read_text()
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text(text[:text.index('"kind":"hgcm_record"') + 30])
    status, _out, err = cli("replay", str(truncated))
    assert status == 2 and err.startswith(f"hgcmlab: error: {truncated}:") and len(err.splitlines()) == 1

    def bad_index(event: dict[str, Any]) -> None:
        event["index"] += 1

    def bad_hex(event: dict[str, Any]) -> None:
        for out in event.get("out") or []:
            if out and "data" in out:
                out["data"] = "zz" + out["data"][2:]

    def huge(event: dict[str, Any]) -> None:
        for out in event.get("out") or []:
            if out and "data" in out:
                out["size"] = 1 << 40

    for edit, message in ((bad_index, "hgcm_record #0: index 1 is not 0"),
                          (bad_hex, "an out data field is not hex"),
                          (huge, "an out size is not valid")):
        status, _out, err = cli("replay", str(_rewrite(trace, edit)))
        assert status == 2, message
        assert err.startswith(f"hgcmlab: error: {tmp_path / 'damaged.jsonl'}: ") and message in err
        assert len(err.splitlines()) == 1


def test_returned_bytes_that_do_not_fit_the_guest_buffer_stop_the_replay(tmp_path: Path) -> None:
    trace, _ = record(tmp_path, PROGRAMS_DIR / "cat.s", "cat.s")

    def oversize(event: dict[str, Any]) -> None:
        if event.get("op") == "call" and event.get("result") != "async":
            for number, out in enumerate(event["out"]):
                if out and "data" in out:
                    length = event["params"][number]["len"]
                    out["size"] = length + 1
                    out["data"] = "01" * (length + 1)

    status, _out, err = cli("replay", str(_rewrite(trace, oversize)), "-q")
    assert status == EXIT_DIVERGED
    lines = err.splitlines()
    # The first call returning bytes is CREATE (#3): its 108-byte SHFLCREATEPARMS.
    assert lines[0] == ("replay diverged at recorded operation #3: call #3 parameter 2: 109 returned bytes do "
                        "not fit the guest's 108-byte buffer")
    assert lines[1].startswith("  recording: #3 call client 1 at cycle ") and " CREATE(" in lines[1]
    assert lines[2] == "  guest:     call of function 3 by client 1 (u32, ptr[11], ptr[108])"


def test_replay_rebuilds_the_recorded_machine_settings(tmp_path: Path) -> None:
    # Defines, the cost profile and the HGCM cost come from the header: without them the
    # image digest (defines) or the arrival cycles (costs) would differ.
    costs = tmp_path / "costs.json"
    costs.write_text('{"port_io": 77, "alu": 2}')
    share = make_tree(tmp_path, DAY_2040, reverse=False)
    trace = tmp_path / "recorded.jsonl"
    status, _out, err = cli("run", str(PROGRAMS_DIR / "cat.s"), "--mode", "32", "--share", f"d={share}",
                            "--costs", str(costs), "--hgcm-cycles", "777", "-D", "UNUSED_DEFINE=5",
                            "--trace", str(trace), "--record", "-q", "--", "d:/a.txt")
    assert (status, err) == (0, "")
    replayed = tmp_path / "replayed.jsonl"
    assert cli("replay", str(trace), "--trace", str(replayed), "-q") == (0, "[guest] alpha\n", "")
    assert replayed.read_bytes() == trace.read_bytes()
    exit_trace = tmp_path / "exit.jsonl"
    assert cli("run", str(PROGRAMS_DIR / "exit_code.s"), "-D", "EXIT_CODE=7", "--trace", str(exit_trace),
               "--record", "-q")[0] == 7
    assert cli("replay", str(exit_trace), "-q") == (7, "", "")


def test_replay_usage_errors_are_one_line(tmp_path: Path) -> None:
    status, _out, err = cli("replay")
    assert status == 2 and "the following arguments are required: TRACE" in err
    status, _out, err = cli("replay", str(tmp_path))
    assert status == 2 and err.startswith("hgcmlab: error: ") and len(err.splitlines()) == 1


def test_trace_tools_read_a_recording(tmp_path: Path) -> None:
    trace, _ = record(tmp_path, PROGRAMS_DIR / "cat.s", "cat.s")
    status, out, _err = cli("trace", "show", str(trace), "--kind", "hgcm_record")
    assert status == 0 and len(out.splitlines()) == 8 and "op=connect" in out.splitlines()[0]
    assert cli("trace", "stats", str(trace))[0] == 0
    assert cli("trace", "export", "--format", "perfetto", str(trace), "-o", str(tmp_path / "p.json"))[0] == 0
    replayed = tmp_path / "replayed.jsonl"
    assert cli("replay", str(trace), "--trace", str(replayed), "-q")[0] == 0
    assert cli("trace", "diff", str(trace), str(replayed)) == (0, "traces are equal\n", "")


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("costs", {"alu": -1}, "recording settings are malformed: cost of 'alu' must be a positive integer, not -1"),
    ("defines", [[1]], "recording settings are malformed: "),
    ("hgcm_cycles", -4, "recording setting 'hgcm_cycles' is negative"),
    ("devices", ["nosuch"], "unknown device 'nosuch'"),
    ("ram", 5, "RAM size must be a multiple of 4 KiB"),
])
def test_damaged_header_settings_are_one_line_errors(tmp_path: Path, setting: str, value: object,
                                                     message: str) -> None:
    trace, _ = record(tmp_path, PROGRAMS_DIR / "cat.s", "cat.s")
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    header = events[0]
    assert header["kind"] == "hgcm_recording"
    if setting == "ram":
        header["ram"] = value
    else:
        header["settings"][setting] = value
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("".join(json.dumps(event) + "\n" for event in events))
    status, out, err = cli("replay", str(damaged), "-q")
    assert (status, out) == (2, "")
    assert err.startswith("hgcmlab: error: ") and message in err and len(err.splitlines()) == 1


def test_python_m_machine_cli_replay_errors_have_no_traceback(tmp_path: Path) -> None:
    # Under ``python -m hgcmlab.machine.cli`` the command module is __main__, a second copy of
    # hgcmlab.machine.cli: errors raised through the imported copy must still be one line.
    trace, _ = record(tmp_path, PROGRAMS_DIR / "cat.s", "cat.s")
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    events[0]["settings"]["hgcm_cycles"] = -1
    events[0]["settings"]["devices"] = ["nosuch"]
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("".join(json.dumps(event) + "\n" for event in events))
    events[0]["settings"]["hgcm_cycles"] = None
    devices = tmp_path / "devices.jsonl"
    devices.write_text("".join(json.dumps(event) + "\n" for event in events))
    for path, message in ((damaged, "recording setting 'hgcm_cycles' is negative"), (devices, "unknown device")):
        done = subprocess.run([sys.executable, "-m", "hgcmlab.machine.cli", "replay", str(path), "-q"],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.splitlines()) == 1

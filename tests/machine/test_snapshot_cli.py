"""``hgcmlab run --save-at CYCLE FILE`` and ``hgcmlab resume FILE`` end to end: the bundled
demo shares a folder, is saved before it connects and resumed on a machine rebuilt from
the snapshot alone (its share included); usage mistakes and bad files are one-line errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from hgcmlab.guest_asm.source import LIB_DIR
from hgcmlab.machine.cli import EXIT_USAGE, main

DEMO = Path(LIB_DIR).parent / "programs" / "demo.s"
#: Before the demo's first HGCM connect (at about cycle 1600 with the default costs).
SAVE_CYCLE = 1500


def cli(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main([str(word) for word in argv], out, err)
    return status, out.getvalue(), err.getvalue()


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_save_at_then_resume_continues_the_run_exactly(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    snapshot, first_trace, resumed_trace = tmp_path / "demo.snap", tmp_path / "t1.jsonl", tmp_path / "t2.jsonl"
    status, out, err = cli("run", DEMO, "--share", f"demo={share}", "--reproducible",
                           "--save-at", str(SAVE_CYCLE), snapshot, "--trace", first_trace)
    assert status == 0, err
    assert f"written to {snapshot}" in err and snapshot.is_file()
    (share / "hello.txt").unlink()
    status, resumed_out, err = cli("resume", snapshot, "--trace", resumed_trace)
    assert status == 0, err
    assert (share / "hello.txt").read_bytes() == b"Hello from the hgcmlab guest!\n"
    events = _events(first_trace)
    pause = next(index for index, event in enumerate(events) if event.get("end") == "paused")
    assert events[pause]["cycle"] >= SAVE_CYCLE
    assert _events(resumed_trace) == events[pause + 1:]
    # Same guest lines after the pause, same final summary (counts include the saved part).
    assert out.splitlines()[-2:] == resumed_out.splitlines()[-2:]
    assert resumed_out.splitlines()[0] == "[guest] sf: connected"


def test_a_run_that_ends_before_the_cycle_writes_no_snapshot(tmp_path: Path) -> None:
    program = tmp_path / "quick.s"
    program.write_text("_start:\n hlt\n")
    status, _out, err = cli("run", program, "--save-at", "1000000", tmp_path / "never.snap")
    assert status == 0
    assert "the run ended before cycle 1000000; no snapshot written" in err
    assert not (tmp_path / "never.snap").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--save-at", "soon", "x.snap"], "--save-at: 'soon' is not a whole number"),
    (["--save-at", "10", "x.snap", "--record", "--trace", "t.jsonl"], "--save-at cannot be combined with --record"),
])
def test_save_at_usage_errors_are_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    program = tmp_path / "quick.s"
    program.write_text("_start:\n hlt\n")
    status, _out, err = cli("run", program, *extra)
    assert status == EXIT_USAGE
    assert err.count("\n") == 1 and message in err, err


def test_an_unwritable_snapshot_is_a_one_line_error(tmp_path: Path) -> None:
    program = tmp_path / "loop.s"
    program.write_text("_start:\n mov ecx, 10000\nagain:\n dec ecx\n jnz again\n hlt\n")
    status, _out, err = cli("run", program, "-q", "--save-at", "100", tmp_path / "missing" / "x.snap")
    assert status == EXIT_USAGE
    assert err.strip().splitlines() == [f"hgcmlab: error: cannot write snapshot {tmp_path / 'missing' / 'x.snap'}: "
                                        "No such file or directory"]


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read snapshot"),
    (b"garbage", "not an hgcmlab snapshot (bad magic)"),
    (b"HGCMSNAP\x07\x00\x00\x00", "snapshot format version 7 is newer than this hgcmlab reads"),
    (b"HGCMSNAP\x01\x00\x00\x00broken", "corrupt snapshot"),
])
def test_resume_of_a_bad_file_is_a_one_line_error(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bad.snap"
    if content is not None:
        path.write_bytes(content)
    status, out, err = cli("resume", path)
    assert status == EXIT_USAGE and out == ""
    assert err.count("\n") == 1 and err.startswith("hgcmlab: error: ") and message in err, err


def test_resume_without_the_share_directory_is_a_one_line_error(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    snapshot = tmp_path / "demo.snap"
    status, _out, err = cli("run", DEMO, "-q", "--share", f"demo={share}", "--save-at", str(SAVE_CYCLE), snapshot)
    assert status == 0, err
    (share / "hello.txt").unlink()
    share.rmdir()
    status, out, err = cli("resume", snapshot)
    assert status == EXIT_USAGE and out == ""
    assert err.count("\n") == 1 and "cannot build the snapshot's machine: cannot add shared folder 'demo'" in err, err

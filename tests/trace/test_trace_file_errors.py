"""`--trace` files: compressed as their name says, and write failures reported in one line.

Issue 12: `run --trace x.jsonl.gz` used to write plain JSON under a `.gz` name (which
`trace show` then could not read), and a trace file whose writes fail (`/dev/full`) raised
an OSError traceback in the middle of the run.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pytest

from hgcmlab.machine.cli import EXIT_USAGE, main
from hgcmlab.machine.trace.files import TraceWriteError, TraceWriter, read_trace
from hgcmlab.machine.tracing import TraceEvent

DEV_FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="needs Linux /dev/full")

#: Writes 20000 bytes to the log port (each a traced port_io event, ~150 bytes of JSON:
#: about 3 MB, far beyond the writer's 1 MiB buffer), then exits with code 7.
CHATTY = """
_start:
    mov ecx, 20000
again:
    mov dx, 0x504
    mov al, 'x'
    out dx, al
    dec ecx
    jnz again
    mov al, 7
    out 0xf4, al
"""

#: A short program whose whole trace fits in the writer's buffer.
QUIET = """
_start:
    mov al, 5
    out 0xf4, al
"""


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def _program(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prog.s"
    path.write_text(text)
    return path


@pytest.mark.parametrize("mode", ["64", "32"])
def test_run_trace_gz_is_gzip_that_trace_show_reads(tmp_path: Path, mode: str) -> None:
    trace = tmp_path / "run.jsonl.gz"
    status, _out, err = cli("run", str(_program(tmp_path, QUIET)), "--mode", mode, "--trace", str(trace))
    assert (status, err) == (5, "")
    assert trace.read_bytes()[:2] == b"\x1f\x8b"  # the gzip magic
    kinds = [event.kind for event in read_trace(trace)]
    assert kinds[-1] == "run_end"
    status, out, err = cli("trace", "show", str(trace), "--kind", "run_end")
    assert (status, err) == (0, "")
    assert "run_end" in out and "exit" in out


def test_run_trace_plain_name_stays_plain_json_lines(tmp_path: Path) -> None:
    trace = tmp_path / "run.jsonl"
    status, _out, _err = cli("run", str(_program(tmp_path, QUIET)), "--trace", str(trace))
    assert status == 5
    first = trace.read_text().splitlines()[0]
    assert first.startswith("{") and TraceEvent.from_json(first).kind


def test_demo_trace_gz_is_gzip(tmp_path: Path) -> None:
    trace = tmp_path / "demo.jsonl.gz"
    status, _out, _err = cli("demo", "--trace", str(trace))
    assert status == 0
    assert gzip.open(trace).read(1) == b"{"
    assert any(event.kind == "hgcm_call" for event in read_trace(trace))


@needs_dev_full
def test_trace_write_failure_mid_run_is_one_line_and_stops_the_run(tmp_path: Path) -> None:
    status, out, err = cli("run", str(_program(tmp_path, CHATTY)), "--trace", str(DEV_FULL))
    assert status == EXIT_USAGE
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hgcmlab: error: cannot write trace file /dev/full: No space left on device; "
                               "run stopped after ")
    assert "run ended" not in out  # stopped, no summary of a run that did not finish


@needs_dev_full
def test_trace_write_failure_at_the_final_flush_is_one_line(tmp_path: Path) -> None:
    status, _out, err = cli("run", str(_program(tmp_path, QUIET)), "--trace", str(DEV_FULL))
    assert status == EXIT_USAGE
    assert err.splitlines() == ["hgcmlab: error: cannot write trace file /dev/full: No space left on device; "
                                "the run ended (exit) but the trace is incomplete"]


@needs_dev_full
def test_compressed_trace_write_failure_is_one_line(tmp_path: Path) -> None:
    full_gz = tmp_path / "full.jsonl.gz"
    os.symlink(DEV_FULL, full_gz)
    status, _out, err = cli("demo", "--trace", str(full_gz))
    assert status == EXIT_USAGE
    assert len(err.splitlines()) == 1
    assert err.startswith(f"hgcmlab: error: cannot write trace file {full_gz}: No space left on device")


def test_trace_file_in_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "t.jsonl.gz"
    status, _out, err = cli("run", str(_program(tmp_path, QUIET)), "--trace", str(missing))
    assert status == EXIT_USAGE
    assert err == f"hgcmlab: error: cannot write trace file {missing}: No such file or directory\n"


@needs_dev_full
def test_trace_writer_raises_trace_write_error_then_ignores_events() -> None:
    writer = TraceWriter(DEV_FULL)
    event = TraceEvent("guest_log", 0, 0, 0x10000, {"line": "y" * 200})
    with pytest.raises(TraceWriteError, match="/dev/full: No space left on device"):
        for _ in range(100_000):
            writer(event)
    written = writer.count
    writer(event)  # after the failure: ignored, no second error
    writer.close()
    assert writer.count == written


@needs_dev_full
def test_trace_record_to_dev_full_is_one_line(tmp_path: Path) -> None:
    status, _out, err = cli("trace", "record", str(_program(tmp_path, CHATTY)), "-o", str(DEV_FULL))
    assert status == EXIT_USAGE
    assert len(err.splitlines()) == 1
    assert err.startswith("hgcmlab: error: cannot write trace file /dev/full: No space left on device")


@needs_dev_full
@pytest.mark.parametrize("export_format", ["perfetto", "drcov"])
def test_trace_export_to_dev_full_is_one_line(tmp_path: Path, export_format: str) -> None:
    trace = tmp_path / "run.jsonl"
    assert cli("trace", "record", str(_program(tmp_path, QUIET)), "--blocks", "-o", str(trace))[0] == 5
    status, _out, err = cli("trace", "export", str(trace), "--format", export_format, "-o", str(DEV_FULL))
    assert status == EXIT_USAGE
    assert err == "hgcmlab: error: cannot write /dev/full: No space left on device\n"

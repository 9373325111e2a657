"""The hgcmlab command line: run, demo, devices, and clean errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hgcmlab.machine.cli import EXIT_BUDGET, EXIT_GUEST_FAULT, EXIT_USAGE, main


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def program(tmp_path: Path):
    def write(text: str, name: str = "prog.s") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


def test_run_prints_log_lines_and_exits_with_the_guest_code(program) -> None:
    path = program("""
_start:
    mov dx, 0x504
    mov al, 'h'
    out dx, al
    mov al, 'i'
    out dx, al
    mov al, 10
    out dx, al
    mov al, 7
    out 0xf4, al
""")
    status, out, err = cli("run", str(path))
    assert status == 7
    assert out.splitlines()[0] == "[guest] hi"
    assert "run ended by exit device, code 7 after 9 instructions" in out
    assert err == ""


def test_run_in_32_bit_mode_and_hlt_exits_zero(program) -> None:
    status, out, _ = cli("run", "--mode", "32", "--quiet", str(program("_start:\n mov eax, esp\n hlt\n")))
    assert (status, out) == (0, "")


def test_exit_codes_above_255_become_255(program) -> None:
    status, _, _ = cli("run", "-q", str(program("_start:\n mov eax, 0x1234\n out 0xf4, eax\n")))
    assert status == 255


def test_guest_fault_prints_the_report_and_exits_with_the_fault_status(program) -> None:
    status, out, err = cli("run", str(program("_start:\n nop\n ud2\n")))
    assert status == EXIT_GUEST_FAULT
    assert "guest fault: invalid opcode" in err
    assert "pc 0x10001" in err and "prog.s:3: ud2" in err
    assert "run ended by guest fault" in out


def test_budget_exhaustion_is_reported(program) -> None:
    status, _, err = cli("run", "--max-instructions", "500", str(program("_start:\n jmp _start\n")))
    assert status == EXIT_BUDGET and "instruction budget of 500 exhausted" in err


def test_share_option_maps_a_directory_for_the_guest(tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    demo = Path(__file__).resolve().parents[2] / "guest_asm" / "programs" / "demo.s"
    status, out, _ = cli("run", "--share", f"demo={host}", str(demo))
    assert status == 0, out
    assert (host / "hello.txt").read_bytes().startswith(b"Hello")


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "missing.s"], "no such program file"),
    (["run", "/"], "not a regular file"),
    (["run", "--share", "x", "p.s"], "expected NAME=DIR"),
    (["run", "--share", "x=/definitely/not/here", "p.s"], "is not an existing directory"),
    (["run", "--ram", "lots", "p.s"], "invalid size"),
    (["run", "--ram", "100", "PROG"], "RAM size must be"),
    (["run", "--mode", "16", "p.s"], "invalid choice"),
    (["run", "--device", "nosuch", "PROG"], "unknown device 'nosuch'"),
    (["run", "-D", "1X=2", "p.s"], "invalid define"),
])
def test_usage_errors_are_one_line_messages(program, argv: list[str], message: str) -> None:
    path = program("_start: hlt\n")
    status, _, err = cli(*[str(path) if a == "PROG" else a for a in argv])
    assert status == EXIT_USAGE
    assert message in err
    assert "Traceback" not in err


def test_assembly_error_names_file_and_line(program) -> None:
    path = program("_start:\n  nop\n  movx eax, 1\n  hlt\n")
    status, _, err = cli("run", str(path))
    assert status == EXIT_USAGE
    assert "prog.s:3" in err and "Traceback" not in err


def test_read_only_share_suffix_is_parsed(tmp_path: Path) -> None:
    from hgcmlab.machine.cli import parse_share

    assert parse_share(f"data={tmp_path}:ro") == ("data", tmp_path, False)
    assert parse_share(f"data={tmp_path}") == ("data", tmp_path, True)


def test_trace_file_is_json_lines_with_vmmdev_and_hgcm_events(tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    demo = Path(__file__).resolve().parents[2] / "guest_asm" / "programs" / "demo.s"
    trace = tmp_path / "trace.jsonl"
    status, _, _ = cli("run", "-q", "--share", f"demo={host}", "--trace", str(trace), str(demo))
    assert status == 0
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    kinds = {event["kind"] for event in events}
    assert {"vmmdev_request", "hgcm_connect", "hgcm_call", "hgcm_complete", "run_end"} <= kinds
    cycles = [event["cycle"] for event in events]
    assert cycles == sorted(cycles), "events are stamped in virtual-time order"


def test_demo_runs_and_shows_the_host_file() -> None:
    status, out, err = cli("demo")
    assert status == 0, out + err
    assert "HGCM: 1 connect(s)" in out
    assert "host file" in out and "Hello" in out
    assert "CREATE" in out and "WRITE" in out


def test_help_lists_every_run_option() -> None:
    status, out, _ = cli("run", "--help")
    assert status == 0
    for option in ("--mode", "--share", "--ram", "--trace", "--max-instructions", "--device", "--define"):
        assert option in out


def test_no_command_prints_help_and_fails() -> None:
    status, out, _ = cli()
    assert status == EXIT_USAGE and "usage:" in out


def test_console_entry_point_is_runnable_as_module() -> None:
    completed = subprocess.run([sys.executable, "-m", "hgcmlab.machine.cli", "--help"], capture_output=True, text=True)
    assert completed.returncode == 0 and "demo" in completed.stdout


def test_arguments_after_double_dash_reach_the_guest(program) -> None:
    path = program("""
_start:
    mov eax, [ARGS_BASE]
    add eax, edi
    out 0xf4, eax
""")
    status, _, _ = cli("run", "-q", str(path), "--", "one", "two", "three")
    assert status == 6


def test_costs_file_changes_the_cycle_total(program, tmp_path: Path) -> None:
    path = program("_start:\n xor edx, edx\n mov ecx, 1\n div ecx\n out 0xf4, al\n")
    costs = tmp_path / "costs.json"
    costs.write_text('{"divide": 1000}')
    _, default_out, _ = cli("run", str(path))
    _, custom_out, _ = cli("run", "--costs", str(costs), str(path))
    assert "after 4 instructions, 67 cycles" in default_out
    assert "after 4 instructions, 1042 cycles" in custom_out
    costs.write_text('{"float": 1}')
    status, _, err = cli("run", "--costs", str(costs), str(path))
    assert status == EXIT_USAGE and "unknown instruction classes" in err


def test_async_hgcm_option_makes_the_demo_wait_for_done(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[2] / "guest_asm" / "programs" / "demo.s"
    trace = tmp_path / "t.jsonl"
    status, _, _ = cli("run", "-q", "--share", f"demo={tmp_path}", "--async-hgcm", "--hgcm-cycles", "5000",
                       "--trace", str(trace), str(demo))
    assert status == 0
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    latencies = {e["latency"] for e in events if e["kind"] == "hgcm_complete"}
    assert latencies and all(latency >= 5000 for latency in latencies)
    assert any(e["kind"] == "event" for e in events), "completions came from the scheduler"


def test_program_arguments_after_options_as_the_readme_writes_them(tmp_path: Path) -> None:
    (tmp_path / "todo.txt").write_text("hi\nthere\n")
    cat = Path(__file__).resolve().parents[2] / "guest_asm" / "programs" / "cat.s"
    status, out, err = cli("run", str(cat), "--share", f"d={tmp_path}", "--", "d:/todo.txt")
    assert (status, err) == (0, "")
    assert out.splitlines()[:2] == ["[guest] hi", "[guest] there"]
    status, out, _ = cli("run", str(cat), "-q", "--share", f"d={tmp_path}", "--", "d:/missing.txt")
    assert status == 3 and "-102" in out


def test_arguments_after_double_dash_for_a_command_without_program_arguments() -> None:
    status, _, err = cli("devices", "--", "x")
    assert status == EXIT_USAGE and "takes no program arguments" in err


def test_summary_counts_exactly_what_the_trace_holds_and_nothing_listens_without_a_trace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary's counts come from the device (no listener is attached for them): they
    equal the hgcm_connect / hgcm_call events of a traced run of the same program, and an
    untraced run wants no event kind but the guest log's, so no event is built for nothing."""
    from collections import Counter

    from hgcmlab.machine.machine import Machine

    demo = Path(__file__).resolve().parents[2] / "guest_asm" / "programs" / "cp.s"
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "src.txt").write_bytes(b"z" * 70_000)
    wanted_during_runs: list[set[str]] = []
    real_run = Machine.run

    def spying_run(self: Machine, *args: object, **kwargs: object) -> object:
        wanted_during_runs.append({kind for kind in ("guest_log", "hgcm_call", "hgcm_connect", "port_io",
                                                     "charge", "vmmdev_request", "hgcm_complete")
                                   if self.tracer.wants(kind)})
        return real_run(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Machine, "run", spying_run)
    share = f"demo={tmp_path / 'host'}"
    status, out, err = cli("run", "-q", "--share", share, str(demo), "--", "demo:/src.txt", "demo:/dst.txt")
    assert status == 0, out + err
    status, summary, err = cli("run", "--share", share, str(demo), "--", "demo:/src.txt", "demo:/dst2.txt")
    assert status == 0, summary + err
    trace = tmp_path / "t.jsonl"
    status, out, err = cli("run", "-q", "--share", share, "--trace", str(trace), str(demo), "--",
                           "demo:/src.txt", "demo:/dst3.txt")
    assert status == 0, out + err
    assert wanted_during_runs[0] == wanted_during_runs[1] == {"guest_log"}
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    calls = Counter(event["function_name"] for event in events if event["kind"] == "hgcm_call")
    connects = sum(1 for event in events if event["kind"] == "hgcm_connect")
    detail = ", ".join(f"{name} x{count}" for name, count in sorted(calls.items()))
    assert f"HGCM: {connects} connect(s), {sum(calls.values())} call(s): {detail}" in summary
    assert calls["READ"] >= 2 and calls["WRITE"] >= 2


def test_version_says_whether_the_native_accelerator_is_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from hgcmlab.devices.vmmdev import accel

    status, out, err = cli("--version")
    expected = "on" if accel.available() else f"off ({accel.unavailable_reason()}; its Python twin is used)"
    assert (status, err) == (0, "")
    assert out.splitlines()[0].startswith("hgcmlab ")
    assert out.splitlines()[1] == f"native HGCM accelerator: {expected}"
    monkeypatch.setenv(accel.ENVIRONMENT, "0")
    status, out, _ = cli("--version")
    assert status == 0 and out.splitlines()[1] == ("native HGCM accelerator: off (HGCMLAB_NATIVE=0; "
                                                   "its Python twin is used)")

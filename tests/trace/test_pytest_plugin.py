"""The pytest plugin, exercised the way users meet it: pytest runs in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

GOLDEN_TEST = '''
def test_session(hgcm_machine, hgcm_share, hgcm_assemble, assert_trace):
    machine = hgcm_machine(mode=64)
    machine.add_share("demo", hgcm_share)
    machine.load(hgcm_assemble.bundled("demo.s", defines=DEFINES))
    machine.run()
    assert_trace(machine, "session", kinds=["hgcm_call"], fields=["call"])
'''


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
                          cwd=directory, capture_output=True, text=True, timeout=300)


def write_golden_test(directory: Path, defines: str = "None") -> None:
    (directory / "test_golden.py").write_text("DEFINES = " + defines + "\n" + GOLDEN_TEST)


def test_golden_missing_then_created_then_diffed(tmp_path: Path) -> None:
    write_golden_test(tmp_path)
    missing = run_pytest(tmp_path)
    assert missing.returncode == 1 and "run pytest with --update-golden to create it" in missing.stdout
    created = run_pytest(tmp_path, "--update-golden")
    assert created.returncode == 0, created.stdout
    golden = (tmp_path / "golden" / "session.jsonl").read_text().splitlines()
    assert len(golden) == 7 and golden[2] == ('{"kind": "hgcm_call", "call": "SHFL_FN_CREATE(root=0, '
                                              'path=\\"hello.txt\\", parms={flags=ACT_OVERWRITE_IF_EXISTS|'
                                              'ACT_CREATE_IF_NEW|ACCESS_READWRITE})"}')
    assert run_pytest(tmp_path).returncode == 0
    # A guest change that renames the file shows up as a readable diff.
    (tmp_path / "golden" / "session.jsonl").write_text(
        "\n".join(line.replace("hello.txt", "goodbye.txt") for line in golden) + "\n")
    changed = run_pytest(tmp_path)
    assert changed.returncode == 1
    assert "trace differs from golden session.jsonl" in changed.stdout
    assert '-{"kind": "hgcm_call", "call": "SHFL_FN_CREATE(root=0, path=\\"goodbye.txt\\"' in changed.stdout
    assert '+{"kind": "hgcm_call", "call": "SHFL_FN_CREATE(root=0, path=\\"hello.txt\\"' in changed.stdout


def test_failure_report_shows_fault_events_registers_and_source(tmp_path: Path) -> None:
    (tmp_path / "test_fault.py").write_text(textwrap.dedent('''
        def test_fault(hgcm_machine, hgcm_assemble):
            machine = hgcm_machine(mode=64)
            machine.load(hgcm_assemble("_start:\\n mov dx, 0x504\\n mov al, 0x41\\n out dx, al\\n"
                                       " mov rbx, 0x1234\\n mov rax, [0xffffffff0]\\n hlt\\n"))
            assert machine.run().ok
        '''))
    result = run_pytest(tmp_path, "--hgcm-last-events=4")  # port_io, guest_log, guest_fault, run_end
    assert result.returncode == 1
    report = result.stdout[result.stdout.index("hgcmlab machine 1"):]
    assert "last run ended: fault" in report and "read of unmapped memory at 0xffffffff0" in report
    assert "last 4 events:" in report and "port_io" in report and "guest_fault" in report and "run_end" in report
    assert "rbx=0x1234" in report
    assert "=>    0x1000e <_start+0xe>" in report and "; <source>:6: mov rax, [0xffffffff0]" in report
    assert "mov rbx, 0x1234" in report  # the instruction before pc is listed too


def test_machines_are_closed_at_teardown_and_passing_tests_have_no_report(tmp_path: Path) -> None:
    (tmp_path / "test_close.py").write_text(textwrap.dedent('''
        import pytest
        made = []

        def test_make(hgcm_machine):
            made.append(hgcm_machine(mode=32))
            closed_early = hgcm_machine(mode=64)
            closed_early.close()          # closing twice is harmless

        def test_closed_after_teardown():
            with pytest.raises(ValueError):
                made[0].memory.read(0, 1)
        '''))
    result = run_pytest(tmp_path, "-rA")
    assert result.returncode == 0, result.stdout
    assert "hgcmlab machine" not in result.stdout


def test_plugin_can_be_disabled(tmp_path: Path) -> None:
    write_golden_test(tmp_path)
    result = run_pytest(tmp_path, "-p", "no:hgcmlab")
    assert result.returncode == 1 and "fixture 'hgcm_machine' not found" in result.stdout


@pytest.mark.parametrize("parallel", [False, True])
def test_the_examples_run(parallel: bool) -> None:
    args = ["-n", "2"] if parallel else []
    result = run_pytest(REPO, "examples", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "15 passed" in result.stdout

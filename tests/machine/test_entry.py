"""The console entry point: a Ctrl-C while the CLI is still loading gives no traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest

from hgcmlab.machine import entry, runcontrol

ROOT = Path(__file__).resolve().parents[2]


class _InterruptedWhileLoading(types.ModuleType):
    """Stands in for hgcmlab.machine.cli: taking ``main`` from it raises as a Ctrl-C during import would."""

    def __getattr__(self, name: str) -> object:
        raise KeyboardInterrupt


def test_ctrl_c_while_the_cli_loads_is_one_line_and_status_130(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A KeyboardInterrupt out of the CLI import is one stderr line and the status of Ctrl-C."""
    monkeypatch.setitem(sys.modules, "hgcmlab.machine.cli", _InterruptedWhileLoading("hgcmlab.machine.cli"))
    previous = signal.getsignal(signal.SIGINT)
    try:
        assert entry.main() == runcontrol.EXIT_INTERRUPTED == 130
        # Afterwards a late Ctrl-C takes the signal's default action instead of raising.
        assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous)
    assert capsys.readouterr().err == "hgcmlab: interrupted\n"


def test_entry_runs_the_cli_and_returns_its_status(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without interruption the CLI's own status comes back unchanged."""
    fake = types.ModuleType("hgcmlab.machine.cli")
    fake.main = lambda: 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hgcmlab.machine.cli", fake)
    previous = signal.getsignal(signal.SIGINT)
    try:
        assert entry.main() == 7
    finally:
        signal.signal(signal.SIGINT, previous)


def _entry(*args: str, stdout: object) -> subprocess.CompletedProcess[str]:
    """The console entry point in a child process (as the installed ``hgcmlab`` runs it)."""
    code = "import sys; from hgcmlab.machine.entry import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], stdout=stdout,  # type: ignore[call-overload]
                          stderr=subprocess.PIPE, text=True, timeout=120, cwd=ROOT)


def test_standard_output_on_a_full_disk_is_one_line_and_status_2() -> None:
    """`hgcmlab demo > /dev/full`: every write fails with ENOSPC; one line, no traceback."""
    with open("/dev/full", "w") as full:
        done = _entry("demo", stdout=full)
    assert done.returncode == 2
    assert done.stderr == "hgcmlab: error: cannot write output: No space left on device\n"


def test_a_reader_that_goes_away_is_quiet() -> None:
    """`hgcmlab demo | head -c 1`: the closed pipe ends the command without a message."""
    child = subprocess.Popen([sys.executable, "-c",
                              "import sys; from hgcmlab.machine.entry import main; sys.exit(main())", "demo"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert child.stdout is not None and child.stderr is not None
    with child, child.stderr:
        child.stdout.read(1)
        child.stdout.close()
        errors = child.stderr.read().decode()
        assert child.wait(timeout=120) in (0, 2)
    assert "Traceback" not in errors and "Exception ignored" not in errors, errors

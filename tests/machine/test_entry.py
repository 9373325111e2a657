"""The console entry point: a Ctrl-C while the CLI is still loading gives no traceback."""

from __future__ import annotations

import signal
import sys
import types

import pytest

from machine import entry, runcontrol


class _InterruptedWhileLoading(types.ModuleType):
    """Stands in for machine.cli: taking ``main`` from it raises as a Ctrl-C during import would."""

    def __getattr__(self, name: str) -> object:
        raise KeyboardInterrupt


def test_ctrl_c_while_the_cli_loads_is_one_line_and_status_130(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A KeyboardInterrupt out of the CLI import is one stderr line and the status of Ctrl-C."""
    monkeypatch.setitem(sys.modules, "machine.cli", _InterruptedWhileLoading("machine.cli"))
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
    fake = types.ModuleType("machine.cli")
    fake.main = lambda: 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "machine.cli", fake)
    previous = signal.getsignal(signal.SIGINT)
    try:
        assert entry.main() == 7
    finally:
        signal.signal(signal.SIGINT, previous)

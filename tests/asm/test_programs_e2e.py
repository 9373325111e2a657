"""The bundled programs run end to end on the machine and change host files as promised.

Uses hgcmlab's pytest plugin (machine/pytest_plugin.py): traced machines closed at
teardown, the assemble helper and golden traces (golden/ next to this file).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hgcmlab.machine.machine import RunResult

STEPS = ["sf: start", "sf: connected", "sf: share mapped", "sf: file created", "sf: message written",
         "sf: read back and verified", "sf: done"]


@pytest.fixture
def _run(hgcm_machine, hgcm_assemble) -> Callable[..., RunResult]:
    def run(program: str, mode: int, share: Path | None = None, writable: bool = True,
            defines: dict[str, int | str] | None = None) -> RunResult:
        machine = hgcm_machine(mode, ram_size=64 << 20)
        if share is not None:
            machine.add_share("demo", share, writable=writable)
        machine.load(hgcm_assemble.bundled(program, mode=mode, defines=defines))
        return machine.run()
    return run


@pytest.mark.parametrize("mode", (64, 32))
def test_demo_writes_hello_txt(_run, tmp_path: Path, mode: int) -> None:
    result = _run("demo.s", mode, tmp_path)
    assert (result.exit_code, result.log_lines) == (0, STEPS)
    assert (tmp_path / "hello.txt").read_bytes() == b"Hello from the hgcmlab guest!\n"


@pytest.mark.parametrize("mode", (64, 32))
@pytest.mark.parametrize("linaddr", (False, True))
def test_sf_write_read(_run, tmp_path: Path, mode: int, linaddr: bool) -> None:
    defines = {"HGCM_USE_LINADDR": 1} if linaddr else None
    result = _run(f"sf_write_read_{mode}.s", mode, tmp_path, defines=defines)
    assert (result.exit_code, result.log_lines) == (0, STEPS)
    expected = f"HGCMCall{mode} write/read round trip\n".encode()
    assert (tmp_path / f"write_read_{mode}.txt").read_bytes() == expected


def test_demo_overwrites_an_existing_file(_run, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_bytes(b"x" * 100)
    assert _run("demo.s", 64, tmp_path).exit_code == 0
    assert (tmp_path / "hello.txt").read_bytes() == b"Hello from the hgcmlab guest!\n"


def test_demo_without_the_share_fails_at_map_folder(_run, tmp_path: Path) -> None:
    result = _run("demo.s", 64)
    assert result.exit_code == 4
    assert result.log_lines[-1].startswith("sf: step failed: ")


def test_hello_log_and_exit_code(_run) -> None:
    result = _run("hello_log.s", 64)
    assert (result.exit_code, result.log_lines) == (0, ["hello from the guest"])
    assert _run("exit_code.s", 32).exit_code == 42
    assert _run("exit_code.s", 64, defines={"EXIT_CODE": 7}).exit_code == 7


@pytest.mark.parametrize("mode", (64, 32))
def test_demo_hgcm_conversation_matches_golden(hgcm_machine, hgcm_share, hgcm_assemble, assert_trace,
                                                mode: int) -> None:
    machine = hgcm_machine(mode)
    machine.add_share("demo", hgcm_share)
    machine.load(hgcm_assemble.bundled("demo.s", mode=mode))
    assert machine.run().exit_code == 0
    # Both modes make the same calls with the same decoded parameters and results.
    assert_trace(machine, "demo_calls", kinds=["hgcm_call", "hgcm_complete"],
                 fields={"hgcm_call": ["call"], "hgcm_complete": ["result_name", "results"]})

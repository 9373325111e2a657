"""The debugger's gated native hooks (machine/gdbstub/native.py): the stored machine code is
its source assembled, and the pure-Python gates used on hosts without it stop the guest at
the same places with the same counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.gdbstub import native
from hgcmlab.machine.machine import RunResult
from hgcmlab.machine.programs import PROGRAMS_DIR
from tests.machine.test_gdb_protocol import start_stub


def test_stored_machine_code_is_the_assembled_source() -> None:
    assert assemble(native.CODE_SOURCE, mode=64, base=0).code == native.CODE_NATIVE
    assert assemble(native.MEMORY_SOURCE, mode=64, base=0).code == native.MEMORY_NATIVE


def stops_of_a_session(tmp_path: Path) -> tuple[list[tuple[bytes, int]], RunResult]:
    """Breakpoints at every label, watchpoints on the requests' flags, a step at every
    third stop: the (stop reply, pc) of every stop and the run's result."""
    stub = start_stub(PROGRAMS_DIR / "demo_irq.s", share=tmp_path, async_hgcm=True)
    stops = []
    try:
        client, symbols = stub.client, stub.program.symbols
        for address in sorted(set(symbols.values())):
            if address < stub.program.end:
                assert client.request(f"Z0,{address:x},1".encode()) == b"OK"
        for name in ("hgcm_connect_req", "hgcm_call_req"):
            assert client.request(f"Z2,{symbols[name] + 24:x},4".encode()) == b"OK"
        while not (reply := client.request(b"s" if len(stops) % 3 == 2 else b"c")).startswith(b"W"):
            stops.append((reply, stub.register("rip")))
        result = stub.finish()
    finally:
        stub.client.close()
        stub.thread.join(30)
        stub.machine.close()
    assert isinstance(result, RunResult)
    return stops, result


def test_python_gates_and_native_hooks_stop_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "native").mkdir()
    (tmp_path / "python").mkdir()
    native_stops, native_result = stops_of_a_session(tmp_path / "native")
    monkeypatch.setattr(native, "code_hook_address", lambda: None)
    monkeypatch.setattr(native, "memory_hook_address", lambda: None)
    python_stops, python_result = stops_of_a_session(tmp_path / "python")
    assert len(native_stops) > 500
    assert python_stops == native_stops
    assert (python_result.instructions, python_result.cycles) == (native_result.instructions, native_result.cycles)
    assert {reply[:13] for reply, _pc in native_stops} >= {b"T05thread:1;s", b"T05thread:1;w"}

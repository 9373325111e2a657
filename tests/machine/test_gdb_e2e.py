"""The stub driven by the real gdb (Debian's gdb; .ci/run installs it): break at a symbol,
step over the `out` to the VMMDev request port, read the request in guest memory, watch
the DONE flag being written, continue to the exit - in both modes, with the program's
symbols and source lines fetched from the stub."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.guest_asm.constants import program_constants
from hgcmlab.machine.gdbstub import DebugRunEnded
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import RunEnd, RunResult
from hgcmlab.machine.programs import PROGRAMS_DIR
from hgcmlab.machine.tracing import ListSink
from hgcmlab.runtime.status import Status

_CONSTANTS = program_constants(64, None)
HGCMCONNECT_SIZE, VMMDevReq_HGCMConnect = _CONSTANTS["HGCMCONNECT_SIZE"], _CONSTANTS["VMMDevReq_HGCMConnect"]
from tests.machine.test_gdb_protocol import start_stub

GDB = shutil.which("gdb")
#: Bound on one gdb session (it normally takes well under a second).
GDB_TIMEOUT = 120
# VMMDevHGCMRequestHeader: header.size at +0, header.requestType at +8, header.rc at +12,
# fu32Flags at +24, result at +28.
_OFF_RC, _OFF_FLAGS, _OFF_RESULT = 12, 24, 28


def run_gdb(port: int, commands: list[str], cwd: Path) -> str:
    """Run gdb in batch mode against the stub; gdb is always killed when it overstays."""
    assert GDB is not None, "gdb is required for these tests (apt-get install gdb; .ci/run installs it)"
    arguments = [GDB, "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
                 "-ex", f"target remote 127.0.0.1:{port}"]
    for command in commands:
        arguments += ["-ex", command]
    process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd, text=True)
    try:
        output, _ = process.communicate(timeout=GDB_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return output


def plain(name: str, mode: int, share: Path) -> tuple[RunResult, list[str]]:
    machine = vbox_board(mode)
    events = ListSink()
    machine.tracer.add_sink(events)
    machine.add_share("demo", share)
    machine.load(assemble(PROGRAMS_DIR / name, mode=mode))
    try:
        return machine.run(), [e.host_independent().to_json() for e in events.events]
    finally:
        machine.close()


#: Instructions from hgcm_submit to the `out` in vmmdev_request, and the register holding
#: the request address there (guest_asm/lib/hgcm.s, vmmdev.s).
_STEPS_TO_OUT = {64: 3, 32: 6}
_REQUEST_REGISTER = {64: "$rdi", 32: "$ecx"}


@pytest.mark.parametrize("mode", [64, 32])
def test_gdb_session_over_an_hgcm_request(tmp_path: Path, mode: int) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "gdb").mkdir()
    expected, expected_events = plain("demo.s", mode, tmp_path / "plain")
    events = ListSink()
    stub = start_stub(PROGRAMS_DIR / "demo.s", mode=mode, share=tmp_path / "gdb", trace=events, connect=False)
    symbols = stub.program.symbols
    request = _REQUEST_REGISTER[mode]
    call_flags = symbols["hgcm_call_req"] + _OFF_FLAGS
    commands = (["info line *$pc", "break hgcm_submit", "continue"] + ["stepi"] * _STEPS_TO_OUT[mode]
                + ["x/i $pc", "stepi", "info line *$pc",
                   f'printf "request %#x size %u type %u rc %d result %d\\n", {request}, '
                   f"*(unsigned int*){request}, *(unsigned int*)({request}+8), *(int*)({request}+{_OFF_RC}), "
                   f"*(int*)({request}+{_OFF_RESULT})",
                   f'printf "flags %#x\\n", *(unsigned int*)({request}+{_OFF_FLAGS})',
                   "delete", f"watch -l *(unsigned int*){call_flags:#x}",
                   # The guest fills the call request and sets its flags to 0, then VMMDev sets DONE.
                   "continue", "continue", "continue", "continue", "continue", "continue",
                   "monitor cycles", "delete", "continue"])
    try:
        output = run_gdb(stub.port, commands, tmp_path)
        stub.thread.join(30)
        assert not stub.thread.is_alive(), output
        result = stub.outcome["result"]
    finally:
        stub.machine.close() if not stub.thread.is_alive() else None
    assert isinstance(result, RunResult) and result.end is RunEnd.EXIT, output
    # Symbols and lines came from the ELF image the stub served.
    assert "Reading symbols from target:" in output
    assert re.search(r'Line 9 of "[^"]*demo\.s" starts at address 0x10000 <_start>', output)
    assert re.search(r"Breakpoint 1, (0x[0-9a-f]+ in )?hgcm_submit \(\) at [^\n]*lib/hgcm\.s:\d+", output)
    assert re.search(r"=> 0x[0-9a-f]+ <vmmdev_request\+\d+>:\s+out\s+%eax,\(%dx\)", output)
    # After the out: VMMDev accepted the connect (header rc VINF_HGCM_ASYNC_EXECUTE) and
    # completed it at once (result VINF_SUCCESS, DONE set).
    assert (f"request {symbols['hgcm_connect_req']:#x} size {HGCMCONNECT_SIZE} type {VMMDevReq_HGCMConnect} "
            f"rc {Status.VINF_HGCM_ASYNC_EXECUTE} result 0\n") in output
    assert "flags 0x1\n" in output
    hits = re.findall(r"Hardware watchpoint \d+: -location \*\(unsigned int\*\)0x[0-9a-f]+\n\n"
                      r"Old value = (\d+)\nNew value = (\d+)", output)
    assert ("0", "1") in hits
    assert re.search(r"cycles \d+  instructions \d+  pc 0x", output)
    assert "[Inferior 1 (Remote target) exited normally]" in output
    # The run under gdb equals the run without it.
    assert (result.instructions, result.cycles) == (expected.instructions, expected.cycles)
    assert [e.host_independent().to_json() for e in events.events] == expected_events


def test_ctrl_c_in_gdb_stops_a_running_guest(tmp_path: Path) -> None:
    stub = start_stub("_start:\n    inc dword ptr [0x3000]\n    jmp _start\n", max_instructions=1 << 60, connect=False)
    assert GDB is not None, "gdb is required for these tests (apt-get install gdb; .ci/run installs it)"
    process = subprocess.Popen([GDB, "-nx", "-batch", "-ex", f"target remote 127.0.0.1:{stub.port}", "-ex", "continue",
                                "-ex", "p *(unsigned int*)0x3000 > 1000", "-ex", "info line *$pc", "-ex", "kill"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path, text=True)
    try:
        deadline = time.monotonic() + GDB_TIMEOUT       # liveness bound only, nothing is timed
        while stub.machine.memory.read_u32(0x3000) < 100_000:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)              # what typing Ctrl-C in gdb does
        output, _ = process.communicate(timeout=GDB_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    stub.thread.join(30)
    assert not stub.thread.is_alive()
    assert "Program received signal SIGINT, Interrupt." in output, output
    assert "$1 = 1\n" in output
    assert re.search(r"Line [23] of \"<source>\" starts at address 0x1000[0-9a-f] <_start(\+\d+)?>", output), output
    result = stub.outcome["result"]
    stub.machine.close()
    assert isinstance(result, DebugRunEnded) and str(result).startswith("killed from gdb")

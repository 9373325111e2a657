"""The gdb stub at the protocol level, driven by a small Python client
(machine/gdbstub/client.py): packets, registers, memory, breakpoints, watchpoints, steps,
interrupts, monitor commands, the served ELF image, malformed input and the ways a session
ends."""

from __future__ import annotations

import struct
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.guest_asm.assembler import AssembledProgram, assemble
from hgcmlab.guest_asm.elfout import elf_image
from hgcmlab.machine.gdbstub import DebugRunEnded, ExecFile, GdbServer, run_under_gdb
from hgcmlab.machine.gdbstub.client import GdbClient
from hgcmlab.machine.gdbstub.packets import frame
from hgcmlab.machine.gdbstub.registers import layout
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import Machine, RunEnd, RunResult
from hgcmlab.machine.programs import PROGRAMS_DIR
from hgcmlab.machine.tracing import ListSink
from hgcmlab.services.sharedfolders.abi import ShflFn

#: HGCM request header: fu32Flags (VBOX_HGCM_REQ_DONE = 1) at +24 (VMMDevHGCMRequestHeader).
_OFF_FLAGS = 24


@dataclass
class Stub:
    """A machine running under the stub in a thread, and a connected client."""

    machine: Machine
    program: AssembledProgram
    client: GdbClient
    thread: threading.Thread
    port: int
    outcome: dict[str, object] = field(default_factory=dict)

    def finish(self) -> RunResult | Exception:
        self.thread.join(30)
        assert not self.thread.is_alive(), "the stub did not finish"
        return self.outcome["result"]  # type: ignore[return-value]

    def register(self, name: str) -> int:
        number = next(n for n, r in enumerate(layout(self.machine.mode)) if r.name == name)
        return int.from_bytes(bytes.fromhex(self.client.request(f"p{number:x}".encode()).decode()), "little")


def start_stub(source: str | Path, *, mode: int = 64, share: Path | None = None, async_hgcm: bool = False,
               max_instructions: int = 20_000_000, trace: ListSink | None = None, connect: bool = True) -> Stub:
    """Run ``source`` under the stub in a thread; connect the Python client unless
    ``connect`` is false (then another debugger connects to ``Stub.port``)."""
    program = assemble(source, mode=mode)
    config = VMMDevConfig(timing=HgcmTiming(force_async=True)) if async_hgcm else None
    machine = vbox_board(mode, vmmdev_config=config)
    if share is not None:
        machine.add_share("demo", share)
    if trace is not None:
        machine.tracer.add_sink(trace)
    machine.load(program)
    server = GdbServer("127.0.0.1", 0)
    outcome: dict[str, object] = {}

    def serve() -> None:
        try:
            outcome["result"] = run_under_gdb(machine, server, max_instructions=max_instructions,
                                              exec_file=ExecFile("/virtual/prog.elf", elf_image(program)),
                                              accept_timeout=20)
        except Exception as error:  # noqa: BLE001 - the test inspects it
            outcome["result"] = error
        finally:
            server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = GdbClient("127.0.0.1", server.port) if connect else GdbClient.__new__(GdbClient)
    return Stub(machine, program, client, thread, server.port, outcome)


@pytest.fixture
def stubs() -> Iterator[list[Stub]]:
    started: list[Stub] = []
    yield started
    for stub in started:
        stub.client.close()
        stub.thread.join(30)
        stub.machine.close()


LOOP = """
_start:
    mov eax, 1
    mov ebx, 2
    add eax, ebx
spin:
    inc ecx
    jmp spin
"""

EXIT_42 = """
_start:
    mov eax, 42
    mov dx, 0xF4
    out dx, eax
    hlt
"""


def demo(stubs: list[Stub], tmp_path: Path, **options: object) -> Stub:
    stub = start_stub(PROGRAMS_DIR / "demo.s", share=tmp_path, **options)  # type: ignore[arg-type]
    stubs.append(stub)
    return stub


def test_qsupported_announces_what_the_stub_does(stubs, tmp_path) -> None:
    stub = demo(stubs, tmp_path)
    reply = stub.client.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386").decode()
    features = set(reply.split(";"))
    assert {"qXfer:features:read+", "qXfer:exec-file:read+", "swbreak+", "hwbreak+", "vContSupported+",
            "QStartNoAckMode+"} <= features
    assert "PacketSize=4000" in features
    assert stub.client.request(b"vCont?") == b"vCont;c;C;s;S"


@pytest.mark.parametrize("mode, architecture, pc_name, count",
                         [(64, "i386:x86-64", "rip", 24 + 16 + 17 + 2 + 6 + 4),
                          (32, "i386", "eip", 16 + 16 + 9 + 5 + 4)])
def test_target_description_lists_every_register_in_g_order(stubs, mode, architecture, pc_name, count) -> None:
    stub = start_stub(LOOP, mode=mode)
    stubs.append(stub)
    document = b""
    while True:
        reply = stub.client.request(f"qXfer:features:read:target.xml:{len(document):x},100".encode())
        document += reply[1:]
        if reply[:1] == b"l":
            break
        assert reply[:1] == b"m"
    root = ElementTree.fromstring(document)
    assert root.findtext("architecture") == architecture
    registers = root.findall("feature/reg")
    assert len(registers) == count
    names = [r.get("name") for r in registers]
    core = {f.get("name"): [r.get("name") for r in f.findall("reg")] for f in root.findall("feature")}
    # gdb's i386/amd64 code requires these names in this order in the core feature.
    general = (["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"] + [f"r{i}" for i in range(8, 16)] + ["rip"]
               if mode == 64 else ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip"])
    assert core["org.gnu.gdb.i386.core"][:len(general) + 7] == general + ["eflags", "cs", "ss", "ds", "es", "fs", "gs"]
    assert {"cr0", "cr2", "cr3", "cr4", "efer", "gdtr_base", "idtr_limit"} <= set(core["org.hgcmlab.x86.system"])
    assert [int(r.get("regnum")) for r in registers] == list(range(count))
    size = sum(int(r.get("bitsize")) for r in registers) // 8
    assert len(stub.client.request(b"g")) == 2 * size
    assert names[len(general) - 1] == pc_name
    assert stub.register(pc_name) == stub.program.entry == 0x10000


def test_registers_memory_and_the_initial_stop(stubs, tmp_path) -> None:
    stub = demo(stubs, tmp_path)
    client = stub.client
    assert client.request(b"?") in (b"S05", b"T05thread:1;")
    assert stub.register("rip") == stub.program.symbols["_start"]
    assert stub.register("rsp") == stub.machine.memory.size
    assert stub.register("cs") == 0x08 and stub.register("ds") == 0x10
    assert stub.register("cr0") & 1 == 1           # protected mode
    assert stub.register("efer") & 0x500 == 0x500  # long mode enabled and active
    code = stub.program.code[:64]
    assert client.request(b"m10000,40") == code.hex().encode()
    # M writes hex, X writes binary with escapes ('}' 0x7d + byte ^ 0x20 for # $ } *).
    assert client.request(b"M2000,4:deadbeef") == b"OK"
    assert client.request(b"X2004,4:" + bytes([0x7D, ord("#") ^ 0x20, 0x7D, ord("$") ^ 0x20, 1, 2])) == b"OK"
    assert client.request(b"m2000,8") == b"deadbeef23240102"
    assert stub.machine.memory.read(0x2000, 8) == bytes.fromhex("deadbeef23240102")
    # The firmware page (GDT) outside RAM is readable, unmapped memory is an error.
    assert client.request(b"mfffff008,8") == struct.pack("<Q", 0x00AF9B000000FFFF).hex().encode()
    assert client.request(b"m80000000,4") == b"E01"
    number = next(n for n, r in enumerate(layout(64)) if r.name == "rbx")
    assert client.request(f"P{number:x}=1122334455667788".encode()) == b"OK"
    assert stub.register("rbx") == 0x8877665544332211


def test_breakpoint_step_and_continue_to_the_exit(stubs, tmp_path) -> None:
    stub = demo(stubs, tmp_path)
    client, symbols = stub.client, stub.program.symbols
    target = symbols["hgcm_connect"]
    assert client.request(f"Z0,{target:x},1".encode()) == b"OK"
    assert client.request(b"vCont;c:1") == b"T05thread:1;swbreak:;"
    assert stub.register("rip") == target
    instructions = stub.machine.cpu.instructions_at(target)
    # hgcm_connect starts with `push rbx` (1 byte): one step later rip is one byte further.
    assert client.request(b"vCont;s:1") == b"T05thread:1;"
    assert stub.register("rip") == target + 1
    assert stub.machine.cpu.instructions_at(target + 1) == instructions + 1
    assert client.request(f"z0,{target:x},1".encode()) == b"OK"
    assert client.request(b"c") == b"W00"
    result = stub.finish()
    assert isinstance(result, RunResult) and result.end is RunEnd.EXIT and result.exit_code == 0
    assert (tmp_path / "hello.txt").read_text() == "Hello from the hgcmlab guest!\n"


def test_hardware_breakpoints_are_reported_as_such(stubs) -> None:
    stub = start_stub(LOOP)
    stubs.append(stub)
    spin = stub.program.symbols["spin"]
    assert stub.client.request(f"Z1,{spin:x},1".encode()) == b"OK"
    assert stub.client.request(b"c") == b"T05thread:1;hwbreak:;"
    assert stub.register("rip") == spin and stub.register("rax") == 3
    # The loop comes back: the breakpoint hits again after exactly one more iteration.
    assert stub.client.request(b"c") == b"T05thread:1;hwbreak:;"
    assert stub.register("rcx") == 1


def test_write_watchpoint_stops_after_the_device_sets_done(stubs, tmp_path) -> None:
    stub = demo(stubs, tmp_path)
    client, symbols = stub.client, stub.program.symbols
    # The first HGCM request is the connect request; its DONE flag is written by VMMDev
    # while the guest's `out` to the request port executes.
    flags = symbols["hgcm_connect_req"] + _OFF_FLAGS
    assert client.request(f"Z2,{flags:x},4".encode()) == b"OK"
    # The guest fills the request (rep stosq: the watched u32 is written by one iteration,
    # and x86 reports data breakpoints per iteration, so the stop comes with the pc still on
    # the rep instruction) and sets the flags itself; then VMMDev sets DONE.
    fill = symbols["vmmdev_req_init"] + 0x13
    assert stub.machine.cpu.disassemble(fill)[0][1] == "rep stosq qword ptr [rdi], rax"
    stops = []
    while not stub.machine.memory.read_u32(flags) & 1:
        assert client.request(b"c") == f"T05thread:1;watch:{flags:x};".encode()
        stops.append(stub.program.symbol_at(stub.register("rip")))
        assert len(stops) < 10
    assert stops[0] == "vmmdev_req_init+0x13" and stops.count(stops[0]) == 1  # the fill
    assert all(not stop.startswith("vmmdev_request") for stop in stops[:-1])
    rip = stub.register("rip")
    out_at = symbols["vmmdev_request"] + 2 + 6      # mov eax, edi; mov edx, [rip + port]; out dx, eax
    assert stub.machine.cpu.disassemble(out_at)[0][1] == "out dx, eax"
    assert rip == out_at + 1
    assert client.request(f"z2,{flags:x},4".encode()) == b"OK"
    assert client.request(b"c") == b"W00"


def test_guest_stores_trigger_write_and_access_watchpoints_and_loads_read_ones(stubs) -> None:
    stub = start_stub("""
_start:
    mov dword ptr [0x3000], 7
    mov eax, dword ptr [0x3000]
    mov dword ptr [0x3004], 9
    hlt
""")
    stubs.append(stub)
    client = stub.client
    assert client.request(b"Z4,3004,4") == b"OK"
    assert client.request(b"Z3,3000,4") == b"OK"
    assert client.request(b"Z2,3000,2") == b"OK"
    assert client.request(b"c") == b"T05thread:1;watch:3000;"
    assert stub.machine.memory.read_u32(0x3000) == 7
    assert client.request(b"c") == b"T05thread:1;rwatch:3000;"
    assert stub.register("rax") == 7
    assert client.request(b"c") == b"T05thread:1;awatch:3004;"
    assert client.request(b"c") == b"W00"


def test_a_step_over_a_watched_store_reports_the_watchpoint(stubs) -> None:
    stub = start_stub("""
_start:
    mov dword ptr [0x3000], 7
    mov dword ptr [0x3008], 9
    hlt
""")
    stubs.append(stub)
    client = stub.client
    assert client.request(b"Z2,3000,4") == b"OK"
    assert client.request(b"s") == b"T05thread:1;watch:3000;"
    assert client.request(b"s") == b"T05thread:1;"
    assert client.request(b"c") == b"W00"


def test_ctrl_c_stops_a_running_guest(stubs) -> None:
    stub = start_stub(LOOP, max_instructions=1 << 60)
    stubs.append(stub)
    stub.client.send(b"c")
    stub.client.send_raw(b"\x03")
    assert stub.client.receive() == b"T02thread:1;"
    assert stub.program.symbols["spin"] <= stub.register("rip") <= stub.program.end
    stub.client.send_raw(frame(b"k"))       # k has no reply
    result = stub.finish()
    assert isinstance(result, DebugRunEnded) and "killed from gdb" in str(result)


def test_exit_code_and_fault_are_reported(stubs) -> None:
    stub = start_stub(EXIT_42)
    stubs.append(stub)
    assert stub.client.request(b"c") == b"W2a"
    result = stub.finish()
    assert isinstance(result, RunResult) and result.exit_code == 42
    faulty = start_stub("_start:\n    mov eax, dword ptr [0xF0000000]\n")
    stubs.append(faulty)
    assert faulty.client.request(b"c") == b"T0bthread:1;"
    assert faulty.register("rip") == 0x10000      # gdb may look at the faulting state
    assert faulty.client.request(b"c") == b"X0b"
    result = faulty.finish()
    assert isinstance(result, RunResult) and result.end is RunEnd.FAULT


def test_detach_lets_the_run_finish_without_the_debugger(stubs, tmp_path) -> None:
    stub = demo(stubs, tmp_path)
    assert stub.client.request(f"Z0,{stub.program.symbols['hgcm_connect']:x},1".encode()) == b"OK"
    assert stub.client.request(b"D") == b"OK"
    result = stub.finish()
    assert isinstance(result, RunResult) and result.end is RunEnd.EXIT and result.exit_code == 0


def test_a_disconnect_while_stopped_ends_the_run_with_a_message(stubs, tmp_path) -> None:
    stub = demo(stubs, tmp_path)
    assert stub.client.request(f"Z0,{stub.program.symbols['hgcm_connect']:x},1".encode()) == b"OK"
    assert stub.client.request(b"c").startswith(b"T05")
    stub.client.close()
    result = stub.finish()
    assert isinstance(result, DebugRunEnded)
    assert "gdb disconnected" in str(result) and "\n" not in str(result)
    assert not (tmp_path / "hello.txt").exists()


def test_malformed_packets_get_errors_and_the_session_goes_on(stubs, tmp_path) -> None:
    stub = demo(stubs, tmp_path)
    client = stub.client
    client.send_raw(b"$g#00")                      # bad checksum
    assert client.read_ack() == b"-"
    client.send_raw(b"$" + b"m" * 0x5000 + b"#00")  # longer than PacketSize
    assert client.read_ack() == b"-"
    for packet in (b"mzz,4", b"m10000", b"M10000,4:zz", b"M10000,8:00", b"Z0,xyz,1", b"Z0,1", b"p9999",
                   b"pzz", b"P1=00", b"Gzz", b"c-1", b"vFile:pread:zz", b"qXfer:features:read:target.xml:zz,1",
                   b"vCont;x", b"qRcmd,zz", b"m1_0,4", b"m 10,4", b"m10000000000000000,4", b"Z0,10000000000000000,1"):
        reply = client.request(packet)
        assert reply.startswith(b"E"), (packet, reply)
    for packet in (b"Z9,10000,1", b"qXfer:features:read:nope.xml:0,10", b"vFile:pread:7,10,0", b"bogus",
                   b"qXfer:frobnicate:read::0,1", b"vMustReplyEmpty"):
        reply = client.request(packet)
        assert reply == b"" or reply.startswith(b"E") or reply.startswith(b"F-1"), (packet, reply)
    assert client.request(b"qC") == b"QC1"
    assert client.request(b"c") == b"W00"


def test_exec_file_serves_the_elf_image(stubs, tmp_path) -> None:
    stub = demo(stubs, tmp_path)
    client = stub.client
    name = client.request(b"qXfer:exec-file:read::0,200")
    assert name == b"l/virtual/prog.elf"
    assert client.request(b"vFile:setfs:0") == b"F0"
    assert client.request(b"vFile:open:" + b"/nope".hex().encode() + b",0,0") == b"F-1,2"
    assert client.request(b"vFile:open:" + b"/virtual/prog.elf".hex().encode() + b",0,0") == b"F3"
    expected = elf_image(stub.program)
    stat = client.request(b"vFile:fstat:3")
    assert stat.startswith(b"F40;")
    data = bytearray()
    while True:
        reply = client.request(f"vFile:pread:3,1000,{len(data):x}".encode())
        head, _, body = reply.partition(b";")
        assert head.startswith(b"F")
        count = int(head[1:], 16)
        if count == 0:
            break
        chunk = bytearray()
        escaped = iter(body)
        for byte in escaped:
            chunk.append(next(escaped) ^ 0x20 if byte == 0x7D else byte)
        assert len(chunk) == count
        data += chunk
    assert bytes(data) == expected
    assert client.request(b"vFile:close:3") == b"F0"


def test_monitor_commands(stubs, tmp_path) -> None:
    stub = demo(stubs, tmp_path, async_hgcm=True)
    client, symbols = stub.client, stub.program.symbols
    wait = symbols["hgcm_submit_wait"]
    assert client.request(f"Z0,{wait:x},1".encode()) == b"OK"
    assert client.request(b"c").startswith(b"T05")
    assert client.request(b"qRcmd," + b"cycles".hex().encode()) == b"OK"
    cpu = stub.machine.cpu
    assert client.console[-1] == (f"cycles {stub.machine.cycles}  instructions {cpu.instructions_at(wait)}"
                                  f"  pc {wait:#x}\n")
    assert client.request(b"qRcmd," + b"hgcm pending".hex().encode()) == b"OK"
    connect = symbols["hgcm_connect_req"]
    assert client.console[-1].startswith("1 pending HGCM command(s)\n")
    assert f"request {connect:#x}: connect, submitted at cycle " in client.console[-1]
    # The guest polls until the connect completes; the next command is the first call,
    # SET_UTF8 (demo.s through sf_roundtrip.s).
    call = symbols["hgcm_call_req"]
    for _poll in range(1000):
        assert client.request(b"c").startswith(b"T05")
        assert client.request(b"qRcmd," + b"hgcm pending".hex().encode()) == b"OK"
        if ": call " in client.console[-1]:
            break
    assert client.console[-1].startswith("1 pending HGCM command(s)\n")
    assert (f"request {call:#x}: call SET_UTF8 (function {int(ShflFn.SET_UTF8)}, client 1), submitted at cycle "
            in client.console[-1])
    assert client.request(b"qRcmd," + b"frobnicate".hex().encode()) == b"OK"
    assert client.console[-1] == "unknown monitor command 'frobnicate' (try: monitor help)\n"
    assert client.request(b"qRcmd," + b"snapshot /tmp/x".hex().encode()) == b"OK"
    assert client.console[-1] == "snapshot: this machine has no snapshots yet\n"
    assert client.request(b"qRcmd," + b"trace on".hex().encode()) == b"OK"
    assert client.request(f"z0,{wait:x},1".encode()) == b"OK"
    client.console.clear()
    assert client.request(b"c") == b"W00"
    kinds = [line.split('"kind":"')[1].split('"')[0] for line in client.console]
    assert "hgcm_call" in kinds and kinds[-1] == "run_end"


def test_registers_and_memory_written_at_a_stop_are_what_the_guest_sees(stubs) -> None:
    stub = start_stub("""
_start:
    mov eax, 1
    mov ebx, dword ptr [0x3000]
here:
    add eax, ebx
    mov dx, 0xF4
    out dx, eax
    hlt
""")
    stubs.append(stub)
    client, here = stub.client, stub.program.symbols["here"]
    assert client.request(b"M3000,4:05000000") == b"OK"          # before the first instruction
    assert client.request(f"Z0,{here:x},1".encode()) == b"OK"
    assert client.request(b"c") == b"T05thread:1;swbreak:;"
    assert stub.register("rbx") == 5
    number = next(n for n, r in enumerate(layout(64)) if r.name == "rax")
    assert client.request(f"P{number:x}=".encode() + (0x20).to_bytes(8, "little").hex().encode()) == b"OK"
    # Mid-run the pc stays where the guest is (the counts depend on it).
    pc = next(n for n, r in enumerate(layout(64)) if r.name == "rip")
    assert client.request(f"P{pc:x}=".encode() + (here + 2).to_bytes(8, "little").hex().encode()) == b"E02"
    assert client.request(f"c{here + 2:x}".encode()) == b"E02"
    assert client.request(b"c") == b"W25"                          # 0x20 + 5


def test_the_pc_may_be_moved_before_the_first_instruction(stubs) -> None:
    stub = start_stub(EXIT_42 + "other:\n    mov eax, 7\n    mov dx, 0xF4\n    out dx, eax\n")
    stubs.append(stub)
    other = stub.program.symbols["other"]
    assert stub.client.request(f"s{other:x}".encode()) == b"T05thread:1;"
    assert stub.register("rip") == other + 5 and stub.register("rax") == 7     # mov eax, 7 executed
    assert stub.client.request(b"c") == b"W07"


def test_a_disconnect_while_the_guest_runs_ends_the_run(stubs) -> None:
    stub = start_stub(LOOP, max_instructions=1 << 60)
    stubs.append(stub)
    stub.client.send(b"c")
    stub.client.close()
    result = stub.finish()
    assert isinstance(result, DebugRunEnded) and str(result).startswith("gdb disconnected (")
    assert stub.machine.cycles > 0 and str(result).endswith(f"the run ended at cycle {stub.machine.cycles}")


def test_after_the_session_the_machine_runs_on_its_own(stubs) -> None:
    stub = start_stub(EXIT_42)
    stubs.append(stub)
    assert stub.client.request(b"Z0,10000,1") == b"OK"
    assert stub.client.request(b"c") == b"W2a"
    assert isinstance(stub.finish(), RunResult)
    machine = stub.machine
    machine.load(stub.program)
    assert machine.memory.write_observer is None
    result = machine.run()                   # no debugger left to ask: no stop at 0x10000
    assert result.exit_code == 42


def test_random_packets_get_replies_and_change_nothing(stubs, tmp_path) -> None:
    """Seeded random packets (read-only commands and garbage; nothing that resumes, writes
    or sets stops): every one gets a reply and the run afterwards is unchanged."""
    import random

    stub = demo(stubs, tmp_path)
    generator = random.Random(1234)
    heads = [b"m", b"p", b"g", b"q", b"Q", b"v", b"H", b"T", b"?", b"z", b"!", b"qXfer:", b"qXfer:features:read:",
             b"vFile:", b"vFile:pread:", b"qRcmd,", b"", b"\x7d", b"\x03"]
    forbidden = (b"c", b"s", b"C", b"S", b"k", b"D", b"vCont;", b"vKill", b"M", b"X", b"G", b"P", b"Z", b"R", b"r",
                 b"QStartNoAckMode", b"qRcmd,7472616365")   # trace: would change the console output
    sent = 0
    while sent < 400:
        tail = bytes(generator.choice(b"0123456789abcdef,:;.=-xyzXYZ#$}*\x00\xff") for _ in range(generator.randrange(12)))
        payload = generator.choice(heads) + tail
        if payload.startswith(forbidden) or b"#" in payload or b"$" in payload or b"\x03" in payload:
            continue
        reply = stub.client.request(payload)
        assert isinstance(reply, bytes)
        sent += 1
    assert stub.client.request(b"c") == b"W00"
    result = stub.finish()
    assert isinstance(result, RunResult) and result.end is RunEnd.EXIT


def test_an_exhausted_budget_is_reported_as_sigxcpu(stubs) -> None:
    stub = start_stub(LOOP, max_instructions=1000)
    stubs.append(stub)
    assert stub.client.request(b"c") == b"T18thread:1;"
    assert stub.machine.cpu.instructions == 1000
    assert stub.client.request(b"c") == b"X18"
    result = stub.finish()
    assert isinstance(result, RunResult) and result.end is RunEnd.BUDGET


def test_32_bit_addresses_out_of_range_are_errors(stubs) -> None:
    stub = start_stub(EXIT_42, mode=32)
    stubs.append(stub)
    for packet in (b"c100000000", b"s1ffffffff0"):
        assert stub.client.request(packet) == b"E01"
    assert stub.client.request(b"qAttached:1") == b"1"
    assert stub.client.request(b"c") == b"W2a"


def test_rep_instructions_are_stepped_per_iteration_as_the_machine_counts_them(stubs) -> None:
    stub = start_stub("""
_start:
    mov edi, 0x3000
    mov ecx, 5
    mov al, 7
    rep stosb
    hlt
""")
    stubs.append(stub)
    pcs = []
    while True:
        pcs.append(stub.register("rip"))
        reply = stub.client.request(b"s")
        if reply.startswith(b"W"):
            break
    rep = 0x1000C
    # Five iterations and the final check with ecx = 0, each a counted instruction.
    assert pcs == [0x10000, 0x10005, 0x1000A] + [rep] * 6 + [0x1000E]
    result = stub.finish()
    assert isinstance(result, RunResult) and result.instructions == len(pcs)

"""The machine with a real CPU: loading, run endings, standard devices, faults, counting."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.clock import CostProfile
from hgcmlab.machine.device import AttachContext, PortRange
from hgcmlab.machine.loader import DEFAULT_LOAD_ADDRESS, LoadError, elf_image, flat_image
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import DEFAULT_RAM_SIZE, Machine, RunEnd, RunResult
from hgcmlab.machine.tracing import ListSink


def run_source(source: str, mode: int = 64, max_instructions: int = 1_000_000, **machine_args: object) -> tuple[RunResult, Machine, ListSink]:
    machine = vbox_board(mode, **machine_args)  # type: ignore[arg-type]
    sink = ListSink()
    machine.tracer.add_sink(sink)
    machine.load(assemble(source, mode=mode, filename="prog.s"))
    return machine.run(max_instructions), machine, sink


@pytest.mark.parametrize("mode", [64, 32])
@pytest.mark.parametrize("width", ["al", "ax", "eax"])
def test_exit_device_ends_the_run_with_the_written_value(mode: int, width: str) -> None:
    result, machine, _ = run_source(f"""
_start:
    mov eax, 0x102
    mov dx, 0xf4
    out dx, {width}
    mov dword ptr [0x20000], 1
""", mode)
    assert result.end is RunEnd.EXIT
    assert result.exit_code == {"al": 0x02, "ax": 0x102, "eax": 0x102}[width]
    assert machine.memory.read_u32(0x20000) == 0, "nothing after the exit OUT executes"
    assert result.instructions == 3


@pytest.mark.parametrize("mode", [64, 32])
def test_hlt_ends_the_run_with_code_zero(mode: int) -> None:
    result, _, _ = run_source("_start:\n cli\n nop\n hlt\n", mode)
    assert (result.end, result.exit_code, result.instructions) == (RunEnd.HALT, 0, 3)


def test_log_port_collects_byte_writes_into_lines() -> None:
    result, _, sink = run_source("""
_start:
    mov dx, 0x504
    mov al, 'o'
    out dx, al
    mov al, 'k'
    out dx, al
    mov al, 10
    out dx, al
    mov ax, 0x4141
    out dx, ax
    mov al, 'z'
    out dx, al
    hlt
""")
    assert result.log_lines == ["ok", "z"], "16-bit writes are ignored; a partial line is flushed at the end"
    assert [e.fields["line"] for e in sink.of_kind("guest_log")] == ["ok", "z"]


def test_program_loads_at_0x10000_with_stack_at_top_of_ram() -> None:
    result, _, _ = run_source("""
_start:
    call next
next:
    pop rax
    cmp rax, 0x10005
    jne bad
    mov rax, rsp
    mov rbx, {ram}
    cmp rax, rbx
    jne bad
    mov al, 0
    out 0xf4, al
bad:
    mov al, 1
    out 0xf4, al
""".replace("{ram}", str(DEFAULT_RAM_SIZE)))
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0)


def test_stack_top_follows_the_configured_ram_size_in_32_bit_mode() -> None:
    result, _, _ = run_source("_start:\n mov eax, esp\n shr eax, 12\n out 0xf4, eax\n", 32, ram_size=2 * 1024 * 1024)
    assert result.exit_code == (2 * 1024 * 1024) >> 12


def test_instruction_budget_ends_a_runaway_guest_with_a_report() -> None:
    result, _, _ = run_source("_start:\nspin:\n inc eax\n jmp spin\n", max_instructions=1001)
    assert result.end is RunEnd.BUDGET
    assert result.instructions == 1001
    assert result.fault is not None and "budget of 1001" in result.fault.description
    assert result.fault.source is not None and "prog.s:" in result.fault.source


@pytest.mark.parametrize("mode", [64, 32])
def test_unmapped_write_fault_names_pc_instruction_and_source_line(mode: int) -> None:
    result, _, _ = run_source("""
_start:
    mov eax, 7
    mov dword ptr [0x7fff0000], eax
    hlt
""", mode)
    assert result.end is RunEnd.FAULT
    fault = result.fault
    assert fault is not None
    assert fault.pc == 0x10005
    assert "write to unmapped memory at 0x7fff0000" in fault.description
    assert fault.instruction.split()[0] in ("mov", "movabs") and "dword ptr [0x7fff0000], eax" in fault.instruction
    assert fault.source == "prog.s:4: mov dword ptr [0x7fff0000], eax"
    assert fault.symbol == "_start+0x5"
    assert result.instructions == 1
    text = fault.format()
    assert "pc 0x10005" in text and "prog.s:4" in text


@pytest.mark.parametrize(("body", "expected"), [
    ("ud2", "invalid opcode"),
    ("xor ecx, ecx\n div ecx", "divide error"),
    ("mov eax, [0x7ffffff0]", "read of unmapped memory"),
    ("jmp qword ptr [0x20000]", "instruction fetch from unmapped memory"),
])
def test_guest_faults_are_reported_not_raised(body: str, expected: str) -> None:
    prefix = "mov qword ptr [0x20000], 0x7ffff000\n" if "jmp" in body else ""
    result, _, _ = run_source(f"_start:\n {prefix} {body}\n hlt\n")
    assert result.end is RunEnd.FAULT
    assert result.fault is not None and expected in result.fault.description


def test_instruction_count_is_exact_across_blocks() -> None:
    result, _, _ = run_source("""
_start:
    mov ecx, 1000
loop:
    add eax, ecx
    dec ecx
    jnz loop
    out 0xf4, al
""")
    assert result.instructions == 1 + 3 * 1000 + 1
    costs = CostProfile()
    assert result.cycles == costs.alu + 1000 * (2 * costs.alu + costs.branch) + costs.port_io


def test_unclaimed_ports_read_all_ones_and_are_traced() -> None:
    result, _, sink = run_source("""
_start:
    mov dx, 0x1234
    in eax, dx
    mov ebx, eax
    in al, dx
    cmp ebx, 0xffffffff
    jne bad
    cmp al, 0xff
    jne bad
    out dx, eax
    mov al, 0
    out 0xf4, al
bad:
    mov al, 1
    out 0xf4, al
""")
    assert result.exit_code == 0
    unclaimed = sink.of_kind("port_unclaimed")
    assert [(e.fields["direction"], e.fields["size"]) for e in unclaimed] == [("in", 4), ("in", 1), ("out", 4)]
    assert unclaimed[0].pc == 0x10004 and unclaimed[0].instructions == 1


class CounterDevice:
    """A third-party style device: a 32-bit counter register at offset 0."""

    name = "counter"

    def __init__(self) -> None:
        self.value = 0

    def port_ranges(self) -> list[PortRange]:
        return [PortRange("counter", 0, 4, frozenset({4}))]

    def attach(self, context: AttachContext) -> None:
        self.context = context

    def io_read(self, range_name: str, offset: int, size: int) -> int:
        return self.value

    def io_write(self, range_name: str, offset: int, size: int, value: int) -> None:
        self.value += value


def test_plugin_device_gets_its_ports_at_the_chosen_base() -> None:
    machine = vbox_board(64)
    device = CounterDevice()
    machine.add_device(device, base=0x300)
    machine.load(assemble("""
_start:
    mov dx, 0x300
    mov eax, 20
    out dx, eax
    out dx, eax
    in eax, dx
    out 0xf4, al
""", mode=64))
    assert machine.run().exit_code == 40
    assert device.value == 40


def test_port_conflicts_are_refused() -> None:
    machine = vbox_board(64)
    from hgcmlab.machine.portbus import PortConflictError

    with pytest.raises(PortConflictError):
        machine.add_device(CounterDevice(), base=0xD020)
    machine.add_device(CounterDevice())  # no base: the machine picks a free block (0xc000)
    assert machine.bus.owner(0xC000) == "counter"


def test_flat_binary_runs_from_0x10000() -> None:
    program = assemble("_start:\n mov al, 9\n out 0xf4, al\n", mode=32)
    machine = vbox_board(32)
    machine.load(flat_image(program.code))
    assert machine.run().exit_code == 9


def _handmade_elf64(code: bytes, address: int) -> bytes:
    """A minimal ELF64 executable: header, one PT_LOAD, no sections."""
    ehdr = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, bytes(7), 2, 62, 1,
                       address, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 120, address, address, len(code), len(code) + 64, 0x1000)
    return ehdr + phdr + code


def test_elf64_segments_load_at_their_addresses_and_bss_is_zeroed() -> None:
    code = assemble("_start:\n mov eax, [0x200000 + 32]\n add al, 5\n out 0xf4, al\n", mode=64, base=0x200000).code
    image = elf_image(_handmade_elf64(code, 0x200000), name="handmade")
    machine = vbox_board(64)
    machine.memory.fill(0x200000, 4096, 0x77)
    machine.load(image)
    assert image.mode == 64 and image.entry == 0x200000
    assert machine.run().exit_code == 5


@pytest.mark.parametrize("data", [b"\x7fELF\x02\x01", b"\x7fELF" + bytes(60)])
def test_broken_elf_files_raise_load_error(data: bytes) -> None:
    with pytest.raises(LoadError):
        elf_image(data)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
@pytest.mark.parametrize("mode", [64, 32])
def test_gcc_built_elf_runs(tmp_path: Path, mode: int) -> None:
    source = tmp_path / "prog.c"
    source.write_text("""
static inline void outb(unsigned short port, unsigned char value) {
    __asm__ volatile ("outb %0, %1" : : "a"(value), "Nd"(port));
}
static const char message[] = "from C\\n";
void _start(void) {
    for (const char *p = message; *p; ++p) outb(0x504, *p);
    outb(0xf4, 42);
    for (;;) {}
}
""")
    binary = tmp_path / "prog.elf"
    flags = ["-m32"] if mode == 32 else ["-m64"]
    compiled = subprocess.run(["gcc", *flags, "-O1", "-ffreestanding", "-nostdlib", "-static", "-fno-pie", "-no-pie",
                               "-Wl,-Ttext-segment=0x100000", "-Wl,--build-id=none", "-o", str(binary), str(source)], capture_output=True)
    if compiled.returncode != 0 and mode == 32:
        pytest.skip(f"no 32-bit gcc support here: {compiled.stderr.decode()[:200]}")
    assert compiled.returncode == 0, compiled.stderr.decode()
    image = elf_image(binary.read_bytes(), name=str(binary))
    assert image.mode == mode and "_start" in image.symbols
    machine = vbox_board(mode)
    machine.load(image)
    result = machine.run()
    assert (result.exit_code, result.log_lines) == (42, ["from C"])


def test_mode_mismatch_is_refused() -> None:
    machine = vbox_board(32)
    with pytest.raises(ValueError, match="64-bit program"):
        machine.load(assemble("_start: hlt", mode=64))


def test_load_address_default_is_public_contract() -> None:
    assert DEFAULT_LOAD_ADDRESS == 0x10000


@pytest.mark.parametrize("mode", [64, 32])
def test_arguments_reach_the_program_in_the_block_and_registers(mode: int) -> None:
    from hgcmlab.machine.loader import ARGS_BASE, argument_block

    machine = vbox_board(mode)
    machine.set_arguments(["d:/notes.txt", "é"])
    machine.load(assemble("""
_start:
    cmp edi, 2
    jne bad
    cmp esi, ARGS_BASE
    jne bad
    mov eax, [ARGS_BASE + 12]
    movzx eax, byte ptr [ARGS_BASE + eax]
    out 0xf4, eax
bad:
    mov eax, 0xEE
    out 0xf4, eax
""", mode=mode))
    assert machine.run().exit_code == 0xC3, "second argument starts with the first UTF-8 byte of 'é'"
    block = machine.memory.read(ARGS_BASE, len(argument_block(["d:/notes.txt", "é"])))
    assert block == struct.pack("<IIII", 2, 32, 16, 29) + b"d:/notes.txt\0" + "é".encode() + b"\0"


def test_oversized_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        vbox_board(64).set_arguments(["x" * 0x10000])


def test_guest_fault_is_a_trace_event_before_run_end() -> None:
    result, _, sink = run_source("_start:\n nop\n ud2\n")
    kinds = [event.kind for event in sink.events]
    assert kinds[-2:] == ["guest_fault", "run_end"]
    fault = sink.of_kind("guest_fault")[0]
    assert fault.fields["source"] == "prog.s:3: ud2" and fault.pc == 0x10001
    assert result.end is RunEnd.FAULT


def test_block_tracing_goes_through_the_listener_with_exact_counts() -> None:
    machine = vbox_board(64, trace_blocks=True)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    machine.load(assemble("_start:\n mov ecx, 10\nagain:\n dec ecx\n jnz again\n out 0xf4, al\n", mode=64))
    result = machine.run()
    blocks = sink.of_kind("block")
    assert sum(event.fields["count"] for event in blocks) >= result.instructions
    assert len(blocks) == 1 + 10, "the entry block and ten loop iterations"


@pytest.mark.parametrize("mode", [64, 32])
def test_memory_tracing_reports_each_data_access_with_its_instruction(mode: int) -> None:
    machine = vbox_board(mode, trace_memory=True)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    machine.load(assemble("""
_start:
    mov dword ptr [0x20000], 0x11223344
    mov eax, dword ptr [0x20000]
    mov word ptr [0x20010], ax
    out 0xf4, al
""", mode=mode))
    assert machine.run().exit_code == 0x44
    accesses = [(e.fields["access"], e.fields["address"], e.fields["size"], e.fields["value"], e.instructions)
                for e in sink.of_kind("memory")]
    assert accesses == [("write", 0x20000, 4, 0x11223344, 0), ("read", 0x20000, 4, 0, 1),
                        ("write", 0x20010, 2, 0x3344, 2)]


def test_dynamically_linked_elf_is_refused_with_advice() -> None:
    code = b"\xf4"
    ehdr = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, bytes(7), 2, 62, 1,
                       0x200000, 64, 0, 0, 64, 56, 2, 0, 0, 0)
    interp = struct.pack("<IIQQQQQQ", 3, 4, 176, 0, 0, 1, 1, 1)
    load = struct.pack("<IIQQQQQQ", 1, 5, 176, 0x200000, 0x200000, 1, 1, 0x1000)
    with pytest.raises(LoadError, match="dynamically linked"):
        elf_image(ehdr + interp + load + code)


@pytest.mark.parametrize("fast", [True, False])
def test_instruction_tracing_stamps_every_instruction_exactly(fast: bool) -> None:
    machine = vbox_board(64, trace_instructions=True, fast_blocks=fast)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    machine.load(assemble("_start:\n mov ecx, 2\nagain:\n dec ecx\n jnz again\n out 0xf4, al\n", mode=64))
    result = machine.run()
    trace = [(e.instructions, e.pc, e.fields["text"]) for e in sink.of_kind("instruction")]
    assert [text for _, _, text in trace] == ["mov ecx, 2", "dec ecx", "jne 0x10005", "dec ecx", "jne 0x10005",
                                              "out 0xf4, al"]
    assert [count for count, _, _ in trace] == list(range(result.instructions))
    assert [e.cycle for e in sink.of_kind("instruction")] == [0, 1, 2, 4, 5, 7]

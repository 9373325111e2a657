"""Paging from guest code: every paging form the guest can turn on (Intel SDM vol. 3 §4),
TLB flushes, accessed/dirty bits, #PF delivered through the guest's IDT with its error
code and CR2 (and the report when the guest has no handler), and the paged start the
loader builds for higher-half programs (docs/paging.md)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from fuzz.elf import ElfSpec, Segment, build_elf
from hgcmlab.guest_asm import assemble
from hgcmlab.machine.cli import EXIT_USAGE, main
from hgcmlab.machine.loader import PAGING_AREA_SIZE, LoadError, elf_image, paging_area
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import Machine, RunEnd
from hgcmlab.machine.pytest_plugin import machine_report
from hgcmlab.machine.paging import CR4_PAE, CR4_PSE, PTE_A, PTE_D
from hgcmlab.machine.trace.files import read_trace
from hgcmlab.machine.tracing import ListSink

RAM = 16 * 1024 * 1024
TABLES = 0x100000
MAGIC, MAGIC2 = 0x11223344, 0x55667788
ALIAS = 0x40000000
#: Where the guest copies the leaf entry right after writing through the alias.
SAVED_ENTRY = 0x5000

FORMS_PROGRAM = """
_start:
.if MODE == 64
    mov rax, CR3VAL
    mov cr3, rax
    mov rax, cr4
    or rax, CR4BITS
    mov cr4, rax
    mov rax, cr0
    bts rax, 31
    mov cr0, rax
.else
    mov eax, CR3VAL
    mov cr3, eax
    mov eax, cr4
    or eax, CR4BITS
    mov cr4, eax
    mov eax, cr0
    or eax, CR0_PG
    mov cr0, eax
.endif
    mov eax, dword ptr [READ_AT]
    cmp eax, MAGIC
    jne fail1
    mov dword ptr [READ_AT + 4], 0x1234
    mov eax, dword ptr [LEAF]
    mov dword ptr [SAVED], eax
.if REMAP
    mov dword ptr [LEAF], NEWENTRY
    invlpg [READ_AT]
    mov eax, dword ptr [READ_AT]
    cmp eax, MAGIC2
    jne fail2
    mov dword ptr [LEAF], OLDENTRY
.if MODE == 64
    mov rax, cr3
    mov cr3, rax
.else
    mov eax, cr3
    mov cr3, eax
.endif
    mov eax, dword ptr [READ_AT]
    cmp eax, MAGIC
    jne fail3
.endif
    mov al, 0
    out 0xf4, al
fail1:
    mov al, 1
    out 0xf4, al
fail2:
    mov al, 2
    out 0xf4, al
fail3:
    mov al, 3
    out 0xf4, al
"""


class Tables:
    """Page tables written by the test from TABLES on, one 4 KiB page each."""

    def __init__(self, machine: Machine, entry_size: int) -> None:
        self.machine, self.entry_size, self.next = machine, entry_size, TABLES

    def table(self) -> int:
        address, self.next = self.next, self.next + 4096
        return address

    def set(self, table: int, index: int, value: int) -> int:
        address = table + index * self.entry_size
        self.machine.memory.write(address, value.to_bytes(self.entry_size, "little"))
        return address


def _form_32_4k(tables: Tables) -> tuple[int, int, int, int]:
    directory, identity, alias = tables.table(), tables.table(), tables.table()
    tables.set(directory, 0, identity | 3)
    for index in range(1024):
        tables.set(identity, index, (index << 12) | 3)
    tables.set(directory, ALIAS >> 22, alias | 3)
    return directory, tables.set(alias, 0, 0x300000 | 3), 0x300000, 0x301000


def _form_32_4m(tables: Tables) -> tuple[int, int, int, int]:
    directory = tables.table()
    tables.set(directory, 0, 0x83)
    return directory, tables.set(directory, ALIAS >> 22, 0x400000 | 0x83), 0x400000, 0x800000


def _small_pages(tables: Tables, identity_directory: int, alias_directory: int) -> tuple[int, int, int]:
    """8-byte-entry page tables under two directories: the first 2 MiB identity-mapped, the
    alias's first page at frame 0x300000; (leaf entry address, frame, other frame)."""
    identity, alias = tables.table(), tables.table()
    tables.set(identity_directory, 0, identity | 3)
    for index in range(512):
        tables.set(identity, index, (index << 12) | 3)
    tables.set(alias_directory, 0, alias | 3)
    return tables.set(alias, 0, 0x300000 | 3), 0x300000, 0x301000


def _pae(tables: Tables, large: bool) -> tuple[int, int, int, int]:
    pointers, identity_directory, alias_directory = tables.table(), tables.table(), tables.table()
    tables.set(pointers, 0, identity_directory | 1)  # PAE PDPTEs carry P only
    tables.set(pointers, 1, alias_directory | 1)
    if large:
        tables.set(identity_directory, 0, 0x83)
        return pointers, tables.set(alias_directory, 0, 0x400000 | 0x83), 0x400000, 0x600000
    return (pointers, *_small_pages(tables, identity_directory, alias_directory))


def _four_level(tables: Tables, page: str) -> tuple[int, int, int, int | None]:
    root, pointers = tables.table(), tables.table()
    tables.set(root, 0, pointers | 3)
    if page == "1G":
        tables.set(pointers, 0, 0x83)
        return root, tables.set(pointers, 1, 0x83), 0, None
    identity_directory, alias_directory = tables.table(), tables.table()
    tables.set(pointers, 0, identity_directory | 3)
    tables.set(pointers, 1, alias_directory | 3)
    if page == "2M":
        tables.set(identity_directory, 0, 0x83)
        return root, tables.set(alias_directory, 0, 0x400000 | 0x83), 0x400000, 0x600000
    return (root, *_small_pages(tables, identity_directory, alias_directory))


FORMS = {
    "32-bit 4K": (32, 0, 4, _form_32_4k),
    "32-bit 4M": (32, CR4_PSE, 4, _form_32_4m),
    "PAE 4K": (32, CR4_PAE, 8, lambda tables: _pae(tables, False)),
    "PAE 2M": (32, CR4_PAE, 8, lambda tables: _pae(tables, True)),
    "4-level 4K": (64, CR4_PAE, 8, lambda tables: _four_level(tables, "4K")),
    "4-level 2M": (64, CR4_PAE, 8, lambda tables: _four_level(tables, "2M")),
    "4-level 1G": (64, CR4_PAE, 8, lambda tables: _four_level(tables, "1G")),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_guest_turns_on_each_paging_form(form: str) -> None:
    """The guest loads CR3, sets CR4's PSE/PAE bit and CR0.PG; a linear alias reads its frame,
    a write through it sets the leaf's accessed and dirty bits, and after the leaf is
    rewritten, invlpg (and then a CR3 reload) makes the new mapping take effect."""
    mode, cr4_bits, entry_size, build = FORMS[form]
    machine = vbox_board(mode, RAM)
    root, leaf, frame, other = build(Tables(machine, entry_size))
    offset = 0x500000 if other is None else 0x300
    machine.memory.write(frame + offset, MAGIC.to_bytes(4, "little"))
    old_entry = int.from_bytes(machine.memory.read(leaf, 4), "little")
    if other is not None:
        machine.memory.write(other + offset, MAGIC2.to_bytes(4, "little"))
    defines = {"CR3VAL": root, "CR4BITS": cr4_bits, "READ_AT": ALIAS + offset, "LEAF": leaf, "SAVED": SAVED_ENTRY,
               "MAGIC": MAGIC, "MAGIC2": MAGIC2, "REMAP": int(other is not None),
               "NEWENTRY": old_entry - frame + (other or 0), "OLDENTRY": old_entry}
    machine.load(assemble(FORMS_PROGRAM, mode=mode, defines=defines))
    result = machine.run(100_000)
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.fault and result.fault.format()
    assert machine.memory.read(frame + offset + 4, 4) == (0x1234).to_bytes(4, "little")
    saved = int.from_bytes(machine.memory.read(SAVED_ENTRY, 4), "little")
    assert saved & (PTE_A | PTE_D) == PTE_A | PTE_D
    walk = machine.cpu.translate(ALIAS + offset)
    assert walk.physical == frame + offset
    assert machine.cpu.paging_registers().form == form.split()[0]
    machine.close()


PAGE_FAULTS = """
.include "ccall.s"
.include "irq.s"
.include "paging.s"
_start:
    ccall1 pg_init, 0x200000
    ccall1 pg_identity, {ram}
    ccall0 pg_enable
    ccall2 irq_install, 14, pf_handler
    mov dword ptr [0x40000010], 0x1234
    mov eax, dword ptr [0x40001020]
    cmp eax, 0xCAFEBABE
    jne wrong
    mov al, 0
    out 0xf4, al
wrong:
    mov al, 1
    out 0xf4, al

# Map the faulting page to frame 0x300000 + its index above 0x40000000, log CR2 and the
# error code, drop the error code, return to the faulting instruction.
.if MODE == 64
pf_handler:
    push rax
    push rcx
    push rdx
    push rsi
    push rdi
    push r8
    push r9
    mov eax, dword ptr [rip + pf_count]
    lea rdx, [rip + pf_log]
    shl eax, 4
    mov rcx, cr2
    mov qword ptr [rdx + rax], rcx
    mov rcx, qword ptr [rsp + 56]
    mov qword ptr [rdx + rax + 8], rcx
    inc dword ptr [rip + pf_count]
    mov rdi, cr2
    and rdi, -4096
    lea rsi, [rdi - 0x40000000 + 0x300000]
    mov edx, PTE_P | PTE_RW
    call pg_map
    pop r9
    pop r8
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rax
    add rsp, 8
    iretq
.else
pf_handler:
    pushad
    mov eax, dword ptr [pf_count]
    shl eax, 4
    mov ecx, cr2
    mov dword ptr [pf_log + eax], ecx
    mov ecx, dword ptr [esp + 32]
    mov dword ptr [pf_log + eax + 8], ecx
    inc dword ptr [pf_count]
    mov eax, cr2
    and eax, 0xFFFFF000
    lea ecx, [eax - 0x40000000 + 0x300000]
    mov edx, PTE_P | PTE_RW
    push edx
    push ecx
    push eax
    call pg_map
    add esp, 12
    popad
    add esp, 4
    iretd
.endif
.align 8
pf_count: .long 0, 0
pf_log: .space 64
"""


@pytest.mark.parametrize("mode", [64, 32])
def test_page_faults_reach_the_guest_handler_which_maps_the_page_and_resumes(mode: int) -> None:
    """Two #PFs in a row (a write, then a read): each arrives at the IDT gate with CR2 and
    the error code a CPU gives (not present; W/R bit), the handler maps the page and irets,
    and the faulting instruction completes.  The second would be escalated to a double
    fault if the first were still "in flight" in the CPU."""
    machine = vbox_board(mode, RAM)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    machine.memory.write(0x301020, (0xCAFEBABE).to_bytes(4, "little"))
    program = assemble(PAGE_FAULTS.format(ram=RAM), mode=mode)
    machine.load(program)
    result = machine.run(5_000_000)
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.fault and result.fault.format()
    log = program.symbols["pf_log"]
    entries = [int.from_bytes(machine.memory.read(log + 8 * index, 8), "little") for index in range(4)]
    assert entries == [0x40000010, 0x2, 0x40001020, 0x0]
    assert machine.memory.read(0x300010, 4) == (0x1234).to_bytes(4, "little")
    delivered = [event.fields for event in sink.events if event.kind == "exception_delivered"]
    assert [(fields["vector"], fields["error_code"], fields["linear_address"]) for fields in delivered] == [
        (14, 2, 0x40000010), (14, 0, 0x40001020)]
    machine.close()


@pytest.mark.parametrize("mode", [64, 32])
def test_page_fault_without_a_handler_reports_address_access_walk_and_source(mode: int) -> None:
    source = """
.include "ccall.s"
.include "paging.s"
_start:
    ccall1 pg_init, 0x200000
    ccall1 pg_identity, {ram}
    ccall0 pg_enable
    mov dword ptr [0x40000008], 1
    hlt
""".format(ram=RAM)
    machine = vbox_board(mode, RAM)
    machine.load(assemble(source, mode=mode))
    result = machine.run(5_000_000)
    assert result.end is RunEnd.FAULT
    report = result.fault.format()
    assert "page fault (#PF): write to linear 0x40000008 (not present, supervisor, error code 0x2)" in report
    assert "not delivered: interrupt vector 0xe lies beyond the IDT limit" in report
    assert "<source>:8: mov dword ptr [0x40000008], 1" in report
    # The root table is the pool's first page; 0x40000000 uses PDE 0x100 / PML4E 0.
    top = "PDE at phys 0x200400" if mode == 32 else "PML4E at phys 0x200000"
    assert f"  {top} = " in report
    assert "linear 0x40000008 does not translate: " in report
    assert "is linear (paging on); physical pc: " in report
    machine.close()


def _higher_half(mode: int, *, paddr: int = 0x100000) -> bytes:
    """A program linked at the higher half that exits with the byte it reads from its own
    data through its virtual address."""
    virtual = 0xFFFFFFFF80100000 if mode == 64 else 0xC0100000
    reader = "movzx eax, byte ptr [rip + value]" if mode == 64 else "movzx eax, byte ptr [value]"
    # The assembler places code below 4 GiB; 64-bit code reads rip-relative, so it runs anywhere.
    code = assemble(f"_start:\n {reader}\n out 0xf4, al\nvalue: .byte 42\n", mode=mode,
                    base=paddr if mode == 64 else virtual).code
    return build_elf(ElfSpec(mode, virtual, [Segment(virtual, code, paddr=paddr)]))


@pytest.mark.parametrize("mode", [64, 32])
def test_higher_half_elf_starts_paged(mode: int) -> None:
    machine = vbox_board(mode, RAM)
    image = elf_image(_higher_half(mode), ram_size=RAM, paging=True)
    machine.load(image, paging=True)
    assert machine.memory.read(0x100000, 1) != b"\0"  # placed at p_paddr
    result = machine.run(1000)
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 42), result.fault and result.fault.format()
    assert machine.cpu.paging_registers().cr3 == paging_area(RAM)
    machine.close()


@pytest.mark.parametrize("mode", [64, 32])
def test_higher_half_elf_without_paging_is_refused_in_one_line(mode: int) -> None:
    with pytest.raises(LoadError, match="expects paging; load it with --paging"):
        elf_image(_higher_half(mode), ram_size=RAM)
    image = elf_image(_higher_half(mode), ram_size=RAM, paging=True)
    machine = vbox_board(mode, RAM)
    with pytest.raises(ValueError, match="load it with paging=True"):
        machine.load(image)
    machine.close()


def test_segment_over_the_page_table_area_is_refused() -> None:
    with pytest.raises(LoadError, match="reaches into the page-table area"):
        elf_image(_higher_half(64, paddr=paging_area(RAM)), ram_size=RAM, paging=True)
    assert PAGING_AREA_SIZE % 4096 == 0


def test_cli_run_paging(tmp_path: Path) -> None:
    program = tmp_path / "kernel.elf"
    program.write_bytes(_higher_half(64))
    out, err = io.StringIO(), io.StringIO()
    assert main(["run", str(program), "--paging", "--quiet"], out, err) == 42
    out, err = io.StringIO(), io.StringIO()
    assert main(["run", str(program), "--quiet"], out, err) == EXIT_USAGE
    assert err.getvalue().count("\n") == 1 and "--paging" in err.getvalue()


def test_cli_trace_record_paging(tmp_path: Path) -> None:
    """``trace record --paging`` starts the program paged as ``run --paging`` does: the
    higher-half program's blocks run at their linear addresses."""
    program = tmp_path / "kernel.elf"
    program.write_bytes(_higher_half(64))
    trace = tmp_path / "run.jsonl"
    out, err = io.StringIO(), io.StringIO()
    assert main(["trace", "record", str(program), "--paging", "--blocks", "-o", str(trace)], out, err) == 42
    block = next(event.fields for event in read_trace(trace) if event.kind == "block")
    assert (block["address"], block["physical"]) == (0xFFFFFFFF80100000, 0x100000)
    out, err = io.StringIO(), io.StringIO()
    assert main(["trace", "record", str(program), "-o", str(trace)], out, err) == EXIT_USAGE
    assert err.getvalue().count("\n") == 1 and "--paging" in err.getvalue()


def test_traces_and_reports_name_physical_addresses_when_paged() -> None:
    """A block's first event carries ``physical`` while the guest runs paged (the
    higher-half program runs at linear 0xc0100000, physical 0x100000); memory events name
    the physical address (Unicorn reports accesses after translation); the module event
    covers the program's linear range; the pytest kit's report says its addresses are
    linear."""
    machine = vbox_board(32, RAM, trace_memory=True, trace_blocks=True)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    machine.load(elf_image(_higher_half(32), ram_size=RAM, paging=True), paging=True)
    machine.run(1000)
    reads = [event.fields for event in sink.events if event.kind == "memory"]
    assert reads == [{"access": "read", "address": 0x100009, "size": 1, "value": 0}]
    block = next(event.fields for event in sink.events if event.kind == "block")
    assert (block["address"], block["physical"]) == (0xC0100000, 0x100000)
    module = next(event.fields for event in sink.events if event.kind == "module")
    assert module["base"] == 0xC0100000
    assert "paging on (32-bit, CR3 " in machine_report(machine, [])
    machine.close()

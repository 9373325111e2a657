"""Blocks are decoded from per-encoding facts (one detailed capstone decode per distinct
instruction encoding); the result is the block that decoding every instruction of it with
capstone's details gives."""

from __future__ import annotations

import capstone
import pytest
from capstone import x86_const as cx

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.clock import CostProfile, classify
from hgcmlab.machine.cpu import Cpu
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.programs import PROGRAMS_DIR, bundled_program
from tests.machine.test_reproducible import PROGRAMS

MIXED = """
_start:
    sti
    mov ss, ax
    pop rbx
    rdtsc
    rdtscp
    in al, dx
    out dx, eax
    insb
    outsd
    rep movsb
    rep stosq
    popfq
    iretq
    div ecx
    imul eax, [rbx]
    mov [rip + 16], eax
    lea rax, [rbx + 8]
    jmp _start
"""


def _reference(code: bytes, address: int, mode: int, costs: CostProfile) -> tuple[object, ...]:
    """The block as the whole-block detailed decode (the previous implementation) sees it."""
    cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if mode == 64 else capstone.CS_MODE_32)
    cs.detail = True
    starts, cycles, tsc, shadowing, sets_if, ports = [], [0], [], set(), False, []
    for insn in cs.disasm(code, address):
        sets_if = sets_if or insn.mnemonic in ("sti", "popf", "popfd", "popfq", "iret", "iretd", "iretq")
        if insn.mnemonic.split()[-1].rstrip("bwdq") in ("in", "out", "ins", "outs"):
            ports.append(len(starts))
        if insn.mnemonic == "sti" or (insn.mnemonic in ("mov", "pop") and insn.op_str.split(",")[0].strip() == "ss"):
            shadowing.add(insn.address)
        if insn.mnemonic in ("rdtsc", "rdtscp"):
            tsc.append((len(starts), insn.mnemonic == "rdtscp"))
        memory = any(op.type == cx.X86_OP_MEM for op in insn.operands)
        starts.append(insn.address)
        cycles.append(cycles[-1] + costs.cost(classify(insn.mnemonic, memory)))
    follow = tuple(starts[i + 1] for i in ports if i + 1 < len(starts))
    return tuple(starts), tuple(cycles), tuple(tsc), frozenset(shadowing), sets_if, follow


def _ours(code: bytes, address: int, mode: int, costs: CostProfile) -> tuple[object, ...]:
    memory = GuestMemory(1 << 20)
    cpu = Cpu(mode, memory, lambda port, size: 0, lambda port, size, value: None, costs)
    try:
        block = cpu._decode(address, code)
        return block.starts, block.cycles, block.tsc_reads, block.shadowing, block.may_set_if, block.io_follow
    finally:
        cpu.close()
        memory.close()


COSTS = CostProfile(alu=1, multiply=3, divide=25, memory=2, string=7, branch=2, port_io=40, system=11)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_bundled_program_code_decodes_as_with_full_details(name: str) -> None:
    mode = PROGRAMS[name][0]
    image = bundled_program(name, mode=mode)
    for address, content in image.segments:
        assert _ours(content, address, mode, COSTS) == _reference(content, address, mode, COSTS)


def test_every_fact_kind_decodes_as_with_full_details() -> None:
    program = assemble(MIXED, mode=64)
    code = program.code
    ours = _ours(code, 0x10000, 64, COSTS)
    assert ours == _reference(code, 0x10000, 64, COSTS)
    starts, _cycles, tsc, shadowing, sets_if, follow = ours
    assert len(starts) == 18 and sets_if and len(tsc) == 2 and len(shadowing) == 2 and len(follow) == 4


def test_repeated_encodings_at_other_addresses_keep_their_own_starts() -> None:
    code = b"\x00\x00" * 512  # what Unicorn translates after a program's end
    assert _ours(code, 0x10000, 64, COSTS) == _reference(code, 0x10000, 64, COSTS)
    assert _ours(code, 0x20001, 32, COSTS) == _reference(code, 0x20001, 32, COSTS)


def test_every_bundled_program_is_covered() -> None:
    assert sorted(PROGRAMS) == sorted(path.name for path in PROGRAMS_DIR.glob("*.s"))


def test_pop_ss_opens_a_shadow_in_32_bit_mode() -> None:
    code = assemble("_start:\n    pop ss\n    nop\n    sti\n    hlt\n", mode=32).code
    ours = _ours(code, 0x10000, 32, COSTS)
    assert ours == _reference(code, 0x10000, 32, COSTS)
    assert len(ours[3]) == 2

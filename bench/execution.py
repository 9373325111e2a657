"""Cycle-aware execution speed against bare Unicorn with no hooks, in the same process."""

from __future__ import annotations

import unicorn
from unicorn import x86_const as ux

from bench.core import Row, median_seconds
from guest_asm.assembler import AssembledProgram, assemble
from machine.machine import Machine

COMPUTE = """
_start:
    mov ecx, {n}
again:
    add eax, ecx
    imul ebx, eax
    xor edx, ebx
    dec ecx
    jnz again
    out 0xf4, al
"""

MEMCPY = """
_start:
    mov esi, 0x100000
    mov edi, 0x300000
    mov ecx, {n}
again:
    mov eax, [rsi]
    mov [rdi], eax
    add rsi, 4
    add rdi, 4
    dec ecx
    jnz again
    out 0xf4, al
"""


def _bare(code: bytes, stop: int) -> None:
    uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_64)
    uc.mem_map(0, 64 * 1024 * 1024)
    uc.mem_write(0x10000, code)
    uc.reg_write(ux.UC_X86_REG_RSP, 64 * 1024 * 1024)
    uc.emu_start(0x10000, stop)


def _ours(program: AssembledProgram) -> int:
    machine = Machine(64)
    machine.load(program)
    result = machine.run(10**10)
    machine.close()
    return result.instructions


def run(quick: bool, repeat: int) -> list[Row]:
    rows = []
    iterations = 20_000 if quick else 1_000_000
    for name, template in (("compute loop", COMPUTE), ("memcpy loop", MEMCPY)):
        source = template.format(n=iterations)
        program = assemble(source, mode=64)
        stop = program.end - 2  # the bare run stops before `out 0xf4, al`
        instructions = _ours(program)
        bare = median_seconds(lambda: _bare(program.code, stop), repeat)
        ours = median_seconds(lambda: _ours(program), repeat)
        ours_rate = instructions / ours / 1e6
        bare_rate = instructions / bare / 1e6
        rows.append(Row("execution", f"{name}: M instructions/s, exact cycles", ours_rate, "M/s",
                        bare_rate, "bare Unicorn, no hooks", ">= 25% of bare", ours_rate >= 0.25 * bare_rate))
    return rows

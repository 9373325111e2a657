"""The CPU wrapper: the only module that touches Unicorn.

It runs guest code in 64-bit long mode or 32-bit flat protected mode over a ``GuestMemory``
mapped zero-copy, routes IN/OUT to callbacks, counts executed instructions exactly and
turns every way a run can stop into a ``StopInfo``.

Instruction counting: a block hook adds each translated block's instructions (decoded once
with capstone and cached by address and bytes); when a run stops inside a block, only the
instructions before the final pc are counted.  Unicorn is always started with an
instruction budget: besides bounding the run, that makes ``emu_stop`` from an I/O hook take
effect right after the current instruction instead of at the end of the block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import capstone
import unicorn
from unicorn import x86_const as ux

from machine.memory import GuestMemory

#: x86 `hlt` opcode.
_HLT = 0xF4


class StopKind(Enum):
    """Why a call to ``Cpu.run`` returned."""

    REQUESTED = "requested"      # a device asked to stop (exit device)
    HALT = "halt"                # `hlt` executed
    BUDGET = "budget"            # the instruction budget ran out
    FAULT = "fault"              # the guest faulted


@dataclass(frozen=True)
class StopInfo:
    """How a run stopped; for faults, what and where."""

    kind: StopKind
    pc: int
    fault: str = ""
    fault_address: int | None = None


@dataclass(frozen=True)
class _Block:
    address: int
    end: int
    starts: tuple[int, ...]

    def executed_before(self, pc: int) -> int:
        """Instructions of this block that completed when execution stopped at ``pc``."""
        if not (self.address <= pc < self.end):
            return len(self.starts)
        return sum(1 for start in self.starts if start < pc)


# Unicorn interrupt numbers that reach the hook as CPU exceptions.
_EXCEPTION_NAMES = {
    0: "divide error (#DE)", 1: "debug exception (#DB)", 3: "breakpoint (#BP, int3)",
    4: "overflow (#OF)", 5: "bound range exceeded (#BR)", 6: "invalid opcode (#UD)",
    7: "device not available (#NM)", 8: "double fault (#DF)", 10: "invalid TSS (#TS)",
    11: "segment not present (#NP)", 12: "stack fault (#SS)", 13: "general protection (#GP)",
    14: "page fault (#PF)", 16: "x87 floating-point error (#MF)", 17: "alignment check (#AC)",
    18: "machine check (#MC)", 19: "SIMD floating-point error (#XM)",
}

_UC_FAULTS = {
    unicorn.UC_ERR_READ_UNMAPPED: "read of unmapped memory",
    unicorn.UC_ERR_WRITE_UNMAPPED: "write to unmapped memory",
    unicorn.UC_ERR_FETCH_UNMAPPED: "instruction fetch from unmapped memory",
    unicorn.UC_ERR_INSN_INVALID: "invalid opcode",
    unicorn.UC_ERR_READ_PROT: "read of protected memory",
    unicorn.UC_ERR_WRITE_PROT: "write to protected memory",
    unicorn.UC_ERR_FETCH_PROT: "instruction fetch from protected memory",
    unicorn.UC_ERR_READ_UNALIGNED: "unaligned read",
    unicorn.UC_ERR_WRITE_UNALIGNED: "unaligned write",
    unicorn.UC_ERR_FETCH_UNALIGNED: "unaligned fetch",
    unicorn.UC_ERR_EXCEPTION: "unhandled CPU exception",
}

PortRead = Callable[[int, int], int]
PortWrite = Callable[[int, int, int], None]


class Cpu:
    """One x86 vCPU in ``mode`` 64 or 32 over ``memory``."""

    def __init__(self, mode: int, memory: GuestMemory, port_read: PortRead, port_write: PortWrite) -> None:
        if mode not in (32, 64):
            raise ValueError(f"mode must be 32 or 64, not {mode}")
        self.mode = mode
        self._memory = memory
        self._port_read = port_read
        self._port_write = port_write
        self._uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_64 if mode == 64 else unicorn.UC_MODE_32)
        self._uc.mem_map_ptr(0, memory.size, unicorn.UC_PROT_ALL, memory.host_address)
        self._cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if mode == 64 else capstone.CS_MODE_32)
        self._pc_reg = ux.UC_X86_REG_RIP if mode == 64 else ux.UC_X86_REG_EIP
        self._sp_reg = ux.UC_X86_REG_RSP if mode == 64 else ux.UC_X86_REG_ESP
        self._blocks: dict[tuple[int, bytes], _Block] = {}
        self._current: _Block | None = None
        self._last_block: _Block | None = None
        self._counted = 0          # instructions of blocks entered so far (full blocks)
        self.instructions = 0      # exact count of completed instructions
        self._stop_requested = False
        self._fault: tuple[str, int | None] | None = None
        self._uc.hook_add(unicorn.UC_HOOK_BLOCK, self._on_block)
        self._uc.hook_add(unicorn.UC_HOOK_INSN, self._on_in, None, 1, 0, ux.UC_X86_INS_IN)
        self._uc.hook_add(unicorn.UC_HOOK_INSN, self._on_out, None, 1, 0, ux.UC_X86_INS_OUT)
        self._uc.hook_add(unicorn.UC_HOOK_INTR, self._on_interrupt)
        self._uc.hook_add(unicorn.UC_HOOK_MEM_UNMAPPED, self._on_unmapped)

    # --- registers ------------------------------------------------------------------------

    @property
    def pc(self) -> int:
        """Current instruction pointer."""
        return self._uc.reg_read(self._pc_reg)

    @pc.setter
    def pc(self, value: int) -> None:
        self._uc.reg_write(self._pc_reg, value)

    @property
    def sp(self) -> int:
        """Current stack pointer."""
        return self._uc.reg_read(self._sp_reg)

    @sp.setter
    def sp(self, value: int) -> None:
        self._uc.reg_write(self._sp_reg, value)

    def registers(self) -> dict[str, int]:
        """The general-purpose registers, pc and flags, by their mode's names."""
        if self.mode == 64:
            names = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                     "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"]
        else:
            names = ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eip", "eflags"]
        return {name: self._uc.reg_read(getattr(ux, f"UC_X86_REG_{name.upper()}")) for name in names}

    def disassemble(self, address: int, count: int = 1) -> list[tuple[int, str]]:
        """Up to ``count`` instructions at ``address`` as (address, text); [] if unreadable."""
        if not self._memory.contains(address, 1):
            return []
        code = self._memory.read(address, min(16 * count, self._memory.size - address))
        return [(addr, f"{mnemonic} {operands}".strip())
                for addr, _size, mnemonic, operands in self._cs.disasm_lite(code, address, count)]

    # --- running --------------------------------------------------------------------------

    def instructions_at(self, pc: int) -> int:
        """Exact count of instructions completed before the one at ``pc`` (inside a hook)."""
        if self._current is None:
            return self._counted
        return self._counted - len(self._current.starts) + self._current.executed_before(pc)

    def request_stop(self) -> None:
        """Stop after the current instruction (from a hook)."""
        self._stop_requested = True
        self._uc.emu_stop()

    def run(self, budget: int) -> StopInfo:
        """Execute at most ``budget`` instructions from the current pc; report why it stopped."""
        if budget <= 0:
            return StopInfo(StopKind.BUDGET, self.pc)
        self._stop_requested = False
        self._fault = None
        self._current = None
        self._counted = self.instructions
        start = self.pc
        until = 0xFFFFFFFFFFFFFFFF if self.mode == 64 else 0xFFFFFFFF
        uc_error: unicorn.UcError | None = None
        try:
            self._uc.emu_start(start, until, count=budget)
        except unicorn.UcError as exc:
            uc_error = exc
        pc = self.pc
        executed = self.instructions_at(pc)
        self.instructions = executed
        self._current = None
        self._counted = executed
        if self._fault is not None:
            description, address = self._fault
            return StopInfo(StopKind.FAULT, pc, description, address)
        if uc_error is not None:
            return StopInfo(StopKind.FAULT, pc, _UC_FAULTS.get(uc_error.errno, str(uc_error)))
        if self._stop_requested:
            return StopInfo(StopKind.REQUESTED, pc)
        if self._halted_at(pc):
            return StopInfo(StopKind.HALT, pc)
        return StopInfo(StopKind.BUDGET, pc)

    def close(self) -> None:
        """Unmap guest RAM from the CPU (before the RAM itself is released)."""
        self._uc.mem_unmap(0, self._memory.size)

    def _halted_at(self, pc: int) -> bool:
        block = self._last_block
        return (block is not None and block.starts and block.starts[-1] == pc - 1
                and self._memory.contains(pc - 1, 1) and self._memory.read(pc - 1, 1)[0] == _HLT)

    # --- hooks ----------------------------------------------------------------------------

    def _on_block(self, uc: unicorn.Uc, address: int, size: int, _user: object) -> None:
        key = (address, self._memory.read(address, size))
        block = self._blocks.get(key)
        if block is None:
            starts = tuple(addr for addr, _s, _m, _o in self._cs.disasm_lite(key[1], address))
            block = _Block(address, address + size, starts)
            self._blocks[key] = block
        self._current = block
        self._last_block = block
        self._counted += len(block.starts)

    def _on_in(self, uc: unicorn.Uc, port: int, size: int, _user: object) -> int:
        return self._port_read(port, size)

    def _on_out(self, uc: unicorn.Uc, port: int, size: int, value: int, _user: object) -> None:
        self._port_write(port, size, value)

    def _on_interrupt(self, uc: unicorn.Uc, intno: int, _user: object) -> None:
        name = _EXCEPTION_NAMES.get(intno, f"software interrupt int {intno:#x}")
        self._fault = (f"CPU exception: {name}", None)
        uc.emu_stop()

    def _on_unmapped(self, uc: unicorn.Uc, access: int, address: int, size: int, value: int,
                     _user: object) -> bool:
        kind = {unicorn.UC_MEM_READ_UNMAPPED: "read of", unicorn.UC_MEM_WRITE_UNMAPPED: "write to",
                unicorn.UC_MEM_FETCH_UNMAPPED: "instruction fetch from"}.get(access, "access to")
        self._fault = (f"{kind} unmapped memory at {address:#x} ({size} bytes)", address)
        return False

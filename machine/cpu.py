"""The CPU wrapper: the only module that touches Unicorn.

It runs guest code in 64-bit long mode or 32-bit flat protected mode over a ``GuestMemory``
mapped zero-copy, routes IN/OUT to callbacks, counts executed instructions and their
cycles exactly, delivers external interrupts through the guest's IDT, answers ``rdtsc``
with virtual cycles, and turns every way a run can stop into a ``StopInfo``.

Counting: a block hook adds each translated block's instructions and static cycle cost
(decoded once with capstone, classified by the ``CostProfile``, cached by address and
bytes); when a run stops inside a block, only the instructions before the final pc count.

Stopping exactly without Unicorn's instruction count (``count_free``, the default).
Unicorn's count puts a hook call and a stop check before every instruction, which held a
compute loop to about 5% of bare Unicorn (docs/performance.md).  Without it, a stop (``emu_stop``) takes effect
at the next check Unicorn makes: at the start of every translated block (right after the
block hook), after every memory access, and after every code hook.  So:

- a stop requested by the block hook takes effect before the block runs;
- a stop requested by a port access (the exit device, a charge passing a deadline) takes
  effect right after that instruction because every instruction that follows a port access
  inside a block carries a no-op native code hook.  A block seen for the first time that
  needs such hooks is not run: the hooks are added, its translation is dropped and the run
  restarts there, so it is retranslated with them before its first instruction executes;
- the instruction budget is checked by the block hook (native and Python): a block that
  would cross it is run up to the budget by a *partial run*, which re-enters the block with
  a temporary code hook on the first instruction not to execute that calls ``uc_emu_stop``
  (its translation is dropped before and after, as Unicorn 2.1 does not retranslate blocks
  for a hook added later).

``count_free=False`` keeps the previous path (Unicorn started with the count every time);
tests run both and compare counts and traces.  A guest that makes us hook more than
``MAX_IO_STOP_HOOKS`` port-access sites switches its CPU to that path for good (bounded
hooks; the result is the same).

Deadlines: when the next scheduled device event falls inside the block about to run, the
block hook stops before it and the caller runs exactly the instructions needed to reach
the event's cycle (``run(count, exact=True)``), so events fire at the first instruction
boundary at or after their cycle.
"""

from __future__ import annotations

import ctypes
import struct
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import capstone
import unicorn
import unicorn.unicorn_py3.unicorn as _uc_binding
from capstone import x86_const as cx
from unicorn import x86_const as ux

from hgcmlab.machine import fastblock
from hgcmlab.machine.clock import CostProfile, classify
from hgcmlab.machine.layout import FIRMWARE_PAGE
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.paging import CR0_PG, CR0_WP, PagingRegisters, Walk, walk

#: Mnemonics that can set IF.
_IF_SETTERS = frozenset({"sti", "popf", "popfd", "popfq", "iret", "iretd", "iretq"})
#: x86 `hlt` opcode.
_HLT = 0xF4
_EFLAGS_IF = 0x200
_EFLAGS_TF = 0x100
#: Port-access mnemonics (without prefixes and size suffixes) after which a stop must take
#: effect at once.
_PORT_ACCESS = frozenset({"in", "out", "ins", "outs"})
#: Code hooks a CPU adds after port accesses before it falls back to Unicorn's count (each
#: is a Unicorn allocation, and each makes every translation a little slower).
MAX_IO_STOP_HOOKS = 1024
_NO_LIMIT = 0xFFFFFFFFFFFFFFFF
#: Instruction encodings whose decoded facts a CPU keeps (see ``Cpu._instruction_facts``).
_FACTS_LIMIT = 65536
_RDTSC = 1
_RDTSCP = 2
_CODE_HOOK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p)

#: Flat code selector (ring 0) and data selector in that GDT.
CODE_SELECTOR = 0x08
DATA_SELECTOR = 0x10
# Accessed bits preset, so the CPU never writes to the read-only page.
_GDT = {
    64: struct.pack("<QQQ", 0, 0x00AF9B000000FFFF, 0x00CF93000000FFFF),
    32: struct.pack("<QQQ", 0, 0x00CF9B000000FFFF, 0x00CF93000000FFFF),
}

#: IA32_EFER, the extended feature enable register (LME/LMA).
_MSR_EFER = 0xC0000080
#: Registers a snapshot holds explicitly besides Unicorn's context, by mode.
_SAVED_REGISTERS = {
    64: ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
         "r14", "r15", "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "efer", "fs_base", "gs_base",
         "gdtr_base", "gdtr_limit", "idtr_base", "idtr_limit", "mxcsr") + tuple(f"xmm{i}" for i in range(16)),
    32: ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eip", "eflags", "cr0", "cr2", "cr3", "cr4",
         "gdtr_base", "gdtr_limit", "idtr_base", "idtr_limit", "mxcsr") + tuple(f"xmm{i}" for i in range(8)),
}
#: gdb's names for the x87 registers where Unicorn's differ.
_REGISTER_ALIASES = {f"st{i}": f"fp{i}" for i in range(8)} | {
    "fctrl": "fpcw", "fstat": "fpsw", "ftag": "fptag", "fiseg": "fcs", "fioff": "fip", "foseg": "fds",
    "fooff": "fdp"}


def _register_id(name: str) -> int:
    return int(getattr(ux, f"UC_X86_REG_{_REGISTER_ALIASES.get(name, name).upper()}"))


_RDTSC_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


# --- engine lifetime ----------------------------------------------------------------------
#
# Closing an engine (uc_close) while the same thread is inside another engine's emu_start
# (a garbage collection running in one of its hooks) has crashed the process.  Every engine
# is therefore released through ``_release_engine``: at once, or, when the calling thread
# is inside a run, right after its outermost run returns.  Runs in other threads are
# independent engines and are not affected, so this is correct per thread and the cyclic
# collector can stay on while guests run.  ``Cpu.close`` releases its engine
# deterministically; a Cpu dropped without ``close`` is released when collected.


class _ThreadRuns(threading.local):
    """Per thread: how deep in emu_start calls it is, and engines waiting to be closed."""

    def __init__(self) -> None:
        self.depth = 0
        self.deferred: list[object] = []


_runs = _ThreadRuns()
_engines_lock = threading.Lock()
_engines_open = 0


def open_engines() -> int:
    """Unicorn engines created by ``Cpu`` and not closed yet (in this process)."""
    return _engines_open


def _engine_opened() -> None:
    global _engines_open
    with _engines_lock:
        _engines_open += 1


def _release_engine(handle: object) -> None:
    """Close engine ``handle`` now, or after the current thread's outermost run."""
    if _runs.depth:
        _runs.deferred.append(handle)
        return
    _close_engine(handle)


def _close_engine(handle: object) -> None:
    global _engines_open
    status = _uc_binding.uclib.uc_close(handle)
    with _engines_lock:
        _engines_open -= 1
    if status != unicorn.UC_ERR_OK:
        raise RuntimeError(f"uc_close failed (error {status})")


def _close_deferred() -> None:
    while _runs.deferred:
        _close_engine(_runs.deferred.pop())


def _own_engine_release(uc: unicorn.Uc) -> weakref.finalize:
    """Replace the binding's finalizer of ``uc`` (an unconditional uc_close) by
    ``_release_engine``; returns the new finalizer (calling it releases the engine now)."""
    binding_finalizer = getattr(uc, "_Uc__finalizer", None)
    if not isinstance(binding_finalizer, weakref.finalize):
        raise RuntimeError("unsupported unicorn Python binding: no engine finalizer to take over")
    binding_finalizer.detach()
    _engine_opened()
    return weakref.finalize(uc, _release_engine, uc._uch)


class StopKind(Enum):
    """Why a call to ``Cpu.run`` returned."""

    REQUESTED = "requested"      # a device asked to stop (exit device)
    HALT = "halt"                # `hlt` executed
    BUDGET = "budget"            # the instruction count given to run() ran out
    DEADLINE = "deadline"        # a scheduled event is due before the next block
    INTERRUPT = "interrupt"      # the interrupt line is asserted and IF is set
    FAULT = "fault"              # the guest faulted
    EXCEPTION = "exception"      # a CPU exception the machine may deliver to the guest (#PF)
    CANCELLED = "cancelled"      # the host called cancel() (Ctrl-C, a wall-time budget)


@dataclass(frozen=True)
class StopInfo:
    """How a run stopped; for faults, what and where; for deadlines, how many more
    instructions reach the deadline exactly."""

    kind: StopKind
    pc: int
    fault: str = ""
    fault_address: int | None = None
    slice: int = 0
    #: EXCEPTION: the vector and the error code the CPU produced for it.
    vector: int = 0
    error_code: int = 0


@dataclass(frozen=True)
class _Block:
    address: int
    end: int
    starts: tuple[int, ...]
    #: cycles[i] = static cost of the first i instructions (cycles[0] == 0).
    cycles: tuple[int, ...]
    #: (instruction index, is RDTSCP) of each time-stamp read in the block, in order.
    tsc_reads: tuple[tuple[int, bool], ...] = ()
    #: Starts of the instructions that open an interrupt shadow (`sti`, `mov ss`, `pop ss`).
    shadowing: frozenset[int] = frozenset()
    #: True when an instruction of the block can set IF (sti, popf, iret).
    may_set_if: bool = False
    #: Starts of the instructions that follow a port access inside the block.
    io_follow: tuple[int, ...] = ()
    #: True when an instruction of the block writes CR0 (and so may turn paging on).
    writes_cr0: bool = False

    def shadow_after(self, pc: int) -> bool:
        """True when the instruction completed just before ``pc`` opens an interrupt shadow."""
        index = self.executed_before(pc)
        return index > 0 and self.starts[index - 1] in self.shadowing and (
            index == len(self.starts) and pc == self.end or index < len(self.starts) and self.starts[index] == pc)

    def executed_before(self, pc: int) -> int:
        """Instructions of this block that completed when execution stopped at ``pc``."""
        if not (self.address <= pc < self.end):
            return len(self.starts)
        return sum(1 for start in self.starts if start < pc)

    @property
    def total_cycles(self) -> int:
        return self.cycles[-1]


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
    unicorn.UC_ERR_INSN_INVALID: "invalid opcode (#UD)",
    unicorn.UC_ERR_READ_PROT: "read of protected memory",
    unicorn.UC_ERR_WRITE_PROT: "write to protected memory",
    unicorn.UC_ERR_FETCH_PROT: "instruction fetch from protected memory",
    unicorn.UC_ERR_READ_UNALIGNED: "unaligned read",
    unicorn.UC_ERR_WRITE_UNALIGNED: "unaligned write",
    unicorn.UC_ERR_FETCH_UNALIGNED: "unaligned fetch",
    unicorn.UC_ERR_EXCEPTION: "unhandled CPU exception",
}

#: The page fault vector: delivered through the guest's IDT (other exceptions end the run).
PAGE_FAULT = 14
# Unicorn hands an exception to the interrupt hook without its error code, and since the
# hook, not QEMU, delivers it, QEMU's "exception in flight" (old_exception) is never reset:
# the guest's next #PF would become a double fault.  Both live in the CPU state that
# uc_context_save copies (Unicorn 2.1: include/uc_priv.h struct uc_context, a 40-byte
# header before the data; qemu/target/i386/cpu.h CPUX86State, saved up to
# end_reset_fields): old_exception lies 72 bytes before that end and error_code 112 bytes
# before old_exception.  tests/machine/test_paging.py pins both against real faults.
_UC_CONTEXT_HEADER = 40
_OLD_EXCEPTION_FROM_END = 72
_ERROR_CODE_BEFORE_OLD_EXCEPTION = 112

PortRead = Callable[[int, int], int]
BlockListener = Callable[[int, bytes, int], None]
MemoryListener = Callable[[str, int, int, int], None]
InstructionListener = Callable[[int, str], None]
PortWrite = Callable[[int, int, int], None]


class Cpu:
    """One x86 vCPU in ``mode`` 64 or 32 over ``memory``, charged by ``costs``."""

    def __init__(self, mode: int, memory: GuestMemory, port_read: PortRead, port_write: PortWrite,
                 costs: CostProfile | None = None, fast_blocks: bool = True, count_free: bool = True) -> None:
        if mode not in (32, 64):
            raise ValueError(f"mode must be 32 or 64, not {mode}")
        self.mode = mode
        self.costs = costs or CostProfile()
        self._memory = memory
        self._port_read = port_read
        self._port_write = port_write
        self._uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_64 if mode == 64 else unicorn.UC_MODE_32)
        self._release = _own_engine_release(self._uc)
        #: Handles of hooks added through the binding (their closures refer to the engine).
        self._hooks: list[int] = []
        self._uc.mem_map_ptr(0, memory.size, unicorn.UC_PROT_ALL, memory.host_address)
        self._cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if mode == 64 else capstone.CS_MODE_32)
        self._cs_detail = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if mode == 64 else capstone.CS_MODE_32)
        self._cs_detail.detail = True
        self._pc_reg = ux.UC_X86_REG_RIP if mode == 64 else ux.UC_X86_REG_EIP
        self._pc_buffer = ctypes.c_uint64(0)  # _read_pc's (EIP fills its low half only)
        self._cr0_buffer = ctypes.c_uint64(0)  # paging_enabled's
        self._sp_reg = ux.UC_X86_REG_RSP if mode == 64 else ux.UC_X86_REG_ESP
        self._flags_reg = ux.UC_X86_REG_RFLAGS if mode == 64 else ux.UC_X86_REG_EFLAGS
        #: Decoded blocks by (address, bytes), with their index in ``_block_list``.
        self._blocks: dict[tuple[int, bytes], tuple[_Block, int]] = {}
        self._regions: list[tuple[int, int]] = []
        # Counters live in a ctypes structure shared with the native block hook.
        self._state = fastblock.State()
        self._table = (fastblock.Entry * fastblock.TABLE_SIZE)()
        self._state.table = ctypes.addressof(self._table)
        self._state.mask = fastblock.TABLE_SIZE - 1
        self._state.limit = _NO_LIMIT
        self._state.deadline = fastblock.NO_DEADLINE
        self._state.inexact = int(not count_free)
        self._block_list: list[_Block] = []
        self._previous_block: _Block | None = None
        self._callback_error: BaseException | None = None
        self.instructions = 0      # exact count of completed instructions
        self.static_cycles = 0     # exact static cycles of completed instructions
        #: Called with the port after every port access Python handled, and with None at
        #: the start and end of every run, when a native OUT hook is installed
        #: (``install_native_out_hook``).
        self._native_sync: Callable[[int | None], None] | None = None
        #: The binding's OUT hook handle (replaced by a native hook, if one is installed).
        self._out_hook: int | None = None
        #: The cycle of the next scheduled event, checked at block boundaries.
        self._deadline: int | None = None
        self._irq_asserted = False
        self._check_irq_next_block = False
        self._block_listener: BlockListener | None = None
        self._exact = False
        self._stop: StopInfo | None = None
        self._fault: tuple[str, int | None] | None = None
        #: Set by cancel() from any thread or a signal handler; cleared by clear_cancel().
        self._cancelled = False
        #: Unicorn's instruction count is in use (``count_free=False``, or the fallback).
        self._count_mode = not count_free
        #: Instruction count a run may not go past (count-free path; checked per block).
        self._limit = _NO_LIMIT
        #: Addresses carrying the no-op code hook that makes port-access stops exact.
        self._io_hooked: set[int] = set()
        #: Blocks seen for the first time that need those hooks before they may run.
        self._pending_io: list[_Block] = []
        #: The block hook stopped a run to have a block retranslated with new hooks.
        self._retranslate = False
        #: The block hook stopped before a block that crosses the budget: (block, steps).
        self._partial: tuple[_Block, int] | None = None
        #: The next block hook call re-enters the block a partial run executes.
        self._reentry = False
        #: Where the partial run in progress stops (None: none is).
        self._partial_stop: int | None = None
        self._uc_error: unicorn.UcError | None = None
        #: A restored snapshot's interrupt shadow, until the first block runs.
        self._restored_shadow = False
        #: The pc the next run resumes at in the middle of a block (``continue_block``).
        self._continue_at: int | None = None
        #: Decoded facts by instruction encoding (``_instruction_facts``).
        self._facts: dict[bytes, tuple[int, bool, bool, bool, int]] = {}
        self._c_hooks: list[ctypes.c_size_t] = []
        #: (vector, error code) of an exception the interrupt hook stopped the run for.
        self._exception: tuple[int, int] | None = None
        #: A uc_context buffer for reading and patching the exception state (allocated on
        #: the first exception).
        self._context = ctypes.c_void_p(0)
        self._code_buffer = ctypes.create_string_buffer(0)
        # Runs end only by our stops, never at an "until" address.  Started with one (the
        # last address of the mode), Unicorn 2.1 in long mode with paging on raised a #PF
        # at the bogus linear address -2 on the guest's first real page fault
        # (tests/machine/test_paging.py pins CR2); exits enabled with none set avoids it.
        self._uc.ctl_exits_enabled(True)
        self._uc.ctl_set_exits([])
        self._install_flat_segments()
        self._install_block_hook(fast_blocks)
        self._hook(unicorn.UC_HOOK_INSN, self._on_in, None, 1, 0, ux.UC_X86_INS_IN)
        self._hook(unicorn.UC_HOOK_INSN, self._on_out, None, 1, 0, ux.UC_X86_INS_OUT)
        self._out_hook = self._hooks[-1]
        self._hook(unicorn.UC_HOOK_INTR, self._on_interrupt)
        # Bounded to the addresses above RAM, where every unmapped one lies: a memory hook
        # covering RAM would keep every guest store on Unicorn's slow path (see
        # ``_install_fast_stores``).
        self._hook(unicorn.UC_HOOK_MEM_UNMAPPED, self._on_unmapped, None, memory.size, _NO_LIMIT)
        self._install_fast_stores()
        self._install_rdtsc_hook()
        noop = fastblock.noop_hook_address()
        if noop is None:  # hosts without the native page: a ctypes no-op does the same
            self._noop_callback = _CODE_HOOK(lambda *_args: None)
            noop = ctypes.cast(self._noop_callback, ctypes.c_void_p).value
        self._noop_hook = noop
        self._stop_hook = ctypes.cast(_uc_binding.uclib.uc_emu_stop, ctypes.c_void_p).value

    @property
    def count_free(self) -> bool:
        """True while runs go without Unicorn's instruction count (see the module doc)."""
        return not self._count_mode

    def install_native_out_hook(self, hook: int, user_data: int, sync: Callable[[int | None], None]) -> None:
        """Replace the Python OUT hook by the native function at ``hook`` (Unicorn's OUT hook
        signature, called with ``user_data``), which passes what it does not handle itself
        to ``python_out_hook``.  ``sync`` is called with the port after every port access
        Python handled, and with None now and at the start and end of every run, so that the
        native hook's view of Python's state can be refreshed."""
        if self._out_hook is not None:
            self._uc.hook_del(self._out_hook)
            self._hooks.remove(self._out_hook)
            self._out_hook = None
        handle = ctypes.c_size_t()
        status = _uc_binding.uclib.uc_hook_add(
            self._uc._uch, ctypes.byref(handle), unicorn.UC_HOOK_INSN, ctypes.c_void_p(hook),
            ctypes.c_void_p(user_data), ctypes.c_uint64(1), ctypes.c_uint64(0), ctypes.c_int(ux.UC_X86_INS_OUT))
        if status != unicorn.UC_ERR_OK:
            raise RuntimeError(f"Unicorn refused the native OUT hook (error {status})")
        self._c_hooks.append(handle)
        self._native_sync = sync
        sync(None)

    @property
    def counters_address(self) -> int:
        """Address of the counters native hooks share (``fastblock.State``)."""
        return ctypes.addressof(self._state)

    def python_out_hook(self, _uc: int, port: int, size: int, value: int, _user: int) -> None:
        """The Python OUT path as a C callback for a native OUT hook: an exception ends the
        run and is raised by ``run``, as with the binding's hook."""
        try:
            self._port_write(port, size, value)
            sync = self._native_sync
            if sync is not None:
                sync(port)
        except BaseException as error:  # noqa: BLE001 - re-raised after emu_start
            self.abort_run(error)

    @property
    def charged(self) -> int:
        """Cycles charged outside instruction costs (device and service costs, idle time)."""
        return self._state.charged

    @charged.setter
    def charged(self, value: int) -> None:
        self._state.charged = value

    def _add_code_hook(self, callback: int, address: int) -> ctypes.c_size_t:
        """A native code hook on the one instruction at ``address``."""
        handle = ctypes.c_size_t()
        status = _uc_binding.uclib.uc_hook_add(
            self._uc._uch, ctypes.byref(handle), unicorn.UC_HOOK_CODE, ctypes.c_void_p(callback), None,
            ctypes.c_uint64(address), ctypes.c_uint64(address))
        if status != unicorn.UC_ERR_OK:
            raise RuntimeError(f"Unicorn refused a code hook (error {status})")
        return handle

    def _hook(self, kind: int, callback: Callable[..., object], *args: object) -> None:
        """Add a hook through the binding, remembering its handle for ``close``."""
        self._hooks.append(self._uc.hook_add(kind, callback, *args))

    def _install_flat_segments(self) -> None:
        """Give the guest a flat GDT on a read-only page outside RAM and load its selectors,
        so that `iret` and selector loads work without the guest building its own."""
        gdt = _GDT[self.mode]
        self._uc.mem_map(FIRMWARE_PAGE, 0x1000, unicorn.UC_PROT_READ)
        self._uc.mem_write(FIRMWARE_PAGE, gdt)
        self._uc.reg_write(ux.UC_X86_REG_GDTR, (0, FIRMWARE_PAGE, len(gdt) - 1, 0))
        self._uc.reg_write(ux.UC_X86_REG_CS, CODE_SELECTOR)
        for register in (ux.UC_X86_REG_SS, ux.UC_X86_REG_DS, ux.UC_X86_REG_ES, ux.UC_X86_REG_FS, ux.UC_X86_REG_GS):
            self._uc.reg_write(register, DATA_SELECTOR)

    def _install_fast_stores(self) -> None:
        """Let guest stores to RAM pages without code take Unicorn's fast path while paging
        is off (the native TLB fill hook; hosts without it keep the CPU's own TLB fill).

        Why (Unicorn 2.1.4 sources): tlb_set_page_with_attrs (qemu/accel/tcg/cputlb.c) flags
        every writable RAM entry TLB_NOTDIRTY, as its cpu_physical_memory_is_clean
        (qemu/include/exec/ram_addr.h) always answers true, so a store takes the slow path
        (store_helper, notdirty_write) until notdirty_write clears the flag; it clears it
        only for an entry without execute permission (addr_code == -1) and no memory hook
        covering the address (uc_mem_hook_installed).  With CR0.PG clear the x86 walk
        (qemu/target/i386/excp_helper.c handle_mmu_fault) grants read, write and execute to
        every page, so every store stayed slow: ~45 ns against ~13 for a load.  Here the TLB
        is filled by Unicorn's virtual TLB mode (qemu/softmmu/unicorn_vtlb.c
        unicorn_fill_tlb) through ``fastblock.TLB_FILL_CODE``: the same identity
        translation, with execute permission only on pages code was fetched from
        (``fastblock.CodePages``), so the first store to any other page clears the flag.
        Self-modifying code is still caught: a page keeps the flag once code was fetched
        from it, and translating code on a page flags its older entries again
        (qemu/accel/tcg/translate-all.c tb_gen_code, tlb_reset_dirty_by_vaddr).  Nothing
        the guest can observe changes: same translation, same faults, same counts."""
        pages = self._memory.size // 4096
        self._code_bitmap = (ctypes.c_uint64 * ((pages + 63) // 64))()
        self._code_pages = fastblock.CodePages(pages, ctypes.addressof(self._code_bitmap))
        hook = fastblock.tlb_fill_hook_address()
        self._fast_stores = hook is not None
        if hook is None:
            return
        self._add_global_native_hook(unicorn.UC_HOOK_TLB_FILL, hook, ctypes.addressof(self._code_pages),
                                     "TLB fill hook")
        self._uc.ctl_set_tlb_mode(unicorn.UC_TLB_VIRTUAL)

    @property
    def fast_stores(self) -> bool:
        """True while the TLB is filled by the native hook (see ``_install_fast_stores``)."""
        return self._fast_stores

    def code_page(self, address: int) -> bool:
        """True when code has been fetched from the RAM page of ``address`` while
        ``fast_stores`` held: stores to that page stay on Unicorn's slow path, which
        catches self-modifying code."""
        page = address // 4096
        if page >= self._code_pages.pages:
            return False
        return bool(self._code_bitmap[page // 64] >> (page % 64) & 1)

    def use_cpu_tlb(self) -> None:
        """Fill the TLB by the CPU's own page walk from now on, for good (stores are slow
        again).  Done before paging can be on, as the native hook knows no page tables: at
        the start of a run with CR0.PG set and before a block that writes CR0 first runs.
        Benchmarks use it to measure the path without the hook."""
        if self._fast_stores:
            self._fast_stores = False
            self._uc.ctl_set_tlb_mode(unicorn.UC_TLB_CPU)

    def _flush_for_memory_hooks(self) -> None:
        """After adding a memory hook: drop translated blocks (translated without calls to
        it) and the TLB, whose entries may have left the slow path; under a memory hook no
        entry leaves it, so stores into code keep being caught."""
        self._uc.ctl_flush_tb()
        self._uc.ctl(unicorn.UC_CTL_TLB_FLUSH, unicorn.UC_CTL_IO_WRITE)

    def _install_block_hook(self, fast: bool) -> None:
        """The native block hook when the host has it (and ``fast``), else the Python one;
        both keep the same counters (see machine/fastblock.py)."""
        self._python_block_callback = fastblock.BLOCK_CALLBACK(self._on_block_native)
        self._state.python = ctypes.cast(self._python_block_callback, ctypes.c_void_p).value or 0
        native = fastblock.native_hook_address() if fast else None
        self.fast_blocks = native is not None
        if native is None:
            self._hook(unicorn.UC_HOOK_BLOCK, self._on_block)
            return
        self._add_global_native_hook(unicorn.UC_HOOK_BLOCK, native, ctypes.addressof(self._state),
                                     "native block hook")

    def _add_global_native_hook(self, kind: int, function: int, user_data: int, what: str) -> None:
        """Add the C function at ``function`` as a ``kind`` hook on every address, called
        with ``user_data``, for the engine's life."""
        handle = ctypes.c_size_t()
        status = _uc_binding.uclib.uc_hook_add(
            self._uc._uch, ctypes.byref(handle), kind, ctypes.c_void_p(function), ctypes.c_void_p(user_data),
            ctypes.c_uint64(1), ctypes.c_uint64(0))
        if status != unicorn.UC_ERR_OK:
            raise RuntimeError(f"Unicorn refused the {what} (error {status})")

    # --- shared counter state ---------------------------------------------------------------

    def _block_of(self, entry: int) -> _Block | None:
        if not entry:
            return None
        index = (entry - self._state.table) // ctypes.sizeof(fastblock.Entry)
        return self._block_list[self._table[index].block_id]

    @property
    def _current(self) -> _Block | None:
        return self._block_of(self._state.current)

    @property
    def _last_block(self) -> _Block | None:
        return self._block_of(self._state.last)

    @property
    def _counted(self) -> int:
        return self._state.instructions

    @property
    def _counted_cycles(self) -> int:
        return self._state.cycles

    def _update_slow(self) -> None:
        # The native hook hands every block to Python while a decision is needed per block.
        self._state.slow = int(self._deadline is not None or self._check_irq_next_block or self._exact
                               or self._block_listener is not None or self._reentry or self._cancelled)
        # While the line is up, blocks that may set IF go to Python even on a table hit.
        self._state.irq_watch = int(self._irq_asserted)

    @property
    def block_listener(self) -> BlockListener | None:
        """Called with (address, code bytes, instruction count) before every executed block
        (block tracing); while set, every block goes through Python."""
        return self._block_listener

    @block_listener.setter
    def block_listener(self, listener: BlockListener | None) -> None:
        self._block_listener = listener
        self._update_slow()

    @property
    def deadline(self) -> int | None:
        """The cycle of the next scheduled event, checked at block boundaries."""
        return self._deadline

    @deadline.setter
    def deadline(self, value: int | None) -> None:
        self._deadline = value
        self._state.deadline = fastblock.NO_DEADLINE if value is None else value
        self._update_slow()

    @property
    def irq_asserted(self) -> bool:
        """True while the interrupt line is asserted (the machine's interrupt controller)."""
        return self._irq_asserted

    @irq_asserted.setter
    def irq_asserted(self, value: bool) -> None:
        self._irq_asserted = value
        self._check_irq_next_block = value
        self._update_slow()

    def _set_exact(self, value: bool) -> None:
        self._exact = value
        self._state.inexact = int(value or self._count_mode)
        self._update_slow()

    def _set_limit(self, limit: int) -> None:
        self._limit = limit
        self._state.limit = limit

    def _install_rdtsc_hook(self) -> None:
        """Hook RDTSC/RDTSCP through Unicorn's C API (the Python binding refuses these
        instruction hooks): the guest reads virtual cycles, never the host's TSC."""
        self._rdtsc_callback = _RDTSC_CALLBACK(self._on_rdtsc)
        handle = ctypes.c_size_t()
        for instruction in (ux.UC_X86_INS_RDTSC, ux.UC_X86_INS_RDTSCP):
            status = _uc_binding.uclib.uc_hook_add(
                self._uc._uch, ctypes.byref(handle), unicorn.UC_HOOK_INSN,
                ctypes.cast(self._rdtsc_callback, ctypes.c_void_p), None,
                ctypes.c_uint64(1), ctypes.c_uint64(0), ctypes.c_int(instruction))
            if status != unicorn.UC_ERR_OK:
                raise RuntimeError(f"Unicorn refused the RDTSC hook (error {status})")

    # --- registers ------------------------------------------------------------------------

    @property
    def pc(self) -> int:
        """Current instruction pointer."""
        return self._read_pc()

    def _read_pc(self) -> int:
        """The pc through Unicorn's C API (clock reads and trace stamps read it on the HGCM
        hot path)."""
        return self._read_register(self._pc_reg, self._pc_buffer)

    def _read_register(self, register: int, buffer: ctypes.c_uint64) -> int:
        """A general or control register through Unicorn's C API: one foreign call into
        ``buffer`` (one per register, as a 32-bit mode read fills its low half only), where
        the binding's ``reg_read`` first picks a register class and allocates its result."""
        if _uc_binding.uclib.uc_reg_read(self._uc._uch, register, ctypes.byref(buffer)) != unicorn.UC_ERR_OK:
            return self._uc.reg_read(register)  # let the binding raise its own error
        return buffer.value

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

    def set_entry_arguments(self, argc: int, block: int) -> None:
        """Registers a program finds at entry: argc in rdi/edi, the block address in rsi/esi."""
        self._uc.reg_write(ux.UC_X86_REG_RDI if self.mode == 64 else ux.UC_X86_REG_EDI, argc)
        self._uc.reg_write(ux.UC_X86_REG_RSI if self.mode == 64 else ux.UC_X86_REG_ESI, block)

    @property
    def interrupts_enabled(self) -> bool:
        """The IF flag."""
        return bool(self._uc.reg_read(self._flags_reg) & _EFLAGS_IF)

    def registers(self) -> dict[str, int]:
        """The general-purpose registers, pc and flags, by their mode's names."""
        if self.mode == 64:
            names = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                     "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"]
        else:
            names = ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "eip", "eflags"]
        return {name: self._uc.reg_read(getattr(ux, f"UC_X86_REG_{name.upper()}")) for name in names}

    def continue_block(self) -> None:
        """The next run continues the block it stopped in rather than entering a new one:
        the interrupt check of a block entry is skipped where it starts (at the pc), as an
        uninterrupted run would not have made one there."""
        self._continue_at = self.pc

    # --- saved state --------------------------------------------------------------------

    def save_state(self) -> dict:
        """The vCPU as plain data, between runs: Unicorn's whole register context (general,
        segment, control, FPU/SSE, MSR state as Unicorn keeps it), the architectural
        registers read explicitly (checked and written back on load), the exact counters
        and whether the next instruction is in an interrupt shadow."""
        context, size, _arch, _mode = self._uc.context_save().__getstate__()
        explicit = {name: self.read_register(name) for name in _SAVED_REGISTERS[self.mode]}
        return {"context": bytes(context), "context_size": size, "registers": explicit,
                "instructions": self.instructions, "static_cycles": self.static_cycles,
                "charged": self.charged, "shadow": self.in_interrupt_shadow}

    def load_state(self, state: dict) -> None:
        """Restore ``save_state``'s output into this engine (same mode)."""
        size = int(state["context_size"])
        if size != _uc_binding.uclib.uc_context_size(self._uc._uch) or len(state["context"]) != size:
            raise ValueError("the saved CPU context does not fit this engine")
        # Built as unpickling builds it, from our own bytes (no pickle of file data).
        context = _uc_binding.UcContext.__new__(_uc_binding.UcContext)
        context.__setstate__((bytes(state["context"]), size, unicorn.UC_ARCH_X86,
                              unicorn.UC_MODE_64 if self.mode == 64 else unicorn.UC_MODE_32))
        self._uc.context_restore(context)
        for name in _SAVED_REGISTERS[self.mode]:
            self.write_register(name, int(state["registers"][name]))
        self.instructions, self.static_cycles = int(state["instructions"]), int(state["static_cycles"])
        self.charged = int(state["charged"])
        self._state.instructions, self._state.cycles = self.instructions, self.static_cycles
        self._state.current = self._state.last = 0
        self._previous_block = None
        self._restored_shadow = bool(state["shadow"])
        self._uc.ctl_flush_tb()

    def disassemble(self, address: int, count: int = 1) -> list[tuple[int, str]]:
        """Up to ``count`` instructions at ``address`` as (address, text); [] if unreadable."""
        if not self._memory.contains(address, 1):
            return []
        code = self._memory.read(address, min(16 * count, self._memory.size - address))
        return [(addr, f"{mnemonic} {operands}".strip())
                for addr, _size, mnemonic, operands in self._cs.disasm_lite(code, address, count)]

    # --- time -----------------------------------------------------------------------------

    def position(self, pc: int) -> tuple[int, int]:
        """(cycles, instructions) at the start of the instruction at ``pc``, looking the
        current block up once (trace stamps need both)."""
        block = self._current
        state = self._state
        if block is None:
            return state.cycles + self.charged, state.instructions
        done = block.executed_before(pc)
        return (state.cycles - block.total_cycles + block.cycles[done] + self.charged,
                state.instructions - len(block.starts) + done)

    def instructions_at(self, pc: int) -> int:
        """Exact count of instructions completed before the one at ``pc`` (inside a hook)."""
        return self.position(pc)[1]

    def cycles_at(self, pc: int) -> int:
        """Virtual cycles at the start of the instruction at ``pc`` (inside a hook), or now."""
        return self.position(pc)[0]

    def now(self) -> int:
        """Virtual cycles now (inside a hook: at the start of the current instruction)."""
        if self._state.current:
            return self.position(self.pc)[0]
        return self._state.cycles + self.charged

    def charge(self, cycles: int) -> None:
        """Add ``cycles`` of non-instruction time; inside a run, a passed deadline stops it
        after the current instruction."""
        self.charged += cycles
        deadline = self._deadline
        # Only a pending deadline needs the exact time (a pc read is costly in Unicorn).
        if deadline is not None and self._current is not None and not self._exact and self.now() >= deadline:
            self.request_stop(StopKind.DEADLINE)

    # --- running --------------------------------------------------------------------------

    def request_stop(self, kind: StopKind = StopKind.REQUESTED) -> None:
        """Stop after the current instruction (from a hook)."""
        if self._stop is None or kind is StopKind.REQUESTED:
            self._stop = StopInfo(kind, 0)
        self._uc.emu_stop()

    def cancel(self) -> None:
        """Ask the current (or next) ``run`` to return ``CANCELLED`` as soon as possible.

        Safe from another thread and from a signal handler: it only sets a flag and asks
        Unicorn to leave the translated block it is in (``uc_emu_stop``, which Unicorn's own
        timeout thread also calls from outside).  A ``run`` that starts while the flag is
        set returns at once.  Unicorn forgets a stop request made just before ``emu_start``
        begins; so while the flag is set every block goes to Python (``State.slow``), whose
        block handler asks again, and a run acts on the cancel at its next block whenever it
        was made.  The flag stays set until ``clear_cancel``."""
        self._cancelled = True
        # One store, safe from any thread: the native block hook reads it at every block.
        self._state.slow = 1
        engine = self._uc
        if engine is not None:
            engine.emu_stop()

    @property
    def cancel_requested(self) -> bool:
        """True from ``cancel`` until ``clear_cancel``."""
        return self._cancelled

    def clear_cancel(self) -> None:
        """Forget a ``cancel`` (the caller has acted on it)."""
        self._cancelled = False
        self._update_slow()

    def live_counts(self) -> tuple[int, int]:
        """(instructions, cycles) including the blocks entered by a run in progress: an
        approximation for progress displays, readable from another thread (whole blocks
        count as executed).  Exact counts are ``instructions`` and ``now()`` between runs."""
        state = self._state
        return state.instructions, state.cycles + self.charged

    def run(self, count: int, *, exact: bool = False) -> StopInfo:
        """Execute at most ``count`` instructions from the current pc; report why it stopped.

        ``exact`` runs exactly ``count`` instructions without deadline or interrupt checks
        (used to reach a deadline inside a block).  A pending ``cancel`` makes it return
        ``CANCELLED`` without executing anything."""
        if self._cancelled:
            return StopInfo(StopKind.CANCELLED, self.pc)
        if count <= 0:
            return StopInfo(StopKind.BUDGET, self.pc)
        self._stop = None
        self._fault = None
        self._exception = None
        self._uc_error = None
        self._set_exact(exact)
        limit = self.instructions + count
        if self._native_sync is not None:
            self._native_sync(None)
        try:
            while True:
                if self._count_mode:
                    self._engine(limit - self.instructions)
                else:
                    self._set_limit(limit)
                    self._engine(0)
                    self._install_io_hooks()
                if self._callback_error is not None:
                    error, self._callback_error = self._callback_error, None
                    raise error
                interrupted = (self._fault is not None or self._uc_error is not None or self._stop is not None
                               or self._cancelled or self._exception is not None)
                retranslate, self._retranslate = self._retranslate, False
                partial, self._partial = self._partial, None
                # A block stopped for retranslation is entered again even when the budget is
                # reached: its entry (block listener, checks) happens before the budget stop,
                # as with Unicorn's count.
                if interrupted:
                    break
                if partial is not None and self.pc == partial[0].address:
                    self._run_partial(*partial)
                    if self._callback_error is not None:
                        error, self._callback_error = self._callback_error, None
                        raise error
                    break
                if not retranslate:
                    break
        finally:
            self._set_exact(False)
            self._set_limit(_NO_LIMIT)
            self._reentry = False
            self._update_slow()
            if self._native_sync is not None:
                self._native_sync(None)
        uc_error = self._uc_error
        pc = self.pc
        if self._exception is not None:
            vector, error_code = self._exception
            return StopInfo(StopKind.EXCEPTION, pc, f"CPU exception: {_EXCEPTION_NAMES[vector]}",
                            self._uc.reg_read(ux.UC_X86_REG_CR2), vector=vector, error_code=error_code)
        if self._fault is not None:
            description, address = self._fault
            return StopInfo(StopKind.FAULT, pc, description, address)
        if uc_error is not None:
            return StopInfo(StopKind.FAULT, pc, _UC_FAULTS.get(uc_error.errno, str(uc_error)))
        if self._stop is not None and self._stop.kind is StopKind.REQUESTED:
            return StopInfo(StopKind.REQUESTED, pc)
        if self._cancelled:
            return StopInfo(StopKind.CANCELLED, pc)
        if self._stop is not None:
            return StopInfo(self._stop.kind, pc, slice=self._stop.slice)
        if self._halted_at(pc):
            return StopInfo(StopKind.HALT, pc)
        return StopInfo(StopKind.BUDGET, pc)

    def _engine(self, count: int) -> None:
        """Start Unicorn at the pc (with ``count`` as its instruction count, 0: none) and
        bring the counters to the exact position where it stopped."""
        if count <= 0 and self._count_mode:
            return
        self._state.current = 0
        if self._fast_stores and self.paging_enabled():
            self.use_cpu_tlb()
        until = 0xFFFFFFFFFFFFFFFF if self.mode == 64 else 0xFFFFFFFF
        # Engines released while this thread runs are closed once the run returns.
        _runs.depth += 1
        try:
            self._uc.emu_start(self.pc, until, count=count)
        except unicorn.UcError as exc:
            self._uc_error = exc
        finally:
            _runs.depth -= 1
            if not _runs.depth:
                _close_deferred()
        cycles, self.instructions = self.position(self.pc)
        self.static_cycles = cycles - self.charged
        self._state.instructions, self._state.cycles = self.instructions, self.static_cycles
        self._state.current = 0

    def _install_io_hooks(self) -> None:
        """Hook the instructions after the port accesses of newly seen blocks and drop those
        blocks' translations; past ``MAX_IO_STOP_HOOKS``, switch to Unicorn's count."""
        for block in self._pending_io:
            if self._count_mode:
                break
            new = [address for address in block.io_follow if address not in self._io_hooked]
            if len(self._io_hooked) + len(new) > MAX_IO_STOP_HOOKS:
                self._count_mode = True
                self._state.inexact = 1
                # Blocks translated without the count's hook would not be counted by it.
                self._uc.ctl_flush_tb()
                break
            for address in new:
                self._c_hooks.append(self._add_code_hook(self._noop_hook, address))
                self._io_hooked.add(address)
            self._uc.ctl_remove_cache(block.address, block.end)
        self._pending_io.clear()

    def _run_partial(self, block: _Block, steps: int) -> None:
        """Execute the first ``steps`` instructions of ``block`` (at the pc), whose entry
        the block hook has already handled, and stop before the next one."""
        self._partial_stop = block.starts[steps]
        handle = self._add_code_hook(self._stop_hook, self._partial_stop)
        self._uc.ctl_remove_cache(block.address, block.end)
        self._reentry = True
        self._update_slow()
        try:
            self._engine(0)
        finally:
            self._partial_stop = None
            self._reentry = False
            self._update_slow()
            _uc_binding.uclib.uc_hook_del(self._uc._uch, handle)
            # Unicorn records a hook's translations by their first address only.
            self._uc.ctl_remove_cache(block.address, block.end)

    def _halted_at(self, pc: int) -> bool:
        block = self._last_block
        return (block is not None and bool(block.starts) and block.starts[-1] == pc - 1
                and self._memory.contains(pc - 1, 1) and self._memory.read(pc - 1, 1)[0] == _HLT)

    @property
    def in_interrupt_shadow(self) -> bool:
        """True right after `sti` (or a load of SS): x86 accepts no interrupt before the next
        instruction completes, which is what makes `sti; hlt` race-free."""
        block, pc = self._last_block, self.pc
        if block is None:
            return self._restored_shadow
        if block.shadow_after(pc):
            return True
        # Stopped before the first instruction of a block: the shadow comes from the one before.
        previous = self._previous_block
        return pc == block.address and previous is not None and previous.shadow_after(pc)

    def inject_interrupt(self, vector: int, error_code: int | None = None) -> str | None:
        """Enter the guest's handler for ``vector`` through its IDT, as the CPU does for an
        external interrupt or an exception: push the frame (and ``error_code``, when given),
        clear IF (interrupt gates) and TF, jump.  The IDT and the stack are reached at their
        linear addresses (through the guest's page tables when paging is on, setting
        accessed and dirty bits as the CPU does).

        Returns a description of why delivery failed (the guest's IDT or stack is unusable),
        else None.  Call only between runs."""
        if error_code is not None:
            self._forget_exception_in_flight()
        _selector, base, limit, _flags = self._uc.reg_read(ux.UC_X86_REG_IDTR)
        entry_size = 16 if self.mode == 64 else 8
        if (vector + 1) * entry_size - 1 > limit:
            return f"interrupt vector {vector:#x} lies beyond the IDT limit {limit:#x}"
        address = base + vector * entry_size
        gate = self.read_linear(address, entry_size, mark=True)
        if gate is None:
            return f"IDT entry for vector {vector:#x} at {address:#x} is not in guest RAM"
        offset_low, selector, _ist, attributes, offset_mid = struct.unpack_from("<HHBBH", gate)
        handler = offset_low | (offset_mid << 16)
        if self.mode == 64:
            handler |= struct.unpack_from("<I", gate, 8)[0] << 32
        gate_type = attributes & 0x0F
        if not attributes & 0x80 or gate_type not in (0x0E, 0x0F):
            return f"IDT entry for vector {vector:#x} is not a present interrupt or trap gate"
        flags = self._uc.reg_read(self._flags_reg)
        cs = self._uc.reg_read(ux.UC_X86_REG_CS)
        sp = self.sp
        pushed = () if error_code is None else (error_code,)
        if self.mode == 64:
            ss = self._uc.reg_read(ux.UC_X86_REG_SS)
            values = (*pushed, self.pc, cs, flags, sp, ss)
            frame = struct.pack(f"<{len(values)}Q", *values)
            new_sp = (sp & ~0xF) - len(frame)
        else:
            values = (*pushed, self.pc, cs, flags)
            frame = struct.pack(f"<{len(values)}I", *values)
            new_sp = sp - len(frame)
        if not self.write_linear(new_sp, frame):
            return f"interrupt frame at {new_sp:#x} is not in writable guest RAM"
        self.sp = new_sp
        new_flags = flags & ~_EFLAGS_TF
        if gate_type == 0x0E:
            new_flags &= ~_EFLAGS_IF
        self._uc.reg_write(self._flags_reg, new_flags)
        if selector != cs:
            self._uc.reg_write(ux.UC_X86_REG_CS, selector)
        self.pc = handler
        return None

    # --- paging ---------------------------------------------------------------------------

    def paging_enabled(self) -> bool:
        """Whether CR0.PG is set now: one register read, where ``paging_registers`` takes
        four (the device asks before every HGCM call, nearly always of an unpaged guest)."""
        return bool(self._read_register(ux.UC_X86_REG_CR0, self._cr0_buffer) & CR0_PG)

    def paging_registers(self) -> PagingRegisters:
        """CR0, CR3, CR4 and EFER as they are now."""
        read = self._uc.reg_read
        return PagingRegisters(read(ux.UC_X86_REG_CR0), read(ux.UC_X86_REG_CR3), read(ux.UC_X86_REG_CR4),
                               self._uc.msr_read(_MSR_EFER))

    def read_physical(self, address: int, size: int) -> bytes | None:
        """``size`` bytes of guest RAM at a physical address, None when not all RAM."""
        return self._memory.read(address, size) if self._memory.contains(address, size) else None

    def _write_physical(self, address: int, data: bytes) -> None:
        self._memory.write(address, data)

    def translate(self, linear: int, *, write: bool = False, mark: bool = False) -> Walk:
        """Walk the guest's page tables for ``linear`` (linear = physical with paging off).
        ``mark`` sets accessed/dirty bits as a CPU access would; without it the tables are
        only read."""
        return walk(self.paging_registers(), linear, self.read_physical,
                    mark=self._write_physical if mark else None, write=write)

    def physical_runs(self, linear: int, size: int, *, write: bool = False,
                      mark: bool = False) -> list[tuple[int, int]] | None:
        """The physical (address, length) runs behind ``size`` bytes at ``linear``, page by
        page; None when a page does not translate, is not RAM, or (``write``) is read-only
        to the kernel (CR0.WP)."""
        registers = self.paging_registers()
        runs: list[tuple[int, int]] = []
        position = linear
        end = linear + size
        while position < end:
            result = walk(registers, position, self.read_physical,
                          mark=self._write_physical if mark else None, write=write)
            if result.physical is None:
                return None
            if write and not result.writable and registers.cr0 & CR0_WP:
                return None
            take = min(end - position, result.page_size - (result.physical & (result.page_size - 1)))
            if not self._memory.contains(result.physical, take):
                return None
            runs.append((result.physical, take))
            position += take
        return runs

    def read_linear(self, linear: int, size: int, *, mark: bool = False) -> bytes | None:
        """``size`` bytes of guest RAM at a linear address, or None when any of it does not
        translate to RAM."""
        runs = self.physical_runs(linear, size, mark=mark)
        if runs is None:
            return None
        return b"".join(self._memory.read(address, length) for address, length in runs)

    def write_linear(self, linear: int, data: bytes) -> bool:
        """Write ``data`` to guest RAM at a linear address as the CPU would (accessed and
        dirty bits set); False, and nothing written, when any of it cannot be written."""
        runs = self.physical_runs(linear, len(data), write=True, mark=True)
        if runs is None:
            return False
        position = 0
        for address, length in runs:
            self._memory.write(address, data[position:position + length])
            position += length
        return True

    def _exception_state(self) -> tuple[int, int]:
        """(error code, context data address) of the exception Unicorn is handing over."""
        handle = self._uc._uch
        if not self._context.value:
            status = _uc_binding.uclib.uc_context_alloc(handle, ctypes.byref(self._context))
            if status != unicorn.UC_ERR_OK:
                raise unicorn.UcError(status)
        _uc_binding.uclib.uc_context_save(handle, self._context)
        data = self._context.value + _UC_CONTEXT_HEADER
        old_exception = data + _uc_binding.uclib.uc_context_size(handle) - _UC_CONTEXT_HEADER \
            - _OLD_EXCEPTION_FROM_END
        return ctypes.c_int32.from_address(old_exception - _ERROR_CODE_BEFORE_OLD_EXCEPTION).value, old_exception

    def _forget_exception_in_flight(self) -> None:
        """The exception was delivered: reset QEMU's exception in flight, as its own
        delivery does (otherwise the next #PF would be escalated to a double fault)."""
        _error_code, old_exception = self._exception_state()
        ctypes.c_int32.from_address(old_exception).value = -1
        _uc_binding.uclib.uc_context_restore(self._uc._uch, self._context)

    def map_region(self, address: int, memory: GuestMemory) -> None:
        """Map device memory (MMIO2-style RAM) at guest-physical ``address``."""
        self._uc.mem_map_ptr(address, memory.size, unicorn.UC_PROT_READ | unicorn.UC_PROT_WRITE,
                             memory.host_address)
        self._regions.append((address, memory.size))

    def watch_memory(self, listener: MemoryListener) -> None:
        """Call ``listener(access, address, size, value)`` for every guest data access from
        now on (access "read" or "write"; value is the written value, 0 for reads; address
        is guest-physical: Unicorn reports the access after the guest's page tables
        translated it).  Opt-in memory tracing: every access becomes a Python call."""
        def hook(uc: unicorn.Uc, access: int, address: int, size: int, value: int, _user: object) -> None:
            listener("write" if access == unicorn.UC_MEM_WRITE else "read", address, size,
                     value & ((1 << (8 * size)) - 1) if access == unicorn.UC_MEM_WRITE else 0)

        self._hook(unicorn.UC_HOOK_MEM_READ | unicorn.UC_HOOK_MEM_WRITE, hook)
        # Blocks translated before the hook existed would not report their accesses.
        self._flush_for_memory_hooks()

    def watch_instructions(self, listener: InstructionListener) -> None:
        """Call ``listener(address, text)`` before every executed instruction from now on
        (capstone disassembly, cached per address and bytes).  Opt-in instruction tracing:
        every instruction becomes a Python call."""
        texts: dict[tuple[int, bytes], str] = {}

        def hook(uc: unicorn.Uc, address: int, size: int, _user: object) -> None:
            if address == self._partial_stop:
                # The partial run's stop hook comes after this one in Unicorn's list; the
                # instruction there does not execute, so it is not reported.
                uc.emu_stop()
                return
            code = bytes(uc.mem_read(address, size))
            text = texts.get((address, code))
            if text is None:
                decoded = self.disassemble(address) if self._memory.contains(address, size) else []
                text = texts[(address, code)] = decoded[0][1] if decoded else code.hex()
            listener(address, text)

        self._hook(unicorn.UC_HOOK_CODE, hook)
        self._uc.ctl_flush_tb()

    # --- debugger support (machine/gdbstub) ---------------------------------------------

    def add_native_hook(self, kind: str, function: int, user_data: int) -> None:
        """Install a C-ABI hook ``function`` (with ``user_data``) on every instruction
        (``kind`` "code": Unicorn's code-hook signature) or every data read/write ("read",
        "write": its memory-hook signature) for the rest of the engine's life, and flush
        translated code so that blocks translated earlier call it too.  Call between runs."""
        types = {"code": unicorn.UC_HOOK_CODE, "read": unicorn.UC_HOOK_MEM_READ,
                 "write": unicorn.UC_HOOK_MEM_WRITE}
        handle = ctypes.c_size_t()
        status = _uc_binding.uclib.uc_hook_add(
            self._uc._uch, ctypes.byref(handle), types[kind], ctypes.c_void_p(function),
            ctypes.c_void_p(user_data), ctypes.c_uint64(1), ctypes.c_uint64(0))
        if status != unicorn.UC_ERR_OK:
            raise RuntimeError(f"Unicorn refused the {kind} hook (error {status})")
        self._flush_for_memory_hooks()

    def abort_run(self, error: BaseException) -> None:
        """From a hook: stop the run now and make ``run`` raise ``error``."""
        self._callback_error = error
        self._uc.emu_stop()

    def read_register(self, name: str) -> int:
        """Any register by its lower-case name (``rax``, ``eflags``, ``cr0``, ``fs_base``,
        ``st0`` as an 80-bit integer, ``xmm0``, ``efer``, ``gdtr_base``, ``idtr_limit``...)."""
        if name == "efer":
            return self._uc.msr_read(_MSR_EFER)
        if name.startswith(("gdtr_", "idtr_")):
            table, field = name.split("_")
            _selector, base, limit, _flags = self._uc.reg_read(getattr(ux, f"UC_X86_REG_{table.upper()}"))
            return base if field == "base" else limit
        value = self._uc.reg_read(_register_id(name))
        if name.startswith("st"):
            mantissa, exponent = value
            return mantissa | (exponent << 64)
        return value

    def write_register(self, name: str, value: int) -> None:
        """Set a register named as for ``read_register``."""
        if name == "efer":
            self._uc.msr_write(_MSR_EFER, value)
        elif name.startswith(("gdtr_", "idtr_")):
            table, field = name.split("_")
            register = getattr(ux, f"UC_X86_REG_{table.upper()}")
            selector, base, limit, flags = self._uc.reg_read(register)
            self._uc.reg_write(register, (selector, value, limit, flags) if field == "base"
                               else (selector, base, value, flags))
        elif name.startswith("st"):
            self._uc.reg_write(_register_id(name), (value & ((1 << 64) - 1), value >> 64))
        else:
            self._uc.reg_write(_register_id(name), value)

    def read_memory(self, address: int, size: int) -> bytes | None:
        """``size`` bytes of whatever is mapped at linear ``address`` (RAM, device memory,
        the firmware page; through the guest's page tables when paging is on), or None when
        any of it is unmapped."""
        registers = self.paging_registers()
        pieces: list[bytes] = []
        position, end = address, address + size
        try:
            while position < end:
                # Python's walk, not Unicorn's probe: a probe that fails sets CR2 and a
                # pending #PF in the CPU.
                result = walk(registers, position, self.read_physical)
                if result.physical is None:
                    return None
                take = min(end - position, result.page_size - (result.physical & (result.page_size - 1)))
                pieces.append(bytes(self._uc.mem_read(result.physical, take)))
                position += take
        except unicorn.UcError:
            return None
        return b"".join(pieces)

    def _read_code(self, address: int, size: int) -> bytes:
        """The bytes of the block being entered at linear ``address``, through the CPU's own
        translation (the code was just fetched, so its TLB holds the pages)."""
        if len(self._code_buffer) < size:
            self._code_buffer = ctypes.create_string_buffer(size)
        status = _uc_binding.uclib.uc_vmem_read(self._uc._uch, ctypes.c_uint64(address), unicorn.UC_PROT_EXEC,
                                                self._code_buffer, ctypes.c_size_t(size))
        if status != unicorn.UC_ERR_OK:
            raise unicorn.UcError(status)
        return self._code_buffer.raw[:size]

    def close(self) -> None:
        """Unmap guest memory and close the engine now (before the memory itself is
        released; when called from inside a run on this thread, right after that run),
        rather than whenever the garbage collector gets to it; idempotent."""
        if self._uc is None:
            return
        uc = self._uc
        uc.mem_unmap(0, self._memory.size)
        for address, size in self._regions:
            uc.mem_unmap(address, size)
        # The binding's hook closures refer to the engine (a reference cycle): drop them.
        for handle in self._hooks:
            uc.hook_del(handle)
        self._hooks.clear()
        if self._context.value:
            _uc_binding.uclib.uc_context_free(self._context)
            self._context = ctypes.c_void_p(0)
        self._uc = None  # type: ignore[assignment]
        self._release()
        # Our own C callbacks refer back to this object.
        self._python_block_callback = None
        self._rdtsc_callback = None

    # --- hooks ----------------------------------------------------------------------------

    def _decode(self, address: int, code: bytes) -> _Block:
        starts: list[int] = []
        cycles = [0]
        tsc_reads: list[tuple[int, bool]] = []
        shadowing: set[int] = set()
        may_set_if = False
        port_accesses: list[int] = []
        writes_cr0 = False
        for instruction_address, size, mnemonic, operands in self._cs.disasm_lite(code, address):
            writes_cr0 = writes_cr0 or (mnemonic == "mov" and operands.startswith("cr0,"))
            offset = instruction_address - address
            facts = self._instruction_facts(instruction_address, code[offset:offset + size])
            cost, sets_if, port_access, shadows, time_stamp = facts
            may_set_if = may_set_if or sets_if
            if port_access:
                port_accesses.append(len(starts))
            if shadows:
                shadowing.add(instruction_address)
            if time_stamp:
                tsc_reads.append((len(starts), time_stamp == _RDTSCP))
            starts.append(instruction_address)
            cycles.append(cycles[-1] + cost)
        io_follow = tuple(starts[index + 1] for index in port_accesses if index + 1 < len(starts))
        return _Block(address, address + len(code), tuple(starts), tuple(cycles), tuple(tsc_reads),
                      frozenset(shadowing), may_set_if, io_follow, writes_cr0)

    def _instruction_facts(self, address: int, encoding: bytes) -> tuple[int, bool, bool, bool, int]:
        """(cost, can set IF, is a port access, opens an interrupt shadow, time-stamp read:
        0, ``_RDTSC`` or ``_RDTSCP``) of the instruction encoded as ``encoding``.  None of
        these depends on where the instruction sits, so they are decoded (with capstone's
        operand details, the slow part) once per encoding: a block of 512 identical
        instructions costs one detailed decode."""
        facts = self._facts.get(encoding)
        if facts is not None:
            return facts
        instruction = next(self._cs_detail.disasm(encoding, address, 1))
        mnemonic = instruction.mnemonic
        has_memory = any(op.type == cx.X86_OP_MEM for op in instruction.operands)
        shadows = mnemonic == "sti" or (mnemonic in ("mov", "pop") and instruction.op_str.split(",")[0].strip() == "ss")
        time_stamp = {"rdtsc": _RDTSC, "rdtscp": _RDTSCP}.get(mnemonic, 0)
        facts = (self.costs.cost(classify(mnemonic, has_memory)), mnemonic in _IF_SETTERS,
                 mnemonic.split()[-1].rstrip("bwdq") in _PORT_ACCESS, shadows, time_stamp)
        if len(self._facts) >= _FACTS_LIMIT:  # bounded: a guest can generate endless code
            self._facts.clear()
        self._facts[encoding] = facts
        return facts

    def _on_block_native(self, _handle: int, address: int, size: int, _user: int) -> None:
        # Called from C: an exception must not unwind through Unicorn.  It is kept and
        # re-raised when emu_start returns (a bug of ours stops the run).
        try:
            self._on_block(self._uc, address, size, None)
        except BaseException as error:  # noqa: BLE001 - re-raised after emu_start
            self._callback_error = error
            self._uc.emu_stop()

    def _on_block(self, uc: unicorn.Uc, address: int, size: int, _user: object) -> None:
        if self._cancelled:
            # Asked again at every block: Unicorn drops a stop requested just before the
            # engine started (``cancel``).  The block is handled as always; the run's end
            # brings the counts to where it stopped.
            uc.emu_stop()
        code = self._read_code(address, size)
        key = (address, code)
        known = self._blocks.get(key)
        if known is None:
            known = self._blocks[key] = (self._decode(address, code), len(self._block_list))
            self._block_list.append(known[0])
            if known[0].writes_cr0:
                # Before it runs for the first time: it may turn paging on.
                self.use_cpu_tlb()
            if not self._count_mode and any(after not in self._io_hooked for after in known[0].io_follow):
                # Not run yet: retranslated with the hooks that make its port stops exact.
                # The block before it ran to its end (it may contain this address, so the
                # pc must not be looked up in it).
                self._pending_io.append(known[0])
                self._retranslate = True
                self._state.current = 0
                uc.emu_stop()
                return
        block, block_id = known
        if self._reentry:
            # A partial run re-enters the block whose entry was handled before it (block
            # listener, interrupt and deadline checks): only the counters move.
            self._reentry = False
            self._update_slow()
            self._account(address, block, block_id)
            return
        previous = self._previous_block = self._last_block
        state = self._state
        start_cycles = state.cycles + self.charged
        self._account(address, block, block_id)
        if self._block_listener is not None:
            self._block_listener(address, code, len(block.starts))
        over_budget = state.instructions > self._limit
        if self._exact:
            if over_budget:
                self._stop_at_budget(block, address)
            return
        continuation, self._continue_at = self._continue_at, None
        if self._irq_asserted and address != continuation:
            if uc.reg_read(self._flags_reg) & _EFLAGS_IF:
                if not (previous is not None and previous.shadow_after(address)):
                    self._stop = StopInfo(StopKind.INTERRUPT, address)
                    uc.emu_stop()
                    return
                check_next = True  # inside the shadow of sti: deliver at the next boundary
            else:
                # IF is clear: only a block that can set it makes the next block worth a look.
                check_next = block.may_set_if
            if self._check_irq_next_block != check_next:
                self._check_irq_next_block = check_next
                self._update_slow()
        deadline = self._deadline
        if deadline is None or start_cycles + block.total_cycles <= deadline:
            if over_budget:
                self._stop_at_budget(block, address)
            return
        needed = deadline - start_cycles
        steps = 0
        while block.cycles[steps] < needed:
            steps += 1
        self._stop = StopInfo(StopKind.DEADLINE, address, slice=steps)
        uc.emu_stop()

    def _stop_at_budget(self, block: _Block, address: int) -> None:
        """The block just entered crosses the instruction budget: stop before it, and have
        ``run`` execute the part of it the budget allows (none: the run ends here)."""
        steps = self._limit - (self._state.instructions - len(block.starts))
        if steps > 0:
            self._partial = (block, steps)
        else:
            self._stop = StopInfo(StopKind.BUDGET, address)
        self._uc.emu_stop()

    def _table_slot(self, address: int) -> int:
        """Where the block at ``address`` goes in the native hook's two-way table: the slot
        that holds it already, else an empty one of its two, else its own slot unless that
        holds the block entered last (two hot blocks sharing a slot then both stay)."""
        own = fastblock.slot(address)
        other = own ^ 1
        table = self._table
        own_address, other_address = table[own].address, table[other].address
        if own_address == address or own_address == 0:
            return own
        if other_address == address or other_address == 0:
            return other
        last = self._state.last
        return other if last == self._state.table + own * ctypes.sizeof(fastblock.Entry) else own

    def _account(self, address: int, block: _Block, block_id: int) -> None:
        """Enter ``block``: fill its table entry and count it as executed (a stop inside it
        is corrected from the pc when the run returns)."""
        index = self._table_slot(address)
        entry = self._table[index]
        entry.address, entry.size = address, block.end - block.address
        entry.instructions, entry.cycles = len(block.starts), block.total_cycles
        entry.block_id = block_id
        entry.flags = fastblock.ENTRY_MAY_SET_IF if block.may_set_if else 0
        pointer = self._state.table + index * ctypes.sizeof(fastblock.Entry)
        state = self._state
        state.current = pointer
        state.last = pointer
        state.tsc_reads = 0
        state.instructions += len(block.starts)
        state.cycles += block.total_cycles

    def _on_in(self, uc: unicorn.Uc, port: int, size: int, _user: object) -> int:
        # The binding cannot turn an exception into the hook's integer result (it reports it
        # as unraisable and the guest reads garbage): keep it and re-raise after emu_start.
        try:
            value = self._port_read(port, size)
            if self._native_sync is not None:
                self._native_sync(port)
        except BaseException as error:  # noqa: BLE001 - re-raised after emu_start
            self.abort_run(error)
            return (1 << (8 * size)) - 1
        return value

    def _on_out(self, uc: unicorn.Uc, port: int, size: int, value: int, _user: object) -> None:
        self._port_write(port, size, value)

    def _on_rdtsc(self, _handle: int, _user: int) -> int:
        # Unicorn does not sync the pc before this hook, so the instruction is found by
        # counting the time-stamp reads of the current block (straight-line code).
        block = self._current
        index, is_rdtscp = (0, False)
        done = self._state.tsc_reads
        if block is not None and done < len(block.tsc_reads):
            index, is_rdtscp = block.tsc_reads[done]
            self._state.tsc_reads = done + 1
        value = self._counted_cycles + self.charged
        if block is not None:
            value += block.cycles[index] - block.total_cycles
        wide = self.mode == 64
        self._uc.reg_write(ux.UC_X86_REG_RAX if wide else ux.UC_X86_REG_EAX, value & 0xFFFFFFFF)
        self._uc.reg_write(ux.UC_X86_REG_RDX if wide else ux.UC_X86_REG_EDX, (value >> 32) & 0xFFFFFFFF)
        if is_rdtscp:
            self._uc.reg_write(ux.UC_X86_REG_RCX if wide else ux.UC_X86_REG_ECX, 0)  # TSC_AUX is 0
        return 1  # skip the real instruction

    def _on_interrupt(self, uc: unicorn.Uc, intno: int, _user: object) -> None:
        if intno == PAGE_FAULT:
            # The pc is the faulting instruction's (QEMU restored it); CR2 is set.
            self._exception = (intno, self._exception_state()[0])
            uc.emu_stop()
            return
        name = _EXCEPTION_NAMES.get(intno, f"software interrupt int {intno:#x}")
        self._fault = (f"CPU exception: {name}", None)
        uc.emu_stop()

    def _on_unmapped(self, uc: unicorn.Uc, access: int, address: int, size: int, value: int,
                     _user: object) -> bool:
        kind = {unicorn.UC_MEM_READ_UNMAPPED: "read of", unicorn.UC_MEM_WRITE_UNMAPPED: "write to",
                unicorn.UC_MEM_FETCH_UNMAPPED: "instruction fetch from"}.get(access, "access to")
        # Unicorn reports the address after translation: say so when paging is on.
        where = "physical " if uc.reg_read(ux.UC_X86_REG_CR0) & CR0_PG else ""
        self._fault = (f"{kind} unmapped memory at {where}{address:#x} ({size} bytes)", address)
        return False

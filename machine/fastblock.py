"""A native block hook: exact instruction and cycle counting without Python per block.

Unicorn calls a block hook before every translated block it executes.  A Python hook costs
about half a microsecond per block; this one is ~130 bytes of x86-64 machine code (``_SOURCE``,
kept assembled in ``NATIVE_CODE``, placed in executable memory) that looks the block up in a small
two-way table filled by Python (``slot``: a multiplicative hash of the address, and the slot
next to it) and adds its instruction count and static cycles to
counters in a shared ctypes structure.  On a table miss, or while the machine needs a
decision at every block (a pending deadline, an asserted interrupt line, an exact slice),
or when the block would take the instruction count past ``State.limit`` (the run's
budget, see machine/cpu.py), it tail-calls the Python handler with the same arguments,
which decodes the block, fills its table entry and does everything the pure Python hook
does.  While the interrupt line is
asserted but the guest has interrupts disabled, only blocks that can enable them (sti,
popf, iret) and the block right after such a block go to Python.

Counts are identical with and without it (tests compare both).  Limitation: a table entry
is matched by address and size, so code rewritten in place that keeps a block's address and
size but changes its instructions keeps the old counts until the entry is evicted; machines
that run such code use ``Machine(fast_blocks=False)``.  Only x86-64 Linux hosts get the
native hook; elsewhere ``native_hook_address()`` is None and the Python hook is used.

The same executable page holds ``NOOP_CODE``, the no-op code hook the CPU puts after port
accesses in the middle of a block, and ``TLB_FILL_CODE``, the TLB fill hook that lets guest
stores take Unicorn's fast path (both used by machine/cpu.py).
"""

from __future__ import annotations

import ctypes
import mmap
import platform
from functools import cache

TABLE_BITS = 12
TABLE_SIZE = 1 << TABLE_BITS


class Entry(ctypes.Structure):
    """One cached block: where it is, how much it costs, which Python block it is."""

    _fields_ = [
        ("address", ctypes.c_uint64),
        ("size", ctypes.c_uint32),
        ("instructions", ctypes.c_uint32),
        ("cycles", ctypes.c_uint64),
        ("block_id", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),       # ENTRY_MAY_SET_IF
    ]


#: Entry flag: the block contains an instruction that can set IF (sti, popf, iret).
ENTRY_MAY_SET_IF = 0x1


class State(ctypes.Structure):
    """Counters and control shared by the native hook and Python (offsets are used by the
    machine code below: keep them in sync)."""

    _fields_ = [
        ("instructions", ctypes.c_uint64),   # +0  instructions of blocks entered
        ("cycles", ctypes.c_uint64),         # +8  their static cycles
        ("current", ctypes.c_uint64),        # +16 entry of the block being executed (0: none)
        ("table", ctypes.c_uint64),          # +24 address of the Entry array
        ("mask", ctypes.c_uint64),           # +32 TABLE_SIZE - 1
        ("slow", ctypes.c_uint64),           # +40 non-zero: every block goes to Python
        ("python", ctypes.c_uint64),         # +48 the Python handler (a C function pointer)
        ("last", ctypes.c_uint64),           # +56 entry of the last block entered
        ("tsc_reads", ctypes.c_uint64),      # +64 time-stamp reads done in the current block
        ("irq_watch", ctypes.c_uint64),      # +72 non-zero: blocks that may set IF go to Python
        ("limit", ctypes.c_uint64),          # +80 a block that would take ``instructions``
                                             #     past this goes to Python (the budget)
        # Read and written by native port hooks (devices/vmmdev/accel.py), not by the code below:
        ("charged", ctypes.c_uint64),        # +88 cycles charged outside instruction costs
        ("deadline", ctypes.c_uint64),       # +96 the next scheduled event's cycle (NO_DEADLINE: none)
        ("inexact", ctypes.c_uint64),        # +104 non-zero in exact slices and on Unicorn's count
    ]


#: ``State.deadline`` when no event is scheduled.
NO_DEADLINE = 0xFFFFFFFFFFFFFFFF


assert ctypes.sizeof(Entry) == 32

# SysV x86-64: rdi = uc, rsi = block address, edx = block size, rcx = State*.  The slot is
# ``slot(address)`` (the shift is 64 - TABLE_BITS); a block not there may sit in the slot
# next to it (index ^ 1), where Python puts it when its own slot holds another hot block.
_SOURCE = """
    cmp qword ptr [rcx + 40], 0
    jne python
    movabs rax, 0x9E3779B97F4A7C15
    imul rax, rsi
    shr rax, 52
    and rax, qword ptr [rcx + 32]
    mov r9, rax
    shl rax, 5
    add rax, qword ptr [rcx + 24]
    cmp qword ptr [rax], rsi
    je found
    xor r9, 1
    shl r9, 5
    add r9, qword ptr [rcx + 24]
    cmp qword ptr [r9], rsi
    jne python
    mov rax, r9
found:
    cmp dword ptr [rax + 8], edx
    jne python
    cmp qword ptr [rcx + 72], 0
    je budget
    test dword ptr [rax + 28], 1
    jnz python
budget:
    mov r8d, dword ptr [rax + 12]
    add r8, qword ptr [rcx]
    cmp r8, qword ptr [rcx + 80]
    ja python
    mov qword ptr [rcx], r8
    mov qword ptr [rcx + 16], rax
    mov qword ptr [rcx + 56], rax
    mov qword ptr [rcx + 64], 0
    mov r8, qword ptr [rax + 16]
    add qword ptr [rcx + 8], r8
    ret
python:
    jmp qword ptr [rcx + 48]
"""

#: ``_SOURCE`` assembled (x86-64).  Kept as bytes so that keystone, which has crashed and
#: corrupted memory on some inputs, never runs inside this process; a test re-assembles
#: ``_SOURCE`` through the guest assembler's worker process and compares.
NATIVE_CODE = bytes.fromhex(
    "4883792800757848b8157c4a7fb979379e480fafc648c1e834482341204989c148c1e0054803411848393074"
    "144983f10149c1e1054c03491849393175414c89c8395008753948837948007409f7401c010000007529448b"
    "400c4c03014c3b4150771c4c8901488941104889413848c74140000000004c8b40104c014108c3ff6130")

#: A code hook that does nothing (``ret``).  Unicorn follows every code hook it calls with
#: a check of pending stop requests, so hooking the instruction after a port access makes
#: a stop requested by that access take effect right there (see machine/cpu.py).
NOOP_CODE = b"\xc3"
#: Where ``NOOP_CODE`` sits in the executable page, after ``NATIVE_CODE``.
_NOOP_OFFSET = 256



class CodePages(ctypes.Structure):
    """Shared with the TLB fill hook: one bit per RAM page, set once code is fetched from it."""

    _fields_ = [
        ("pages", ctypes.c_uint64),    # +0 pages the bitmap covers (RAM pages)
        ("bitmap", ctypes.c_uint64),   # +8 address of the bitmap (64-bit words)
    ]


# Unicorn's uc_cb_tlbevent_t (include/unicorn/unicorn.h), SysV x86-64: rsi = the page's
# virtual address, edx = the access (UC_MEM_FETCH is 18), rcx = the uc_tlb_entry to fill
# (paddr at +0, perms at +8), r8 = CodePages*.  The translation is the identity, as the
# CPU's own walk with paging off; perms: UC_PROT_ALL (7) for a fetch, which marks the page,
# for a page marked before and for anything beyond RAM; else UC_PROT_READ | UC_PROT_WRITE (3).
TLB_FILL_SOURCE = """
    mov qword ptr [rcx], rsi
    shr rsi, 12
    cmp rsi, qword ptr [r8]
    jae code
    mov rax, qword ptr [r8 + 8]
    cmp edx, 18
    je fetch
    bt qword ptr [rax], rsi
    jc code
    mov dword ptr [rcx + 8], 3
    mov eax, 1
    ret
fetch:
    bts qword ptr [rax], rsi
code:
    mov dword ptr [rcx + 8], 7
    mov eax, 1
    ret
"""

#: ``TLB_FILL_SOURCE`` assembled (x86-64), kept and checked as ``NATIVE_CODE`` is.
TLB_FILL_CODE = bytes.fromhex(
    "48893148c1ee0c493b307320498b400883fa127413480fa3307211c7410803000000b801000000c348"
    "0fab30c7410807000000b801000000c3")
#: Where ``TLB_FILL_CODE`` sits in the executable page.
_TLB_FILL_OFFSET = 320


# A SIGINT handler (SysV x86-64, the signal number in edi, a SA_SIGINFO handler's other two
# arguments in rsi and rdx, passed on untouched): it sets ``State.slow`` (+40) of the State
# in its first word, so that the next block the guest enters goes to Python, where the
# interpreter then runs its own handler for the signal, and tail-calls the handler in its
# second word (the interpreter's C-level one, which only notes the signal).  Async-signal
# safe: one store and a jump.  Both words are written by ``SignalBridge`` (runcontrol.py).
SIGNAL_SOURCE = """
    mov rax, qword ptr [rip + bridge_state]
    test rax, rax
    jz chain
    mov qword ptr [rax + 40], 1
chain:
    mov rax, qword ptr [rip + bridge_previous]
    test rax, rax
    jz done
    jmp rax
done:
    ret
.align 8
bridge_state:
    .quad 0
bridge_previous:
    .quad 0
"""

#: ``SIGNAL_SOURCE`` assembled (x86-64), its two words included, kept and checked as
#: ``NATIVE_CODE`` is.
SIGNAL_CODE = bytes.fromhex(
    "488b05210000004885c0740848c7402801000000488b05150000004885c07402ffe0c30f1f4400000000"
    "0000000000000000000000000000")
#: Where ``SIGNAL_CODE`` sits in the executable page, and where its two words are in it.
_SIGNAL_OFFSET = 384
_SIGNAL_WORDS = 40
assert State.slow.offset == 40, "SIGNAL_SOURCE stores to State.slow at +40"


class SignalWords(ctypes.Structure):
    """The native SIGINT handler's two words (see ``SIGNAL_SOURCE``)."""

    _fields_ = [
        ("state", ctypes.c_uint64),      # the State whose ``slow`` it sets (0: none)
        ("previous", ctypes.c_uint64),   # the handler it chains to (0: none)
    ]


BLOCK_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p)


#: Fibonacci hashing's multiplier (2**64 / the golden ratio, odd): the top TABLE_BITS bits
#: of ``address * _HASH`` spread nearby addresses over the table.  (The XOR of the address
#: with its page number used before sent blocks 0x1001 bytes apart to one slot: a guest's
#: hot loop of such blocks went to Python at every block, 20-60 µs a call.)
_HASH = 0x9E3779B97F4A7C15
assert TABLE_BITS == 12, "the machine code shifts by 64 - 12"


def slot(address: int) -> int:
    """The table slot of a block address (the same hash as the machine code); the block
    may also sit in ``slot(address) ^ 1``."""
    return ((address * _HASH) & 0xFFFFFFFFFFFFFFFF) >> (64 - TABLE_BITS)


@cache
def _native_code() -> int | None:
    """Address of the assembled hook in executable memory, or None when unavailable."""
    if platform.machine() not in ("x86_64", "AMD64") or platform.system() != "Linux":
        return None
    code = NATIVE_CODE
    try:
        memory = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except (OSError, PermissionError):
        return None
    memory.write(code)
    memory.seek(_NOOP_OFFSET)
    memory.write(NOOP_CODE)
    memory.seek(_TLB_FILL_OFFSET)
    memory.write(TLB_FILL_CODE)
    memory.seek(_SIGNAL_OFFSET)
    memory.write(SIGNAL_CODE)
    _KEEP.append(memory)
    return ctypes.addressof(ctypes.c_char.from_buffer(memory))


_KEEP: list[mmap.mmap] = []


def native_hook_address() -> int | None:
    """The native hook's address for ``uc_hook_add``, or None on hosts without it."""
    return _native_code()


def noop_hook_address() -> int | None:
    """The no-op code hook's address for ``uc_hook_add``, or None on hosts without it."""
    base = _native_code()
    return None if base is None else base + _NOOP_OFFSET


def tlb_fill_hook_address() -> int | None:
    """The TLB fill hook's address for ``uc_hook_add`` (user data: a ``CodePages``), or
    None on hosts without the native page."""
    base = _native_code()
    return None if base is None else base + _TLB_FILL_OFFSET


def signal_handler() -> tuple[int, SignalWords] | None:
    """The native SIGINT handler's address and its words, or None on hosts without the
    native page."""
    base = _native_code()
    if base is None:
        return None
    return base + _SIGNAL_OFFSET, SignalWords.from_address(base + _SIGNAL_OFFSET + _SIGNAL_WORDS)

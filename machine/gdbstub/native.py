"""Gated native hooks: a debugger's code and memory hooks that cost no Python call unless
something of interest happens.

A debugger needs to look at every instruction (breakpoints, single steps, polling for
gdb's Ctrl-C) and every data access (watchpoints), but a Python hook per instruction or
per access would slow the guest down a hundredfold (a Python call costs about a
microsecond, an instruction about ten nanoseconds).  These are two tiny x86-64 functions
(``CODE_SOURCE``/``MEMORY_SOURCE``, kept assembled; a test re-assembles the sources and
compares) that Unicorn calls directly:

* the code hook decrements a countdown and looks the instruction's address up in a small
  direct-mapped table of breakpoint addresses; it calls Python when the countdown reaches
  zero or the address is in the table;
* a memory hook compares the access ``[address, address + size)`` with up to
  ``MAX_RANGES`` watched ranges and calls Python on an overlap.

Nothing here changes guest state: the hooks only read their tables, so a run with them
installed executes exactly as one without (the tests compare cycles and traces).
"""

from __future__ import annotations

import ctypes
import mmap
import platform
from functools import cache

#: Breakpoint table slots (a power of two); colliding breakpoints fall back to countdown 1.
TABLE_SIZE = 1024
#: Watched ranges per memory hook.
MAX_RANGES = 16
#: An address no instruction has: marks an empty table slot.
EMPTY = 0xFFFFFFFFFFFFFFFF


class CodeState(ctypes.Structure):
    """Shared with the native code hook (offsets used by ``CODE_SOURCE``)."""

    _fields_ = [
        ("countdown", ctypes.c_uint64),   # +0  Python is called when it reaches zero
        ("python", ctypes.c_uint64),      # +8  the Python handler (C function pointer)
        ("mask", ctypes.c_uint64),        # +16 TABLE_SIZE - 1
        ("table", ctypes.c_uint64),       # +24 address of TABLE_SIZE u64 addresses
    ]


class Range(ctypes.Structure):
    """A watched range [start, end)."""

    _fields_ = [("start", ctypes.c_uint64), ("end", ctypes.c_uint64)]


class MemoryState(ctypes.Structure):
    """Shared with the native memory hook (offsets used by ``MEMORY_SOURCE``)."""

    _fields_ = [
        ("count", ctypes.c_uint64),       # +0  ranges in use
        ("python", ctypes.c_uint64),      # +8  the Python handler
        ("ranges", Range * MAX_RANGES),   # +16
    ]


# SysV x86-64, Unicorn's code hook: rdi = uc, rsi = address, edx = size, rcx = CodeState*.
CODE_SOURCE = """
    sub qword ptr [rcx], 1
    je python
    mov rax, rsi
    and rax, qword ptr [rcx + 16]
    mov r8, qword ptr [rcx + 24]
    cmp qword ptr [r8 + rax*8], rsi
    je python
    ret
python:
    jmp qword ptr [rcx + 8]
"""

# Unicorn's memory hook: rdi = uc, esi = type, rdx = address, ecx = size, r8 = value,
# r9 = MemoryState*.
MEMORY_SOURCE = """
    mov eax, ecx
    add rax, rdx
    mov r10, qword ptr [r9]
    lea r11, [r9 + 16]
next:
    test r10, r10
    je done
    cmp rdx, qword ptr [r11 + 8]
    jae skip
    cmp rax, qword ptr [r11]
    jbe skip
    jmp qword ptr [r9 + 8]
skip:
    add r11, 16
    sub r10, 1
    jmp next
done:
    ret
"""

CODE_NATIVE = bytes.fromhex("4883290174124889f0482341104c8b4118493934c07401c3ff6108")
MEMORY_NATIVE = bytes.fromhex(
    "89c84801d04d8b114d8d59104d85d27419493b53087309493b03760441ff61084983c3104983ea01ebe2c3")

CODE_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p)
MEMORY_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64, ctypes.c_int,
                                   ctypes.c_int64, ctypes.c_void_p)

_KEEP: list[mmap.mmap] = []


@cache
def _place(code: bytes) -> int | None:
    if platform.machine() not in ("x86_64", "AMD64") or platform.system() != "Linux":
        return None
    try:
        memory = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except (OSError, PermissionError):
        return None
    memory.write(code)
    _KEEP.append(memory)
    return ctypes.addressof(ctypes.c_char.from_buffer(memory))


def code_hook_address() -> int | None:
    """Address of the native code hook, or None on hosts that cannot run it."""
    return _place(CODE_NATIVE)


def memory_hook_address() -> int | None:
    """Address of the native memory hook, or None on hosts that cannot run it."""
    return _place(MEMORY_NATIVE)

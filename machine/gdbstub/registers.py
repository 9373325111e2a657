"""The registers gdb sees: their order, sizes and the target description (target.xml).

gdb numbers registers in the order of the target description, and ``g``/``G``/``p``/``P``
use those numbers and sizes (little-endian hex).  The description follows gdb's own
features so gdb recognises the architecture (``org.gnu.gdb.i386.core`` with the general,
segment, flag and x87 registers, ``org.gnu.gdb.i386.sse``, ``org.gnu.gdb.i386.segments``
with ``fs_base``/``gs_base`` in 64-bit mode) and adds ``org.hgcmlab.x86.system`` with the
control registers, EFER and the descriptor-table registers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Register:
    """One register as gdb sees it."""

    name: str
    bits: int
    type: str
    feature: str


_CORE = "org.gnu.gdb.i386.core"
_SSE = "org.gnu.gdb.i386.sse"
_SEGMENTS = "org.gnu.gdb.i386.segments"
_SYSTEM = "org.hgcmlab.x86.system"

_X87 = ([(f"st{i}", 80, "i387_ext") for i in range(8)]
        + [(name, 32, "int") for name in ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")])
_SELECTORS = [(name, 32, "int32") for name in ("cs", "ss", "ds", "es", "fs", "gs")]


@cache
def layout(mode: int) -> tuple[Register, ...]:
    """The registers of ``mode`` (64 or 32) in gdb's numbering."""
    if mode == 64:
        general = [(name, 64, "int64") for name in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi")]
        general += [("rbp", 64, "data_ptr"), ("rsp", 64, "data_ptr")]
        general += [(f"r{i}", 64, "int64") for i in range(8, 16)]
        general += [("rip", 64, "code_ptr"), ("eflags", 32, "i386_eflags")]
        xmm = 16
    else:
        general = [(name, 32, "int32") for name in ("eax", "ecx", "edx", "ebx")]
        general += [("esp", 32, "data_ptr"), ("ebp", 32, "data_ptr"), ("esi", 32, "int32"), ("edi", 32, "int32")]
        general += [("eip", 32, "code_ptr"), ("eflags", 32, "i386_eflags")]
        xmm = 8
    registers = [Register(n, b, t, _CORE) for n, b, t in general + _SELECTORS + _X87]
    registers += [Register(f"xmm{i}", 128, "vec128", _SSE) for i in range(xmm)]
    registers.append(Register("mxcsr", 32, "int", _SSE))
    if mode == 64:
        registers += [Register("fs_base", 64, "int", _SEGMENTS), Register("gs_base", 64, "int", _SEGMENTS)]
    system = ["cr0", "cr2", "cr3", "cr4"] + (["cr8"] if mode == 64 else []) + ["efer"]
    registers += [Register(name, 64, "int", _SYSTEM) for name in system]
    registers += [Register("gdtr_base", 64, "uint64", _SYSTEM), Register("gdtr_limit", 32, "int", _SYSTEM),
                  Register("idtr_base", 64, "uint64", _SYSTEM), Register("idtr_limit", 32, "int", _SYSTEM)]
    return tuple(registers)


_EFLAGS_FIELDS = [("CF", 0), ("", 1), ("PF", 2), ("AF", 4), ("ZF", 6), ("SF", 7), ("TF", 8), ("IF", 9),
                  ("DF", 10), ("OF", 11), ("NT", 14), ("RF", 16), ("VM", 17), ("AC", 18), ("VIF", 19),
                  ("VIP", 20), ("ID", 21)]


@cache
def target_xml(mode: int) -> str:
    """The target description for ``mode``: what ``qXfer:features:read:target.xml`` serves."""
    architecture = "i386:x86-64" if mode == 64 else "i386"
    lines = ['<?xml version="1.0"?>', '<!DOCTYPE target SYSTEM "gdb-target.dtd">', "<target>",
             f"  <architecture>{architecture}</architecture>"]
    current = None
    for number, register in enumerate(layout(mode)):
        if register.feature != current:
            if current is not None:
                lines.append("  </feature>")
            current = register.feature
            lines.append(f'  <feature name="{current}">')
            if current == _CORE:
                lines.append('    <flags id="i386_eflags" size="4">')
                lines += [f'      <field name="{escape(name)}" start="{bit}" end="{bit}"/>' for name, bit in _EFLAGS_FIELDS]
                lines.append("    </flags>")
            if current == _SSE:
                lines += ['    <vector id="v4f" type="ieee_single" count="4"/>',
                          '    <vector id="v2d" type="ieee_double" count="2"/>',
                          '    <vector id="v16i8" type="int8" count="16"/>',
                          '    <vector id="v8i16" type="int16" count="8"/>',
                          '    <vector id="v4i32" type="int32" count="4"/>',
                          '    <vector id="v2i64" type="int64" count="2"/>',
                          '    <union id="vec128">', '      <field name="v4_float" type="v4f"/>',
                          '      <field name="v2_double" type="v2d"/>', '      <field name="v16_int8" type="v16i8"/>',
                          '      <field name="v8_int16" type="v8i16"/>', '      <field name="v4_int32" type="v4i32"/>',
                          '      <field name="v2_int64" type="v2i64"/>', '      <field name="uint128" type="uint128"/>',
                          "    </union>"]
        lines.append(f'    <reg name="{register.name}" bitsize="{register.bits}" type="{register.type}" regnum="{number}"/>')
    lines += ["  </feature>", "</target>"]
    return "\n".join(lines) + "\n"

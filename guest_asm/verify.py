"""Checking keystone's output against the source: no silent miscompiles.

Keystone 0.9.2 accepts some operands and encodes something else without any error, e.g.
(64-bit mode) ``mov rbx, qword ptr [0x1000]`` as ``[rip + 0x1000]``, ``[0x7fffffffff]`` as
``[0xffffffffffffffff]``, ``[0x100000000]`` as ``[0]``, ``[rax + 0x100000000]`` as
``[rax]``, ``[0x1000 + riz]`` as ``[rsp + 0x1000]``, ``push 0xffffffff`` as a 16-bit
``push 0xffff``, ``mov eax, 0x100000000`` as ``mov eax, 0``, and a truncated
``mov rax, [`` as ``movabs rax, [0]``.

``check_line`` disassembles (capstone) the bytes of one source line and compares every
instruction with what its statement asks for:

* Syntax: each operand must be well formed (``operands.parse_operand``).
* The bytes decode into whole instructions (keystone sometimes leaves out a displacement).
* Memory operands: the same registers with the same scales, the same segment (or the
  base register's default one), and the displacement the source's expression evaluates
  to.  An address is compared the
  way the CPU forms it: modulo 2**64 with 64-bit address registers (and for absolute
  addresses in 64-bit mode), modulo 2**32 with 32-bit ones; a register-relative
  displacement must fit the sign-extended 32-bit field.  An absolute ``[expr]`` may come
  out as an absolute encoding or as ``[rip + d]``; either is accepted when it addresses
  exactly the byte the expression names.
* Immediates: the encoded value, at the instruction's operand size, must equal the
  source value, and that value must fit the operand size (signed or unsigned); a
  ``push`` pushes the mode's stack width.
* Branch targets: the decoded target must be the source's address.

``check_data`` does the same for a data directive's bytes (``check_data_literals`` checks
plain-number values before keystone runs: it hangs on some out-of-range ones).

A value is only compared when the expression's value is known exactly (numbers, labels,
``.equ`` symbols defined once outside macro bodies, ABI constants); anything else is left
unchecked, so the check never rejects what it cannot judge.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from capstone import CS_ARCH_X86, CS_MODE_32, CS_MODE_64, Cs, CsInsn
from capstone.x86 import X86_OP_IMM, X86_OP_MEM

from hgcmlab.guest_asm.cache import BoundedCache
from hgcmlab.guest_asm.expr import Unknown, evaluate, tokenize
from hgcmlab.guest_asm.operands import Instruction, MalformedOperand, Operand, parse_instruction, split_operands

_BRANCHES = frozenset(("jmp", "call", "loop", "loope", "loopz", "loopne", "loopnz", "jecxz", "jrcxz", "jcxz"))
#: An operand that names its size (``push word 5``: a 16-bit push is what was asked for).
_SIZED = re.compile(r"\s*(byte|word|dword|qword)\b", re.IGNORECASE)

_engines: dict[int, Cs] = {}
#: Line verdicts (see ``check_line_cached``): None, or (message, rewrite, position).
_verdicts: BoundedCache[object, object] = BoundedCache(65536)
_MISSING = object()


class Miscompile(Exception):
    """Keystone's encoding does not say what the source says (the message explains).

    ``rewrite`` is ``(statement_index, new_statement_text)`` when re-assembling that
    statement in another form gives the intended encoding (see ``absolute_form``).
    """

    def __init__(self, message: str, rewrite: tuple[int, str] | None = None, position: int | None = None,
                 operand_fix: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.rewrite = rewrite
        #: Index of the statement (of the line) that is wrong, when known.
        self.position = position
        #: (operand text as written, its replacement) behind ``rewrite``.
        self.operand_fix = operand_fix


@dataclass(frozen=True)
class LineBytes:
    """The bytes one source line produced, at ``address``."""

    address: int
    code: bytes


def absolute_form(operand: Operand, value: int) -> str:
    """``operand`` rewritten to address ``value`` with no base and no index register.

    ``[riz*1 + value]`` makes keystone emit ModRM rm=100 + SIB base=101 index=100: the
    absolute disp32 form (sign-extended in 64-bit mode), which is what GNU as emits for
    ``[value]``.  The number is written out because keystone drops a minus before a symbol
    (``[riz*1 + (-PAGE)]`` encodes +PAGE).
    """
    number = f"- {-value:#x}" if value < 0 else f"+ {value:#x}"
    return f"{operand.prefix}[riz*1 {number}]"


def _engine(mode: int) -> Cs:
    engine = _engines.get(mode)
    if engine is None:
        engine = Cs(CS_ARCH_X86, CS_MODE_64 if mode == 64 else CS_MODE_32)
        engine.detail = True
        _engines[mode] = engine
    return engine


@functools.lru_cache(maxsize=65536)
def parse_statements(statements: tuple[str, ...]) -> tuple[Instruction, ...]:
    """Parse instruction statements; ``Miscompile`` names the first malformed operand."""
    parsed: list[Instruction] = []
    for position, statement in enumerate(statements):
        try:
            parsed.append(parse_instruction(statement))
        except MalformedOperand as error:
            raise Miscompile(f"malformed operand: {error}", position=position) from None
    return tuple(parsed)


def check_line_cached(statements: tuple[str, ...], produced: LineBytes, mode: int,
                      symbols: Mapping[str, int], labels: frozenset[str], names: frozenset[str],
                      strict_count: bool = False) -> None:
    """Parse ``statements`` and ``check_line`` them, remembering verdicts.

    ``names`` are the identifiers the statements use.  The verdict depends only on the
    statements, the bytes, their address, the mode and the values (and label-ness) of those
    identifiers, which form the key.
    """
    instructions = parse_statements(statements)
    if len(instructions) == 1 and all(op.kind == "register" for op in instructions[0].operands):
        return  # nothing in it is compared (and _line_map catches an empty encoding)
    used = tuple(sorted((name, symbols[name], name in labels) for name in names if name in symbols))
    address = produced.address if any(_depends_on_address(insn) for insn in instructions) else None
    key = (statements, address, produced.code, mode, used, strict_count)
    verdict = _verdicts.get(key, _MISSING)
    if verdict is _MISSING:
        try:
            check_line(instructions, produced, mode, symbols, labels, strict_count)
            verdict = None
        except Miscompile as error:
            verdict = (str(error), error.rewrite, error.position, error.operand_fix)
        _verdicts.put(key, verdict)
    if verdict is not None:
        message, rewrite, position, operand_fix = verdict  # type: ignore[misc]
        raise Miscompile(message, rewrite, position, operand_fix)


def _depends_on_address(instruction: Instruction) -> bool:
    """Whether the verdict on ``instruction`` can change with the address it is at.

    Only through branch targets and rip-relative encodings, which keystone chooses only
    for a memory operand without base or index register (or one naming rip): for anything
    else the bytes, the statement and the symbol values decide.
    """
    if instruction.mnemonic in _BRANCHES or instruction.mnemonic.startswith("j"):
        return True
    for operand in instruction.operands:
        memory = operand.memory
        if memory is not None and (not memory.registers or any(name in ("rip", "eip")
                                                                for name, _scale in memory.registers)):
            return True
    return False


def check_line(instructions: tuple[Instruction, ...], produced: LineBytes, mode: int,
               symbols: Mapping[str, int], labels: frozenset[str] = frozenset(), strict_count: bool = False) -> None:
    """Raise ``Miscompile`` when ``produced`` does not encode ``instructions``.

    ``symbols`` gives the values of identifiers, ``labels`` says which of them are labels.
    When the bytes do not decode into exactly one instruction per statement (prefix-only
    statements, an instruction capstone does not know) the line is not checked further;
    with ``strict_count`` fewer instructions than statements (none of them a bare prefix)
    is an error: keystone dropped one.
    """
    decoded = list(_engine(mode).disasm(produced.code, produced.address))
    if sum(insn.size for insn in decoded) != len(produced.code):
        # Keystone emitted a truncated instruction (32-bit `lea eax, [esi + 0x100000000]`
        # gives 8D 46 with no displacement byte, so the next instruction is swallowed).
        raise Miscompile(f"keystone emitted bytes that are not whole instructions: {produced.code.hex(' ')}")
    pairs = list(zip(instructions, decoded))
    if len(decoded) != len(instructions):
        if strict_count and len(decoded) < len(instructions) and all(insn.mnemonic for insn in instructions):
            raise Miscompile(f"the line has {len(instructions)} instructions but keystone encoded "
                             f"{len(decoded)}: {'; '.join(_text(insn) for insn in decoded) or 'nothing'}")
        # Still judge the leading instructions that plainly correspond (keystone's garbage
        # after a truncated instruction must not hide what went wrong first).
        matching = 0
        while matching < len(pairs) and _same_mnemonic(pairs[matching][0].mnemonic, pairs[matching][1].mnemonic):
            matching += 1
        pairs = pairs[:matching]
    for position, (source, insn) in enumerate(pairs):
        try:
            _check_instruction(source, insn, mode, symbols, labels)
        except Miscompile as error:
            rewrite = operand_fix = None
            message = str(error)
            if error.rewrite is not None:
                operand_index, operand_text = error.rewrite
                rewrite = (position, source.with_operand(operand_index, operand_text))
                operand_fix = (source.operands[operand_index].text, operand_text)
                message += f" (write '{operand_text}' for the absolute form)"
            raise Miscompile(message, rewrite, position, operand_fix) from None


_ALIASES = {"movabs": "mov", "sal": "shl", "jz": "je", "jnz": "jne", "jc": "jb", "jnc": "jae", "jnae": "jb",
            "jnb": "jae", "jna": "jbe", "jnbe": "ja", "jpe": "jp", "jpo": "jnp", "jnge": "jl", "jnl": "jge",
            "jng": "jle", "jnle": "jg"}


def _same_mnemonic(written: str, decoded: str) -> bool:
    return _ALIASES.get(written, written) == _ALIASES.get(decoded, decoded)


def _check_instruction(source: Instruction, insn: CsInsn, mode: int, symbols: Mapping[str, int],
                       labels: frozenset[str]) -> None:
    operands = insn.operands  # capstone builds this list on every access
    if len(source.operands) == len(operands):
        for wanted, encoded in zip(source.operands, operands):
            if wanted.kind == "value" and encoded.type == X86_OP_MEM:
                raise Miscompile(f"the value '{wanted.text}' was encoded as a memory operand: '{_text(insn)}'")
            if wanted.kind == "memory" and encoded.type == X86_OP_IMM:
                raise Miscompile(f"the memory operand '{wanted.text}' was encoded as an immediate: '{_text(insn)}'")
    memory_in_source = [(index, op) for index, op in enumerate(source.operands) if op.kind == "memory"]
    memory_encoded = [op for op in operands if op.type == X86_OP_MEM]
    if len(memory_in_source) > len(memory_encoded):
        raise Miscompile(f"encoded as '{_text(insn)}', which has no memory operand for "
                         f"'{memory_in_source[len(memory_encoded)][1].text}'")
    if len(memory_in_source) == len(memory_encoded):
        for (index, wanted), encoded in zip(memory_in_source, memory_encoded):
            try:
                _check_memory(wanted, encoded, insn, mode, symbols, labels)
            except Miscompile as error:
                fixed = error.rewrite[1] if error.rewrite is not None else None
                raise Miscompile(str(error), (index, fixed) if fixed is not None else None) from None
    values = [op for op in source.operands if op.kind == "value"]
    immediates = [op for op in operands if op.type == X86_OP_IMM]
    branch = source.mnemonic in _BRANCHES or source.mnemonic.startswith("j")
    if not branch and len(values) > len(immediates) and len(memory_encoded) > len(memory_in_source):
        # Capstone may list the operands in another order (`test m32, r32`).
        raise Miscompile(f"the value '{values[len(immediates)].text}' was encoded as a memory operand: "
                         f"'{_text(insn)}'")
    if len(values) == len(immediates):
        for wanted_value, encoded in zip(values, immediates):
            _check_value(wanted_value, encoded, insn, mode, symbols, branch)


def _check_memory(source: Operand, encoded, insn: CsInsn, mode: int,  # noqa: ANN001 - capstone operand
                  symbols: Mapping[str, int], labels: frozenset[str]) -> None:
    """Raise ``Miscompile`` (with ``rewrite = (-1, operand text)`` when fixable)."""
    wanted = source.memory
    assert wanted is not None
    if not wanted.structure_known:
        return
    mem = encoded.mem
    base = insn.reg_name(mem.base) if mem.base else None
    index = insn.reg_name(mem.index) if mem.index else None
    got: dict[str, int] = {}
    if base and base not in ("rip", "eip"):
        got[base] = got.get(base, 0) + 1
    if index:
        got[index] = got.get(index, 0) + mem.scale
    rip_relative = base in ("rip", "eip")
    wanted_registers = {name: scale for name, scale in wanted.registers if name not in ("rip", "eip")}
    wants_rip = any(name in ("rip", "eip") for name, _scale in wanted.registers)
    if got != wanted_registers or (wants_rip and not rip_relative):
        raise Miscompile(f"'{source.text}' was encoded as '{_text(insn)}' (different registers)")
    segment = insn.reg_name(mem.segment) if mem.segment else None
    if not _same_segment(wanted.segment, segment, base, mode):
        raise Miscompile(f"'{source.text}' was encoded as '{_text(insn)}' (different segment)")
    try:
        value = evaluate(wanted.displacement, symbols)
    except Unknown:
        return
    address_bits = 8 * insn.addr_size
    if wanted_registers or wants_rip:
        if wants_rip and _names_a_label(wanted.displacement, labels):
            # [rip + label] addresses the label.
            _compare_address(source, value, insn.address + insn.size + mem.disp, address_bits, insn, mode)
            return
        low = -(1 << 31)
        high = (1 << 31) if address_bits == 64 else (1 << 32)
        if not low <= value < high:
            field = "a sign-extended 32-bit field" if address_bits == 64 else f"a {address_bits}-bit address"
            raise Miscompile(f"displacement {_hex(value)} in '{source.text}' does not fit in {field} "
                             f"(keystone encoded '{_text(insn)}')")
        if (mem.disp - value) % (1 << address_bits):
            raise Miscompile(f"'{source.text}' was encoded as '{_text(insn)}' (displacement {_hex(value)} lost)")
        return
    if mode == 64 and not -(1 << 63) <= value < (1 << 64) or mode == 32 and not -(1 << 31) <= value < (1 << 32):
        raise Miscompile(f"absolute address {_hex(value)} in '{source.text}' is outside the "
                         f"{address_bits}-bit address space")
    effective = insn.address + insn.size + mem.disp if rip_relative else mem.disp
    _compare_address(source, value, effective, address_bits, insn, mode)


def _same_segment(wanted: str | None, got: str | None, base: str | None, mode: int) -> bool:
    """Whether the encoded segment (None: no override) addresses what the source names."""
    if wanted == got:
        return True
    if mode == 64 and {wanted, got} <= {None, "cs", "ds", "es", "ss"}:
        return True  # 64-bit mode ignores these overrides
    default = "ss" if base in ("ebp", "esp", "rbp", "rsp", "bp", "sp") else "ds"
    return {wanted, got} == {None, default}


def _compare_address(source: Operand, value: int, effective: int, address_bits: int, insn: CsInsn,
                     mode: int) -> None:
    if (effective - value) % (1 << address_bits) == 0:
        return
    hint = ""
    rewrite = None
    fits_disp32 = -(1 << 31) <= value < (1 << 31)
    if insn.addr_size == 8 and not fits_disp32:
        hint = ("; in 64-bit mode only mov between al/ax/eax/rax and memory (moffs, opcodes A0-A3) "
                "takes an absolute address that does not fit a sign-extended 32-bit field: "
                "load the address into a register")
    elif mode == 64 and not source.memory.registers and fits_disp32:  # type: ignore[union-attr]
        rewrite = (-1, absolute_form(source, value))
    raise Miscompile(f"'{source.text}' addresses {_hex(value)} but keystone encoded '{_text(insn)}' "
                     f"(address {_hex(effective % (1 << address_bits))}){hint}", rewrite)


def _check_value(source: Operand, encoded, insn: CsInsn, mode: int,  # noqa: ANN001 - capstone operand
                 symbols: Mapping[str, int], branch: bool) -> None:
    if source_is_push(insn) and not _SIZED.match(source.text) and encoded.size != mode // 8:
        # Keystone turns `push SYMBOL` into a 16-bit push (66 6A ..) in 32-bit mode.
        raise Miscompile(f"'push {source.text}' was encoded as a {8 * encoded.size}-bit push: '{_text(insn)}'")
    try:
        value = evaluate(source.expression, symbols)
    except Unknown:
        return
    if branch:
        if (encoded.imm - value) % (1 << mode):
            raise Miscompile(f"branch to '{source.text}' ({_hex(value)}) was encoded as '{_text(insn)}'")
        return
    bits = 8 * encoded.size
    if not -(1 << (bits - 1)) <= value < (1 << bits):
        raise Miscompile(f"immediate '{source.text}' ({_hex(value)}) does not fit the {bits}-bit operand of "
                         f"'{_text(insn)}'")
    if (encoded.imm - value) % (1 << bits):
        raise Miscompile(f"immediate '{source.text}' ({_hex(value)}) was encoded as '{_text(insn)}'")


def source_is_push(insn: CsInsn) -> bool:
    """A push of an immediate (the stack width is the mode's unless a size is named)."""
    return insn.mnemonic == "push"


def _names_a_label(expression: str, labels: frozenset[str]) -> bool:
    try:
        tokens = tokenize(expression)
    except Unknown:
        return False
    return any(token in labels for token in tokens)


def _text(insn: CsInsn) -> str:
    return f"{insn.mnemonic} {insn.op_str}".strip()


def _hex(value: int) -> str:
    return f"-{-value:#x}" if value < 0 else f"{value:#x}"


#: Data directives and the size of each value they emit.
DATA_SIZES = {".byte": 1, ".word": 2, ".short": 2, ".value": 2, ".2byte": 2, ".long": 4, ".int": 4, ".4byte": 4,
              ".quad": 8, ".8byte": 8}
#: Directives that emit N zero (or fill) bytes.
_SPACE = (".zero", ".space", ".skip")


def check_data_literals(statement: str) -> None:
    """Before keystone runs: a data directive's plain-number values must fit their size.

    Keystone hangs on some out-of-range values (``.word 0x10000, 1``), so values that are
    plain numbers are checked first; the rest is checked after assembly (``check_data``).
    """
    words = statement.split(None, 1)
    size = DATA_SIZES.get(words[0].lower())
    if size is None or len(words) < 2:
        return
    for argument in split_operands(words[1]):
        try:
            value = evaluate(argument, {})
        except Unknown:
            continue
        if not -(1 << (8 * size - 1)) <= value < (1 << (8 * size)):
            raise Miscompile(f"{words[0].lower()} value '{argument}' ({_hex(value)}) does not fit in {size} "
                             f"byte{'s' if size > 1 else ''}")


def check_data(statement: str, produced: LineBytes, symbols: Mapping[str, int]) -> None:
    """Raise ``Miscompile`` when a data directive's bytes are not the values it lists.

    Keystone silently emits nothing for ``.word 0x10000`` (and hangs on
    ``.word 0x10000, 1``).  Every value must fit its size (signed or unsigned); the line
    must produce exactly ``count * size`` bytes, and each known value its little-endian
    bytes.  ``.zero``/``.space``/``.skip N`` and ``.fill N, size`` must produce N (times
    size) bytes.
    """
    words = statement.split(None, 1)
    directive = words[0].lower()
    arguments = split_operands(words[1]) if len(words) > 1 else []
    if directive in DATA_SIZES:
        size = DATA_SIZES[directive]
        expected = bytearray()
        known = True
        for argument in arguments:
            try:
                value = evaluate(argument, symbols)
            except Unknown:
                known = False
                expected += bytes(size)
                continue
            if not -(1 << (8 * size - 1)) <= value < (1 << (8 * size)):
                raise Miscompile(f"{directive} value '{argument}' ({_hex(value)}) does not fit in {size} "
                                 f"byte{'s' if size > 1 else ''}")
            expected += (value % (1 << (8 * size))).to_bytes(size, "little")
        if len(produced.code) != len(expected):
            raise Miscompile(f"{directive} with {len(arguments)} value(s) should emit {len(expected)} bytes but "
                             f"keystone emitted {len(produced.code)}")
        if known and produced.code != bytes(expected):
            raise Miscompile(f"{directive} emitted {produced.code.hex(' ')} instead of {bytes(expected).hex(' ')}")
        return
    try:
        if directive in _SPACE and arguments:
            count = evaluate(arguments[0], symbols)
        elif directive == ".fill" and arguments:
            count = evaluate(arguments[0], symbols) * (evaluate(arguments[1], symbols) if len(arguments) > 1 else 1)
        else:
            return
    except Unknown:
        return
    if count >= 0 and len(produced.code) != count:
        raise Miscompile(f"{directive} should emit {count} bytes but keystone emitted {len(produced.code)}")

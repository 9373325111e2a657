"""Parsing the operands of one Intel-syntax instruction statement (for checking keystone).

``parse_instruction("mov rbx, qword ptr fs:[rax + 8]")`` gives the mnemonic and, per
operand, what the source asks for: a register, an immediate/target expression, or a memory
reference (segment, registers with their scales, displacement expression).  Text that is
certainly malformed (unbalanced ``[]`` or ``()``, an empty operand, a size keyword with
nothing after it, an operator with no right-hand side) raises ``MalformedOperand``: keystone
accepts several of these and encodes something else (``mov rax, [`` becomes
``movabs rax, [0]``).  Forms not modelled here come back with ``structure_known`` false so
the checker leaves them alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hgcmlab.guest_asm.expr import Unknown, evaluate, parentheses_balanced

_GPR64 = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp") + tuple(f"r{i}" for i in range(8, 16))
_GPR32 = ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp") + tuple(f"r{i}d" for i in range(8, 16))
_GPR16 = ("ax", "bx", "cx", "dx", "si", "di", "bp", "sp") + tuple(f"r{i}w" for i in range(8, 16))
_GPR8 = ("al", "bl", "cl", "dl", "ah", "bh", "ch", "dh", "sil", "dil", "bpl", "spl") + tuple(
    f"r{i}b" for i in range(8, 16))
#: Registers that may appear inside a memory reference.
ADDRESS_REGISTERS = frozenset(_GPR64 + _GPR32 + _GPR16 + ("rip", "eip"))
#: The "no index" pseudo registers of GNU as: they name no register.
ZERO_INDEX = frozenset(("riz", "eiz"))
_OTHER_REGISTERS = frozenset(_GPR8 + ("cs", "ds", "es", "fs", "gs", "ss")
                             + tuple(f"{kind}{i}" for kind in ("xmm", "ymm", "mm", "cr", "dr", "st", "k")
                                     for i in range(32)) + ("st",))
REGISTERS = ADDRESS_REGISTERS | ZERO_INDEX | _OTHER_REGISTERS
SEGMENTS = frozenset(("cs", "ds", "es", "fs", "gs", "ss"))

PREFIXES = frozenset(("lock", "rep", "repe", "repz", "repne", "repnz", "data16", "data32", "addr16", "addr32",
                      "notrack", "bnd", "xacquire", "xrelease"))

_SIZE = re.compile(r"(byte|word|dword|fword|qword|tbyte|oword|xmmword|ymmword|zmmword)\s+ptr\b\s*", re.IGNORECASE)
_BARE_SIZE = re.compile(r"(byte|word|dword|fword|qword|tbyte|oword|xmmword|ymmword|zmmword)(\s+ptr)?\s*$",
                        re.IGNORECASE)
_SEGMENT = re.compile(r"(cs|ds|es|fs|gs|ss)\s*:\s*", re.IGNORECASE)
_KEYWORD = re.compile(r"(offset|short|near)\s+", re.IGNORECASE)
_IDENT = re.compile(r"[A-Za-z_.$][\w.$]*")
_TRAILING_OPERATOR = re.compile(r"(<<|>>|[-+*/%&|^~])\s*$")


class MalformedOperand(Exception):
    """An operand that is certainly not valid syntax (the message says why)."""


@dataclass(frozen=True)
class Memory:
    """A memory reference as written: ``segment:[registers + displacement]``."""

    segment: str | None
    #: (register name, summed scale) pairs sorted by name (``[rax + rax*2]`` gives
    #: ``(("rax", 3),)``); riz/eiz are dropped.
    registers: tuple[tuple[str, int], ...]
    #: The displacement expression (``"0"`` when there is none).
    displacement: str
    #: False when the form is not modelled (registers inside parentheses, ``-reg``, ...).
    structure_known: bool


@dataclass(frozen=True)
class Operand:
    """One source operand: ``kind`` is "register", "memory" or "value" (immediate/target)."""

    kind: str
    text: str
    memory: Memory | None = None
    #: The size and segment keywords in front of a memory operand's address ("dword ptr fs:").
    prefix: str = ""
    #: For "value" operands: the expression without ``offset``/``short``/``near``.
    expression: str = ""


@dataclass(frozen=True)
class Instruction:
    """One instruction statement: its mnemonic (prefixes removed) and operands."""

    mnemonic: str
    operands: tuple[Operand, ...]
    #: The statement's text before its operands (prefixes and mnemonic).
    head: str = ""

    def with_operand(self, index: int, text: str) -> str:
        """The statement's text with operand ``index`` replaced by ``text``."""
        texts = [operand.text for operand in self.operands]
        texts[index] = text
        return f"{self.head} {', '.join(texts)}"


def split_operands(text: str) -> list[str]:
    """Split at commas outside brackets, parentheses and character literals."""
    if "'" not in text and "[" not in text and "(" not in text:
        return [part.strip() for part in text.split(",")]
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    index = 0
    while index < len(text):
        char = text[index]
        if char == "'":
            end = _literal_end(text, index)
            current.append(text[index:end])
            index = end
            continue
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            index += 1
            continue
        current.append(char)
        index += 1
    parts.append("".join(current).strip())
    return parts


def _literal_end(text: str, start: int) -> int:
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == "'":
            return index + 1
        index += 1
    return len(text)


def parse_instruction(statement: str) -> Instruction:
    """The mnemonic and operands of ``statement`` (labels and comments already removed)."""
    words = statement.split(None, 1)
    while words and words[0].lower() in PREFIXES:
        words = words[1].split(None, 1) if len(words) > 1 else []
    if not words:
        return Instruction("", (), statement)
    mnemonic = words[0].lower()
    rest = words[1].strip() if len(words) > 1 else ""
    head = statement[:len(statement) - len(rest)].strip() if rest else statement.strip()
    if not rest:
        return Instruction(mnemonic, (), head)
    return Instruction(mnemonic, tuple(parse_operand(part) for part in split_operands(rest)), head)


def parse_operand(text: str) -> Operand:
    """Classify one operand; ``MalformedOperand`` when it is certainly broken."""
    original = text
    if not text:
        raise MalformedOperand("empty operand")
    _check_balance(text)
    segment = None
    while True:
        size = _SIZE.match(text)
        seg = _SEGMENT.match(text)
        if size:
            text = text[size.end():]
        elif seg:
            segment = seg.group(1).lower()
            text = text[seg.end():]
        else:
            break
    if not text.strip():
        raise MalformedOperand(f"operand {original!r} names no register, value or memory")
    if _BARE_SIZE.fullmatch(text):
        raise MalformedOperand(f"size {original!r} without 'ptr' and a memory operand")
    prefix = original[:len(original) - len(text)]
    keyword = _KEYWORD.match(text)
    if keyword:
        text = text[keyword.end():]
    if _TRAILING_OPERATOR.search(text.replace("[", " ").replace("]", " ").rstrip()):
        raise MalformedOperand(f"operand {original!r} ends with an operator")
    if "[" in text:
        return Operand("memory", original, _parse_memory(text, segment, original), prefix)
    if segment is not None:
        return Operand("memory", original, Memory(segment, (), text.strip(), True), prefix)
    if text.strip().lower() in REGISTERS:
        return Operand("register", original)
    return Operand("value", original, expression=text.strip())


def _check_balance(text: str) -> None:
    depth = 0
    for char in re.sub(r"'(?:\\.|[^'\\])'", "", text):
        if char == "[":
            depth += 1
            if depth > 1:
                raise MalformedOperand(f"nested brackets in {text!r}")
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise MalformedOperand(f"']' without '[' in {text!r}")
    if depth:
        raise MalformedOperand(f"'[' without ']' in {text!r}")
    if not parentheses_balanced(text):
        raise MalformedOperand(f"unbalanced parentheses in {text!r}")


def _parse_memory(text: str, segment: str | None, original: str) -> Memory:
    open_at = text.index("[")
    close_at = text.index("]")
    outside = text[:open_at].strip()
    after = text[close_at + 1:].strip()
    if after:
        raise MalformedOperand(f"text after ']' in {original!r}")
    inside = text[open_at + 1:close_at].strip()
    if not inside:
        raise MalformedOperand(f"empty brackets in {original!r}")
    seg_inside = _SEGMENT.match(inside)
    if seg_inside and segment is None:
        segment = seg_inside.group(1).lower()
        inside = inside[seg_inside.end():]
    registers: dict[str, int] = {}
    constant_terms: list[str] = []
    known = True
    for sign, term in _terms(inside):
        names = {name.lower() for name in _IDENT.findall(term)} & REGISTERS
        if not names:
            constant_terms.append(f"{sign}({term})")
            continue
        parsed = _register_term(term)
        if parsed is None or sign == "-":
            known = False
            continue
        register, scale = parsed
        if register in ZERO_INDEX:
            continue
        registers[register] = registers.get(register, 0) + scale
    if outside:
        constant_terms.insert(0, f"+({outside})")
    displacement = "".join(constant_terms) or "0"
    return Memory(segment, tuple(sorted(registers.items())), displacement, known)


def _terms(inside: str) -> list[tuple[str, str]]:
    """Split ``inside`` into signed top-level terms (a sign inside parentheses stays put)."""
    terms: list[tuple[str, str]] = []
    depth = 0
    sign = "+"
    current: list[str] = []
    for char in inside:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if depth == 0 and char in "+-" and "".join(current).strip() and not _ends_with_operator(current):
            terms.append((sign, "".join(current).strip()))
            sign = char
            current = []
            continue
        if depth == 0 and char in "+-" and not "".join(current).strip():
            sign = char if sign == "+" else ("+" if char == "-" else "-")
            continue
        current.append(char)
    if "".join(current).strip():
        terms.append((sign, "".join(current).strip()))
    return terms


def _ends_with_operator(current: list[str]) -> bool:
    """True after ``*``, ``<<`` etc.: the sign that follows belongs to the term (``4*-1``)."""
    return bool(re.search(r"(<<|>>|[*/%&|^~(])\s*$", "".join(current)))


def _register_term(term: str) -> tuple[str, int] | None:
    """``reg``, ``reg*N`` or ``N*reg`` -> (reg, N); anything else None."""
    pieces = [piece.strip() for piece in term.split("*")]
    if len(pieces) == 1 and pieces[0].lower() in REGISTERS:
        return pieces[0].lower(), 1
    if len(pieces) == 2:
        for register, factor in ((pieces[0], pieces[1]), (pieces[1], pieces[0])):
            if register.lower() in REGISTERS:
                try:
                    return register.lower(), evaluate(factor, {})
                except Unknown:
                    return None
    return None

"""The assembler front end: keystone plus includes, ABI constants, symbols and a line map.

``assemble(source, mode=64, base=0x10000)`` turns an Intel-syntax program (GNU as
directives, ``#`` comments, ``;`` statement separators) into an ``AssembledProgram``.

How the symbol table and the address -> line map are made exact: keystone reports neither,
so before the program text goes to keystone a marker label is put in front of every source
line that is assembled at most once (macro and ``.rept`` bodies get none: their bytes
belong to the line that expands them), and after the program a trailer emits the address
of every marker and every user label with ``.quad`` (``-1`` when the label was never
defined, e.g. in a false ``.if`` branch).  One keystone call thus yields the code and every
address; the trailer is cut off again.  Labels emit no bytes, so the markers cannot change
the encoding.

Errors: keystone's error carries no line number, so on failure the program is re-assembled
as prefixes and the first failing line is found by bisection.  Each prefix is made
self-contained: blocks open at the cut are closed, labels defined after the cut are
defined (at the cut) so forward references still resolve, and an end marker checks that
keystone did not silently stop early (it does on some invalid instructions).  A prefix
fails when keystone errors, crashes, prints an LLVM "error:" diagnostic or truncates.  Only
the error path pays for this.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from hgcmlab.guest_asm.cache import BoundedCache
from hgcmlab.guest_asm.constants import program_constants
from hgcmlab.guest_asm.engine import KeystoneCrash, KeystoneTimeout, KsResult, run_keystone
from hgcmlab.guest_asm.errors import AssemblyError, AssemblyTimeout
from hgcmlab.guest_asm.expand import Expanded, Macro, definitions, expand
from hgcmlab.guest_asm.expr import Unknown, tokenize
from hgcmlab.guest_asm.operands import REGISTERS, split_operands
from hgcmlab.guest_asm.source import SourceLine, SourceLocation, identifiers, load_source, scan
from hgcmlab.guest_asm.verify import DATA_SIZES, LineBytes, Miscompile, check_data, check_data_literals, check_line_cached

#: Where programs are loaded unless the caller says otherwise (the machine's convention).
DEFAULT_BASE = 0x10000

_MARK = "__hgcm_L"
_END = "__hgcm_end"
_UNDEFINED = 0xFFFFFFFFFFFFFFFF
#: Texts (sha256, mode, base) already checked, with the rewrites the check asked for.
_MAX_ROUNDS = 64
_checked: BoundedCache[tuple[bytes, int, int], dict[int, str]] = BoundedCache(4096)
_MACRO_NAME = re.compile(r"\.macro\s+([A-Za-z_.$][\w.$]*)", re.IGNORECASE)


@dataclass(frozen=True)
class LineMap:
    """Address ranges of the source lines that produced bytes, in address order.

    ``entries[i] = (start, end, location)``: the bytes ``[start, end)`` came from
    ``location`` (a macro invocation owns its whole expansion).
    """

    entries: tuple[tuple[int, int, SourceLocation], ...]
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(entry[0] for entry in self.entries))

    def source_at(self, address: int) -> SourceLocation | None:
        """The line whose bytes contain ``address``, or None outside the program."""
        index = bisect.bisect_right(self._starts, address) - 1
        if index < 0:
            return None
        start, end, location = self.entries[index]
        return location if start <= address < end else None

    def address_of(self, file: str, line: int) -> int | None:
        """Start address of the bytes of ``file:line`` (None when it produced none)."""
        for start, _end, location in self.entries:
            if location.line == line and (location.file == file or Path(location.file).name == file):
                return start
        return None

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True)
class AssembledProgram:
    """A flat program: ``code`` to load at ``base``, entered at ``entry``.

    ``symbols`` maps every label defined outside macro/repeat bodies to its absolute
    address; ``lines`` maps addresses back to source lines.  The ``segments``, ``name``,
    ``source_at`` and ``symbol_at`` members let a machine load it like any program image.
    """

    code: bytes
    base: int
    entry: int
    mode: int
    symbols: dict[str, int]
    lines: LineMap
    name: str = "<source>"
    constants: dict[str, int | str] = field(default_factory=dict, repr=False)

    @property
    def end(self) -> int:
        """First address after the code."""
        return self.base + len(self.code)

    @property
    def segments(self) -> list[tuple[int, bytes]]:
        """What to place in guest memory: one segment."""
        return [(self.base, self.code)]

    def source_at(self, address: int) -> SourceLocation | None:
        """The source line ``address`` was assembled from."""
        return self.lines.source_at(address)

    def symbol_at(self, address: int) -> str | None:
        """``name`` or ``name+0xoff`` of the closest label at or below ``address``."""
        candidates = [(value, name) for name, value in self.symbols.items() if value <= address]
        if not candidates:
            return None
        # Highest address wins; among aliases the alphabetically first name.
        best = max(candidates, key=lambda item: (item[0], [-ord(c) for c in item[1]]))
        offset = address - best[0]
        return best[1] if offset == 0 else f"{best[1]}+{offset:#x}"


def assemble(source: str | Path, *, mode: int = 64, base: int = DEFAULT_BASE, filename: str | None = None,
             include_dirs: tuple[str | Path, ...] = (), defines: dict[str, int | str] | None = None,
             timeout: float = 10.0) -> AssembledProgram:
    """Assemble ``source`` (a path, or program text) for ``mode`` (64 or 32) at ``base``.

    ``filename`` names text sources in messages and anchors their relative includes.
    ``defines`` adds assembler constants (ints or expression strings).  ``timeout`` bounds
    each keystone run in seconds.  Raises ``AssemblyError`` (with ``location`` when the
    failing line is known) or its subclass ``AssemblyTimeout``.
    """
    if mode not in (32, 64):
        raise ValueError(f"mode must be 64 or 32, not {mode}")
    if not 0 <= base < (1 << 32):
        raise ValueError(f"base {base:#x} must lie below 4 GiB (requests are addressed with 32 bits)")
    lines, name = load_source(source, filename, tuple(include_dirs))
    _check_data_literals(lines)
    constants = program_constants(mode, defines)
    prelude = _prelude(lines, constants, set(defines or ()))
    labels = _labels(lines)
    equates = _single_equates(prelude, lines)
    macros = _macro_names(lines)
    rewritten: dict[int, str] = {}
    # Each round rewrites at least one more operand into the absolute form (a rewritten
    # operand that is still wrong is an error), so the rounds are bounded by the operands;
    # _MAX_ROUNDS is a backstop.
    for _round in range(_MAX_ROUNDS):
        text = _program_text(prelude, lines, labels, equates, rewritten)
        try:
            result = _run(text, mode, base, timeout, name)
        except KeystoneCrash:
            raise _locate_error(prelude, lines, None, mode, base, timeout, name) from None
        if not result.ok or _diag_error(result.diag):
            raise _locate_error(prelude, lines, result, mode, base, timeout, name)
        code, values, known, symbols = _read_result(result, prelude, lines, labels, equates, mode, base, timeout,
                                                    name)
        # The check is a function of the text keystone saw (its output is deterministic), so
        # a text that passed before (the same program assembled again) is not checked again.
        digest = (hashlib.sha256(text.encode()).digest(), mode, base)
        rewrites = _checked.get(digest)
        if rewrites is None:
            rewrites = _verify(lines, values, code, base, mode, known, frozenset(symbols), macros, rewritten)
            _checked.put(digest, rewrites)
        if not rewrites:
            break
        # Keystone mis-encoded absolute addresses the rewritten form encodes exactly; lengths
        # change, so assemble (and check) again.
        rewritten.update(rewrites)
    else:
        index = min(rewrites)
        raise AssemblyError(f"absolute operands still mis-encoded after {_MAX_ROUNDS} rewrites",
                            lines[index].location)
    line_map = _line_map(lines, values, base + len(code), macros)
    entry = symbols.get("_start", base)
    return AssembledProgram(code, base, entry, mode, symbols, line_map, name, constants)


def _check_data_literals(lines: list[SourceLine]) -> None:
    for line in lines:
        for text in line.statement.directive_texts:
            if text.split(None, 1)[0].lower() in DATA_SIZES:
                try:
                    check_data_literals(text)
                except Miscompile as error:
                    raise AssemblyError(str(error), line.location) from None


def _read_result(result: KsResult, prelude: list[str], lines: list[SourceLine], labels: list[str],
                 equates: list[str], mode: int, base: int, timeout: float,
                 name: str) -> tuple[bytes, dict[str, int], dict[str, int], dict[str, int]]:
    """Split keystone's output into code and trailer: (code, marker/label values, known
    values of labels and equates for the verifier, defined labels)."""
    trailer_names = [_END] + [f"{_MARK}{i}" for i, line in enumerate(lines) if not line.body_depth] + labels
    size = 8 * len(trailer_names) + 16 * len(equates)
    if len(result.code) < size:
        raise _locate_error(prelude, lines, result, mode, base, timeout, name)
    code, trailer = result.code[:-size], result.code[-size:]
    words = [int.from_bytes(trailer[i:i + 8], "little") for i in range(0, size, 8)]
    values = dict(zip(trailer_names, words))
    if values[_END] != base + len(code):
        # Keystone stopped early without reporting an error.
        raise _locate_error(prelude, lines, result, mode, base, timeout, name)
    symbols = {label: values[label] for label in labels if values[label] != _UNDEFINED}
    equate_words = words[len(trailer_names):]
    known = dict(symbols)
    for position, equate in enumerate(equates):
        defined, value = equate_words[2 * position], equate_words[2 * position + 1]
        if defined:
            known[equate] = value - (1 << 64) if value >> 63 else value
    return code, values, known, symbols


def _prelude(lines: list[SourceLine], constants: dict[str, int | str], defines: set[str]) -> list[str]:
    """``.equ`` lines for the constants the program mentions (plus MODE and all defines)."""
    used: set[str] = set()
    for line in lines:
        used |= identifiers(line.location.text)
    names = sorted((used & constants.keys()) | defines | {"MODE"})
    return [f".equ {n}, {constants[n]}" for n in names]


def _labels(lines: list[SourceLine]) -> list[str]:
    seen: dict[str, None] = {}
    for line in lines:
        if not line.body_depth:
            for label in line.statement.labels:
                seen.setdefault(label)
    return list(seen)


def _single_equates(prelude: list[str], lines: list[SourceLine]) -> list[str]:
    """Symbols set exactly once outside macro/repeat bodies to a plain expression.

    Their values (read back through the trailer) let the verifier judge operands that use
    them.  A symbol set twice (both halves of ``.if MODE == 64``, or redefined) has no single
    value, and one set to a register (``.equ R, rax``) cannot be emitted with ``.quad``.
    """
    counts: dict[str, int] = {}
    plain: set[str] = set()
    body_names: set[str] = set()
    statements = [(scan(line), False) for line in prelude] + [(line.statement, bool(line.body_depth))
                                                              for line in lines]
    for statement, in_body in statements:
        for name, expression in statement.equates:
            if in_body:
                body_names.add(name)
                continue
            counts[name] = counts.get(name, 0) + 1
            if _plain_expression(expression):
                plain.add(name)
    return sorted(name for name, count in counts.items() if count == 1 and name in plain and name not in body_names)


def _plain_expression(expression: str) -> bool:
    try:
        tokens = tokenize(expression)
    except Unknown:
        return False
    return not any(token.lower() in REGISTERS for token in tokens)


def _program_text(prelude: list[str], lines: list[SourceLine], labels: list[str], equates: list[str],
                  rewritten: dict[int, str]) -> str:
    out = list(prelude)
    for index, line in enumerate(lines):
        if not line.body_depth:
            out.append(f"{_MARK}{index}:")
        out.append(rewritten.get(index, line.location.text))
    out.append(f"{_END}:")
    out.append(f".quad {_END}")
    for index, line in enumerate(lines):
        if not line.body_depth:
            out.extend(_trailer_entry(f"{_MARK}{index}"))
    for label in labels:
        out.extend(_trailer_entry(label))
    for equate in equates:
        out.extend([f".ifdef {equate}", f".quad 1, {equate}", ".else", ".quad 0, 0", ".endif"])
    return "\n".join(out) + "\n"


def _trailer_entry(name: str) -> list[str]:
    return [f".ifdef {name}", f".quad {name}", ".else", ".quad -1", ".endif"]


def _run(text: str, mode: int, base: int, timeout: float, name: str) -> KsResult:
    try:
        return run_keystone(text, mode=mode, base=base, timeout=timeout)
    except KeystoneTimeout:
        raise AssemblyTimeout(f"{name}: keystone did not finish within {timeout:g} s "
                              "(its worker was stopped)") from None


def _line_map(lines: list[SourceLine], values: dict[str, int], end: int, macros: set[str]) -> LineMap:
    starts = [(i, values[f"{_MARK}{i}"]) for i, line in enumerate(lines) if not line.body_depth]
    starts = [(i, address) for i, address in starts if address != _UNDEFINED]
    entries: list[tuple[int, int, SourceLocation]] = []
    for position, (index, start) in enumerate(starts):
        stop = starts[position + 1][1] if position + 1 < len(starts) else end
        statement = lines[index].statement
        if stop > start:
            entries.append((start, stop, lines[index].location))
        elif statement.has_instruction and not set(statement.mnemonics) & macros:
            # Keystone sometimes "assembles" an invalid instruction into nothing.
            raise AssemblyError("keystone produced no bytes for this instruction", lines[index].location)
    return LineMap(tuple(entries))


def _verify(lines: list[SourceLine], values: dict[str, int], code: bytes, base: int, mode: int,
            known: dict[str, int], labels: frozenset[str], macros: set[str],
            rewritten: dict[int, str]) -> dict[int, str]:
    """Check every instruction of every line assembled once against its source operands.

    Macro invocations are checked against their expansion (``expand.py``).  Returns the
    rewrites (line index -> text) that give the intended encoding of lines keystone
    mis-encoded; raises ``AssemblyError`` for anything else it finds wrong.
    """
    rewrites: dict[int, str] = {}
    openers = definitions(lines)
    active: dict[str, Macro] = {}
    starts = [(i, values[f"{_MARK}{i}"]) for i, line in enumerate(lines) if not line.body_depth]
    starts = [(i, address) for i, address in starts if address != _UNDEFINED]
    for position, (index, start) in enumerate(starts):
        if index in openers:
            active[openers[index].name] = openers[index]
            continue
        statement = lines[index].statement
        stop = starts[position + 1][1] if position + 1 < len(starts) else base + len(code)
        produced = LineBytes(start, code[start - base:stop - base])
        location = lines[index].location
        if not statement.has_instruction and len(statement.directives) == 1:
            try:
                check_data(statement.directive_texts[0], produced, known)
            except Miscompile as error:
                raise AssemblyError(str(error), location) from None
            continue
        if not statement.has_instruction or statement.directives:
            continue
        text = rewritten.get(index, location.text)
        if index in rewritten:
            statement = scan(text)
        if set(statement.mnemonics) & macros:
            new = _verify_expansion(statement.instructions, text, produced, mode, known, labels, active, location)
            if new is not None:
                rewrites[index] = new
            continue
        try:
            check_line_cached(statement.instructions, produced, mode, known, labels, frozenset(identifiers(text)),
                              strict_count=True)
        except Miscompile as error:
            if error.rewrite is None:
                raise AssemblyError(str(error), location) from None
            old = statement.instructions[error.rewrite[0]]
            new = text.replace(old, error.rewrite[1], 1)
            if new == text:
                # The absolute form itself came out wrong: nothing left to try.
                raise AssemblyError(str(error), location) from None
            rewrites[index] = new
    return rewrites


def _verify_expansion(statements: tuple[str, ...], text: str, produced: LineBytes, mode: int,
                      known: dict[str, int], labels: frozenset[str], active: dict[str, Macro],
                      location: SourceLocation) -> str | None:
    """Check the bytes of a line of macro invocations against its expansion (when exact).

    Returns the line rewritten when a mis-encoded absolute operand is, verbatim, an
    argument of an invocation on it (the argument is then written in the absolute form,
    which addresses the same byte wherever the macro uses it); None when all is well.
    """
    expanded: list[Expanded] = []
    for statement in statements:
        if statement.split(None, 1)[0].lower() in active:
            inner = expand(statement, active, known)
            if inner is None:
                return None
            expanded.extend(inner)
        else:
            expanded.append(Expanded(statement, location))
    texts = tuple(item.statement for item in expanded)
    try:
        check_line_cached(texts, produced, mode, known, labels, frozenset(identifiers(" ".join(texts))))
    except Miscompile as error:
        if error.operand_fix is not None:
            new = _rewrite_argument(statements, text, active, *error.operand_fix)
            if new is not None and new != text:
                return new
        where = ""
        if error.position is not None:
            item = expanded[error.position]
            where = (f"; in the expansion: '{item.statement}' from {item.origin.file}:{item.origin.line}: "
                     f"{item.origin.text.strip()}")
        raise AssemblyError(f"{error}{where}", location) from None


def _rewrite_argument(statements: tuple[str, ...], text: str, active: dict[str, Macro], written: str,
                      replacement: str) -> str | None:
    """``text`` with the first invocation argument that is exactly ``written`` replaced."""
    for statement in statements:
        words = statement.split(None, 1)
        if len(words) < 2 or words[0].lower() not in active:
            continue
        arguments = split_operands(words[1])
        for position, argument in enumerate(arguments):
            if argument.strip() == written.strip():
                arguments[position] = replacement
                return text.replace(statement, f"{words[0]} {', '.join(arguments)}", 1)
    return None


def _macro_names(lines: list[SourceLine]) -> set[str]:
    names: set[str] = set()
    for line in lines:
        if ".macro" in line.statement.directives:
            match = _MACRO_NAME.search(line.location.text)
            if match:
                names.add(match.group(1).lower())
    return names


def _diag_error(diag: str) -> str | None:
    for line in diag.splitlines():
        if "error:" in line:
            return line.strip()
    return None


def _locate_error(prelude: list[str], lines: list[SourceLine], failure: KsResult | None, mode: int, base: int,
                  timeout: float, name: str) -> AssemblyError:
    """Find the first line at which the program fails and describe the failure there."""
    # The last definition counts: a label defined in both halves of ``.if MODE == 64 ...
    # .else ...`` is defined (for the mode being assembled) only by the second one.
    last_defined_at: dict[str, int] = {}
    for index, line in enumerate(lines):
        for label in line.statement.labels:
            last_defined_at[label] = index

    def attempt(count: int) -> str | None:
        """None when the first ``count`` lines assemble, else what went wrong."""
        later = [label for label, index in last_defined_at.items() if index >= count]
        closers = list(lines[count - 1].closers) if count else []
        # Only labels the prefix left undefined are defined at the cut (a prefix may already
        # have defined one in a branch that is true for this mode).
        stand_ins = [f".ifndef {label}\n{label}:\n.endif" for label in later]
        text = "\n".join(prelude + [line.location.text for line in lines[:count]] + closers
                         + stand_ins + [f"{_END}:", f".quad {_END}"]) + "\n"
        try:
            result = _run(text, mode, base, timeout, name)
        except KeystoneCrash as crash:
            return f"keystone crashed ({crash})"
        diag = _diag_error(result.diag)
        if not result.ok:
            return f"keystone: {result.message}" + (f" ({diag})" if diag else "")
        if diag:
            return f"keystone: {diag}"
        if len(result.code) < 8 or int.from_bytes(result.code[-8:], "little") != base + len(result.code) - 8:
            return "keystone stopped assembling here without an error (unsupported or invalid statement)"
        return None

    if attempt(len(lines)) is None:
        detail = failure.message if failure else "unknown failure"
        return AssemblyError(f"{name}: keystone: {detail}")
    low, high = 1, len(lines)
    while low < high:
        middle = (low + high) // 2
        if attempt(middle) is None:
            low = middle + 1
        else:
            high = middle
    return AssemblyError(attempt(low) or "keystone failed", lines[low - 1].location)

"""Expanding macro invocations the way keystone does, so their instructions can be checked.

Keystone reports nothing about the lines a macro invocation expands to, so the verifier
(``verify.py``) re-expands each invocation here and compares the resulting instruction
statements with the bytes the invocation produced.  Only what can be expanded exactly is
expanded: parameters (``\\name``, defaults ``name=value``), ``\\@`` (its labels have no
known address), nested invocations, ``.if``/``.ifeq``/``.ifne``/... ``.else``/``.endif``
whose conditions evaluate exactly, ``.equ``/``.set``, labels and instructions, with
arguments separated by commas.  Anything else (a data or alignment directive, ``:vararg``,
``.ifdef``, an undecidable condition, a nested ``.macro``, named or space-separated
arguments) makes ``expand`` return None: that invocation is left unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from hgcmlab.guest_asm.cache import BoundedCache
from hgcmlab.guest_asm.expr import Unknown, evaluate
from hgcmlab.guest_asm.operands import split_operands
from hgcmlab.guest_asm.source import SourceLine, SourceLocation, scan

#: Recursion bound for macros invoking macros.
MAX_DEPTH = 32

_MACRO = re.compile(r"\s*\.macro\s+([A-Za-z_.$][\w.$]*)\s*,?\s*(.*)$", re.IGNORECASE)
_PARAM_REF = re.compile(r"\\(@|\(\)|[A-Za-z_][\w]*)")
#: A comparison operator (``<`` and ``>`` not part of ``<<``/``>>``).
_COMPARISON = re.compile(r"==|!=|<>|<=|>=|(?<![<>])<(?![<>=])|(?<![<>=])>(?![>=])")
_UNKNOWN_LABEL = "__hgcm_expansion_label"
_NAMED_ARGUMENT = re.compile(r"\s*[A-Za-z_][\w]*\s*=(?!=)")
#: Whitespace between two operands of an argument: LLVM's macro argument parser keeps a
#: space that is next to an operator (``w_name + 4``) inside the argument and splits at
#: any other (``a b`` is two arguments).
_SPACE_SEPARATED = re.compile(r"[^-+*/%&|^~<>=!(\[,:\s]\s+[^-+*/%&|^~<>=!)\]\s]")


@dataclass(frozen=True)
class Macro:
    """One ``.macro`` definition: parameters ``(name, default)`` and its body lines."""

    name: str
    params: tuple[tuple[str, str | None], ...]
    body: tuple[SourceLine, ...]
    #: False when the definition uses something ``expand`` does not model.
    supported: bool


@dataclass(frozen=True)
class Expanded:
    """One instruction statement of an expansion and the body line it came from."""

    statement: str
    origin: SourceLocation


def definitions(lines: list[SourceLine]) -> dict[int, Macro]:
    """Every top-level ``.macro`` definition by the index of its opening line."""
    found: dict[int, Macro] = {}
    index = 0
    while index < len(lines):
        opener_index = index
        line = lines[index]
        if line.body_depth or ".macro" not in line.statement.directives:
            index += 1
            continue
        opener = _MACRO.match(line.location.text.split("#", 1)[0])
        if opener is None:
            index += 1
            continue
        params, supported = _parameters(opener.group(2))
        body: list[SourceLine] = []
        index += 1
        while index < len(lines) and lines[index].body_depth:
            inner = lines[index]
            if ".endm" in inner.statement.directives and inner.body_depth == 1:
                break
            if any(d in (".macro", ".rept", ".irp", ".irpc") for d in inner.statement.directives):
                supported = False
            body.append(inner)
            index += 1
        found[opener_index] = intern(Macro(opener.group(1).lower(), params, tuple(body), supported))
        index += 1
    return found


def _parameters(text: str) -> tuple[tuple[tuple[str, str | None], ...], bool]:
    params: list[tuple[str, str | None]] = []
    supported = True
    for part in (p for p in re.split(r"\s*,\s*|\s+", text.strip()) if p):
        name, _, default = part.partition("=")
        if ":" in name:
            name, _, qualifier = name.partition(":")
            if qualifier.strip().lower() != "req":
                supported = False
        params.append((name.strip(), default.strip() if default else None))
    return tuple(params), supported


class _Scope(Mapping[str, int]):
    """Symbols during one expansion: the expansion's own ``.equ``s over the program's.

    Every lookup that reaches the program's symbols is recorded in ``used`` (name -> value
    or None) so a cached expansion is reused only where those values are the same.
    """

    def __init__(self, outer: Mapping[str, int], used: dict[str, int | None]) -> None:
        self.outer = outer
        self.own: dict[str, int | None] = {}
        self.used = used

    def _get(self, name: str) -> int | None:
        if name in self.own:
            return self.own[name]
        if isinstance(self.outer, _Scope):
            return self.outer._get(name)
        value = self.outer.get(name)
        self.used[name] = value
        return value

    def __getitem__(self, name: str) -> int:
        value = self._get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._get(name) is not None

    def __iter__(self):  # noqa: ANN204 - not needed by the evaluator
        raise TypeError("a scope is not iterable")

    def __len__(self) -> int:
        raise TypeError("a scope has no length")


#: statement -> [(symbols used, macros used, expansion)].  Macro objects are interned so
#: their identity stands for their definition; entries hold the objects they compare with
#: (``is``), so an identity is never mistaken for a recycled one.
_Variant = tuple[tuple[tuple[str, int | None], ...], tuple[tuple[str, Macro | None], ...],
                 tuple[Expanded, ...] | None]
_expansions: BoundedCache[str, tuple[_Variant, ...]] = BoundedCache(16384)
_interned: dict[tuple[object, ...], Macro] = {}
_VARIANTS_KEPT = 8
_INTERNED_KEPT = 4096


def intern(macro: Macro) -> Macro:
    """The one ``Macro`` object for this definition (same name, parameters, body lines)."""
    key = (macro.name, macro.params, macro.supported,
           tuple((line.location.file, line.location.line, line.location.text) for line in macro.body))
    if key not in _interned and len(_interned) >= _INTERNED_KEPT:
        _interned.clear()
    return _interned.setdefault(key, macro)


def expand(statement: str, macros: Mapping[str, Macro],
           symbols: Mapping[str, int]) -> tuple[Expanded, ...] | None:
    """The instruction statements ``statement`` (a macro invocation) expands to, or None.

    ``macros`` are the definitions in force (interned, see ``intern``); ``symbols`` the
    values of the program's symbols.
    """
    variants = _expansions.get(statement, ()) or ()
    for used_symbols, used_macros, result in variants:
        if all(symbols.get(name) == value for name, value in used_symbols) and all(
                macros.get(name) is macro for name, macro in used_macros):
            return result
    used: dict[str, int | None] = {}
    invoked: dict[str, Macro | None] = {}
    expanded = _expand(statement, macros, _Scope(symbols, used), 0, invoked)
    result = tuple(expanded) if expanded is not None else None
    variant = (tuple(used.items()), tuple(invoked.items()), result)
    _expansions.put(statement, (variants + (variant,))[-_VARIANTS_KEPT:])
    return result


def _expand(statement: str, macros: Mapping[str, Macro], outer: _Scope, depth: int,
            invoked: dict[str, Macro | None]) -> list[Expanded] | None:
    words = statement.split(None, 1)
    name = words[0].lower() if words else ""
    macro = macros.get(name)
    invoked[name] = macro
    if macro is None or not macro.supported or depth > MAX_DEPTH:
        return None
    arguments = split_operands(words[1]) if len(words) > 1 else []
    if len(arguments) == 1 and not arguments[0]:
        arguments = []
    if len(arguments) > len(macro.params) or any(_NAMED_ARGUMENT.match(argument) for argument in arguments):
        return None
    if any(_SPACE_SEPARATED.search(argument.strip()) for argument in arguments):
        return None  # keystone may take the space as an argument separator
    values: dict[str, str] = {}
    for position, (param, default) in enumerate(macro.params):
        given = arguments[position] if position < len(arguments) else ""
        values[param] = given if given else (default or "")
    scope = _Scope(outer, outer.used)
    out: list[Expanded] = []
    # (taking, seen_true) per open .if: taking = this branch is assembled.
    conditions: list[tuple[bool, bool]] = []
    for line in macro.body:
        text = _substitute(line.location.text.split("#", 1)[0], values)
        if text is None:
            return None
        statement_info = scan(text)
        directives = statement_info.directives
        taking = all(state for state, _seen in conditions)
        if directives and directives[0].startswith(".if"):
            if len(directives) != 1 or statement_info.has_instruction:
                return None
            if not taking:
                conditions.append((False, True))
                continue
            verdict = _condition(directives[0], text, scope)
            if verdict is None:
                return None
            conditions.append((verdict, verdict))
            continue
        if directives and directives[0] in (".else", ".endif", ".elseif"):
            if not conditions or directives[0] == ".elseif" or len(directives) != 1:
                return None
            _state, seen = conditions.pop()
            if directives[0] == ".else":
                conditions.append((not seen, True))
            continue
        if not taking:
            continue
        for equate, expression in statement_info.equates:
            try:
                scope.own[equate] = evaluate(expression, scope)
            except Unknown:
                scope.own[equate] = None
        if any(d not in (".equ", ".set", "=") for d in directives):
            return None
        for instruction in statement_info.instructions:
            first = instruction.split(None, 1)[0].lower()
            if first in macros:
                inner = _expand(instruction, macros, scope, depth + 1, invoked)
                if inner is None:
                    return None
                out.extend(inner)
            else:
                invoked.setdefault(first, None)
                out.append(Expanded(instruction, line.location))
    return None if conditions else out


def _substitute(text: str, values: Mapping[str, str]) -> str | None:
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name == "()":
            return ""
        if name == "@":
            return _UNKNOWN_LABEL
        if name not in values:
            missing = True
            return match.group(0)
        return values[name]

    result = _PARAM_REF.sub(replace, text)
    return None if missing else result


def _condition(directive: str, text: str, symbols: Mapping[str, int]) -> bool | None:
    rest = text.strip().split(None, 1)
    argument = rest[1].strip() if len(rest) > 1 else ""
    if directive in (".ifdef", ".ifndef"):
        return None  # which names keystone has defined at that point is not known here
    try:
        if directive == ".if":
            return _truth(argument, symbols)
        value = evaluate(argument, symbols)
    except Unknown:
        return None
    checks = {".ifeq": value == 0, ".ifne": value != 0, ".ifgt": value > 0, ".ifge": value >= 0,
              ".iflt": value < 0, ".ifle": value <= 0}
    return checks.get(directive)


def _truth(text: str, symbols: Mapping[str, int]) -> bool:
    if "&&" in text or "||" in text or "!" in text.replace("!=", ""):
        raise Unknown("logical operators")
    comparisons = list(_COMPARISON.finditer(text))
    if len(comparisons) > 1:
        raise Unknown("several comparisons")
    if not comparisons:
        return evaluate(text, symbols) != 0
    match = comparisons[0]
    left = evaluate(text[:match.start()], symbols)
    right = evaluate(text[match.end():], symbols)
    return {"==": left == right, "!=": left != right, "<>": left != right, "<=": left <= right,
            ">=": left >= right, "<": left < right, ">": left > right}[match.group(0)]

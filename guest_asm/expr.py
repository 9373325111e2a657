"""Evaluating assembler expressions the way keystone does, for checking its output.

``evaluate(text, symbols)`` returns the integer value of an Intel-syntax operand
expression, or raises ``Unknown`` when it cannot tell the value exactly (an identifier it
has no value for, a form it does not model).  Callers treat ``Unknown`` as "do not check".

Syntax modelled (keystone 0.9.2's, measured): numbers ``0x1f``, ``1fh``, ``0b101``, octal
``017`` (a leading zero), decimal; character literals ``'A'`` and ``'\\n'``; identifiers;
unary ``- + ~``; binary operators with C precedence (keystone evaluates
``1 << 4 + 1`` as 32 and ``6 | 1 + 1`` as 6): ``* / %``, ``+ -``, ``<< >>``, ``&``, ``^``,
``|``; parentheses.  Division of negative values is not modelled (``Unknown``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<char>'(?:\\.|[^'\\])')
    | (?P<number>0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9][0-9a-fA-F]*[hH]|[0-9]+)(?![\w.$])
    | (?P<name>[A-Za-z_.$][\w.$]*)
    | (?P<op><<|>>|[-+*/%&|^~()])
    )""", re.VERBOSE)

_ESCAPES = {"n": 10, "t": 9, "r": 13, "0": 0, "\\": 92, "'": 39, '"': 34, "a": 7, "b": 8, "f": 12, "v": 11}

#: Binary operators by precedence level, tighter binding higher (C's order).
_PRECEDENCE = {"|": 1, "^": 2, "&": 3, "<<": 4, ">>": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}


class Unknown(Exception):
    """The expression's value cannot be determined exactly here."""


@functools.lru_cache(maxsize=65536)
def tokenize(text: str) -> tuple[str, ...]:
    """The tokens of ``text``; ``Unknown`` when something is not part of the modelled syntax."""
    tokens: list[str] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if not match or match.end() == position:
            raise Unknown(f"unexpected text {stripped[position:]!r}")
        tokens.append(match.group(match.lastgroup or "op"))
        position = match.end()
    return tuple(tokens)


def _number(token: str) -> int:
    lower = token.lower()
    if lower.startswith("0x"):
        return int(lower[2:], 16)
    if lower.startswith("0b"):
        return int(lower[2:], 2)
    if lower.endswith("h"):
        return int(lower[:-1], 16)
    if len(lower) > 1 and lower.startswith("0"):
        if any(c not in "01234567" for c in lower):
            raise Unknown(f"not an octal number: {token}")
        return int(lower, 8)
    if not lower.isdigit():
        raise Unknown(f"not a number: {token}")
    return int(lower)


def _char(token: str) -> int:
    body = token[1:-1]
    if body.startswith("\\"):
        if body[1:] not in _ESCAPES:
            raise Unknown(f"escape {body!r}")
        return _ESCAPES[body[1:]]
    return ord(body)


class _Parser:
    def __init__(self, tokens: tuple[str, ...], symbols: Mapping[str, int]) -> None:
        self.tokens = tokens
        self.symbols = symbols
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise Unknown("expression ends early")
        self.position += 1
        return token

    def binary(self, minimum: int) -> int:
        """Precedence climbing: operators binding at least as tightly as ``minimum``."""
        value = self.unary()
        while True:
            operator = self.peek()
            level = _PRECEDENCE.get(operator) if operator is not None else None
            if level is None or level < minimum:
                return value
            self.position += 1
            value = _apply(operator, value, self.binary(level + 1))  # type: ignore[arg-type]

    def unary(self) -> int:
        token = self.take()
        if token == "-":
            return -self.unary()
        if token == "+":
            return self.unary()
        if token == "~":
            return ~self.unary()
        if token == "(":
            value = self.binary(1)
            if self.take() != ")":
                raise Unknown("unbalanced parenthesis")
            return value
        if token.startswith("'"):
            return _char(token)
        if token[0].isdigit():
            return _number(token)
        if token[0].isalpha() or token[0] in "_.$":
            if token in self.symbols:
                return self.symbols[token]
            raise Unknown(f"no value for {token}")
        raise Unknown(f"unexpected {token!r}")


def _apply(operator: str, left: int, right: int) -> int:
    if operator == "+":
        return left + right
    if operator == "-":
        return left - right
    if operator == "*":
        return left * right
    if operator in ("/", "%"):
        if right <= 0 or left < 0:
            raise Unknown("division of negative values or by zero")
        return left // right if operator == "/" else left % right
    if operator in ("<<", ">>"):
        if not 0 <= right < 64:
            raise Unknown("shift count outside 0..63")
        return left << right if operator == "<<" else left >> right
    if operator == "&":
        return left & right
    if operator == "^":
        return left ^ right
    return left | right


def evaluate(text: str, symbols: Mapping[str, int]) -> int:
    """The value of ``text`` with ``symbols`` for identifiers (``Unknown`` if not exact)."""
    tokens = tokenize(text)
    if not tokens:
        raise Unknown("empty expression")
    if len(tokens) == 1:
        return _Parser(tokens, symbols).unary()
    parser = _Parser(tokens, symbols)
    value = parser.binary(1)
    if parser.peek() is not None:
        raise Unknown(f"unexpected {parser.peek()!r}")
    return value


def parentheses_balanced(text: str) -> bool:
    """True when every ``(`` in ``text`` (outside character literals) has its ``)``."""
    depth = 0
    for token in _rough_tokens(text):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _rough_tokens(text: str) -> list[str]:
    return re.findall(r"'(?:\\.|[^'\\])'|[()]", text)

"""Source handling: locations, lexing helpers and ``.include`` expansion.

Keystone silently ignores ``.include``, so includes are expanded here, before keystone sees
the text.  An included file is searched relative to the including file, then in the
caller's ``include_dirs``, then in the bundled ``guest_asm/lib/``.  Each file is included at
most once per program (include-once); including a file that is still being expanded is a
cycle and an error.  Includes are expanded unconditionally (before keystone evaluates
``.if``), so the routine files guard their mode-specific halves with ``.if MODE == 64``
instead of choosing files conditionally.

Syntax notes the scanners here rely on (GNU as conventions, Intel syntax): ``#`` starts a
comment, ``;`` separates statements on one line, strings are double-quoted with backslash
escapes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from hgcmlab.guest_asm.errors import AssemblyError

#: Where the bundled routine files live.
LIB_DIR = Path(__file__).resolve().parent / "lib"

_LABEL = re.compile(r"\s*([A-Za-z_.$][\w.$]*|\d+)\s*:(?!:)")
_INCLUDE = re.compile(r"\.include\s+\"([^\"]+)\"\s*$", re.IGNORECASE)
_IDENT = re.compile(r"[A-Za-z_.$][\w.$]*")
_EQUATE = re.compile(r"(?:\.(?:equ|set)\s+(?P<name>[A-Za-z_.$][\w.$]*)\s*,(?P<value>.*)"
                     r"|(?P<name2>[A-Za-z_.$][\w.$]*)\s*=(?!=)(?P<value2>.*))$", re.IGNORECASE | re.DOTALL)

#: Directives that open a block whose lines keystone may expand several times (or never).
_BODY_OPENERS = (".macro", ".rept", ".irp", ".irpc")
_BODY_CLOSERS = (".endm", ".endr")

#: Directives rejected before keystone runs: keystone crashes on them (``.text``
#: segfaults, ``.cfi_*`` aborts the process), silently ignores them (sections, ``.incbin``)
#: or they contradict the mode the caller chose.
_REJECTED = {
    ".text": "sections are not supported: the program is one flat image",
    ".data": "sections are not supported: the program is one flat image",
    ".bss": "sections are not supported: the program is one flat image",
    ".section": "sections are not supported: the program is one flat image",
    ".incbin": ".incbin is not supported",
    ".file": "debug-info directives are not supported",
    ".loc": "debug-info directives are not supported",
    ".code16": "the mode is chosen by the caller of assemble(), not in the source",
    ".code32": "the mode is chosen by the caller of assemble(), not in the source",
    ".code64": "the mode is chosen by the caller of assemble(), not in the source",
    ".att_syntax": "programs are written in Intel syntax",
}


@dataclass(frozen=True)
class SourceLocation:
    """One source line: file name (as given or resolved), 1-based line number, text."""

    file: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text.strip()}"


@dataclass(frozen=True)
class Statement:
    """What the scanners found on one line (comments removed)."""

    labels: tuple[str, ...]
    directives: tuple[str, ...]
    #: True when the line holds an instruction or a macro invocation (something that is
    #: neither a label, a directive nor an assignment).
    has_instruction: bool
    #: The first word of each instruction statement (mnemonic or macro name).
    mnemonics: tuple[str, ...]
    #: Each instruction statement's text without its labels.
    instructions: tuple[str, ...] = ()
    #: ``(name, expression)`` of each ``.equ``/``.set``/``name =`` assignment.
    equates: tuple[tuple[str, str], ...] = ()
    #: Each directive statement's text without its labels.
    directive_texts: tuple[str, ...] = ()


def strip_comment(text: str) -> str:
    """``text`` without its ``#`` comment; ``#`` inside a string or char literal is kept."""
    if "#" not in text:
        return text
    if '"' not in text and "'" not in text:
        return text[:text.index("#")]
    in_string = False
    index = 0
    while index < len(text):
        char = text[index]
        if in_string:
            if char == "\\":
                index += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "'" and index + 1 < len(text):
            index += 2 if text[index + 1] != "\\" else 3
            continue
        elif char == "#":
            return text[:index]
        index += 1
    return text


def split_statements(text: str) -> list[str]:
    """Split a comment-free line at ``;`` separators outside strings."""
    if ";" not in text:
        stripped = text.strip()
        return [stripped] if stripped else []
    parts: list[str] = []
    current: list[str] = []
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            in_string = escaped or char != '"'
            escaped = not escaped and char == "\\"
        elif char == '"':
            in_string = True
        elif char == ";":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in (p.strip() for p in parts) if part]


@functools.lru_cache(maxsize=65536)
def scan(text: str) -> Statement:
    """Labels, directives, instructions and assignments on one source line."""
    labels: list[str] = []
    directives: list[str] = []
    mnemonics: list[str] = []
    instructions: list[str] = []
    equates: list[tuple[str, str]] = []
    directive_texts: list[str] = []
    for statement in split_statements(strip_comment(text)):
        while match := _LABEL.match(statement):
            if not match.group(1).isdigit():
                labels.append(match.group(1))
            statement = statement[match.end():].strip()
        if not statement:
            continue
        word = statement.split(None, 1)[0].rstrip(",")
        equate = _EQUATE.match(statement)
        if equate:
            equates.append((equate.group("name") or equate.group("name2"),
                            (equate.group("value") or equate.group("value2")).strip()))
        if word.startswith("."):
            directives.append(word.lower())
            directive_texts.append(statement)
        elif "=" in statement and re.match(r"[A-Za-z_.$][\w.$]*\s*=", statement):
            directives.append("=")
        else:
            mnemonics.append(word.lower())
            instructions.append(statement)
    return Statement(tuple(labels), tuple(directives), bool(mnemonics), tuple(mnemonics), tuple(instructions),
                     tuple(equates), tuple(directive_texts))


def identifiers(text: str) -> set[str]:
    """Every identifier-like token of ``text`` (used to inject only referenced constants)."""
    return set(_IDENT.findall(text))


@dataclass(frozen=True)
class SourceLine:
    """One line of the flattened program with where it came from."""

    location: SourceLocation
    statement: Statement
    #: Nesting depth of macro/rept bodies the line starts in (0 = assembled at most once).
    body_depth: int
    #: Closing directives that would end every block open just after this line.
    closers: tuple[str, ...]


class _Expander:
    def __init__(self, include_dirs: tuple[Path, ...]) -> None:
        self.include_dirs = include_dirs
        self.done: set[Path] = set()
        self.active: list[Path] = []
        self.lines: list[SourceLine] = []
        #: Open blocks: ".if", ".macro", ".rept", ...
        self.blocks: list[str] = []

    def resolve(self, name: str, including: Path | None, location: SourceLocation) -> Path:
        bases = ([including.parent] if including else [Path.cwd()]) + list(self.include_dirs) + [LIB_DIR]
        for base in bases:
            candidate = (base / name).resolve()
            if candidate.is_file():
                return candidate
        searched = ", ".join(str(b) for b in bases)
        raise _error(f"cannot find include file {name!r} (searched {searched})", location)

    def expand(self, text: str, display: str, path: Path | None) -> None:
        if path is not None:
            self.active.append(path)
            self.done.add(path)
        for number, raw in enumerate(text.splitlines(), start=1):
            location = SourceLocation(display, number, raw)
            code = strip_comment(raw).strip()
            include = _INCLUDE.match(code)
            if include:
                self.include(include.group(1), path, location)
                continue
            if code.lower().startswith(".include"):
                raise _error("malformed .include (expected: .include \"file\")", location)
            statement = scan(raw)
            for directive in statement.directives:
                if directive in _REJECTED or directive.startswith(".cfi_"):
                    reason = _REJECTED.get(directive, "CFI directives are not supported")
                    raise _error(f"{directive}: {reason}", location)
            depth_before = self.body_depth()
            self.track_blocks(statement, location)
            self.lines.append(SourceLine(location, statement, depth_before, self.closers()))
        if path is not None:
            self.active.pop()

    def include(self, name: str, including: Path | None, location: SourceLocation) -> None:
        if self.body_depth():
            raise _error(".include inside a macro or repeat body is not supported", location)
        target = self.resolve(name, including, location)
        if target in self.active:
            chain = " -> ".join(p.name for p in self.active + [target])
            raise _error(f"include cycle: {chain}", location)
        if target in self.done:
            return
        self.expand(target.read_text(encoding="utf-8"), _display(target), target)

    def body_depth(self) -> int:
        return sum(1 for block in self.blocks if block in _BODY_OPENERS)

    def track_blocks(self, statement: Statement, location: SourceLocation) -> None:
        for directive in statement.directives:
            if directive.startswith(".if"):
                self.blocks.append(".if")
            elif directive in _BODY_OPENERS:
                self.blocks.append(directive if directive != ".irpc" else ".irp")
            elif directive == ".endif":
                self.close(".if", directive, location)
            elif directive == ".endm":
                self.close(".macro", directive, location)
            elif directive == ".endr":
                self.close((".rept", ".irp"), directive, location)

    def close(self, opener: str | tuple[str, ...], directive: str, location: SourceLocation) -> None:
        openers = (opener,) if isinstance(opener, str) else opener
        if not self.blocks or self.blocks[-1] not in openers:
            raise _error(f"{directive} without a matching opening directive", location)
        self.blocks.pop()

    def closers(self) -> tuple[str, ...]:
        names = {".if": ".endif", ".macro": ".endm", ".rept": ".endr", ".irp": ".endr"}
        return tuple(names[block] for block in reversed(self.blocks))


def _display(path: Path) -> str:
    """Bundled files are shown as ``lib/name.s``; others by their path."""
    try:
        return "lib/" + str(path.relative_to(LIB_DIR))
    except ValueError:
        return str(path)


def _error(message: str, location: SourceLocation) -> AssemblyError:
    return AssemblyError(message, location)


def load_source(source: str | Path, filename: str | None,
                include_dirs: tuple[str | Path, ...]) -> tuple[list[SourceLine], str]:
    """Flatten ``source`` (a path or program text) and its includes into lines.

    Returns the lines and the display name of the main file.  ``source`` is a path when it
    is a ``Path`` or a one-line string naming an existing file; anything else is text.
    """
    dirs = tuple(Path(d).resolve() for d in include_dirs)
    expander = _Expander(dirs)
    path = _as_path(source)
    if path is not None:
        resolved = path.resolve()
        display = filename or str(path)
        expander.expand(resolved.read_text(encoding="utf-8"), display, resolved)
    else:
        display = filename or "<source>"
        anchor = Path(filename).resolve() if filename else None
        expander.expand(str(source), display, anchor)
    if expander.blocks:
        last = expander.lines[-1].location if expander.lines else SourceLocation(display, 0, "")
        raise _error(f"end of program inside an unterminated {expander.blocks[-1]} block", last)
    return expander.lines, display


def _as_path(source: str | Path) -> Path | None:
    if isinstance(source, Path):
        if not source.is_file():
            raise FileNotFoundError(f"no such assembly source: {source}")
        return source
    if "\n" not in source and source.strip() and len(source) < 4096:
        candidate = Path(source)
        try:
            if candidate.is_file():
                return candidate
        except OSError:
            return None
    return None

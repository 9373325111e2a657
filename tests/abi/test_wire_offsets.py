"""No raw wire offset or layout outside the ABI modules (issue 13: the ABI used, not only declared).

Every wire structure is declared once, as a ctypes structure in an ``abi.py``; the device,
the command queue, the parameter parser, the test builder, the services and the trace
decoders reach its bytes through that declaration (``Struct.from_buffer``, field
``.offset``, ``ctypes.sizeof``) or through ``hgcmlab.runtime.wire.FieldRun`` accessors derived
from it.  This test parses the host-side code and fails on the shapes a typed layout takes:

* a ``struct`` call with a literal (or f-string) format;
* a slice bound or an index computed with an integer literal other than 0, 1 and -1
  (``data[36:164]``, ``buf[slot * 8]``, ``data[base + 4]``), steps excepted;
* an integer literal other than 0 and 1 in the offset of ``pack_into``/``unpack_from``, in
  the address of a guest-memory accessor (``memory.read_u32(address + 24)``) or in the
  length of ``to_bytes``;
* a name meaning an offset (``OFF`` as a word, or ``OFFSET``) bound to integer literals.

"Literal" means the expression itself or a term or factor of its +, - and *: masks, shifts,
comparisons and calls are not offset arithmetic and are not looked into; a plain literal
index (``params[5]``) picks an element, not a byte.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Where host code touches wire bytes.
SCANNED = ("devices", "services", "machine/trace")
#: (path, source line with surrounding blanks stripped) -> why it is no wire offset.
ALLOWED: dict[tuple[str, str], str] = {
    ("machine/trace/blocks.py", '_BB = struct.Struct("<IHH")'):
        "drcov's bb_entry_t (DynamoRIO's coverage file format), a file we write, not a guest wire layout",
    ("machine/trace/record.py", "return hashlib.sha256(data).hexdigest()[:32]"):
        "length of a hex digest shown in traces",
    ("machine/trace/tools.py", 'value = value[:77] + "..."'): "display truncation of text",
    ("machine/trace/tools.py", 'name = phase.name if len(phase.name) <= 42 else phase.name[:39] + "..."'):
        "display truncation of text",
    ("machine/trace/tools.py", 'return text if len(text) <= 60 else text[:57] + "..."'): "display truncation of text",
    ("services/sharedfolders/decode.py", "return FLAG_FORMATTERS[kind[6:]](value)"): 'strips the "flags:" prefix of a kind name',
}
_STRUCT_CALLS = frozenset({"pack", "pack_into", "unpack", "unpack_from", "iter_unpack", "calcsize", "Struct"})
_OFFSET_CALLS = frozenset({"pack_into", "unpack_from"})
#: Guest-memory accessors (machine/memory.py) whose first argument is an address.
_MEMORY_CALLS = frozenset({"read", "write", "read_u32", "write_u32", "read_i32", "write_i32", "fill", "window",
                           "copy_into", "contains"})
_OFFSET_NAME = re.compile(r"(^|_)OFF(_|$)|OFFSET", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    source: str
    rule: str


def _literals(node: ast.AST | None, allowed: frozenset[int]) -> list[int]:
    """Integer literals of an offset expression that are not in ``allowed``: the expression
    itself, or terms and factors of its +, - and * (a negated literal counts as one negative
    value); masks, shifts, calls and the like are not offset arithmetic and are not entered."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        values = [-node.operand.value] if type(node.operand.value) is int else []
    elif isinstance(node, ast.Constant):
        values = [node.value] if type(node.value) is int else []
    elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        return _literals(node.left, allowed) + _literals(node.right, allowed)
    else:
        return []
    return [value for value in values if value not in allowed]


_SMALL = frozenset({0, 1, -1})
_ZERO_ONE = frozenset({0, 1})


def _is_format(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _call_rules(call: ast.Call) -> list[str]:
    function = call.func
    if not isinstance(function, ast.Attribute):
        return []
    rules = []
    if (isinstance(function.value, ast.Name) and function.value.id == "struct" and function.attr in _STRUCT_CALLS
            and call.args and _is_format(call.args[0])):
        rules.append("struct format typed outside the ABI")
    if function.attr in _OFFSET_CALLS and any(_literals(arg, _ZERO_ONE) for arg in call.args[1:]):
        rules.append("literal offset given to pack_into/unpack_from")
    if function.attr in _MEMORY_CALLS and call.args and _literals(call.args[0], _ZERO_ONE):
        rules.append("literal offset in a guest-memory address")
    if function.attr == "to_bytes" and call.args and _literals(call.args[0], _ZERO_ONE):
        rules.append("literal field width in to_bytes")
    return rules


def _subscript_rules(node: ast.Subscript) -> list[str]:
    index = node.slice
    # A plain literal index picks an element (``params[5]``, ``parts[3]``); an offset into
    # bytes shows as a slice or as arithmetic (``data[base + 4]``).
    bounds = [index.lower, index.upper] if isinstance(index, ast.Slice) else [index]
    if isinstance(index, (ast.Constant, ast.UnaryOp)):
        return []
    return ["literal offset in a subscript"] if any(_literals(bound, _SMALL) for bound in bounds) else []


def _assignment_rules(node: ast.Assign | ast.AnnAssign) -> list[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = [sub.id for target in targets for sub in ast.walk(target) if isinstance(sub, ast.Name)]
    value = node.value
    literal = value is not None and all(
        isinstance(sub, ast.Constant) and type(sub.value) is int
        for sub in ([value] if not isinstance(value, ast.Tuple) else value.elts))
    if literal and any(_OFFSET_NAME.search(name) for name in names):
        return ["offset bound to a literal"]
    return []


def scan_source(source: str, path: str = "<snippet>") -> list[Finding]:
    """Every raw wire offset or layout in ``source`` (see the module docstring)."""
    lines = source.splitlines()
    findings = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            rules = _call_rules(node)
        elif isinstance(node, ast.Subscript):
            rules = _subscript_rules(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            rules = _assignment_rules(node)
        else:
            continue
        findings.extend(Finding(path, node.lineno, lines[node.lineno - 1].strip(), rule) for rule in rules)
    return findings


def _scanned_files() -> list[Path]:
    files = [file for folder in SCANNED for file in sorted((ROOT / folder).rglob("*.py"))]
    return [file for file in files if file.name != "abi.py"]


def test_no_raw_wire_offsets_outside_the_abi_modules() -> None:
    findings = [finding for file in _scanned_files()
                for finding in scan_source(file.read_text(encoding="utf-8"), file.relative_to(ROOT).as_posix())]
    unexplained = [f"{f.path}:{f.line}: {f.rule}: {f.source}" for f in findings if (f.path, f.source) not in ALLOWED]
    assert unexplained == []


def test_every_allow_list_entry_is_still_needed() -> None:
    present = {(finding.path, finding.source) for file in _scanned_files()
               for finding in scan_source(file.read_text(encoding="utf-8"), file.relative_to(ROOT).as_posix())}
    assert sorted(set(ALLOWED) - present) == []


@pytest.mark.parametrize(("snippet", "rule"), [
    ('size, version = struct.unpack_from("<II", header, 0)', "struct format typed outside the ABI"),
    ('layout = struct.Struct(f"<{count}Q")', "struct format typed outside the ABI"),
    ("raw_name = bytes(data[36:36 + NAME_SIZE])", "literal offset in a subscript"),
    ("buf[slot * 8:slot * 8 + 8] = bytes(entry)", "literal offset in a subscript"),
    ("word = data[base + 4]", "literal offset in a subscript"),
    ("value = int.from_bytes(data[entries:entries + 8 * count], 'little')", "literal offset in a subscript"),
    ("CODEC.pack_into(data, 24, flags)", "literal offset given to pack_into/unpack_from"),
    ("flags = memory.read_u32(address + 24)", "literal offset in a guest-memory address"),
    ("blob = value.to_bytes(4, 'little')", "literal field width in to_bytes"),
    ("_OFF_RC = 12", "offset bound to a literal"),
    ("_OFF_LOC, _OFF_NAME = 32, 36", "offset bound to a literal"),
])
def test_the_scan_finds_each_shape_of_a_typed_layout(snippet: str, rule: str) -> None:
    assert [finding.rule for finding in scan_source(snippet)] == [rule]


@pytest.mark.parametrize("snippet", [
    "size, version, kind = REQUEST_HEAD.unpack(header)",
    "raw_name = HGCM_CONNECT_NAME.get(request.data)",
    "memory.write_i32(address + HGCM_RESULT.offset, status)",
    "body = data[SHFLSTRING_HEADER_SIZE:SHFLSTRING_HEADER_SIZE + length + 1]",
    "pages = list(codec.unpack_from(request, offset + HGCM_PAGE_LIST_OFF_PAGES))",
    "first = params[0]; rest = pages[1:]; odd = body[1::2]; last = items[-1]",
    "mask = (value >> 8) & 0xFF",
    "LIMIT = 1 << 20",
])
def test_the_scan_lets_derived_access_through(snippet: str) -> None:
    assert scan_source(snippet) == []

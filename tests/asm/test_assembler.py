"""The assembler front end: includes, constants, symbols, line map, errors, time bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.abi import (VMMDEV_DEFAULT_PORT_BASE, HgcmCall, HgcmParmDirection, RequestType,
                                        field_offset)
from hgcmlab.guest_asm import AssembledProgram, AssemblyError, AssemblyTimeout, assemble
from hgcmlab.guest_asm.constants import abi_constants
from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflCreateParms, ShflFn

MODES = (64, 32)


def _dword_program(names: list[str]) -> str:
    return "".join(f"v{i}: .quad {name}\n" for i, name in enumerate(names))


@pytest.mark.parametrize("mode", MODES)
def test_constants_equal_the_python_abi(mode: int) -> None:
    expected = {
        "VMMDEV_PORT": VMMDEV_DEFAULT_PORT_BASE,
        "VMMDevReq_HGCMCall64": RequestType.HGCMCall64,
        "VINF_HGCM_ASYNC_EXECUTE": Status.VINF_HGCM_ASYNC_EXECUTE,
        "VERR_INVALID_PARAMETER": Status.VERR_INVALID_PARAMETER,
        "SHFL_FN_CREATE": ShflFn.CREATE,
        "SHFL_CF_ACCESS_READ": ShflCf.ACCESS_READ,
        "SHFL_CF_ACCESS_READWRITE": ShflCf.ACCESS_READWRITE,
        "VBOX_HGCM_F_PARM_DIRECTION_BOTH": HgcmParmDirection.BOTH,
        "HGCMCALL_OFF_RESULT": field_offset(HgcmCall, "header.result"),
        "HGCMCALL_OFF_RC": field_offset(HgcmCall, "header.header.rc"),
        "SHFLCREATEPARMS_SIZE": 108,
        "SHFLCREATEPARMS_OFF_HANDLE": field_offset(ShflCreateParms, "Handle"),
        "SHFLCREATEPARMS_OFF_CREATEFLAGS": field_offset(ShflCreateParms, "CreateFlags"),
        "MODE": mode,
    }
    program = assemble(_dword_program(list(expected)), mode=mode)
    for i, value in enumerate(expected.values()):
        got = int.from_bytes(program.code[8 * i:8 * i + 8], "little", signed=True)
        assert got == int(value)


def test_every_abi_constant_round_trips_through_keystone() -> None:
    table = abi_constants()
    program = assemble(_dword_program(list(table)), mode=64)
    for i, value in enumerate(table.values()):
        assert int.from_bytes(program.code[8 * i:8 * i + 8], "little") == value % (1 << 64)


def test_defines_are_injected_and_may_not_shadow_abi_names() -> None:
    program = assemble("x: .long ANSWER\n", defines={"ANSWER": 42})
    assert program.code == (42).to_bytes(4, "little")
    with pytest.raises(ValueError):
        assemble("nop\n", defines={"VMMDEV_PORT": 1})


@pytest.mark.parametrize("mode", MODES)
def test_symbols_entry_and_exact_line_map(mode: int) -> None:
    source = (
        "# comment line\n"            # 1
        "start_here:\n"               # 2
        "    nop\n"                   # 3
        "_start:\n"                   # 4
        "    mov eax, 0x12345678\n"   # 5
        "    mov edx, VMMDEV_PORT\n"  # 6
        "    out dx, eax\n"           # 7
        ".if MODE == 99\n"            # 8
        "never: int3\n"               # 9
        ".endif\n"                    # 10
        "data: .long 1, 2\n"          # 11
        ".align 16\n"                 # 12
        "tail: ret\n"                 # 13
    )
    program = assemble(source, mode=mode, base=0x20000, filename="prog.s")
    assert isinstance(program, AssembledProgram)
    assert program.symbols == {"start_here": 0x20000, "_start": 0x20001, "data": 0x2000C,
                               "tail": 0x20020}
    assert program.entry == 0x20001
    assert program.code[1:6] == bytes.fromhex("b878563412")
    expected = [(0x20000, 3), (0x20001, 5), (0x20006, 6), (0x2000B, 7), (0x2000C, 11), (0x20014, 12),
                (0x20020, 13)]
    assert [(start, loc.line) for start, _end, loc in program.lines.entries] == [
        (address, line) for address, line in expected]
    loc = program.source_at(0x2000B)
    assert loc is not None and (loc.file, loc.line, loc.text.strip()) == ("prog.s", 7, "out dx, eax")
    assert str(loc) == "prog.s:7: out dx, eax"
    assert program.source_at(0x20021) is None
    assert program.source_at(0x1FFFF) is None
    assert program.symbol_at(0x20003) == "_start+0x2"


def test_macro_expansion_belongs_to_the_invoking_line() -> None:
    source = ".macro twice r\n    inc \\r\n    inc \\r\n.endm\n_start: twice eax\n nop\n"
    program = assemble(source, filename="m.s")
    assert program.lines.entries[0][:2] == (0x10000, 0x10004)
    assert program.lines.entries[0][2].line == 5


@pytest.mark.parametrize("mode", MODES)
def test_include_relative_then_dirs_then_bundled(tmp_path: Path, mode: int) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "extra").mkdir()
    (tmp_path / "main.s").write_text('.include "sub/a.s"\n.include "b.s"\n.include "log.s"\n_start: nop\n')
    (tmp_path / "sub" / "a.s").write_text('a_label: nop\n.include "a2.s"\n')
    (tmp_path / "sub" / "a2.s").write_text('a2_label: nop\n.include "../extra/b.s"\n')
    (tmp_path / "extra" / "b.s").write_text("b_label: nop\n")
    program = assemble(tmp_path / "main.s", mode=mode, include_dirs=(tmp_path / "extra",))
    assert {"a_label", "a2_label", "b_label", "log_string", "_start"} <= program.symbols.keys()
    location = program.source_at(program.symbols["a2_label"])
    assert location is not None and location.file.endswith("a2.s") and location.line == 1


def test_include_once(tmp_path: Path) -> None:
    (tmp_path / "x.s").write_text("once: nop\n")
    program = assemble('.include "x.s"\n.include "x.s"\n', filename=str(tmp_path / "p.s"))
    assert program.code == b"\x90"


def test_missing_include_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "p.s").write_text("nop\n\n.include \"nowhere.s\"\n")
    with pytest.raises(AssemblyError) as info:
        assemble(tmp_path / "p.s")
    assert info.value.location is not None and info.value.location.line == 3
    assert str(info.value).startswith(f"{tmp_path / 'p.s'}:3: cannot find include file 'nowhere.s'")


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.s").write_text('.include "b.s"\n')
    (tmp_path / "b.s").write_text('nop\n.include "a.s"\n')
    with pytest.raises(AssemblyError, match="include cycle: a.s -> b.s -> a.s") as info:
        assemble(tmp_path / "a.s")
    assert info.value.location is not None and info.value.location.line == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("source", "line", "fragment"), [
    ("nop\nnop\nbadinsn eax\nnop\n", 3, "Invalid mnemonic"),
    ("_start:\n jmp _start\n jmp nowhere\nlater: nop\n jmp later\n", 3, "SYMBOL_MISSING"),
    ("nop\n.if 1\nnop\nmov eax, qword[xmm0]\n.endif\nnop\n", 4, "stopped assembling"),
    (".macro m\n nop\n.endm\nm\n.byte 1000\n", 5, "does not fit in 1 byte"),
    (".macro m\n nop\n.endm\nm\n.byte 200+100\n", 5, "does not fit in 1 byte"),
    ("nop\n.section .data\n", 2, "sections are not supported"),
    ("nop\n.text\n", 2, "sections are not supported"),
    ("nop\n.cfi_startproc\n", 2, "CFI"),
    ("nop\n.endif\n", 2, "without a matching"),
])
def test_errors_point_at_the_right_line(mode: int, source: str, line: int, fragment: str) -> None:
    with pytest.raises(AssemblyError, match=fragment) as info:
        assemble(source, mode=mode, filename="bad.s")
    assert info.value.location is not None
    assert (info.value.location.file, info.value.location.line) == ("bad.s", line)


@pytest.mark.parametrize("mode", MODES)
def test_time_bound_on_a_keystone_hang(mode: int) -> None:
    with pytest.raises(AssemblyTimeout, match="did not finish within 0.5 s"):
        assemble("nop\n.p2align 40\n", mode=mode, timeout=0.5)
    assert assemble("nop\n", mode=mode).code == b"\x90"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        assemble("nop\n", mode=16)
    with pytest.raises(ValueError):
        assemble("nop\n", base=1 << 32)


@pytest.mark.parametrize("mode", MODES)
def test_error_after_an_include_names_the_users_line(tmp_path: Path, mode: int) -> None:
    # log.s defines log_signed in both halves of `.if MODE == 64 ... .else`; the prefix
    # bisection used to treat the (false, 64-bit) first definition as the one that counts
    # and blamed log.s's `jmp log_signed` in 32-bit mode.
    (tmp_path / "p.s").write_text('.include "log.s"\n_start:\n    mov eax, 1\n    badinsn eax\n    nop\n')
    with pytest.raises(AssemblyError, match="Invalid mnemonic") as info:
        assemble(tmp_path / "p.s", mode=mode)
    assert str(info.value).startswith(f"{tmp_path / 'p.s'}:4: ")


@pytest.mark.parametrize("mode", MODES)
def test_error_blame_with_a_label_defined_in_both_mode_branches(mode: int) -> None:
    source = (".if MODE == 64\n"   # 1
              " jmp both\n"         # 2
              "both: nop\n"         # 3
              ".else\n"             # 4
              " jmp both\n"         # 5
              "both: nop\n"         # 6
              ".endif\n"            # 7
              " nop\n"              # 8
              " mov eax, ebx ecx\n"  # 9
              " nop\n")             # 10
    with pytest.raises(AssemblyError) as info:
        assemble(source, mode=mode, filename="user.s")
    assert info.value.location is not None
    assert (info.value.location.file, info.value.location.line) == ("user.s", 9)

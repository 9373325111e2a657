"""The assembler never miscompiles silently (issue 12).

Keystone 0.9.2 accepts some operands and encodes something else.  The front end checks
every instruction it assembled against the source operands (guest_asm/verify.py): an
absolute address keystone mis-encodes is re-emitted in the absolute form, everything else
it gets wrong is a ``file:line:`` error.  Expected encodings below are the x86 manual's
(ModRM/SIB forms), written out by hand, not produced by the code under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.guest_asm import AssemblyError, assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import Machine, RunEnd

MODES = (64, 32)


def _error(source: str, mode: int = 64, filename: str = "user.s") -> AssemblyError:
    with pytest.raises(AssemblyError) as info:
        assemble(source, mode=mode, filename=filename)
    return info.value


def _run(source: str, mode: int) -> tuple[int, Machine]:
    machine = vbox_board(mode)
    machine.load(assemble(source, mode=mode, filename="prog.s"))
    result = machine.run(10_000)
    assert result.end is RunEnd.EXIT
    return result.exit_code, machine


# --- the examples ---------------------------------------------------------------

def test_absolute_qword_load_is_absolute_not_rip_relative() -> None:
    # keystone alone: 48 8b 1d 00 10 00 00 = mov rbx, [rip + 0x1000].
    # Intended (GNU as): REX.W 8B /r, ModRM 00 011 100, SIB 00 100 101, disp32.
    program = assemble("mov rbx, qword ptr [0x1000]\n", mode=64)
    assert program.code == bytes.fromhex("488b1c2500100000")


def test_every_mis_encoded_statement_of_a_line_is_repaired() -> None:
    program = assemble("mov rbx, [0x1000]; mov rcx, [0x2000]\n", mode=64)
    assert program.code == bytes.fromhex("488b1c2500100000" "488b0c2500200000")


def test_absolute_load_reads_the_named_address_in_the_guest() -> None:
    source = """
_start:
    mov edi, 0x3000
    mov dword ptr [rdi], 42
    mov dword ptr [rdi + 4], 0
    mov rbx, qword ptr [0x3000]
    mov rcx, [0x3000]
    add rbx, rcx
    mov eax, ebx
    out 0xf4, al
"""
    code, _machine = _run(source, 64)
    assert code == 84


@pytest.mark.parametrize(("operand", "address"), [("[0x7fffffffff]", "0x7fffffffff"),
                                                   ("[0x100000000]", "0x100000000")])
def test_absolute_address_beyond_disp32_is_an_error(operand: str, address: str) -> None:
    # keystone alone: [0xffffffffffffffff] and [0] respectively.
    error = _error(f"nop\nmov rbx, {operand}\n")
    assert str(error).startswith(f"user.s:2: '{operand}' addresses {address} but keystone encoded")
    assert "only mov between al/ax/eax/rax and memory (moffs" in str(error)


def test_moffs_takes_a_64_bit_absolute_address() -> None:
    # REX.W A1 moffs64: the one form with a 64-bit absolute address.
    assert assemble("mov rax, [0x100000000]\n").code == bytes.fromhex("48a10000000001000000")
    assert assemble("mov [0x7fffffffff], al\n").code == bytes.fromhex("a2ffffffff7f000000")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("line", ["mov rax, [", "mov eax, dword ptr [", "mov eax, [rax", "mov eax, [rbx+rcx*4",
                                  "jmp [rax", "mov eax, fs:[", "mov eax, (5", "mov eax, 5)", "mov eax, [rax+]",
                                  "mov eax, [ ]"])
def test_truncated_operands_are_errors(mode: int, line: str) -> None:
    line = line.replace("rax", "eax").replace("rbx", "ebx").replace("rcx", "ecx") if mode == 32 else line
    error = _error(f"_start:\n    nop\n    {line}\n    nop\n", mode)
    assert error.location is not None and (error.location.file, error.location.line) == ("user.s", 3)
    assert str(error).startswith("user.s:3: ")


# --- the whole class ----------------------------------------------------------------------

@pytest.mark.parametrize(("line", "encoding"), [
    # (64-bit) keystone gets `mov r64, [absolute]` wrong ([rip + absolute]); the intended
    # form is absolute disp32 via SIB (ModRM rm=100, SIB base=101 index=100).
    ("mov r12, [0x2000]", "4c8b242500200000"),
    ("mov rsi, qword ptr [0x2000]", "488b342500200000"),
    ("mov rbx, [0x7fffffff]", "488b1c25ffffff7f"),
    ("mov rbx, fs:[0x10]", "64488b1c2510000000"),
    ("mov rbx, qword ptr ds:0x1000", "488b1c2500100000"),
    ("mov rcx, [0x10 + 0x20]", "488b0c2530000000"),
])
def test_mis_encoded_absolute_operands_get_the_absolute_form(line: str, encoding: str) -> None:
    assert assemble(line + "\n", mode=64).code == bytes.fromhex(encoding)


@pytest.mark.parametrize(("source", "fragment"), [
    # A minus before a symbol inside brackets is dropped: [esi + 4].
    (".equ S, 4\nlea eax, [esi - S]\n", "'[esi - S]' was encoded as 'lea eax, [esi + 4]' (displacement -0x4 lost)"),
    (".equ S, 4\nmov rax, [rbp - S]\n", "(displacement -0x4 lost)"),
    # Only the last of two symbols is kept.
    (".equ A, 4\n.equ B, 8\nmov eax, [rbx + A + B]\n", "(displacement 0xc lost)"),
    # 64-bit addressing: the displacement is a sign-extended 32-bit field.
    ("mov rax, [rbx + 0x100000000]\n", "does not fit in a sign-extended 32-bit field"),
    ("mov eax, [rax + 0xfffffff8]\n", "does not fit in a sign-extended 32-bit field"),
    # riz is "no index", never rsp.
    ("mov ecx, [0x1000 + riz]\n", "(different registers)"),
    # A negated symbol as an immediate becomes a memory operand.
    (".equ PAGE, 4096\nand rdx, -PAGE\n", "the value '-PAGE' was encoded as a memory operand"),
    (".equ PAGE, 4096\ntest esp, -PAGE\n", "the value '-PAGE' was encoded as a memory operand"),
    # Immediates keystone truncates.
    ("mov eax, 0x100000000\n", "does not fit the 32-bit operand of 'mov eax, 0'"),
    ("mov al, 0x1ff\n", "does not fit the 8-bit operand"),
    ("cmp byte ptr [rax], 0x100\n", "does not fit the 8-bit operand"),
    ("mov word ptr [rax], 0x10000\n", "does not fit the 16-bit operand"),
    ("imul eax, ebx, 0x100000000\n", "does not fit the 32-bit operand"),
    ("push 0xffffffff\n", "'push 0xffffffff' was encoded as a 16-bit push: 'push 0xffff'"),
    ("push 0x80000000\n", "'push 0x80000000' was encoded as a 16-bit push: 'push 0'"),
    ("mov eax, -0x80000001\n", "does not fit the 32-bit operand"),
])
def test_miscompiles_are_errors_naming_the_line(source: str, fragment: str) -> None:
    error = _error(source)
    last = source.rstrip("\n").count("\n") + 1
    assert error.location is not None and (error.location.file, error.location.line) == ("user.s", last)
    assert fragment in str(error)


@pytest.mark.parametrize(("source", "fragment"), [
    (".equ S, 4\nlea eax, [esi - S]\n", "(displacement -0x4 lost)"),
    ("mov al, 0x1ff\n", "does not fit the 8-bit operand"),
    # keystone emits 8D 46 without the displacement byte: the next instruction is eaten.
    ("lea eax, [esi + 0x100000000]\n", "keystone emitted bytes that are not whole instructions: 8d 46"),
    # `push SYMBOL` becomes a 16-bit push (66 6A 7F) that moves esp by 2.
    (".equ S, 0x7f\npush S\n", "'push S' was encoded as a 16-bit push"),
    # With base ebp the default segment is ss: dropping an explicit ds changes the address.
    ("movzx ecx, byte ptr ds:[ebp + ecx*4]\n", "(different segment)"),
    (".equ S, 8\nlea ecx, [-S]\n", "'[-S]' addresses -0x8 but keystone encoded 'lea ecx, [8]'"),
    ("mov eax, [eax", "'[' without ']'"),
    ("mov ax, 0x10000\n", "does not fit the 16-bit operand"),
])
def test_miscompiles_are_errors_in_32_bit_mode(source: str, fragment: str) -> None:
    error = _error(source, mode=32)
    assert error.location is not None and error.location.file == "user.s"
    assert fragment in str(error)


@pytest.mark.parametrize("mode", MODES)
def test_miscompile_after_an_include_names_the_users_line(tmp_path: Path, mode: int) -> None:
    (tmp_path / "p.s").write_text('.include "log.s"\n.equ S, 4\n_start:\n    lea eax, [esi - S]\n    nop\n')
    error = _error(str(tmp_path / "p.s"), mode, filename=str(tmp_path / "p.s"))
    assert str(error).startswith(f"{tmp_path / 'p.s'}:4: ")


@pytest.mark.parametrize(("mode", "line", "encoding"), [
    # What keystone gets right is kept as it is (bytes unchanged).
    (64, "mov eax, [0x1000]", "a10010000000000000"),              # moffs64
    (64, "mov ecx, [0x1000]", "8b0dfa0fffff"),                    # rip-relative, addresses 0x1000
    (64, "mov qword ptr [0x20000], 1", "48c705f5ff000001000000"),  # 0x1000b + 0xfff5
    (64, "lea rax, [rip]", "488d0500000000"),
    (64, "mov eax, [rax*4 + 0x1000]", "8b048500100000"),
    (64, "mov rbx, [-8]", "488b1c25f8ffffff"),
    (64, "mov eax, [eax + 0xfffffff8]", "678b40f8"),              # 32-bit addressing wraps
    (64, "mov eax, [2*rax + rbx]", "8b0443"),
    (64, "mov eax, -1", "b8ffffffff"),
    (64, "mov eax, 0xffffffff", "b8ffffffff"),
    (64, "mov rax, 0xffffffff", "48b8ffffffff00000000"),
    (64, "mov al, 'A'", "b041"),
    (64, "mov eax, 1 << 4 + 1", "b820000000"),                    # C precedence, as keystone
    (64, "mov eax, 010", "b808000000"),                           # octal
    (32, "mov eax, [0x1000]", "a100100000"),
    (32, "push 0x80000000", "6800000080"),
    (32, "mov eax, [eax + 0xfffffff8]", "8b40f8"),
    (32, "mov eax, [ebp + -8]", "8b45f8"),
    (32, "push 0x7f", "6a7f"),
    (32, "mov eax, ss:[ebp]", "8b4500"),                          # ss is ebp's default
    (32, "mov eax, ds:[ebx]", "8b03"),                            # ds is ebx's default
    (64, "mov rax, ds:[rbp]", "488b4500"),                        # 64-bit mode ignores ds/ss
])
def test_correct_encodings_are_kept(mode: int, line: str, encoding: str) -> None:
    assert assemble(line + "\n", mode=mode).code == bytes.fromhex(encoding)


def test_labels_and_rip_relative_labels_are_accepted() -> None:
    source = "_start:\n mov eax, [rip + data]\n mov ecx, [data]\n mov edx, data\n jmp _start\ndata: .long 7\n"
    program = assemble(source, mode=64)
    data = program.symbols["data"]
    # rip + disp32 at 0x10000 (6 bytes): disp = data - 0x10006.
    assert program.code[:6] == bytes.fromhex("8b05") + (data - 0x10006).to_bytes(4, "little")


def test_rewritten_line_keeps_its_source_text_in_the_line_map() -> None:
    program = assemble("_start:\n nop\n mov rbx, [0x1000]\n ret\n", mode=64, filename="m.s")
    location = program.source_at(0x10001)
    assert location is not None and (location.line, location.text.strip()) == (3, "mov rbx, [0x1000]")
    assert program.lines.address_of("m.s", 4) == 0x10009


# --- a real one in the library ------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_shfl_string_init_buffer_sizes_the_string_total_minus_header(mode: int) -> None:
    # The 64-bit routine had `lea eax, [esi - SHFLSTRING_HEADER_SIZE]`, which keystone
    # encoded as [esi + 4]: u16Size was total + 4, claiming 8 bytes past the buffer.
    source = """
.include "shflstring.s"
.include "ccall.s"
_start:
    ccall2 shfl_string_init_buffer, buffer, 64
    mov ecx, buffer
    movzx eax, word ptr [ecx]
    out 0xf4, al
.align 8
buffer: .fill 80, 1, 0xee
"""
    code, machine = _run(source, mode)
    assert code == 60


# --- macro expansions -----------------------------------------------------------------------

MACROS = r"""
.macro load reg, src
    mov \reg, \src
.endm
.macro load_twice reg, src
.if MODE == 64
    load \reg, \src
.else
    nop
.endif
    load \reg, \src
.endm
.equ S, 4
"""


@pytest.mark.parametrize("mode", MODES)
def test_miscompile_inside_a_macro_names_the_invocation_and_the_body_line(mode: int) -> None:
    source = MACROS + "_start:\n    load_twice eax, [esi + 8]\n    load_twice eax, [esi - S]\n"
    error = _error(source, mode)
    invocation = MACROS.count("\n") + 3
    assert str(error).startswith(f"user.s:{invocation}: '[esi - S]' was encoded as 'mov eax, dword ptr [esi + 4]'")
    assert "in the expansion: 'mov eax, [esi - S]' from user.s:3: mov \\reg, \\src" in str(error)


def test_absolute_address_passed_to_a_macro_is_repaired_in_the_guest() -> None:
    # ccall2 expands to `mov rdi, [0x3000]` / `mov rsi, [0x3008]`, which keystone encodes
    # as [rip + 0x3000] / [rip + 0x3008]: the arguments are rewritten to the absolute form.
    source = """
.include "ccall.s"
_start:
    mov edi, 0x3000
    mov dword ptr [rdi], 30
    mov dword ptr [rdi + 8], 12
    ccall2 target, [0x3000], [0x3008]
    mov eax, edi
    add eax, esi
    out 0xf4, al
target:
    ret
"""
    code, _machine = _run(source, 64)
    assert code == 42
    program = assemble(source, mode=64)
    # REX.W 8B, ModRM 00 111/110 100, SIB 25: mov rdi/rsi, [disp32] (absolute).
    assert bytes.fromhex("488b3c2500300000" "488b342508300000") in program.code


def test_absolute_address_built_inside_a_macro_is_an_error_naming_the_absolute_form() -> None:
    source = ".macro ldp r, a\n    mov \\r, [\\a]\n.endm\n_start:\n    ldp rbx, 0x1000\n"
    error = _error(source)
    assert str(error).startswith("user.s:5: '[0x1000]' addresses 0x1000 but keystone encoded "
                                 "'mov rbx, qword ptr [rip + 0x1000]'")
    assert "write '[riz*1 + 0x1000]' for the absolute form" in str(error)
    assert "in the expansion: 'mov rbx, [0x1000]' from user.s:2: mov \\r, [\\a]" in str(error)


def test_macro_argument_with_spaces_next_to_operators_is_one_argument_and_repaired() -> None:
    # One argument for keystone (and GNU as): the spaces touch the '+'.
    program = assemble(MACROS + "_start:\n    load_twice rbx, [8 + 0x10000]\n", mode=64)
    # Repaired (keystone alone: [rip + 0x10008]): twice mov rbx, [0x10008] (absolute).
    assert program.code == bytes.fromhex("488b1c2508000100" * 2)


def test_garbage_after_a_truncated_instruction_does_not_hide_it() -> None:
    # keystone emits `mov eax, [eax + disp8]` with part of its displacement and the rest of
    # the expansion decodes as different instructions: the first one is still judged.
    source = ".macro st a, r\n    mov \\r, \\a\n    add \\r, 4\n    mov \\a, \\r\n.endm\n    st [eax + 0x7fffffffff], eax\n"
    error = _error(source, mode=32)
    assert str(error).startswith("user.s:6: displacement 0x7fffffffff in '[eax + 0x7fffffffff]' does not fit in a "
                                 "32-bit address")


@pytest.mark.parametrize("mode", MODES)
def test_truncated_macro_argument_is_an_error(mode: int) -> None:
    error = _error('.include "ccall.s"\n_start:\n    ccall2 target, 1, [ebx\ntarget: ret\n', mode)
    assert str(error).startswith("user.s:3: malformed operand: '[' without ']' in '[ebx'")


@pytest.mark.parametrize("mode", MODES)
def test_correct_macro_expansions_are_accepted(mode: int) -> None:
    program = assemble(MACROS + "_start:\n    load_twice eax, [esi + S]\n    load ecx, 0xffffffff\n", mode=mode)
    # mov eax, [esi + 4] (8B 46 04; 64-bit mode adds the 0x67 address-size prefix), twice
    # in 64-bit mode; then mov ecx, imm32.
    prefix = "67" if mode == 64 else ""
    load = prefix + "8b4604"
    expected = (load + load if mode == 64 else "90" + load) + "b9ffffffff"
    assert program.code == bytes.fromhex(expected)


# --- data directives ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("source", "line", "fragment"), [
    # keystone: no bytes at all, no error.
    ("nop\n.word 0x10000\nnop\n", 2, ".word value '0x10000' (0x10000) does not fit in 2 bytes"),
    (".equ S, 0x10000\nnop\n.word S\nnop\n", 3, ".word value 'S' (0x10000) does not fit in 2 bytes"),
    ("nop\n.word -32769\n", 2, "does not fit in 2 bytes"),
    # keystone hangs on this one (the value is checked before it runs).
    ("nop\n.word 0x10000, 1\n", 2, ".word value '0x10000' (0x10000) does not fit in 2 bytes"),
])
def test_data_values_that_do_not_fit_are_errors(mode: int, source: str, line: int, fragment: str) -> None:
    error = _error(source, mode)
    assert error.location is not None and error.location.line == line
    assert fragment in str(error)


@pytest.mark.parametrize("mode", MODES)
def test_data_directives_emit_their_values(mode: int) -> None:
    source = ".long lab, 5\nlab: .quad lab\n.byte 'a', 0x7f\n.zero 3\n.fill 2, 4, 0\n.word -1, 0x8000\n"
    program = assemble(source, mode=mode)
    lab = (0x10008).to_bytes(8, "little")
    assert program.code == (lab[:4] + (5).to_bytes(4, "little") + lab + b"a\x7f" + bytes(3) + bytes(8)
                            + bytes.fromhex("ffff0080"))

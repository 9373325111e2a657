"""``hgcmlab run PROG --gdb [HOST:]PORT``: waits for gdb before the first instruction,
serves the program's ELF image, ends cleanly with one line when gdb goes away, and refuses
bad addresses with a usage error."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.guest_asm.elfout import elf_image
from hgcmlab.machine.cli import EXIT_GUEST_FAULT, EXIT_USAGE, main
from hgcmlab.machine.gdbstub import parse_listen_address
from hgcmlab.machine.gdbstub.client import GdbClient
from hgcmlab.machine.programs import PROGRAMS_DIR

ROOT = Path(__file__).resolve().parents[2]


def start_cli(*arguments: str) -> tuple[subprocess.Popen[str], int]:
    """Start ``hgcmlab run ... --gdb 127.0.0.1:0`` and read the port it announces."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "hgcmlab.machine.cli", "run", *arguments, "--gdb", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    assert process.stderr is not None
    line = process.stderr.readline()
    match = re.fullmatch(r"hgcmlab: waiting for gdb on 127\.0\.0\.1:(\d+) \(gdb -ex 'target remote "
                         r"127\.0\.0\.1:\d+'\)\n", line)
    assert match, line
    return process, int(match.group(1))


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


def test_run_waits_for_gdb_and_serves_the_program(tmp_path: Path) -> None:
    process, port = start_cli(str(PROGRAMS_DIR / "demo.s"), "--share", f"demo={tmp_path}")
    client = GdbClient("127.0.0.1", port)
    try:
        name = client.request(b"qXfer:exec-file:read::0,400")
        assert name == b"l" + str((PROGRAMS_DIR / "demo.s").resolve()).encode() + b".elf"
        assert client.request(b"vFile:open:" + name[1:].hex().encode() + b",0,0") == b"F3"
        head = client.request(b"vFile:pread:3,40,0")
        assert head.startswith(b"F40;\x7fELF")
        assert elf_image(assemble(PROGRAMS_DIR / "demo.s"))[:4] == b"\x7fELF"
        assert client.request(b"p10") == (0x10000).to_bytes(8, "little").hex().encode()
        assert client.request(b"c") == b"W00"
    finally:
        client.close()
    status, out, err = finish(process)
    assert status == 0 and err == ""
    assert "[guest] sf: done" in out and "run ended by exit device, code 0" in out


def test_gdb_going_away_ends_the_run_with_one_line(tmp_path: Path) -> None:
    process, port = start_cli(str(PROGRAMS_DIR / "demo.s"), "--share", f"demo={tmp_path}")
    client = GdbClient("127.0.0.1", port)
    assert client.request(b"?") in (b"S05", b"T05thread:1;")
    client.close()
    status, out, err = finish(process)
    assert status == EXIT_GUEST_FAULT and out == ""
    assert err == "hgcmlab: gdb disconnected (the debugger closed the connection); the run ended at cycle 0\n"


def test_kill_from_gdb(tmp_path: Path) -> None:
    process, port = start_cli(str(PROGRAMS_DIR / "hello_log.s"))
    client = GdbClient("127.0.0.1", port)
    client.send(b"k")
    client.close()
    status, _out, err = finish(process)
    assert status == EXIT_GUEST_FAULT and err == "hgcmlab: killed from gdb; the run ended at cycle 0\n"


@pytest.mark.parametrize("address, message", [
    ("nope", "invalid gdb address 'nope': expected [HOST:]PORT"),
    ("70000", "invalid gdb port 70000: expected 0..65535"),
    ("256.1.1.1:5", "cannot listen for gdb on 256.1.1.1:5: "),
])
def test_bad_gdb_addresses_are_usage_errors(address: str, message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    status = main(["run", str(PROGRAMS_DIR / "hello_log.s"), "--gdb", address], out, err)
    assert status == EXIT_USAGE and err.getvalue().startswith(f"hgcmlab: error: {message}")
    assert err.getvalue().count("\n") == 1


def test_listen_addresses() -> None:
    assert parse_listen_address("1234") == ("127.0.0.1", 1234)
    assert parse_listen_address(":1234") == ("127.0.0.1", 1234)
    assert parse_listen_address("0.0.0.0:1") == ("0.0.0.0", 1)
    assert parse_listen_address("[::1]:99") == ("::1", 99)


def test_what_gdb_is_served_for_each_kind_of_program(tmp_path: Path) -> None:
    from hgcmlab.machine.gdbstub import exec_file_for

    program = assemble(PROGRAMS_DIR / "hello_log.s")
    served = exec_file_for(program, PROGRAMS_DIR / "hello_log.s")
    assert served is not None and served.data == elf_image(program)
    assert served.name == str((PROGRAMS_DIR / "hello_log.s").resolve()) + ".elf"
    elf = tmp_path / "hello.elf"
    elf.write_bytes(elf_image(program))
    served = exec_file_for(None, elf)
    assert served is not None and (served.name, served.data) == (str(elf.resolve()), elf.read_bytes())
    flat = tmp_path / "hello.bin"
    flat.write_bytes(program.code)
    assert exec_file_for(None, flat) is None


def test_a_flat_binary_is_debugged_without_an_image(tmp_path: Path) -> None:
    flat = tmp_path / "exit.bin"
    flat.write_bytes(assemble("_start:\n    mov eax, 5\n    out 0xF4, eax\n").code)
    process, port = start_cli(str(flat))
    client = GdbClient("127.0.0.1", port)
    try:
        assert "qXfer:exec-file:read+" not in client.request(b"qSupported").decode()
        assert client.request(b"qXfer:exec-file:read::0,100") == b""
        assert client.request(b"c") == b"W05"
    finally:
        client.close()
    status, _out, err = finish(process)
    assert status == 5 and err == ""

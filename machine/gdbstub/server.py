"""Listening for gdb and running a program under it.

``GdbServer(host, port)`` listens (loopback unless told otherwise; port 0 picks a free
one); ``run_under_gdb(machine, server, ...)`` waits for gdb to connect, stops before the
first instruction (like QEMU's ``-s -S``), runs the loaded program under gdb's control and
returns the run's result.  When gdb kills the run or goes away, ``DebugRunEnded`` carries
a one-line description instead.
"""

from __future__ import annotations

import socket
from pathlib import Path

from hgcmlab.guest_asm.assembler import AssembledProgram
from hgcmlab.guest_asm.elfout import elf_image
from hgcmlab.machine.gdbstub.control import DebuggerAbort
from hgcmlab.machine.gdbstub.packets import Connection
from hgcmlab.machine.gdbstub.session import ExecFile, GdbSession
from hgcmlab.machine.machine import DEFAULT_INSTRUCTION_BUDGET, Machine, RunResult

#: Where the stub listens unless told otherwise: this host only.
DEFAULT_HOST = "127.0.0.1"


class DebugRunEnded(Exception):
    """gdb ended the run before the guest did (kill, disconnect); the message says how."""


def parse_listen_address(text: str) -> tuple[str, int]:
    """``PORT`` or ``HOST:PORT`` (``[v6addr]:PORT`` too); ValueError with a one-line reason."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = DEFAULT_HOST
    host = host.strip("[]") or DEFAULT_HOST
    try:
        port = int(port_text, 10)
    except ValueError:
        raise ValueError(f"invalid gdb address {text!r}: expected [HOST:]PORT") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid gdb port {port}: expected 0..65535")
    return host, port


class GdbServer:
    """A listening socket for one gdb connection."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(1)
        except (OSError, OverflowError) as error:
            self._sock.close()
            raise ValueError(f"cannot listen for gdb on {host}:{port}: {error}") from None
        self.host = host
        self.port = int(self._sock.getsockname()[1])

    def accept(self, timeout: float | None = None) -> Connection:
        """Wait (at most ``timeout`` seconds, None: forever) for gdb to connect."""
        self._sock.settimeout(timeout)
        try:
            sock, _peer = self._sock.accept()
        except TimeoutError:
            raise DebugRunEnded(f"no debugger connected to {self.host}:{self.port} within {timeout:g} s") from None
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Connection(sock)

    def close(self) -> None:
        """Stop listening (idempotent)."""
        self._sock.close()


def exec_file_for(program: AssembledProgram | None, path: Path | None) -> ExecFile | None:
    """What gdb may fetch as the program: an assembled program as an ELF image with its
    symbols and lines, an ELF file as it is, nothing for a flat binary."""
    if program is not None:
        name = str(path.resolve()) + ".elf" if path is not None else "/hgcmlab/program.elf"
        return ExecFile(name, elf_image(program))
    if path is not None and path.is_file():
        data = path.read_bytes()
        if data[:4] == b"\x7fELF":
            return ExecFile(str(path.resolve()), data)
    return None


def run_under_gdb(machine: Machine, server: GdbServer, *,
                  max_instructions: int | None = DEFAULT_INSTRUCTION_BUDGET, exec_file: ExecFile | None = None, accept_timeout: float | None = None) -> RunResult:
    """Accept one gdb connection and run ``machine``'s loaded program under it.

    Raises ``DebugRunEnded`` when no gdb connects in time, or gdb kills the run or
    disconnects before the guest ends; the machine then stays where it stopped."""
    connection = server.accept(accept_timeout)
    try:
        session = GdbSession(machine, connection, exec_file)
        try:
            return session.run(max_instructions)
        except DebuggerAbort as abort:
            raise DebugRunEnded(f"{abort}; the run ended at cycle {machine.cycles}") from None
    finally:
        connection.close()

"""One gdb session: the remote serial protocol's commands on top of ``Debugger``.

Supported: ``qSupported``, ``qXfer:features:read`` (target.xml), ``qXfer:exec-file:read``
and ``vFile:open/pread/fstat/close/setfs`` (gdb fetches the program's ELF image, with
symbols and line information, from the stub), ``?``, ``g``/``G``, ``p``/``P``,
``m``/``M``/``X``, ``Z0``-``Z4``/``z0``-``z4``, ``c``/``C``/``s``/``S``, ``vCont``,
Ctrl-C, ``k``/``vKill``, ``D``, ``qRcmd`` (monitor commands), ``QStartNoAckMode`` and the
thread queries of a single-threaded target (thread 1).  Anything else gets the empty reply
("not supported"); malformed arguments get ``E01``.  Nothing a debugger sends can raise
out of here except ``DebuggerAbort`` (kill, disconnect).
"""

from __future__ import annotations

import binascii
import re
import struct
from dataclasses import dataclass
from enum import Enum

from hgcmlab.machine.gdbstub import packets
from hgcmlab.machine.gdbstub.control import DebuggerAbort, Debugger, Resume, Stop, StopReason, Watchpoint, WatchKind
from hgcmlab.machine.gdbstub.packets import Connection, Disconnected
from hgcmlab.machine.gdbstub.registers import layout, target_xml
from hgcmlab.machine.machine import Machine, RunEnd, RunResult
from hgcmlab.machine.tracing import TraceEvent

_SIGINT, _SIGTRAP, _SIGSEGV, _SIGXCPU = 2, 5, 11, 24
_ERROR = b"E01"
_OK = b"OK"
_WATCH_KINDS = {2: WatchKind.WRITE, 3: WatchKind.READ, 4: WatchKind.ACCESS}
#: The one file descriptor vFile:open hands out.
_EXEC_FD = 3
_ENOENT, _EBADF = 2, 9


@dataclass(frozen=True)
class ExecFile:
    """The program image gdb may fetch: the name it is served under and its bytes."""

    name: str
    data: bytes


class _Malformed(Exception):
    """An argument of a packet could not be parsed."""


class _Mode(Enum):
    STOPPED = "stopped"     # the guest is stopped in a hook: resumes return to it
    ENDED = "ended"         # the run is over: resumes report the end


_HEX = re.compile(rb"[0-9a-fA-F]{1,16}")


def _hex_int(text: bytes) -> int:
    """A hex number of at most 64 bits (gdb's addresses, lengths, register numbers)."""
    if not _HEX.fullmatch(text):
        raise _Malformed(text)
    return int(text, 16)


def _hex_bytes(text: bytes) -> bytes:
    try:
        return binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        raise _Malformed(text) from None


class GdbSession:
    """Serves one connected gdb for one run of ``machine`` (program already loaded)."""

    def __init__(self, machine: Machine, connection: Connection, exec_file: ExecFile | None = None) -> None:
        self.machine = machine
        self.connection = connection
        self.exec_file = exec_file
        self.debugger = Debugger(machine, self._stopped, self._poll)
        self._registers = layout(machine.mode)
        self._last_stop = b"T05thread:1;"
        self._trace_to_console = False
        self._running = False
        self._open_fd = False
        self._mode = _Mode.STOPPED
        self._pc_writable = False
        self._detached = False
        self._end_signal = _SIGSEGV
        machine.tracer.add_sink(self._trace_event)

    # --- the run --------------------------------------------------------------------------

    def run(self, max_instructions: int | None) -> RunResult:
        """Wait for gdb's first resume, run the program under its control and report the
        end.  Raises ``DebuggerAbort`` when gdb kills the run or disconnects.  Afterwards
        the machine no longer refers to the session (its hooks stay installed, idle)."""
        self.debugger.attach()
        try:
            try:
                self.debugger.start()
                result = self.machine.run(max_instructions)
            except Disconnected as error:
                raise DebuggerAbort(f"gdb disconnected ({error})") from None
            self._running = False
            self._report_end(result)
            return result
        finally:
            self._running = False
            self._trace_to_console = False
            self.debugger.detach()
            self.machine.tracer.remove_sink(self._trace_event)

    def _report_end(self, result: RunResult) -> None:
        """Tell gdb how the run ended; after a fault or an exhausted budget, let it look
        at the machine first."""
        if self._detached:
            return
        try:
            if result.end in (RunEnd.EXIT, RunEnd.HALT):
                self.connection.send_packet(f"W{result.exit_code & 0xFF:02x}".encode())
                return
            # A fault, an exhausted budget, or a run ended from outside (paused, interrupted).
            signal = {RunEnd.FAULT: _SIGSEGV, RunEnd.BUDGET: _SIGXCPU}.get(result.end, _SIGINT)
            self._mode = _Mode.ENDED
            self._last_stop = f"T{signal:02x}thread:1;".encode()
            self._end_signal = signal
            self.connection.send_packet(self._last_stop)
            try:
                self._serve()
            except DebuggerAbort:
                pass
        except Disconnected:
            pass

    def _stopped(self, stop: Stop) -> Resume:
        self._running = False
        # Before the first instruction nothing is counted yet: the pc may be moved.
        self._pc_writable = stop.reason is StopReason.START
        if stop.reason is not StopReason.START:
            self._last_stop = self._stop_reply(stop)
            self._send(self._last_stop)
        resume = self._serve()
        self._running = True
        return resume

    def _poll(self) -> bool:
        try:
            return self.connection.poll_interrupt()
        except Disconnected as error:
            raise DebuggerAbort(f"gdb disconnected ({error})") from None

    def _send(self, payload: bytes) -> None:
        try:
            self.connection.send_packet(payload)
        except Disconnected as error:
            raise DebuggerAbort(f"gdb disconnected ({error})") from None

    def _stop_reply(self, stop: Stop) -> bytes:
        signal = _SIGINT if stop.reason is StopReason.INTERRUPT else _SIGTRAP
        reply = f"T{signal:02x}thread:1;"
        if stop.reason is StopReason.BREAKPOINT:
            reply += "swbreak:;"
        elif stop.reason is StopReason.HW_BREAKPOINT:
            reply += "hwbreak:;"
        elif stop.reason is StopReason.WATCHPOINT and stop.watchpoint is not None:
            reply += f"{stop.watchpoint.kind.value}:{stop.watchpoint.address:x};"
        return reply.encode()

    def _serve(self) -> Resume:
        """Answer packets until one resumes the guest."""
        while True:
            try:
                packet = self.connection.read_packet()
            except Disconnected as error:
                raise DebuggerAbort(f"gdb disconnected ({error})") from None
            if packet == packets.INTERRUPT:
                continue        # already stopped
            try:
                outcome = self._dispatch(packet)
            except _Malformed:
                outcome = _ERROR
            if isinstance(outcome, Resume):
                if self._mode is _Mode.ENDED:
                    if outcome is not Resume.DETACH:
                        self._send(f"X{self._end_signal:02x}".encode())
                    raise DebuggerAbort("the run had ended")
                return outcome
            if outcome is not None:
                self._send(outcome)

    # --- commands -------------------------------------------------------------------------

    def _dispatch(self, packet: bytes) -> bytes | Resume | None:
        if not packet:
            return b""
        head, body = packet[:1], packet[1:]
        simple = {b"?": lambda: self._last_stop, b"g": self._read_registers}
        if head in simple:
            return simple[head]()
        if head == b"G":
            return self._write_registers(body)
        if head == b"p":
            return self._read_register(_hex_int(body))
        if head == b"P":
            number, _, value = body.partition(b"=")
            return self._write_register(_hex_int(number), _hex_bytes(value))
        if head == b"m":
            address, _, length = body.partition(b",")
            return self._read_memory(_hex_int(address), _hex_int(length))
        if head in (b"M", b"X"):
            where, sep, data = body.partition(b":")
            if not sep:
                raise _Malformed(body)
            address, _, length = where.partition(b",")
            content = _hex_bytes(data) if head == b"M" else packets.unescape(data)
            if len(content) != _hex_int(length):
                raise _Malformed(body)
            return self._write_memory(_hex_int(address), content)
        if head in (b"Z", b"z"):
            return self._breakpoint(head == b"Z", body)
        if head in (b"c", b"s", b"C", b"S"):
            return self._resume(head.lower() == b"s", body, head in (b"C", b"S"))
        if head == b"k":
            raise DebuggerAbort("killed from gdb")
        if head == b"D":
            self._send(_OK)
            self._detached = True
            self._trace_to_console = False
            return Resume.DETACH
        if head == b"H" or head == b"T":
            return _OK
        if head == b"q":
            return self._query(packet)
        if head == b"Q":
            return self._set(packet)
        if head == b"v":
            return self._v_packet(packet)
        return b""

    def _register_value(self, number: int) -> bytes:
        register = self._registers[number]
        value = self.machine.cpu.read_register(register.name) & ((1 << register.bits) - 1)
        return value.to_bytes(register.bits // 8, "little")

    def _read_registers(self) -> bytes:
        return b"".join(self._register_value(n) for n in range(len(self._registers))).hex().encode()

    def _read_register(self, number: int) -> bytes:
        if number >= len(self._registers):
            return _ERROR
        return self._register_value(number).hex().encode()

    def _write_register(self, number: int, value: bytes) -> bytes:
        if number >= len(self._registers) or len(value) != self._registers[number].bits // 8:
            return _ERROR
        return self._store_register(number, value)

    def _store_register(self, number: int, value: bytes) -> bytes:
        register = self._registers[number]
        if register.name in ("rip", "eip") and not self._pc_writable:
            if int.from_bytes(value, "little") != self.machine.cpu.read_register(register.name):
                return b"E02"   # mid-run the counts depend on the pc: see docs/debugging.md
        try:
            self.machine.cpu.write_register(register.name, int.from_bytes(value, "little"))
        except Exception:  # noqa: BLE001 - Unicorn refuses some values (selectors, cr0 bits)
            return _ERROR
        return _OK

    def _pc_number(self) -> int:
        return next(n for n, r in enumerate(self._registers) if r.name in ("rip", "eip"))

    def _write_registers(self, body: bytes) -> bytes:
        data = _hex_bytes(body)
        offset = 0
        status = _OK
        for number, register in enumerate(self._registers):
            size = register.bits // 8
            if offset + size > len(data):
                break
            chunk = data[offset:offset + size]
            offset += size
            if chunk != self._register_value(number):
                status = self._store_register(number, chunk) if status == _OK else status
        return status

    def _read_memory(self, address: int, length: int) -> bytes:
        length = min(length, packets.MAX_PACKET // 2)
        memory = self.machine.memory
        if memory.contains(address, length):
            return memory.read(address, length).hex().encode()
        data = self.machine.cpu.read_memory(address, length)
        return data.hex().encode() if data is not None else _ERROR

    def _write_memory(self, address: int, data: bytes) -> bytes:
        memory = self.machine.memory
        # A linear address, as gdb's reads (through the guest's page tables when it runs paged).
        runs = self.machine.cpu.physical_runs(address, len(data))
        if runs is None:
            return _ERROR
        # The debugger's own writes are not guest or device writes: no watchpoint fires.
        observer, memory.write_observer = memory.write_observer, None
        try:
            position = 0
            for physical, length in runs:
                memory.write(physical, data[position:position + length])
                position += length
        finally:
            memory.write_observer = observer
        return _OK

    def _breakpoint(self, insert: bool, body: bytes) -> bytes:
        fields = body.split(b";")[0].split(b",")
        if len(fields) != 3:
            raise _Malformed(body)
        kind, address, length = _hex_int(fields[0]), _hex_int(fields[1]), _hex_int(fields[2])
        debugger = self.debugger
        if kind in (0, 1):
            if not insert:
                debugger.remove_breakpoint(address)
                return _OK
            return _OK if debugger.add_breakpoint(address, hardware=kind == 1) else b"E0e"
        if kind in _WATCH_KINDS:
            watchpoint = Watchpoint(_WATCH_KINDS[kind], address, length)
            if not insert:
                debugger.remove_watchpoint(watchpoint)
                return _OK
            return _OK if debugger.add_watchpoint(watchpoint) else b"E0e"
        return b""

    def _resume(self, step: bool, body: bytes, has_signal: bool) -> bytes | Resume:
        if has_signal:
            _signal, _, body = body.partition(b";")
        if body:
            address = _hex_int(body)
            bits = self._registers[self._pc_number()].bits
            if address >> bits:
                return _ERROR
            if address != self.machine.cpu.pc:
                status = self._store_register(self._pc_number(), address.to_bytes(bits // 8, "little"))
                if status != _OK:
                    return status
        return Resume.STEP if step else Resume.CONTINUE

    def _v_packet(self, packet: bytes) -> bytes | Resume | None:
        if packet == b"vCont?":
            return b"vCont;c;C;s;S"
        if packet.startswith(b"vCont;"):
            for action in packet[6:].split(b";"):
                verb, _, thread = action.partition(b":")
                if thread not in (b"", b"1", b"-1", b"p1.1", b"p1.-1"):
                    continue
                if verb[:1] in (b"s", b"S"):
                    return Resume.STEP
                if verb[:1] in (b"c", b"C"):
                    return Resume.CONTINUE
                return _ERROR
            return _ERROR
        if packet.startswith(b"vKill"):
            self._send(_OK)
            raise DebuggerAbort("killed from gdb")
        if packet.startswith(b"vFile:"):
            return self._file(packet[6:])
        return b""

    def _query(self, packet: bytes) -> bytes:
        if packet.startswith(b"qSupported"):
            features = [f"PacketSize={packets.MAX_PACKET:x}", "qXfer:features:read+", "QStartNoAckMode+",
                        "swbreak+", "hwbreak+", "vContSupported+"]
            if self.exec_file is not None:
                features.append("qXfer:exec-file:read+")
            return ";".join(features).encode()
        if packet.startswith(b"qXfer:"):
            return self._transfer(packet)
        if packet.startswith(b"qRcmd,"):
            return self._monitor(_hex_bytes(packet[6:]).decode("utf-8", "replace"))
        if packet == b"qAttached" or packet.startswith(b"qAttached:"):
            return b"1"     # gdb detaches instead of killing when it quits
        answers = {b"qC": b"QC1", b"qfThreadInfo": b"m1", b"qsThreadInfo": b"l", b"qSymbol::": _OK}
        return answers.get(packet, b"")

    def _set(self, packet: bytes) -> bytes | None:
        if packet == b"QStartNoAckMode":
            self._send(_OK)
            self.connection.ack = False
            return None
        return b""

    def _transfer(self, packet: bytes) -> bytes:
        parts = packet.split(b":")
        if len(parts) != 5 or parts[2] != b"read":
            return b""
        obj, annex, window = parts[1], parts[3], parts[4]
        offset_text, _, length_text = window.partition(b",")
        offset, length = _hex_int(offset_text), _hex_int(length_text)
        if obj == b"features":
            if annex != b"target.xml":
                return b"E00"
            content = target_xml(self.machine.mode).encode()
        elif obj == b"exec-file" and self.exec_file is not None:
            content = self.exec_file.name.encode()
        else:
            return b""
        chunk = content[offset:offset + min(length, packets.MAX_PACKET // 2)]
        more = offset + len(chunk) < len(content)
        return (b"m" if more else b"l") + packets.escape(chunk)

    def _file(self, body: bytes) -> bytes:
        operation, _, arguments = body.partition(b":")
        fields = arguments.split(b",")
        exec_file = self.exec_file
        if operation == b"setfs":
            return b"F0"
        if operation == b"open":
            if len(fields) != 3:
                raise _Malformed(body)
            name = _hex_bytes(fields[0]).decode("utf-8", "replace")
            if exec_file is None or name != exec_file.name:
                return f"F-1,{_ENOENT:x}".encode()
            self._open_fd = True
            return f"F{_EXEC_FD:x}".encode()
        if operation in (b"pread", b"fstat", b"close"):
            if not fields or _hex_int(fields[0]) != _EXEC_FD or not self._open_fd or exec_file is None:
                return f"F-1,{_EBADF:x}".encode()
            if operation == b"close":
                self._open_fd = False
                return b"F0"
            if operation == b"fstat":
                stat = struct.pack(">7I3Q3I", 0, 0, 0o100644, 1, 0, 0, 0, len(exec_file.data), 4096,
                                   (len(exec_file.data) + 511) // 512, 0, 0, 0)
                return f"F{len(stat):x};".encode() + packets.escape(stat)
            if len(fields) != 3:
                raise _Malformed(body)
            count, offset = min(_hex_int(fields[1]), packets.MAX_PACKET // 2), _hex_int(fields[2])
            chunk = exec_file.data[offset:offset + count]
            return f"F{len(chunk):x};".encode() + packets.escape(chunk)
        return b""

    # --- monitor commands -----------------------------------------------------------------

    def _monitor(self, command: str) -> bytes:
        words = command.split()
        if words == ["cycles"]:
            cpu = self.machine.cpu
            text = (f"cycles {self.machine.cycles}  instructions {cpu.instructions_at(cpu.pc)}"
                    f"  pc {cpu.pc:#x}\n")
        elif words == ["hgcm", "pending"]:
            pending = self.machine.vmmdev.pending
            lines = [f"{len(pending)} pending HGCM command(s)"]
            for address, command_ in sorted(pending.items()):
                function = ""
                if command_.call is not None:
                    client = self.machine.vmmdev.hgcm.client(command_.call.client_id)
                    name = client.service.function_name(command_.call.function) if client else "?"
                    function = f" {name} (function {command_.call.function}, client {command_.call.client_id})"
                state = " cancelled" if command_.cancelled else ""
                lines.append(f"  request {address:#x}: {command_.kind}{function}, submitted at cycle "
                             f"{command_.submitted_cycle}{state}")
            text = "\n".join(lines) + "\n"
        elif len(words) == 2 and words[0] == "trace" and words[1] in ("on", "off"):
            self._trace_to_console = words[1] == "on"
            text = f"trace events {'are' if self._trace_to_console else 'are not'} shown while the guest runs\n"
        elif words[:1] == ["snapshot"]:
            text = "snapshot: this machine has no snapshots yet\n"
        else:
            text = ("monitor commands: cycles | hgcm pending | trace on|off | snapshot FILE\n"
                    if words in ([], ["help"]) else f"unknown monitor command {command!r} (try: monitor help)\n")
        self._send(b"O" + text.encode().hex().encode())
        return _OK

    def _trace_event(self, event: TraceEvent) -> None:
        if self._trace_to_console and self._running:
            self._send(b"O" + (event.to_json() + "\n").encode().hex().encode())

"""gdb remote serial protocol framing: ``$payload#checksum`` packets, acknowledgements,
binary escapes and the out-of-band interrupt byte (0x03).

Malformed input never raises: a packet with a bad checksum is answered ``-`` (gdb sends it
again), bytes outside packets are ignored, and a packet longer than ``MAX_PACKET`` is
dropped whole and answered ``-``.  A closed connection raises ``Disconnected``.
"""

from __future__ import annotations

import select
import socket

#: Largest packet accepted (also announced to gdb as PacketSize).
MAX_PACKET = 0x4000
#: Times a packet is sent again after a negative acknowledgement before giving up.
_RESENDS = 5
#: The interrupt request gdb sends while the guest runs.
INTERRUPT = b"\x03"


class Disconnected(Exception):
    """The debugger closed the connection (or it failed)."""


def checksum(payload: bytes) -> int:
    """The modulo-256 sum of the payload bytes."""
    return sum(payload) & 0xFF


def escape(data: bytes) -> bytes:
    """Binary data for a reply: ``#``, ``$``, ``}`` and ``*`` become ``}`` + byte ^ 0x20."""
    out = bytearray()
    for byte in data:
        if byte in b"#$}*":
            out += bytes((0x7D, byte ^ 0x20))
        else:
            out.append(byte)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    """Undo ``escape`` (binary payloads of ``X`` packets); a dangling ``}`` is dropped."""
    out = bytearray()
    iterator = iter(data)
    for byte in iterator:
        if byte == 0x7D:
            following = next(iterator, None)
            if following is not None:
                out.append(following ^ 0x20)
        else:
            out.append(byte)
    return bytes(out)


def frame(payload: bytes) -> bytes:
    """A packet ready to send."""
    return b"$" + payload + b"#" + f"{checksum(payload):02x}".encode()


class Connection:
    """One gdb connection over a connected socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self.ack = True            # until gdb asks for QStartNoAckMode
        self.interrupted = False   # a 0x03 arrived outside a packet

    def close(self) -> None:
        """Close the socket (idempotent)."""
        try:
            self._sock.close()
        except OSError:
            pass

    def _fill(self) -> None:
        try:
            data = self._sock.recv(65536)
        except OSError as error:
            raise Disconnected(str(error)) from None
        if not data:
            raise Disconnected("the debugger closed the connection")
        self._buffer += data

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as error:
            raise Disconnected(str(error)) from None

    def read_packet(self) -> bytes:
        """The next packet's payload (blocking); a lone 0x03 is returned as ``INTERRUPT``."""
        while True:
            packet = self._take_packet()
            if packet is not None:
                return packet
            self._fill()

    def _take_packet(self) -> bytes | None:
        buffer = self._buffer
        while buffer:
            first = buffer[0]
            if first == 0x03:
                del buffer[0]
                return INTERRUPT
            if first != ord("$"):
                del buffer[0]       # acknowledgements and noise between packets
                continue
            end = buffer.find(b"#")
            if end < 0:
                if len(buffer) > MAX_PACKET + 4:
                    buffer.clear()
                    self._send(b"-")
                return None
            if len(buffer) < end + 3:
                return None
            payload = bytes(buffer[1:end])
            received = bytes(buffer[end + 1:end + 3])
            del buffer[:end + 3]
            if len(payload) > MAX_PACKET:
                self._send(b"-")
                continue
            try:
                valid = int(received, 16) == checksum(payload)
            except ValueError:
                valid = False
            if not self.ack:
                return payload
            if not valid:
                self._send(b"-")
                continue
            self._send(b"+")
            return payload
        return None

    def send_packet(self, payload: bytes) -> None:
        """Send a packet; in acknowledgement mode wait for ``+`` (resending after ``-``)."""
        data = frame(payload)
        for _attempt in range(_RESENDS + 1):
            self._send(data)
            if not self.ack:
                return
            while True:
                while not self._buffer:
                    self._fill()
                byte = self._buffer[0]
                if byte in b"+-":
                    del self._buffer[0]
                    break
                if byte == 0x03:
                    del self._buffer[0]
                    self.interrupted = True
                    continue
                # gdb sent a new packet instead of an acknowledgement: take it as one.
                return
            if byte == ord("+"):
                return
        raise Disconnected("the debugger rejected a packet repeatedly")

    def poll_interrupt(self) -> bool:
        """Without blocking: True when gdb asked for a stop (0x03) since the last call."""
        try:
            while select.select([self._sock], [], [], 0)[0]:
                self._fill()
        except (OSError, ValueError) as error:
            raise Disconnected(str(error)) from None
        while self._buffer and self._buffer[0] != ord("$"):
            if self._buffer[0] == 0x03:
                self.interrupted = True
            del self._buffer[0]
        if len(self._buffer) > 2 * MAX_PACKET:
            del self._buffer[:len(self._buffer) - 2 * MAX_PACKET]
        interrupted, self.interrupted = self.interrupted, False
        return interrupted

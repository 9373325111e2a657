"""A minimal gdb remote-protocol client (acknowledgement mode), for tests and scripts."""

from __future__ import annotations

import socket

from hgcmlab.machine.gdbstub.packets import checksum, frame


class ProtocolError(Exception):
    """The stub answered something that is not a well-formed packet."""


class GdbClient:
    """Talks to a stub at ``host:port``; every wait is bounded by ``timeout`` seconds."""

    def __init__(self, host: str, port: int, timeout: float = 20.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        # Small packets back and forth: without this, delayed acknowledgements cost 40 ms each.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()
        #: Console output (``O`` packets) received while waiting for replies.
        self.console: list[str] = []

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (malformed packets, the interrupt byte)."""
        self.sock.sendall(data)

    def _byte(self) -> int:
        while not self._buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the stub closed the connection")
            self._buffer += data
        byte = self._buffer[0]
        del self._buffer[0]
        return byte

    def read_ack(self) -> bytes:
        """The next acknowledgement byte (``+`` or ``-``)."""
        return bytes([self._byte()])

    def send(self, payload: bytes) -> None:
        """Send a packet and require its ``+``."""
        self.sock.sendall(frame(payload))
        ack = self.read_ack()
        if ack != b"+":
            raise ProtocolError(f"packet {payload!r} answered {ack!r}")

    def receive(self) -> bytes:
        """The next packet's payload, acknowledged; console packets are collected in
        ``console`` and skipped."""
        while True:
            while self._byte() != ord("$"):
                pass
            payload = bytearray()
            while (byte := self._byte()) != ord("#"):
                payload.append(byte)
            received = int(bytes([self._byte(), self._byte()]), 16)
            if received != checksum(bytes(payload)):
                raise ProtocolError(f"bad checksum on {bytes(payload)!r}")
            self.sock.sendall(b"+")
            if payload.startswith(b"O") and payload != b"OK":
                self.console.append(bytes.fromhex(payload[1:].decode()).decode())
                continue
            return bytes(payload)

    def request(self, payload: bytes) -> bytes:
        """Send a packet and return the reply."""
        self.send(payload)
        return self.receive()

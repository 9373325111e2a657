"""The two small standard devices every machine has.

- ``ExitDevice``: port 0xF4, like QEMU's isa-debug-exit: a 1-, 2- or 4-byte write of value
  v ends the run with exit code v (after the OUT instruction completes).
- ``BackdoorLogDevice``: VirtualBox's backdoor log port 0x504: 1-byte writes are collected
  into a line buffer, flushed as a guest log line at '\\n' or '\\r'; other widths are
  ignored, as VirtualBox does.
"""

from __future__ import annotations

from hgcmlab.machine.device import AttachContext, PortRange
from hgcmlab.machine.layout import BACKDOOR_LOG_PORT, EXIT_PORT

#: A guest that never sends a newline cannot grow the line buffer past this.
MAX_LOG_LINE = 4096


class ExitDevice:
    """Ends the run with the written value as exit code."""

    name = "exit"

    def __init__(self) -> None:
        self._context: AttachContext | None = None

    def port_ranges(self) -> list[PortRange]:
        return [PortRange("exit", 0, 1, frozenset({1, 2, 4}), fixed_base=EXIT_PORT)]

    def attach(self, context: AttachContext) -> None:
        self._context = context

    def io_read(self, range_name: str, offset: int, size: int) -> int:
        # Write-only device: reads see an empty bus.
        return (1 << (8 * size)) - 1

    def io_write(self, range_name: str, offset: int, size: int, value: int) -> None:
        assert self._context is not None, "device used before attach"
        self._context.request_exit(value)


class BackdoorLogDevice:
    """Turns byte writes to port 0x504 into guest log lines."""

    name = "debuglog"

    def __init__(self) -> None:
        self._context: AttachContext | None = None
        self._line = bytearray()

    def port_ranges(self) -> list[PortRange]:
        return [PortRange("log", 0, 1, frozenset({1}), fixed_base=BACKDOOR_LOG_PORT)]

    def attach(self, context: AttachContext) -> None:
        self._context = context

    def io_read(self, range_name: str, offset: int, size: int) -> int:
        return 0xFF

    def io_write(self, range_name: str, offset: int, size: int, value: int) -> None:
        if value in (0x0A, 0x0D):
            self.flush()
            return
        self._line.append(value)
        if len(self._line) >= MAX_LOG_LINE:
            self.flush()

    def save_state(self) -> dict:
        """The partial line not emitted yet."""
        return {"line": bytes(self._line)}

    def load_state(self, state: dict) -> list[str]:
        """Restore ``save_state``'s partial line."""
        self._line = bytearray(state["line"])
        return []

    def flush(self) -> None:
        """Emit a partial line (at a line end, a full buffer, or the end of a run)."""
        if not self._line:
            return
        assert self._context is not None, "device used before attach"
        text = self._line.decode("utf-8", errors="replace")
        self._line.clear()
        self._context.log_line(text)

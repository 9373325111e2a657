"""Errors raised by the assembler front end and the program builders."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: hgcmlab.guest_asm.source raises these errors
    from hgcmlab.guest_asm.source import SourceLocation


class AssemblyError(Exception):
    """A program that cannot be assembled.

    ``location`` names the offending source line when it is known (always for include
    problems, rejected directives and keystone errors that could be pinned to a line);
    ``str(error)`` starts with ``file:line:`` in that case.
    """

    def __init__(self, message: str, location: SourceLocation | None = None) -> None:
        self.message = message
        self.location = location
        where = f"{location.file}:{location.line}: " if location else ""
        detail = f"\n    {location.text.strip()}" if location and location.text.strip() else ""
        super().__init__(f"{where}{message}{detail}")


class AssemblyTimeout(AssemblyError):
    """Keystone did not finish within the time bound (its worker process was killed)."""


class LoadError(Exception):
    """A program file that cannot be loaded or built, with the reason.  Declared here, not in
    the machine's loader (which re-exports it), so that the C kit's builder raises it
    without importing the machine."""

"""Trace files: streaming writers and a streaming reader.

The on-disk format is JSON Lines, one ``TraceEvent.to_json`` object per line (the format
``hgcmlab run --trace`` writes).  A name ending in ``.gz`` is gzip-compressed on write and
decompressed on read.  Writing and reading both stream: memory stays flat whatever the
length of the trace.  A write that fails (a full disk, ``/dev/full``) raises
``TraceWriteError`` naming the file, from the event that hit the failure or from ``close``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from hgcmlab.machine.tracing import SinkError, TraceEvent

#: Write buffer of the file writer (bytes); events are flushed in chunks of this size.
WRITE_BUFFER = 1 << 20


class TraceFileError(Exception):
    """A trace file cannot be read: the message names the file and, where known, the line."""


class TraceWriteError(SinkError):
    """A trace file cannot be written (opened, written or flushed): the message names the
    file and the operating system's reason.  The writer is closed when it is raised."""


def _open_text(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, mode + "b", compresslevel=1), encoding="utf-8",
                                newline="\n", write_through=False)
    return path.open(mode, encoding="utf-8", newline="\n", buffering=WRITE_BUFFER if mode == "w" else -1)


class TraceWriter:
    """A trace sink writing JSON Lines to ``path`` (``.gz``: compressed); a context manager.

    ``kinds`` keeps only those kinds (``None``: every event).  ``count`` is the number of
    events written so far.  Raises ``TraceWriteError`` when the file cannot be created;
    writing and closing raise it when the operating system refuses the data (after the
    first failure the writer is closed and ignores further events)."""

    def __init__(self, path: str | Path, kinds: Iterable[str] | None = None) -> None:
        self.path = Path(path)
        self._kinds = frozenset(kinds) if kinds is not None else None
        try:
            self._stream = _open_text(self.path, "w")
        except OSError as error:
            raise TraceWriteError(f"cannot write trace file {self.path}: {error.strerror or error}") from None
        self.count = 0
        self._failed = False

    def __call__(self, event: TraceEvent) -> None:
        if self._failed or (self._kinds is not None and event.kind not in self._kinds):
            return
        try:
            self._stream.write(event.to_json() + "\n")
        except OSError as error:
            self._fail(error)
        self.count += 1

    def close(self) -> None:
        """Flush and close the file (idempotent); raises ``TraceWriteError`` if the last
        buffered events cannot be written."""
        if self._failed or self._stream.closed:
            return
        try:
            self._stream.close()
        except OSError as error:
            self._fail(error)

    def _fail(self, error: OSError) -> None:
        """Give up on the file: close what can be closed and report ``error``."""
        self._failed = True
        with contextlib.suppress(OSError):
            self._stream.close()
        raise TraceWriteError(f"cannot write trace file {self.path}: {error.strerror or error}") from None

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_trace(path: str | Path, events: Iterable[TraceEvent]) -> int:
    """Write ``events`` to ``path``; returns how many were written."""
    with TraceWriter(path) as writer:
        for event in events:
            writer(event)
        return writer.count


def read_trace(path: str | Path) -> Iterator[TraceEvent]:
    """The events of a trace file, in order, one at a time.

    Raises ``TraceFileError`` (naming the file and line) for a missing or unreadable file
    or a line that is not a trace event; blank lines are skipped."""
    path = Path(path)
    try:
        stream = _open_text(path, "r")
    except OSError as error:
        raise TraceFileError(f"{path}: cannot read: {error.strerror or error}") from None
    number = 0
    with stream:
        try:
            for number, line in enumerate(stream, 1):  # noqa: B007 - number used after the loop
                if not line.strip():
                    continue
                try:
                    yield TraceEvent.from_json(line)
                except (ValueError, json.JSONDecodeError) as error:
                    raise TraceFileError(f"{path}:{number}: not a trace event ({error})") from None
        except (OSError, EOFError, UnicodeDecodeError) as error:
            # gzip.BadGzipFile is an OSError; a truncated .gz ends in EOFError.
            raise TraceFileError(f"{path}:{number + 1}: unreadable ({error})") from None

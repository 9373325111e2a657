"""Fault injection into the host syscall layer of ``hgcmlab.runtime.fs`` (tests only).

``hgcmlab.runtime.fs`` makes every host syscall through its ``SYSCALLS`` table.  ``inject`` swaps
chosen entries for wrappers that fail with an errno or shorten a write, for the duration
of a ``with`` block, and records every call of the wrapped syscalls.  Outside such a block
the table holds the plain ``os`` functions, so the injector costs nothing when off.

    with inject(Fault("pwrite", errno.ENOSPC, after=1)) as log:
        ...                       # the second pwrite fails with ENOSPC
    assert log.count("fsync") == 1

Faults: ``errno`` raises ``OSError(errno)`` (EINTR raises ``InterruptedError`` as the
kernel's would); ``short`` makes a write-like call (``write``, ``pwrite``) pass on at most
that many bytes.  A fault hits the calls after the first ``after`` matching ones, ``times``
of them (None: every later one).  Not thread-safe by design: one test at a time.
"""

from __future__ import annotations

import errno as errno_mod
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hgcmlab.runtime import fs

_WRITE_LIKE = {"write": 1, "pwrite": 1}


@dataclass
class Fault:
    """One fault on syscall ``call`` (a key of ``hgcmlab.runtime.fs.SYSCALLS``)."""

    call: str
    errno: int | None = None
    short: int | None = None
    after: int = 0
    times: int | None = 1
    seen: int = field(default=0, init=False)
    hits: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.call not in fs.SYSCALLS:
            raise ValueError(f"unknown syscall {self.call!r}")
        if (self.errno is None) == (self.short is None):
            raise ValueError("a fault needs exactly one of errno or short")
        if self.short is not None and self.call not in _WRITE_LIKE:
            raise ValueError(f"short applies to write-like calls, not {self.call!r}")

    def due(self) -> bool:
        """Count one matching call; True when this one is hit."""
        self.seen += 1
        if self.seen <= self.after or (self.times is not None and self.hits >= self.times):
            return False
        self.hits += 1
        return True


@dataclass
class CallLog:
    """The wrapped syscalls in call order: (name, first argument)."""

    calls: list[tuple[str, Any]] = field(default_factory=list)

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.calls if n == name)


def _wrap(name: str, real: Callable[..., Any], faults: list[Fault], log: CallLog) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        log.calls.append((name, args[0] if args else None))
        for fault in faults:
            if not fault.due():
                continue
            if fault.errno is not None:
                if fault.errno == errno_mod.EINTR:
                    raise InterruptedError(errno_mod.EINTR, os.strerror(errno_mod.EINTR))
                raise OSError(fault.errno, os.strerror(fault.errno))
            assert fault.short is not None
            index = _WRITE_LIKE[name]
            args = args[:index] + (bytes(args[index])[:fault.short],) + args[index + 1:]
        return real(*args, **kwargs)

    return wrapper


@contextmanager
def inject(*faults: Fault, record: tuple[str, ...] = ()) -> Iterator[CallLog]:
    """Install ``faults`` (and call recording for the syscalls named in ``record``)."""
    log = CallLog()
    names = {f.call for f in faults} | set(record)
    saved = {name: fs.SYSCALLS[name] for name in names}
    try:
        for name in names:
            fs.SYSCALLS[name] = _wrap(name, saved[name], [f for f in faults if f.call == name], log)
        yield log
    finally:
        fs.SYSCALLS.update(saved)

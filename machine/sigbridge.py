"""Ctrl-C into a running engine without a second thread (used by machine/runcontrol.py).

Python runs a signal handler only when the main thread executes Python, and while Unicorn
runs guest code natively (the native block hook, the native OUT hook) it may not for a long
time.  The run supervisor used to cover that with a watcher thread; but a second thread
costs the native path about 40 ns per call (Linux takes a reference on the file at every
file-descriptor system call of a multi-threaded process, and the native HGCM call is one
``preadv``), so where nothing else needs a thread (no wall-time budget, no progress line)
this bridge is used instead.

``install`` puts the native handler of ``machine/fastblock.py`` (``SIGNAL_SOURCE``) in front
of the interpreter's own C-level SIGINT handler, with the same flags and mask: on SIGINT it
sets ``State.slow`` of the running CPU, so the next block the guest enters goes to Python,
where the interpreter runs the Python handler (``RunSupervisor``'s, which cancels the run),
and it calls the interpreter's handler, which notes the signal as before.  ``remove``
restores the interpreter's handler.  Only on hosts with the native page (x86-64 Linux) and
only from the main thread; ``install`` says whether it took over.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from functools import cache

from hgcmlab.machine import fastblock


class _SigAction(ctypes.Structure):
    """glibc's ``struct sigaction`` on x86-64 Linux."""

    _fields_ = [
        ("handler", ctypes.c_void_p),
        ("mask", ctypes.c_ulong * 16),   # sigset_t: 1024 bits
        ("flags", ctypes.c_int),
        ("restorer", ctypes.c_void_p),
    ]


assert ctypes.sizeof(_SigAction) == 152


@cache
def _sigaction() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        function = ctypes.CDLL(None, use_errno=True).sigaction
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.POINTER(_SigAction), ctypes.POINTER(_SigAction)]
    function.restype = ctypes.c_int
    return function


class SignalBridge:
    """The native SIGINT handler, in front of the interpreter's, for one run of a CPU whose
    counters are at ``state_address`` (``Cpu.counters_address``)."""

    def __init__(self, state_address: int) -> None:
        self._state_address = state_address
        self._saved: _SigAction | None = None

    def install(self) -> bool:
        """Take over SIGINT (after the interpreter's handler was installed for it); False,
        having changed nothing, where the bridge cannot be used."""
        native = fastblock.signal_handler()
        sigaction = _sigaction()
        if native is None or sigaction is None or threading.current_thread() is not threading.main_thread():
            return False
        address, words = native
        saved = _SigAction()
        if sigaction(signal.SIGINT, None, ctypes.byref(saved)) != 0 or saved.handler in (None, 0, 1):
            return False   # no C-level handler of the interpreter's to chain to (SIG_DFL, SIG_IGN)
        words.previous, words.state = saved.handler, self._state_address
        ours = _SigAction()
        ctypes.memmove(ctypes.byref(ours), ctypes.byref(saved), ctypes.sizeof(_SigAction))
        ours.handler = address
        if sigaction(signal.SIGINT, ctypes.byref(ours), None) != 0:
            words.state = words.previous = 0
            return False
        self._saved = saved
        return True

    def remove(self) -> None:
        """Give SIGINT back to the interpreter's handler (nothing if ``install`` did not
        take over)."""
        saved, self._saved = self._saved, None
        if saved is None:
            return
        sigaction = _sigaction()
        assert sigaction is not None
        sigaction(signal.SIGINT, ctypes.byref(saved), None)
        native = fastblock.signal_handler()
        assert native is not None
        native[1].state = native[1].previous = 0

"""Time-bounded keystone: a persistent worker process plus a result cache.

Keystone hangs on some inputs (``.p2align 40``, a lone ``%``), segfaults on others
(``.text``) and calls ``exit()`` on a few (``.cfi_startproc``).  A hung call inside this
process could never be stopped, so every assembly runs in one long-lived worker process
(``_ksworker.py``); the parent waits at most ``timeout`` seconds for its answer, then kills
it and starts a fresh one on the next call.  The worker is started once per process
(about 0.1 s) and answers a typical program in about a millisecond; identical requests
are served from an LRU cache without asking it at all.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

_WORKER_SCRIPT = Path(__file__).resolve().parent / "_ksworker.py"
_CACHE_SIZE = 256


@dataclass(frozen=True)
class KsResult:
    """One keystone answer."""

    ok: bool
    code: bytes
    errno: int
    message: str
    #: LLVM's stderr diagnostics for this call ("error: ..." / "warning: ...").
    diag: str


class KeystoneTimeout(Exception):
    """The worker did not answer in time and was killed."""


class KeystoneCrash(Exception):
    """The worker died while assembling (keystone segfaulted or called exit())."""


class _Worker:
    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def ensure(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            self.stop()
            self.process = subprocess.Popen(
                [sys.executable, "-u", str(_WORKER_SCRIPT)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return self.process

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()

    def request(self, payload: dict[str, object], timeout: float) -> dict[str, object]:
        process = self.ensure()
        assert process.stdin is not None and process.stdout is not None
        data = json.dumps(payload).encode()
        try:
            process.stdin.write(struct.pack("<I", len(data)) + data)
            process.stdin.flush()
        except BrokenPipeError:
            code = self._reap()
            raise KeystoneCrash(f"keystone worker exited with status {code}") from None
        deadline = time.monotonic() + timeout
        reply = self._read(process, 4, deadline)
        reply = self._read(process, struct.unpack("<I", reply)[0], deadline)
        return json.loads(reply)

    def _read(self, process: subprocess.Popen[bytes], count: int, deadline: float) -> bytes:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        chunks: list[bytes] = []
        remaining = count
        while remaining:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0.0))
            if not ready:
                self.stop()
                raise KeystoneTimeout()
            chunk = os.read(fd, remaining)
            if not chunk:
                code = self._reap()
                raise KeystoneCrash(f"keystone worker died with status {code}")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _reap(self) -> int | None:
        process = self.process
        code = process.wait() if process is not None else None
        self.stop()
        return code


_worker = _Worker()
_lock = threading.Lock()
_cache: OrderedDict[tuple[int, int, str], KsResult] = OrderedDict()
atexit.register(_worker.stop)


def run_keystone(text: str, *, mode: int, base: int, timeout: float = 10.0) -> KsResult:
    """Assemble ``text`` for ``mode`` at ``base`` in the worker, within ``timeout`` seconds.

    Raises ``KeystoneTimeout`` or ``KeystoneCrash``; keystone's own errors come back as a
    result with ``ok`` false.  Thread-safe (one request at a time).
    """
    key = (mode, base, text)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
        reply = _worker.request({"mode": mode, "base": base, "text": text}, timeout)
        result = KsResult(bool(reply["ok"]), bytes.fromhex(str(reply["code"])), int(reply["errno"]),
                          str(reply["message"]), str(reply["diag"]))
        _cache[key] = result
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return result


def stop_worker() -> None:
    """Stop the worker process (a new one starts on the next request)."""
    with _lock:
        _worker.stop()

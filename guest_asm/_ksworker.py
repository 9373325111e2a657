"""Keystone worker process: assembles requests from its parent, one at a time.

Runs as ``python _ksworker.py`` (stdlib and keystone only).  Keystone can hang, segfault or
``exit()`` on some inputs; in a separate process the parent can bound the time and survive.
Frames are a 4-byte little-endian length plus JSON, on stdin/stdout.  Request:
``{"mode", "base", "text"}``.  Reply: ``{"ok", "code" (hex), "errno", "message", "diag"}``
where ``diag`` is what LLVM printed on stderr (its diagnostics carry messages keystone's
error codes lack).

No symbol resolver is installed: keystone 0.9.2 switches to radix 16 for plain numbers once
KS_OPT_SYM_RESOLVER is set (``mov edx, 53280`` becomes ``mov edx, 0x53280``).
"""

import json
import os
import struct
import sys
import tempfile

from keystone import KS_ARCH_X86, KS_MODE_32, KS_MODE_64, Ks, KsError


def _read_exact(stream, count):
    data = b""
    while len(data) < count:
        chunk = stream.read(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _assemble(engines, request):
    mode = request["mode"]
    if mode not in engines:
        engines[mode] = Ks(KS_ARCH_X86, KS_MODE_64 if mode == 64 else KS_MODE_32)
    try:
        encoding, _count = engines[mode].asm(request["text"].encode("utf-8"), request["base"])
        return {"ok": True, "code": bytes(encoding or b"").hex(), "errno": 0, "message": ""}
    except KsError as error:
        return {"ok": False, "code": "", "errno": error.errno, "message": str(error)}


def main():
    diag = tempfile.TemporaryFile()
    os.dup2(diag.fileno(), 2)
    engines = {}
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = _read_exact(stdin, 4)
        if header is None:
            return
        request = json.loads(_read_exact(stdin, struct.unpack("<I", header)[0]))
        diag.seek(0)
        diag.truncate()
        reply = _assemble(engines, request)
        diag.seek(0)
        reply["diag"] = diag.read().decode("utf-8", "replace")
        payload = json.dumps(reply).encode()
        stdout.write(struct.pack("<I", len(payload)) + payload)
        stdout.flush()


if __name__ == "__main__":
    main()

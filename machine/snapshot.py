"""Snapshots: a whole machine's state as plain data, and its file form.

A ``Snapshot`` is two plain-data dicts: ``config``, what the board needs to build the
machine again (board name, mode, RAM size, shares with their host paths, options), and
``state``, what ``Machine.snapshot`` gathered (CPU, RAM and MMIO pages, scheduler, port
placements, every device's ``save_state``).  Plain data means dicts with str keys, lists,
str, int, bool, None and bytes.

File format (version 1): the 8-byte magic ``HGCMSNAP``, a little-endian u32 format version,
then a zlib stream of one UTF-8 JSON object ``{"config": ..., "state": ...}`` in which
bytes appear as ``{"$bytes": "<base64>"}``.  RAM is saved sparse: only runs of pages that
are not all zero.  Reading never executes anything from the file (no pickle); a file that
is not a snapshot, is damaged, or comes from a newer format fails with a one-line
``SnapshotError``.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from hgcmlab.machine.layout import MAX_GUEST_RAM
from hgcmlab.machine.memory import GuestMemory

SNAPSHOT_MAGIC = b"HGCMSNAP"
SNAPSHOT_VERSION = 1
#: The most a snapshot's JSON may inflate to: the largest RAM in base64 (4/3) plus room for
#: everything else.  A small file cannot make us allocate more (a zlib bomb).
MAX_BODY_SIZE = MAX_GUEST_RAM * 4 // 3 + (256 << 20)
#: RAM is saved in runs of whole pages of this size that are not all zero.
SNAPSHOT_PAGE = 4096
_HEADER = struct.Struct("<8sI")
#: Bytes scanned at once when looking for non-zero pages (a zero chunk is skipped whole).
_SCAN_CHUNK = 1 << 20
_ZERO_CHUNK = bytes(_SCAN_CHUNK)
_ZERO_PAGE = bytes(SNAPSHOT_PAGE)


class SnapshotError(ValueError):
    """A snapshot that cannot be written, read or restored (the message is one line)."""


@dataclass
class Snapshot:
    """A machine's ``config`` (how to build it) and ``state`` (what it holds)."""

    config: dict
    state: dict

    def to_bytes(self) -> bytes:
        """The file form of this snapshot."""
        try:
            body = json.dumps({"config": self.config, "state": self.state}, default=_encode_bytes,
                              separators=(",", ":"), sort_keys=True).encode()
        except (TypeError, ValueError) as error:
            raise SnapshotError(f"cannot save the snapshot: {_one_line(error)}") from None
        return _HEADER.pack(SNAPSHOT_MAGIC, SNAPSHOT_VERSION) + zlib.compress(body, 6)

    @classmethod
    def from_bytes(cls, data: bytes, origin: str = "snapshot") -> Snapshot:
        """Parse the file form; ``origin`` names the source in errors."""
        if len(data) < _HEADER.size or data[:len(SNAPSHOT_MAGIC)] != SNAPSHOT_MAGIC:
            raise SnapshotError(f"{origin}: not an hgcmlab snapshot (bad magic)")
        _magic, version = _HEADER.unpack_from(data)
        if version > SNAPSHOT_VERSION:
            raise SnapshotError(f"{origin}: snapshot format version {version} is newer than this hgcmlab "
                                f"reads (up to {SNAPSHOT_VERSION})")
        if version < 1:
            raise SnapshotError(f"{origin}: invalid snapshot format version {version}")
        try:
            inflater = zlib.decompressobj()
            text = inflater.decompress(data[_HEADER.size:], MAX_BODY_SIZE)
            if inflater.unconsumed_tail:
                raise ValueError(f"it inflates to more than {MAX_BODY_SIZE >> 20} MiB, beyond any machine's state")
            if not inflater.eof:
                raise ValueError("the compressed stream is incomplete")
            body = json.loads(text, object_hook=_decode_bytes)
        except (zlib.error, UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
            raise SnapshotError(f"{origin}: corrupt snapshot ({_one_line(error)})") from None
        if (not isinstance(body, dict) or not isinstance(body.get("config"), dict)
                or not isinstance(body.get("state"), dict)):
            raise SnapshotError(f"{origin}: corrupt snapshot (no config and state)")
        return cls(body["config"], body["state"])

    def save(self, path: str | Path) -> None:
        """Write the file form to ``path``; a host error becomes a ``SnapshotError``."""
        try:
            Path(path).write_bytes(self.to_bytes())
        except OSError as error:
            raise SnapshotError(f"cannot write snapshot {path}: {error.strerror or error}") from None

    @classmethod
    def load(cls, path: str | Path) -> Snapshot:
        """Read a snapshot file; every failure is a one-line ``SnapshotError``."""
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise SnapshotError(f"cannot read snapshot {path}: {error.strerror or error}") from None
        return cls.from_bytes(data, str(path))


def nonzero_pages(memory: GuestMemory) -> list[list[object]]:
    """``memory``'s runs of consecutive pages that are not all zero, as [address, bytes]."""
    runs: list[list[object]] = []
    start: int | None = None
    size = memory.size
    for chunk in range(0, size, _SCAN_CHUNK):
        length = min(_SCAN_CHUNK, size - chunk)
        data = memory.read(chunk, length)
        if data == _ZERO_CHUNK[:length]:
            if start is not None:
                runs.append([start, memory.read(start, chunk - start)])
                start = None
            continue
        for page in range(0, length, SNAPSHOT_PAGE):
            zero = data[page:page + SNAPSHOT_PAGE] == _ZERO_PAGE[:min(SNAPSHOT_PAGE, length - page)]
            if zero and start is not None:
                runs.append([start, memory.read(start, chunk + page - start)])
                start = None
            elif not zero and start is None:
                start = chunk + page
    if start is not None:
        runs.append([start, memory.read(start, size - start)])
    return runs


def _encode_bytes(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"snapshot state holds a {type(value).__name__}, which is not plain data")


def _decode_bytes(value: dict) -> object:
    if set(value) == {"$bytes"}:
        encoded = value["$bytes"]
        if not isinstance(encoded, str):
            raise ValueError("a bytes value is not a string")
        return base64.b64decode(encoded, validate=True)
    return value


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__

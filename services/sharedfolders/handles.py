"""The global handle table (reference §4.2) with generation-tagged handle values.

Slots 1..4095 are handed out next-fit like VirtualBox.  A SHFLHANDLE value is encoded as

    value = (generation << 12) | slot

where ``generation`` counts how often that slot was allocated before (0 for the first use,
so a fresh service hands out 1, 2, 3, ... exactly like VirtualBox).  A lookup must match the
whole 64-bit value, so after a close the old value never reaches the slot's next object:
a stale handle answers VERR_INVALID_HANDLE (project policy, docs/deviations.md).  The
generation wraps below 2**52 - 1 so a value is never SHFL_HANDLE_NIL; the slot is never 0 so
a value is never SHFL_HANDLE_ROOT.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hgcmlab.runtime.fs import DirEntry, HostDir, HostFile
from hgcmlab.runtime.paths import GuestPath, nt_wildcard_match
from hgcmlab.services.sharedfolders.mappings import Mapping

HANDLE_SLOTS = 4096
_SLOT_BITS = 12
_GEN_LIMIT = (1 << (64 - _SLOT_BITS)) - 1


class HandleKind(Enum):
    """What a handle refers to (SHFL_HF_TYPE_FILE / _DIR)."""

    FILE = "file"
    DIR = "dir"


@dataclass(eq=False)
class DirStream:
    """One LIST stream of a directory handle (an RTDIR): the open directory, an optional NT
    wildcard pattern, and a snapshot of the matching names with a position in it.

    The snapshot is taken on the first read and again after ``rewind``, so a listing spread
    over many calls returns every name present at snapshot time exactly once, in O(1) per
    entry; a name that vanished meanwhile is still returned (with dummy info).
    """

    dir: HostDir
    pattern: str | None = None
    names: list[bytes] | None = None
    pos: int = 0

    def next_name(self) -> bytes | None:
        """The next name, or None at the end of the directory."""
        if self.names is None:
            names = self.dir.names()
            if self.pattern is not None:
                pattern = self.pattern
                names = [n for n in names
                         if nt_wildcard_match(pattern, n.decode("utf-8", "surrogateescape"))]
            self.names, self.pos = names, 0
        if self.pos >= len(self.names):
            return None
        self.pos += 1
        return self.names[self.pos - 1]

    def rewind(self) -> None:
        """Start over (RTDirRewind): the next read takes a fresh snapshot."""
        self.names, self.pos = None, 0


@dataclass(eq=False)
class Handle:
    """An open file or directory of one client under one root.

    Directory handles carry LIST state: ``stream`` (the plain listing of ``obj``, made on
    first use), ``search`` (the filtered stream of the first LIST with a path; owns its own
    directory fd) and ``saved``, the entry that did not fit last time, shared by both streams
    as in VirtualBox.
    """

    value: int
    client_id: int
    root: int
    mapping: Mapping
    kind: HandleKind
    obj: HostFile
    path: GuestPath
    stream: DirStream | None = None
    search: DirStream | None = None
    saved: DirEntry | None = None


class HandleTable:
    """Handle allocation, ownership-checked lookup and release."""

    def __init__(self) -> None:
        self._entries: list[Handle | None] = [None] * HANDLE_SLOTS
        self._generations = [0] * HANDLE_SLOTS
        self._last = 1
        self._owned: dict[int, int] = {}

    def _free_slot(self) -> int | None:
        for start in (self._last, 1):
            for slot in range(start, HANDLE_SLOTS):
                if self._entries[slot] is None:
                    return slot
        return None

    def alloc(self, client_id: int, root: int, mapping: Mapping, kind: HandleKind,
              obj: HostFile, path: GuestPath) -> Handle | None:
        """Register an open object; None when all 4095 slots are in use."""
        slot = self._free_slot()
        if slot is None:
            return None
        self._advance(slot)
        value = (self._generations[slot] << _SLOT_BITS) | slot
        self._generations[slot] = (self._generations[slot] + 1) % _GEN_LIMIT
        handle = Handle(value, client_id, root, mapping, kind, obj, path)
        self._entries[slot] = handle
        self._owned[client_id] = self._owned.get(client_id, 0) + 1
        return handle

    def _advance(self, slot: int) -> None:
        # vbsfAllocHandle: the cursor moves past the slot taken and restarts at 1 once it
        # reaches SHFLHANDLE_MAX - 1.
        self._last = slot + 1 if slot + 1 < HANDLE_SLOTS - 1 else 1

    def full(self) -> bool:
        """True when no slot is free (an allocation would fail)."""
        return self._free_slot() is None

    def pass_over(self) -> None:
        """Move the cursor exactly as an allocation immediately freed again would.

        VirtualBox allocates the handle of a CREATE before it touches the host and frees
        it when the open fails (vbsf.cpp:vbsfOpenFile, vbsfOpenDir), so a failed open
        still moves the next-fit cursor: the next open gets the following value.  The
        slot stays free and its generation unchanged (the value was never handed out).
        """
        slot = self._free_slot()
        if slot is not None:
            self._advance(slot)

    def lookup(self, value: int, client_id: int) -> Handle | None:
        """The live handle ``value`` owned by ``client_id``, else None."""
        handle = self._entries[value & (HANDLE_SLOTS - 1)]
        if handle is None or handle.value != value or handle.client_id != client_id:
            return None
        return handle

    def free(self, handle: Handle) -> None:
        """Forget ``handle`` (the caller closes its object)."""
        slot = handle.value & (HANDLE_SLOTS - 1)
        assert self._entries[slot] is handle
        self._entries[slot] = None
        left = self._owned[handle.client_id] - 1
        if left:
            self._owned[handle.client_id] = left
        else:
            del self._owned[handle.client_id]

    def live(self) -> list[Handle]:
        """Every live handle, in slot order."""
        return [h for h in self._entries if h is not None]

    def count_owned(self, client_id: int) -> int:
        """How many live handles ``client_id`` holds."""
        return self._owned.get(client_id, 0)

    def allocation_state(self) -> tuple[int, list[tuple[int, int]]]:
        """What decides the next values handed out: the next-fit cursor and each slot's
        generation counter ((slot, generation) for the slots used at least once)."""
        return self._last, [(slot, gen) for slot, gen in enumerate(self._generations) if gen]

    def restore_allocation(self, cursor: int, generations: list[tuple[int, int]]) -> None:
        """Set what ``allocation_state`` reported, on an empty table; ValueError (and
        nothing changes) for a cursor or slot outside 1..4094 / 1..4095 or a generation
        outside the counter's range."""
        if not 1 <= cursor < HANDLE_SLOTS - 1:
            raise ValueError(f"handle cursor {cursor} out of range")
        for slot, gen in generations:
            if not (1 <= slot < HANDLE_SLOTS and 0 <= gen < _GEN_LIMIT):
                raise ValueError(f"handle slot {slot} generation {gen} out of range")
        self._last = cursor
        for slot, gen in generations:
            self._generations[slot] = gen

    def place(self, handle: Handle) -> bool:
        """Put a restored handle back in its slot; False (nothing changes) when the slot
        is taken or the value was never handed out by the restored generation counter."""
        slot = handle.value & (HANDLE_SLOTS - 1)
        issued = (handle.value >> _SLOT_BITS) < self._generations[slot]
        if slot == 0 or self._entries[slot] is not None or not issued:
            return False
        self._entries[slot] = handle
        self._owned[handle.client_id] = self._owned.get(handle.client_id, 0) + 1
        return True

    def owned_by(self, client_id: int) -> list[Handle]:
        """Every live handle of ``client_id``."""
        return [h for h in self._entries if h is not None and h.client_id == client_id]

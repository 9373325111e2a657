"""VMMDev events, the guest filter, the interrupt line and the VMMDevMemory page.

The state machine of reference §1.6: host events accumulate in ``pending``; the IRQ is
raised when ``pending & filter`` becomes non-zero (only after the guest's additions
reported OK); acknowledging returns ``pending & filter``, clears those bits, clears the
fHaveEvents byte and lowers the line.  Filter changes made while events are pending are
deferred to the next acknowledge.  Legacy 1.03 guests get the old host-events word.
"""

from __future__ import annotations

from collections.abc import Callable

from hgcmlab.devices.vmmdev.abi import (
    LEGACY_INTERFACE_VERSION,
    MMIO_EVENT_WORD,
    MMIO_OFF_GUEST_EVENT_MASK,
    MMIO_OFF_HAVE_EVENTS,
    MMIO_SIZE_AND_VERSION,
    VMMDEV_MEMORY_SIZE,
    VMMDEV_MEMORY_VERSION,
)
from hgcmlab.machine.memory import GuestMemory


#: The fields of ``EventState`` a snapshot holds.
_SAVED = ("pending", "filter", "new_filter", "new_filter_valid", "additions_ok", "legacy")


class EventState:
    """Pending host events, the guest's filter and the interrupt line."""

    def __init__(self, set_line: Callable[[bool], None], trace: Callable[..., None]) -> None:
        self._set_line = set_line
        self._trace = trace
        self.pending = 0
        self.filter = 0
        self.new_filter = 0
        self.new_filter_valid = False
        self.additions_ok = False
        self.legacy = False
        self.mmio: GuestMemory | None = None

    def init_memory(self, memory: GuestMemory) -> None:
        """Zero the VMMDevMemory header and write its size and version."""
        self.mmio = memory
        memory.fill(0, 32, 0)
        memory.write(MMIO_SIZE_AND_VERSION.offset, MMIO_SIZE_AND_VERSION.packed(VMMDEV_MEMORY_SIZE, VMMDEV_MEMORY_VERSION))

    def _line(self, level: bool) -> None:
        self._set_line(level)

    def _have_events(self, value: int) -> None:
        if self.mmio is not None:
            self.mmio.write(MMIO_OFF_HAVE_EVENTS, bytes([value]))

    def notify(self, events: int) -> None:
        """The host raises ``events`` (VMMDevNotifyGuest)."""
        self._trace("vmmdev_event", events=events, pending=self.pending | events)
        if self.legacy:
            self.pending |= events
            self._set_irq_legacy()
            return
        if self.additions_ok:
            had_events = self.pending & self.filter != 0
            self.pending |= events
            if not had_events:
                self.maybe_set_irq()
        else:
            self.pending |= events

    def maybe_set_irq(self) -> None:
        """Raise the line (and fHaveEvents) when a filtered event is pending; never lowers."""
        if self.pending & self.filter:
            self._have_events(1)
            self._line(True)

    def _set_irq_legacy(self) -> None:
        if not self.additions_ok or self.mmio is None:
            return
        mask = self.mmio.read_u32(MMIO_OFF_GUEST_EVENT_MASK)
        delivered = self.pending & mask
        self.mmio.write(MMIO_EVENT_WORD.offset, MMIO_EVENT_WORD.packed(delivered))
        if delivered:
            self.pending &= ~delivered
            self._line(True)
        else:
            self._line(False)

    def acknowledge(self) -> int:
        """AcknowledgeEvents: returns the delivered events (0 in legacy mode)."""
        if self.legacy:
            self._set_irq_legacy()
            return 0
        if self.new_filter_valid:
            self.filter = self.new_filter
            self.new_filter_valid = False
        events = self.pending & self.filter
        self.pending &= ~self.filter
        self._trace("vmmdev_ack", events=events)
        self._have_events(0)
        self._line(False)
        return events

    def change_filter(self, or_mask: int, not_mask: int) -> None:
        """CtlGuestFilterMask (the caller already removed HGCM from ``not_mask``)."""
        if self.pending & self.filter:
            if not self.new_filter_valid:
                self.new_filter = self.filter
            self.new_filter = (self.new_filter | or_mask) & ~not_mask & 0xFFFFFFFF
            self.new_filter_valid = True
        else:
            self.filter = (self.filter | or_mask) & ~not_mask & 0xFFFFFFFF
            self.maybe_set_irq()

    def guest_reported(self, interface_version: int, ok: bool) -> None:
        """ReportGuestInfo stored a new interface version."""
        self.additions_ok = ok
        self.legacy = interface_version == LEGACY_INTERFACE_VERSION

    def save_state(self) -> dict:
        """Pending events, filters and the additions' state (fHaveEvents lives in the
        VMMDevMemory page, saved with the machine's MMIO)."""
        return {name: getattr(self, name) for name in _SAVED}

    def load_state(self, state: dict) -> None:
        """Restore what ``save_state`` returned (the line is restored by the machine)."""
        for name in _SAVED:
            setattr(self, name, type(getattr(self, name))(state[name]))

    def lower_line(self) -> None:
        """ReportGuestInfo(2) success forces the line low (fHaveEvents untouched)."""
        self._line(False)

"""What the guest functions and the host API work on: properties, remembered changes,
the timestamp source, the global flags and the waiting GET_NOTIFICATION calls
(HostServices/GuestProperties/VBoxGuestPropSvc.cpp: Service's members and the helpers
both sides share).  Handlers get it as ``CallContext.state``; the service never is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hgcmlab.runtime.status import Status
from hgcmlab.services.guestprops.abi import (
    GUEST_PROP_MAX_GUEST_CONCURRENT_WAITS,
    GUEST_PROP_MAX_PROPS,
    HOST_RESERVED_PREFIXES,
    GuestPropFlag,
)
from hgcmlab.services.guestprops.handlers import write_change
from hgcmlab.services.guestprops.pattern import matches
from hgcmlab.services.guestprops.store import ChangeQueue, Property, Registry, Timestamps
from hgcmlab.services.hgcm import ASYNC, HgcmCall, _AsyncMarker

#: Name prefixes only the host may set, as bytes.
RESERVED = tuple(prefix.encode("ascii") for prefix in HOST_RESERVED_PREFIXES)


@dataclass(eq=False)
class Waiter:
    """A GET_NOTIFICATION call waiting for a change: its patterns and the status it will
    complete with on success (VWRN_NOT_FOUND when its timestamp was not remembered)."""

    call: HgcmCall
    patterns: bytes
    status: int


class GuestPropState:
    """The service's state; ``now`` returns the current time in nanoseconds."""

    def __init__(self, now: Callable[[], int]) -> None:
        self.registry = Registry()
        self.changes = ChangeQueue()
        self.timestamps = Timestamps(now)
        self.global_flags = 0
        self.waiters: list[Waiter] = []

    def take_timestamp(self) -> int:
        """getCurrentTimestamp: the next stamp (a function row's ``prepare`` for setProperty)."""
        return self.timestamps.take()

    def _permission(self, flags: int, guest: bool) -> int:
        """checkPermission."""
        if flags & (GuestPropFlag.RDONLYGUEST if guest else GuestPropFlag.RDONLYHOST):
            return Status.VERR_PERMISSION_DENIED
        if guest and self.global_flags & GuestPropFlag.RDONLYGUEST:
            return Status.VINF_PERMISSION_DENIED
        return Status.VINF_SUCCESS

    def set_internal(self, name: bytes, value: bytes, flags: int, timestamp: int, guest: bool = False) -> int:
        """setPropertyInternal: permission, host-reserved names, then set or create.  A
        refused create (VERR_TOO_MUCH_DATA, the registry is full) still records a change,
        as a deletion, and wakes matching waiters, as VirtualBox does."""
        prop = self.registry.get(name)
        status = self._permission(prop.flags if prop is not None else 0, guest)
        if status == Status.VINF_SUCCESS and name.startswith(RESERVED):
            if guest:
                status = Status.VERR_PERMISSION_DENIED
            else:
                flags |= GuestPropFlag.RDONLYGUEST
        if status != Status.VINF_SUCCESS:
            return status
        if prop is not None:
            prop.value, prop.timestamp, prop.flags = value, timestamp, flags
        elif len(self.registry) < GUEST_PROP_MAX_PROPS:
            self.registry.add(Property(name, value, timestamp, flags))
        else:
            status = Status.VERR_TOO_MUCH_DATA
        self._notify(name, timestamp)
        return status

    def delete_internal(self, name: bytes, guest: bool) -> int:
        """delProperty after its checks: permission, then remove and record the change."""
        prop = self.registry.get(name)
        if prop is None:
            return Status.VINF_SUCCESS
        status = self._permission(prop.flags, guest)
        if status == Status.VINF_SUCCESS:
            timestamp = self.timestamps.take()
            self.registry.remove(name)
            self._notify(name, timestamp)
        return status

    def _notify(self, name: bytes, timestamp: int) -> None:
        """doNotifications: record the change and complete every waiter it matches."""
        timestamp = self.changes.stamp_for(timestamp)
        prop = self.registry.get(name)
        change = Property(name, prop.value if prop else b"", timestamp, prop.flags if prop else 0)
        still: list[Waiter] = []
        for waiter in self.waiters:
            if not matches(waiter.patterns, name):
                still.append(waiter)
                continue
            status = write_change(waiter.call.params, change, deleted=prop is None)
            waiter.call.complete(waiter.status if status >= 0 else status)
        self.waiters = still
        self.changes.append(change)

    def wait(self, call: HgcmCall, patterns: bytes, status: int) -> int | _AsyncMarker:
        """Queue a GET_NOTIFICATION that found nothing.  The client's earlier wait with the
        same patterns completes with VERR_INTERRUPTED (a client that cancels and resubmits);
        past GUEST_PROP_MAX_GUEST_CONCURRENT_WAITS other waits: VERR_OUT_OF_RESOURCES."""
        pending = 0
        for waiter in list(self.waiters):
            if waiter.call.client_id != call.client_id:
                continue
            if waiter.patterns == patterns:
                self.waiters.remove(waiter)
                waiter.call.complete(Status.VERR_INTERRUPTED)
            else:
                pending += 1
        if pending >= GUEST_PROP_MAX_GUEST_CONCURRENT_WAITS:
            return Status.VERR_OUT_OF_RESOURCES
        self.waiters.append(Waiter(call, patterns, status))
        return ASYNC

    def end_waits(self, which: Callable[[Waiter], bool]) -> None:
        """Complete the waiters ``which`` selects with VERR_INTERRUPTED."""
        ending = [waiter for waiter in self.waiters if which(waiter)]
        self.waiters = [waiter for waiter in self.waiters if not which(waiter)]
        for waiter in ending:
            waiter.call.complete(Status.VERR_INTERRUPTED)

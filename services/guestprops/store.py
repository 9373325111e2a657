"""The property registry, the change queue and the timestamp source of the service
(HostServices/GuestProperties/VBoxGuestPropSvc.cpp: Property, mhProperties,
mGuestNotifications, getCurrentTimestamp).

Enumeration order is VirtualBox's: the registry is an IPRT string space, an AVL tree keyed
by the sdbm hash of the name and walked from the smallest key (strspace.cpp,
avl_DoWithAll.cpp.h); names with equal hashes chain behind the tree node, a newcomer
right after the head, and removing the head promotes the next in the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hgcmlab.services.guestprops.abi import GUEST_PROP_MAX_GUEST_NOTIFICATIONS

_U64 = (1 << 64) - 1


def sdbm(name: bytes) -> int:
    """IPRT's string-space hash (Runtime/include/internal/strhash.h:sdbm)."""
    value = 0
    for byte in name:
        value = (byte + (value << 6) + (value << 16) - value) & 0xFFFFFFFF
    return value


@dataclass
class Property:
    """One property, or one remembered change (a deletion has no value and no flags).

    Names and values are the guest's bytes without terminator.
    """

    name: bytes
    value: bytes
    timestamp: int
    flags: int


class Registry:
    """Properties by name, enumerated in string-space order."""

    def __init__(self) -> None:
        self._by_name: dict[bytes, Property] = {}
        self._chains: dict[int, list[Property]] = {}

    @classmethod
    def restored(cls, props: list[Property]) -> Registry:
        """A registry that enumerates exactly ``props`` (a previous enumeration)."""
        registry = cls()
        for prop in props:
            registry._by_name[prop.name] = prop
            registry._chains.setdefault(sdbm(prop.name), []).append(prop)
        return registry

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: bytes) -> Property | None:
        """The property called ``name``, if any."""
        return self._by_name.get(name)

    def add(self, prop: Property) -> None:
        """Insert a property whose name is not taken."""
        assert prop.name not in self._by_name, prop.name
        self._by_name[prop.name] = prop
        chain = self._chains.setdefault(sdbm(prop.name), [])
        chain.insert(min(1, len(chain)), prop)

    def remove(self, name: bytes) -> None:
        """Drop the property called ``name`` (which exists)."""
        prop = self._by_name.pop(name)
        key = sdbm(name)
        chain = self._chains[key]
        chain.remove(prop)
        if not chain:
            del self._chains[key]

    def __iter__(self) -> Iterator[Property]:
        for key in sorted(self._chains):
            yield from self._chains[key]


class Timestamps:
    """getCurrentTimestamp: nanoseconds from ``now``, made unique by small steps.

    When the clock has not moved past the previous stamp (VirtualBox: a coarse RTTimeNow;
    here: two changes at the same virtual cycle) the stamp is the previous one plus 1, and
    the run of such adjustments is counted so a clock that steps back less than that run
    keeps stamps increasing.  The arithmetic is the unsigned 64-bit one of the source.
    """

    def __init__(self, now: Callable[[], int]) -> None:
        self._now = now
        self.previous = 0
        self.adjustments = 0

    def take(self) -> int:
        """The next stamp."""
        stamp = self._now() & _U64
        if (self.previous - stamp) & _U64 > self.adjustments:
            self.adjustments = 0
        else:
            self.adjustments += 1
            stamp = (self.previous + 1) & _U64
        self.previous = stamp
        return stamp


class ChangeQueue:
    """The last GUEST_PROP_MAX_GUEST_NOTIFICATIONS changes, oldest first."""

    def __init__(self) -> None:
        self.changes: list[Property] = []

    def stamp_for(self, timestamp: int) -> int:
        """doNotifications: a change stamped like the newest one gets the next nanosecond."""
        if self.changes and self.changes[-1].timestamp == timestamp:
            return timestamp + 1
        return timestamp

    def append(self, change: Property) -> None:
        """Remember ``change``, forgetting the oldest when full."""
        if len(self.changes) >= GUEST_PROP_MAX_GUEST_NOTIFICATIONS:
            del self.changes[0]
        self.changes.append(change)

    def after(self, timestamp: int, matches: Callable[[bytes], bool]) -> tuple[bool, Property | None]:
        """getOldNotificationInternal: (whether a change stamped ``timestamp`` is remembered,
        the first matching change after it, or after the start when it is not)."""
        start, found = 0, False
        for index in range(len(self.changes) - 1, -1, -1):
            if self.changes[index].timestamp == timestamp:
                start, found = index + 1, True
                break
        return found, next((c for c in self.changes[start:] if matches(c.name)), None)

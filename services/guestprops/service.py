"""GuestPropService: the "VBoxGuestPropSvc" HGCM host service (VirtualBox 7.0.14,
HostServices/GuestProperties/VBoxGuestPropSvc.cpp).

Dispatch is generic: look the function up in ``functions.FUNCTIONS``, validate the
parameters against its signature, run its handler.  ``RtError`` is caught here and only
here.  The service keeps no per-client data (VirtualBox's cbClient is 0); a client only
owns the GET_NOTIFICATION calls it has waiting.  No function looks at the requestor (7.0.14
checks none); legacy clients count as kernel clients (idxLegacyClientCategory), as the HGCM
host counts them anyway.

Timestamps are nanoseconds on the virtual clock: ``now`` (the machine passes its epoch
plus elapsed cycles, 1 cycle = 1 ns) stands for RTTimeNow, so every stamp a guest sees is
reproducible (docs/deviations.md).

Thread safety: every entry point (guest and host API) runs under one re-entrant lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from runtime.status import RtError, Status
from services.guestprops.abi import (
    GUEST_PROP_MAX_CALLS_PER_CLIENT,
    GUEST_PROP_MAX_GUEST_CONCURRENT_WAITS,
    GUEST_PROP_MAX_PROPS,
    HOST_RESERVED_PREFIXES,
    SERVICE_NAME,
    GuestPropFlag,
    GuestPropFn,
)
from services.guestprops.cstring import c_string
from services.guestprops.flags import parse_flags, write_flags
from services.guestprops.functions import FUNCTIONS
from services.guestprops.handlers import write_change
from services.guestprops.names import check_name, check_value
from services.guestprops.pattern import matches
from services.guestprops.store import ChangeQueue, Property, Registry, Timestamps
from services.hgcm import ASYNC, HgcmCall, HgcmService, _AsyncMarker

#: Properties the service sets up when it loads (Service::initialize): name, value, and
#: the nanoseconds added to the first stamp.  Version and revision are 7.0.14's.
_HOST_VERSION = (
    (b"/VirtualBox/HostInfo/VBoxVer", b"7.0.14"),
    (b"/VirtualBox/HostInfo/VBoxVerExt", b"7.0.14"),
    (b"/VirtualBox/HostInfo/VBoxRev", b"161095"),
)
_COUNTERS_AND_SYSPREP = (
    (b"/VirtualBox/VMInfo/ResetCounter", b"0"),
    (b"/VirtualBox/VMInfo/ResumeCounter", b"0"),
    (b"/VirtualBox/HostGuest/SysprepExec", b""),
    (b"/VirtualBox/HostGuest/SysprepArgs", b""),
)
_HOST_ONLY = GuestPropFlag.TRANSIENT | GuestPropFlag.RDONLYGUEST
_RESET_COUNTER = b"/VirtualBox/VMInfo/ResetCounter"
_RESERVED = tuple(prefix.encode("ascii") for prefix in HOST_RESERVED_PREFIXES)


@dataclass(eq=False)
class Waiter:
    """A GET_NOTIFICATION call waiting for a change: its patterns and the status it will
    complete with on success (VWRN_NOT_FOUND when its timestamp was not remembered)."""

    call: HgcmCall
    patterns: bytes
    status: int


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


class GuestPropService(HgcmService):
    """The guest properties host service.

    ``now`` returns the current time in nanoseconds (the timestamp source).  Host API:
    ``set_property``, ``get_property``, ``delete_property``, ``properties``,
    ``set_global_flags`` (the GUEST_PROP_FN_HOST_* functions).  Guest calls arrive through
    ``connect`` / ``call`` / ``disconnect`` / ``cancel``.
    """

    name = SERVICE_NAME
    function_names = {fn.value: fn.name for fn in GuestPropFn}
    #: acMaxCallsPerClient for every requestor category (kernel 0, root 1, user 2), as
    #: VBoxHGCMSvcLoad sets it.
    call_limits = dict.fromkeys(range(3), GUEST_PROP_MAX_CALLS_PER_CLIENT)

    def __init__(self, now: Callable[[], int]) -> None:
        self.registry = Registry()
        self.changes = ChangeQueue()
        self.timestamps = Timestamps(now)
        self.global_flags = 0
        self.waiters: list[Waiter] = []
        self.lock = threading.RLock()
        self._initialize()

    def _initialize(self) -> None:
        """Service::initialize: host version, counters and sysprep properties."""
        stamp = self.timestamps.take()
        for offset, (name, value) in enumerate(_HOST_VERSION):
            self.set_internal(name, value, _HOST_ONLY, stamp + offset)
        stamp = self.timestamps.take()
        for offset, (name, value) in enumerate(_COUNTERS_AND_SYSPREP):
            self.set_internal(name, value, _HOST_ONLY, stamp + offset)

    # --- host API ---------------------------------------------------------------------

    def set_property(self, name: str, value: str, flags: str = "") -> int:
        """GUEST_PROP_FN_HOST_SET_PROP: set ``name`` as the host; returns the status
        (VERR_INVALID_PARAMETER for a bad name, VERR_TOO_MUCH_DATA for a long value,
        VERR_PARSE_ERROR for bad flags, VERR_PERMISSION_DENIED for an RDONLYHOST property)."""
        with self.lock:
            stamp = self.timestamps.take()
            try:
                name_bytes, value_bytes = self._host_name(name), value.encode("utf-8") + b"\0"
                check_value(value_bytes)
                parsed = parse_flags(flags.encode("utf-8"))
            except RtError as err:
                return err.status
            return self.set_internal(name_bytes, value_bytes[:-1], parsed, stamp)

    def set_property_block(self, block: list[tuple[str, str, int, str]]) -> int:
        """GUEST_PROP_FN_HOST_SET_PROPS: set (name, value, timestamp, flags) entries with
        their own timestamps, as VirtualBox restores a VM's properties at power on: every
        flags string is checked first (VERR_PARSE_ERROR, nothing set), then all are set
        without notifications or permission checks; host-reserved names get RDONLYGUEST.
        Names are checked like ``set_property``'s and the property limit applies."""
        with self.lock:
            try:
                parsed = [(self._host_name(name), value.encode("utf-8"), timestamp & 0xFFFFFFFFFFFFFFFF,
                           parse_flags(flags.encode("utf-8"))) for name, value, timestamp, flags in block]
            except RtError as err:
                return err.status
            for name_bytes, value_bytes, timestamp, flags_value in parsed:
                if name_bytes.startswith(_RESERVED):
                    flags_value |= GuestPropFlag.RDONLYGUEST
                prop = self.registry.get(name_bytes)
                if prop is not None:
                    prop.value, prop.timestamp, prop.flags = value_bytes, timestamp, flags_value
                elif len(self.registry) < GUEST_PROP_MAX_PROPS:
                    self.registry.add(Property(name_bytes, value_bytes, timestamp, flags_value))
                else:
                    return Status.VERR_TOO_MUCH_DATA
            return Status.VINF_SUCCESS

    def get_property(self, name: str) -> tuple[str, int, str] | None:
        """(value, timestamp, flags text) of ``name``, or None."""
        with self.lock:
            prop = self.registry.get(name.encode("utf-8"))
            return None if prop is None else (_text(prop.value), prop.timestamp, write_flags(prop.flags))

    def delete_property(self, name: str) -> int:
        """GUEST_PROP_FN_HOST_DEL_PROP: delete ``name`` as the host; returns the status
        (success also when it does not exist)."""
        with self.lock:
            try:
                name_bytes = self._host_name(name)
            except RtError as err:
                return err.status
            return self.delete_internal(name_bytes, guest=False)

    def properties(self, patterns: str = "") -> list[tuple[str, str, int, str]]:
        """(name, value, timestamp, flags text) of the properties matching ``patterns``
        (``|``-separated, empty: all), in VirtualBox's enumeration order."""
        with self.lock:
            wanted = patterns.encode("utf-8")
            return [(_text(p.name), _text(p.value), p.timestamp, write_flags(p.flags))
                    for p in self.registry if matches(wanted, p.name)]

    def set_global_flags(self, flags: int) -> None:
        """GUEST_PROP_FN_HOST_SET_GLOBAL_FLAGS: with RDONLYGUEST, guest changes are refused
        with VINF_PERMISSION_DENIED (an informational status: nothing changes)."""
        with self.lock:
            self.global_flags = flags & 0xFFFFFFFF

    @staticmethod
    def _host_name(name: str) -> bytes:
        buffer = name.encode("utf-8") + b"\0"
        text = c_string(buffer)
        check_name(buffer)
        return text

    # --- state shared by the guest functions and the host API -------------------------

    def matches(self, patterns: bytes, name: bytes) -> bool:
        """Property::Matches."""
        return matches(patterns, name)

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
        if status == Status.VINF_SUCCESS and name.startswith(_RESERVED):
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

    # --- HGCM entry points ------------------------------------------------------------

    def function_cycles(self, function: int) -> int | None:
        """The cost declared next to the function in ``functions.FUNCTIONS``."""
        spec = FUNCTIONS.get(function)
        return spec.cycles if spec is not None else None

    def disconnect(self, client_id: int) -> None:
        """svcDisconnect: the client's waits complete with VERR_INTERRUPTED."""
        with self.lock:
            self._end_waits(lambda waiter: waiter.call.client_id == client_id)

    def call(self, call: HgcmCall) -> int | _AsyncMarker:
        """Validate and run one guest call; its status or ASYNC."""
        with self.lock:
            spec = FUNCTIONS.get(call.function)
            if spec is None:
                return Status.VERR_NOT_IMPLEMENTED
            try:
                return spec.run(self, call)
            except RtError as err:
                return err.status

    def cancel(self, call: HgcmCall) -> None:
        """The guest cancelled a wait: it leaves the queue now, completed with
        VERR_INTERRUPTED (the device writes nothing back for a cancelled call).  VirtualBox
        leaves it queued until the client's next wait, a matching change or disconnect;
        the guest cannot tell the difference, and the call stops counting at once."""
        with self.lock:
            self._end_waits(lambda waiter: waiter.call is call)

    def _end_waits(self, which: Callable[[Waiter], bool]) -> None:
        ending = [waiter for waiter in self.waiters if which(waiter)]
        self.waiters = [waiter for waiter in self.waiters if not which(waiter)]
        for waiter in ending:
            waiter.call.complete(Status.VERR_INTERRUPTED)

    def reset(self) -> None:
        """The machine resets (svcNotify with HGCMNOTIFYEVENT_RESET): ResetCounter goes up by
        one (incrementCounterProp; the host may have set it to anything: its leading decimal
        digits count, none is 0)."""
        with self.lock:
            prop = self.registry.get(_RESET_COUNTER)
            digits = re.match(rb"[0-9]*", prop.value).group() if prop is not None else b""
            value = int(digits or b"0") + 1
            self.set_internal(_RESET_COUNTER, str(value & 0xFFFFFFFFFFFFFFFF).encode("ascii"), _HOST_ONLY,
                              self.timestamps.take())

    def close(self) -> None:
        """Unload: every waiting call completes with VERR_INTERRUPTED."""
        with self.lock:
            self._end_waits(lambda waiter: True)

    # --- saved state (docs/design.md, state contract) ---------------------------------

    def save_state(self) -> dict:
        """Properties (in enumeration order), remembered changes, the timestamp source,
        the global flags and the waiting calls by tag; plain data only."""
        with self.lock:
            return {
                "properties": [_saved(p) for p in self.registry],
                "changes": [_saved(c) for c in self.changes.changes],
                "timestamp": {"previous": self.timestamps.previous,
                              "adjustments": self.timestamps.adjustments},
                "global_flags": self.global_flags,
                "waiters": [{"tag": w.call.tag, "patterns": w.patterns, "status": w.status}
                            for w in self.waiters],
            }

    def load_state(self, state: dict, pending: Mapping[int, HgcmCall]) -> list[str]:
        """Restore ``save_state``'s output; one line per waiting call whose tag ``pending``
        does not hand back (that wait is dropped)."""
        with self.lock:
            self.registry = Registry.restored([_property(p) for p in state["properties"]])
            self.changes.changes = [_property(c) for c in state["changes"]]
            self.timestamps.previous = state["timestamp"]["previous"]
            self.timestamps.adjustments = state["timestamp"]["adjustments"]
            self.global_flags = state["global_flags"]
            self.waiters, problems = [], []
            for saved in state["waiters"]:
                call = pending.get(saved["tag"])
                if call is None:
                    problems.append(f"GET_NOTIFICATION tag {saved['tag']}: call not pending, wait dropped")
                    continue
                self.waiters.append(Waiter(call, saved["patterns"], saved["status"]))
            return problems

    def waiting(self) -> Iterator[HgcmCall]:
        """The calls waiting for a change, oldest first (introspection)."""
        return (waiter.call for waiter in list(self.waiters))


def _saved(prop: Property) -> list[bytes | int]:
    return [prop.name, prop.value, prop.timestamp, prop.flags]


def _property(saved: list) -> Property:
    name, value, timestamp, flags = saved
    return Property(bytes(name), bytes(value), int(timestamp), int(flags))

"""GuestPropService: the "VBoxGuestPropSvc" HGCM host service (VirtualBox 7.0.14,
HostServices/GuestProperties/VBoxGuestPropSvc.cpp).

A ``TableService`` (services/framework.py): its rows are ``functions.FUNCTIONS``, its
handlers work on a ``GuestPropState`` (state.py), and the framework's boundary validates,
dispatches and turns ``RtError`` into the call's status.  The service keeps no per-client
data (VirtualBox's cbClient is 0): every client the HGCM host routes here is valid, and
handlers get its id; a client only owns the GET_NOTIFICATION calls it has waiting.  No function looks at the requestor (7.0.14
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

from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.framework import TableService
from hgcmlab.services.guestprops.abi import GUEST_PROP_MAX_CALLS_PER_CLIENT, GUEST_PROP_MAX_PROPS, SERVICE_NAME, GuestPropFlag
from hgcmlab.services.guestprops.cstring import c_string
from hgcmlab.services.guestprops.flags import parse_flags, write_flags
from hgcmlab.services.guestprops.functions import FUNCTIONS
from hgcmlab.services.guestprops.names import check_name, check_value
from hgcmlab.services.guestprops.pattern import matches
from hgcmlab.services.guestprops.state import RESERVED, GuestPropState, Waiter
from hgcmlab.services.guestprops.store import Property, Registry
from hgcmlab.services.hgcm import HgcmCall, _AsyncMarker

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


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


class GuestPropService(TableService):
    """The guest properties host service.

    ``now`` returns the current time in nanoseconds (the timestamp source).  Host API:
    ``set_property``, ``get_property``, ``delete_property``, ``properties``,
    ``set_global_flags`` (the GUEST_PROP_FN_HOST_* functions).  Guest calls arrive through
    ``connect`` / ``call`` / ``disconnect`` / ``cancel``.
    """

    name = SERVICE_NAME
    functions = FUNCTIONS
    #: acMaxCallsPerClient for every requestor category (kernel 0, root 1, user 2), as
    #: VBoxHGCMSvcLoad sets it.
    call_limits = dict.fromkeys(range(3), GUEST_PROP_MAX_CALLS_PER_CLIENT)

    def __init__(self, now: Callable[[], int]) -> None:
        self.state = GuestPropState(now)
        self.lock = threading.RLock()
        self._initialize()

    def _initialize(self) -> None:
        """Service::initialize: host version, counters and sysprep properties."""
        state = self.state
        stamp = state.take_timestamp()
        for offset, (name, value) in enumerate(_HOST_VERSION):
            state.set_internal(name, value, _HOST_ONLY, stamp + offset)
        stamp = state.take_timestamp()
        for offset, (name, value) in enumerate(_COUNTERS_AND_SYSPREP):
            state.set_internal(name, value, _HOST_ONLY, stamp + offset)

    # --- host API ---------------------------------------------------------------------

    def set_property(self, name: str, value: str, flags: str = "") -> int:
        """GUEST_PROP_FN_HOST_SET_PROP: set ``name`` as the host; returns the status
        (VERR_INVALID_PARAMETER for a bad name, VERR_TOO_MUCH_DATA for a long value,
        VERR_PARSE_ERROR for bad flags, VERR_PERMISSION_DENIED for an RDONLYHOST property)."""
        with self.lock:
            stamp = self.state.take_timestamp()
            try:
                name_bytes, value_bytes = self._host_name(name), value.encode("utf-8") + b"\0"
                check_value(value_bytes)
                parsed = parse_flags(flags.encode("utf-8"))
            except RtError as err:
                return err.status
            return self.state.set_internal(name_bytes, value_bytes[:-1], parsed, stamp)

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
            registry = self.state.registry
            for name_bytes, value_bytes, timestamp, flags_value in parsed:
                if name_bytes.startswith(RESERVED):
                    flags_value |= GuestPropFlag.RDONLYGUEST
                prop = registry.get(name_bytes)
                if prop is not None:
                    prop.value, prop.timestamp, prop.flags = value_bytes, timestamp, flags_value
                elif len(registry) < GUEST_PROP_MAX_PROPS:
                    registry.add(Property(name_bytes, value_bytes, timestamp, flags_value))
                else:
                    return Status.VERR_TOO_MUCH_DATA
            return Status.VINF_SUCCESS

    def get_property(self, name: str) -> tuple[str, int, str] | None:
        """(value, timestamp, flags text) of ``name``, or None."""
        with self.lock:
            prop = self.state.registry.get(name.encode("utf-8"))
            return None if prop is None else (_text(prop.value), prop.timestamp, write_flags(prop.flags))

    def delete_property(self, name: str) -> int:
        """GUEST_PROP_FN_HOST_DEL_PROP: delete ``name`` as the host; returns the status
        (success also when it does not exist)."""
        with self.lock:
            try:
                name_bytes = self._host_name(name)
            except RtError as err:
                return err.status
            return self.state.delete_internal(name_bytes, guest=False)

    def properties(self, patterns: str = "") -> list[tuple[str, str, int, str]]:
        """(name, value, timestamp, flags text) of the properties matching ``patterns``
        (``|``-separated, empty: all), in VirtualBox's enumeration order."""
        with self.lock:
            wanted = patterns.encode("utf-8")
            return [(_text(p.name), _text(p.value), p.timestamp, write_flags(p.flags))
                    for p in self.state.registry if matches(wanted, p.name)]

    def set_global_flags(self, flags: int) -> None:
        """GUEST_PROP_FN_HOST_SET_GLOBAL_FLAGS: with RDONLYGUEST, guest changes are refused
        with VINF_PERMISSION_DENIED (an informational status: nothing changes)."""
        with self.lock:
            self.state.global_flags = flags & 0xFFFFFFFF

    @staticmethod
    def _host_name(name: str) -> bytes:
        buffer = name.encode("utf-8") + b"\0"
        text = c_string(buffer)
        check_name(buffer)
        return text

    # --- HGCM entry points ------------------------------------------------------------

    def disconnect(self, client_id: int) -> None:
        """svcDisconnect: the client's waits complete with VERR_INTERRUPTED."""
        with self.lock:
            self.state.end_waits(lambda waiter: waiter.call.client_id == client_id)

    def client_of(self, client_id: int) -> int:
        """No per-client data: handlers get the client id."""
        return client_id

    def call(self, call: HgcmCall) -> int | _AsyncMarker:
        """One guest call through the framework's boundary, under the service lock."""
        with self.lock:
            return super().call(call)

    def cancel(self, call: HgcmCall) -> None:
        """The guest cancelled a wait: it leaves the queue now, completed with
        VERR_INTERRUPTED (the device writes nothing back for a cancelled call).  VirtualBox
        leaves it queued until the client's next wait, a matching change or disconnect;
        the guest cannot tell the difference, and the call stops counting at once."""
        with self.lock:
            self.state.end_waits(lambda waiter: waiter.call is call)

    def reset(self) -> None:
        """The machine resets (svcNotify with HGCMNOTIFYEVENT_RESET): ResetCounter goes up by
        one (incrementCounterProp; the host may have set it to anything: its leading decimal
        digits count, none is 0)."""
        with self.lock:
            prop = self.state.registry.get(_RESET_COUNTER)
            digits = re.match(rb"[0-9]*", prop.value).group() if prop is not None else b""
            value = int(digits or b"0") + 1
            self.state.set_internal(_RESET_COUNTER, str(value & 0xFFFFFFFFFFFFFFFF).encode("ascii"), _HOST_ONLY,
                                    self.state.take_timestamp())

    def close(self) -> None:
        """Unload: every waiting call completes with VERR_INTERRUPTED."""
        with self.lock:
            self.state.end_waits(lambda waiter: True)

    # --- saved state (docs/design.md, state contract) ---------------------------------

    def save_state(self) -> dict:
        """Properties (in enumeration order), remembered changes, the timestamp source,
        the global flags and the waiting calls by tag; plain data only."""
        with self.lock:
            state = self.state
            return {
                "properties": [_saved(p) for p in state.registry],
                "changes": [_saved(c) for c in state.changes.changes],
                "timestamp": {"previous": state.timestamps.previous,
                              "adjustments": state.timestamps.adjustments},
                "global_flags": state.global_flags,
                "waiters": [{"tag": w.call.tag, "patterns": w.patterns, "status": w.status}
                            for w in state.waiters],
            }

    def load_state(self, state: dict, pending: Mapping[int, HgcmCall]) -> list[str]:
        """Restore ``save_state``'s output; one line per waiting call whose tag ``pending``
        does not hand back (that wait is dropped)."""
        with self.lock:
            mine = self.state
            mine.registry = Registry.restored([_property(p) for p in state["properties"]])
            mine.changes.changes = [_property(c) for c in state["changes"]]
            mine.timestamps.previous = state["timestamp"]["previous"]
            mine.timestamps.adjustments = state["timestamp"]["adjustments"]
            mine.global_flags = state["global_flags"]
            mine.waiters, problems = [], []
            for saved in state["waiters"]:
                call = pending.get(saved["tag"])
                if call is None:
                    problems.append(f"GET_NOTIFICATION tag {saved['tag']}: call not pending, wait dropped")
                    continue
                mine.waiters.append(Waiter(call, saved["patterns"], saved["status"]))
            return problems

    def waiting(self) -> Iterator[HgcmCall]:
        """The calls waiting for a change, oldest first (introspection)."""
        return (waiter.call for waiter in list(self.state.waiters))


def _saved(prop: Property) -> list[bytes | int]:
    return [prop.name, prop.value, prop.timestamp, prop.flags]


def _property(saved: list) -> Property:
    name, value, timestamp, flags = saved
    return Property(bytes(name), bytes(value), int(timestamp), int(flags))

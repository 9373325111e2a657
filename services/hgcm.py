"""The HGCM host-service contract: what a service is and the parameter values it sees.

A service sees parameters the way VirtualBox host services do (``VBOXHGCMSVCPARM`` in
``include/VBox/hgcmsvc.h``): 32-bit and 64-bit values, and pointers to host-side bounce
buffers.  The VMMDev device translates guest parameter types (LinAddr, PageList, Embedded,
...) into these before the call and writes the results back after completion; a service
never addresses guest memory (a direct buffer, below, is a view the device hands it).

Completion: ``HgcmService.call`` returns a status for a call it finished immediately, or
``ASYNC`` when it keeps the ``HgcmCall`` and calls ``HgcmCall.complete`` later (for example
WAIT_FOR_MAPPINGS_CHANGES).  Every call is completed exactly once.

Direct buffers (an optional capability): a service may declare, in
``HgcmService.direct_buffers``, functions whose one buffer parameter the device may pass as a
view of guest memory instead of a bounce buffer.  The device does so only where the guest
could not tell the difference (see ``DirectBuffer``), so the call's outcome, what the guest
sees and what reaches the host are the same either way; only host copies are saved.

Tracing: the device hosting a service hands it the machine's tracer (``attach_tracer``);
a service emits only kinds declared in ``runtime/trace_catalog.py``.  Until then
``tracer`` is a tracer nobody listens to.  ``services/framework.py`` builds a service from a
function table on top of this contract.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final, Protocol

from hgcmlab.runtime.status import Status


class SvcParmType(IntEnum):
    """Host-side parameter types (VBOX_HGCM_SVC_PARM_*)."""

    INVALID = 0
    U32 = 1
    U64 = 2
    PTR = 3
    PAGES = 4


# Slots: the device makes one of these per parameter of every call.
@dataclass(slots=True)
class SvcParm:
    """One call parameter as a host service sees it.

    ``value`` holds the integer of a U32/U64 parameter; the service may change it and the
    device writes the new value back.  ``buffer`` is the bounce buffer of a PTR/PAGES
    parameter: zero-filled, guest bytes copied in when the parameter's direction includes
    "to host", and copied back (up to ``size`` bytes) when it includes "from host".
    ``size`` starts as the guest-declared size; a service may lower it to report how many
    bytes it produced (VirtualBox writes it back for Embedded/Contiguous/NoBounce lists).
    The device may pass a large buffer that only travels to the guest as a zero-filled
    anonymous ``mmap`` of the same length instead of a bytearray (host memory is then
    committed only for the pages written): same buffer protocol, length, indexing and
    slicing, but it cannot change size.  For a function the service declares in
    ``HgcmService.direct_buffers``, ``buffer`` may instead be a ``memoryview`` of guest
    memory, valid only during ``call`` (see ``DirectBuffer``).
    """

    type: SvcParmType
    value: int = 0
    buffer: bytearray = field(default_factory=bytearray)
    size: int = 0

    @classmethod
    def u32(cls, value: int) -> SvcParm:
        """A 32-bit value parameter."""
        return cls(SvcParmType.U32, value & 0xFFFFFFFF)

    @classmethod
    def u64(cls, value: int) -> SvcParm:
        """A 64-bit value parameter."""
        return cls(SvcParmType.U64, value & 0xFFFFFFFFFFFFFFFF)

    @classmethod
    def ptr(cls, data: bytes | bytearray | int) -> SvcParm:
        """A pointer parameter: ``data`` is the initial content, or an int size for zeroes."""
        buf = bytearray(data) if not isinstance(data, int) else bytearray(data)
        return cls(SvcParmType.PTR, 0, buf, len(buf))

    @classmethod
    def pages(cls, data: bytes | bytearray | int) -> SvcParm:
        """A page-array parameter (NoBouncePageList), modelled as one buffer."""
        parm = cls.ptr(data)
        parm.type = SvcParmType.PAGES
        return parm


class _AsyncMarker:
    """Type of ``ASYNC``: the service completes the call later."""

    def __repr__(self) -> str:
        return "ASYNC"


ASYNC: Final = _AsyncMarker()


# Slots: one per call, on the hot path.
@dataclass(slots=True)
class HgcmCall:
    """A guest call handed to a service.

    ``complete`` must be called exactly once by a service that returned ``ASYNC``; the
    device then writes results back and sets the DONE flag.  ``requestor`` is the
    VMMDEV_REQUESTOR_* value the service may use for policy (0xFFFFFFFF = legacy).
    ``tag`` is the device's plain-data id of the call (its command's serial): a service
    saves the calls it keeps as tags, and ``load_state`` gets them back by tag.
    """

    client_id: int
    function: int
    params: list[SvcParm]
    requestor: int = 0xFFFFFFFF
    on_complete: Callable[[HgcmCall, int], None] | None = None
    completed: bool = False
    #: Device-assigned plain-data id of the call (the device's command id): a service saves
    #: its pending ASYNC calls as tags, never as objects.
    tag: int = 0

    def complete(self, status: int) -> None:
        """Finish the call with ``status``; a second completion is a bug and raises."""
        if self.completed:
            raise RuntimeError(f"HGCM call {self.function} of client {self.client_id} completed twice")
        self.completed = True
        if self.on_complete is not None:
            self.on_complete(self, int(status))


@dataclass(frozen=True)
class DirectBuffer:
    """How a function uses its buffer parameter, declared by a service that accepts a view
    of guest memory for it (``HgcmService.direct_buffers``).

    The service promises, for calls of the function: it completes them before ``call``
    returns (never ``ASYNC``); it touches the buffer only during ``call`` and keeps no
    reference to it; it never resizes it nor changes the parameter's ``size``; it reads
    the buffer's bytes only when ``reads`` is set; it stores into the buffer only when
    ``stored`` is set, and then only the first N bytes: N is the value the U32 parameter at
    index ``stored`` holds when ``call`` returns a success status (>= 0), and 0 (nothing
    stored) when it returns a failure.

    With that, the device can hand over guest memory itself and still give the guest what
    the bounce-buffer path gives: it does so only when the buffer's bytes travel to the
    host if ``reads`` (so the service reads the guest's bytes, not zeros), when they
    travel back to the guest if ``stored`` (so storing into guest memory is what the
    guest would get), and it zero-fills what follows the N stored bytes of a buffer that
    only travels back (the zero-filled bounce buffer the other path copies back).
    """

    #: Index of the buffer parameter.
    buffer: int
    #: The function reads the buffer's bytes (they travel to the host).
    reads: bool = False
    #: Index of the U32 parameter counting the leading bytes stored into the buffer
    #: (None: the function stores nothing into it).
    stored: int | None = None


class ServiceTracer(Protocol):
    """What a service may do with the machine's tracer (``hgcmlab.machine.tracing.Tracer`` is one)."""

    def wants(self, kind: str) -> bool:
        """Whether anyone listens to events of ``kind`` (build costly fields only then)."""

    def emit(self, kind: str, **fields: Any) -> None:
        """Emit one event of a catalogued ``kind``."""


class _Unheard:
    """The tracer of a service no device hosts yet: nobody listens."""

    def wants(self, kind: str) -> bool:
        return False

    def emit(self, kind: str, **fields: Any) -> None:
        """Drop the event."""


class HgcmService:
    """Base class of host services: override what the service supports.

    Contract: no method raises for anything a guest can send; a guest mistake is a status.
    ``connect`` returns a status (failure rejects the client); ``disconnect`` releases
    everything the client owns; ``call`` returns a status or ``ASYNC``.
    """

    #: The name guests connect to (exact, case-sensitive match).
    name: str = ""
    #: Function names by number, for traces and summaries.
    function_names: Mapping[int, str] = {}
    #: Functions that accept a view of guest memory for their buffer (``DirectBuffer``);
    #: the device may use it instead of a bounce buffer (a speed-up, never a change of
    #: behaviour).  Empty: every buffer is a bounce buffer.
    direct_buffers: Mapping[int, DirectBuffer] = {}
    #: Where the service's trace events go (set by ``attach_tracer``).
    tracer: ServiceTracer = _Unheard()

    def attach_tracer(self, tracer: ServiceTracer) -> None:
        """Emit future trace events to ``tracer`` (the hosting device calls this)."""
        self.tracer = tracer

    def function_name(self, function: int) -> str:
        """The name of guest function ``function`` (its number when unknown)."""
        return self.function_names.get(function, str(function))

    def function_cycles(self, function: int) -> int | None:
        """Virtual cycles one call of ``function`` costs, as the service declares it next to
        the function (None: the device's default per-call cost applies)."""
        return None

    def connect(self, client_id: int, requestor: int) -> int:
        """A new client ``client_id`` connects."""
        return Status.VINF_SUCCESS

    def disconnect(self, client_id: int) -> None:
        """Client ``client_id`` goes away; release its state."""

    def call(self, call: HgcmCall) -> int | _AsyncMarker:
        """Handle a guest call; the base service implements no function."""
        return Status.VERR_NOT_IMPLEMENTED

    def cancel(self, call: HgcmCall) -> None:
        """The guest cancelled a call this service returned ``ASYNC`` for (a hint only)."""

    def reset(self) -> None:
        """The machine resets: drop guest-owned state (the base service has none)."""

    def close(self) -> None:
        """The service is unloaded: release host resources (the base service has none)."""

    def save_state(self) -> dict:
        """The service's state as plain data only: dicts with str keys, lists, str, int,
        bool, None and bytes (no closures, file objects or fds); the base service has none."""
        return {}

    def load_state(self, state: dict, pending: Mapping[int, HgcmCall]) -> list[str]:
        """Restore from ``save_state()``'s output.  ``pending`` maps each tag of an ASYNC
        call the service had kept (not yet completed) to the rebuilt ``HgcmCall`` the device
        hands back.  Returns one line per problem (e.g. "handle 0x3: host file changed:
        VERR_FILE_NOT_FOUND"), empty when everything was restored."""
        return []

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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from hgcmlab.runtime.status import Status


class SvcParmType(IntEnum):
    """Host-side parameter types (VBOX_HGCM_SVC_PARM_*)."""

    INVALID = 0
    U32 = 1
    U64 = 2
    PTR = 3
    PAGES = 4


@dataclass
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


@dataclass
class HgcmCall:
    """A guest call handed to a service.

    ``complete`` must be called exactly once by a service that returned ``ASYNC``; the
    device then writes results back and sets the DONE flag.  ``requestor`` is the
    VMMDEV_REQUESTOR_* value the service may use for policy (0xFFFFFFFF = legacy).
    """

    client_id: int
    function: int
    params: list[SvcParm]
    requestor: int = 0xFFFFFFFF
    on_complete: Callable[[HgcmCall, int], None] | None = None
    completed: bool = False

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

"""Guest properties conformance suite: every VBoxGuestPropSvc guest function against
VirtualBox 7.0.14's own code paths and its testcase (tstGuestPropSvc.cpp).

Conventions (the guest properties table of docs/conformance.md is generated from them by
``python -m tests.conformance.report``):

- every test carries ``@pytest.mark.guestprop("FUNCTION")`` (the GUEST_PROP_FN name
  without the prefix; several names when a test pins an interaction), and
- its docstring's first paragraph names the branch of VirtualBox's code the test follows,
  and a line ``VBox: file:function[, ...]`` names where that branch lives (paths relative
  to ``src/VBox/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from hgcmlab.services.guestprops.abi import GuestPropFn
from hgcmlab.services.guestprops.service import GuestPropService
from hgcmlab.services.hgcm import ASYNC, HgcmCall, SvcParm

#: The clock the service reads: a fixed epoch plus what a test advances.
EPOCH_NS = 1_700_000_000_000_000_000


@dataclass
class FakeClock:
    """Nanoseconds that move only when a test says so."""

    now_ns: int = EPOCH_NS

    def __call__(self) -> int:
        return self.now_ns


def cstr(text: str | bytes) -> SvcParm:
    """A pointer parameter holding ``text`` and its terminator."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return SvcParm.ptr(data + b"\0")


@dataclass
class Outcome:
    """One guest call: its status (ASYNC until completed) and parameters after the call."""

    call: HgcmCall
    status: object = None
    completions: list[int] = field(default_factory=list)

    @property
    def params(self) -> list[SvcParm]:
        return self.call.params

    def buffer(self, index: int, size: int | None = None) -> bytes:
        """The first ``size`` bytes of parameter ``index``'s buffer (all by default)."""
        data = bytes(self.params[index].buffer)
        return data if size is None else data[:size]


class Guest:
    """A client of the service, calling it the way the VMMDev does."""

    def __init__(self, service: GuestPropService, client_id: int = 1) -> None:
        self.service = service
        self.client_id = client_id
        assert service.connect(client_id, 0xFFFFFFFF) == 0

    def call(self, fn: GuestPropFn | int, *params: SvcParm) -> Outcome:
        """Call ``fn``; an ASYNC outcome's status becomes the completion status later."""
        outcome = Outcome(HgcmCall(self.client_id, int(fn), list(params)))

        def done(call: HgcmCall, status: int) -> None:
            outcome.completions.append(status)
            outcome.status = status

        outcome.call.on_complete = done
        result = self.service.call(outcome.call)
        outcome.status = result if result is ASYNC else int(result)  # type: ignore[arg-type]
        if result is not ASYNC:
            outcome.call.completed = True
        return outcome

    def set(self, name: str, value: str, flags: str | None = "") -> int:
        """SET_PROP with flags, or SET_PROP_VALUE when ``flags`` is None."""
        if flags is None:
            return int(self.call(GuestPropFn.SET_PROP_VALUE, cstr(name), cstr(value)).status)  # type: ignore[arg-type]
        return int(self.call(GuestPropFn.SET_PROP, cstr(name), cstr(value), cstr(flags)).status)  # type: ignore[arg-type]

    def get(self, name: str, size: int = 2048) -> Outcome:
        return self.call(GuestPropFn.GET_PROP, cstr(name), SvcParm.ptr(size), SvcParm.u64(0), SvcParm.u32(0))

    def delete(self, name: str) -> int:
        return int(self.call(GuestPropFn.DEL_PROP, cstr(name)).status)  # type: ignore[arg-type]

    def enum(self, patterns: bytes, size: int = 4096) -> Outcome:
        return self.call(GuestPropFn.ENUM_PROPS, SvcParm.ptr(patterns), SvcParm.ptr(size), SvcParm.u32(0))

    def wait(self, patterns: str, timestamp: int, size: int = 2048) -> Outcome:
        return self.call(GuestPropFn.GET_NOTIFICATION, cstr(patterns), SvcParm.u64(timestamp),
                         SvcParm.ptr(size), SvcParm.u32(0))


def host_block_of_the_testcase(svc: GuestPropService) -> None:
    """tstGuestPropSvc.cpp:testSetPropsHost's block: names, values, timestamps, flags."""
    assert svc.set_property_block([
        ("test/name/", "test/value/", 0, ""),
        ("test name", "test value", 999, "readonly, transient"),
        ("TEST NAME", "TEST VALUE", 999999, "RDONLYHOST"),
        ("/test/name", "/test/value", 999999999999, "RdOnlyGuest"),
    ]) == 0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def svc(clock: FakeClock) -> Iterator[GuestPropService]:
    service = GuestPropService(clock)
    yield service
    service.close()


@pytest.fixture
def guest(svc: GuestPropService) -> Guest:
    return Guest(svc)

"""Guest properties service lifecycle: saved state (state contract), reset, close."""

from __future__ import annotations

import copy

from hgcmlab.runtime.status import Status
from hgcmlab.services.guestprops.abi import GuestPropFlag
from hgcmlab.services.guestprops.service import GuestPropService
from hgcmlab.services.hgcm import ASYNC, HgcmCall, SvcParm
from tests.gp_conformance.conftest import EPOCH_NS, FakeClock, Guest, cstr

PLAIN = (dict, list, str, int, bool, type(None), bytes)


def _plain(value: object) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return isinstance(value, PLAIN)


def _wait_call(client: int, patterns: str, tag: int) -> HgcmCall:
    return HgcmCall(client, 6, [cstr(patterns), SvcParm.u64(0), SvcParm.ptr(64), SvcParm.u32(0)], tag=tag)


def test_save_and_load_restore_everything_a_guest_can_see() -> None:
    clock = FakeClock()
    old = GuestPropService(clock)
    guest = Guest(old)
    clock.now_ns += 500
    assert guest.set("a", "1", "transient") == 0 and old.set_property("b", "2", "RDONLYGUEST") == 0
    for name in ("/order/3", "/order/1", "abbb0aAaAo", "aAaAoabbb0", "abbb0abbb0"):  # equal-hash chain too
        assert old.set_property(name, "x") == 0
    old.set_global_flags(GuestPropFlag.RDONLYGUEST)
    waiting = _wait_call(1, "z*", tag=41)
    assert old.call(waiting) is ASYNC
    state = old.save_state()
    assert _plain(state)

    new = GuestPropService(FakeClock(EPOCH_NS + 500))
    completions: list[int] = []
    rebuilt = _wait_call(1, "z*", tag=41)
    rebuilt.on_complete = lambda call, status: completions.append(status)
    assert new.load_state(copy.deepcopy(state), {41: rebuilt}) == []
    assert new.properties() == old.properties()
    assert new.save_state() == state
    assert Guest(new, 2).set("c", "3") == Status.VINF_PERMISSION_DENIED  # global flags restored
    assert new.set_property("zeta", "now") == 0
    assert completions == [Status.VINF_SUCCESS]
    assert bytes(rebuilt.params[2].buffer[:rebuilt.params[3].value]) == b"zeta\0now\0\0" + b"0\0"
    assert new.set_property("zeta2", "later") == 0  # stamps continue past the restored ones
    assert new.get_property("zeta2")[1] > max(p[2] for p in old.properties())


def test_load_reports_a_wait_whose_call_is_not_handed_back() -> None:
    old = GuestPropService(FakeClock())
    Guest(old)
    assert old.call(_wait_call(1, "x", tag=7)) is ASYNC
    new = GuestPropService(FakeClock())
    assert new.load_state(old.save_state(), {}) == ["GET_NOTIFICATION tag 7: call not pending, wait dropped"]
    assert list(new.waiting()) == []


def test_reset_counts_resets() -> None:
    svc = GuestPropService(FakeClock())
    svc.reset()
    svc.reset()
    assert svc.get_property("/VirtualBox/VMInfo/ResetCounter")[0::2] == ("2", "TRANSIENT, RDONLYGUEST")


def test_close_interrupts_waits() -> None:
    svc = GuestPropService(FakeClock())
    guest = Guest(svc)
    waiting = guest.wait("x", 0)
    svc.close()
    assert waiting.completions == [Status.VERR_INTERRUPTED]

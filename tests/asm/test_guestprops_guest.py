"""Guest properties from assembly guests (guest_asm/programs/guestprop.s over gp.s), in both
modes: host-side sets seen by the guest, guest sets seen by the host, enumeration, errors,
and a GET_NOTIFICATION wait completed by a host-side set during the run, with synchronous
and with asynchronous (latency-modelled) HGCM completion."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.config import DEFAULT_EPOCH_MS, HgcmTiming, VMMDevConfig
from hgcmlab.guest_asm import assemble
from hgcmlab.guest_asm.source import LIB_DIR
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import Machine, RunEnd, RunResult
from hgcmlab.runtime.status import Status

TOOL = Path(LIB_DIR).parent / "programs" / "guestprop.s"
EPOCH_NS = DEFAULT_EPOCH_MS * 1_000_000
VERR_NOT_FOUND, VERR_PERMISSION_DENIED, VERR_PARSE_ERROR = -78, -10, -53


def _run(mode: int, *arguments: str, prepare=None, asynchronous: bool = False) -> tuple[Machine, RunResult]:
    config = (VMMDevConfig(timing=HgcmTiming(call_cycles=50_000, byte_cycles=0, force_async=True,
                                             declared_costs=False)) if asynchronous else None)
    machine = vbox_board(mode, vmmdev_config=config)
    machine.load(assemble(TOOL, mode=mode))
    machine.set_arguments(list(arguments))
    if prepare is not None:
        prepare(machine)
    return machine, machine.run()


@pytest.fixture(params=[64, 32], ids=["64", "32"])
def mode(request: pytest.FixtureRequest) -> int:
    return request.param


def test_guest_reads_a_host_set_property(mode: int) -> None:
    """GET_PROP of a property the host set before the run: value, timestamp and flags as
    the service stored them."""
    def prepare(machine: Machine) -> None:
        assert machine.guest_properties.set_property("/Host/Greeting", "hi there", "transient,rdonlyguest") == 0

    machine, result = _run(mode, "get", "/Host/Greeting", prepare=prepare)
    stamp = machine.guest_properties.get_property("/Host/Greeting")[1]
    machine.close()
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0)
    assert result.log_lines == ["Value: hi there", f"Timestamp: {stamp}", "Flags: TRANSIENT, RDONLYGUEST"]


def test_guest_set_is_seen_by_the_host_at_the_virtual_time(mode: int) -> None:
    """SET_PROP from the guest: the host sees value and flags; the timestamp is the VMMDev
    epoch plus the virtual cycles elapsed when the call ran (deterministic)."""
    machine, result = _run(mode, "set", "/Guest/Answer", "42", "TRANSIENT")
    value, stamp, flags = machine.guest_properties.get_property("/Guest/Answer")
    machine.close()
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0)
    assert (value, flags) == ("42", "TRANSIENT")
    assert EPOCH_NS < stamp < EPOCH_NS + result.cycles
    again, _ = _run(mode, "set", "/Guest/Answer", "42", "TRANSIENT")
    assert again.guest_properties.get_property("/Guest/Answer")[1] == stamp
    again.close()


def test_set_prop_value_without_flags_and_delete(mode: int) -> None:
    """Without FLAGS the tool sends SET_PROP_VALUE (flags become none); del removes."""
    def prepare(machine: Machine) -> None:
        assert machine.guest_properties.set_property("p", "old", "TRANSIENT") == 0

    machine, result = _run(mode, "set", "p", "new", prepare=prepare)
    assert result.exit_code == 0 and machine.guest_properties.get_property("p")[0::2] == ("new", "")
    machine.close()
    machine, result = _run(mode, "del", "p", prepare=prepare)
    assert result.exit_code == 0 and machine.guest_properties.get_property("p") is None
    machine.close()


def test_enum_lists_matches_in_service_order(mode: int) -> None:
    """ENUM_PROPS with a pattern: one line per match, in the order the service enumerates."""
    def prepare(machine: Machine) -> None:
        for name, value in [("/e/one", "1"), ("/e/two", "2"), ("/other", "x")]:
            assert machine.guest_properties.set_property(name, value) == 0

    machine, result = _run(mode, "enum", "/e/*", prepare=prepare)
    expected = [f"Name: {n}, value: {v}, timestamp: {t}, flags: {f}"
                for n, v, t, f in machine.guest_properties.properties("/e/*")]
    machine.close()
    assert result.exit_code == 0 and len(expected) == 2
    assert result.log_lines == expected


@pytest.mark.parametrize(("arguments", "code", "line"), [
    (("get", "/nope"), 3, f"error: get /nope: {VERR_NOT_FOUND}"),
    (("set", "/VirtualBox/HostInfo/VBoxVer", "8"), 3, f"error: set /VirtualBox/HostInfo/VBoxVer: {VERR_PERMISSION_DENIED}"),
    (("set", "a", "b", "bogus"), 3, f"error: set a: {VERR_PARSE_ERROR}"),
    (("frobnicate",), 1, None),
], ids=["not-found", "host-reserved", "bad-flags", "usage"])
def test_errors(mode: int, arguments: tuple[str, ...], code: int, line: str | None) -> None:
    """VirtualBox's statuses reach the guest and become the tool's error lines."""
    machine, result = _run(mode, *arguments)
    machine.close()
    assert (result.end, result.exit_code) == (RunEnd.EXIT, code)
    if line is not None:
        assert result.log_lines == [line]


def _host_change_at(machine: Machine, cycle: int, change, fired: list[int]) -> None:
    """Schedule ``change`` (a host API call) at ``cycle``; ``fired`` gets the virtual time it
    ran at (the first instruction boundary at or after ``cycle``)."""
    def action(_kind: str, _args: tuple[int | str, ...]) -> None:
        fired.append(machine.clock.now())
        change()

    machine.clock.scheduler.add_owner("test.host", action)
    machine.clock.schedule_at(cycle, "host changes a guest property", "test.host", "change")


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync-hgcm", "async-hgcm"])
def test_wait_completed_by_a_host_set_during_the_run(mode: int, asynchronous: bool) -> None:
    """GET_NOTIFICATION with timestamp 0 waits (the guest spins on DONE); a host-side set
    scheduled at cycle 2,000,000 completes it with that change: name, value, flags and the
    timestamp epoch + the virtual time of the set, in nanoseconds."""
    fired: list[int] = []

    def prepare(machine: Machine) -> None:
        _host_change_at(machine, 2_000_000, lambda: machine.guest_properties.set_property(
            "/Host/Event", "fired", "TRANSIENT"), fired)

    machine, result = _run(mode, "wait", "/Host/*", prepare=prepare, asynchronous=asynchronous)
    machine.close()
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.log_lines
    assert len(fired) == 1 and fired[0] >= 2_000_000
    assert result.log_lines == [f"Name: /Host/Event, value: fired, timestamp: {EPOCH_NS + fired[0]}, flags: TRANSIENT"]


def test_wait_sees_a_deletion(mode: int) -> None:
    """A deletion completes a wait with "1" in the deleted field."""
    fired: list[int] = []

    def prepare(machine: Machine) -> None:
        assert machine.guest_properties.set_property("/Host/Gone", "x") == 0
        _host_change_at(machine, 1_000_000, lambda: machine.guest_properties.delete_property("/Host/Gone"), fired)

    machine, result = _run(mode, "wait", "/Host/Gone", prepare=prepare)
    machine.close()
    assert result.log_lines == [f"Name: /Host/Gone, timestamp: {EPOCH_NS + fired[0]}, deleted"]


#: Connect, start a GET_NOTIFICATION wait (not waiting for it) and log its rc.
START_WAIT = """
.include "gp.s"
.include "log.s"
_start:
    call gp_connect
    mov dword ptr [client], edx
    ccall5 gp_get_notification_start, [client], patterns, stamp, buf, 64
    mov dword ptr [status], eax
    ccall1 log_dec32, [status]
    ccall1 log_char, 10
"""

# 1 start a wait, 2 cancel it, 3 make a matching change (the request buffer is reused, so
# the wait's own buffer and timestamp are what shows it was not written), 4 wait again.
CANCEL_GUEST = START_WAIT + """
    ccall1 hgcm_cancel2, hgcm_call_req
    mov dword ptr [status], eax
    ccall1 log_dec32, [status]
    ccall1 log_char, 10
    ccall4 gp_set_prop, [client], first, value, 0
    movzx eax, byte ptr [buf]
    or eax, dword ptr [stamp]
    mov dword ptr [status], eax
    ccall1 log_dec32, [status]
    ccall1 log_char, 10
    mov dword ptr [stamp], 0
    mov dword ptr [stamp + 4], 0
    ccall5 gp_get_notification_start, [client], patterns, stamp, buf, 64
    mov dword ptr [status], eax
    ccall1 log_dec32, [status]
    ccall1 log_char, 10
    ccall1 exit, 0
patterns: .asciz "/w/*"
first: .asciz "/w/first"
value: .asciz "v"
.align 8
client: .quad 0
status: .quad 0
stamp: .quad 0
buf: .space 64
"""


def test_cancelled_wait_is_never_completed(mode: int, tmp_path: Path) -> None:
    """A cancelled GET_NOTIFICATION (HGCMCancel2) is never written back: a later matching
    change leaves its buffer and timestamp alone, and the client's next wait is the only
    one waiting afterwards."""
    result, waiting = _run_waits(mode, tmp_path, CANCEL_GUEST)
    pending = str(int(Status.VINF_HGCM_ASYNC_EXECUTE))
    assert result.log_lines == [pending, "0", "0", pending]  # in flight, cancelled, nothing written, in flight
    assert waiting == 1


def _run_waits(mode: int, tmp_path: Path, program: str) -> tuple[RunResult, int]:
    """Run ``program`` to its exit; its result and how many waits the service holds then."""
    source = tmp_path / "waits.s"
    source.write_text(program)
    machine = vbox_board(mode)
    machine.load(assemble(source, mode=mode))
    result = machine.run()
    waiting = len(list(machine.guest_properties.waiting()))
    machine.close()
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.log_lines
    return result, waiting


# GET_NOTIFICATION waits, each with its own patterns ("/w/a", "/w/b", ...) and its own
# request buffer (a copy of the static one), until 16 are submitted; logs each rc.
LIMIT_GUEST = START_WAIT + """
next:
    inc byte ptr [patterns + 3]
.if MODE == 64
    lea rsi, [rip + hgcm_call_req]
    lea rdi, [rip + slots]
.else
    lea esi, [hgcm_call_req]
    lea edi, [slots]
.endif
    mov eax, dword ptr [count]
    shl eax, 10
    add edi, eax
    mov dword ptr [slot], edi
    mov ecx, dword ptr [hgcm_call_extra]
    rep movsb
    ccall1 vmmdev_request, [slot]
    mov dword ptr [status], eax
    ccall1 log_dec32, [status]
    ccall1 log_char, 10
    inc dword ptr [count]
    cmp dword ptr [count], 15
    jb next
    ccall1 exit, 0
patterns: .asciz "/w/a"
.align 8
client: .quad 0
status: .quad 0
slot: .quad 0
count: .quad 0
stamp: .quad 0
buf: .space 64
.align 16
slots: .space 15 * 1024
"""


def test_a_client_keeps_at_most_limit_minus_one_calls_in_flight(mode: int, tmp_path: Path) -> None:
    """The service's per-client limit is 16 (GUEST_PROP_MAX_CALLS_PER_CLIENT), and HGCM
    counts the new call before comparing: 15 waits stay in flight, the 16th is refused
    synchronously with VERR_HGCM_TOO_MANY_CLIENT_CALLS.

    VBox: Main/src-client/HGCM.cpp:HGCMService::GuestCall,
    HostServices/GuestProperties/VBoxGuestPropSvc.cpp:VBoxHGCMSvcLoad
    """
    result, waiting = _run_waits(mode, tmp_path, LIMIT_GUEST)
    pending, refused = str(int(Status.VINF_HGCM_ASYNC_EXECUTE)), str(int(Status.VERR_HGCM_TOO_MANY_CLIENT_CALLS))
    assert result.log_lines == [pending] * 15 + [refused]
    assert waiting == 15

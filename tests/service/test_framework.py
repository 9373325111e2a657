"""services/framework.py with a toy service: one table drives names, costs, direct buffers,
validation order, the status boundary (and its trace event) and trace decoding."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from hgcmlab.machine.tracing import ListSink, Tracer
from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.framework import (
    CallContext,
    HgcmFunction,
    Style,
    TableService,
    buf,
    decode_call,
    function_table,
    ptr,
    require,
    u32,
    u64,
)
from hgcmlab.services.hgcm import ASYNC, DirectBuffer, HgcmCall, SvcParm, _AsyncMarker

ECHO, ADD, WAIT, MARK = 1, 2, 3, 4


@dataclass
class ToyState:
    """What the toy's handlers work on (never the service itself)."""

    total: int = 0
    waiting: list[HgcmCall] = field(default_factory=list)
    ticks: int = 0
    marks: list[tuple[int, int]] = field(default_factory=list)

    def tick(self) -> int:
        """MARK's preparation: counts every MARK call, refused or not."""
        self.ticks += 1
        return self.ticks


def _upper(parm: SvcParm, client: dict[str, Any]) -> str:
    text = bytes(parm.buffer).decode("ascii", errors="replace")
    if not text:
        raise RtError(Status.VERR_INVALID_PARAMETER, "empty text")
    return text.upper() if client["loud"] else text


def _echo(ctx: CallContext[ToyState, dict[str, Any]]) -> int:
    ctx.params[1].value = len(ctx.decoded[0])
    return Status.VINF_SUCCESS


def _add(ctx: CallContext[ToyState, dict[str, Any]]) -> int:
    if ctx.params[1].value == 13:
        raise RtError(Status.VERR_ACCESS_DENIED, "unlucky number")
    ctx.state.total += ctx.params[1].value
    return Status.VINF_SUCCESS


def _wait(ctx: CallContext[ToyState, dict[str, Any]]) -> int | _AsyncMarker:
    ctx.state.waiting.append(ctx.call)
    return ASYNC


def _mark(ctx: CallContext[ToyState, dict[str, Any]]) -> int:
    ctx.state.marks.append((ctx.prepared, len(ctx.params)))
    return Status.VINF_SUCCESS


SMALL = require(lambda p: p.value < 100, Status.VERR_OUT_OF_RANGE, "amount above 99")


class ToyService(TableService):
    """Four functions; old-style ADD, new-style ECHO, unchecked-count WAIT, and MARK
    (old style, an optional trailing parameter, prepared before validation)."""

    name = "Toy"
    functions = function_table((
        HgcmFunction(ECHO, "ECHO", (ptr("text", check=_upper), u32("length", output=True)), Style.NEW, 700, _echo,
                     direct=DirectBuffer(buffer=0, reads=True)),
        HgcmFunction(ADD, "ADD", (u64("key"), u32("amount", check=SMALL), buf("blob")), Style.OLD, 300, _add),
        HgcmFunction(WAIT, "WAIT", (), Style.UNCHECKED, 50, _wait),
        HgcmFunction(MARK, "MARK", (u32("what"), u64("extra")), Style.OLD, 40, _mark, optional=1,
                     prepare=ToyState.tick),
    ))

    def __init__(self) -> None:
        self.state = ToyState()
        self.clients: dict[int, dict[str, Any]] = {7: {"loud": True}}

    def client_of(self, client_id: int) -> dict[str, Any] | None:
        return self.clients.get(client_id)


@pytest.fixture
def toy() -> tuple[ToyService, ListSink]:
    service = ToyService()
    tracer = Tracer(lambda: (0, 0, 0), strict=True)
    sink = ListSink()
    tracer.add_sink(sink)
    service.attach_tracer(tracer)
    return service, sink


def test_names_costs_and_direct_buffers_come_from_the_table() -> None:
    service = ToyService()
    assert service.function_names == {ECHO: "ECHO", ADD: "ADD", WAIT: "WAIT", MARK: "MARK"}
    assert [service.function_cycles(n) for n in (ECHO, ADD, WAIT, MARK, 99)] == [700, 300, 50, 40, None]
    assert service.direct_buffers == {ECHO: DirectBuffer(buffer=0, reads=True)}


def test_a_table_refuses_a_number_twice_and_a_free_function() -> None:
    row = HgcmFunction(ECHO, "ECHO", (), Style.OLD, 1, _echo)
    with pytest.raises(ValueError, match="twice"):
        function_table((row, row))
    with pytest.raises(ValueError, match="no cycles"):
        function_table((HgcmFunction(ADD, "ADD", (), Style.OLD, 0, _add),))


def test_handlers_see_state_client_and_decoded_values(toy: tuple[ToyService, ListSink]) -> None:
    service, sink = toy
    length = SvcParm.u32(0)
    assert service.call(HgcmCall(7, ECHO, [SvcParm.ptr(b"abc"), length])) == Status.VINF_SUCCESS
    assert length.value == 3
    assert service.call(HgcmCall(7, ADD, [SvcParm.u64(1), SvcParm.u32(5), SvcParm.ptr(2)])) == Status.VINF_SUCCESS
    assert service.state.total == 5 and sink.events == []


def test_count_and_type_faults_follow_the_style(toy: tuple[ToyService, ListSink]) -> None:
    service, _ = toy
    assert service.call(HgcmCall(7, ECHO, [SvcParm.ptr(b"a")])) == Status.VERR_WRONG_PARAMETER_COUNT
    assert service.call(HgcmCall(7, ECHO, [SvcParm.u32(1), SvcParm.u32(0)])) == Status.VERR_WRONG_PARAMETER_TYPE
    assert service.call(HgcmCall(7, ADD, [SvcParm.u64(1)])) == Status.VERR_INVALID_PARAMETER
    assert service.call(HgcmCall(7, ADD, [SvcParm.u32(1), SvcParm.u32(1), SvcParm.ptr(1)])) == \
        Status.VERR_INVALID_PARAMETER
    # WAIT's count is not checked: extra parameters are accepted.
    assert service.call(HgcmCall(7, WAIT, [SvcParm.u32(1)])) is ASYNC


def test_each_value_check_runs_right_after_its_type_check(toy: tuple[ToyService, ListSink]) -> None:
    """amount's value check comes before blob's type check (svcCall's order), and after
    amount's own type check."""
    service, _ = toy
    too_big, wrong_blob = SvcParm.u32(100), SvcParm.u64(0)
    assert service.call(HgcmCall(7, ADD, [SvcParm.u64(1), too_big, wrong_blob])) == Status.VERR_OUT_OF_RANGE
    assert service.call(HgcmCall(7, ADD, [SvcParm.u64(1), SvcParm.u64(100), wrong_blob])) == \
        Status.VERR_INVALID_PARAMETER
    assert service.call(HgcmCall(7, ADD, [SvcParm.u64(1), SvcParm.u32(5), wrong_blob])) == \
        Status.VERR_INVALID_PARAMETER
    assert service.state.total == 0


def test_every_failure_at_the_boundary_is_traced_with_its_reason(toy: tuple[ToyService, ListSink]) -> None:
    service, sink = toy
    assert service.call(HgcmCall(8, ECHO, [])) == Status.VERR_INVALID_CLIENT_ID
    assert service.call(HgcmCall(7, 42, [])) == Status.VERR_NOT_IMPLEMENTED
    assert service.call(HgcmCall(7, ADD, [SvcParm.u64(1), SvcParm.u32(13), SvcParm.ptr(1)])) == \
        Status.VERR_ACCESS_DENIED
    assert service.call(HgcmCall(7, ECHO, [SvcParm.ptr(0), SvcParm.u32(0)])) == Status.VERR_INVALID_PARAMETER
    seen = [(e.fields["client"], e.fields["function_name"], e.fields["status_name"], e.fields["reason"])
            for e in sink.of_kind("hgcm_service_error")]
    assert seen == [(8, "ECHO", "VERR_INVALID_CLIENT_ID", "client not connected"),
                    (7, "42", "VERR_NOT_IMPLEMENTED", "no such function"),
                    (7, "ADD", "VERR_ACCESS_DENIED", "unlucky number"),
                    (7, "ECHO", "VERR_INVALID_PARAMETER", "empty text")]
    assert all(e.fields["service"] == "Toy" for e in sink.events)


def test_a_service_no_device_hosts_emits_nowhere() -> None:
    service = ToyService()
    assert service.call(HgcmCall(7, 42, [])) == Status.VERR_NOT_IMPLEMENTED
    assert not service.tracer.wants("hgcm_service_error")


def test_trace_decoding_names_parameters_and_results_from_the_table() -> None:
    def render(spec: Any, param: dict[str, Any], output: bool) -> str | None:
        return f"{'out ' if output else ''}{param.get('value', param.get('size'))}"

    sent = [{"type": "ptr", "size": 3}, {"type": "u32", "value": 0}, {"type": "u32", "value": 9}]
    back = [{"type": "ptr", "size": 3}, {"type": "u32", "value": 3}]
    decoded = decode_call(ToyService.functions, ECHO, "ECHO", sent, render, written_back=back)
    assert decoded.format_inputs() == "ECHO(text=3, length=0, p2=9)"
    assert decoded.format_outputs() == "length=out 3"
    unknown = decode_call(ToyService.functions, 42, "fn 42", sent[:1], render)
    assert unknown.format_inputs() == "fn 42(p0=3)"


def test_optional_trailing_parameters_and_preparation_before_validation(toy: tuple[ToyService, ListSink]) -> None:
    """MARK takes 1 or 2 parameters; its preparation runs before any check, so refused
    calls (count 0 or 3, a wrong type) still count (as setProperty's timestamp does)."""
    service, _ = toy
    assert service.call(HgcmCall(7, MARK, [SvcParm.u32(1)])) == Status.VINF_SUCCESS
    assert service.call(HgcmCall(7, MARK, [SvcParm.u32(1), SvcParm.u64(2)])) == Status.VINF_SUCCESS
    assert service.call(HgcmCall(7, MARK, [])) == Status.VERR_INVALID_PARAMETER
    assert service.call(HgcmCall(7, MARK, [SvcParm.u32(1), SvcParm.u64(2), SvcParm.u32(3)])) == \
        Status.VERR_INVALID_PARAMETER
    assert service.call(HgcmCall(7, MARK, [SvcParm.u32(1), SvcParm.u32(2)])) == Status.VERR_INVALID_PARAMETER
    assert service.call(HgcmCall(7, MARK, [SvcParm.u32(1), SvcParm.u64(2)])) == Status.VINF_SUCCESS
    assert service.state.marks == [(1, 1), (2, 2), (6, 2)]
    assert service.state.ticks == 6

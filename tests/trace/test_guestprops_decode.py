"""Guest property calls in traces: decoded by the service's own decoder
(services/guestprops/trace.py, derived from its function table), found by service name
(services/decoders.py) and shown by ``hgcmlab trace show`` and the pytest kit."""

from __future__ import annotations

from pathlib import Path

from hgcmlab.guest_asm import assemble
from hgcmlab.guest_asm.source import LIB_DIR
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.pytest_plugin import golden_lines
from hgcmlab.machine.trace.tools import CallTracker, describe, first_divergence
from hgcmlab.machine.tracing import ListSink, TraceEvent
from hgcmlab.services.decoders import decoder_for
from hgcmlab.services.framework import DecodedCall
from hgcmlab.services.guestprops.trace import GuestPropDecoder
from hgcmlab.services.sharedfolders.abi import ShflFn
from hgcmlab.services.sharedfolders.decode import ShflDecoder

TOOL = Path(LIB_DIR).parent / "programs" / "guestprop.s"


def _ptr(data: bytes, size: int | None = None) -> dict:
    return {"type": "ptr", "guest": "LinAddr_In", "dir": "in", "size": len(data) if size is None else size,
            "data": data.hex()}


def decode_call(function: int, params: list[dict], written_back: list[dict] | None = None) -> DecodedCall:
    return GuestPropDecoder().decode({"client": 1, "function": function, "params": params}, written_back)


def test_inputs_and_results_by_name() -> None:
    call = [_ptr(b"/a/b\0"), {"type": "ptr", "dir": "out", "size": 64}, {"type": "u64", "value": 0},
            {"type": "u32", "value": 0}]
    back = [{"type": "ptr", "dir": "in", "size": 5}, _ptr(b"hello\0\0" + bytes(9), 64),
            {"type": "u64", "value": 123}, {"type": "u32", "value": 7}]
    decoded = decode_call(1, call, back)
    assert decoded.format_inputs() == "GUEST_PROP_FN_GET_PROP(name='/a/b', buffer=<64 bytes>)"
    assert decoded.format_outputs() == "buffer=['hello', ''], timestamp=123, size=7"


def test_notification_timestamp_in_and_out_and_unknown_function() -> None:
    call = [_ptr(b"a*|b*\0"), {"type": "u64", "value": 5}, {"type": "ptr", "dir": "out", "size": 16},
            {"type": "u32", "value": 0}]
    assert decode_call(6, call).format_inputs() == "GUEST_PROP_FN_GET_NOTIFICATION(patterns='a*|b*', timestamp=5, buffer=<16 bytes>)"
    assert decode_call(9, [{"type": "u32", "value": 1}]).format_inputs() == "fn 9(p0=1)"


def test_trace_show_decodes_a_guest_run() -> None:
    machine = vbox_board(64)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    assert machine.guest_properties.set_property("/Host/X", "1", "TRANSIENT") == 0
    machine.load(assemble(TOOL, mode=64))
    machine.set_arguments(["get", "/Host/X"])
    assert machine.run().exit_code == 0
    stamp = machine.guest_properties.get_property("/Host/X")[1]
    machine.close()
    call = sink.of_kind("hgcm_call")[0]
    assert describe(call).endswith("VBoxGuestPropSvc: GUEST_PROP_FN_GET_PROP(name='/Host/X', buffer=<65536 bytes>)")
    shown = describe(sink.of_kind("hgcm_complete")[1], call)
    assert f"-> VINF_SUCCESS buffer=['1', 'TRANSIENT'], timestamp={stamp}, size=12," in shown
    # The pytest kit's golden/failure-report lines decode it through the same lookup.
    lines = golden_lines(sink.events, kinds=("hgcm_call", "hgcm_complete"),
                         fields={"hgcm_call": ("call",), "hgcm_complete": ("results",)})
    assert '{"kind": "hgcm_call", "call": "GUEST_PROP_FN_GET_PROP(name=\'/Host/X\', buffer=<65536 bytes>)"}' in lines
    assert any(f"timestamp={stamp}, size=12" in line for line in lines)


def test_decoders_are_looked_up_by_the_traced_service_name() -> None:
    assert isinstance(decoder_for("VBoxGuestPropSvc"), GuestPropDecoder)
    assert isinstance(decoder_for("VBoxSharedFolders"), ShflDecoder)
    assert isinstance(decoder_for(None), ShflDecoder)  # traces recorded before calls named their service
    assert decoder_for("NoSuchSvc") is None


def _call(service: str, function: int, client: int, address: int) -> TraceEvent:
    return TraceEvent("hgcm_call", 0, 0, 0, {"service": service, "client": client, "function": function,
                                              "address": address, "params": []})


def _done(address: int) -> TraceEvent:
    return TraceEvent("hgcm_complete", 0, 0, 0, {"command": "call", "address": address, "result": 0})


def test_utf8_clients_are_the_shared_folders_decoders_business() -> None:
    """Only a Shared Folders SET_UTF8 switches a client to UTF-8: the same function number
    sent to another service does not."""
    tracker = CallTracker()
    for event in (_call("VBoxGuestPropSvc", ShflFn.SET_UTF8, 5, 0x100), _done(0x100),
                  _call("VBoxSharedFolders", ShflFn.SET_UTF8, 6, 0x200), _done(0x200)):
        tracker.feed(event)
    shfl = tracker.decoder(_call("VBoxSharedFolders", 1, 0, 0))
    assert isinstance(shfl, ShflDecoder) and shfl.utf8_clients == {6}


def _get_run(value: str) -> list[TraceEvent]:
    machine = vbox_board(64)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    assert machine.guest_properties.set_property("/Host/X", value) == 0
    machine.load(assemble(TOOL, mode=64))
    machine.set_arguments(["get", "/Host/X"])
    assert machine.run().exit_code == 0
    machine.close()
    return sink.events


def test_trace_diff_shows_the_differing_completion_decoded() -> None:
    found = first_divergence(_get_run("1"), _get_run("2"), kinds=frozenset({"hgcm_call", "hgcm_complete"}),
                             stamps=False)
    assert found is not None
    text = found.format()
    assert "A decoded: client 1 GET_PROP call at" in text and "buffer=['1', '']" in text
    assert "B decoded: client 1 GET_PROP call at" in text and "buffer=['2', '']" in text

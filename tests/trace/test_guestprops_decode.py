"""Guest property calls in traces: decoded by the service's own decoder
(services/guestprops/trace.py, derived from its function table) and shown by
``hgcmlab trace show``."""

from __future__ import annotations

from pathlib import Path

from guest_asm import assemble
from guest_asm.source import LIB_DIR
from machine.boards import vbox_board
from machine.trace.tools import describe
from machine.tracing import ListSink
from services.guestprops.trace import decode_call

TOOL = Path(LIB_DIR).parent / "programs" / "guestprop.s"


def _ptr(data: bytes, size: int | None = None) -> dict:
    return {"type": "ptr", "guest": "LinAddr_In", "dir": "in", "size": len(data) if size is None else size,
            "data": data.hex()}


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

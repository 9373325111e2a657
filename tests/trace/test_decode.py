"""Shared Folders parameter decoding: pure formatting, and the capture on real runs."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from hgcmlab.services.sharedfolders.decode import bytes_moved, create_flags, decode_call, format_param, shflstring_text
from hgcmlab.services.sharedfolders.abi import ShflCf, ShflFn

from .conftest import record_demo


def shflstring(text: str, utf8: bool = True) -> bytes:
    body = text.encode("utf-8" if utf8 else "utf-16-le")
    terminator = b"\0" if utf8 else b"\0\0"
    return struct.pack("<HH", len(body) + len(terminator), len(body)) + body + terminator


def ptr(data: bytes | None, size: int | None = None, direction: str = "in") -> dict:
    record = {"type": "ptr", "guest": "LinAddr", "dir": direction, "size": len(data or b"") if size is None else size}
    if data is not None:
        record["data"] = data.hex()
    return record


def u32(value: int) -> dict:
    return {"type": "u32", "value": value}


def u64(value: int) -> dict:
    return {"type": "u64", "value": value}


def test_create_flags_by_name() -> None:
    assert create_flags(ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_FAIL_IF_NEW | ShflCf.ACCESS_READ) == \
        "ACT_OPEN_IF_EXISTS|ACT_FAIL_IF_NEW|ACCESS_READ"
    assert create_flags(ShflCf.DIRECTORY | ShflCf.ACT_FAIL_IF_EXISTS | ShflCf.ACCESS_DENYWRITE
                        | ShflCf.ACCESS_APPEND | 0x800000) == \
        "DIRECTORY|ACCESS_APPEND|ACT_FAIL_IF_EXISTS|ACT_CREATE_IF_NEW|ACCESS_NONE|ACCESS_DENYWRITE|0x800000"


def test_shflstring_utf8_utf16_guess_and_truncation() -> None:
    assert shflstring_text(shflstring("dir/é.txt")) == "dir/é.txt"
    assert shflstring_text(shflstring("wide", utf8=False)) == "wide"           # guessed UTF-16
    assert shflstring_text(shflstring("ab", utf8=False), utf8=True) == "a\0b\0"  # told otherwise
    assert shflstring_text(shflstring("long name")[:8]) == "long..."             # cut by the preview
    assert shflstring_text(b"\x01") is None


def test_create_call_and_its_results() -> None:
    parms_in = struct.pack("<QII", 0, 0, int(ShflCf.ACCESS_READWRITE | ShflCf.ACT_REPLACE_IF_EXISTS)) + bytes(92)
    info = struct.pack("<q", 30) + bytes(84)
    parms_out = struct.pack("<QII", 0x2A, 3, 0) + info
    decoded = decode_call(ShflFn.CREATE, [u32(2), ptr(shflstring("a/b")), ptr(parms_in, direction="inout")],
                          written_back=[u32(2), ptr(None, 7), ptr(parms_out, direction="inout")])
    assert decoded.format_inputs() == \
        'SHFL_FN_CREATE(root=2, path="a/b", parms={flags=ACT_REPLACE_IF_EXISTS|ACT_CREATE_IF_NEW|ACCESS_READWRITE})'
    assert decoded.format_outputs() == "parms={handle=0x2a, result=FILE_EXISTS, size=30}"


def test_read_list_lock_and_odd_calls() -> None:
    read = decode_call(ShflFn.READ, [u32(0), u64(1), u64(0x20000), u32(4096), ptr(None, 4096, "out")],
                       written_back=[u32(0), u64(1), u64(0x20000), u32(17), ptr(b"x" * 17, 4096, "out")])
    assert read.format_inputs() == "SHFL_FN_READ(root=0, handle=0x1, offset=131072, cb=4096, buffer=<ptr 4096 bytes>)"
    assert read.format_outputs() == "cb=17"
    assert bytes_moved(ShflFn.READ, None, [u32(0), u64(1), u64(0), u32(17), ptr(None, 9)]) == (0, 17)
    assert bytes_moved(ShflFn.WRITE, None, [u32(0), u64(1), u64(0), u32(5), ptr(None, 9)]) == (5, 0)
    listing = decode_call(ShflFn.LIST, [u32(1), u64(0xFFFFFFFFFFFFFFFF), u32(3), u32(512), ptr(b"", 0),
                                        ptr(None, 512, "out"), u32(0), u32(0)])
    assert "handle=NIL, flags=RETURN_ONE|RESTART, cb=512, path=NULL" in listing.format_inputs()
    lock = decode_call(ShflFn.LOCK, [u32(1), u64(2), u64(0), u64(10), u32(0x2 | 0x4)])
    assert lock.inputs[-1] == ("flags", "EXCLUSIVE|WAIT|PARTIAL")
    unknown = decode_call(99, [u32(5), u64(6)])
    assert unknown.format_inputs() == "fn 99(p0=5, p1=6)"
    assert format_param("root", u32(0xFFFFFFFF)) == "NIL"
    assert format_param("str", ptr(b"\x00"), utf8=True) == "<ptr 1 bytes>"  # too short for a header


@pytest.mark.parametrize("mode", [64, 32])
@pytest.mark.parametrize("linaddr", [False, True])
def test_capture_decodes_real_calls(tmp_path: Path, mode: int, linaddr: bool) -> None:
    defines = {"HGCM_USE_LINADDR": 1} if linaddr else None
    events, result = record_demo(tmp_path, mode, defines=defines, program=f"sf_write_read_{mode}.s")
    assert result.exit_code == 0
    calls = {e.fields["function_name"]: e for e in events if e.kind == "hgcm_call"}
    completes = [e for e in events if e.kind == "hgcm_complete" and e.fields["command"] == "call"]
    create_done = next(e for e in completes if e.fields["function_name"] == "CREATE")
    read_done = next(e for e in completes if e.fields["function_name"] == "READ")
    create = decode_call(ShflFn.CREATE, calls["CREATE"].fields["params"], written_back=create_done.fields["params"])
    assert create.inputs[1] == ("path", f'"write_read_{mode}.txt"')
    assert create.format_outputs().startswith("parms={handle=0x1, result=FILE_CREATED")
    message = f"HGCMCall{mode} write/read round trip\n".encode()
    write_params = calls["WRITE"].fields["params"]
    assert bytes.fromhex(write_params[4]["data"]) == message          # the bytes sent to the host
    assert bytes.fromhex(read_done.fields["params"][4]["data"]) == message  # and those read back
    assert read_done.fields["params"][3] == {"type": "u32", "value": len(message)}
    assert (read_done.fields["client"], read_done.fields["function"]) == (calls["READ"].fields["client"], ShflFn.READ)

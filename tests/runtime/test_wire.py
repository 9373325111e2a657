"""runtime/wire.py: struct layouts derived from ctypes declarations."""

from __future__ import annotations

import ctypes

import pytest

from hgcmlab.runtime.wire import array_codec, field_offset, field_run, run_format


class _Inner(ctypes.LittleEndianStructure):
    _pack_ = 4
    _fields_ = [("tag", ctypes.c_uint16), ("count", ctypes.c_uint32), ("name", ctypes.c_char * 6)]


class _Outer(ctypes.LittleEndianStructure):
    _pack_ = 4
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("rc", ctypes.c_int32),
        ("inner", _Inner),
        ("big", ctypes.c_uint64),
        ("delta", ctypes.c_int64),
        ("bytes3", ctypes.c_uint8 * 3),
        ("flags", ctypes.c_uint32, 8),
        ("rest", ctypes.c_uint32, 24),
        ("ratio", ctypes.c_double),
    ]


def test_formats_follow_the_declared_types_and_padding() -> None:
    assert run_format(_Outer, "size", "rc") == "<Ii"
    # tag (2 bytes) is followed by 2 bytes of alignment padding before count.
    assert run_format(_Outer, "inner.tag", "inner.name") == "<H2xI6s"
    assert run_format(_Outer, "big", "bytes3") == "<Qq3B"


def test_offsets_follow_dotted_paths() -> None:
    assert field_offset(_Outer, "inner.count") == _Outer.inner.offset + _Inner.count.offset == 12
    assert field_run(_Outer, "inner.name").offset == 16


def test_a_run_reads_and_writes_its_fields_where_the_declaration_puts_them() -> None:
    buffer = bytearray(ctypes.sizeof(_Outer) + 8)
    run = field_run(_Outer, "big", "delta")
    run.pack(buffer, 8, 2**64 - 1, -5)
    view = _Outer.from_buffer(buffer, 8)
    assert (view.big, view.delta) == (2**64 - 1, -5)
    assert run.unpack(buffer, 8) == (2**64 - 1, -5)
    assert field_run(_Outer, "rc").get(bytes(_Outer(rc=-7))) == -7
    assert field_run(_Outer, "size").packed(0x01020304) == b"\x04\x03\x02\x01"


@pytest.mark.parametrize("field", ["flags", "ratio"])
def test_bit_fields_and_non_integers_are_refused(field: str) -> None:
    with pytest.raises(TypeError):
        field_run(_Outer, field)


def test_array_codec_packs_consecutive_elements() -> None:
    assert array_codec(ctypes.c_uint64, 2).pack(1, 2) == (1).to_bytes(8, "little") + (2).to_bytes(8, "little")

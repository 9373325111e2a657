"""NUL-terminated UTF-8 strings the way the service checks them:
RTStrValidateEncodingEx(..., RTSTR_VALIDATE_ENCODING_ZERO_TERMINATED) over a buffer
(Runtime/common/string/utf-8.cpp:rtUtf8Length, as HGCMSvcGetCStr in include/VBox/hgcmsvc.h
calls it).

IPRT's UTF-8 is not Python's: it accepts 4-byte forms up to U+1FFFFF and the old 5- and
6-byte forms, refuses U+FFFE/U+FFFF and surrogates with statuses of their own, and does not
reject overlong 4-byte forms of code points at or above U+10000.  Strings therefore stay
bytes in this service; only the host API decodes them (for display).
"""

from __future__ import annotations

from hgcmlab.runtime.status import RtError, Status

#: Sequence length by lead byte prefix, with the smallest and largest code point each
#: length may encode (rtUtf8Length's range checks).
_FORMS = (
    (0xE0, 0xC0, 2, 0x80, 0x7FF),
    (0xF0, 0xE0, 3, 0x800, 0xFFFD),
    (0xF8, 0xF0, 4, 0x10000, 0x1FFFFF),
    (0xFC, 0xF8, 5, 0x200000, 0x3FFFFFF),
    (0xFE, 0xFC, 6, 0x4000000, 0x7FFFFFFF),
)


def _sequence(data: bytes | bytearray, pos: int) -> int:
    """Length of the valid multi-byte sequence at ``pos``; RtError when it is not one."""
    lead = data[pos]
    for mask, prefix, length, low, high in _FORMS:
        if lead & mask == prefix:
            break
    else:
        raise RtError(Status.VERR_INVALID_UTF8_ENCODING, f"bad lead byte {lead:#x}")
    if pos + length > len(data):
        raise RtError(Status.VERR_INVALID_UTF8_ENCODING, "truncated sequence")
    code = lead & (0x7F >> length)
    for byte in data[pos + 1:pos + length]:
        if byte & 0xC0 != 0x80:
            raise RtError(Status.VERR_INVALID_UTF8_ENCODING, "bad continuation byte")
        code = code << 6 | byte & 0x3F
    if length == 3 and code in (0xFFFE, 0xFFFF):
        raise RtError(Status.VERR_CODE_POINT_ENDIAN_INDICATOR, f"U+{code:04X}")
    if not low <= code <= high:
        raise RtError(Status.VERR_INVALID_UTF8_ENCODING, f"code point {code:#x} out of range")
    if length == 3 and 0xD800 <= code <= 0xDFFF:
        raise RtError(Status.VERR_CODE_POINT_SURROGATE, f"U+{code:04X}")
    return length


def c_string(data: bytes | bytearray) -> bytes:
    """The string at the start of ``data`` without its terminator.

    RtError with IPRT's status: the encoding fault met before the first NUL, else
    VERR_BUFFER_OVERFLOW when ``data`` holds no NUL.
    """
    pos = 0
    while pos < len(data) and data[pos]:
        pos += 1 if data[pos] < 0x80 else _sequence(data, pos)
    if pos >= len(data):
        raise RtError(Status.VERR_BUFFER_OVERFLOW, "no terminator")
    return bytes(data[:pos])

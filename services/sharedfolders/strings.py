"""SHFLSTRING: parse, validate (valid-in / valid-out) and build, UTF-8 and UTF-16LE.

Layout: u16Size (bytes of string area), u16Length (bytes, no terminator), then the string.
Validation follows ShflStringIsValidIn / IsValidOut (reference §3.1).  The UTF-8 check is
Python's strict codec plus IPRT's refusal of U+FFFE/U+FFFF, so it rejects overlongs,
surrogates and the non-characters like IPRT, and additionally the 5/6-byte forms and code
points above U+10FFFF that IPRT accepts (docs/deviations.md).
"""

from __future__ import annotations

from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.sharedfolders.abi import SHFLSTRING_HEADER_SIZE, SHFLSTRING_LENGTH, SHFLSTRING_SIZES

_MAX_U16 = 0xFFFF
#: The terminator of a UTF-16 string (one NUL code unit).
UTF16_NUL = b"\0\0"


def _invalid(why: str) -> RtError:
    return RtError(Status.VERR_INVALID_PARAMETER, f"SHFLSTRING: {why}")


def header(buf: bytes | bytearray) -> tuple[int, int]:
    """(u16Size, u16Length) of a buffer at least 4 bytes long."""
    return SHFLSTRING_SIZES.unpack(buf)


def set_length(buf: bytearray, length: int) -> None:
    """Set u16Length of the SHFLSTRING in ``buf``."""
    SHFLSTRING_LENGTH.pack(buf, 0, length)


def ends_in_utf16_nul(buf: bytes | bytearray, length: int) -> bool:
    """Whether the last UTF-16 unit of the ``length`` bytes after the header is a NUL (a
    u16Length that counted the terminator)."""
    end = SHFLSTRING_HEADER_SIZE + length
    return length >= len(UTF16_NUL) and end <= len(buf) and buf[end - len(UTF16_NUL):end] == UTF16_NUL


def check_valid_out(buf: bytes | bytearray) -> tuple[int, int]:
    """ShflStringIsValidOut: buffer > 4, u16Size + 4 <= buffer, u16Length < u16Size."""
    if len(buf) <= SHFLSTRING_HEADER_SIZE:
        raise _invalid("buffer too small")
    size, length = header(buf)
    if size + SHFLSTRING_HEADER_SIZE > len(buf) or length >= size:
        raise _invalid("sizes inconsistent")
    return size, length


def _decode(raw: bytes, utf8: bool) -> str:
    try:
        text = raw.decode("utf-8" if utf8 else "utf-16-le")
    except UnicodeDecodeError:
        raise _invalid("bad encoding") from None
    if "\0" in text:
        raise _invalid("embedded NUL")
    if utf8 and ("\ufffe" in text or "\uffff" in text):
        raise _invalid("U+FFFE/U+FFFF")  # IPRT's UTF-8 validator refuses these non-characters
    return text


def parse_in(buf: bytes | bytearray, utf8: bool) -> str:
    """ShflStringIsValidIn in the client's encoding; returns the decoded text.

    Raises RtError(VERR_INVALID_PARAMETER) for any size, terminator or encoding fault.
    """
    if len(buf) <= SHFLSTRING_HEADER_SIZE:
        raise _invalid("buffer too small")
    size, length = header(buf)
    if size + SHFLSTRING_HEADER_SIZE > len(buf):
        raise _invalid("u16Size beyond buffer")
    body = bytes(buf[SHFLSTRING_HEADER_SIZE:SHFLSTRING_HEADER_SIZE + size])
    if utf8:
        if length >= size or body[length] != 0:
            raise _invalid("no terminator")
    elif length % 2 or length + len(UTF16_NUL) > size or body[length:length + len(UTF16_NUL)] != UTF16_NUL:
        raise _invalid("bad UTF-16 length or terminator")
    return _decode(body[:length], utf8)


def parse_in_or_null(buf: bytes | bytearray, utf8: bool) -> str | None:
    """ShflStringIsValidOrNullIn: an empty (size 0) pointer is None, else as parse_in."""
    if len(buf) == 0:
        return None
    return parse_in(buf, utf8)


def encode(text: str, utf8: bool) -> bytes:
    """The string bytes without terminator in the given encoding."""
    return text.encode("utf-8" if utf8 else "utf-16-le")


def build(text: str, utf8: bool, size: int | None = None) -> bytes:
    """A complete SHFLSTRING as host code builds it (u16Size = length + terminator).

    ``size`` overrides u16Size (the area is zero-padded, never shorter than the text);
    handy for building deliberately odd strings in tests.
    """
    raw = encode(text, utf8)
    area = len(raw) + (1 if utf8 else 2) if size is None else size
    out = bytearray(SHFLSTRING_HEADER_SIZE + max(area, len(raw)))
    SHFLSTRING_SIZES.pack(out, 0, area, len(raw))
    out[SHFLSTRING_HEADER_SIZE:SHFLSTRING_HEADER_SIZE + len(raw)] = raw
    return bytes(out)


def empty_buffer(size: int) -> bytearray:
    """An "init buffer" string: u16Size = size - 4, u16Length 0, terminator written."""
    out = bytearray(size)
    SHFLSTRING_SIZES.pack(out, 0, size - SHFLSTRING_HEADER_SIZE, 0)
    return out


def copy_out_utf8(buf: bytearray, text: str) -> int:
    """UTF-16 -> UTF-8 copy into a valid-out buffer (RTUtf16ToUtf8Ex semantics).

    On success writes the bytes and a NUL, sets u16Length, returns VINF_SUCCESS.  On
    overflow sets u16Length to the needed length and returns VERR_BUFFER_OVERFLOW
    (VERR_TOO_MUCH_DATA when even 16 bits cannot hold it).  u16Size is never changed.
    """
    size, _ = header(buf)
    raw = text.encode("utf-8")
    if len(raw) > _MAX_U16 - 1:
        return Status.VERR_TOO_MUCH_DATA
    if size == 0 or len(raw) + 1 > size:
        set_length(buf, len(raw))
        return Status.VERR_BUFFER_OVERFLOW
    buf[SHFLSTRING_HEADER_SIZE:SHFLSTRING_HEADER_SIZE + len(raw) + 1] = raw + b"\0"
    set_length(buf, len(raw))
    return Status.VINF_SUCCESS


def copy_out_utf16(buf: bytearray, text: str) -> int:
    """Plain UTF-16 copy (ShflStringCopy, terminator 2): needs u16Size >= length + 2.

    u16Length is set to the source length whether or not it fits (as VirtualBox does);
    overflow returns VERR_BUFFER_OVERFLOW.
    """
    size, _ = header(buf)
    raw = text.encode("utf-16-le")
    set_length(buf, len(raw))
    if size < len(raw) + len(UTF16_NUL):
        return Status.VERR_BUFFER_OVERFLOW
    buf[SHFLSTRING_HEADER_SIZE:SHFLSTRING_HEADER_SIZE + len(raw) + len(UTF16_NUL)] = raw + UTF16_NUL
    return Status.VINF_SUCCESS

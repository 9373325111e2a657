"""Property flags as text: GuestPropValidateFlags and GuestPropWriteFlags
(include/VBox/HostServices/GuestPropertySvc.h).

Flags travel as a comma-separated list of names, matched case-insensitively in ASCII only
(RTStrNICmpAscii), so the parser works on bytes: Python's str case mapping would accept
non-ASCII look-alikes ("ı" upper-cases to "I") that VirtualBox refuses.
"""

from __future__ import annotations

from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.guestprops.abi import GuestPropFlag

#: The order both functions walk the flags in; READONLY before the two RDONLY flags keeps
#: the written form short.
_ORDER = (GuestPropFlag.TRANSIENT, GuestPropFlag.READONLY, GuestPropFlag.RDONLYGUEST,
          GuestPropFlag.RDONLYHOST, GuestPropFlag.TRANSRESET)


def _name(flag: GuestPropFlag) -> bytes:
    assert flag.name is not None
    return flag.name.encode("ascii")


def parse_flags(text: bytes) -> GuestPropFlag:
    """The flags ``text`` names (up to its first NUL); RtError(VERR_PARSE_ERROR) for an
    unknown name, a missing comma or an empty item ("RDONLYHOST,,")."""
    text = text.split(b"\0", 1)[0]
    flags = GuestPropFlag.NILFLAG
    pos = len(text) - len(text.lstrip(b" "))
    while pos < len(text):
        flag = next((f for f in _ORDER if text[pos:pos + len(_name(f))].upper() == _name(f)), None)
        if flag is None:
            raise RtError(Status.VERR_PARSE_ERROR, f"unknown flag at {text[pos:]!r}")
        flags |= flag
        pos += len(_name(flag))
        while text[pos:pos + 1] == b" ":
            pos += 1
        if text[pos:pos + 1] == b",":
            pos += 1
            while text[pos:pos + 1] == b" ":
                pos += 1
        elif pos < len(text):
            raise RtError(Status.VERR_PARSE_ERROR, f"junk after flag at {text[pos:]!r}")
    return flags


def write_flags(flags: int) -> str:
    """The canonical text of ``flags`` ("TRANSIENT, READONLY"); TRANSRESET brings TRANSIENT
    along for old clients.  RtError(VERR_INVALID_PARAMETER) for bits outside ALLFLAGS."""
    if flags & ~GuestPropFlag.ALLFLAGS:
        raise RtError(Status.VERR_INVALID_PARAMETER, f"unknown flag bits {flags:#x}")
    if flags & GuestPropFlag.TRANSRESET:
        flags |= GuestPropFlag.TRANSIENT
    names = []
    for flag in _ORDER:
        if flags & flag == flag:
            names.append(flag.name)
            flags &= ~flag
    return ", ".join(str(name) for name in names)

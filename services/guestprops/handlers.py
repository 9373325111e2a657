"""The guest functions: wire parameters in, service state changes, wire results out
(HostServices/GuestProperties/VBoxGuestPropSvc.cpp: getProperty, setProperty, delProperty,
enumProps, getNotification).  Validation of count, types and strings happened at the
framework's boundary (functions.py rows); these add each function's own checks in the
source's order.  ``ctx.decoded`` holds the checked strings by parameter index (without
terminator); ``ctx.client`` is unused (the service keeps no per-client data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hgcmlab.runtime.status import Status
from hgcmlab.services.framework import CallContext
from hgcmlab.services.guestprops.abi import ENUM_TERMINATOR, GUEST_PROP_MAX_PATTERN_LEN, GuestPropFlag
from hgcmlab.services.guestprops.cstring import c_string
from hgcmlab.services.guestprops.flags import parse_flags, write_flags
from hgcmlab.services.guestprops.names import check_name, check_value
from hgcmlab.services.guestprops.pattern import matches
from hgcmlab.services.guestprops.store import Property
from hgcmlab.services.hgcm import SvcParm, SvcParmType, _AsyncMarker

if TYPE_CHECKING:
    from hgcmlab.services.guestprops.state import GuestPropState


def set_out(parm: SvcParm, value: int) -> None:
    """HGCMSvcSetU32/U64 into an output parameter: a 32-bit parameter keeps the low half
    (the guest reads the union's first 4 bytes)."""
    parm.value = value & (0xFFFFFFFF if parm.type is SvcParmType.U32 else 0xFFFFFFFFFFFFFFFF)


def get_prop(ctx: CallContext[GuestPropState, int]) -> int:
    """GET_PROP(name, buffer, timestamp out, size out): "value\\0flags\\0" into the buffer;
    the size needed is reported even when it does not fit (VERR_BUFFER_OVERFLOW), the
    timestamp only when it does."""
    name_parm, buffer = ctx.params[0], ctx.params[1].buffer
    check_name(name_parm.buffer)
    prop = ctx.state.registry.get(ctx.decoded[0])
    if prop is None:
        return Status.VERR_NOT_FOUND
    data = prop.value + b"\0" + write_flags(prop.flags).encode("ascii") + b"\0"
    set_out(ctx.params[3], len(data))
    if len(buffer) < len(data):
        return Status.VERR_BUFFER_OVERFLOW
    buffer[:len(data)] = data
    set_out(ctx.params[2], prop.timestamp)
    return Status.VINF_SUCCESS


def set_prop(ctx: CallContext[GuestPropState, int]) -> int:
    """SET_PROP(name, value, flags) and SET_PROP_VALUE(name, value): name, value, then flags
    checks; without flags the property's flags become none (both functions take 2 or 3
    parameters)."""
    check_name(ctx.params[0].buffer)
    check_value(ctx.params[1].buffer)
    flags = parse_flags(ctx.decoded[2]) if len(ctx.params) == 3 else GuestPropFlag.NILFLAG
    return ctx.state.set_internal(ctx.decoded[0], ctx.decoded[1], flags, ctx.prepared, guest=True)


def del_prop(ctx: CallContext[GuestPropState, int]) -> int:
    """DEL_PROP(name): success also when there is no such property."""
    check_name(ctx.params[0].buffer)
    return ctx.state.delete_internal(ctx.decoded[0], guest=True)


def repack_patterns(raw: bytes | bytearray) -> bytes:
    """enumProps' pattern buffer as one ``|``-separated list: every NUL before the last byte
    separates patterns, and each string after such a NUL must be valid and terminated
    within the buffer (its IPRT status otherwise: VERR_INVALID_UTF8_ENCODING,
    VERR_BUFFER_OVERFLOW, ...).  The last byte ends the list whatever it holds."""
    packed = bytearray(raw[:-1])
    for index, byte in enumerate(packed):
        if byte == 0:
            c_string(raw[index + 1:])
            packed[index] = 0x7C
    return bytes(packed)


def enum_props(ctx: CallContext[GuestPropState, int]) -> int:
    """ENUM_PROPS(patterns, buffer, size out): "name\\0value\\0timestamp\\0flags\\0" per
    matching property (decimal timestamp), then four NULs; the size needed is always
    reported, VERR_BUFFER_OVERFLOW when it does not fit.  Properties that do not fit are
    skipped while later smaller ones may still be written (enumPropsCallback)."""
    raw, buffer = ctx.params[0].buffer, ctx.params[1].buffer
    if len(raw) > GUEST_PROP_MAX_PATTERN_LEN:
        return Status.VERR_TOO_MUCH_DATA
    patterns = repack_patterns(raw)
    needed, pos, left = 0, 0, len(buffer)
    for prop in ctx.state.registry:
        if not matches(patterns, prop.name):
            continue
        entry = b"\0".join((prop.name, prop.value, str(prop.timestamp).encode("ascii"),
                            write_flags(prop.flags).encode("ascii"))) + b"\0"
        needed += len(entry)
        if len(entry) > left:
            left = 0
            continue
        buffer[pos:pos + len(entry)] = entry
        pos += len(entry)
        left -= len(entry)
    set_out(ctx.params[2], needed + len(ENUM_TERMINATOR))
    if left < len(ENUM_TERMINATOR):
        return Status.VERR_BUFFER_OVERFLOW
    buffer[pos:pos + len(ENUM_TERMINATOR)] = ENUM_TERMINATOR
    return Status.VINF_SUCCESS


def write_change(params: list[SvcParm], change: Property, deleted: bool) -> int:
    """getNotificationWriteOut: the change's timestamp, then "name\\0value\\0flags\\0" and
    "1\\0" for a deleted property ("0\\0" otherwise); the size needed is always reported,
    VERR_BUFFER_OVERFLOW when it does not fit."""
    buffer = params[2].buffer
    set_out(params[1], change.timestamp)
    data = b"\0".join((change.name, change.value, write_flags(change.flags).encode("ascii"),
                       b"1" if deleted else b"0")) + b"\0"
    set_out(params[3], len(data))
    if len(data) > len(buffer):
        return Status.VERR_BUFFER_OVERFLOW
    buffer[:len(data)] = data
    return Status.VINF_SUCCESS


def get_notification(ctx: CallContext[GuestPropState, int]) -> int | _AsyncMarker:
    """GET_NOTIFICATION(patterns, timestamp in/out, buffer, size out).

    Timestamp 0 waits for the next matching change.  Otherwise the first remembered change
    after the one with that timestamp that matches is returned at once; when the timestamp
    is not remembered the search starts at the oldest change and the status is
    VWRN_NOT_FOUND (also when the call then waits and completes later).  With nothing to
    return the call waits (ASYNC; see ``GuestPropState.wait``).
    """
    state = ctx.state
    patterns, timestamp = ctx.decoded[0], ctx.params[1].value
    status: int = Status.VINF_SUCCESS
    change = None
    if timestamp != 0:
        found, change = state.changes.after(timestamp, lambda name: matches(patterns, name))
        status = Status.VINF_SUCCESS if found else Status.VWRN_NOT_FOUND
    if change is None:
        return state.wait(ctx.call, patterns, status)
    written = write_change(ctx.params, change, deleted=state.registry.get(change.name) is None)
    return written if written < 0 else status

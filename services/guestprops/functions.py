"""The guest functions as framework rows (services/framework.py): number, signature,
validation style, cost, handler.

Validation follows the service's check order (HostServices/GuestProperties/
VBoxGuestPropSvc.cpp: getProperty, setProperty, delProperty, enumProps, getNotification):
the parameter count, then each checked parameter in order.  Every one of these faults is
VERR_INVALID_PARAMETER, a bad string included, because each handler folds its HGCMSvcGet*
calls into one condition: that is ``Style.OLD`` with value checks that fold their own
statuses into it.  Output-only values (timestamps and sizes the service writes) are not
checked at all, as there; the service only sets them.  SET_PROP and SET_PROP_VALUE share
setProperty, which takes 2 or 3 parameters (``optional=1``) and takes its timestamp before
any check, so a refused call still advances the timestamp source (``prepare``).
Functions absent from the table answer VERR_NOT_IMPLEMENTED (Service::call).
"""

from __future__ import annotations

from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.framework import Handler, HgcmFunction, Parm, Style, function_table, u64, untyped
from hgcmlab.services.guestprops import handlers
from hgcmlab.services.guestprops.abi import GUEST_PROP_CPARMS, GuestPropFn
from hgcmlab.services.guestprops.cstring import c_string
from hgcmlab.services.guestprops.state import GuestPropState
from hgcmlab.services.hgcm import SvcParm, SvcParmType

#: The one status of every count, type and string fault.
FAULT = Status.VERR_INVALID_PARAMETER

#: How the service's trace decoder (trace.py) shows each kind of parameter.
SHOW_STRING, SHOW_FIELDS, SHOW_VALUE, SHOW_RESULT = "string", "fields", "value", "result"


def _non_empty(parm: SvcParm, client: object) -> None:
    """HGCMSvcGetBuf: the pointer must hold at least one byte."""
    if not len(parm.buffer):
        raise RtError(FAULT, "empty buffer")


def _string(parm: SvcParm, client: object) -> bytes:
    """HGCMSvcGetCStr: a non-empty pointer holding a terminated UTF-8 string; the string
    without terminator."""
    _non_empty(parm, client)
    try:
        return c_string(parm.buffer)
    except RtError as err:
        raise RtError(FAULT, f"string: {err}") from None


def _cstr(name: str) -> Parm:
    return Parm(name, (SvcParmType.PTR,), SHOW_STRING, _string)


def _buffer(name: str) -> Parm:
    return Parm(name, (SvcParmType.PTR,), SHOW_FIELDS, _non_empty, output=True)


def _f(fn: GuestPropFn, cycles: int, handler: Handler, *parms: Parm, optional: int = 0,
       stamps: bool = False) -> HgcmFunction:
    assert len(parms) - optional <= GUEST_PROP_CPARMS[fn] <= len(parms), fn
    return HgcmFunction(fn, fn.name, parms, Style.OLD, cycles, handler, optional=optional,
                        prepare=GuestPropState.take_timestamp if stamps else None)


_SIZE = untyped("size", SHOW_RESULT, output=True)

# Cost model (virtual cycles per call, 1 cycle = 1 ns; the device adds its per-byte cost for
# buffer parameters).  Relative weights, not measurements: 800 for a lookup (GET_PROP,
# GET_NOTIFICATION's queue search), 1000 for a change (it also wakes waiters), 2000 for
# ENUM_PROPS (every property is matched against the patterns).
FUNCTIONS = function_table((
    _f(GuestPropFn.GET_PROP, 800, handlers.get_prop,
       _cstr("name"), _buffer("buffer"), untyped("timestamp", SHOW_RESULT, output=True), _SIZE),
    _f(GuestPropFn.SET_PROP, 1000, handlers.set_prop,
       _cstr("name"), _cstr("value"), _cstr("flags"), optional=1, stamps=True),
    _f(GuestPropFn.SET_PROP_VALUE, 1000, handlers.set_prop,
       _cstr("name"), _cstr("value"), _cstr("flags"), optional=1, stamps=True),
    _f(GuestPropFn.DEL_PROP, 1000, handlers.del_prop, _cstr("name")),
    _f(GuestPropFn.ENUM_PROPS, 2000, handlers.enum_props, _cstr("patterns"), _buffer("strings"), _SIZE),
    _f(GuestPropFn.GET_NOTIFICATION, 800, handlers.get_notification,
       _cstr("patterns"), u64("timestamp", SHOW_VALUE, output=True), _buffer("buffer"), _SIZE),
))

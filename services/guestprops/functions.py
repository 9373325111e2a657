"""One typed record per guest function: number, parameter signature, cost, handler.

Validation is generic over the signature and follows the service's check order
(HostServices/GuestProperties/VBoxGuestPropSvc.cpp: getProperty, setProperty, delProperty,
enumProps, getNotification): the parameter count, then each checked parameter in order.
Every one of these faults is VERR_INVALID_PARAMETER, a bad string included, because each
handler folds its HGCMSvcGet* calls into one condition.  Output-only values (timestamps
and sizes the service writes) are not checked at all, as there; the service only sets
them.  Functions absent from the table answer VERR_NOT_IMPLEMENTED (Service::call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from runtime.status import RtError, Status
from services.guestprops import handlers
from services.guestprops.abi import GUEST_PROP_CPARMS, GuestPropFn
from services.guestprops.context import CallContext
from services.guestprops.cstring import c_string
from services.hgcm import HgcmCall, SvcParm, SvcParmType, _AsyncMarker

if TYPE_CHECKING:
    from services.guestprops.service import GuestPropService


class Parm(Enum):
    """Accepted shape of one parameter."""

    CSTR = "cstr"        # HGCMSvcGetCStr: non-empty pointer holding a terminated UTF-8 string
    BUF = "buf"          # HGCMSvcGetBuf: non-empty pointer (the service writes results into it)
    U64 = "u64"          # HGCMSvcGetU64: a 64-bit value (GET_NOTIFICATION's timestamp, in and out)
    OUT_U32 = "out_u32"  # a size the service writes (not checked)
    OUT_U64 = "out_u64"  # a timestamp the service writes (not checked)

    @property
    def is_output(self) -> bool:
        """The service writes the parameter."""
        return self is not Parm.CSTR


#: The one status of every count, type and string fault.
FAULT = Status.VERR_INVALID_PARAMETER


Handler = Callable[[CallContext], "int | _AsyncMarker"]


@dataclass(frozen=True)
class GuestPropFunction:
    """A guest function.  ``optional``: how many trailing parameters may be left out
    (SET_PROP and SET_PROP_VALUE take 2 or 3); ``stamps``: the handler takes a timestamp
    before validating, so a refused call still advances the timestamp source
    (setProperty); ``cycles``: the virtual cost of one call before per-byte costs."""

    fn: GuestPropFn
    parms: tuple[Parm, ...]
    #: Parameter names (GuestPropMsg* field names), for traces.
    names: tuple[str, ...]
    cycles: int
    handler: Handler
    optional: int = 0
    stamps: bool = False

    @property
    def name(self) -> str:
        """GUEST_PROP_FN_* name."""
        return f"GUEST_PROP_FN_{self.fn.name}"

    def validate(self, params: list[SvcParm]) -> dict[int, bytes]:
        """Check count, types and strings; the strings by index.  RtError(FAULT) on the
        first fault."""
        if not len(self.parms) - self.optional <= len(params) <= len(self.parms):
            raise RtError(FAULT, "parameter count")
        strings: dict[int, bytes] = {}
        for index, (kind, parm) in enumerate(zip(self.parms, params)):
            if kind is Parm.U64:
                if parm.type is not SvcParmType.U64:
                    raise RtError(FAULT, f"parameter {index} type")
            elif kind in (Parm.CSTR, Parm.BUF):
                if parm.type is not SvcParmType.PTR or not len(parm.buffer):
                    raise RtError(FAULT, f"parameter {index} not a non-empty pointer")
                if kind is Parm.CSTR:
                    try:
                        strings[index] = c_string(parm.buffer)
                    except RtError as err:
                        raise RtError(FAULT, f"parameter {index}: {err}") from None
        return strings

    def run(self, service: GuestPropService, call: HgcmCall) -> int | _AsyncMarker:
        """Validate and handle ``call``; RtError carries a refusal's status."""
        stamp = service.timestamps.take() if self.stamps else 0
        strings = self.validate(call.params)
        return self.handler(CallContext(service, call, strings, stamp))


def _f(fn: GuestPropFn, cycles: int, handler: Handler, *parms: tuple[str, Parm], optional: int = 0,
       stamps: bool = False) -> GuestPropFunction:
    assert len(parms) - optional <= GUEST_PROP_CPARMS[fn] <= len(parms), fn
    assert cycles > 0, fn
    return GuestPropFunction(fn, tuple(kind for _, kind in parms), tuple(name for name, _ in parms), cycles,
                             handler, optional, stamps)


CSTR, BUF, U64, OUT_U32, OUT_U64 = Parm.CSTR, Parm.BUF, Parm.U64, Parm.OUT_U32, Parm.OUT_U64

# Cost model (virtual cycles per call, 1 cycle = 1 ns; the device adds its per-byte cost for
# buffer parameters).  Relative weights, not measurements: 800 for a lookup (GET_PROP,
# GET_NOTIFICATION's queue search), 1000 for a change (it also wakes waiters), 2000 for
# ENUM_PROPS (every property is matched against the patterns).
FUNCTIONS: dict[int, GuestPropFunction] = {f.fn: f for f in (
    _f(GuestPropFn.GET_PROP, 800, handlers.get_prop,
       ("name", CSTR), ("buffer", BUF), ("timestamp", OUT_U64), ("size", OUT_U32)),
    _f(GuestPropFn.SET_PROP, 1000, handlers.set_prop,
       ("name", CSTR), ("value", CSTR), ("flags", CSTR), optional=1, stamps=True),
    _f(GuestPropFn.SET_PROP_VALUE, 1000, handlers.set_prop,
       ("name", CSTR), ("value", CSTR), ("flags", CSTR), optional=1, stamps=True),
    _f(GuestPropFn.DEL_PROP, 1000, handlers.del_prop, ("name", CSTR)),
    _f(GuestPropFn.ENUM_PROPS, 2000, handlers.enum_props, ("patterns", CSTR), ("strings", BUF), ("size", OUT_U32)),
    _f(GuestPropFn.GET_NOTIFICATION, 800, handlers.get_notification,
       ("patterns", CSTR), ("timestamp", U64), ("buffer", BUF), ("size", OUT_U32)),
)}

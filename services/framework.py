"""A host service built from one function table: signature, validation, cost, handler.

A service declares each guest function once, as an ``HgcmFunction``: number, name,
parameter signature (``Parm``: name, accepted host types, an optional value check made
right after the type check, whether the call returns a result in it, how traces show
it), validation style, cost in virtual cycles, handler and optional direct-buffer
declaration.  ``TableService`` derives from that table what the device asks
(``function_names``, ``function_cycles``, ``direct_buffers``) and runs every call through
one boundary:

    client known?  -> VERR_INVALID_CLIENT_ID
    function known? -> VERR_NOT_IMPLEMENTED
    prepare (rows that declare it): its result becomes CallContext.prepared
    validate: count (by style), then per parameter in order: type (by style), value check
    handler(CallContext) -> status or ASYNC
    RtError raised anywhere in validation or handler -> its status

Checking parameter by parameter (type, then that parameter's value check, then the next
parameter) is how VirtualBox's services check (e.g. SharedFolders' svcCall), so a faulty
call gets the status of the first check it fails.  Every failure made at the boundary is
traced as ``hgcm_service_error`` with its reason (the RtError's message), so no reason is
lost.  ``decode_call`` turns a traced call's parameters into named values from the same
table.

To adopt it: subclass ``TableService``, set ``name`` and ``functions`` (a mapping number ->
``HgcmFunction``, e.g. built with ``function_table``), give the instance a ``state`` (what
handlers work on) and implement ``client_of``.  Handlers take a ``CallContext`` and return
a status or ``ASYNC``; they raise ``RtError`` for a failure with a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Generic, TypeVar

from hgcmlab.runtime.status import RtError, Status, status_name
from hgcmlab.services.hgcm import DirectBuffer, HgcmCall, HgcmService, SvcParm, SvcParmType, _AsyncMarker

#: The event a failing call leaves in the trace (declared in runtime/trace_catalog.py).
SERVICE_ERROR_KIND = "hgcm_service_error"

StateT = TypeVar("StateT")
ClientT = TypeVar("ClientT")

#: A value check: ``check(parameter, client)`` raises RtError for a bad value and returns
#: what it decoded (kept by parameter index in ``CallContext.decoded``; None for nothing).
Check = Callable[[SvcParm, Any], object]


class Style(Enum):
    """How count and type faults are reported: (count status, type status)."""

    #: Every fault is VERR_INVALID_PARAMETER.
    OLD = (Status.VERR_INVALID_PARAMETER, Status.VERR_INVALID_PARAMETER)
    #: VERR_WRONG_PARAMETER_COUNT / VERR_WRONG_PARAMETER_TYPE.
    NEW = (Status.VERR_WRONG_PARAMETER_COUNT, Status.VERR_WRONG_PARAMETER_TYPE)
    #: The parameter count is not checked at all; types as OLD.
    UNCHECKED = (None, Status.VERR_INVALID_PARAMETER)


@dataclass(frozen=True)
class Parm:
    """One parameter of a signature.

    ``accepts``: host types allowed (empty: not type checked).  ``check``: a value check
    made right after the type check.  ``output``: the call returns a result in it.
    ``show``: how the service's trace decoder renders it (the service's vocabulary).
    """

    name: str
    accepts: tuple[SvcParmType, ...]
    show: str
    check: Check | None = None
    output: bool = False


def u32(name: str, show: str = "u32", *, output: bool = False, check: Check | None = None) -> Parm:
    """A 32-bit value parameter."""
    return Parm(name, (SvcParmType.U32,), show, check, output)


def u64(name: str, show: str = "u64", *, output: bool = False, check: Check | None = None) -> Parm:
    """A 64-bit value parameter."""
    return Parm(name, (SvcParmType.U64,), show, check, output)


def ptr(name: str, show: str = "buf", *, output: bool = False, check: Check | None = None) -> Parm:
    """A pointer parameter (a bounce buffer)."""
    return Parm(name, (SvcParmType.PTR,), show, check, output)


def buf(name: str, show: str = "buf", *, output: bool = False, check: Check | None = None) -> Parm:
    """A pointer or page-list parameter (bulk data)."""
    return Parm(name, (SvcParmType.PTR, SvcParmType.PAGES), show, check, output)


def untyped(name: str, show: str = "u32", *, output: bool = False) -> Parm:
    """A parameter whose type the service never checks (e.g. one it only writes)."""
    return Parm(name, (), show, output=output)


def require(ok: Callable[[SvcParm], bool], status: int, what: str) -> Check:
    """A value check: ``ok(parameter)`` or the call fails with ``status`` (reason ``what``)."""
    def check(parm: SvcParm, client: object) -> None:
        if not ok(parm):
            raise RtError(status, what)
    return check


@dataclass(eq=False)
class CallContext(Generic[StateT, ClientT]):
    """What a handler gets: the service state, the calling client, the call, what the
    value checks decoded by parameter index, and what the row's ``prepare`` returned."""

    state: StateT
    client: ClientT
    call: HgcmCall
    decoded: dict[int, Any] = field(default_factory=dict)
    prepared: Any = None

    @property
    def params(self) -> list[SvcParm]:
        """The call's parameters (handlers update values and buffers in place)."""
        return self.call.params


Handler = Callable[[CallContext[Any, Any]], "int | _AsyncMarker"]
#: Work a function does on the service state before its parameters are checked, so that
#: even a refused call has done it (VBoxGuestPropSvc's setProperty takes its timestamp first).
Prepare = Callable[[Any], object]


@dataclass(frozen=True)
class HgcmFunction:
    """One guest function: number, name, signature, validation style, cost, handler.

    ``cycles`` is what one call costs in virtual cycles before the device's per-byte
    cost; ``direct`` declares a buffer the device may pass as a view of guest memory;
    ``optional`` is how many trailing parameters a caller may leave out (the count check
    accepts ``len(parms) - optional`` to ``len(parms)``); ``prepare`` runs on the state
    before validation (``Prepare``).
    """

    number: int
    name: str
    parms: tuple[Parm, ...]
    style: Style
    cycles: int
    handler: Handler
    direct: DirectBuffer | None = None
    optional: int = 0
    prepare: Prepare | None = None

    def validate(self, params: Sequence[SvcParm], client: object) -> dict[int, Any]:
        """Check count, then each parameter's type and value in order; return what the
        value checks decoded by index.  RtError with the style's status (or the check's)
        on the first fault."""
        # ``_value_``: Enum's ``value`` is a descriptor call, and this runs on every call.
        count_status, type_status = self.style._value_
        if count_status is not None and not len(self.parms) - self.optional <= len(params) <= len(self.parms):
            raise RtError(count_status, "parameter count")
        decoded: dict[int, Any] = {}
        for index, (spec, parm) in enumerate(zip(self.parms, params)):
            if spec.accepts and parm.type not in spec.accepts:
                raise RtError(type_status, f"parameter {index} ({spec.name}) type")
            if spec.check is not None:
                decoded[index] = spec.check(parm, client)
        return decoded


def function_table(functions: Iterable[HgcmFunction]) -> dict[int, HgcmFunction]:
    """The table by number (ValueError for a number declared twice or a cost below one)."""
    table: dict[int, HgcmFunction] = {}
    for function in functions:
        if function.number in table:
            raise ValueError(f"function {function.number} declared twice")
        if function.cycles <= 0:
            raise ValueError(f"function {function.name} costs no cycles")
        table[function.number] = function
    return table


class TableService(HgcmService):
    """A service whose guest functions are the rows of ``functions``.

    Subclasses set ``name`` and ``functions`` (class attributes; ``function_names`` and
    ``direct_buffers`` are derived from them), give instances a ``state`` and implement
    ``client_of``.  ``call`` is the one validate -> handler -> status boundary.
    """

    functions: Mapping[int, HgcmFunction] = {}
    #: What handlers work on (``CallContext.state``).
    state: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "functions" not in vars(cls):
            return
        cls.function_names = {number: spec.name for number, spec in cls.functions.items()}
        cls.direct_buffers = {number: spec.direct for number, spec in cls.functions.items()
                              if spec.direct is not None}

    def function_cycles(self, function: int) -> int | None:
        """The cost declared in the function's row (None for an unknown function)."""
        spec = self.functions.get(function)
        return spec.cycles if spec is not None else None

    def client_of(self, client_id: int) -> object | None:
        """The per-client data handlers see (None: not connected)."""
        raise NotImplementedError

    def call(self, call: HgcmCall) -> int | _AsyncMarker:
        """Validate ``call`` against its row and run the handler; its status or ASYNC."""
        client = self.client_of(call.client_id)
        if client is None:
            return self._failed(call, Status.VERR_INVALID_CLIENT_ID, "client not connected")
        spec = self.functions.get(call.function)
        if spec is None:
            return self._failed(call, Status.VERR_NOT_IMPLEMENTED, "no such function")
        try:
            prepared = spec.prepare(self.state) if spec.prepare is not None else None
            decoded = spec.validate(call.params, client)
            return spec.handler(CallContext(self.state, client, call, decoded, prepared))
        except RtError as err:
            return self._failed(call, err.status, err.reason)

    def _failed(self, call: HgcmCall, status: int, reason: str) -> int:
        """The status boundary: trace why the call failed, return its status."""
        if self.tracer.wants(SERVICE_ERROR_KIND):
            self.tracer.emit(SERVICE_ERROR_KIND, service=self.name, client=call.client_id,
                             function=call.function, function_name=self.function_name(call.function),
                             status=status, status_name=status_name(status), reason=reason)
        return status


@dataclass
class DecodedCall:
    """A call's parameters as (name, text) pairs: what went in and what came back."""

    function: str
    inputs: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)

    def format_inputs(self) -> str:
        """``FUNCTION(name=value, ...)``."""
        return f"{self.function}({', '.join(f'{n}={v}' for n, v in self.inputs)})"

    def format_outputs(self) -> str:
        """``name=value, ...`` of the results (empty when there are none)."""
        return ", ".join(f"{n}={v}" for n, v in self.outputs)


def param_data(param: Mapping[str, object]) -> bytes | None:
    """The bytes a traced parameter record carries (its ``data`` hex), or None."""
    text = param.get("data")
    if not isinstance(text, str):
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


#: Renders one traced parameter: ``render(spec, param, output)`` -> text, or None to leave
#: it out.  ``spec`` is None for a parameter beyond the signature; ``param`` is the traced
#: dict (``{"type", "value"}`` or ``{"type", "guest", "dir", "size", "data"}``).
Render = Callable[[Parm | None, dict[str, Any], bool], "str | None"]


def decode_call(functions: Mapping[int, HgcmFunction], function: int, label: str,
                params: Sequence[dict[str, Any]] | None, render: Render, *,
                written_back: Sequence[dict[str, Any]] | None = None) -> DecodedCall:
    """Name a traced call's parameters from its row in ``functions``: every parameter of
    ``params`` (the ``hgcm_call`` event's) rendered as input, and every ``output``
    parameter of ``written_back`` (its ``hgcm_complete``'s) as a result.  Parameters beyond
    the signature (or of an unknown function) are named ``p<index>``."""
    row = functions.get(function)
    signature = row.parms if row is not None else ()
    decoded = DecodedCall(label)
    for index, param in enumerate(params or ()):
        spec = signature[index] if index < len(signature) else None
        text = render(spec, param, False)
        if text is not None:
            decoded.inputs.append((spec.name if spec is not None else f"p{index}", text))
    for index, param in enumerate(written_back or ()):
        spec = signature[index] if index < len(signature) else None
        if spec is None or not spec.output:
            continue
        text = render(spec, param, True)
        if text is not None:
            decoded.outputs.append((spec.name, text))
    return decoded


class CallDecoder:
    """Decodes one service's traced calls for ``hgcmlab trace`` and the pytest kit.

    A service package provides a subclass; ``services/decoders.py`` finds it by the traced
    ``service`` name.  One instance serves one trace stream, in order, so it may remember
    what earlier calls switched (Shared Folders' UTF-8 clients).  ``call`` is an
    ``hgcm_call`` event's fields (``client``, ``function``, ``params``), ``written_back``
    the ``params`` of its ``hgcm_complete``.
    """

    #: The service name traced in ``hgcm_call`` events (the registry's key).
    service: ClassVar[str]

    def completed(self, call: Mapping[str, Any], result: int) -> None:
        """A call of this service completed with ``result`` (nothing to remember by default)."""

    def decode(self, call: Mapping[str, Any], written_back: Sequence[dict[str, Any]] | None = None) -> DecodedCall:
        """The call's parameters by name, and with ``written_back`` its results."""
        raise NotImplementedError

    def bytes_moved(self, call: Mapping[str, Any], written_back: Sequence[dict[str, Any]] | None) -> tuple[int, int]:
        """(bytes written to the host, bytes read from it) by the call; (0, 0) by default."""
        return 0, 0

"""The trace event catalog: every event kind the project emits, its fields and their types.

This is the one declaration of what a trace holds.  Emitters name kinds from it (the
tracer checks delivered kinds against it, and in strict mode every field too: see
``check_event``), readers (``hgcmlab trace``, the pytest kit, qtest) take kind names,
field order and golden defaults from it, and docs/tracing.md's event reference is
generated from it (``reference_table``; tests/docs/test_tracing_doc.py fails on drift).

It lives in ``runtime`` (stdlib only) because every layer emits: the machine core, the
VMMDev device and host services alike.  Values are JSON values only: ``int`` (never
``bool``), ``str``, ``bool``, ``list``, ``dict`` or ``None`` where a field says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class EventError(ValueError):
    """An event the catalog does not declare, or one whose fields do not match it."""


#: Field type names and the Python types a value of each may have.
_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "str": (str,), "bool": (bool,), "list": (list, tuple), "dict": (dict,),
}


@dataclass(frozen=True)
class EventField:
    """One field of an event kind.

    ``type`` is one of int, str, bool, list, dict, optionally ``|null``.  ``optional``:
    the field is present only in some events of the kind.  ``volatile``: it moves with the
    cost model or the code layout of guest programs, so golden traces leave it out.
    """

    name: str
    type: str
    doc: str
    optional: bool = False
    volatile: bool = False

    def accepts(self, value: object) -> bool:
        """Whether ``value`` has this field's type."""
        base, _, null = self.type.partition("|")
        if value is None:
            return null == "null"
        if isinstance(value, bool) and base != "bool":
            return False
        return isinstance(value, _TYPES[base])


@dataclass(frozen=True)
class EventKind:
    """One event kind: name, who emits it, what it means, its fields in order.

    ``golden``: kept by the pytest kit's golden traces by default (what the guest asked the
    host and got back).  ``extra``: further fields are allowed (their names are data, e.g.
    a recording's operation fields); only the declared ones are then checked.
    """

    name: str
    source: str
    doc: str
    fields: tuple[EventField, ...]
    golden: bool = False
    extra: bool = False

    def field(self, name: str) -> EventField | None:
        """The declared field ``name`` (None when the kind has none such)."""
        return next((f for f in self.fields if f.name == name), None)


def _k(name: str, source: str, doc: str, *fields: EventField, golden: bool = False,
       extra: bool = False) -> EventKind:
    return EventKind(name, source, doc, fields, golden, extra)


def _f(name: str, type_: str, doc: str, *, optional: bool = False, volatile: bool = False) -> EventField:
    assert type_.partition("|")[0] in _TYPES, type_
    return EventField(name, type_, doc, optional, volatile)


#: The ``source`` of kinds host services emit (a replay re-emits them from the recording).
SERVICE_SOURCE = "HGCM service"

_ADDRESS = _f("address", "int", "guest physical address of the request", volatile=True)
_STATUS = _f("status", "int", "VBox status code")
_STATUS_NAME = _f("status_name", "str", "its name (VERR_...)")
_CLIENT = _f("client", "int", "HGCM client id")
_SERVICE = _f("service", "str", "HGCM service name")
_FUNCTION = _f("function", "int", "HGCM function number")
_FUNCTION_NAME = _f("function_name", "str", "its name as the service declares it")

#: Every event kind, in the order the reference shows them.
EVENT_KINDS: tuple[EventKind, ...] = (
    _k("port_io", "port bus", "each claimed IN/OUT",
       _f("direction", "str", "`in`/`out`"), _f("port", "int", "port number"), _f("size", "int", "1/2/4"),
       _f("value", "int", "value read or written"), _f("device", "str", "claiming device"),
       _f("range", "str", "its port range"), _f("offset", "int", "offset in the range")),
    _k("port_unclaimed", "port bus", "unclaimed port, or a size the owner refused",
       _f("direction", "str", "`in`/`out`"), _f("port", "int", "port number"), _f("size", "int", "1/2/4"),
       _f("value", "int", "value written", optional=True),
       _f("owner", "str|null", "device owning the port if the size was refused, else null")),
    _k("vmmdev_request", "VMMDev", "each processed request",
       _ADDRESS, _f("type", "str", "RequestType name"), _f("size", "int", "declared request size"),
       _f("rc", "int", "status written to the header"), _f("rc_name", "str", "its name"),
       _f("header_only", "bool", "only the header was answered", optional=True),
       _f("reason", "str", "why only the header", optional=True)),
    _k("vmmdev_request_dropped", "VMMDev", "request ignored",
       _ADDRESS, _f("type", "str", "RequestType name, when the header was readable", optional=True),
       _f("size", "int", "declared size, when the header was readable", optional=True),
       _f("reason", "str", "why it was ignored")),
    _k("hgcm_connect", "VMMDev", "HGCMConnect processed",
       _ADDRESS, _SERVICE, _STATUS, _STATUS_NAME, _CLIENT, golden=True),
    _k("hgcm_disconnect", "VMMDev", "HGCMDisconnect processed",
       _ADDRESS, _CLIENT, _STATUS, _STATUS_NAME, golden=True),
    _k("hgcm_call", "VMMDev", "call accepted",
       _ADDRESS, _CLIENT, _SERVICE, _FUNCTION, _FUNCTION_NAME, _f("parms", "int", "parameter count"),
       _f("bytes", "int", "guest buffer bytes"), _f("type", "str", "`HGCMCall32`/`HGCMCall64`"),
       _f("params", "list", "decoded parameters as sent to the host (see below)"), golden=True),
    _k("hgcm_complete", "VMMDev", "command done",
       _ADDRESS, _f("command", "str", "`connect`/`disconnect`/`call`"), _f("cancelled", "bool", "cancelled"),
       _f("result", "int", "status of the command"), _f("result_name", "str", "its name"),
       _f("latency", "int", "cycles from submission", volatile=True),
       _f("client", "int", "calls: HGCM client id", optional=True),
       _f("function", "int", "calls: function number", optional=True),
       _f("function_name", "str", "calls: function name", optional=True),
       _f("service", "str", "calls: service name", optional=True),
       _f("params", "list", "calls: parameters as written back", optional=True), golden=True),
    _k("hgcm_rejected", "VMMDev", "synchronous failure of an HGCM request",
       _ADDRESS, _f("type", "str", "RequestType name"), _STATUS, _STATUS_NAME, _f("reason", "str", "why"),
       golden=True),
    _k("hgcm_cancel", "VMMDev", "HGCMCancel(2) of a pending command",
       _ADDRESS, _f("command", "str", "kind of the cancelled command"),
       _f("again", "bool", "it was already cancelled"), golden=True),
    _k("hgcm_orphaned", "VMMDev", "a pending call outlived its client's disconnect (cancelled, no write-back)",
       _ADDRESS, _CLIENT),
    _k("hgcm_service_error", SERVICE_SOURCE, "a call failed at the service's status boundary",
       _SERVICE, _CLIENT, _FUNCTION, _FUNCTION_NAME, _STATUS, _STATUS_NAME,
       _f("reason", "str", "what failed (the RtError's message)")),
    _k("vmmdev_event", "VMMDev", "event bits raised",
       _f("events", "int", "bits raised"), _f("pending", "int", "pending bits afterwards")),
    _k("vmmdev_ack", "VMMDev", "AcknowledgeEvents", _f("events", "int", "bits returned")),
    _k("irq_line", "machine", "an IRQ line changed level", _f("irq", "int", "line"), _f("asserted", "bool", "level")),
    _k("interrupt_delivered", "machine", "the guest took an interrupt",
       _f("irq", "int", "line"), _f("vector", "int", "IDT vector"), _f("return_pc", "int", "interrupted pc")),
    _k("cpu_halt", "machine", "`hlt`", _f("interrupts_enabled", "bool", "IF was set")),
    _k("event", "machine", "a scheduled device event fired",
       _f("name", "str", "event name"), _f("scheduled_cycle", "int", "cycle it was due", volatile=True)),
    _k("charge", "clock", "a declared cost", _f("cycles", "int", "cycles charged"), _f("reason", "str", "what cost")),
    _k("guest_log", "machine", "backdoor log line", _f("line", "str", "the text"), golden=True),
    _k("pci_bar_moved", "machine", "the guest moved a BAR",
       _f("device", "str", "PCI device"), _f("bar", "int", "BAR index"), _f("base", "int", "new base")),
    _k("pci_bar_conflict", "machine",
       "guest moved an I/O BAR onto ports another device holds; the device decodes no ports until the BAR "
       "moves to free ones",
       _f("device", "str", "PCI device"), _f("bar", "int", "BAR index"), _f("base", "int", "refused base"),
       _f("reason", "str", "the conflict")),
    _k("guest_fault", "machine", "guest fault or exhausted budget (not an interruption), right before `run_end`",
       _f("description", "str", "what happened"), _f("instruction", "str|null", "faulting instruction"),
       _f("symbol", "str|null", "symbol at pc"), _f("source", "str|null", "file:line: text for assembled programs")),
    _k("run_end", "machine", "end of every `run()`",
       _f("end", "str", "`exit`/`halt`/`budget`/`fault`/`paused`/`interrupted`/`diverged`"),
       _f("exit_code", "int", "guest exit code"),
       _f("instructions", "int", "instructions executed (also the stamp)", volatile=True), golden=True),
    _k("hgcm_recording", "`run --record` / kit `record=True`", "header of a recording, once before the first run",
       _f("version", "int", "recording format version"), _f("program", "str", "program path or image name"),
       _f("image_sha256", "str", "digest of the loaded image"), _f("mode", "int", "32/64"),
       _f("ram", "int", "RAM size"), _f("arguments", "list", "guest arguments"),
       _f("services", "list", "service tables"), _f("settings", "dict", "run settings")),
    _k("hgcm_record", "recorder or replay", "one host-service operation (fields depend on `op`, see below)",
       _f("index", "int", "record number"), _f("op", "str", "`connect`/`disconnect`/`call`/`cancel`/`host`"),
       _SERVICE, _CLIENT, _f("at", "int", "virtual cycle of arrival"),
       _f("done", "list", "calls the service completed during the operation"), extra=True),
    _k("block", "opt-in block trace", "an executed translation block",
       _f("address", "int", "block address"), _f("size", "int", "bytes"), _f("count", "int", "instructions"),
       _f("disasm", "list", "`[[address, \"text\"], ...]`, only the first time that exact block runs",
          optional=True)),
    _k("instruction", "opt-in instruction trace", "one executed instruction (the stamp gives cycle, count, pc)",
       _f("text", "str", "capstone disassembly")),
    _k("memory", "opt-in memory trace", "one guest memory access",
       _f("access", "str", "`read`/`write`"), _f("address", "int", "guest address"), _f("size", "int", "bytes"),
       _f("value", "int", "written value; 0 for reads")),
    _k("module", "opt-in block trace", "the loaded image (for coverage tools)",
       _f("name", "str", "image name"), _f("base", "int", "first address"), _f("end", "int", "end address"),
       _f("entry", "int", "entry point")),
)

#: Kind name -> declaration.
CATALOG: Mapping[str, EventKind] = {kind.name: kind for kind in EVENT_KINDS}
assert len(CATALOG) == len(EVENT_KINDS), "a kind is declared twice"

#: The kinds host services emit.
SERVICE_KINDS: frozenset[str] = frozenset(kind.name for kind in EVENT_KINDS if kind.source == SERVICE_SOURCE)
#: The kinds golden traces keep by default.
GOLDEN_KINDS: tuple[str, ...] = tuple(kind.name for kind in EVENT_KINDS if kind.golden)
#: Fields golden traces leave out by default (volatile in some kind).
VOLATILE_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(
    f.name for kind in EVENT_KINDS for f in kind.fields if f.volatile))


def check_kind(kind: str) -> EventKind:
    """The declaration of ``kind``; EventError when the catalog has none."""
    declared = CATALOG.get(kind)
    if declared is None:
        raise EventError(f"trace event kind {kind!r} is not declared in runtime/trace_catalog.py")
    return declared


def check_event(kind: str, fields: Mapping[str, Any]) -> None:
    """Raise EventError unless ``fields`` match the declaration of ``kind``: no undeclared
    field (unless the kind allows extra ones), every required field present, every value of
    its declared type."""
    declared = check_kind(kind)
    for name, value in fields.items():
        spec = declared.field(name)
        if spec is None:
            if declared.extra:
                continue
            raise EventError(f"trace event {kind!r} has undeclared field {name!r}")
        if not spec.accepts(value):
            raise EventError(f"trace event {kind!r} field {name!r}: {type(value).__name__} is not {spec.type}")
    missing = [f.name for f in declared.fields if not f.optional and f.name not in fields]
    if missing:
        raise EventError(f"trace event {kind!r} lacks field(s) {', '.join(missing)}")


def reference_table() -> str:
    """docs/tracing.md's event reference, as a Markdown table (generated; do not edit the doc's copy)."""
    lines = ["| kind | emitted by | fields |", "|---|---|---|"]
    for kind in EVENT_KINDS:
        fields = ", ".join(_field_text(f) for f in kind.fields)
        if kind.extra:
            fields += "; further fields (see below)"
        lines.append(f"| `{kind.name}` | {kind.source}, {kind.doc} | {fields} |")
    return "\n".join(lines)


def _field_text(spec: EventField) -> str:
    marks = ", optional" if spec.optional else ""
    kind = spec.type.replace("|", " or ")  # a bare | would split the Markdown cell
    return f"`{spec.name}` ({kind}{marks}): {spec.doc}"

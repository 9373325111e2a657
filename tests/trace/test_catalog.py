"""The trace event catalog (runtime/trace_catalog.py) is the one declaration of events:
emitters are checked against it, readers and docs are derived from it."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from hgcmlab.machine.cli import main as cli_main
from hgcmlab.machine.pytest_plugin import DEFAULT_GOLDEN_IGNORE, DEFAULT_GOLDEN_KINDS
from hgcmlab.machine.trace import catalog_doc
from hgcmlab.machine.tracing import ListSink, Tracer
from hgcmlab.runtime.trace_catalog import CATALOG, EventError, check_event

ROOT = Path(__file__).resolve().parents[2]
#: Where events are emitted and read (the catalog itself and tests excluded).
SOURCES = [path for folder in ("machine", "devices", "services", "runtime") for path in (ROOT / folder).rglob("*.py")
           if path.name != "trace_catalog.py"]
#: A kind named as a literal where an event is emitted, filtered or matched.
_KIND_USES = re.compile(r"""(?:emit|_trace|_wants|wants)\(\s*"([a-z_]+)"|(?<!command\.)kind\s*[!=]=\s*"([a-z_]+)"|_KIND\s*=\s*"([a-z_]+)\"""")


def _strict() -> tuple[Tracer, ListSink]:
    tracer = Tracer(strict=True)
    sink = ListSink()
    tracer.add_sink(sink, kinds={"guest_log"})
    return tracer, sink


def test_strict_emit_refuses_unknown_kinds_and_fields_even_when_nobody_listens() -> None:
    tracer, sink = _strict()
    with pytest.raises(EventError, match="'guest_lg' is not declared"):
        tracer.emit("guest_lg", line="x")
    with pytest.raises(EventError, match="undeclared field 'text'"):
        tracer.emit("guest_log", line="x", text="y")
    with pytest.raises(EventError, match="lacks field"):
        tracer.emit("cpu_halt")  # nobody listens to cpu_halt: checked all the same
    with pytest.raises(EventError, match="bool is not int"):
        tracer.emit("irq_line", irq=True, asserted=True)
    with pytest.raises(EventError, match="NoneType is not str"):
        tracer.emit("guest_log", line=None)
    tracer.emit("guest_log", line="ok")
    tracer.emit("guest_fault", description="d", instruction=None, symbol=None, source=None)
    assert [e.fields for e in sink.events] == [{"line": "ok"}]


def test_production_tracer_refuses_a_delivered_unknown_kind_and_ignores_unheard_ones() -> None:
    tracer = Tracer(strict=False)
    tracer.emit("no_such_kind", x=1)  # no sink: the one wanted-set check, nothing else
    sink = ListSink()
    tracer.add_sink(sink)
    with pytest.raises(EventError, match="not declared"):
        tracer.emit("no_such_kind", x=1)
    tracer.emit("guest_log", line="x", extra=1)  # fields are checked in strict mode only
    assert len(sink.events) == 1


def test_optional_and_extra_fields() -> None:
    check_event("vmmdev_request_dropped", {"address": 1, "reason": "r"})
    check_event("hgcm_record", {"index": 0, "op": "call", "service": "s", "client": 1, "at": 0, "done": [],
                                "function": 3, "params": []})
    with pytest.raises(EventError, match="lacks field"):
        check_event("hgcm_record", {"index": 0, "op": "call"})


def test_every_kind_named_in_the_code_is_declared_and_every_declared_kind_is_emitted() -> None:
    named: dict[str, set[str]] = {}
    for path in SOURCES:
        for match in _KIND_USES.finditer(path.read_text(encoding="utf-8")):
            kind = next(group for group in match.groups() if group)
            named.setdefault(kind, set()).add(str(path.relative_to(ROOT)))
    undeclared = {kind: sorted(files) for kind, files in named.items() if kind not in CATALOG}
    assert undeclared == {}
    assert sorted(set(CATALOG) - set(named)) == [], "declared kinds nothing emits"


def test_golden_defaults_are_the_catalogs() -> None:
    assert set(DEFAULT_GOLDEN_KINDS) == {k for k, d in CATALOG.items() if d.golden}
    assert "hgcm_call" in DEFAULT_GOLDEN_KINDS and "port_io" not in DEFAULT_GOLDEN_KINDS
    assert set(DEFAULT_GOLDEN_IGNORE) == {"latency", "address", "instructions", "scheduled_cycle"}


def test_docs_reference_is_generated_from_the_catalog() -> None:
    """Fails when docs/tracing.md's event table drifted (run python -m hgcmlab.machine.trace.catalog_doc)."""
    text = catalog_doc.DOC.read_text(encoding="utf-8")
    assert catalog_doc.render(text) == text
    for kind in CATALOG:
        assert f"| `{kind}` |" in text


def test_trace_commands_refuse_unknown_kinds_and_fields(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"kind":"guest_log","cycle":1,"instructions":1,"pc":0,"line":"x"}\n')
    for words in (["show", str(trace), "--kind", "guest_log,hgcm_cal"],
                  ["diff", str(trace), str(trace), "--kind", "hgcm_cal"],
                  ["diff", str(trace), str(trace), "--ignore", "latencyy"]):
        out, err = io.StringIO(), io.StringIO()
        assert cli_main(["trace", *words], out, err) == 2
        assert err.getvalue().startswith("hgcmlab: error: ") and err.getvalue().count("\n") == 1
        assert "hgcm_cal" in err.getvalue() or "latencyy" in err.getvalue()
    out = io.StringIO()
    assert cli_main(["trace", "show", str(trace), "--kind", "guest_log"], out, io.StringIO()) == 0
    assert "'x'" in out.getvalue()

"""hgcmlab's pytest plugin: fixtures for guest-level and device-level regression tests.

Installed with the package (entry point ``pytest11``: ``hgcmlab``), so every pytest run in
an environment where hgcmlab is installed has these fixtures; ``-p no:hgcmlab`` turns it off.

Fixtures
    ``hgcm_machine``   factory ``hgcm_machine(mode=64, *, blocks=False, reproducible=True, **vbox_board_kwargs)``:
                       a traced ``VBoxMachine`` (machine/boards.py), closed at teardown; ``hgcm_machine.events(m)`` is its trace.
                       Reproducible by default: shares show no host-dependent times, ids or sizes.
                       ``record=True`` keeps what the host returned (``hgcm_machine.save_recording(m,
                       PATH)`` writes it); ``replay=TRACE`` answers Shared Folders from a recording
                       (``hgcm_machine.replay_cursor(m)``).  See docs/tracing.md, "Record and replay".
    ``hgcm_share``     a fresh temporary directory to share (``machine.add_share("demo", hgcm_share)``).
    ``hgcm_assemble``  ``hgcm_assemble(source_or_path, mode=64, **kw)``; ``hgcm_assemble.bundled("demo.s")``.
    ``hgcm_qtest``     factory ``hgcm_qtest(mode=64, **vbox_board_kwargs)``: a ``hgcmlab.machine.qtest.QTest``.
    ``c_guest``        ``c_guest(source_text_or_path, mode=64, defines=None, flags=(), paging=False)``:
                       a C guest built with the kit (docs/c-guests.md), cached by content, as a
                       loadable ``Image`` (``paging=True``: a higher-half image, load it with
                       ``machine.load(image, paging=True)``); skipped when no C compiler is installed.
    ``assert_trace``   ``assert_trace(machine_or_events, "name", kinds=..., fields=..., stamps=False)``
                       compares with ``golden/<name>.jsonl`` next to the test file.

Options
    ``--update-golden``       (re)write golden files instead of comparing.
    ``--hgcm-last-events=N``  events shown in failure reports (default 20).

When a test that used ``hgcm_machine``/``hgcm_qtest`` fails, the report gains an
"hgcmlab machine" section per machine: the last events, the registers, the disassembly
around pc with the source line.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import unicorn

from hgcmlab.guest_asm.assembler import AssembledProgram, assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.loader import Image
from hgcmlab.machine.machine import Machine
from hgcmlab.machine.qtest import QTest
from hgcmlab.machine.replay import ReplayCursor, ReplayService, replay_front
from hgcmlab.machine.trace.files import TraceWriter
from hgcmlab.machine.trace.record import HEADER_KIND, Recording, RecordingService, header_event_fields, load_recording, record_front
from hgcmlab.machine.trace.blocks import trace_blocks
from hgcmlab.machine.trace.tools import CallTracker, describe
from hgcmlab.machine.tracing import ListSink, TraceEvent
from hgcmlab.runtime.trace_catalog import GOLDEN_KINDS, VOLATILE_FIELDS

#: The kinds a golden trace keeps by default: what the guest asked the host and got back
#: (the catalog's ``golden`` kinds).
DEFAULT_GOLDEN_KINDS = GOLDEN_KINDS
#: Fields left out of goldens by default: they move with the cost model (``latency``) or
#: with the code layout of guest programs and libraries (``address``, ``instructions``):
#: the catalog's ``volatile`` fields.
DEFAULT_GOLDEN_IGNORE = VOLATILE_FIELDS
#: Fields never written to goldens (``params`` is replaced by its decoded text).
_GOLDEN_DROP = frozenset({"params"})

_MACHINES = pytest.StashKey[list[tuple[Machine, "MachineFactory"]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hgcmlab")
    group.addoption("--update-golden", action="store_true", default=False,
                    help="hgcmlab: rewrite golden trace files instead of comparing against them")
    group.addoption("--hgcm-last-events", type=int, default=20, metavar="N",
                    help="hgcmlab: trace events shown when a test using a machine fails (default 20)")


# --- machines ------------------------------------------------------------------------------------


class MachineFactory:
    """``hgcm_machine``: builds traced machines and closes them at teardown."""

    def __init__(self, node: pytest.Item, last_events: int) -> None:
        self._node = node
        self._last = max(1, last_events)
        self._sinks: dict[int, ListSink] = {}
        self._recent: dict[int, deque[TraceEvent]] = {}
        self._results: dict[int, Any] = {}
        self.machines: list[Machine] = []

    def __call__(self, mode: int = 64, *, blocks: bool = False, reproducible: bool = True,
                 record: bool = False, replay: str | Path | Recording | None = None,
                 **kwargs: Any) -> Machine:
        """A ``vbox_board(mode, **kwargs)`` machine whose every event is recorded (HGCM call events carry
        their parameters); ``blocks`` traces executed blocks (call after load).  Machines are
        reproducible unless ``reproducible=False`` (shares then show the host's own times,
        inode numbers, ... as VirtualBox does).

        ``record=True``: the trace keeps what the host services returned (``hgcm_record``
        events, an ``hgcm_recording`` header at the first run); ``save_recording`` writes it.
        ``replay=TRACE`` (a file or a loaded ``Recording``): the machine's Shared Folders are
        answered from that recording, with no share needed; its trace then equals the
        recorded one, and the first divergence ends the run as ``RunEnd.DIVERGED`` with the
        report as ``result.fault.description`` (``replay_cursor`` tells how far it got)."""
        if record and replay is not None:
            raise ValueError("a machine records or replays, not both")
        recording: Recording | None = None
        if replay is not None:
            recording = replay if isinstance(replay, Recording) else load_recording(replay)
            if recording.header["mode"] != mode:
                raise ValueError(f"{recording.path} records a {recording.header['mode']}-bit machine, not {mode}-bit")
            kwargs["hgcm_front"] = replay_front(recording)
        elif record:
            kwargs["hgcm_front"] = record_front
        machine = vbox_board(mode, reproducible=reproducible, **kwargs)
        self.machines.append(machine)
        self._node.stash.setdefault(_MACHINES, []).append((machine, self))
        sink = ListSink()
        recent: deque[TraceEvent] = deque(maxlen=self._last)
        self._sinks[id(machine)] = sink
        self._recent[id(machine)] = recent
        machine.tracer.add_sink(sink)
        machine.tracer.add_sink(recent.append)
        run = machine.run

        def recorded_run(*args: Any, **kw: Any) -> Any:
            if (record or recording is not None) and id(machine) not in self._results:
                header = recording.header if recording is not None else _kit_header(machine)
                machine.tracer.emit(HEADER_KIND, **header)
            result = run(*args, **kw)
            self._results[id(machine)] = result
            return result

        machine.run = recorded_run  # type: ignore[method-assign]  # remembered for failure reports
        if blocks:
            trace_blocks(machine)
        return machine

    def save_recording(self, machine: Machine, path: str | Path) -> Path:
        """Write every event of ``machine`` (made with ``record=True``, after its run) to
        trace file ``path``, for ``hgcm_machine(replay=path)`` or ``hgcmlab replay``."""
        if not isinstance(machine.hgcm_service, RecordingService):
            raise ValueError("save_recording needs a machine made with hgcm_machine(record=True)")
        with TraceWriter(path) as writer:
            for event in self.events(machine):
                writer(event)
        return Path(path)

    @staticmethod
    def replay_cursor(machine: Machine) -> ReplayCursor:
        """How far a replaying machine got: ``position``, ``finished``, ``divergence``."""
        if not isinstance(machine.hgcm_service, ReplayService):
            raise ValueError("replay_cursor needs a machine made with hgcm_machine(replay=...)")
        return machine.hgcm_service.cursor

    def events(self, machine: Machine) -> list[TraceEvent]:
        """Every event ``machine`` emitted so far."""
        return self._sinks[id(machine)].events

    def last_result(self, machine: Machine) -> Any:
        """The ``RunResult`` of the machine's latest run (None before the first)."""
        return self._results.get(id(machine))

    def recent(self, machine: Machine) -> list[TraceEvent]:
        """The last events (as many as ``--hgcm-last-events``)."""
        return list(self._recent[id(machine)])

    def close(self) -> None:
        """Close every machine (one the test closed itself already is skipped)."""
        while self.machines:
            machine = self.machines.pop()
            try:
                machine.close()
            except (ValueError, unicorn.UcError):
                pass  # closed by the test already


def _kit_header(machine: Machine) -> dict[str, Any]:
    """The ``hgcm_recording`` header of a kit machine (program name, image, settings)."""
    assert machine.image is not None
    return header_event_fields(program=machine.image.name, image=machine.image, mode=machine.mode,
                               ram_size=machine.memory.size, arguments=machine.arguments,
                               services=[machine.hgcm_service],
                               settings={"costs": dataclasses.asdict(machine.cpu.costs)})


@pytest.fixture
def hgcm_machine(request: pytest.FixtureRequest) -> Iterator[MachineFactory]:
    """Factory of traced machines: ``hgcm_machine(mode=64, **vbox_board_kwargs)``."""
    factory = MachineFactory(request.node, request.config.getoption("hgcm_last_events"))
    yield factory
    factory.close()


@pytest.fixture
def hgcm_share(tmp_path: Path) -> Path:
    """An empty temporary host directory to share with a guest."""
    share = tmp_path / "share"
    share.mkdir()
    return share


class Assembler:
    """``hgcm_assemble``: assemble program text or files; ``bundled`` for the shipped programs."""

    def __call__(self, source: str | Path, mode: int = 64, **kwargs: Any) -> AssembledProgram:
        return assemble(source, mode=mode, **kwargs)

    def bundled(self, name: str, mode: int = 64, **kwargs: Any) -> AssembledProgram:
        """A program of ``guest_asm/programs/`` (e.g. ``demo.s``)."""
        from hgcmlab.guest_asm.source import LIB_DIR

        return assemble(Path(LIB_DIR).parent / "programs" / name, mode=mode, **kwargs)


@pytest.fixture
def hgcm_assemble() -> Assembler:
    """``hgcm_assemble(text_or_path, mode=64, defines=...)`` -> AssembledProgram."""
    return Assembler()


class CGuestBuilder:
    """``c_guest``: build C guest programs (text or a ``.c`` path) into loadable images.

    Program text is stored under the build cache by its hash, so the same text keeps the
    same path (the path is part of the debug information, hence of the cache key)."""

    def __call__(self, source: str | Path, mode: int = 64, *, defines: dict[str, int] | None = None,
                 flags: Sequence[str] = (), paging: bool = False) -> Image:
        from hgcmlab.guest_asm.c.compiler import CompilerMissing, cache_directory
        from hgcmlab.machine.loader import c_image

        path = source if isinstance(source, Path) else self._stored(source, cache_directory())
        try:
            return c_image(path, mode=mode, defines=defines, flags=flags, paging=paging)
        except CompilerMissing as missing:
            pytest.skip(f"C guest not built: {missing}")

    @staticmethod
    def _stored(text: str, cache: Path) -> Path:
        folder = cache / "sources"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.c"
        if not path.is_file():
            temporary = folder / f".{path.name}.{os.getpid()}"
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, path)
        return path


@pytest.fixture
def c_guest() -> CGuestBuilder:
    """``c_guest(text_or_path, mode=64, defines=..., flags=...)`` -> Image (C guest kit)."""
    return CGuestBuilder()


@pytest.fixture
def hgcm_qtest(hgcm_machine: MachineFactory) -> Callable[..., QTest]:
    """Factory of qtest drivers on fresh traced machines: ``hgcm_qtest(mode=64, **kw)``."""
    def make(mode: int = 64, **kwargs: Any) -> QTest:
        return QTest(hgcm_machine(mode, **kwargs))
    return make


# --- golden traces ------------------------------------------------------------------------------


def golden_lines(events: Iterable[TraceEvent], *, kinds: Sequence[str] | None = DEFAULT_GOLDEN_KINDS,
                 fields: Sequence[str] | dict[str, Sequence[str]] | None = None,
                 ignore: Sequence[str] = DEFAULT_GOLDEN_IGNORE, stamps: bool = False) -> list[str]:
    """The stable form of a trace: one JSON object per selected event.

    ``kinds``: kinds kept (None: all).  ``fields``: field names kept (a list for every kind
    or a dict kind -> list; None: all fields but ``ignore``).  ``stamps``: keep cycle/instructions/pc.
    Decoded HGCM parameters replace the raw ``params``: ``call`` on ``hgcm_call``,
    ``results`` on ``hgcm_complete``."""
    wanted = frozenset(kinds) if kinds is not None else None
    tracker = CallTracker()
    lines: list[str] = []
    for event in events:
        call = tracker.feed(event)
        if wanted is not None and event.kind not in wanted:
            continue
        record: dict[str, Any] = {"kind": event.kind}
        if stamps:
            record.update(cycle=event.cycle, instructions=event.instructions, pc=event.pc)
        decoded = _decoded(event, call, tracker)
        keep = fields.get(event.kind) if isinstance(fields, dict) else fields
        for key, value in [*event.fields.items(), *decoded.items()]:
            if key in _GOLDEN_DROP or (key not in keep if keep is not None else key in ignore):
                continue
            record[key] = value
        lines.append(json.dumps(record, separators=(", ", ": ")))
    return lines


def _decoded(event: TraceEvent, call: TraceEvent | None, tracker: CallTracker) -> dict[str, str]:
    """The call or results a traced call shows, decoded by its service's decoder."""
    if event.kind == "hgcm_call":
        decoded = tracker.decode(event)
        return {"call": decoded.format_inputs()} if decoded is not None else {}
    if event.kind == "hgcm_complete" and call is not None and "params" in event.fields:
        decoded = tracker.decode(call, event.fields["params"])
        return {"results": decoded.format_outputs()} if decoded is not None else {}
    return {}


class TraceAsserter:
    """``assert_trace``: compare a trace with its golden file (or rewrite it)."""

    def __init__(self, directory: Path, update: bool, factory: MachineFactory | None) -> None:
        self.directory = directory
        self._update = update
        self._factory = factory

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.jsonl"

    def __call__(self, trace: Machine | Iterable[TraceEvent], name: str, *,
                 kinds: Sequence[str] | None = DEFAULT_GOLDEN_KINDS,
                 fields: Sequence[str] | dict[str, Sequence[str]] | None = None,
                 ignore: Sequence[str] = DEFAULT_GOLDEN_IGNORE, stamps: bool = False) -> None:
        __tracebackhide__ = True
        if isinstance(trace, Machine):
            if self._factory is None or trace not in self._factory.machines:
                raise TypeError("assert_trace(machine, ...) needs a machine made by hgcm_machine; "
                                "pass its events instead")
            trace = self._factory.events(trace)
        actual = golden_lines(trace, kinds=kinds, fields=fields, ignore=ignore, stamps=stamps)
        path = self.path(name)
        if self._update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(line + "\n" for line in actual), encoding="utf-8")
            return
        if not path.is_file():
            pytest.fail(f"no golden trace {path}; run pytest with --update-golden to create it "
                        f"({len(actual)} events would be stored)", pytrace=False)
        expected = path.read_text(encoding="utf-8").splitlines()
        if expected != actual:
            diff = "\n".join(difflib.unified_diff(expected, actual, f"{path} (golden)", "this run", lineterm="", n=3))
            pytest.fail(f"trace differs from golden {path.name} (run with --update-golden to accept):\n{diff}",
                        pytrace=False)


@pytest.fixture
def assert_trace(request: pytest.FixtureRequest) -> TraceAsserter:
    """``assert_trace(machine_or_events, name, kinds=..., fields=..., ignore=..., stamps=False)``."""
    factory = request.getfixturevalue("hgcm_machine") if "hgcm_machine" in request.fixturenames else None
    return TraceAsserter(Path(request.node.path).parent / "golden",
                         bool(request.config.getoption("update_golden")), factory)


# --- failure reports -----------------------------------------------------------------------------


def disassembly_around(machine: Machine, pc: int, before: int = 4, after: int = 3) -> list[str]:
    """Instructions around ``pc`` (``=>`` marks it), each with its source line when known.

    x86 cannot be decoded backwards; the listing starts at the farthest earlier address
    (up to 48 bytes back) whose forward decoding lands exactly on ``pc``."""
    cpu = machine.cpu
    image = machine.image
    lowest, highest = max(0, pc - 48), None
    for base, size in image.linear_ranges() if image else ():
        if base <= pc < base + size:
            lowest, highest = max(lowest, base), base + size
    listing: list[tuple[int, str]] = []
    for start in range(lowest, pc):
        decoded = cpu.disassemble(start, before + after + 16)
        addresses = [address for address, _ in decoded]
        if pc in addresses:
            index = addresses.index(pc)
            listing = decoded[max(0, index - before):index + after + 1]
            break
    if not listing:
        listing = cpu.disassemble(pc, after + 1)
    listing = [(address, text) for address, text in listing if highest is None or address < highest]
    lines = []
    for address, text in listing:
        marker = "=>" if address == pc else "  "
        symbol = image.symbol_at(address) if image else None
        source = image.source_at(address) if image else None
        line = f"{marker} {address:#10x} {('<' + symbol + '>') if symbol else '':<24} {text}"
        if source is not None:
            line += f"    ; {source}"
        lines.append(line)
    return lines or [f"=> {pc:#x} <unreadable>"]


def machine_report(machine: Machine, recent: Sequence[TraceEvent], result: Any = None) -> str:
    """The last run's end (and fault), last events, registers and code around pc, as text."""
    lines = [f"machine: {machine.mode}-bit, {machine.cycles} cycles, {machine.cpu.instructions} instructions"]
    paging = machine.cpu.paging_registers()
    if paging.enabled:
        lines.append(f"paging on ({paging.form}, CR3 {paging.cr3:#x}): pc and code addresses below are linear")
    if result is not None:
        lines.append(f"last run ended: {result.end.value} (exit code {result.exit_code})")
        if result.fault is not None:
            lines.append(result.fault.format())
    lines.append(f"last {len(recent)} events:")
    for event in recent:
        lines.append(f"  {event.cycle:>10} {event.instructions:>9} {event.pc:#9x} {event.kind:<18} "
                     f"{describe(event)}")
    registers = machine.cpu.registers()
    lines.append("registers:")
    items = list(registers.items())
    for start in range(0, len(items), 6):
        lines.append("  " + "  ".join(f"{name}={value:#x}" for name, value in items[start:start + 6]))
    lines.append("code:")
    lines += ["  " + line for line in disassembly_around(machine, machine.cpu.pc)]
    return "\n".join(lines)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for number, (machine, factory) in enumerate(item.stash.get(_MACHINES, []), 1):
        try:
            text = machine_report(machine, factory.recent(machine), factory.last_result(machine))
        except Exception as error:  # noqa: BLE001 - a report must never hide the real failure
            text = f"(no report: {type(error).__name__}: {error})"
        report.sections.append((f"hgcmlab machine {number}", text))

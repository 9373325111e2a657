"""The machine core: CPU, guest RAM, port bus, MMIO window, clock, interrupt lines, PCI.

A ``Machine`` is built with a mode (64 or 32), a RAM size and options; boards
(machine/boards.py) attach devices to it (``vbox_board``: VMMDev and its HGCM services).
Programs are loaded as ``Image``s (or assembled programs); ``run`` executes
until the guest writes the exit device, executes ``hlt`` with nothing left to wait for,
faults, exhausts its instruction or cycle budget, reaches a requested cycle, or is
cancelled from outside (``cancel``: Ctrl-C, a wall-time budget).  Device events
scheduled on the clock fire at the first instruction boundary at or after their cycle;
an asserted interrupt line is delivered through the guest's IDT when IF is set, and
``sti; hlt`` sleeps until the next event instead of spinning.  ``snapshot``/``restore``
save and load the whole machine as plain data (machine/snapshot.py).  Conventions guest
programs rely on (public contract): flat code at 0x10000, entry at ``_start``, stack
pointer at the top of RAM, VMMDev request port 0xD020 (on the vbox board), exit device
0xF4, backdoor log port 0x504.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from hgcmlab.guest_asm.assembler import AssembledProgram
from hgcmlab.machine.clock import Clock, CostProfile, Scheduler
from hgcmlab.machine.cpu import Cpu, StopInfo, StopKind
from hgcmlab.machine.device import AttachContext, Device, close_device, load_device, save_device
from hgcmlab.machine.layout import ARGS_BASE, FIRMWARE_PAGE, IRQ_VECTOR_BASE, MAX_GUEST_RAM, MMIO_WINDOW_BASE
from hgcmlab.machine.loader import Image, LoadError, argument_block, image_from_assembled, paging_area
from hgcmlab.machine.pagetables import build as build_page_tables
from hgcmlab.machine.pagetables import table_bytes
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.paging import page_fault_summary, walk
from hgcmlab.machine.pci import Bar, PciConfigSpace, PciFunction
from hgcmlab.machine.portbus import PortBus, PortConflictError
from hgcmlab.machine.snapshot import SNAPSHOT_PAGE, Snapshot, SnapshotError, nonzero_pages
from hgcmlab.machine.stddevices import BackdoorLogDevice, ExitDevice
from hgcmlab.machine.tracing import ListSink, Tracer

DEFAULT_RAM_SIZE = 64 * 1024 * 1024
#: Guest RAM ends below the MMIO window.
MAX_RAM_SIZE = MAX_GUEST_RAM
#: Instructions one ``Machine.run`` call may execute by default before it is stopped as a
#: runaway: finite so that a broken guest fails a test instead of hanging it (the pytest
#: fixtures and qtest inherit it).  ``run(None)`` is unbounded, as the CLI is by default.
DEFAULT_INSTRUCTION_BUDGET = 20_000_000
#: Instructions an unbounded run gives each ``Cpu.run`` call (the CPU's budget, see
#: machine/cpu.py); a run simply calls it again after that many.
_UNBOUNDED_SLICE = 1 << 62


class RunEnd(Enum):
    """How a run ended."""

    EXIT = "exit"        # the guest wrote the exit device
    HALT = "halt"        # the guest executed hlt with nothing to wake it
    BUDGET = "budget"    # an instruction, cycle or wall-time budget ran out
    FAULT = "fault"      # the guest faulted
    PAUSED = "paused"    # the requested cycle was reached; run() continues from here
    INTERRUPTED = "interrupted"  # cancelled from outside (Ctrl-C); run() continues from here
    DIVERGED = "diverged"  # a replayed run left its recording (stop_run; machine/replay.py)


@dataclass(frozen=True)
class FaultReport:
    """Everything needed to understand a guest fault, a runaway guest (budget) or where an
    interrupted run stopped."""

    description: str
    pc: int
    instruction: str
    source: str | None
    symbol: str | None
    registers: dict[str, int]
    #: Further lines (a page fault's table walk, the physical pc with paging on).
    details: list[str] = field(default_factory=list)

    def format(self, heading: str = "guest fault") -> str:
        """A multi-line human-readable report, its first line ``heading: description``."""
        where = f"pc {self.pc:#x}"
        if self.symbol:
            where += f" <{self.symbol}>"
        lines = [f"{heading}: {self.description}", f"  at {where}: {self.instruction or '<unreadable>'}"]
        if self.source:
            lines.append(f"  source: {self.source}")
        lines.extend(f"  {line}" for line in self.details)
        regs = "  ".join(f"{name}={value:#x}" for name, value in self.registers.items())
        lines.append(f"  registers: {regs}")
        return "\n".join(lines)


@dataclass
class RunResult:
    """The outcome of ``Machine.run``."""

    end: RunEnd
    exit_code: int
    instructions: int
    cycles: int
    log_lines: list[str] = field(default_factory=list)
    fault: FaultReport | None = None

    @property
    def ok(self) -> bool:
        """True when the guest ended by itself (exit device or hlt), whatever its code."""
        return self.end in (RunEnd.EXIT, RunEnd.HALT)


class Machine:
    """The machine core: an x86 vCPU, guest RAM, the port bus, the MMIO window, the clock
    and its scheduler, interrupt lines, the PCI configuration space and the standard exit
    and log devices.  It knows no particular device: boards (machine/boards.py) attach
    devices with ``add_device`` and give them a PCI function with ``add_pci``.

    ``fast_blocks=False`` counts with the Python block hook instead of the native one, and
    ``count_free=False`` starts Unicorn with its instruction count every time (the slower
    previous path); counts, cycles and traces are the same either way (machine/cpu.py).
    ``board_config`` is the plain-data description a board gives of how it built this
    machine (kept in snapshots, so that ``hgcmlab.machine.boards.restore`` can build it again).
    """

    def __init__(self, mode: int = 64, ram_size: int = DEFAULT_RAM_SIZE, *,
                 costs: CostProfile | None = None, tracer: Tracer | None = None, fast_blocks: bool = True,
                 trace_blocks: bool = False, trace_memory: bool = False, trace_instructions: bool = False,
                 count_free: bool = True) -> None:
        if mode not in (32, 64):
            raise ValueError(f"mode must be 32 or 64, not {mode}")
        if not 0x20000 <= ram_size <= MAX_RAM_SIZE or ram_size % 4096:
            raise ValueError(f"RAM size must be a multiple of 4 KiB between 128 KiB and "
                             f"{MAX_RAM_SIZE // (1024 * 1024)} MiB, not {ram_size}")
        self.mode = mode
        self.memory = GuestMemory(ram_size)
        self.tracer = tracer or Tracer()
        self.scheduler = Scheduler()
        self.bus = PortBus(self.tracer, self._charge)
        self.cpu = Cpu(mode, self.memory, self.bus.read, self.bus.write, costs, fast_blocks, count_free)
        self.clock = Clock(self.cpu.now, self.cpu.charge, self.scheduler, self.tracer.emit, self._event_scheduled)
        self.tracer.set_stamp(self._stamp)
        self._exit_code: int | None = None
        self._log_lines: list[str] = []
        self._arguments: list[str] = []
        self._irq_lines: set[int] = set()
        self._mmio_next = MMIO_WINDOW_BASE
        self._mmio_memories: list[GuestMemory] = []
        #: Where each device's MMIO regions were mapped: device name -> region -> base.
        self._mmio_bases: dict[str, dict[str, int]] = {}
        self.image: Image | None = None
        self.devices: list[Device] = []
        self.board_config: dict = {"board": "bare", "mode": mode, "ram_size": ram_size}
        self.exit_device = ExitDevice()
        self.log_device = BackdoorLogDevice()
        self._stop_report: str | None = None
        #: The last run paused where only its pause stopped the CPU: the next run delivers
        #: no interrupt before the CPU stops by itself (see ``run``).
        self._irq_deferred = False
        self.add_device(self.exit_device)
        self.add_device(self.log_device)
        self.pci = PciConfigSpace()
        self.add_device(self.pci)
        self._trace_blocks = trace_blocks
        self._closed = False
        #: How a pending cancel() ends the run: (end, description); None: not cancelled.
        self._cancel: tuple[RunEnd, str] | None = None
        if trace_instructions:
            self.cpu.watch_instructions(lambda address, text: self.tracer.emit("instruction", text=text))
        if trace_memory:
            # Unicorn reports data accesses after translation: the address is physical.
            self.cpu.watch_memory(lambda access, address, size, value: self.tracer.emit(
                "memory", access=access, address=address, size=size, value=value))

    def add_pci(self, device: Device, slot: int, *, bus: int = 0, function: int = 0) -> PciFunction:
        """Give attached ``device`` the PCI function bus:slot.function its
        ``pci_identity()`` declares: BARs over its relocatable ports (the guest may move
        them, the ports follow) and its MMIO regions."""
        identity = device.pci_identity()  # type: ignore[attr-defined]
        bars: dict[int, Bar] = {}
        if identity.io_bar is not None:
            index, size = identity.io_bar
            relocatable = [r for r in device.port_ranges() if r.fixed_base is None]
            if not relocatable:
                raise ValueError(f"{device.name} declares an I/O BAR but has no relocatable ports")
            first = relocatable[0]
            bars[index] = Bar(size, True, (self.bus.base_of(device, first.name) or 0) - first.offset)
        for index, region in identity.mmio_bars:
            base = self._mmio_bases.get(device.name, {}).get(region)
            if base is None:
                raise ValueError(f"{device.name} declares BAR {index} over MMIO region {region!r}, which it lacks")
            size = next(r.size for r in device.mmio_regions() if r.name == region)  # type: ignore[attr-defined]
            bars[index] = Bar(size, False, base)
        config = PciFunction(identity.vendor_id, identity.device_id, identity.class_code, identity.subclass, bars,
                             interrupt_pin=identity.interrupt_pin, interrupt_line=identity.interrupt_line,
                             relocate_io=lambda bar, base: self._move_ports(device, bar, base))
        self.pci.add_function(bus, slot, function, config)
        return config

    def _move_ports(self, device: Device, bar: int, base: int) -> None:
        """The guest moved ``device``'s I/O BAR: its relocatable ports follow.  Onto ports
        another device holds (a plugin), the device decodes nothing until the BAR moves to
        free ports again; the other device keeps its ports (traced as ``pci_bar_conflict``)."""
        ranges = [r for r in device.port_ranges() if r.fixed_base is None]
        for port_range in ranges:
            self.bus.release(device, port_range.name)
        try:
            self.bus.claim_all(device, [(r, base + r.offset) for r in ranges])
        except PortConflictError as conflict:
            self.tracer.emit("pci_bar_conflict", device=device.name, bar=bar, base=base, reason=str(conflict))
            return
        self.tracer.emit("pci_bar_moved", device=device.name, bar=bar, base=base)

    # --- configuration --------------------------------------------------------------------

    def add_device(self, device: Device, base: int | None = None) -> None:
        """Attach ``device``; its relocatable port ranges are placed at ``base`` (``None``:
        the first free block ``PortBus.free_base`` finds) and its MMIO regions (optional
        ``mmio_regions()``) in the MMIO window.  All ports are claimed or none: a conflict
        raises ``PortConflictError`` (a ``ValueError``) and leaves the machine unchanged."""
        ranges = list(device.port_ranges())
        relocatable = [r for r in ranges if r.fixed_base is None]
        if relocatable and base is None:
            base = self.bus.free_base(relocatable)
        self.bus.claim_all(device, [(r, r.fixed_base if r.fixed_base is not None else (base or 0) + r.offset)
                                    for r in ranges])
        mmio: dict[str, tuple[int, GuestMemory]] = {}
        for region in getattr(device, "mmio_regions", lambda: [])():
            mmio[region.name] = self._map_mmio(region.size)
        self._mmio_bases[device.name] = {name: base for name, (base, _memory) in mmio.items()}
        device.attach(AttachContext(self.memory, self.tracer, self._request_exit, self._log_line,
                                    self.clock, self._set_irq, self._request_halt, mmio, self._page_translator))
        self.devices.append(device)

    def _map_mmio(self, size: int) -> tuple[int, GuestMemory]:
        """Map ``size`` bytes of device memory in the MMIO window, aligned to its size."""
        size = max(4096, 1 << (size - 1).bit_length())
        base = (self._mmio_next + size - 1) & ~(size - 1)
        if base + size > FIRMWARE_PAGE:
            raise ValueError("the MMIO window is full")
        memory = GuestMemory(size)
        self.cpu.map_region(base, memory)
        self._mmio_memories.append(memory)
        self._mmio_next = base + size
        return base, memory

    def load(self, image: Image | AssembledProgram, *, paging: bool = False) -> None:
        """Place ``image`` in RAM, point the CPU at its entry and the stack at the top of RAM.

        ``paging`` starts the program paged: the machine builds page tables in the reserved
        area (machine/pagetables.py, docs/paging.md) identity-mapping the address space
        plus the image's ``mappings`` (an ELF loaded with ``paging=True``) and turns paging
        on; segments may not reach into that area.  Without it, an image with mappings is
        refused."""
        if isinstance(image, AssembledProgram):
            image = image_from_assembled(image)
        if image.mode is not None and image.mode != self.mode:
            raise ValueError(f"{image.name} is a {image.mode}-bit program; this machine runs in {self.mode}-bit mode")
        if image.mappings and not paging:
            raise ValueError(f"{image.name} was loaded for a paged start; load it with paging=True")
        area = paging_area(self.memory.size)
        for address, content in image.segments:
            if not self.memory.contains(address, len(content)):
                raise ValueError(
                    f"{image.name}: segment at {address:#x} ({len(content)} bytes) does not fit in "
                    f"{self.memory.size // 1024} KiB of guest RAM")
            if paging and address + len(content) > area:
                raise ValueError(f"{image.name}: segment at {address:#x} ({len(content)} bytes) reaches into the "
                                 f"page-table area of a paged start ({area:#x}-{self.memory.size - 1:#x})")
            self.memory.write(address, content)
        if paging:
            self._start_paged(image)
        self.image = image
        if self._trace_blocks:
            from hgcmlab.machine.trace.blocks import trace_blocks

            trace_blocks(self)
        self.cpu.pc = image.entry
        self.cpu.sp = self.memory.size & (0xFFFFFFFFFFFFFFF0 if self.mode == 64 else 0xFFFFFFF0)
        self.set_arguments(self._arguments)

    def _start_paged(self, image: Image) -> None:
        """Write the loader's page tables and turn paging on (docs/paging.md)."""
        try:
            tables = build_page_tables(self.mode, self.memory.size, image.mappings)
        except LoadError as error:
            raise ValueError(f"{image.name}: {error}") from None
        for address, content in table_bytes(tables):
            self.memory.write(address, content)
        cpu = self.cpu
        cpu.write_register("cr3", tables.cr3)
        cpu.write_register("cr4", cpu.read_register("cr4") | tables.cr4_set)
        cpu.write_register("cr0", cpu.read_register("cr0") | tables.cr0_set)

    def set_arguments(self, arguments: list[str]) -> None:
        """Give the program ``arguments``: the argument block at ``ARGS_BASE`` (u32 argc,
        u32 size, u32 string offsets, NUL-terminated UTF-8 strings) and, on entry,
        rdi/edi = argc and rsi/esi = ``ARGS_BASE``.  Call before or after ``load``."""
        block = argument_block(list(arguments))
        self._arguments = list(arguments)
        self.memory.write(ARGS_BASE, block)
        self.cpu.set_entry_arguments(len(self._arguments), ARGS_BASE)

    @property
    def arguments(self) -> list[str]:
        """The program arguments last given to ``set_arguments`` (a copy)."""
        return list(self._arguments)

    # --- running --------------------------------------------------------------------------

    def run(self, max_instructions: int | None = DEFAULT_INSTRUCTION_BUDGET, *, until_cycle: int | None = None,
            max_cycles: int | None = None, cycle_budget: int | None = None) -> RunResult:
        """Run the loaded program until it ends (see ``RunEnd``).

        ``max_instructions`` bounds this call (``None``: no bound); ``cycle_budget`` ends
        it as ``BUDGET`` at the first instruction boundary at or after that many cycles
        from its start.  ``until_cycle`` (absolute) or ``max_cycles`` (relative) pause the
        run there instead (``PAUSED``), and a later ``run`` continues from there, as it
        does after ``BUDGET`` and ``INTERRUPTED``.  A ``cancel`` (from a signal handler or
        another thread) ends the run at the next instruction boundary the engine
        reaches."""
        if self.image is None:
            raise RuntimeError("no program loaded")
        self._exit_code = None
        stop_cycle = until_cycle
        if max_cycles is not None:
            stop_cycle = self.clock.now() + max_cycles
        budget_cycle = None if cycle_budget is None else self.clock.now() + cycle_budget
        instruction_limit = None if max_instructions is None else self.cpu.instructions + max_instructions
        last_stop: StopKind | None = None
        while True:
            if self.cpu.cancel_requested:
                return self._finish(*self._cancelled())
            if self._stop_report is not None:
                return self._finish(*self._stopped())
            fired = self._fire_due_events()
            if stop_cycle is not None and self.clock.now() >= stop_cycle:
                # A pause is invisible to the guest: where only the pause's own deadline
                # stopped the CPU, the uninterrupted run would deliver no interrupt here
                # (it checks at the next block), so the next run does not either.
                if fired:
                    self._irq_deferred = False
                elif last_stop is StopKind.DEADLINE:
                    self._irq_deferred = True
                return self._finish(RunEnd.PAUSED, 0, None)
            if self._irq_deferred:
                self._irq_deferred = False
                self.cpu.continue_block()
            else:
                ended = self._deliver_interrupt()
                if ended is not None:
                    return self._finish(*ended)
            if budget_cycle is not None and self.clock.now() >= budget_cycle:
                return self._finish(RunEnd.BUDGET, -1, self._fault_report(
                    f"cycle budget of {cycle_budget} exhausted", self.cpu.pc))
            remaining = _UNBOUNDED_SLICE
            if instruction_limit is not None:
                remaining = instruction_limit - self.cpu.instructions
                if remaining <= 0:
                    return self._finish(RunEnd.BUDGET, -1, self._fault_report(
                        f"instruction budget of {max_instructions} exhausted", self.cpu.pc))
            self.cpu.deadline = _earliest(self.scheduler.next_cycle(), stop_cycle, budget_cycle)
            stop = self.cpu.run(remaining)
            while stop.kind is StopKind.DEADLINE and stop.slice:
                slice_limit = stop.slice if instruction_limit is None else min(
                    stop.slice, instruction_limit - self.cpu.instructions)
                stop = self.cpu.run(slice_limit, exact=True)
            last_stop = stop.kind
            outcome = self._handle_stop(stop)
            if outcome is not None:
                return self._finish(*outcome)

    def cancel(self, end: RunEnd = RunEnd.INTERRUPTED, description: str = "interrupted") -> None:
        """End the current run (or the next one, if none is running) as soon as possible
        with ``end`` (``INTERRUPTED``, or ``BUDGET`` for a wall-time budget) and a report
        saying ``description`` and where the guest stood.

        Safe from a signal handler and from another thread; the first cancel wins until a
        run has ended by it.  Where the run stops depends on when this is called, so a
        cancelled run is not reproducible: everything before the stop is."""
        if end not in (RunEnd.INTERRUPTED, RunEnd.BUDGET):
            raise ValueError(f"a cancelled run ends as interrupted or budget, not {end.value}")
        if self._cancel is None:
            self._cancel = (end, description)
        self.cpu.cancel()

    def stop_run(self, description: str) -> None:
        """End the current run after the current instruction as ``RunEnd.DIVERGED``, with
        ``description`` as its report (for a device or service that cannot go on, such as a
        replay that left its recording).  The first description wins, and every later
        ``run`` ends the same way at once: such a machine cannot go on."""
        if self._stop_report is None:
            self._stop_report = description
        self.cpu.request_stop()

    def _stopped(self) -> tuple[RunEnd, int, FaultReport | None]:
        return RunEnd.DIVERGED, -1, self._fault_report(self._stop_report or "stopped", self.cpu.pc)

    def clear_cancel(self) -> None:
        """Drop a ``cancel`` no run has acted on yet."""
        self._cancel = None
        self.cpu.clear_cancel()

    def _cancelled(self) -> tuple[RunEnd, int, FaultReport | None]:
        end, description = self._cancel or (RunEnd.INTERRUPTED, "interrupted")
        self._cancel = None
        self.cpu.clear_cancel()
        return end, -1, self._fault_report(description, self.cpu.pc)

    def step(self) -> RunResult:
        """Execute exactly one instruction (events due by then fire first)."""
        return self.run(1)

    def _handle_stop(self, stop: StopInfo) -> tuple[RunEnd, int, FaultReport | None] | None:
        kind = stop.kind
        if self._stop_report is not None:
            return self._stopped()
        if kind is StopKind.REQUESTED and self._exit_code is not None:
            return RunEnd.EXIT, self._exit_code, None
        if kind is StopKind.FAULT:
            return RunEnd.FAULT, -1, self._fault_report(stop.fault, stop.pc)
        if kind is StopKind.EXCEPTION:
            return self._deliver_exception(stop)
        if kind is StopKind.HALT:
            return self._halted()
        if kind is StopKind.CANCELLED:
            return self._cancelled()
        return None  # BUDGET/DEADLINE/INTERRUPT/REQUESTED: the loop decides

    def _halted(self) -> tuple[RunEnd, int, FaultReport | None] | None:
        """`hlt`: sleep until the next event if interrupts can wake us, else end the run."""
        self.tracer.emit("cpu_halt", interrupts_enabled=self.cpu.interrupts_enabled)
        if not self.cpu.interrupts_enabled:
            return RunEnd.HALT, 0, None
        if self._irq_lines:
            return None
        wake = self.scheduler.next_cycle()
        if wake is None:
            return RunEnd.HALT, 0, None
        now = self.clock.now()
        if wake > now:
            self.clock.charge(wake - now, "halted until the next event")
        return None

    def _fire_due_events(self) -> bool:
        """Fire the events due by now; True when there were any."""
        due = self.scheduler.pop_due(self.clock.now())
        for event in due:
            self.tracer.emit("event", name=event.name, scheduled_cycle=event.cycle)
            self.scheduler.fire(event)
        return bool(due)

    def _deliver_interrupt(self) -> tuple[RunEnd, int, FaultReport | None] | None:
        """Deliver a pending interrupt if the guest accepts it."""
        if self._irq_lines and self.cpu.interrupts_enabled:
            if self.cpu.in_interrupt_shadow:
                return self._step_through_shadow()
            irq = min(self._irq_lines)
            vector = IRQ_VECTOR_BASE + irq
            pc = self.cpu.pc
            problem = self.cpu.inject_interrupt(vector)
            if problem is not None:
                return RunEnd.FAULT, -1, self._fault_report(f"cannot deliver IRQ {irq}: {problem}", pc)
            self.tracer.emit("interrupt_delivered", irq=irq, vector=vector, return_pc=pc)
        return None

    def _deliver_exception(self, stop: StopInfo) -> tuple[RunEnd, int, FaultReport | None] | None:
        """A page fault: into the guest's handler through its IDT; when it has none, the run
        ends with a report naming the linear address, the access and the table walk."""
        problem = self.cpu.inject_interrupt(stop.vector, stop.error_code)
        address = stop.fault_address or 0
        if problem is None:
            self.tracer.emit("exception_delivered", vector=stop.vector, error_code=stop.error_code,
                             linear_address=address, return_pc=stop.pc)
            return None
        report = self._fault_report(f"{page_fault_summary(address, stop.error_code)}; not delivered: {problem}",
                                    stop.pc)
        report.details.extend(self.cpu.translate(address).describe())
        return RunEnd.FAULT, -1, report

    def _step_through_shadow(self) -> tuple[RunEnd, int, FaultReport | None] | None:
        """Execute the one instruction after `sti` before any interrupt (x86's interrupt
        shadow); a `hlt` there halts with the interrupt pending and is woken by it."""
        stop = self.cpu.run(1, exact=True)
        if stop.kind is StopKind.HALT:
            self.tracer.emit("cpu_halt", interrupts_enabled=self.cpu.interrupts_enabled)
            return None
        return self._handle_stop(stop)

    def _finish(self, end: RunEnd, code: int, fault: FaultReport | None) -> RunResult:
        if end is not RunEnd.PAUSED:  # a paused run goes on: its partial line is not complete
            self.log_device.flush()
        if fault is not None and end is not RunEnd.INTERRUPTED:
            self.tracer.emit("guest_fault", description=fault.description, instruction=fault.instruction,
                             symbol=fault.symbol, source=fault.source)
        instructions = self.cpu.instructions
        self.tracer.emit("run_end", end=end.value, exit_code=code, instructions=instructions)
        return RunResult(end, code, instructions, self.cycles, list(self._log_lines), fault)

    @property
    def cycles(self) -> int:
        """Virtual cycles so far."""
        return self.clock.now()

    def _fault_report(self, description: str, pc: int) -> FaultReport:
        disassembly = self.cpu.disassemble(pc)
        instruction = disassembly[0][1] if disassembly else ""
        image = self.image
        source = image.source_at(pc) if image else None
        details = []
        if self.cpu.paging_registers().enabled:
            translated = self.cpu.translate(pc)
            physical = "not mapped" if translated.physical is None else f"{translated.physical:#x}"
            details.append(f"pc {pc:#x} is linear (paging on); physical pc: {physical}")
        return FaultReport(description, pc, instruction, str(source) if source else None,
                           image.symbol_at(pc) if image else None, self.cpu.registers(), details)

    def _stamp(self) -> tuple[int, int, int]:
        pc = self.cpu.pc
        cycles, instructions = self.cpu.position(pc)
        return cycles, instructions, pc

    def _event_scheduled(self, cycle: int) -> None:
        """A device scheduled an event, possibly during a run: bring the deadline forward."""
        self.cpu.deadline = _earliest(self.cpu.deadline, cycle)

    def _charge(self, cycles: int, reason: str) -> None:
        self.clock.charge(cycles, reason)

    def _set_irq(self, irq: int, asserted: bool) -> None:
        if asserted == (irq in self._irq_lines):
            return
        if asserted:
            self._irq_lines.add(irq)
        else:
            self._irq_lines.discard(irq)
        self.cpu.irq_asserted = bool(self._irq_lines)
        self.tracer.emit("irq_line", irq=irq, asserted=asserted)

    def physical_address(self, linear: int) -> int | None:
        """Where ``linear`` lies in guest-physical memory while the guest runs paged; None
        while it runs unpaged (linear = physical) or when the address does not translate."""
        registers = self.cpu.paging_registers()
        if not registers.enabled:
            return None
        return walk(registers, linear, self.cpu.read_physical).physical

    def _page_translator(self) -> Callable[[int], int | None] | None:
        """The guest's translation for devices (``AttachContext.page_translator``)."""
        if not self.cpu.paging_enabled():
            return None
        registers = self.cpu.paging_registers()
        read = self.cpu.read_physical
        return lambda linear: walk(registers, linear, read, pgm=True).physical

    def _request_exit(self, code: int) -> None:
        self._exit_code = code
        self.cpu.request_stop()

    def _request_halt(self) -> None:
        self.cpu.request_stop(StopKind.HALT)

    def _log_line(self, line: str) -> None:
        self._log_lines.append(line)
        self.tracer.emit("guest_log", line=line)

    # --- snapshots ------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The whole machine between runs as plain data: CPU, RAM and MMIO (non-zero pages),
        clock and scheduled events, interrupt lines, port placements, PCI configuration and
        every device's ``save_state``, with ``board_config`` to rebuild it.  Raises
        ``SnapshotError`` for a machine a snapshot cannot describe."""
        if self._closed:
            raise SnapshotError("the machine is closed")
        names = [device.name for device in self.devices]
        if len(set(names)) != len(names):
            raise SnapshotError(f"two devices share a name ({', '.join(sorted(names))}): cannot snapshot")
        image = self.image
        state = {
            "cpu": self.cpu.save_state(),
            "ram": nonzero_pages(self.memory),
            "mmio": [nonzero_pages(memory) for memory in self._mmio_memories],
            "scheduler": self.scheduler.save_state(),
            "irq_lines": sorted(self._irq_lines),
            "irq_deferred": self._irq_deferred,
            "ports": self.bus.placements(),
            "devices": {device.name: save_device(device) for device in self.devices},
            "arguments": list(self._arguments),
            "log_lines": list(self._log_lines),
            "image": None if image is None else {"name": image.name, "entry": image.entry, "mode": image.mode,
                                                  "symbols": dict(sorted(image.symbols.items()))},
        }
        return Snapshot(dict(self.board_config), state)

    def restore(self, snapshot: Snapshot) -> list[str]:
        """Put the machine in the state ``snapshot`` holds; it must have been built as the
        snapshot's ``board_config`` says (``hgcmlab.machine.boards.restore`` does so).  A loaded
        program keeps its symbols and source lines; otherwise the snapshot's names are
        used.  Returns the devices' problem lines (empty: all restored); raises
        ``SnapshotError`` for a snapshot that does not fit this machine."""
        state = snapshot.state
        try:
            if snapshot.config.get("board") != self.board_config["board"]:
                raise SnapshotError(f"the snapshot is of a {snapshot.config.get('board')!r} board, "
                                    f"not {self.board_config['board']!r}")
            if (snapshot.config.get("mode"), snapshot.config.get("ram_size")) != (self.mode, self.memory.size):
                raise SnapshotError(f"the snapshot is of a {snapshot.config.get('mode')}-bit machine with "
                                    f"{snapshot.config.get('ram_size')} bytes of RAM, not this one")
            if len(state["mmio"]) != len(self._mmio_memories):
                raise SnapshotError("the snapshot's device memory does not match this machine's devices")
            devices = {device.name: device for device in self.devices}
            unknown = sorted(set(state["devices"]) - set(devices))
            if unknown:
                raise SnapshotError(f"the snapshot has devices this machine lacks: {', '.join(unknown)}")
            self.cpu.load_state(state["cpu"])
            _load_pages(self.memory, state["ram"])
            for memory, pages in zip(self._mmio_memories, state["mmio"]):
                _load_pages(memory, pages)
            self.scheduler.load_state(state["scheduler"])
            self._irq_lines = {int(irq) for irq in state["irq_lines"]}
            self.cpu.irq_asserted = bool(self._irq_lines)
            self._irq_deferred = bool(state["irq_deferred"])
            self.bus.restore_placements(devices, state["ports"])
            problems: list[str] = []
            for name, device_state in state["devices"].items():
                problems += load_device(devices[name], device_state)
            self._arguments = [str(argument) for argument in state["arguments"]]
            self._log_lines = [str(line) for line in state["log_lines"]]
            if self.image is None and state["image"] is not None:
                saved = state["image"]
                self.image = Image([], int(saved["entry"]), saved["mode"], dict(saved["symbols"]), str(saved["name"]))
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise SnapshotError(f"the snapshot does not fit this machine: {error}") from None
        self._exit_code = None
        self.cpu.deadline = self.scheduler.next_cycle()
        return problems

    def close(self) -> None:
        """Release the engine, host handles and guest RAM (the machine is unusable
        afterwards); closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        for device in reversed(self.devices):
            close_device(device)
        self.cpu.close()
        self.memory.close()
        for memory in self._mmio_memories:
            memory.close()


def _load_pages(memory: GuestMemory, pages: list[list[object]]) -> None:
    """Make ``memory`` hold exactly ``pages`` ([page address, bytes] runs; the rest zero)."""
    for address, _data in nonzero_pages(memory):
        memory.fill(int(address), len(_data), 0)  # type: ignore[arg-type]
    for address, data in pages:
        if not isinstance(data, bytes) or int(address) % SNAPSHOT_PAGE or not memory.contains(int(address), len(data)):
            raise SnapshotError(f"a saved page run at {address} does not fit {memory.size} bytes of memory")
        memory.write(int(address), data)


def _earliest(*cycles: int | None) -> int | None:
    known = [cycle for cycle in cycles if cycle is not None]
    return min(known) if known else None


__all__ = ["Machine", "RunResult", "RunEnd", "FaultReport", "ListSink", "DEFAULT_RAM_SIZE"]

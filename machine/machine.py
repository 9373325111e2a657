"""The machine: CPU, guest RAM, port bus, standard devices, VMMDev and its services.

This is the composition root.  A ``Machine`` is built with a mode (64 or 32), a RAM size
and options; programs are loaded as ``Image``s (or assembled programs); ``run`` executes
until the guest writes the exit device, executes ``hlt`` with nothing left to wait for,
faults, exhausts its instruction or cycle budget, reaches a requested cycle, or is
cancelled from outside (``cancel``: Ctrl-C, a wall-time budget).  Device events
scheduled on the clock fire at the first instruction boundary at or after their cycle;
an asserted interrupt line is delivered through the guest's IDT when IF is set, and
``sti; hlt`` sleeps until the next event instead of spinning.  Conventions guest programs rely on (public contract): flat code at
0x10000, entry at ``_start``, stack pointer at the top of RAM, VMMDev request port 0xD020,
exit device 0xF4, backdoor log port 0x504.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from hgcmlab.devices.vmmdev.abi import (
    VMMDEV_DEFAULT_PORT_BASE,
    VMMDEV_PCI_DEVICE,
    VMMDEV_PCI_DEVICE_ID,
    VMMDEV_PCI_VENDOR,
    VMMDEV_PORT_RANGE_SIZE,
    VMMDEV_RAM_SIZE,
)
from hgcmlab.devices.vmmdev.commands import DEFAULT_HEAP_BUDGET
from hgcmlab.devices.vmmdev.config import CYCLES_PER_MILLISECOND, VMMDevConfig
from hgcmlab.devices.vmmdev.device import VMMDevDevice
from hgcmlab.guest_asm.assembler import AssembledProgram
from hgcmlab.machine.clock import Clock, CostProfile, Scheduler
from hgcmlab.machine.cpu import Cpu, StopInfo, StopKind
from hgcmlab.machine.device import AttachContext, Device
from hgcmlab.machine.layout import ARGS_BASE, FIRMWARE_PAGE, IRQ_VECTOR_BASE, MAX_GUEST_RAM, MMIO_WINDOW_BASE
from hgcmlab.machine.loader import Image, argument_block, image_from_assembled
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.pci import Bar, PciConfigSpace, PciFunction
from hgcmlab.machine.portbus import PortBus, PortConflictError
from hgcmlab.machine.stddevices import BackdoorLogDevice, ExitDevice
from hgcmlab.machine.tracing import ListSink, Tracer
from hgcmlab.runtime.status import status_name
from hgcmlab.services.hgcm import HgcmService
from hgcmlab.services.sharedfolders.reproducible import Reproducible
from hgcmlab.services.sharedfolders.service import SharedFoldersService

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

    def format(self, heading: str = "guest fault") -> str:
        """A multi-line human-readable report, its first line ``heading: description``."""
        where = f"pc {self.pc:#x}"
        if self.symbol:
            where += f" <{self.symbol}>"
        lines = [f"{heading}: {self.description}", f"  at {where}: {self.instruction or '<unreadable>'}"]
        if self.source:
            lines.append(f"  source: {self.source}")
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
    """An x86 machine with guest RAM, standard devices and a VMMDev with Shared Folders.

    ``reproducible`` makes every share show the guest reproducible object and volume
    information (times from the virtual clock, node ids by first use, ...) instead of the
    host's; see services/sharedfolders/reproducible.py and docs/tracing.md.
    ``hgcm_heap_budget``: host heap bytes the HGCM commands in flight of each requestor
    category may use (``VMMDevDevice``'s ``heap_budget``; docs/security.md).
    ``fast_blocks=False`` counts with the Python block hook instead of the native one, and
    ``count_free=False`` starts Unicorn with its instruction count every time (the slower
    previous path); counts, cycles and traces are the same either way (machine/cpu.py).
    ``hgcm_front(machine, shared_folders)`` returns the service registered with the VMMDev
    in place of ``shared_folders`` (a recorder in front of it, or a replay that answers
    instead: machine/trace/record.py, machine/replay.py); it is kept as ``hgcm_service``.
    """

    def __init__(self, mode: int = 64, ram_size: int = DEFAULT_RAM_SIZE, *,
                 vmmdev_port: int = VMMDEV_DEFAULT_PORT_BASE, require_guest_info: bool = False,
                 costs: CostProfile | None = None, vmmdev_config: VMMDevConfig | None = None,
                 tracer: Tracer | None = None, fast_blocks: bool = True, trace_blocks: bool = False,
                 trace_memory: bool = False, trace_instructions: bool = False,
                 reproducible: bool = False,
                 hgcm_heap_budget: int = DEFAULT_HEAP_BUDGET, count_free: bool = True,
                 hgcm_front: Callable[[Machine, HgcmService], HgcmService] | None = None) -> None:
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
        self.image: Image | None = None
        self.devices: list[Device] = []
        self.exit_device = ExitDevice()
        self.log_device = BackdoorLogDevice()
        config = vmmdev_config or VMMDevConfig()
        # Reproducible shares date their objects on the clock GetHostTime reports.
        self.shared_folders = SharedFoldersService(reproducible=Reproducible(
            config.epoch_ms * CYCLES_PER_MILLISECOND, self.clock.now) if reproducible else None)
        if require_guest_info:
            config = dataclasses.replace(config, require_guest_info=True)
        self.vmmdev = VMMDevDevice(config=config, heap_budget=hgcm_heap_budget)
        self._stop_report: str | None = None
        self.hgcm_service: HgcmService = (self.shared_folders if hgcm_front is None
                                          else hgcm_front(self, self.shared_folders))
        self.vmmdev.register_service(self.hgcm_service)
        self.add_device(self.exit_device)
        self.add_device(self.log_device)
        self.add_device(self.vmmdev, base=vmmdev_port)
        self.pci = PciConfigSpace()
        self.add_device(self.pci)
        self.pci.add_function(0, VMMDEV_PCI_DEVICE, 0, self._vmmdev_pci_function(vmmdev_port))
        self._trace_blocks = trace_blocks
        self._closed = False
        #: How a pending cancel() ends the run: (end, description); None: not cancelled.
        self._cancel: tuple[RunEnd, str] | None = None
        if trace_instructions:
            self.cpu.watch_instructions(lambda address, text: self.tracer.emit("instruction", text=text))
        if trace_memory:
            self.cpu.watch_memory(lambda access, address, size, value: self.tracer.emit(
                "memory", access=access, address=address, size=size, value=value))

    def _vmmdev_pci_function(self, port: int) -> PciFunction:
        """VMMDev's PCI identity (reference §1.1): 80EE:CAFE, class 08/80, BAR0 I/O,
        BAR1 the VMMDevMemory MMIO, INTA# routed to the device's IRQ."""
        assert self.vmmdev.mmio_base is not None
        bars = {0: Bar(VMMDEV_PORT_RANGE_SIZE, True, port), 1: Bar(VMMDEV_RAM_SIZE, False, self.vmmdev.mmio_base)}
        return PciFunction(VMMDEV_PCI_VENDOR, VMMDEV_PCI_DEVICE_ID, 0x08, 0x80, bars, interrupt_pin=1,
                           interrupt_line=self.vmmdev.config.irq, relocate_io=self._move_vmmdev_ports)

    def _move_vmmdev_ports(self, bar: int, base: int) -> None:
        """The guest moved the I/O BAR: the ports follow.  Onto ports another device holds
        (a plugin), the VMMDev decodes nothing until the BAR moves to free ports again; the
        other device keeps its ports (traced as ``pci_bar_conflict``)."""
        ranges = self.vmmdev.port_ranges()
        for port_range in ranges:
            self.bus.release(self.vmmdev, port_range.name)
        try:
            self.bus.claim_all(self.vmmdev, [(r, base + r.offset) for r in ranges])
        except PortConflictError as conflict:
            self.tracer.emit("pci_bar_conflict", device=self.vmmdev.name, bar=bar, base=base, reason=str(conflict))
            return
        self.tracer.emit("pci_bar_moved", device=self.vmmdev.name, bar=bar, base=base)

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
        device.attach(AttachContext(self.memory, self.tracer, self._request_exit, self._log_line,
                                    self.clock, self._set_irq, self._request_halt, mmio))
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

    def add_share(self, name: str, host_path: str | Path, *, writable: bool = True,
                  auto_mount: bool = False, create_symlinks: bool = False) -> None:
        """Map host directory ``host_path`` as shared folder ``name``."""
        status = self.shared_folders.add_mapping(name, str(host_path), writable=writable,
                                                 auto_mount=auto_mount, create_symlinks=create_symlinks)
        if status < 0:
            raise ValueError(f"cannot add shared folder {name!r} -> {host_path}: {status_name(status)}")

    def load(self, image: Image | AssembledProgram) -> None:
        """Place ``image`` in RAM, point the CPU at its entry and the stack at the top of RAM."""
        if isinstance(image, AssembledProgram):
            image = image_from_assembled(image)
        if image.mode is not None and image.mode != self.mode:
            raise ValueError(f"{image.name} is a {image.mode}-bit program; this machine runs in {self.mode}-bit mode")
        for address, content in image.segments:
            if not self.memory.contains(address, len(content)):
                raise ValueError(
                    f"{image.name}: segment at {address:#x} ({len(content)} bytes) does not fit in "
                    f"{self.memory.size // 1024} KiB of guest RAM")
            self.memory.write(address, content)
        self.image = image
        if self._trace_blocks:
            from hgcmlab.machine.trace.blocks import trace_blocks

            trace_blocks(self)
        self.cpu.pc = image.entry
        self.cpu.sp = self.memory.size & (0xFFFFFFFFFFFFFFF0 if self.mode == 64 else 0xFFFFFFF0)
        self.set_arguments(self._arguments)

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
        while True:
            if self.cpu.cancel_requested:
                return self._finish(*self._cancelled())
            if self._stop_report is not None:
                return self._finish(*self._stopped())
            ended = self._service_events()
            if ended is not None:
                return self._finish(*ended)
            if budget_cycle is not None and self.clock.now() >= budget_cycle:
                return self._finish(RunEnd.BUDGET, -1, self._fault_report(
                    f"cycle budget of {cycle_budget} exhausted", self.cpu.pc))
            if stop_cycle is not None and self.clock.now() >= stop_cycle:
                return self._finish(RunEnd.PAUSED, 0, None)
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

    def _service_events(self) -> tuple[RunEnd, int, FaultReport | None] | None:
        """Fire due events, then deliver a pending interrupt if the guest accepts it."""
        for event in self.scheduler.pop_due(self.clock.now()):
            self.tracer.emit("event", name=event.name, scheduled_cycle=event.cycle)
            event.action()
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

    def _step_through_shadow(self) -> tuple[RunEnd, int, FaultReport | None] | None:
        """Execute the one instruction after `sti` before any interrupt (x86's interrupt
        shadow); a `hlt` there halts with the interrupt pending and is woken by it."""
        stop = self.cpu.run(1, exact=True)
        if stop.kind is StopKind.HALT:
            self.tracer.emit("cpu_halt", interrupts_enabled=self.cpu.interrupts_enabled)
            return None
        return self._handle_stop(stop)

    def _finish(self, end: RunEnd, code: int, fault: FaultReport | None) -> RunResult:
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
        return FaultReport(description, pc, instruction, str(source) if source else None,
                           image.symbol_at(pc) if image else None, self.cpu.registers())

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

    def _request_exit(self, code: int) -> None:
        self._exit_code = code
        self.cpu.request_stop()

    def _request_halt(self) -> None:
        self.cpu.request_stop(StopKind.HALT)

    def _log_line(self, line: str) -> None:
        self._log_lines.append(line)
        self.tracer.emit("guest_log", line=line)

    def close(self) -> None:
        """Release the engine, host handles and guest RAM (the machine is unusable
        afterwards); closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self.shared_folders.close()
        self.cpu.close()
        self.memory.close()
        for memory in self._mmio_memories:
            memory.close()


def _earliest(*cycles: int | None) -> int | None:
    known = [cycle for cycle in cycles if cycle is not None]
    return min(known) if known else None


__all__ = ["Machine", "RunResult", "RunEnd", "FaultReport", "ListSink", "DEFAULT_RAM_SIZE"]

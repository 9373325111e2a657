"""The machine: CPU, guest RAM, port bus, standard devices, VMMDev and its services.

This is the composition root.  A ``Machine`` is built with a mode (64 or 32), a RAM size
and options; programs are loaded as ``Image``s (or assembled programs); ``run`` executes
until the guest writes the exit device, executes ``hlt``, faults, or exhausts its
instruction budget.  Conventions guest programs rely on (public contract): flat code at
0x10000, entry at ``_start``, stack pointer at the top of RAM, VMMDev request port 0xD020,
exit device 0xF4, backdoor log port 0x504.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from devices.vmmdev.abi import VMMDEV_DEFAULT_PORT_BASE
from devices.vmmdev.device import VMMDevDevice
from machine.cpu import Cpu, StopKind
from machine.device import AttachContext, Device
from guest_asm.assembler import AssembledProgram
from machine.loader import Image
from machine.memory import GuestMemory
from machine.portbus import PortBus
from machine.programs import image_from_assembled
from machine.stddevices import BackdoorLogDevice, ExitDevice
from machine.tracing import ListSink, Tracer
from services.sharedfolders.service import SharedFoldersService

DEFAULT_RAM_SIZE = 64 * 1024 * 1024
MAX_RAM_SIZE = 4 * 1024 * 1024 * 1024
#: Instructions a run may execute before it is stopped as runaway.
DEFAULT_INSTRUCTION_BUDGET = 20_000_000


class RunEnd(Enum):
    """How a run ended."""

    EXIT = "exit"        # the guest wrote the exit device
    HALT = "halt"        # the guest executed hlt
    BUDGET = "budget"    # the instruction budget ran out
    FAULT = "fault"      # the guest faulted


@dataclass(frozen=True)
class FaultReport:
    """Everything needed to understand a guest fault or a runaway guest."""

    description: str
    pc: int
    instruction: str
    source: str | None
    symbol: str | None
    registers: dict[str, int]

    def format(self) -> str:
        """A multi-line human-readable report."""
        where = f"pc {self.pc:#x}"
        if self.symbol:
            where += f" <{self.symbol}>"
        lines = [f"guest fault: {self.description}", f"  at {where}: {self.instruction or '<unreadable>'}"]
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
    """An x86 machine with guest RAM, standard devices and a VMMDev with Shared Folders."""

    def __init__(self, mode: int = 64, ram_size: int = DEFAULT_RAM_SIZE, *,
                 vmmdev_port: int = VMMDEV_DEFAULT_PORT_BASE, require_guest_info: bool = False,
                 tracer: Tracer | None = None) -> None:
        if mode not in (32, 64):
            raise ValueError(f"mode must be 32 or 64, not {mode}")
        if not 0x20000 <= ram_size <= MAX_RAM_SIZE or ram_size % 4096:
            raise ValueError(
                f"RAM size must be a multiple of 4 KiB between 128 KiB and 4 GiB, not {ram_size}")
        self.mode = mode
        self.memory = GuestMemory(ram_size)
        self.tracer = tracer or Tracer()
        self.bus = PortBus(self.tracer)
        self.cpu = Cpu(mode, self.memory, self.bus.read, self.bus.write)
        self.tracer.set_stamp(self._stamp)
        self._exit_code: int | None = None
        self._log_lines: list[str] = []
        self.image: Image | None = None
        self.devices: list[Device] = []
        self.exit_device = ExitDevice()
        self.log_device = BackdoorLogDevice()
        self.shared_folders = SharedFoldersService()
        self.vmmdev = VMMDevDevice(require_guest_info=require_guest_info)
        self.vmmdev.register_service(self.shared_folders)
        self.add_device(self.exit_device)
        self.add_device(self.log_device)
        self.add_device(self.vmmdev, base=vmmdev_port)

    # --- configuration --------------------------------------------------------------------

    def add_device(self, device: Device, base: int | None = None) -> None:
        """Attach ``device``; its relocatable port ranges are placed at ``base``."""
        for port_range in device.port_ranges():
            if port_range.fixed_base is not None:
                self.bus.claim(device, port_range, port_range.fixed_base)
            elif base is None:
                raise ValueError(f"device {device.name} needs a port base for range {port_range.name}")
            else:
                self.bus.claim(device, port_range, base + port_range.offset)
        device.attach(AttachContext(self.memory, self.tracer, self._request_exit, self._log_line))
        self.devices.append(device)

    def add_share(self, name: str, host_path: str | Path, *, writable: bool = True,
                  auto_mount: bool = False, create_symlinks: bool = False) -> None:
        """Map host directory ``host_path`` as shared folder ``name``."""
        status = self.shared_folders.add_mapping(name, str(host_path), writable=writable,
                                                 auto_mount=auto_mount, create_symlinks=create_symlinks)
        if status < 0:
            from runtime.status import status_name

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
        self.cpu.pc = image.entry
        self.cpu.sp = self.memory.size & (0xFFFFFFFFFFFFFFF0 if self.mode == 64 else 0xFFFFFFF0)

    # --- running --------------------------------------------------------------------------

    def run(self, max_instructions: int = DEFAULT_INSTRUCTION_BUDGET) -> RunResult:
        """Run the loaded program until it ends; see ``RunEnd``."""
        if self.image is None:
            raise RuntimeError("no program loaded")
        self._exit_code = None
        budget = max_instructions - self.cpu.instructions
        stop = self.cpu.run(budget)
        self.log_device.flush()
        if stop.kind is StopKind.REQUESTED and self._exit_code is not None:
            end, code, fault = RunEnd.EXIT, self._exit_code, None
        elif stop.kind is StopKind.HALT:
            end, code, fault = RunEnd.HALT, 0, None
        elif stop.kind is StopKind.BUDGET:
            end, code = RunEnd.BUDGET, -1
            fault = self._fault_report(f"instruction budget of {max_instructions} exhausted", stop.pc)
        else:
            end, code = RunEnd.FAULT, -1
            fault = self._fault_report(stop.fault, stop.pc)
        instructions = self.cpu.instructions
        self.tracer.emit("run_end", end=end.value, exit_code=code, instructions=instructions)
        return RunResult(end, code, instructions, self.cycles, list(self._log_lines), fault)

    @property
    def cycles(self) -> int:
        """Virtual cycles so far: one per executed instruction (the cost model comes later)."""
        return self.cpu.instructions

    def _fault_report(self, description: str, pc: int) -> FaultReport:
        disassembly = self.cpu.disassemble(pc)
        instruction = disassembly[0][1] if disassembly else ""
        image = self.image
        source = image.source_at(pc) if image else None
        return FaultReport(description, pc, instruction, str(source) if source else None,
                           image.symbol_at(pc) if image else None, self.cpu.registers())

    def _stamp(self) -> tuple[int, int, int]:
        pc = self.cpu.pc
        instructions = self.cpu.instructions_at(pc)
        return instructions, instructions, pc

    def _request_exit(self, code: int) -> None:
        self._exit_code = code
        self.cpu.request_stop()

    def _log_line(self, line: str) -> None:
        self._log_lines.append(line)
        self.tracer.emit("guest_log", line=line)

    def close(self) -> None:
        """Release guest RAM (the machine is unusable afterwards)."""
        self.cpu.close()
        self.memory.close()


__all__ = ["Machine", "RunResult", "RunEnd", "FaultReport", "ListSink", "DEFAULT_RAM_SIZE"]

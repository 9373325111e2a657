"""Opt-in block trace: one ``block`` event per executed translation block, and drcov export.

``BlockTracer(tracer, mode)`` is the formatting side: called with a block's address and
code bytes it emits ``block`` with ``address``, ``size`` (bytes), ``count`` (instructions)
and, the first time that exact block (address and bytes) runs, ``disasm``: a list of
``[address, "mnemonic operands"]`` (capstone).  Later executions omit ``disasm``; readers
keep the last disassembly seen per address.  Addresses are linear; while the guest runs
paged, the first event of a block also carries ``physical``, where its first byte lies.

The CPU wrapper calls it from its block hook (``Cpu.block_listener``); ``trace_blocks`` or
``Machine(trace_blocks=True)`` installs it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

import capstone

from hgcmlab.machine.tracing import TraceEvent, Tracer

if TYPE_CHECKING:
    from hgcmlab.machine.machine import Machine


class BlockTracer:
    """Emits ``block`` events; disassembles each distinct block once."""

    def __init__(self, tracer: Tracer, mode: int, physical: Callable[[int], int | None] | None = None) -> None:
        """``physical(linear)``: where a linear address lies while the guest runs paged, None
        while it runs unpaged (then no ``physical`` field is written)."""
        self._tracer = tracer
        self._physical = physical
        self._cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if mode == 64 else capstone.CS_MODE_32)
        self._seen: dict[int, bytes] = {}
        self._counts: dict[tuple[int, bytes], int] = {}

    def disassemble(self, address: int, code: bytes) -> list[list[Any]]:
        """``[[address, text], ...]`` for the instructions of ``code`` at ``address``."""
        return [[addr, f"{mnemonic} {operands}".strip()]
                for addr, _size, mnemonic, operands in self._cs.disasm_lite(code, address)]

    def __call__(self, address: int, code: bytes) -> None:
        if not self._tracer.enabled:
            return
        if self._seen.get(address) == code:
            self._tracer.emit("block", address=address, size=len(code), count=self._counts[(address, code)])
            return
        disasm = self.disassemble(address, code)
        self._seen[address] = code
        self._counts[(address, code)] = len(disasm)
        physical = self._physical(address) if self._physical is not None else None
        if physical is not None:
            self._tracer.emit("block", address=address, size=len(code), count=len(disasm), disasm=disasm,
                              physical=physical)
            return
        self._tracer.emit("block", address=address, size=len(code), count=len(disasm), disasm=disasm)


def trace_blocks(machine: Machine) -> BlockTracer:
    """Emit ``block`` events for every block ``machine`` executes from now on (and a
    ``module`` event for the loaded image, for coverage tools)."""
    block_tracer = BlockTracer(machine.tracer, machine.mode, machine.physical_address)
    machine.cpu.block_listener = lambda address, code, _count: block_tracer(address, code)
    image = machine.image
    if image is not None:
        ranges = image.linear_ranges()
        base = min(address for address, _ in ranges)
        end = max(address + size for address, size in ranges)
        machine.tracer.emit("module", name=image.name, base=base, end=end, entry=image.entry)
    return block_tracer




# --- drcov ------------------------------------------------------------------------------------

_BB = struct.Struct("<IHH")


def write_drcov(events: Iterable[TraceEvent], out: IO[bytes], *, default_module: str = "guest") -> int:
    """Write drcov version 2 block coverage (unique blocks) to ``out``; returns the block count.

    Modules come from ``module`` events; blocks outside every module go to one synthetic
    module ``default_module`` spanning them (page aligned).  Raises ``ValueError`` when the
    trace has no ``block`` events."""
    modules: list[tuple[str, int, int, int]] = []
    blocks: dict[int, int] = {}
    for event in events:
        if event.kind == "block":
            address, size = event.fields["address"], event.fields["size"]
            blocks[address] = max(blocks.get(address, 0), size)
        elif event.kind == "module":
            fields = event.fields
            modules.append((str(fields["name"]), fields["base"], fields["end"], fields.get("entry", 0)))
    if not blocks:
        raise ValueError("the trace has no block events (record it with block tracing on)")

    def module_of(address: int) -> int | None:
        for index, (_name, base, end, _entry) in enumerate(modules):
            if base <= address < end:
                return index
        return None

    stray = [address for address in blocks if module_of(address) is None]
    if stray:
        low = min(stray) & ~0xFFF
        high = (max(stray[i] + blocks[stray[i]] for i in range(len(stray))) + 0xFFF) & ~0xFFF
        modules.append((default_module, low, high, 0))
    header = ["DRCOV VERSION: 2", "DRCOV FLAVOR: hgcmlab",
              f"Module Table: version 2, count {len(modules)}",
              "Columns: id, base, end, entry, checksum, timestamp, path"]
    for index, (name, base, end, entry) in enumerate(modules):
        header.append(f"{index:3d}, {base:#018x}, {end:#018x}, {entry:#018x}, 0x00000000, 0x00000000, {name}")
    header.append(f"BB Table: {len(blocks)} bbs")
    out.write(("\n".join(header) + "\n").encode())
    for address in sorted(blocks):
        module = module_of(address)
        assert module is not None
        base = modules[module][1]
        out.write(_BB.pack(address - base, min(blocks[address], 0xFFFF), module))
    return len(blocks)


def read_drcov(data: bytes) -> tuple[list[dict[str, Any]], list[tuple[int, int, int]]]:
    """Parse drcov version 2 ``data``: (modules, [(offset, size, module id)]) - for tests
    and for checking files made elsewhere."""
    lines = data.split(b"\n")
    if lines[0] != b"DRCOV VERSION: 2":
        raise ValueError("not a drcov version 2 file")
    position = len(lines[0]) + 1
    modules: list[dict[str, Any]] = []
    for line in lines[1:]:
        position += len(line) + 1
        text = line.decode()
        if text.startswith("BB Table: "):
            count = int(text.split()[2])
            break
        parts = [part.strip() for part in text.split(",")]
        if len(parts) == 7 and parts[0].isdigit():
            modules.append({"id": int(parts[0]), "base": int(parts[1], 16), "end": int(parts[2], 16),
                            "entry": int(parts[3], 16), "path": parts[6]})
    else:
        raise ValueError("drcov file without a BB table")
    table = data[position:position + count * _BB.size]
    if len(table) != count * _BB.size:
        raise ValueError("drcov BB table is truncated")
    return modules, [_BB.unpack_from(table, i * _BB.size) for i in range(count)]

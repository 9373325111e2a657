"""Boards: functions that build a ``Machine`` core and wire devices and services onto it.

The core (machine/machine.py) knows no particular device.  A board chooses them:

``bare_board``  the core alone: CPU, RAM, clock, port bus, PCI configuration space and the
                standard exit (0xF4) and log (0x504) ports.
``vbox_board``  VirtualBox's: the bare board plus VMMDev (ports at 0xD020, PCI 00:04.0
                80EE:CAFE, VMMDevMemory in the MMIO window) with its HGCM host, the Shared
                Folders service and the guest properties service.  Another HGCM service is one more ``register_service`` line
                in ``VBoxMachine.__init__``.

Every board records in ``Machine.board_config`` the plain data it was built from (mode,
RAM size, options, shares with host paths); ``rebuild`` builds the same machine again from
it, and ``restore`` does so for a snapshot, then restores its state.
``hgcmlab.machine.machine.Machine`` is the bare core; ``VBoxMachine`` (what ``vbox_board`` returns)
is the VirtualBox board, a ``Machine`` with ``vmmdev``, ``shared_folders``, ``hgcm_service``,
``guest_properties`` and ``add_share``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hgcmlab.devices.vmmdev import accel
from hgcmlab.devices.vmmdev.abi import VMMDEV_DEFAULT_PORT_BASE, VMMDEV_PCI_DEVICE
from hgcmlab.devices.vmmdev.commands import DEFAULT_HEAP_BUDGET
from hgcmlab.devices.vmmdev.config import CYCLES_PER_MILLISECOND, HgcmTiming, VMMDevConfig
from hgcmlab.devices.vmmdev.device import VMMDevDevice
from hgcmlab.machine.clock import CostProfile
from hgcmlab.machine.machine import DEFAULT_RAM_SIZE, Machine
from hgcmlab.machine.snapshot import Snapshot, SnapshotError
from hgcmlab.runtime.status import status_name
from hgcmlab.services.guestprops.service import GuestPropService
from hgcmlab.services.hgcm import HgcmService
from hgcmlab.services.sharedfolders.reproducible import Reproducible
from hgcmlab.services.sharedfolders.service import SharedFoldersService

#: A share as a board records it: (name, host path, writable, auto_mount, create_symlinks).
ShareSpec = tuple[str, str, bool, bool, bool]


class VBoxMachine(Machine):
    """The VirtualBox board: the core plus VMMDev with its HGCM host, Shared Folders and guest
    properties (``guest_properties``).

    ``reproducible`` makes every share show the guest reproducible object and volume
    information (times from the virtual clock, node ids by first use, ...) instead of the
    host's; see services/sharedfolders/reproducible.py and docs/tracing.md.
    ``hgcm_heap_budget``: host heap bytes the HGCM commands in flight of each requestor
    category may use (``VMMDevDevice``'s ``heap_budget``; docs/security.md).
    ``hgcm_front(machine, shared_folders)`` returns the service registered with the VMMDev
    in place of ``shared_folders`` (a recorder in front of it, or a replay that answers
    instead: machine/trace/record.py, machine/replay.py); it is kept as ``hgcm_service``.
    ``shares`` are added as ``add_share(name, path)`` would (writable).  The remaining
    keywords go to the core (``Machine``).
    """

    def __init__(self, mode: int = 64, ram_size: int = DEFAULT_RAM_SIZE, *,
                 vmmdev_port: int = VMMDEV_DEFAULT_PORT_BASE, require_guest_info: bool = False,
                 vmmdev_config: VMMDevConfig | None = None, reproducible: bool = False,
                 hgcm_heap_budget: int = DEFAULT_HEAP_BUDGET,
                 hgcm_front: Callable[[Machine, HgcmService], HgcmService] | None = None,
                 shares: Sequence[tuple[str, str | Path]] = (), **core: Any) -> None:
        super().__init__(mode, ram_size, **core)
        config = vmmdev_config or VMMDevConfig()
        if require_guest_info:
            config = dataclasses.replace(config, require_guest_info=True)
        # Reproducible shares date their objects on the clock GetHostTime reports.
        self.shared_folders = SharedFoldersService(reproducible=Reproducible(
            config.epoch_ms * CYCLES_PER_MILLISECOND, self.clock.now) if reproducible else None)
        self.vmmdev = VMMDevDevice(config=config, heap_budget=hgcm_heap_budget)
        self.hgcm_service: HgcmService = (self.shared_folders if hgcm_front is None
                                          else hgcm_front(self, self.shared_folders))
        self.vmmdev.register_service(self.hgcm_service)
        # Guest property timestamps: nanoseconds on the clock GetHostTime reports.
        epoch_ns, now = config.epoch_ms * CYCLES_PER_MILLISECOND, self.clock.now
        self.guest_properties = GuestPropService(lambda: epoch_ns + now())
        self.vmmdev.register_service(self.guest_properties)
        self.add_device(self.vmmdev, base=vmmdev_port)
        self.add_pci(self.vmmdev, VMMDEV_PCI_DEVICE)
        #: The READ/WRITE accelerator (devices/vmmdev/accel.py: its native hook, or its
        #: Python twin where that is unavailable), None when the configuration turns it off
        #: or a front stands between the VMMDev and Shared Folders.
        self.accelerator = (accel.attach(self.cpu, self.bus, self.tracer, self.vmmdev, self.shared_folders)
                            if hgcm_front is None else None)
        costs = core.get("costs")
        self.board_config = {
            "board": "vbox", "mode": mode, "ram_size": ram_size, "vmmdev_port": vmmdev_port,
            "vmmdev_config": _config_to_data(config), "reproducible": reproducible,
            "hgcm_heap_budget": hgcm_heap_budget, "shares": [],
            "costs": None if costs is None else dataclasses.asdict(costs),
            "fast_blocks": core.get("fast_blocks", True), "count_free": core.get("count_free", True),
            "front": None if hgcm_front is None else getattr(hgcm_front, "__name__", "custom"),
        }
        for name, host_path in shares:
            self.add_share(name, host_path)

    def add_share(self, name: str, host_path: str | Path, *, writable: bool = True,
                  auto_mount: bool = False, create_symlinks: bool = False) -> None:
        """Map host directory ``host_path`` as shared folder ``name``."""
        status = self.shared_folders.add_mapping(name, str(host_path), writable=writable,
                                                 auto_mount=auto_mount, create_symlinks=create_symlinks)
        if status < 0:
            raise ValueError(f"cannot add shared folder {name!r} -> {host_path}: {status_name(status)}")
        self.board_config["shares"].append([name, str(host_path), writable, auto_mount, create_symlinks])


def bare_board(mode: int = 64, ram_size: int = DEFAULT_RAM_SIZE, **core: Any) -> Machine:
    """The core alone (no VMMDev): CPU, RAM, PCI configuration space, exit and log ports."""
    return Machine(mode, ram_size, **core)


def vbox_board(mode: int = 64, ram_size: int = DEFAULT_RAM_SIZE, **options: Any) -> VBoxMachine:
    """The VirtualBox board (``VBoxMachine``'s keywords: VMMDev options, ``shares``, and the
    core's ``costs``, ``tracer``, ``fast_blocks``, ``count_free``, trace switches)."""
    return VBoxMachine(mode, ram_size, **options)


#: Boards by the name they record in ``board_config["board"]``.
BOARDS: dict[str, Callable[..., Machine]] = {"bare": bare_board, "vbox": vbox_board}


def rebuild(config: dict, **core: Any) -> Machine:
    """A new machine built as ``config`` (a ``board_config``) says; ``core`` adds run-time
    options that are not part of a machine's state (``tracer``, trace switches).  A board
    built with a custom HGCM front (recording, replay) cannot be rebuilt."""
    try:
        machine = _build(config, core)
    except SnapshotError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise SnapshotError(f"cannot build the snapshot's machine: {error}") from None
    return machine


def _build(config: dict, core: dict[str, Any]) -> Machine:
    board = BOARDS.get(config["board"])
    if board is None:
        raise SnapshotError(f"unknown board {config['board']!r}")
    if config.get("front") is not None:
        raise SnapshotError(f"a board with the HGCM front {config['front']!r} cannot be rebuilt")
    options: dict[str, Any] = dict(core)
    for name in ("fast_blocks", "count_free"):
        if name in config:
            options.setdefault(name, bool(config[name]))
    if config.get("costs") is not None:
        options["costs"] = CostProfile.from_mapping(config["costs"])
    if config["board"] == "vbox":
        options.update(vmmdev_port=int(config["vmmdev_port"]), reproducible=bool(config["reproducible"]),
                       hgcm_heap_budget=int(config["hgcm_heap_budget"]),
                       vmmdev_config=_config_from_data(config["vmmdev_config"]))
    machine = board(int(config["mode"]), int(config["ram_size"]), **options)
    try:
        for name, path, writable, auto_mount, symlinks in config.get("shares", []):
            machine.add_share(str(name), str(path), writable=bool(writable),  # type: ignore[attr-defined]
                              auto_mount=bool(auto_mount), create_symlinks=bool(symlinks))
    except (TypeError, ValueError):
        machine.close()
        raise
    return machine


def restore(snapshot: Snapshot, **core: Any) -> tuple[Machine, list[str]]:
    """A new machine in ``snapshot``'s state and the problem lines of its restore (e.g. a
    share's host files that changed); raises ``SnapshotError`` when it cannot be built."""
    machine = rebuild(snapshot.config, **core)
    try:
        problems = machine.restore(snapshot)
    except SnapshotError:
        machine.close()
        raise
    return machine, problems


def _config_to_data(config: VMMDevConfig) -> dict:
    data = dataclasses.asdict(config)
    timing = data["timing"]
    timing["function_cycles"] = [[int(k), int(v)] for k, v in sorted(config.timing.function_cycles.items())]
    timing["async_functions"] = sorted(config.timing.async_functions)
    return data


def _config_from_data(data: dict) -> VMMDevConfig:
    timing = dict(data["timing"])
    timing["function_cycles"] = {int(k): int(v) for k, v in timing["function_cycles"]}
    timing["async_functions"] = frozenset(int(f) for f in timing["async_functions"])
    return VMMDevConfig(**{**data, "timing": HgcmTiming(**timing)})

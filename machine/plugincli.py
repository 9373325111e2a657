"""Device plugins on the command line: ``run --device NAME[@PORT]`` and ``hgcmlab devices``
(plugins are registered under the ``hgcmlab.devices`` entry-point group)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import TextIO

from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.clicommon import UsageError
from hgcmlab.machine.device import DEVICE_ENTRY_POINT_GROUP, Device
from hgcmlab.machine.machine import Machine


def plugin_devices() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=DEVICE_ENTRY_POINT_GROUP)}


def _builtin_ports(machine: Machine, device: Device) -> str:
    """Where a machine's own ``device`` sits, e.g. ``port 0xf4`` or ``ports 0xd020, 0xd028``."""
    bases = [machine.bus.base_of(device, r.name) for r in device.port_ranges()]
    text = ", ".join(f"{base:#x}" for base in bases if base is not None)
    return f"port{'s' if len(bases) > 1 else ''} {text}"


def _load_plugin(name: str, entry_point: metadata.EntryPoint) -> Device:
    """Import and instantiate the plugin ``name``; anything that goes wrong (import error,
    constructor failure, not a ``Device``) is a one-line UsageError."""
    try:
        device = entry_point.load()()
    except Exception as error:  # noqa: BLE001 - third-party code: any failure is reported in one line
        raise UsageError(f"device {name!r} ({entry_point.value}) cannot be loaded: "
                         f"{type(error).__name__}: {error}") from None
    if not isinstance(device, Device):
        raise UsageError(f"device {name!r} ({entry_point.value}) is not a hgcmlab.machine.device.Device "
                         "(it needs name, port_ranges, attach, io_read and io_write)")
    return device


def attach_plugins(machine: Machine, specs: Sequence[str], out: TextIO, quiet: bool) -> None:
    """Attach ``--device NAME[@PORT]`` plugins; without PORT the machine picks the first free
    block (``PortBus.free_base``) and the choice is printed (unless ``quiet``)."""
    available = plugin_devices()
    builtin = {device.name: device for device in machine.devices}
    for spec in specs:
        name, _, port_text = spec.partition("@")
        if name in builtin:
            raise UsageError(f"device {name!r} is already on this board ({_builtin_ports(machine, builtin[name])}) "
                             "and a board has one of it; guest programs use it without --device")
        if name not in available:
            known = ", ".join(sorted(n for n in available if n not in builtin)) or "none"
            raise UsageError(f"unknown device {name!r} (installed plugins: {known})")
        try:
            base = int(port_text, 0) if port_text else None
        except ValueError:
            raise UsageError(f"device {spec!r}: {port_text!r} is not a port number") from None
        device = _load_plugin(name, available[name])
        try:
            machine.add_device(device, base)
        except ValueError as error:
            raise UsageError(f"device {spec!r}: {error}") from None
        except Exception as error:  # noqa: BLE001 - a plugin's port_ranges/attach is third-party code
            raise UsageError(f"device {spec!r} cannot be attached: {type(error).__name__}: {error}") from None
        if not quiet:
            placed = ", ".join(f"{r.name} {machine.bus.base_of(device, r.name):#x}" for r in device.port_ranges())
            print(f"device {name}: {placed or 'no ports'}", file=out)


def run_devices_command(out: TextIO) -> int:
    """One line per installed device: name, entry point, and for the devices every machine
    already has, where they sit (those cannot be added with --device)."""
    available = plugin_devices()
    machine = vbox_board(64, 0x20000)
    try:
        builtin = {device.name: device for device in machine.devices}
        for name, entry_point in sorted(available.items()):
            where = (f"\tbuilt in ({_builtin_ports(machine, builtin[name])}), always present"
                     if name in builtin else "")
            print(f"{name}\t{entry_point.value}{where}", file=out)
    finally:
        machine.close()
    return 0


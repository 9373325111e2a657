"""hgcmlab: a cycle-aware x86 machine running guests against VirtualBox's VMMDev/HGCM host.

This package is the one import name the project installs.  Its subpackages map the source
folders (``hgcmlab.machine``, ``hgcmlab.devices.vmmdev``, ``hgcmlab.services.sharedfolders``,
``hgcmlab.runtime``, ``hgcmlab.guest_asm``; see docs/design.md, "Namespace") and are
private by convention: their names may change between versions.  The names below are the
public API and keep their meaning:

* the machine: ``Machine`` (the core), ``RunResult``, ``RunEnd``; boards that wire devices
  onto it: ``vbox_board`` (VMMDev, Shared Folders, guest properties; returns a
  ``VBoxMachine``) and ``bare_board``;
* devices: ``Device`` (the plugin contract), ``AttachContext``, ``PortRange``;
* host services: ``HgcmService`` (the service contract), ``HgcmCall``, ``SvcParm``;
* tracing: ``Tracer``, ``TraceEvent``, ``ListSink``, ``JsonLinesSink``;
* loading: ``Image``, ``LoadError``, ``image_from_file``, ``flat_image``, ``elf_image``,
  and guest assembly: ``assemble``, ``AssembledProgram``, ``AssemblyError``.

Each is imported on first use, so ``import hgcmlab.<anything>`` stays as cheap as the module
it names (the console command catches a Ctrl-C while the heavy modules load).
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "Machine": "hgcmlab.machine.machine",
    "RunResult": "hgcmlab.machine.machine",
    "RunEnd": "hgcmlab.machine.machine",
    "vbox_board": "hgcmlab.machine.boards",
    "bare_board": "hgcmlab.machine.boards",
    "VBoxMachine": "hgcmlab.machine.boards",
    "Device": "hgcmlab.machine.device",
    "AttachContext": "hgcmlab.machine.device",
    "PortRange": "hgcmlab.machine.device",
    "HgcmService": "hgcmlab.services.hgcm",
    "HgcmCall": "hgcmlab.services.hgcm",
    "SvcParm": "hgcmlab.services.hgcm",
    "Tracer": "hgcmlab.machine.tracing",
    "TraceEvent": "hgcmlab.machine.tracing",
    "ListSink": "hgcmlab.machine.tracing",
    "JsonLinesSink": "hgcmlab.machine.tracing",
    "Image": "hgcmlab.machine.loader",
    "LoadError": "hgcmlab.guest_asm.errors",
    "image_from_file": "hgcmlab.machine.loader",
    "flat_image": "hgcmlab.machine.loader",
    "elf_image": "hgcmlab.machine.loader",
    "assemble": "hgcmlab.guest_asm.assembler",
    "AssembledProgram": "hgcmlab.guest_asm.assembler",
    "AssemblyError": "hgcmlab.guest_asm.errors",
}

__all__ = [
    "AssembledProgram", "AssemblyError", "AttachContext", "Device", "HgcmCall", "HgcmService", "Image",
    "JsonLinesSink", "ListSink", "LoadError", "Machine", "PortRange", "RunEnd", "RunResult", "SvcParm",
    "TraceEvent", "Tracer", "VBoxMachine", "assemble", "bare_board", "elf_image", "flat_image",
    "image_from_file", "vbox_board",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562); other names do not exist."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'hgcmlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""The HGCM accelerator: Shared Folders READ and WRITE completed in the CPU's OUT hook.

An optional speed-up (issue 15).  ``native/hgcm_accel.c`` is a Unicorn OUT hook: for an
``out`` of a request address to the VMMDev request port it completes a Shared Folders READ
or WRITE itself (one ``preadv``/``pwritev`` between the host file and guest RAM, the changed
parameters, ``result`` and DONE written back, the port's and the call's cycles charged), and
hands every other port access, every other request and every call it does not model to the
CPU's Python OUT hook, unchanged.  Guests, traces and counts cannot tell which path ran:
cycle counts, instruction counts, guest memory, host files and the run summary are
identical (tests/device/test_accel.py runs the same guests both ways and compares).

When it takes a call.  Exactly when the device's own path would complete it successfully inside
the ``out`` (the direct path, device.py: ``_direct_call``, or for a scattered page list the
bounce buffers of the general path, which move the same bytes), and nobody could observe
the difference:

* nobody traces anything the call would emit (``RELEVANT_KINDS``), no debugger watches
  device writes, no host syscall is being fault-injected (runtime/faults.py), the Shared
  Folders service is the one the VMMDev calls (no recording or replay front);
* the device: HGCM enabled, the guest-info gate open, the direct path on, READ/WRITE not
  asynchronous, the heap budget and the client's call limit admit it, no command pending at
  the request's address (the completion's HGCM event is raised by Python, through a
  callback, unless it is pending already and raising it would change nothing);
* the CPU: not in an exact slice or on Unicorn's count, and the call's cycles do not reach
  the next deadline (the device's path then stops the run exactly there);
* the call: an HGCMCall32/64 with the five parameters of the right types, a LinAddr buffer
  of an unpaged guest, or a page list (PageList type) that passes the general path's checks
  and is either one consecutive run (``direct.plan``'s rules) or at most
  ``MAX_SCATTER_PAGES`` page-aligned RAM pages in any order, none overlapping the request
  (params.py: ``_page_list``, copied page by page as VirtualBox's
  vmmdevR3HgcmGuestBufferRead/-Write do, which one ``preadv``/``pwritev`` over the pages
  reproduces, repeated pages included: later bytes land last in both; except a READ into
  scattered pages that also travel to the host, whose copy-back would restore a repeated
  page, left to Python), a handle
  this client opened under this root and that the service exported (below), cb within the
  buffer and above zero, and the host system call succeeding.  A failing ``pread``, or a
  ``pwrite`` that wrote nothing, changes nothing: Python takes the call and reports the
  status.

Handles.  The accelerator knows only handles the service exported to it: on a miss the hook
records (client, root, handle) and Python asks the service (``native_handle``) the next
time it runs.  An export carries the service's generation (``native_generation``), which
the service bumps whenever a handle, mapping or client may have changed; an entry of an
older generation is never used.

Threads.  The hook does not take the service's lock (the GIL is not held while Unicorn
runs): a host thread must not close the service (``close``, ``load_state``) while a guest
runs.  Mapping changes from another thread are safe: they close no file, and the next
call after the generation moved goes to Python.

Refresh.  The mirrored device state (``Accelerator.sync``) is recomputed whenever Python may
have changed it: after every access Python handled to one of the VMMDev's ports (the only
way a guest changes the device's state), after any port access that moved a port (a BAR
write), when the trace sinks change, and at the start and end of every run.  What changes
without such an access (an asynchronous completion, a timer) can only make the mirror more
cautious than the truth (a command no longer pending, an event newly pending: the hook then
has Python raise it again, which changes nothing), never less.  The CPU's side (a deadline,
an exact slice, Unicorn's count) and a handle's validity (the service's generation) are read
live by the hook.

Building.  The C source is compiled once per content with the system's C compiler
(``guest_asm/c/compiler.find_compiler``: ``$HGCMLAB_CC``, gcc, clang) into the cache
directory, with a generated prelude of every ABI constant and struct layout it uses, taken
from the ctypes declarations (accel_layout.py).  Without a compiler, on a host other than
x86-64 Linux, or with ``HGCMLAB_NATIVE=0`` in the environment, ``available()`` is False.

The Python twin.  Where the native hook is unavailable or ``VMMDevConfig.native`` is False,
the accelerator installs ``accel_python.PythonHook`` instead: the same hook in Python, with
the same checks and effects, reading the same mirror (copied into Python values at every
``sync``).  ``VMMDevConfig.accelerator=False`` installs no hook at all: every call takes the
device's own path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from unicorn.unicorn_py3.unicorn import uclib

from hgcmlab.devices.vmmdev import abi, accel_python
from hgcmlab.devices.vmmdev.accel_layout import (
    MAX_HANDLES,
    MAX_PENDING,
    AccelHandle,
    AccelState,
    wire_constants,
)
from hgcmlab.devices.vmmdev.commands import HeapCategory
from hgcmlab.machine import fastblock
from hgcmlab.machine.portbus import PORT_SPACE_SIZE
from hgcmlab.runtime import fs
from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import ShflFn

if TYPE_CHECKING:
    from hgcmlab.devices.vmmdev.device import VMMDevDevice
    from hgcmlab.machine.cpu import Cpu
    from hgcmlab.machine.portbus import PortBus
    from hgcmlab.machine.tracing import Tracer
    from hgcmlab.services.sharedfolders.service import SharedFoldersService

SOURCE = Path(__file__).with_name("native") / "hgcm_accel.c"
#: The environment switch: "0" turns the accelerator off everywhere.
ENVIRONMENT = "HGCMLAB_NATIVE"
#: Event kinds the device's path of an accelerated call would emit: while anyone wants one of
#: them, every call goes through Python.
RELEVANT_KINDS = frozenset({"port_io", "charge", "vmmdev_request", "vmmdev_event", "hgcm_call", "hgcm_complete",
                            "hgcm_service_error", "linaddr_translation", "hgcm_rejected"})
_READ, _WRITE = int(ShflFn.READ), int(ShflFn.WRITE)
_OUT_HOOK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p)
_NOTIFY = ctypes.CFUNCTYPE(None)


_C_TYPES = {ctypes.c_uint64: "uint64_t", ctypes.c_int64: "int64_t", ctypes.c_uint32: "uint32_t",
            ctypes.c_int32: "int32_t", AccelHandle: "struct accel_handle"}


def _c_struct(name: str, layout: type[ctypes.Structure]) -> str:
    """The C declaration of ``layout`` with a compile-time check of every offset."""
    lines = [f"struct {name} {{"]
    checks = [f"_Static_assert(sizeof(struct {name}) == {ctypes.sizeof(layout)}, \"{name}\");"]
    for field, kind in layout._fields_:
        length = getattr(kind, "_length_", None)
        element = kind._type_ if length is not None else kind
        suffix = f"[{length}]" if length is not None else ""
        lines.append(f"    {_C_TYPES[element]} {field}{suffix};")
        checks.append(f"_Static_assert(offsetof(struct {name}, {field}) == {getattr(layout, field).offset}, "
                      f"\"{name}.{field}\");")
    return "\n".join([*lines, "};", *checks, ""])


def prelude() -> str:
    """The generated C text prepended to the source: constants and layouts, all from the
    ABI and ctypes declarations."""
    lines = ["#include <stddef.h>", "#include <stdint.h>"]
    lines += [f"#define {name} {value:#x}ULL" if value >= 0 else f"#define {name} ({value}LL)"
              for name, value in wire_constants().items()]
    lines += [_c_struct("accel_handle", AccelHandle), _c_struct("accel", AccelState),
              _c_struct("cpu_state", fastblock.State)]
    return "\n".join(lines) + "\n#line 1 \"hgcm_accel.c\"\n"


class NativeUnavailable(Exception):
    """Why the accelerator cannot be used here (one line)."""


def _cache_directory() -> Path:
    from hgcmlab.guest_asm.c.compiler import cache_directory
    return cache_directory() / "native"


def build() -> Path:
    """The shared library for this source and compiler, compiled unless cached;
    ``NativeUnavailable`` when it cannot be."""
    from hgcmlab.guest_asm.c.compiler import COMPILE_TIMEOUT, CompilerMissing, compiler_identity, find_compiler
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise NativeUnavailable(f"no native accelerator on {platform.system()}/{platform.machine()}")
    try:
        compiler = find_compiler()
    except CompilerMissing as error:
        raise NativeUnavailable(str(error)) from None
    text = prelude() + SOURCE.read_text(encoding="utf-8")
    flags = ["-O2", "-shared", "-fPIC", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-x", "c"]
    digest = hashlib.sha256("\0".join([compiler_identity(compiler), *flags, text]).encode()).hexdigest()
    directory = _cache_directory()
    target = directory / f"hgcm_accel-{digest}.so"
    if target.exists():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        temporary = directory / f".hgcm_accel-{digest}.{os.getpid()}.so"
        result = subprocess.run([compiler, *flags, "-o", str(temporary), "-"], input=text, capture_output=True,
                                text=True, check=False, timeout=COMPILE_TIMEOUT)
        if result.returncode != 0:
            temporary.unlink(missing_ok=True)
            lines = result.stderr.strip().splitlines()
            first = next((line for line in lines if "error" in line), lines[0] if lines else
                         f"exit status {result.returncode}")
            raise NativeUnavailable(f"the native accelerator did not compile: {first}")
        os.replace(temporary, target)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise NativeUnavailable(f"the native accelerator could not be built: {error}") from None
    return target


@cache
def _library() -> ctypes.CDLL | NativeUnavailable:
    try:
        return ctypes.CDLL(str(build()))
    except NativeUnavailable as error:
        return error
    except OSError as error:
        return NativeUnavailable(f"the native accelerator could not be loaded: {error}")


def unavailable_reason() -> str | None:
    """None when the accelerator can be used here, else why not (one line)."""
    if os.environ.get(ENVIRONMENT, "1") == "0":
        return f"{ENVIRONMENT}=0"
    library = _library()
    return str(library) if isinstance(library, NativeUnavailable) else None


def available() -> bool:
    """Whether machines built now get the accelerator (see ``unavailable_reason``)."""
    return unavailable_reason() is None


class Accelerator:
    """The accelerator of one machine: its hook (the native one with ``native``, else its
    Python twin), the mirror of the device's state and the folding of its counts into the
    device's."""

    def __init__(self, cpu: Cpu, bus: PortBus, tracer: Tracer, device: VMMDevDevice,
                 service: SharedFoldersService, *, native: bool) -> None:
        self._cpu, self._bus, self._tracer, self._device, self._service = cpu, bus, tracer, device, service
        #: Whether the hook is the native one (else accel_python.PythonHook).
        self.native = native
        self.state = AccelState()
        memory = device.attached_memory
        self.state.ram, self.state.ram_size = memory.host_address, memory.size
        #: The service's generation counter (an export of an older generation is stale).
        self.generation_counter = service.native_generation
        self.state.generation = ctypes.addressof(service.native_generation)
        self.state.cpu = cpu.counters_address
        # The device's configuration is frozen: what it says is read once.
        config = device.config
        timing = config.timing
        self.state.port_cycles = config.request_port_cycles
        self.state.read_cycles = timing.cost(_READ, 0, service.function_cycles(_READ))
        self.state.write_cycles = timing.cost(_WRITE, 0, service.function_cycles(_WRITE))
        self.state.byte_cycles = timing.byte_cycles
        self._configured = (config.accelerator and config.direct_buffers
                            and not timing.is_async(_READ) and not timing.is_async(_WRITE))
        self.state.reg_read = ctypes.cast(uclib.uc_reg_read, ctypes.c_void_p).value or 0
        self._folded = (0, 0, 0, 0)
        self._port_generation: int | None = None
        self._device_ports: frozenset[int] = frozenset()
        self._next_slot = 0
        self._pending_seen: tuple[int, ...] | None = None
        self._fallback = _OUT_HOOK(cpu.python_out_hook)
        self.state.fallback = ctypes.cast(self._fallback, ctypes.c_void_p).value or 0
        self._notify = _NOTIFY(self.raise_event)
        self.state.notify = ctypes.cast(self._notify, ctypes.c_void_p).value or 0
        device.native_unfolded = self.unfolded
        #: Bumped whenever an entry of ``state.handles`` changes (the Python hook then
        #: rebuilds its lookup table).
        self.handle_edits = 0
        self._python: accel_python.PythonHook | None = None
        if native:
            library = _library()
            assert not isinstance(library, NativeUnavailable), "native Accelerator built without checking available()"
            hook = ctypes.cast(library.hgcmlab_accel_out, ctypes.c_void_p).value or 0
        else:
            self._python = accel_python.PythonHook(self, cpu, memory)
            # Kept here: Unicorn holds only the callback's address.
            self._python_callback = _OUT_HOOK(self._python.out)
            hook = ctypes.cast(self._python_callback, ctypes.c_void_p).value or 0
        cpu.install_native_out_hook(hook, ctypes.addressof(self.state), self.sync)
        tracer.add_change_listener(lambda: self.sync(None))

    # --- the mirror ----------------------------------------------------------------------

    def sync(self, port: int | None) -> None:
        """Fold the calls the hook took into the device's counts, export a missed handle and
        recompute the mirror: with None (a run starts or ends, the trace sinks changed), or
        after a Python access to ``port`` when that is one of the VMMDev's or the ports moved
        (the accesses that can change the device's state or where its ports are; a
        handle's export checks its own validity, the deadline is read live)."""
        if self._port_generation != self._bus.generation:
            self._locate_ports()
        elif port is not None and port not in self._device_ports:
            return
        state = self.state
        if sum(self._taken()) != sum(self._folded):
            self.fold()
        if state.miss_valid:
            state.miss_valid = 0
            self._export(state.miss_client, state.miss_root, state.miss_handle)
        state.armed = int(self._armable())
        if state.armed:
            self._mirror()
        if self._python is not None:
            self._python.refresh()

    def _armable(self) -> bool:
        device = self._device
        events = device.events
        wanted = self._tracer.wanted_kinds
        return (self._configured and device.hgcm_enabled
                and (events.additions_ok or not device.require_guest_info)
                and wanted is not None and wanted.isdisjoint(RELEVANT_KINDS)
                and device.attached_memory.write_observer is None
                and fs.SYSCALLS["pread"] is os.pread and fs.SYSCALLS["pwrite"] is os.pwrite
                and fs.SYSCALLS["preadv"] is os.preadv
                and device.hgcm.service(self._service.name) is self._service
                and len(device.commands.pending) <= MAX_PENDING)

    def _mirror(self) -> None:
        device, state = self._device, self.state
        state.event_pending = int(self._event_pending())
        state.requestor_info = int(device.requestor_info)
        commands = device.commands
        for category in HeapCategory:
            state.heap_available[category] = commands.heap_available(category)
        pending = tuple(commands.pending)
        state.pending_count = len(pending)
        for index, address in enumerate(pending):
            state.pending[index] = address
        if pending != self._pending_seen:
            self._pending_seen = pending
            for index in range(min(state.handle_count, MAX_HANDLES)):
                entry = state.handles[index]
                entry.admitted = int(self._admitted(entry.client))
            self.handle_edits += 1

    def _locate_ports(self) -> None:
        """Where the VMMDev's ports are (they move only with a claim: a BAR write)."""
        bus, device = self._bus, self._device
        port = bus.base_of(device, "request")
        self._port_generation = bus.generation
        self._device_ports = frozenset(bus.ports_of(device))
        self.state.port = PORT_SPACE_SIZE if port is None else port   # beyond every port: never matches

    def _event_pending(self) -> bool:
        """Whether raising the HGCM event now would change nothing (VMMDevNotifyGuest on a
        pending event; a legacy guest's event word is rewritten every time)."""
        events = self._device.events
        return events.pending & abi.VMMDEV_EVENT_HGCM != 0 and not events.legacy

    def raise_event(self) -> None:
        """The hook completed a call while the HGCM event was not pending: raise it as the
        device's path does at the end of the call (an exception ends the run)."""
        try:
            self._device.events.notify(abi.VMMDEV_EVENT_HGCM)
            self.state.event_pending = int(self._event_pending())
        except BaseException as error:  # noqa: BLE001 - re-raised by Cpu.run
            self._cpu.abort_run(error)

    def _admitted(self, client_id: int) -> bool:
        hgcm = self._device.hgcm
        client = hgcm.client(client_id)
        if client is None:
            return False
        pending = [command.call for command in self._device.commands.pending.values()]
        return hgcm.admit_call(client, pending) == Status.VINF_SUCCESS

    def _export(self, client_id: int, root: int, handle: int) -> None:
        found = self._service.native_handle(client_id, root, handle)
        if found is None:
            return
        fd, writable = found
        state = self.state
        slot = self._next_slot
        self._next_slot = (slot + 1) % MAX_HANDLES
        entry = state.handles[slot]
        entry.client, entry.root, entry.handle = client_id, root, handle
        entry.generation = self._service.native_generation.value
        entry.fd, entry.writable, entry.admitted = fd, int(writable), int(self._admitted(client_id))
        self.handle_edits += 1
        state.handle_count = max(state.handle_count, slot + 1)

    # --- counts --------------------------------------------------------------------------

    def _taken(self) -> tuple[int, int, int, int]:
        state = self.state
        if self._python is not None:
            reads, writes, scattered_reads, scattered_writes = self._python.counts
            return reads, writes, scattered_reads, scattered_writes
        return state.reads, state.writes, state.scattered_reads, state.scattered_writes

    def fold(self) -> None:
        """Add the calls the hook took since the last fold to the device's counts (the
        direct path's kind to ``direct_calls`` too, as that path counts them)."""
        taken = self._taken()
        folded = self._folded
        if taken == folded:
            return
        # Folded first, counted second: a reader on another thread (calls_so_far) may see
        # a few calls too few for a moment, never twice.
        self._folded = taken
        reads, writes, scattered_reads, scattered_writes = (now - before for now, before in zip(taken, folded))
        calls = {_READ: reads + scattered_reads, _WRITE: writes + scattered_writes}
        self._device.count_native_calls(self._service, calls, direct=reads + writes)

    def unfolded(self) -> int:
        """Calls the hook took that the device's counts do not hold yet."""
        return sum(self._taken()) - sum(self._folded)

    @property
    def calls(self) -> int:
        """Calls the hook took so far."""
        return sum(self._taken())


def attach(cpu: Cpu, bus: PortBus, tracer: Tracer, device: VMMDevDevice,
           service: SharedFoldersService) -> Accelerator | None:
    """The accelerator for this machine (with the native hook when the configuration asks
    for it and it is available, else the Python one), or None when it is off."""
    config = device.config
    if not config.accelerator:
        return None
    return Accelerator(cpu, bus, tracer, device, service, native=config.native and available())

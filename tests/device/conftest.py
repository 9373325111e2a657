"""Device-level fixtures: a VMMDev attached to guest RAM and a tracer, no CPU."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from hgcmlab.devices.vmmdev.device import VMMDevDevice
from hgcmlab.machine.device import AttachContext
from hgcmlab.machine.memory import GuestMemory
from hgcmlab.machine.tracing import ListSink, Tracer
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import HgcmCall, HgcmService, _AsyncMarker

REQUEST_ADDRESS = 0x2000
RAM_SIZE = 1024 * 1024


@dataclass
class ScriptedService(HgcmService):
    """A test service: records each call and runs ``behaviour`` on it."""

    name: str = "TestService"
    calls: list[HgcmCall] = field(default_factory=list)
    connected: list[int] = field(default_factory=list)
    disconnected: list[int] = field(default_factory=list)
    behaviour: Callable[[HgcmCall], int | _AsyncMarker] = lambda call: Status.VINF_SUCCESS

    def connect(self, client_id: int, requestor: int) -> int:
        self.connected.append(client_id)
        return Status.VINF_SUCCESS

    def disconnect(self, client_id: int) -> None:
        self.disconnected.append(client_id)

    def call(self, call: HgcmCall) -> int | _AsyncMarker:
        self.calls.append(call)
        return self.behaviour(call)


class DeviceRig:
    """VMMDev on 1 MiB of RAM: put requests in memory, poke the port, read results."""

    def __init__(self, *, require_guest_info: bool = False) -> None:
        self.memory = GuestMemory(RAM_SIZE)
        self.memory.fill(0, RAM_SIZE, 0x55)
        self.sink = ListSink()
        self.tracer = Tracer()
        self.tracer.add_sink(self.sink)
        self.device = VMMDevDevice(require_guest_info=require_guest_info)
        self.service = ScriptedService()
        self.device.register_service(self.service)
        self.device.attach(AttachContext(self.memory, self.tracer))

    def submit(self, request: bytes | bytearray, address: int = REQUEST_ADDRESS) -> bytes:
        """Place ``request`` at ``address``, OUT its address to the request port, return the
        request bytes as the guest sees them afterwards."""
        self.memory.write(address, request)
        self.device.io_write("request", 0, 4, address)
        return self.memory.read(address, len(request))

    def connect(self) -> int:
        """Connect a client to the scripted service; returns its id."""
        from hgcmlab.devices.vmmdev import builder

        after = self.submit(builder.connect(self.service.name))
        assert struct.unpack_from("<i", after, 28)[0] == Status.VINF_SUCCESS
        return struct.unpack_from("<I", after, 164)[0]


@pytest.fixture
def rig() -> DeviceRig:
    return DeviceRig()


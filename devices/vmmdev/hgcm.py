"""The HGCM host: registered services, connected clients and client ids.

Client ids come from one counter shared by all services, starting at 1 and never reused
(VirtualBox's HGCM object handles); disconnected ids stay dead.  Client limits are per
requestor category (kernel / root / user), as HGCM.cpp applies them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from hgcmlab.devices.vmmdev.abi import VMMDEV_REQUESTOR_LEGACY
from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import HgcmCall, HgcmService, ServiceTracer

#: Largest client id; ids live in 1..0x7FFFFFFF.
_MAX_CLIENT_ID = 0x7FFFFFFF


class ClientCategory(IntEnum):
    """Requestor categories HGCM limits clients by."""

    KERNEL = 0
    ROOT = 1
    USER = 2


#: Default client limits per category (HGCM.cpp); a service may declare its own.
DEFAULT_CLIENT_LIMITS = {ClientCategory.KERNEL: 2048, ClientCategory.ROOT: 1024, ClientCategory.USER: 1024}


def client_category(requestor: int) -> ClientCategory:
    """The category of a client from its requestor value (legacy counts as kernel)."""
    if requestor == VMMDEV_REQUESTOR_LEGACY:
        return ClientCategory.KERNEL
    usr = requestor & 0x7
    if usr in (1, 2):
        return ClientCategory.KERNEL
    if usr in (3, 4):
        return ClientCategory.ROOT
    return ClientCategory.USER


#: Default limits of concurrently pending calls per client, by category (HGCM.cpp, §4.8).
DEFAULT_CALL_LIMITS = {ClientCategory.KERNEL: 8192, ClientCategory.ROOT: 4096, ClientCategory.USER: 2048}


@dataclass
class Client:
    """A connected client."""

    client_id: int
    service: HgcmService
    category: ClientCategory


class HgcmHost:
    """Service registry and client table."""

    def __init__(self) -> None:
        self._services: dict[str, HgcmService] = {}
        self._clients: dict[int, Client] = {}
        self._last_id = 0
        self._tracer: ServiceTracer | None = None

    def attach_tracer(self, tracer: ServiceTracer) -> None:
        """Give every registered service, and every one registered later, ``tracer``."""
        self._tracer = tracer
        for service in self._services.values():
            service.attach_tracer(tracer)

    def register(self, service: HgcmService) -> None:
        """Make ``service`` reachable under ``service.name``."""
        if not service.name:
            raise ValueError("an HGCM service needs a name")
        if service.name in self._services:
            raise ValueError(f"an HGCM service named {service.name!r} is already registered")
        self._services[service.name] = service
        if self._tracer is not None:
            service.attach_tracer(self._tracer)

    def service(self, name: str) -> HgcmService | None:
        """The service registered under ``name`` (exact, case-sensitive), if any."""
        return self._services.get(name)

    def client(self, client_id: int) -> Client | None:
        """The connected client with ``client_id``, if any."""
        return self._clients.get(client_id)

    @property
    def clients(self) -> dict[int, Client]:
        """Connected clients by id (read-only view by convention)."""
        return self._clients

    @staticmethod
    def admit_call(client: Client, pending: Iterable[HgcmCall | None]) -> int:
        """Whether ``client`` may start one more call, given the calls still pending on the
        device: VERR_HGCM_TOO_MANY_CLIENT_CALLS (synchronous) when the new call would bring
        its in-flight count to its category's limit (``call_limits`` of the service, else
        ``DEFAULT_CALL_LIMITS``), else VINF_SUCCESS.  So at most limit - 1 calls are in
        flight, as in Main/src-client/HGCM.cpp:HGCMService::GuestCall, which counts the new
        call first and admits it only while that count stays below the limit."""
        limits = getattr(client.service, "call_limits", DEFAULT_CALL_LIMITS)
        in_flight = sum(1 for call in pending if call is not None and call.client_id == client.client_id)
        if in_flight + 1 >= limits.get(client.category, 0):
            return Status.VERR_HGCM_TOO_MANY_CLIENT_CALLS
        return Status.VINF_SUCCESS

    def _next_id(self) -> int:
        candidate = self._last_id
        while True:
            candidate = (candidate + 1) & 0xFFFFFFFF
            if candidate & _MAX_CLIENT_ID == 0 or candidate > _MAX_CLIENT_ID:
                candidate = 0
                continue
            if candidate not in self._clients:
                self._last_id = candidate
                return candidate

    def connect(self, name: str, requestor: int) -> tuple[int, int]:
        """Connect a new client to service ``name``; returns (status, client id or 0)."""
        service = self._services.get(name)
        if service is None:
            return Status.VERR_HGCM_SERVICE_NOT_FOUND, 0
        category = client_category(requestor)
        limits = getattr(service, "client_limits", DEFAULT_CLIENT_LIMITS)
        in_use = sum(1 for c in self._clients.values() if c.service is service and c.category == category)
        if in_use >= limits.get(category, 0):
            return Status.VERR_HGCM_TOO_MANY_CLIENTS, 0
        client_id = self._next_id()
        status = service.connect(client_id, requestor)
        if status < 0:
            return status, 0
        self._clients[client_id] = Client(client_id, service, category)
        return Status.VINF_SUCCESS, client_id

    @property
    def services(self) -> list[HgcmService]:
        """The registered services, in registration order."""
        return list(self._services.values())

    def save_state(self) -> dict:
        """Connected clients (id, service name, category) and the id counter."""
        return {"last_id": self._last_id,
                "clients": [[c.client_id, c.service.name, int(c.category)] for c in self._clients.values()]}

    def load_state(self, state: dict) -> None:
        """Restore the clients ``save_state`` listed; their services must be registered."""
        clients = {}
        for client_id, name, category in state["clients"]:
            service = self._services.get(name)
            if service is None:
                raise ValueError(f"a client of HGCM service {name!r}, which this machine does not have")
            clients[int(client_id)] = Client(int(client_id), service, ClientCategory(category))
        self._clients = clients
        self._last_id = int(state["last_id"])

    def disconnect(self, client_id: int) -> int:
        """Disconnect ``client_id``; VERR_HGCM_INVALID_CLIENT_ID when it is not connected."""
        client = self._clients.pop(client_id, None)
        if client is None:
            return Status.VERR_HGCM_INVALID_CLIENT_ID
        client.service.disconnect(client_id)
        return Status.VINF_SUCCESS

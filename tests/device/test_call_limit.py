"""The per-client pending-call limit HGCM applies to each service's calls: the new call
is counted before the comparison, so at most limit - 1 calls of one client are in flight
(Main/src-client/HGCM.cpp:HGCMService::GuestCall: ``cCalls = ++cPendingCalls`` and the call
is admitted only while ``cCalls < acMaxCallsPerClient[category]``).  Limits are each
service's own (guest properties: VBoxGuestPropSvc.cpp:VBoxHGCMSvcLoad, 16 for every
category; Shared Folders: VBoxSharedFoldersSvc.cpp:VBoxHGCMSvcLoad, 64K / 16K / 1K) or
HGCM's defaults; this pins the comparison for both services' own values."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hgcmlab.devices.vmmdev.hgcm import DEFAULT_CALL_LIMITS, Client, ClientCategory, HgcmHost
from hgcmlab.runtime.status import Status
from hgcmlab.services.guestprops.service import GuestPropService
from hgcmlab.services.hgcm import HgcmCall, HgcmService
from hgcmlab.services.sharedfolders.service import SharedFoldersService


@pytest.fixture(params=["guestprops", "sharedfolders"])
def service(request: pytest.FixtureRequest) -> Iterator[HgcmService]:
    made: HgcmService = GuestPropService(lambda: 0) if request.param == "guestprops" else SharedFoldersService()
    yield made
    made.close()


@pytest.mark.parametrize("category", list(ClientCategory))
def test_the_call_that_would_reach_the_limit_is_refused(service: HgcmService, category: ClientCategory) -> None:
    limit = getattr(service, "call_limits", DEFAULT_CALL_LIMITS)[category]
    client = Client(7, service, category)
    below = [HgcmCall(7, 1, []) for _ in range(limit - 2)]
    assert HgcmHost.admit_call(client, below) == Status.VINF_SUCCESS
    assert HgcmHost.admit_call(client, [*below, HgcmCall(7, 1, [])]) == Status.VERR_HGCM_TOO_MANY_CLIENT_CALLS
    # Other clients' calls and finished slots do not count.
    assert HgcmHost.admit_call(client, [*below, HgcmCall(8, 1, []), None]) == Status.VINF_SUCCESS

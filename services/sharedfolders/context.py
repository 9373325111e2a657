"""Per-client state and the context a function handler receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hgcmlab.services import framework
from hgcmlab.services.hgcm import HgcmCall
from hgcmlab.services.sharedfolders.abi import ShflErrorStyle

if TYPE_CHECKING:
    from hgcmlab.services.sharedfolders.state import ShflState


@dataclass(eq=False)
class ClientState:
    """SHFLCLIENTDATA: encoding, delimiter, symlink mode, error style, map counts.

    ``delimiter`` is 0 until the first MAP_FOLDER(_OLD) with a valid delimiter, which
    stores it even when the map then fails (vbsfMapFolder); ``map_counts`` counts this
    client's maps per root id; ``waits`` holds its pending WAIT_FOR_MAPPINGS_CHANGES calls.
    """

    client_id: int
    requestor: int
    utf8: bool = False
    delimiter: int = 0
    symlinks: bool = False
    error_style: ShflErrorStyle = ShflErrorStyle.LINUX
    cancel_next_wait: bool = False
    map_counts: dict[int, int] = field(default_factory=dict)
    waits: list[HgcmCall] = field(default_factory=list)


#: What a Shared Folders handler gets: the service's state, the calling client, the call,
#: and the SHFLSTRING parameters the generic validation decoded, by parameter index in
#: ``decoded`` (None for an accepted empty pointer).
CallContext = framework.CallContext["ShflState", ClientState]

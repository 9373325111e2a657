"""The context a function handler receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.hgcm import HgcmCall, SvcParm

if TYPE_CHECKING:
    from services.guestprops.service import GuestPropService


@dataclass(eq=False)
class CallContext:
    """The service, the call, the checked strings by parameter index (without terminator)
    and the stamp taken before validation (setProperty takes it first; 0 for other
    functions)."""

    service: GuestPropService
    call: HgcmCall
    strings: dict[int, bytes] = field(default_factory=dict)
    timestamp: int = 0

    @property
    def params(self) -> list[SvcParm]:
        """The call's parameters (handlers update values and buffers in place)."""
        return self.call.params

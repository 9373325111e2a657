"""Trace decoders by service: which service package decodes the calls a trace shows.

``hgcmlab trace`` and the pytest kit read a traced call's ``service`` field and ask here
for that service's ``CallDecoder`` (services/framework.py), so no tool knows any service.
A new service adds its decoder class to ``_DECODERS``.
"""

from __future__ import annotations

from hgcmlab.services.framework import CallDecoder
from hgcmlab.services.guestprops.trace import GuestPropDecoder
from hgcmlab.services.sharedfolders.abi import SERVICE_NAME as SHARED_FOLDERS
from hgcmlab.services.sharedfolders.decode import ShflDecoder

_DECODERS: dict[str, type[CallDecoder]] = {cls.service: cls for cls in (ShflDecoder, GuestPropDecoder)}


def decoder_for(service: object) -> CallDecoder | None:
    """A fresh decoder (for one trace stream) for the calls of ``service``; None for a
    service nobody decodes.  Calls without a ``service`` (traces recorded before it was
    traced) are Shared Folders calls."""
    cls = _DECODERS.get(SHARED_FOLDERS if service is None else str(service))
    return cls() if cls is not None else None

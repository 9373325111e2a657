"""Name and value checks: GuestPropValidateName and GuestPropValidateValue
(include/VBox/HostServices/GuestPropertySvc.h).

Both look at the whole buffer the guest passed, not at the string in it: a name buffer
must hold 2 to GUEST_PROP_MAX_NAME_LEN bytes and none of ``*``, ``?`` or ``|`` anywhere
(after the terminator too); a value buffer at most GUEST_PROP_MAX_VALUE_LEN bytes.
"""

from __future__ import annotations

from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.guestprops.abi import GUEST_PROP_MAX_NAME_LEN, GUEST_PROP_MAX_VALUE_LEN

_WILDCARDS = b"*?|"


def check_name(buffer: bytes | bytearray) -> None:
    """RtError(VERR_INVALID_PARAMETER) unless ``buffer`` is an acceptable name buffer."""
    if not 2 <= len(buffer) <= GUEST_PROP_MAX_NAME_LEN:
        raise RtError(Status.VERR_INVALID_PARAMETER, f"name buffer of {len(buffer)} bytes")
    if any(ch in buffer for ch in _WILDCARDS):
        raise RtError(Status.VERR_INVALID_PARAMETER, "pattern character in name")


def check_value(buffer: bytes | bytearray) -> None:
    """RtError(VERR_TOO_MUCH_DATA) for a value buffer over GUEST_PROP_MAX_VALUE_LEN bytes."""
    if len(buffer) > GUEST_PROP_MAX_VALUE_LEN:
        raise RtError(Status.VERR_TOO_MUCH_DATA, f"value buffer of {len(buffer)} bytes")

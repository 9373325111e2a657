"""Guest properties wire ABI (``include/VBox/HostServices/GuestPropertySvc.h`` of VirtualBox
7.0.14).

Function numbers, parameter counts, flag bits and the size limits the service applies.
The messages (``GuestPropMsg*``) are plain HGCM calls: a call header followed by their
parameters, so they need no structure of their own here; the strings a guest passes and
gets back are NUL-terminated UTF-8.  Declared once here and imported by the service, the
guest assembly constants (``guest_asm/constants.py``) and the tests.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

SERVICE_NAME = "VBoxGuestPropSvc"

#: Largest property name in bytes, terminator included.
GUEST_PROP_MAX_NAME_LEN = 64
#: Largest property value in bytes, terminator included.
GUEST_PROP_MAX_VALUE_LEN = 1024
#: Properties the service holds at most.
GUEST_PROP_MAX_PROPS = 256
#: Largest ENUM_PROPS pattern buffer in bytes, terminators included.
GUEST_PROP_MAX_PATTERN_LEN = 1024
#: Changes the service remembers for GET_NOTIFICATION.
GUEST_PROP_MAX_GUEST_NOTIFICATIONS = 256
#: GET_NOTIFICATION calls one client may have waiting in the service.
GUEST_PROP_MAX_GUEST_CONCURRENT_WAITS = 16
#: Calls one client may have in flight (``acMaxCallsPerClient`` the service sets at load,
#: VBoxGuestPropSvc.cpp:VBoxHGCMSvcLoad).
GUEST_PROP_MAX_CALLS_PER_CLIENT = 16
#: Size of the longest flags string GuestPropWriteFlags produces, terminator included
#: (``sizeof("TRANSIENT, RDONLYGUEST, TRANSRESET")``).
GUEST_PROP_MAX_FLAGS_LEN = len("TRANSIENT, RDONLYGUEST, TRANSRESET") + 1


class GuestPropFlag(IntFlag):
    """GUEST_PROP_F_* property flags."""

    NILFLAG = 0
    TRANSIENT = 1 << 1
    RDONLYGUEST = 1 << 2
    RDONLYHOST = 1 << 3
    TRANSRESET = 1 << 4
    READONLY = RDONLYGUEST | RDONLYHOST
    ALLFLAGS = TRANSIENT | READONLY | TRANSRESET


class GuestPropFn(IntEnum):
    """Guest function numbers (GUEST_PROP_FN_*)."""

    GET_PROP = 1
    SET_PROP = 2
    SET_PROP_VALUE = 3
    DEL_PROP = 4
    ENUM_PROPS = 5
    GET_NOTIFICATION = 6


#: Parameter counts of the guest messages (GuestPropMsg* structures).  SET_PROP and
#: SET_PROP_VALUE share one handler that accepts 2 or 3 (setProperty): SET_PROP sends 3,
#: SET_PROP_VALUE 2.
GUEST_PROP_CPARMS: dict[GuestPropFn, int] = {
    GuestPropFn.GET_PROP: 4,
    GuestPropFn.SET_PROP: 3,
    GuestPropFn.SET_PROP_VALUE: 2,
    GuestPropFn.DEL_PROP: 1,
    GuestPropFn.ENUM_PROPS: 3,
    GuestPropFn.GET_NOTIFICATION: 4,
}

#: Name prefixes only the host may set; a host set adds RDONLYGUEST to them
#: (VBoxGuestPropSvc.cpp:checkHostReserved).
HOST_RESERVED_PREFIXES = (
    "/VirtualBox/GuestAdd/VBoxService/",
    "/VirtualBox/GuestAdd/PAM/",
    "/VirtualBox/GuestAdd/Greeter/",
    "/VirtualBox/GuestAdd/SharedFolders/",
    "/VirtualBox/HostInfo/",
    "/VirtualBox/VMInfo/",
)


#: What ends an ENUM_PROPS answer: one empty entry, i.e. an empty name, value, timestamp and
#: flags string, each with its terminating NUL (VBoxGuestPropSvc.cpp:Service::enumProps).
ENUM_TERMINATOR = b"\0" * 4

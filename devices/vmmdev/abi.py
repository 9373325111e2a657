"""VMMDev wire ABI: ports, request types, request and HGCM structures (VirtualBox 7.0.14).

Every structure is declared once, as a ctypes little-endian structure with VirtualBox's
4-byte packing, with its size asserted right below it.  The numbers come from the project
reference (``vmmdev-hgcm-abi.md``); guest assembly, tests and the device all import them
from here, so no wire number is typed twice.
"""

from __future__ import annotations

import ctypes
from enum import IntEnum, IntFlag

from hgcmlab.runtime.wire import FieldRun, field_offset, field_run

# --- ports and versions -----------------------------------------------------------------

#: Default base of the VMMDev I/O BAR (BAR0) when a machine does not place it elsewhere.
VMMDEV_DEFAULT_PORT_BASE = 0xD020
#: Size of the I/O BAR.
VMMDEV_PORT_RANGE_SIZE = 0x20
#: Offset of the request port (a 32-bit OUT of a request's physical address).
VMMDEV_PORT_OFF_REQUEST = 0
#: Offset of the fast request / fast IRQ-acknowledge port.
VMMDEV_PORT_OFF_REQUEST_FAST = 8

#: PCI identity of the VMMDev function and where VirtualBox places it (00:04.0).
VMMDEV_PCI_VENDOR = 0x80EE
VMMDEV_PCI_DEVICE_ID = 0xCAFE
VMMDEV_PCI_DEVICE = 4

# --- events and the VMMDevMemory page (BAR1) ----------------------------------------------

#: VMMDEV_EVENT_*: host events the guest filters and acknowledges.
VMMDEV_EVENT_MOUSE_CAPABILITIES_CHANGED = 0x001
VMMDEV_EVENT_HGCM = 0x002
VMMDEV_EVENT_DISPLAY_CHANGE_REQUEST = 0x004
VMMDEV_EVENT_RESTORED = 0x010
VMMDEV_EVENT_MOUSE_POSITION_CHANGED = 0x200
VMMDEV_EVENT_VALID_EVENT_MASK = 0x7FF

#: sizeof(VMMDevMemory) as the device writes it into u32Size.
VMMDEV_MEMORY_SIZE = 0x3FFD28
VMMDEV_MEMORY_VERSION = 1
#: Size of the MMIO BAR holding VMMDevMemory (BAR1).
VMMDEV_RAM_SIZE = 4 * 256 * 4096
MMIO_OFF_SIZE = 0
MMIO_OFF_VERSION = 4
MMIO_OFF_HAVE_EVENTS = 8          # V1_04.fHaveEvents (byte) / V1_03.u32HostEvents
MMIO_OFF_GUEST_EVENT_MASK = 12    # V1_03.u32GuestEventMask
#: The exact interface version of legacy 1.03 guests.
LEGACY_INTERFACE_VERSION = 0x00010003

VMMDEV_VERSION = 0x00010004
VMMDEV_REQUEST_HEADER_VERSION = 0x00010001
VMMDEV_MAX_VMMDEVREQ_SIZE = 1024 * 1024

#: Version the device reports in GetHostVersion: VirtualBox 7.0.14 r161095.
HOST_VERSION_MAJOR = 7
HOST_VERSION_MINOR = 0
HOST_VERSION_BUILD = 14
HOST_VERSION_REVISION = 161095


class HostFeature(IntFlag):
    """Feature bits reported by GetHostVersion."""

    HGCM_PHYS_PAGE_LIST = 0x1
    HGCM_EMBEDDED_BUFFERS = 0x2
    HGCM_CONTIGUOUS_PAGE_LIST = 0x4
    HGCM_NO_BOUNCE_PAGE_LIST = 0x8
    FAST_IRQ_ACK = 0x80000000


#: What this device reports: all four HGCM buffer kinds and the fast IRQ acknowledge.
HOST_FEATURES = 0x8000000F


class RequestType(IntEnum):
    """VMMDevRequestType: every request type VirtualBox 7.0.14 defines."""

    InvalidRequest = 0
    GetMouseStatus = 1
    SetMouseStatus = 2
    SetPointerShape = 3
    GetHostVersion = 4
    Idle = 5
    GetHostTime = 10
    GetHypervisorInfo = 20
    SetHypervisorInfo = 21
    RegisterPatchMemory = 22
    DeregisterPatchMemory = 23
    SetPowerStatus = 30
    AcknowledgeEvents = 41
    CtlGuestFilterMask = 42
    ReportGuestInfo = 50
    GetDisplayChangeRequest = 51
    VideoModeSupported = 52
    GetHeightReduction = 53
    GetDisplayChangeRequest2 = 54
    ReportGuestCapabilities = 55
    SetGuestCapabilities = 56
    VideoModeSupported2 = 57
    ReportGuestInfo2 = 58
    ReportGuestStatus = 59
    HGCMConnect = 60
    HGCMDisconnect = 61
    HGCMCall32 = 62
    HGCMCall64 = 63
    HGCMCancel = 64
    HGCMCancel2 = 65
    VideoAccelEnable = 70
    VideoAccelFlush = 71
    VideoSetVisibleRegion = 72
    GetSeamlessChangeRequest = 73
    ReportGuestUserState = 74
    GetDisplayChangeRequestEx = 80
    GetDisplayChangeRequestMulti = 81
    QueryCredentials = 100
    ReportCredentialsJudgement = 101
    ReportGuestStats = 110
    GetMemBalloonChangeRequest = 111
    GetStatisticsChangeRequest = 112
    ChangeMemBalloon = 113
    GetVRDPChangeRequest = 150
    LogString = 200
    GetCpuHotPlugRequest = 210
    SetCpuHotPlugStatus = 211
    RegisterSharedModule = 212
    UnregisterSharedModule = 213
    CheckSharedModules = 214
    GetPageSharingStatus = 215
    DebugIsPageShared = 216
    GetSessionId = 217
    WriteCoreDump = 218
    GuestHeartbeat = 219
    HeartbeatConfigure = 220
    NtBugCheck = 221
    VideoUpdateMonitorPositions = 222
    GetMouseStatusEx = 223


#: Guest requestor value used by kernel drivers other than VBoxGuest (KERNEL|USR_DRV_OTHER).
VMMDEV_REQUESTOR_USR_DRV_OTHER = 0x00000002
#: Host-internal requestor value meaning "the guest gave no requestor information".
VMMDEV_REQUESTOR_LEGACY = 0xFFFFFFFF


class _Struct(ctypes.LittleEndianStructure):
    _pack_ = 4


class RequestHeader(_Struct):
    """VMMDevRequestHeader: common 24-byte header of every request."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("version", ctypes.c_uint32),
        ("requestType", ctypes.c_uint32),
        ("rc", ctypes.c_int32),
        ("reserved1", ctypes.c_uint32),
        ("fRequestor", ctypes.c_uint32),
    ]


assert ctypes.sizeof(RequestHeader) == 24


class ReqHostVersion(_Struct):
    """VMMDevReqHostVersion (GetHostVersion, type 4)."""

    _fields_ = [
        ("header", RequestHeader),
        ("major", ctypes.c_uint16),
        ("minor", ctypes.c_uint16),
        ("build", ctypes.c_uint32),
        ("revision", ctypes.c_uint32),
        ("features", ctypes.c_uint32),
    ]


assert ctypes.sizeof(ReqHostVersion) == 40


class ReportGuestInfo(_Struct):
    """VMMDevReportGuestInfo (type 50)."""

    _fields_ = [
        ("header", RequestHeader),
        ("interfaceVersion", ctypes.c_uint32),
        ("osType", ctypes.c_uint32),
    ]


assert ctypes.sizeof(ReportGuestInfo) == 32


class ReqMouseStatus(_Struct):
    """VMMDevReqMouseStatus (GetMouseStatus 1 / SetMouseStatus 2)."""

    _fields_ = [
        ("header", RequestHeader),
        ("mouseFeatures", ctypes.c_uint32),
        ("pointerXPos", ctypes.c_int32),
        ("pointerYPos", ctypes.c_int32),
    ]


assert ctypes.sizeof(ReqMouseStatus) == 36


class ReqHostTime(_Struct):
    """VMMDevReqHostTime (GetHostTime 10): UTC milliseconds since 1970."""

    _fields_ = [("header", RequestHeader), ("time", ctypes.c_uint64)]


assert ctypes.sizeof(ReqHostTime) == 32


class ReqHypervisorInfo(_Struct):
    """VMMDevReqHypervisorInfo (Get/SetHypervisorInfo 20/21)."""

    _fields_ = [
        ("header", RequestHeader),
        ("hypervisorStart", ctypes.c_uint32),
        ("hypervisorSize", ctypes.c_uint32),
    ]


assert ctypes.sizeof(ReqHypervisorInfo) == 32


class ReqEvents(_Struct):
    """VMMDevEvents (AcknowledgeEvents 41)."""

    _fields_ = [("header", RequestHeader), ("events", ctypes.c_uint32)]


assert ctypes.sizeof(ReqEvents) == 28


class ReqCtlGuestFilterMask(_Struct):
    """VMMDevCtlGuestFilterMask (CtlGuestFilterMask 42)."""

    _fields_ = [("header", RequestHeader), ("u32OrMask", ctypes.c_uint32), ("u32NotMask", ctypes.c_uint32)]


assert ctypes.sizeof(ReqCtlGuestFilterMask) == 32


class ReqGuestCapabilities2(_Struct):
    """VMMDevReqGuestCapabilities2 (SetGuestCapabilities 56)."""

    _fields_ = [("header", RequestHeader), ("u32OrMask", ctypes.c_uint32), ("u32NotMask", ctypes.c_uint32)]


assert ctypes.sizeof(ReqGuestCapabilities2) == 32


class ReportGuestInfo2(_Struct):
    """VMMDevReportGuestInfo2 (type 58)."""

    _fields_ = [
        ("header", RequestHeader),
        ("additionsMajor", ctypes.c_uint16),
        ("additionsMinor", ctypes.c_uint16),
        ("additionsBuild", ctypes.c_uint32),
        ("additionsRevision", ctypes.c_uint32),
        ("additionsFeatures", ctypes.c_uint32),
        ("szName", ctypes.c_char * 128),
    ]


assert ctypes.sizeof(ReportGuestInfo2) == 168
#: additionsFeatures bit: the guest fills fRequestor in its request headers.
VBOXGSTINFO2_F_REQUESTOR_INFO = 0x1


class ReportGuestStatus(_Struct):
    """VMMDevReportGuestStatus (type 59)."""

    _fields_ = [
        ("header", RequestHeader),
        ("facility", ctypes.c_uint32),
        ("status", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
    ]


assert ctypes.sizeof(ReportGuestStatus) == 36


class ReqSessionId(_Struct):
    """VMMDevReqSessionId (GetSessionId 217)."""

    _fields_ = [("header", RequestHeader), ("idSession", ctypes.c_uint64)]


assert ctypes.sizeof(ReqSessionId) == 32


class ReqHeartbeat(_Struct):
    """VMMDevReqHeartbeat (HeartbeatConfigure 220)."""

    _fields_ = [
        ("header", RequestHeader),
        ("cNsInterval", ctypes.c_uint64),
        ("fEnabled", ctypes.c_uint8),
        ("padding", ctypes.c_uint8 * 3),
    ]


assert ctypes.sizeof(ReqHeartbeat) == 36


class ReqLogString(_Struct):
    """VMMDevReqLogString (type 200): a NUL-terminated string follows the header (size >= 28)."""

    _fields_ = [("header", RequestHeader), ("szString", ctypes.c_char * 4)]


assert ctypes.sizeof(ReqLogString) == 28


# --- HGCM ---------------------------------------------------------------------------------

#: fu32Flags bit set by the device when a command has completed.
VBOX_HGCM_REQ_DONE = 0x1
#: fu32Flags bit set by the guest only, when it cancels.
VBOX_HGCM_REQ_CANCELLED = 0x2

#: Maximum number of parameters of one HGCM call.
VMMDEV_MAX_HGCM_PARMS = 32
#: Maximum bytes of one pointer-like parameter (128 MiB).
VMMDEV_MAX_HGCM_DATA_SIZE = 0x08000000
#: Length of the service name area of HGCMServiceLocation.
HGCM_SERVICE_NAME_SIZE = 128


class HgcmLocationType(IntEnum):
    """HGCMServiceLocationType."""

    Invalid = 0
    LocalHost = 1
    LocalHost_Existing = 2


class HgcmParmType(IntEnum):
    """HGCMFunctionParameterType: guest parameter types as they appear in a request."""

    Invalid = 0
    Bit32 = 1
    Bit64 = 2
    PhysAddr = 3
    LinAddr = 4
    LinAddr_In = 5
    LinAddr_Out = 6
    LinAddr_Locked = 7
    LinAddr_Locked_In = 8
    LinAddr_Locked_Out = 9
    PageList = 10
    Embedded = 11
    ContiguousPageList = 12
    NoBouncePageList = 13


class HgcmParmDirection(IntFlag):
    """VBOX_HGCM_F_PARM_DIRECTION_* (page lists and embedded buffers)."""

    NONE = 0x0
    TO_HOST = 0x1
    FROM_HOST = 0x2
    BOTH = 0x3


VBOX_HGCM_F_PARM_DIRECTION_MASK = 0x3


class HgcmRequestHeader(_Struct):
    """VMMDevHGCMRequestHeader: request header plus flags and result (32 bytes)."""

    _fields_ = [
        ("header", RequestHeader),
        ("fu32Flags", ctypes.c_uint32),
        ("result", ctypes.c_int32),
    ]


assert ctypes.sizeof(HgcmRequestHeader) == 32


class HgcmServiceLocation(_Struct):
    """HGCMServiceLocation (132 bytes): type and NUL-terminated service name."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("achName", ctypes.c_char * HGCM_SERVICE_NAME_SIZE),
    ]


assert ctypes.sizeof(HgcmServiceLocation) == 132


class HgcmConnect(_Struct):
    """VMMDevHGCMConnect (type 60)."""

    _fields_ = [
        ("header", HgcmRequestHeader),
        ("loc", HgcmServiceLocation),
        ("u32ClientID", ctypes.c_uint32),
    ]


assert ctypes.sizeof(HgcmConnect) == 168


class HgcmDisconnect(_Struct):
    """VMMDevHGCMDisconnect (type 61)."""

    _fields_ = [
        ("header", HgcmRequestHeader),
        ("u32ClientID", ctypes.c_uint32),
    ]


assert ctypes.sizeof(HgcmDisconnect) == 36


class HgcmCall(_Struct):
    """VMMDevHGCMCall (types 62/63): the fixed part; parameters follow at offset 44."""

    _fields_ = [
        ("header", HgcmRequestHeader),
        ("u32ClientID", ctypes.c_uint32),
        ("u32Function", ctypes.c_uint32),
        ("cParms", ctypes.c_uint32),
    ]


assert ctypes.sizeof(HgcmCall) == 44


class HgcmCancel(_Struct):
    """VMMDevHGCMCancel (type 64, legacy)."""

    _fields_ = [("header", HgcmRequestHeader)]


assert ctypes.sizeof(HgcmCancel) == 32


class HgcmCancel2(_Struct):
    """VMMDevHGCMCancel2 (type 65): plain header plus the physical address to cancel."""

    _fields_ = [
        ("header", RequestHeader),
        ("physReqToCancel", ctypes.c_uint32),
    ]


assert ctypes.sizeof(HgcmCancel2) == 28


class HgcmParam32(_Struct):
    """HGCMFunctionParameter32 (12 bytes).

    The union after ``type`` is two words: ``u0`` is value32 / size / PageList.size /
    Embedded flags+offset word, ``u1`` is the 32-bit address / PageList.offset /
    Embedded.cbData.  value64 spans both words.
    """

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("u0", ctypes.c_uint32),
        ("u1", ctypes.c_uint32),
    ]


assert ctypes.sizeof(HgcmParam32) == 12


class HgcmParam64(_Struct):
    """HGCMFunctionParameter64 (16 bytes): as HgcmParam32 with a 64-bit address word."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("u0", ctypes.c_uint32),
        ("u1", ctypes.c_uint64),
    ]


assert ctypes.sizeof(HgcmParam64) == 16

class HgcmParamValue64(_Struct):
    """HGCMFunctionParameter's value64 arm: a u64 right after ``type``, at offset 4 in both
    the 32- and the 64-bit layout (VirtualBox's 4-byte packing)."""

    _fields_ = [("type", ctypes.c_uint32), ("value64", ctypes.c_uint64)]


assert ctypes.sizeof(HgcmParamValue64) == 12 and HgcmParamValue64.value64.offset == 4


class HgcmParamEmbedded(_Struct):
    """HGCMFunctionParameter's Embedded arm (type 11): a word of 8 flag bits
    (VBOX_HGCM_F_PARM_*) and a 24-bit data offset from the request start, then cbData."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("fFlags", ctypes.c_uint32, 8),
        ("offData", ctypes.c_uint32, 24),
        ("cbData", ctypes.c_uint32),
    ]


assert ctypes.sizeof(HgcmParamEmbedded) == 12
assert (HgcmParamEmbedded.fFlags.offset, HgcmParamEmbedded.cbData.offset) == (HgcmParam32.u0.offset, HgcmParam32.u1.offset)

#: Offsets inside a parameter struct (the same in the 32- and 64-bit layouts).
HGCM_PARM_OFF_TYPE = HgcmParam32.type.offset
HGCM_PARM_OFF_VALUE = HgcmParam32.u0.offset
HGCM_PARM_OFF_SIZE = HgcmParam32.u0.offset
HGCM_PARM_OFF_ADDR = HgcmParam32.u1.offset
assert (HgcmParam64.u0.offset, HgcmParam64.u1.offset) == (HGCM_PARM_OFF_VALUE, HGCM_PARM_OFF_ADDR)
assert HgcmParamValue64.value64.offset == HGCM_PARM_OFF_VALUE
#: Offset of the first parameter in an HGCM call request.
HGCM_CALL_OFF_PARMS = ctypes.sizeof(HgcmCall)


class HgcmPageListInfo(_Struct):
    """HGCMPageListInfo header; ``cPages`` u64 page addresses follow at offset 8."""

    _fields_ = [
        ("flags", ctypes.c_uint32),
        ("offFirstPage", ctypes.c_uint16),
        ("cPages", ctypes.c_uint16),
    ]


assert ctypes.sizeof(HgcmPageListInfo) == 8
#: The type of one page address of a page list (RTGCPHYS64).
HgcmPageListEntry = ctypes.c_uint64
#: Where the page addresses start.
HGCM_PAGE_LIST_OFF_PAGES = ctypes.sizeof(HgcmPageListInfo)
#: VirtualBox's sizeof(HGCMPageListInfo), which counts aPages[1]: the least a page list takes.
HGCM_PAGE_LIST_MIN_SIZE = HGCM_PAGE_LIST_OFF_PAGES + ctypes.sizeof(HgcmPageListEntry)

#: Guest page size the page lists are expressed in.
PAGE_SIZE = 4096


_PARM64_SIZE = ctypes.sizeof(HgcmParam64)
_PARM32_SIZE = ctypes.sizeof(HgcmParam32)


def hgcm_parm_size(request_type: int) -> int:
    """Size of one parameter struct for an HGCMCall32 (12) or HGCMCall64 (16) request."""
    return _PARM64_SIZE if request_type == RequestType.HGCMCall64 else _PARM32_SIZE


# --- the VMMDevMemory page (BAR1) -----------------------------------------------------------


class VmmDevMemoryV103(_Struct):
    """VMMDevMemory.V.V1_03: the event words of legacy 1.03 guests."""

    _fields_ = [("u32HostEvents", ctypes.c_uint32), ("u32GuestEventMask", ctypes.c_uint32)]


class VmmDevMemoryV104(_Struct):
    """VMMDevMemory.V.V1_04: the byte the device sets while an event is pending."""

    _fields_ = [("fHaveEvents", ctypes.c_uint8)]


class VmmDevMemoryV(ctypes.LittleEndianUnion):
    """VMMDevMemory.V: the version-dependent event words."""

    _pack_ = 4
    _fields_ = [("V1_04", VmmDevMemoryV104), ("V1_03", VmmDevMemoryV103)]


class VmmDevMemoryHeader(_Struct):
    """The start of VMMDevMemory (VMMDev.h) up to its event words (the VBVA memory that
    follows is not modelled)."""

    _fields_ = [("u32Size", ctypes.c_uint32), ("u32Version", ctypes.c_uint32), ("V", VmmDevMemoryV)]


assert ctypes.sizeof(VmmDevMemoryHeader) == 16
#: Offsets in the VMMDevMemory page.
MMIO_OFF_SIZE = VmmDevMemoryHeader.u32Size.offset
MMIO_OFF_VERSION = VmmDevMemoryHeader.u32Version.offset
MMIO_OFF_HAVE_EVENTS = field_offset(VmmDevMemoryHeader, "V.V1_04.fHaveEvents")   # V1_03.u32HostEvents too
MMIO_OFF_GUEST_EVENT_MASK = field_offset(VmmDevMemoryHeader, "V.V1_03.u32GuestEventMask")
assert (MMIO_OFF_SIZE, MMIO_OFF_VERSION, MMIO_OFF_HAVE_EVENTS, MMIO_OFF_GUEST_EVENT_MASK) == (0, 4, 8, 12)


# --- derived accessors: the one place request bytes are given offsets and formats ---------
#: (size, version, requestType) of a request header.
REQUEST_HEAD = field_run(RequestHeader, "size", "requestType")
REQUEST_RC = field_run(RequestHeader, "rc")
REQUEST_TYPE = field_run(RequestHeader, "requestType")
REQUEST_REQUESTOR = field_run(RequestHeader, "fRequestor")
#: An HGCM request's fu32Flags and result words.
HGCM_FLAGS = field_run(HgcmRequestHeader, "fu32Flags")
HGCM_RESULT = field_run(HgcmRequestHeader, "result")
HGCM_FLAGS_AND_RESULT = field_run(HgcmRequestHeader, "fu32Flags", "result")
#: (u32ClientID, u32Function, cParms) of an HGCMCall request.
HGCM_CALL_HEAD = field_run(HgcmCall, "u32ClientID", "cParms")
HGCM_CONNECT_NAME = field_run(HgcmConnect, "loc.achName")
HGCM_CONNECT_CLIENT = field_run(HgcmConnect, "u32ClientID")
#: One parameter's (type, u0, u1) words by parameter size (HGCMCall32: 12, HGCMCall64: 16).
HGCM_PARM_WORDS: dict[int, FieldRun] = {
    _PARM32_SIZE: field_run(HgcmParam32, "type", "u1"),
    _PARM64_SIZE: field_run(HgcmParam64, "type", "u1"),
}
assert all(words.size == size for size, words in HGCM_PARM_WORDS.items())
#: A parameter's u0 word (value32, a pointer's or page list's size) and its value64.
HGCM_PARM_U0 = field_run(HgcmParam32, "u0")
HGCM_PARM_VALUE64 = field_run(HgcmParamValue64, "value64")
HGCM_PARM_EMBEDDED_CB = field_run(HgcmParamEmbedded, "cbData")
#: (flags, offFirstPage, cPages) of a page list.
HGCM_PAGE_LIST_HEAD = field_run(HgcmPageListInfo, "flags", "cPages")
MMIO_EVENT_WORD = field_run(VmmDevMemoryHeader, "V.V1_03.u32HostEvents")
MMIO_SIZE_AND_VERSION = field_run(VmmDevMemoryHeader, "u32Size", "u32Version")


def hgcm_parms_format(parm_size: int, count: int) -> str:
    """The struct format of ``count`` consecutive parameters' words (for one unpack of all)."""
    words = HGCM_PARM_WORDS[parm_size].codec.format.lstrip("<")
    return "<" + words * count

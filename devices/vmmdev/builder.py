"""Build VMMDev requests as bytes, the way a guest driver lays them out.

For device-level tests and qtest-style drivers that poke the request port without a CPU.
Every number comes from ``hgcmlab.devices.vmmdev.abi``.  Guest conventions are followed: the buffer
is pre-filled with 0xAA and ``rc`` preset to VERR_GENERAL_FAILURE (-1), so a device that
forgets a write-back is caught.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

from hgcmlab.devices.vmmdev.abi import (
    HGCM_CALL_HEAD,
    HGCM_CALL_OFF_PARMS,
    HGCM_CONNECT_NAME,
    HGCM_FLAGS,
    HGCM_FLAGS_AND_RESULT,
    HGCM_PAGE_LIST_HEAD,
    HGCM_PARM_OFF_ADDR,
    HGCM_PARM_U0,
    HGCM_PARM_WORDS,
    HGCM_RESULT,
    REQUEST_RC,
    VMMDEV_REQUEST_HEADER_VERSION,
    VMMDEV_REQUESTOR_USR_DRV_OTHER,
    HgcmConnect,
    HgcmDisconnect,
    HgcmLocationType,
    HgcmPageListEntry,
    HgcmParamEmbedded,
    HgcmParmType,
    RequestHeader,
    RequestType,
    hgcm_parm_size,
)
from hgcmlab.runtime.wire import array_codec

POISON = 0xAA
GUEST_RC_PRESET = -1


def header(size: int, request_type: int, *, version: int = VMMDEV_REQUEST_HEADER_VERSION,
           rc: int = GUEST_RC_PRESET, requestor: int = VMMDEV_REQUESTOR_USR_DRV_OTHER) -> bytes:
    """A request header (24 bytes)."""
    return bytes(RequestHeader(size=size, version=version, requestType=request_type, rc=rc, fRequestor=requestor))


def poisoned(size: int, request_type: int, **header_fields: int) -> bytearray:
    """A ``size``-byte request of ``request_type``: header, then 0xAA poison."""
    data = bytearray([POISON]) * size
    head = header(size, request_type, **header_fields)
    data[:min(len(head), size)] = head[:min(len(head), size)]
    return data


def hgcm_header(data: bytearray, *, flags: int = 0, result: int = 0) -> None:
    """Set the HGCM flags and result words (guests preset both to 0 for calls)."""
    HGCM_FLAGS_AND_RESULT.pack(data, 0, flags, result)


def connect(service: str, *, client_id: int = 0) -> bytearray:
    """An HGCMConnect request for ``service``; ``result`` keeps the poison, as guests leave it."""
    data = poisoned(ctypes.sizeof(HgcmConnect), RequestType.HGCMConnect)
    HGCM_FLAGS.pack(data, 0, 0)
    request = HgcmConnect.from_buffer(data)
    request.loc.type = HgcmLocationType.LocalHost_Existing
    request.u32ClientID = client_id
    HGCM_CONNECT_NAME.pack(data, 0, service.encode())  # "128s": the rest of the area zero-filled
    return data


def disconnect(client_id: int) -> bytearray:
    """An HGCMDisconnect request."""
    data = poisoned(ctypes.sizeof(HgcmDisconnect), RequestType.HGCMDisconnect)
    HGCM_FLAGS.pack(data, 0, 0)
    HgcmDisconnect.from_buffer(data).u32ClientID = client_id
    return data


def _embedded_word(flags: int, offset: int) -> int:
    """The u0 word of an Embedded parameter: its flag and data-offset bit-fields."""
    return HGCM_PARM_U0.get(bytes(HgcmParamEmbedded(fFlags=flags, offData=offset)))


@dataclass
class Param:
    """One guest parameter: its type and the two words of the union."""

    type: int
    word0: int = 0
    word1: int = 0

    @classmethod
    def u32(cls, value: int) -> Param:
        return cls(HgcmParmType.Bit32, value & 0xFFFFFFFF)

    @classmethod
    def u64(cls, value: int) -> Param:
        return cls(HgcmParmType.Bit64, value & 0xFFFFFFFF, value >> 32)

    @classmethod
    def linaddr(cls, address: int, size: int, param_type: int = HgcmParmType.LinAddr) -> Param:
        return cls(param_type, size, address)


@dataclass
class CallBuilder:
    """Lays out an HGCMCall32/64: parameters, then an extra area for page lists and
    embedded data whose offsets are relative to the request start."""

    client_id: int
    function: int
    request_type: int = RequestType.HGCMCall64
    params: list[Param] = field(default_factory=list)
    _page_lists: list[tuple[int, bytes]] = field(default_factory=list, repr=False)
    _embedded: list[tuple[int, bytes, int]] = field(default_factory=list, repr=False)

    @property
    def off_extra(self) -> int:
        return HGCM_CALL_OFF_PARMS + len(self.params) * hgcm_parm_size(self.request_type)

    def add(self, param: Param) -> int:
        """Append a parameter; returns its index."""
        self.params.append(param)
        return len(self.params) - 1

    def add_page_list(self, size: int, pages: list[int], *, flags: int, offset_first: int = 0,
                      param_type: int = HgcmParmType.PageList) -> int:
        """Append a page-list parameter; the list itself goes to the extra area."""
        index = self.add(Param(param_type, size, 0))
        blob = HGCM_PAGE_LIST_HEAD.packed(flags, offset_first, len(pages)) + array_codec(
            HgcmPageListEntry, len(pages)).pack(*pages)
        self._page_lists.append((index, blob))
        return index

    def add_embedded(self, data: bytes, *, flags: int) -> int:
        """Append an embedded-buffer parameter carrying ``data`` inside the request."""
        index = self.add(Param(HgcmParmType.Embedded, 0, len(data)))
        self._embedded.append((index, bytes(data), flags))
        return index

    def build(self) -> bytearray:
        """The request bytes: header, HGCM fields, parameters, extra area."""
        parm_size = hgcm_parm_size(self.request_type)
        words = HGCM_PARM_WORDS[parm_size]
        word1_mask = (1 << 8 * (parm_size - HGCM_PARM_OFF_ADDR)) - 1
        extra = bytearray()
        for index, blob in self._page_lists:
            self.params[index].word1 = self.off_extra + len(extra)
            extra += blob
        for index, blob, flags in self._embedded:
            self.params[index].word0 = _embedded_word(flags, self.off_extra + len(extra))
            extra += blob + bytes(-len(blob) % 8)
        size = self.off_extra + len(extra)
        data = poisoned(size, self.request_type)
        hgcm_header(data)
        HGCM_CALL_HEAD.pack(data, 0, self.client_id, self.function, len(self.params))
        for i, param in enumerate(self.params):
            words.pack(data, HGCM_CALL_OFF_PARMS + i * parm_size, param.type, param.word0, param.word1 & word1_mask)
        data[self.off_extra:] = extra
        return data


def rc_of(request: bytes | bytearray) -> int:
    """The header ``rc`` of a request as it lies in memory."""
    return REQUEST_RC.get(request)


def flags_of(request: bytes | bytearray) -> int:
    """The HGCM ``fu32Flags`` word (DONE is bit 0)."""
    return HGCM_FLAGS.get(request)


def result_of(request: bytes | bytearray) -> int:
    """The HGCM ``result`` word."""
    return HGCM_RESULT.get(request)

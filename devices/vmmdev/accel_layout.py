"""What the accelerator's two hooks share: the mirror's layout and the wire constants.

``AccelState`` (with its ``AccelHandle`` entries) is the mirror of the device's state that
``accel.Accelerator`` keeps and both hooks read: the native one (native/hgcm_accel.c, whose
C declarations ``accel.prelude`` generates from these ctypes layouts) and its Python twin
(accel_python.py).  ``wire_constants`` is the one table of every constant and wire offset
they use, taken from the ABI declarations.
"""

from __future__ import annotations

import ctypes
from functools import cache

from unicorn import x86_const as ux

from hgcmlab.devices.vmmdev import abi
from hgcmlab.devices.vmmdev.commands import COMMAND_HEAP_COST, HeapCategory
from hgcmlab.devices.vmmdev.params import MAX_CALL_HEAP
from hgcmlab.machine import fastblock
from hgcmlab.machine.paging_regs import CR0_PG
from hgcmlab.runtime import fs
from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders.abi import SHFL_CPARMS, SHFL_HANDLE_NIL, SHFL_HANDLE_ROOT, ShflFn

MAX_PENDING = 16
MAX_HANDLES = 32
#: Pages of a scattered page list the hook takes (Linux's UIO_MAXIOV: one preadv/pwritev).
MAX_SCATTER_PAGES = 1024
_READ, _WRITE = int(ShflFn.READ), int(ShflFn.WRITE)


class AccelHandle(ctypes.Structure):
    """One exported handle (``struct accel_handle``)."""

    _fields_ = [
        ("client", ctypes.c_uint32),
        ("root", ctypes.c_uint32),
        ("handle", ctypes.c_uint64),
        ("generation", ctypes.c_uint64),
        ("fd", ctypes.c_int32),
        ("writable", ctypes.c_uint32),
        ("admitted", ctypes.c_uint32),   # the client's call limit admits one more call
        ("reserved", ctypes.c_uint32),
    ]


class AccelState(ctypes.Structure):
    """What the hook reads and counts (``struct accel``): the mirror ``rearm`` keeps."""

    _fields_ = [
        ("armed", ctypes.c_uint64),
        ("ram", ctypes.c_uint64),
        ("ram_size", ctypes.c_uint64),
        ("cpu", ctypes.c_uint64),           # the CPU's fastblock.State
        ("fallback", ctypes.c_uint64),      # the Python OUT hook (a C function pointer)
        ("reg_read", ctypes.c_uint64),      # uc_reg_read
        ("notify", ctypes.c_uint64),        # raises the HGCM event in Python (a C function pointer)
        ("generation", ctypes.c_uint64),    # address of the service's generation counter
        ("port", ctypes.c_uint64),
        ("port_cycles", ctypes.c_uint64),
        ("read_cycles", ctypes.c_uint64),
        ("write_cycles", ctypes.c_uint64),
        ("byte_cycles", ctypes.c_uint64),
        ("heap_available", ctypes.c_int64 * len(HeapCategory)),
        ("requestor_info", ctypes.c_uint32),
        ("event_pending", ctypes.c_uint32),  # the HGCM event is pending: raising it changes nothing
        ("pending_count", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("pending", ctypes.c_uint32 * MAX_PENDING),
        ("handle_count", ctypes.c_uint32),
        ("miss_valid", ctypes.c_uint32),
        ("miss_client", ctypes.c_uint32),
        ("miss_root", ctypes.c_uint32),
        ("miss_handle", ctypes.c_uint64),
        ("handles", AccelHandle * MAX_HANDLES),
        ("reads", ctypes.c_uint64),         # calls taken as the direct path takes them, monotonic
        ("writes", ctypes.c_uint64),
        ("scattered_reads", ctypes.c_uint64),   # calls with a scattered page list (the
        ("scattered_writes", ctypes.c_uint64),  # general path's), monotonic
    ]


@cache
def wire_constants() -> dict[str, int]:
    """Every constant and wire offset the hooks use, by the name the C source knows it by,
    all from the ABI and ctypes declarations (the native prelude and the Python hook read
    this one table; callers must not change it)."""
    call32, call64 = int(abi.RequestType.HGCMCall32), int(abi.RequestType.HGCMCall64)
    assert SHFL_CPARMS[ShflFn.READ] == SHFL_CPARMS[ShflFn.WRITE]
    constants = {
        "REQ_HEADER_SIZE": ctypes.sizeof(abi.RequestHeader),
        "REQ_OFF_SIZE": abi.RequestHeader.size.offset,
        "REQ_OFF_VERSION": abi.RequestHeader.version.offset,
        "REQ_OFF_TYPE": abi.RequestHeader.requestType.offset,
        "REQ_OFF_RC": abi.REQUEST_RC.offset,
        "REQ_OFF_REQUESTOR": abi.REQUEST_REQUESTOR.offset,
        "REQUEST_HEADER_VERSION": abi.VMMDEV_REQUEST_HEADER_VERSION,
        "MAX_REQUEST_SIZE": abi.VMMDEV_MAX_VMMDEVREQ_SIZE,
        "REQ_TYPE_CALL32": call32,
        "REQ_TYPE_CALL64": call64,
        "REQUESTOR_LEGACY": abi.VMMDEV_REQUESTOR_LEGACY,
        "CALL_SIZE": ctypes.sizeof(abi.HgcmCall),
        "CALL_OFF_CLIENT": abi.HgcmCall.u32ClientID.offset,
        "CALL_OFF_FUNCTION": abi.HgcmCall.u32Function.offset,
        "CALL_OFF_PARM_COUNT": abi.HgcmCall.cParms.offset,
        "CALL_OFF_PARMS": abi.HGCM_CALL_OFF_PARMS,
        "HGCM_OFF_FLAGS": abi.HGCM_FLAGS.offset,
        "HGCM_OFF_RESULT": abi.HGCM_RESULT.offset,
        "REQ_DONE": abi.VBOX_HGCM_REQ_DONE,
        "PARM32_SIZE": abi.hgcm_parm_size(call32),
        "PARM64_SIZE": abi.hgcm_parm_size(call64),
        "PARM_OFF_TYPE": abi.HGCM_PARM_OFF_TYPE,
        "PARM_OFF_VALUE": abi.HGCM_PARM_OFF_VALUE,
        "PARM_OFF_ADDR": abi.HGCM_PARM_OFF_ADDR,
        "PARM_BIT32": int(abi.HgcmParmType.Bit32),
        "PARM_BIT64": int(abi.HgcmParmType.Bit64),
        "PARM_LINADDR": int(abi.HgcmParmType.LinAddr),
        "PARM_LINADDR_IN": int(abi.HgcmParmType.LinAddr_In),
        "PARM_LINADDR_OUT": int(abi.HgcmParmType.LinAddr_Out),
        "PARM_PAGE_LIST": int(abi.HgcmParmType.PageList),
        "DIRECTION_TO_HOST": int(abi.HgcmParmDirection.TO_HOST),
        "DIRECTION_FROM_HOST": int(abi.HgcmParmDirection.FROM_HOST),
        "DIRECTION_BOTH": int(abi.HgcmParmDirection.BOTH),
        "DIRECTION_MASK": abi.VBOX_HGCM_F_PARM_DIRECTION_MASK,
        "MAX_HGCM_DATA_SIZE": abi.VMMDEV_MAX_HGCM_DATA_SIZE,
        "PL_OFF_FLAGS": abi.HgcmPageListInfo.flags.offset,
        "PL_OFF_FIRST_PAGE": abi.HgcmPageListInfo.offFirstPage.offset,
        "PL_OFF_PAGE_COUNT": abi.HgcmPageListInfo.cPages.offset,
        "PL_OFF_PAGES": abi.HGCM_PAGE_LIST_OFF_PAGES,
        "PL_MIN_SIZE": abi.HGCM_PAGE_LIST_MIN_SIZE,
        "PL_ENTRY_SIZE": ctypes.sizeof(abi.HgcmPageListEntry),
        "GUEST_PAGE_SIZE": abi.PAGE_SIZE,
        "STATUS_ASYNC_EXECUTE": int(Status.VINF_HGCM_ASYNC_EXECUTE),
        "SHFL_FN_READ": _READ,
        "SHFL_FN_WRITE": _WRITE,
        "SHFL_TRANSFER_PARMS": SHFL_CPARMS[ShflFn.READ],
        "SHFL_HANDLE_ROOT": SHFL_HANDLE_ROOT,
        "SHFL_HANDLE_NIL": SHFL_HANDLE_NIL,
        "MAX_CALL_HEAP": MAX_CALL_HEAP,
        "COMMAND_HEAP_COST": COMMAND_HEAP_COST,
        "MAX_PENDING": MAX_PENDING,
        "MAX_HANDLES": MAX_HANDLES,
        "MAX_SCATTER_PAGES": MAX_SCATTER_PAGES,
        "REG_CR0": ux.UC_X86_REG_CR0,
        "CR0_PAGING": CR0_PG,
        "NO_DEADLINE": fastblock.NO_DEADLINE,
        "EINTR_RETRIES": fs.EINTR_RETRIES,
    }
    return constants

"""Wire structures against the published sizes and, with gcc, against Linux's uapi headers."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev import abi as vmm
from hgcmlab.runtime import wire
from hgcmlab.runtime.status import Status
from hgcmlab.services.sharedfolders import abi as shfl

UAPI_TYPES = Path("/usr/include/linux/vbox_vmmdev_types.h")
UAPI_ERR = Path("/usr/include/linux/vbox_err.h")
have_uapi = pytest.mark.skipif(shutil.which("gcc") is None or not UAPI_TYPES.exists(),
                               reason="gcc or the Linux vbox uapi headers are not installed")


@pytest.mark.parametrize(("struct", "size"), [
    (vmm.RequestHeader, 24), (vmm.ReqHostVersion, 40), (vmm.ReportGuestInfo, 32),
    (vmm.HgcmRequestHeader, 32), (vmm.HgcmServiceLocation, 132), (vmm.HgcmConnect, 168),
    (vmm.HgcmDisconnect, 36), (vmm.HgcmCall, 44), (vmm.HgcmCancel, 32), (vmm.HgcmCancel2, 28),
    (vmm.HgcmParam32, 12), (vmm.HgcmParam64, 16), (vmm.HgcmPageListInfo, 8),
    (vmm.HgcmParamValue64, 12), (vmm.HgcmParamEmbedded, 12), (vmm.VmmDevMemoryHeader, 16),
    (shfl.ShflCreateParms, 108), (shfl.ShflMapping, 8), (shfl.ShflVolInfo, 40), (shfl.ShflFsObjAttr, 44),
    (shfl.ShflFsObjInfo, 92), (shfl.ShflFsProperties, 12), (shfl.ShflStringHeader, 4),
])
def test_published_struct_sizes(struct: type[ctypes.Structure], size: int) -> None:
    assert ctypes.sizeof(struct) == size


@pytest.mark.parametrize(("struct", "path", "offset"), [
    (vmm.RequestHeader, "rc", 12), (vmm.RequestHeader, "fRequestor", 20),
    (vmm.HgcmRequestHeader, "fu32Flags", 24), (vmm.HgcmRequestHeader, "result", 28),
    (vmm.HgcmConnect, "loc.type", 32), (vmm.HgcmConnect, "loc.achName", 36), (vmm.HgcmConnect, "u32ClientID", 164),
    (vmm.HgcmDisconnect, "u32ClientID", 32), (vmm.HgcmCall, "u32ClientID", 32),
    (vmm.HgcmCall, "u32Function", 36), (vmm.HgcmCall, "cParms", 40), (vmm.HgcmCancel2, "physReqToCancel", 24),
    (vmm.ReqHostVersion, "features", 36), (vmm.HgcmParam64, "u1", 8),
    (vmm.HgcmParamValue64, "value64", 4), (vmm.HgcmParamEmbedded, "cbData", 8),
    (vmm.VmmDevMemoryHeader, "u32Version", 4), (vmm.VmmDevMemoryHeader, "V.V1_04.fHaveEvents", 8),
    (vmm.VmmDevMemoryHeader, "V.V1_03.u32GuestEventMask", 12),
    (shfl.ShflCreateParms, "Result", 8), (shfl.ShflCreateParms, "CreateFlags", 12),
    (shfl.ShflCreateParms, "Info.Attr.fMode", 64), (shfl.ShflFsObjInfo, "Attr.u.INodeId", 72),
    (shfl.ShflDirInfoHeader, "cucShortName", 92), (shfl.ShflDirInfoHeader, "name", 122),
    (shfl.ShflVolInfo, "fsProperties", 28),
])
def test_published_field_offsets(struct: type[ctypes.Structure], path: str, offset: int) -> None:
    assert vmm.field_offset(struct, path) == offset


@pytest.mark.parametrize(("function", "size64", "size32"), [
    (shfl.ShflFn.QUERY_MAPPINGS, 88, 76), (shfl.ShflFn.QUERY_MAP_NAME, 72, 64),
    (shfl.ShflFn.MAP_FOLDER_OLD, 88, 76), (shfl.ShflFn.MAP_FOLDER, 104, 88),
    (shfl.ShflFn.UNMAP_FOLDER, 56, 52), (shfl.ShflFn.CREATE, 88, 76), (shfl.ShflFn.CLOSE, 72, 64),
    (shfl.ShflFn.READ, 120, 100), (shfl.ShflFn.WRITE, 120, 100), (shfl.ShflFn.LOCK, 120, 100),
    (shfl.ShflFn.INFORMATION, 120, 100), (shfl.ShflFn.FLUSH, 72, 64), (shfl.ShflFn.LIST, 168, 136),
    (shfl.ShflFn.REMOVE, 88, 76), (shfl.ShflFn.RENAME, 104, 88),
])
def test_parameter_counts_match_the_guest_call_structure_sizes(function: shfl.ShflFn, size64: int, size32: int) -> None:
    # tstShflSizes: a 40-byte ioctl call header plus one parameter slot per parameter.
    count = shfl.SHFL_CPARMS[function]
    assert (40 + 16 * count, 40 + 12 * count) == (size64, size32)


def _compile_and_run(tmp_path: Path, body: str) -> str:
    source = tmp_path / "layout.c"
    source.write_text("#include <stdio.h>\n#include <stddef.h>\n#include <linux/vbox_vmmdev_types.h>\n"
                      "#include <linux/vbox_err.h>\nint main(void) {\n" + body + "return 0;\n}\n")
    binary = tmp_path / "layout"
    subprocess.run(["gcc", "-o", str(binary), str(source)], check=True, capture_output=True)
    return subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout


@have_uapi
def test_hgcm_structures_match_linux_uapi(tmp_path: Path) -> None:
    checks = {
        "sizeof(struct vmmdev_hgcm_service_location)": ctypes.sizeof(vmm.HgcmServiceLocation),
        "sizeof(struct vmmdev_hgcm_function_parameter32)": ctypes.sizeof(vmm.HgcmParam32),
        "sizeof(struct vmmdev_hgcm_function_parameter64)": ctypes.sizeof(vmm.HgcmParam64),
        "offsetof(struct vmmdev_hgcm_function_parameter32, u.pointer.u.linear_addr)": vmm.HGCM_PARM_OFF_ADDR,
        "offsetof(struct vmmdev_hgcm_function_parameter64, u.pointer.u.linear_addr)": vmm.HGCM_PARM_OFF_ADDR,
        "offsetof(struct vmmdev_hgcm_function_parameter64, u.pointer.size)": vmm.HGCM_PARM_OFF_SIZE,
        "offsetof(struct vmmdev_hgcm_function_parameter64, u.page_list.offset)": vmm.HGCM_PARM_OFF_ADDR,
        "offsetof(struct vmmdev_hgcm_function_parameter32, u.value64)": vmm.HGCM_PARM_VALUE64.offset,
        "offsetof(struct vmmdev_hgcm_function_parameter64, u.value64)": vmm.HGCM_PARM_VALUE64.offset,
        "offsetof(struct vmmdev_hgcm_function_parameter32, u.value32)": vmm.HGCM_PARM_U0.offset,
        "offsetof(struct vmmdev_hgcm_function_parameter64, u.page_list.size)": vmm.HGCM_PARM_U0.offset,
        "offsetof(struct vmmdev_hgcm_pagelist, offset_first_page)": vmm.field_offset(vmm.HgcmPageListInfo, "offFirstPage"),
        "offsetof(struct vmmdev_hgcm_pagelist, page_count)": vmm.field_offset(vmm.HgcmPageListInfo, "cPages"),
        "offsetof(struct vmmdev_hgcm_pagelist, pages)": ctypes.sizeof(vmm.HgcmPageListInfo),
        "VMMDEVREQ_GET_HOST_VERSION": vmm.RequestType.GetHostVersion,
        "VMMDEVREQ_REPORT_GUEST_INFO": vmm.RequestType.ReportGuestInfo,
        "VMMDEVREQ_HGCM_CONNECT": vmm.RequestType.HGCMConnect,
        "VMMDEVREQ_HGCM_DISCONNECT": vmm.RequestType.HGCMDisconnect,
        "VMMDEVREQ_HGCM_CALL32": vmm.RequestType.HGCMCall32,
        "VMMDEVREQ_HGCM_CALL64": vmm.RequestType.HGCMCall64,
        "VMMDEVREQ_HGCM_CANCEL": vmm.RequestType.HGCMCancel,
        "VMMDEVREQ_HGCM_CANCEL2": vmm.RequestType.HGCMCancel2,
        "VMMDEVREQ_ACKNOWLEDGE_EVENTS": vmm.RequestType.AcknowledgeEvents,
        "VMMDEVREQ_CTL_GUEST_FILTER_MASK": vmm.RequestType.CtlGuestFilterMask,
        "VMMDEV_HGCM_LOC_LOCALHOST_EXISTING": vmm.HgcmLocationType.LocalHost_Existing,
        "VMMDEV_HGCM_PARM_TYPE_LINADDR_KERNEL_OUT": vmm.HgcmParmType.LinAddr_Locked_Out,
        "VMMDEV_HGCM_PARM_TYPE_PAGELIST": vmm.HgcmParmType.PageList,
        "VMMDEV_HGCM_F_PARM_DIRECTION_BOTH": vmm.HgcmParmDirection.BOTH,
    }
    body = "".join(f'printf("%ld\\n", (long)({expression}));\n' for expression in checks)
    values = [int(line) for line in _compile_and_run(tmp_path, body).split()]
    assert dict(zip(checks, values)) == {expression: int(value) for expression, value in checks.items()}


@pytest.mark.skipif(not UAPI_ERR.exists(), reason="the Linux vbox_err.h uapi header is not installed")
def test_status_codes_match_linux_vbox_err_h() -> None:
    published = {name: int(value) for name, value in
                 re.findall(r"#define\s+(V(?:ERR|INF|WRN)_\w+)\s+\(?(-?\d+)\)?", UAPI_ERR.read_text())}
    ours = {status.name: status.value for status in Status}
    common = sorted(set(published) & set(ours))
    assert len(common) >= 100, "the header and our table should share most names"
    assert {name: ours[name] for name in common} == {name: published[name] for name in common}


def test_embedded_parameter_bit_fields_split_the_word_as_virtualbox_does() -> None:
    # VMMDevHGCM.cpp / VBoxGuest: Embedded.fFlags is bits 0-7 of the word after the type,
    # offData bits 8-31 (reference: vmmdev-hgcm-abi.md §4.3).
    word = 0xAB | 0x123456 << 8
    raw = bytes(vmm.HgcmParam32(type=vmm.HgcmParmType.Embedded, u0=word, u1=77))
    embedded = vmm.HgcmParamEmbedded.from_buffer_copy(raw)
    assert (embedded.fFlags, embedded.offData, embedded.cbData) == (0xAB, 0x123456, 77)


@pytest.mark.parametrize(("run", "offset", "size"), [
    (vmm.REQUEST_HEAD, 0, 12), (vmm.REQUEST_RC, 12, 4), (vmm.REQUEST_REQUESTOR, 20, 4),
    (vmm.HGCM_FLAGS_AND_RESULT, 24, 8), (vmm.HGCM_CALL_HEAD, 32, 12), (vmm.HGCM_CONNECT_NAME, 36, 128),
    (vmm.HGCM_CONNECT_CLIENT, 164, 4), (vmm.HGCM_PARM_VALUE64, 4, 8), (vmm.HGCM_PAGE_LIST_HEAD, 0, 8),
    (vmm.HGCM_PARM_WORDS[12], 0, 12), (vmm.HGCM_PARM_WORDS[16], 0, 16),
    (shfl.SHFLSTRING_SIZES, 0, 4), (shfl.SHFLDIRINFO_NAME_SIZES, 122, 4), (shfl.SHFLCREATEPARMS_HEAD, 0, 16),
    (shfl.SHFLCREATEPARMS_OBJECT_SIZE, 16, 8),
])
def test_derived_accessors_span_the_published_bytes(run: wire.FieldRun, offset: int, size: int) -> None:
    assert (run.offset, run.size) == (offset, size)

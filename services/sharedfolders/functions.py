"""One typed record per SHFL_FN: parameter signature, validation style, handler.

Validation is generic and walks the signature in order, so the status for a faulty call
matches svcCall's check order (HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall):
count, then each parameter's type, and for string parameters the SHFLSTRING check right
after that parameter's type check (REMOVE, CLOSE_AND_REMOVE and COPY_FILE check in this
order; SYMLINK's strings are checked in the client's encoding here, before its handler
refuses UTF-16 clients with VERR_NOT_IMPLEMENTED, as vbsfSymlink runs after svcCall's
checks).  A ``Checked`` parameter carries a value check svcCall makes
right after that parameter's type check, before later parameters' types (COPY_FILE_PART's
offsets, count and flags; the flags of REMOVE, CLOSE_AND_REMOVE and COPY_FILE; both
values of SET_ERROR_STYLE).  Old-style functions check every type before any value, so
their value checks stay in the handlers.  Old-style functions report every count/type fault as
VERR_INVALID_PARAMETER; new-style ones as VERR_WRONG_PARAMETER_COUNT / _TYPE; a bad string
is VERR_INVALID_PARAMETER in both styles.  Functions absent from the table answer
VERR_NOT_IMPLEMENTED (see service.py).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.hgcm import SvcParm, SvcParmType
from hgcmlab.services.sharedfolders import h_create, h_file, h_list, h_mapping, h_path
from hgcmlab.services.sharedfolders.abi import SHFL_CPARMS, ShflErrorStyle, ShflFn, ShflFsObjInfo, ShflRemove
from hgcmlab.services.sharedfolders.context import CallContext
from hgcmlab.services.sharedfolders.strings import check_valid_out, parse_in, parse_in_or_null


class Parm(Enum):
    """Accepted shape of one parameter."""

    U32 = "u32"
    U64 = "u64"
    PTR = "ptr"               # pointer, contents checked by the handler
    BUF = "buf"               # pointer or page list (READ/WRITE data)
    STR_IN = "str_in"         # pointer holding a valid-in SHFLSTRING
    STR_IN_OPT = "str_in_opt"  # as STR_IN, or an empty pointer
    STR_OUT = "str_out"       # pointer holding a valid-out SHFLSTRING buffer
    ANY = "any"               # not type checked (CLOSE_AND_REMOVE's handle)


class Style(Enum):
    """How count/type faults are reported."""

    OLD = "old"          # VERR_INVALID_PARAMETER
    NEW = "new"          # VERR_WRONG_PARAMETER_COUNT / VERR_WRONG_PARAMETER_TYPE
    UNCHECKED = "none"   # parameter count not checked at all (SET_UTF8, SET_SYMLINKS)


_ACCEPTED: dict[Parm, tuple[SvcParmType, ...]] = {
    Parm.U32: (SvcParmType.U32,),
    Parm.U64: (SvcParmType.U64,),
    Parm.PTR: (SvcParmType.PTR,),
    Parm.BUF: (SvcParmType.PTR, SvcParmType.PAGES),
    Parm.STR_IN: (SvcParmType.PTR,),
    Parm.STR_IN_OPT: (SvcParmType.PTR,),
    Parm.STR_OUT: (SvcParmType.PTR,),
}

Handler = Callable[[CallContext], int]


@dataclass(frozen=True)
class Checked:
    """A parameter whose value (or buffer size) svcCall checks right after its type:
    ``ok(parameter)`` or the call fails with ``status``."""

    kind: Parm
    ok: Callable[[SvcParm], bool]
    status: Status


@dataclass(frozen=True)
class ShflFunction:
    """A guest function: number, parameter signature, validation style, cost and handler.

    ``cycles`` is what one call costs in virtual cycles before per-byte costs (the VMMDev
    adds ``byte_cycles`` per byte of buffer parameters); see the cost model below.
    """

    fn: ShflFn
    parms: tuple[Parm | Checked, ...]
    style: Style
    cycles: int
    handler: Handler

    @property
    def name(self) -> str:
        """SHFL_FN_* name."""
        return f"SHFL_FN_{self.fn.name}"

    def validate(self, params: list[SvcParm], utf8: bool) -> dict[int, str | None]:
        """Check count, types and strings; return the decoded strings by index.

        Raises RtError with the style's status on the first fault.
        """
        if self.style is not Style.UNCHECKED and len(params) != len(self.parms):
            raise RtError(Status.VERR_WRONG_PARAMETER_COUNT if self.style is Style.NEW
                          else Status.VERR_INVALID_PARAMETER, "parameter count")
        strings: dict[int, str | None] = {}
        for index, spec in enumerate(self.parms):
            parm = params[index]
            kind = spec.kind if isinstance(spec, Checked) else spec
            if kind is not Parm.ANY and parm.type not in _ACCEPTED[kind]:
                raise RtError(Status.VERR_WRONG_PARAMETER_TYPE if self.style is Style.NEW
                              else Status.VERR_INVALID_PARAMETER, f"parameter {index} type")
            if isinstance(spec, Checked) and not spec.ok(parm):
                raise RtError(spec.status, f"parameter {index} value")
            if kind is Parm.STR_IN:
                strings[index] = parse_in(parm.buffer, utf8)
            elif kind is Parm.STR_IN_OPT:
                strings[index] = parse_in_or_null(parm.buffer, utf8)
            elif kind is Parm.STR_OUT:
                check_valid_out(parm.buffer)
        return strings


def _f(fn: ShflFn, style: Style, cycles: int, handler: Handler, *parms: Parm | Checked) -> ShflFunction:
    assert style is Style.UNCHECKED or len(parms) == SHFL_CPARMS[fn], fn
    assert cycles > 0, fn
    return ShflFunction(fn, parms, style, cycles, handler)


U32, U64, PTR, BUF = Parm.U32, Parm.U64, Parm.PTR, Parm.BUF
STR_IN, STR_IN_OPT, STR_OUT, ANY = Parm.STR_IN, Parm.STR_IN_OPT, Parm.STR_OUT, Parm.ANY
OLD, NEW = Style.OLD, Style.NEW

_REMOVE_FLAGS = int(ShflRemove.FILE | ShflRemove.DIR | ShflRemove.SYMLINK)
#: svcCall's value checks (each right after its parameter's type check).
REMOVE_FLAGS = Checked(U32, lambda p: not p.value & ~_REMOVE_FLAGS, Status.VERR_INVALID_FLAGS)
ZERO_FLAGS = Checked(U32, lambda p: p.value == 0, Status.VERR_INVALID_FLAGS)
OFFSET = Checked(U64, lambda p: not p.value >> 63, Status.VERR_NEGATIVE_SEEK)     # (int64_t)off >= 0
COPY_COUNT = Checked(U64, lambda p: p.value < 1 << 60, Status.VERR_OUT_OF_RANGE)  # cb < _1E
ERROR_STYLE = Checked(U32, lambda p: p.value in (int(ShflErrorStyle.WINDOWS), int(ShflErrorStyle.LINUX)),
                      Status.VERR_WRONG_PARAMETER_TYPE)
RESERVED = Checked(U32, lambda p: p.value == 0, Status.VERR_WRONG_PARAMETER_TYPE)
#: SYMLINK's info buffer must be exactly one SHFLFSOBJINFO (old style: every check of the
#: case is VERR_INVALID_PARAMETER, so checking it right after its type changes no status).
OBJ_INFO = Checked(PTR, lambda p: len(p.buffer) == ctypes.sizeof(ShflFsObjInfo),
                   Status.VERR_INVALID_PARAMETER)

# Cost model (virtual cycles per call, 1 cycle = 1 ns; the device adds its per-byte cost for
# buffer parameters, and HgcmTiming.function_cycles can override any of these).  Relative
# weights, not measurements:
#   500      state toggles and feature queries (SET_UTF8, SET_SYMLINKS, SET_ERROR_STYLE,
#            QUERY_FEATURES, WAIT/CANCEL of mapping-change waits: no host I/O)
#   800-1000 table lookups (QUERY_MAPPINGS, QUERY_MAP_NAME, QUERY_MAP_INFO, UNMAP_FOLDER,
#            CLOSE, LOCK: a handle or mapping table, at most one close(2))
#   1500     handle I/O (READ, WRITE, INFORMATION): one positional syscall or fstat
#   2000     MAP_FOLDER(_OLD): name lookup and case checks
#   3000     READLINK, SET_FILE_SIZE: one path or handle syscall with metadata
#   4000     LIST, REMOVE, SYMLINK: confined path walk plus directory work
#   5000     CREATE, RENAME, CLOSE_AND_REMOVE: confined walks, stat(s), open/rename/unlink
#   10000    COPY_FILE, COPY_FILE_PART: whole data copies inside the host
#   20000    FLUSH: fsync to stable storage
FUNCTIONS: dict[int, ShflFunction] = {f.fn: f for f in (
    _f(ShflFn.QUERY_MAPPINGS, OLD, 1000, h_mapping.query_mappings, U32, U32, PTR),
    _f(ShflFn.QUERY_MAP_NAME, OLD, 800, h_mapping.query_map_name, U32, STR_OUT),
    _f(ShflFn.CREATE, OLD, 5000, h_create.create, U32, STR_IN, PTR),
    _f(ShflFn.CLOSE, OLD, 1000, h_file.close, U32, U64),
    _f(ShflFn.READ, NEW, 1500, h_file.read, U32, U64, U64, U32, BUF),
    _f(ShflFn.WRITE, NEW, 1500, h_file.write, U32, U64, U64, U32, BUF),
    _f(ShflFn.LOCK, OLD, 800, h_file.lock, U32, U64, U64, U64, U32),
    _f(ShflFn.LIST, OLD, 4000, h_list.list_dir, U32, U64, U32, U32, STR_IN_OPT, PTR, U32, U32),
    _f(ShflFn.INFORMATION, OLD, 1500, h_file.information, U32, U64, U32, U32, PTR),
    _f(ShflFn.REMOVE, NEW, 4000, h_path.remove, U32, STR_IN, REMOVE_FLAGS),
    _f(ShflFn.MAP_FOLDER_OLD, OLD, 2000, h_mapping.map_folder_old, PTR, U32, U32),
    _f(ShflFn.UNMAP_FOLDER, OLD, 1000, h_mapping.unmap_folder, U32),
    _f(ShflFn.RENAME, OLD, 5000, h_path.rename, U32, STR_IN, STR_IN, U32),
    _f(ShflFn.FLUSH, OLD, 20000, h_file.flush, U32, U64),
    _f(ShflFn.SET_UTF8, Style.UNCHECKED, 500, h_mapping.set_utf8),
    _f(ShflFn.MAP_FOLDER, OLD, 2000, h_mapping.map_folder, PTR, U32, U32, U32),
    _f(ShflFn.READLINK, OLD, 3000, h_path.readlink, U32, STR_IN_OPT, PTR),
    _f(ShflFn.SYMLINK, OLD, 4000, h_path.symlink, U32, STR_IN, STR_IN, OBJ_INFO),
    _f(ShflFn.SET_SYMLINKS, Style.UNCHECKED, 500, h_mapping.set_symlinks),
    _f(ShflFn.QUERY_MAP_INFO, OLD, 1000, h_mapping.query_map_info, U32, STR_OUT, STR_OUT, U64, U32),
    _f(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, OLD, 500, h_mapping.wait_for_changes, U32),
    _f(ShflFn.CANCEL_MAPPINGS_CHANGES_WAITS, OLD, 500, h_mapping.cancel_waits),
    _f(ShflFn.SET_FILE_SIZE, NEW, 3000, h_file.set_file_size, U32, U64, U64),
    _f(ShflFn.QUERY_FEATURES, NEW, 500, h_mapping.query_features, U64, U32),
    _f(ShflFn.COPY_FILE, NEW, 10000, h_path.copy_file, U32, STR_IN, U32, STR_IN, ZERO_FLAGS),
    _f(ShflFn.COPY_FILE_PART, NEW, 10000, h_file.copy_file_part, U32, U64, OFFSET, U32, U64, OFFSET,
       COPY_COUNT, ZERO_FLAGS),
    _f(ShflFn.CLOSE_AND_REMOVE, NEW, 5000, h_path.close_and_remove, U32, STR_IN, REMOVE_FLAGS, ANY),
    _f(ShflFn.SET_ERROR_STYLE, NEW, 500, h_mapping.set_error_style, ERROR_STYLE, RESERVED),
)}

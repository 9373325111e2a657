"""The Shared Folders function table: one ``HgcmFunction`` row per SHFL_FN.

Each row holds the function's number, parameter signature (names, accepted types, svcCall's
value checks, which parameters return results, how traces show them), validation style,
cost and handler, and READ/WRITE's direct-buffer declaration; dispatch (service.py via
``hgcmlab.services.framework.TableService``) and trace decoding (decode.py) both read it.  The
parameter counts are the wire's ``SHFL_CPARMS`` (abi.py); every row is checked against them.

Validation is generic and walks the signature in order, so the status for a faulty call
matches svcCall's check order (HostServices/SharedFolders/VBoxSharedFoldersSvc.cpp:svcCall):
count, then each parameter's type, and for string parameters the SHFLSTRING check right
after that parameter's type check (REMOVE, CLOSE_AND_REMOVE and COPY_FILE check in this
order; SYMLINK's strings are checked in the client's encoding here, before its handler
refuses UTF-16 clients with VERR_NOT_IMPLEMENTED, as vbsfSymlink runs after svcCall's
checks).  A parameter with a ``check`` carries a value check svcCall makes
right after that parameter's type check, before later parameters' types (COPY_FILE_PART's
offsets, count and flags; the flags of REMOVE, CLOSE_AND_REMOVE and COPY_FILE; both
values of SET_ERROR_STYLE).  Old-style functions check every type before any value, so
their value checks stay in the handlers.  Old-style functions report every count/type fault as
VERR_INVALID_PARAMETER; new-style ones as VERR_WRONG_PARAMETER_COUNT / _TYPE; a bad string
is VERR_INVALID_PARAMETER in both styles.  Functions absent from the table answer
VERR_NOT_IMPLEMENTED (services/framework.py).
"""

from __future__ import annotations

import ctypes

from hgcmlab.runtime.status import Status
from hgcmlab.services.framework import Handler, HgcmFunction, Parm, Style, buf, function_table, ptr, require, u32, u64, untyped
from hgcmlab.services.hgcm import DirectBuffer, SvcParm
from hgcmlab.services.sharedfolders import h_create, h_file, h_list, h_mapping, h_path
from hgcmlab.services.sharedfolders.abi import SHFL_CPARMS, ShflErrorStyle, ShflFn, ShflFsObjInfo, ShflRemove
from hgcmlab.services.sharedfolders.context import ClientState
from hgcmlab.services.sharedfolders.strings import check_valid_out, parse_in, parse_in_or_null

__all__ = ["FUNCTIONS", "Style"]

#: How traces show a parameter (decode.py renders each; ``flags:<set>`` names the flag set).
ROOT, HANDLE, U32, U64, OFFSET, COUNT, STRING, BUFFER = "root", "handle", "u32", "u64", "offset", "count", "str", "buf"
CHAR, CREATE_PARMS, FEATURES, ERROR_STYLE = "char", "create_parms", "features", "error_style"


def _string_in(parm: SvcParm, client: ClientState) -> str:
    return parse_in(parm.buffer, client.utf8)


def _string_in_or_null(parm: SvcParm, client: ClientState) -> str | None:
    return parse_in_or_null(parm.buffer, client.utf8)


def _string_out(parm: SvcParm, client: ClientState) -> None:
    check_valid_out(parm.buffer)


def str_in(name: str) -> Parm:
    """A pointer holding a valid-in SHFLSTRING in the client's encoding (decoded)."""
    return ptr(name, STRING, check=_string_in)


def str_in_opt(name: str) -> Parm:
    """As ``str_in``, or an empty pointer (decoded as None)."""
    return ptr(name, STRING, check=_string_in_or_null)


def str_out(name: str) -> Parm:
    """A pointer holding a valid-out SHFLSTRING buffer the call fills."""
    return ptr(name, STRING, output=True, check=_string_out)


def root(name: str = "root", *, output: bool = False) -> Parm:
    """A root id (SHFLROOT)."""
    return u32(name, ROOT, output=output)


def handle(name: str = "handle") -> Parm:
    """A handle (SHFLHANDLE)."""
    return u64(name, HANDLE)


_REMOVE_FLAGS = int(ShflRemove.FILE | ShflRemove.DIR | ShflRemove.SYMLINK)
# svcCall's value checks (each right after its parameter's type check).
_REMOVE_FLAGS_OK = require(lambda p: not p.value & ~_REMOVE_FLAGS, Status.VERR_INVALID_FLAGS, "flags")
_ZERO_FLAGS = require(lambda p: p.value == 0, Status.VERR_INVALID_FLAGS, "flags")
_NOT_NEGATIVE = require(lambda p: not p.value >> 63, Status.VERR_NEGATIVE_SEEK, "offset")  # (int64_t)off >= 0
_COPY_COUNT = require(lambda p: p.value < 1 << 60, Status.VERR_OUT_OF_RANGE, "cb")  # cb < _1E
_ERROR_STYLE = require(lambda p: p.value in (int(ShflErrorStyle.WINDOWS), int(ShflErrorStyle.LINUX)),
                       Status.VERR_WRONG_PARAMETER_TYPE, "error style")
_RESERVED = require(lambda p: p.value == 0, Status.VERR_WRONG_PARAMETER_TYPE, "reserved")
# SYMLINK's info buffer must be exactly one SHFLFSOBJINFO (old style: every check of the
# case is VERR_INVALID_PARAMETER, so checking it right after its type changes no status).
_OBJ_INFO = require(lambda p: len(p.buffer) == ctypes.sizeof(ShflFsObjInfo), Status.VERR_INVALID_PARAMETER,
                    "info size")


def _f(fn: ShflFn, style: Style, cycles: int, handler: Handler, *parms: Parm,
       direct: DirectBuffer | None = None) -> HgcmFunction:
    assert style is Style.UNCHECKED or len(parms) == SHFL_CPARMS[fn], fn
    return HgcmFunction(fn, fn.name, parms, style, cycles, handler, direct)


OLD, NEW, UNCHECKED = Style.OLD, Style.NEW, Style.UNCHECKED

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
FUNCTIONS: dict[int, HgcmFunction] = function_table((
    _f(ShflFn.QUERY_MAPPINGS, OLD, 1000, h_mapping.query_mappings,
       u32("flags", "flags:mf"), u32("count", COUNT, output=True), ptr("mappings")),
    _f(ShflFn.QUERY_MAP_NAME, OLD, 800, h_mapping.query_map_name, root(), str_out("name")),
    _f(ShflFn.CREATE, OLD, 5000, h_create.create, root(), str_in("path"), ptr("parms", CREATE_PARMS, output=True)),
    _f(ShflFn.CLOSE, OLD, 1000, h_file.close, root(), handle()),
    # READ and WRITE may move their payload straight between the host file and guest memory
    # (h_file.read / h_file.write keep the DirectBuffer promises: READ stores the cb bytes it
    # read at the start of the buffer and nothing on failure; WRITE only reads the buffer).
    _f(ShflFn.READ, NEW, 1500, h_file.read, root(), handle(), u64("offset", OFFSET),
       u32("cb", COUNT, output=True), buf("buffer"), direct=DirectBuffer(buffer=4, stored=3)),
    _f(ShflFn.WRITE, NEW, 1500, h_file.write, root(), handle(), u64("offset", OFFSET),
       u32("cb", COUNT, output=True), buf("buffer"), direct=DirectBuffer(buffer=4, reads=True)),
    _f(ShflFn.LOCK, OLD, 800, h_file.lock, root(), handle(), u64("offset", OFFSET), u64("length", COUNT),
       u32("flags", "flags:lock")),
    _f(ShflFn.LIST, OLD, 4000, h_list.list_dir, root(), handle(), u32("flags", "flags:list"),
       u32("cb", COUNT, output=True), str_in_opt("path"), ptr("buffer"), u32("resume_point", output=True),
       u32("files", COUNT, output=True)),
    _f(ShflFn.INFORMATION, OLD, 1500, h_file.information, root(), handle(), u32("flags", "flags:info"),
       u32("cb", COUNT, output=True), ptr("info")),
    _f(ShflFn.REMOVE, NEW, 4000, h_path.remove, root(), str_in("path"),
       u32("flags", "flags:remove", check=_REMOVE_FLAGS_OK)),
    _f(ShflFn.MAP_FOLDER_OLD, OLD, 2000, h_mapping.map_folder_old, ptr("path", STRING), root(output=True),
       u32("delimiter", CHAR)),
    _f(ShflFn.UNMAP_FOLDER, OLD, 1000, h_mapping.unmap_folder, root()),
    _f(ShflFn.RENAME, OLD, 5000, h_path.rename, root(), str_in("src"), str_in("dest"), u32("flags", "flags:rename")),
    _f(ShflFn.FLUSH, OLD, 20000, h_file.flush, root(), handle()),
    _f(ShflFn.SET_UTF8, UNCHECKED, 500, h_mapping.set_utf8),
    _f(ShflFn.MAP_FOLDER, OLD, 2000, h_mapping.map_folder, ptr("path", STRING), root(output=True),
       u32("delimiter", CHAR), u32("case_sensitive")),
    _f(ShflFn.READLINK, OLD, 3000, h_path.readlink, root(), str_in_opt("path"), ptr("buffer", output=True)),
    _f(ShflFn.SYMLINK, OLD, 4000, h_path.symlink, root(), str_in("new_path"), str_in("old_path"),
       ptr("info", check=_OBJ_INFO)),
    _f(ShflFn.SET_SYMLINKS, UNCHECKED, 500, h_mapping.set_symlinks),
    _f(ShflFn.QUERY_MAP_INFO, OLD, 1000, h_mapping.query_map_info, root(), str_out("name"),
       str_out("mount_point"), u64("flags", "flags:mif", output=True), u32("version", output=True)),
    _f(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, OLD, 500, h_mapping.wait_for_changes, u32("version", output=True)),
    _f(ShflFn.CANCEL_MAPPINGS_CHANGES_WAITS, OLD, 500, h_mapping.cancel_waits),
    _f(ShflFn.SET_FILE_SIZE, NEW, 3000, h_file.set_file_size, root(), handle(), u64("size", COUNT)),
    _f(ShflFn.QUERY_FEATURES, NEW, 500, h_mapping.query_features, u64("features", FEATURES, output=True),
       u32("last_function", output=True)),
    _f(ShflFn.COPY_FILE, NEW, 10000, h_path.copy_file, root("src_root"), str_in("src_path"), root("dst_root"),
       str_in("dst_path"), u32("flags", check=_ZERO_FLAGS)),
    _f(ShflFn.COPY_FILE_PART, NEW, 10000, h_file.copy_file_part, root("src_root"), handle("src_handle"),
       u64("src_offset", OFFSET, check=_NOT_NEGATIVE), root("dst_root"), handle("dst_handle"),
       u64("dst_offset", OFFSET, check=_NOT_NEGATIVE), u64("cb", COUNT, output=True, check=_COPY_COUNT),
       u32("flags", check=_ZERO_FLAGS)),
    _f(ShflFn.CLOSE_AND_REMOVE, NEW, 5000, h_path.close_and_remove, root(), str_in("path"),
       u32("flags", "flags:remove", check=_REMOVE_FLAGS_OK), untyped("handle", HANDLE)),
    _f(ShflFn.SET_ERROR_STYLE, NEW, 500, h_mapping.set_error_style, u32("style", ERROR_STYLE, check=_ERROR_STYLE),
       u32("reserved", check=_RESERVED)),
))

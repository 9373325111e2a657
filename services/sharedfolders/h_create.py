"""SHFL_FN_CREATE (reference §5.2.3): lookup, open/create files and directories, following
vbsf.cpp's vbsfCreate / vbsfLookupFile / vbsfOpenFile / vbsfOpenDir.

The outcome is written into the guest's SHFLCREATEPARMS (Handle, Result, CreateFlags,
Info) even when the call fails after path conversion; a path conversion failure leaves the
block exactly as the guest sent it.  As in VirtualBox, a file or directory open allocates
its handle before the host is touched (a full table refuses first) and frees it again when
the open fails, which still moves the next-fit cursor; open flags IPRT's
rtFileRecalcAndValidateFlags would refuse (truncation or no access without write access)
are refused at that point, before any host syscall.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from hgcmlab.runtime.fs import Access, Disposition, HostRoot, ObjInfo, OpenAction, RtFs
from hgcmlab.runtime.paths import GuestPath
from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.sharedfolders import errstyle
from hgcmlab.services.sharedfolders.abi import (
    SHFL_HANDLE_NIL,
    ShflCf,
    ShflCreateParms,
    ShflCreateResult,
)
from hgcmlab.services.sharedfolders.context import CallContext
from hgcmlab.services.sharedfolders.handles import HandleKind
from hgcmlab.services.sharedfolders.mappings import Mapping
from hgcmlab.services.sharedfolders.objinfo import to_shfl

R = ShflCreateResult

#: (IF_EXISTS, IF_NEW) -> host disposition for files; pairs absent here are invalid.
_FILE_ACTIONS: dict[tuple[int, int], Disposition] = {
    (ShflCf.ACT_OPEN_IF_EXISTS, ShflCf.ACT_CREATE_IF_NEW): Disposition.OPEN_CREATE,
    (ShflCf.ACT_OPEN_IF_EXISTS, ShflCf.ACT_FAIL_IF_NEW): Disposition.OPEN,
    (ShflCf.ACT_FAIL_IF_EXISTS, ShflCf.ACT_CREATE_IF_NEW): Disposition.CREATE,
    (ShflCf.ACT_REPLACE_IF_EXISTS, ShflCf.ACT_CREATE_IF_NEW): Disposition.CREATE_REPLACE,
    (ShflCf.ACT_OVERWRITE_IF_EXISTS, ShflCf.ACT_CREATE_IF_NEW): Disposition.CREATE_REPLACE,
    (ShflCf.ACT_REPLACE_IF_EXISTS, ShflCf.ACT_FAIL_IF_NEW): Disposition.TRUNCATE,
    (ShflCf.ACT_OVERWRITE_IF_EXISTS, ShflCf.ACT_FAIL_IF_NEW): Disposition.TRUNCATE,
}

_OPEN_RESULT = {OpenAction.OPENED: R.FILE_EXISTS, OpenAction.CREATED: R.FILE_CREATED,
                OpenAction.REPLACED: R.FILE_REPLACED}

_MKDIR_RESULT = {Status.VERR_ALREADY_EXISTS: R.FILE_EXISTS,
                 Status.VERR_PATH_NOT_FOUND: R.PATH_NOT_FOUND,
                 Status.VERR_FILE_NOT_FOUND: R.FILE_NOT_FOUND}
_OPENDIR_RESULT = {Status.VERR_FILE_NOT_FOUND: R.FILE_NOT_FOUND,
                   Status.VERR_PATH_NOT_FOUND: R.PATH_NOT_FOUND,
                   Status.VERR_ACCESS_DENIED: R.FILE_EXISTS}


@dataclass(eq=False)
class _Create:
    ctx: CallContext
    root_id: int
    mapping: Mapping
    host: HostRoot
    path: GuestPath
    parms: ShflCreateParms

    @property
    def windows(self) -> bool:
        """Whether the client wants Windows-style errors (reference §4.5)."""
        return errstyle.windows(self.ctx.client)

    def query(self, path: GuestPath) -> ObjInfo:
        """Path query in the client's symlink mode (SHFL_RT_LINK)."""
        return self.host.query_info(path, follow=not self.ctx.client.symlinks)

    def set_info(self, info: ObjInfo) -> None:
        self.parms.Info = to_shfl(info)

    def fail(self, status: int, result: ShflCreateResult = R.NO_RESULT) -> int:
        self.parms.Handle = SHFL_HANDLE_NIL
        self.parms.Result = result
        return status

    def lookup(self) -> int:
        self.parms.Handle = SHFL_HANDLE_NIL
        try:
            self.set_info(self.query(self.path))
        except RtError as err:
            if err.status == Status.VERR_FILE_NOT_FOUND:
                self.parms.Result = R.FILE_NOT_FOUND
            elif err.status == Status.VERR_PATH_NOT_FOUND:
                self.parms.Result = R.PATH_NOT_FOUND
            else:
                return err.status
            return Status.VINF_SUCCESS
        self.parms.Result = R.FILE_EXISTS
        return Status.VINF_SUCCESS

    def reserve_handle(self) -> int | None:
        """vbsfAllocFileHandle / vbsfAllocDirHandle: the handle is allocated before the
        host is touched.  None when it can be; else the failure status (Result and Handle
        already written back)."""
        try:
            self.ctx.state.reserve_handle(self.ctx.client)
        except RtError as err:
            return self.fail(err.status)
        return None

    def failed_open(self, status: int, result: ShflCreateResult = R.NO_RESULT) -> int:
        """A failure after the handle was allocated: VirtualBox frees it again, which
        still moves the allocation cursor (handles.HandleTable.pass_over)."""
        self.ctx.state.handles.pass_over()
        return self.fail(status, result)

    def open_file(self, legacy_handle: int) -> int:
        """vbsfOpenFile: convert the flags, allocate the handle, RTFileOpenEx, set size."""
        flags = self.parms.CreateFlags
        # vbsfConvertFileOpenFlags: an unknown action pair fails before the handle exists.
        action = _FILE_ACTIONS.get((flags & ShflCf.ACT_MASK_IF_EXISTS, flags & ShflCf.ACT_MASK_IF_NEW))
        if action is None:
            return self.fail(Status.VERR_INVALID_PARAMETER)
        rw = flags & ShflCf.ACCESS_MASK_RW
        # ACCESS_NONE opens for reading; a read-only share silently drops the write bit.
        read = rw != ShflCf.ACCESS_WRITE
        write = bool(rw & ShflCf.ACCESS_WRITE) and self.mapping.writable
        reserved = self.reserve_handle()
        if reserved is not None:
            return reserved
        # rtFileRecalcAndValidateFlags (inside RTFileOpenEx, after the handle allocation):
        # no access at all (write-only on a read-only share), or RTFILE_O_TRUNCATE (the
        # FAIL_IF_NEW forms of REPLACE/OVERWRITE) without write access, is refused before
        # the host is touched.  RTFILE_O_CREATE_REPLACE (the CREATE_IF_NEW forms) carries
        # no TRUNCATE flag and passes with read access: the host open(2) then gets
        # O_RDONLY | O_CREAT | O_TRUNC, which Linux honours.
        if not (read or write) or (action is Disposition.TRUNCATE and not write):
            return self.failed_open(Status.VERR_INVALID_PARAMETER)
        access = Access.READWRITE if read and write else Access.WRITE if write else Access.READ
        # RTFILE_O_APPEND is ignored for read-only opens (fileio-posix.cpp:RTFileOpenEx).
        append = bool(flags & ShflCf.ACCESS_APPEND) and write
        try:
            # dirs: a directory the pre-query did not report (a symlink to one with
            # SET_SYMLINKS) is opened by RTFileOpenEx as a read-only file handle.
            fobj, taken = self.host.open_file(self.path, access, action,
                                              self.create_mode(legacy_handle), append, dirs=True)
        except RtError as err:
            return self.failed_open(*self.open_file_failure(err.status))
        if action in (Disposition.CREATE_REPLACE, Disposition.TRUNCATE):
            try:
                fobj.set_size(self.parms.Info.cbObject)
            except RtError:
                pass  # VirtualBox ignores a failed size change (e.g. read-only handle)
        self.parms.Result = _OPEN_RESULT[taken]
        try:
            info = fobj.info()
        except RtError as err:
            # RTFileQueryInfo failed: VirtualBox closes the file and frees the handle, the
            # Result already set stays.
            fobj.close()
            return self.failed_open(err.status, self.parms.Result)
        handle = self.ctx.state.new_handle(self.ctx.client, self.root_id, self.mapping,
                                             HandleKind.FILE, fobj, self.path)
        self.set_info(info)
        self.parms.Handle = handle.value
        return Status.VINF_SUCCESS

    def open_file_failure(self, status: int) -> tuple[int, ShflCreateResult]:
        """(rc, Result) of a failed RTFileOpenEx (vbsfOpenFile): "not found" and "exists"
        are success plus a Result, adjusted for Windows error style (§4.5)."""
        if status == Status.VERR_FILE_NOT_FOUND:
            if self.windows and errstyle.parent_not_found(self.host, self.path):
                return Status.VINF_SUCCESS, R.PATH_NOT_FOUND
            return Status.VINF_SUCCESS, R.FILE_NOT_FOUND
        if status == Status.VERR_PATH_NOT_FOUND:
            if self.windows and errstyle.invalid_name_for_non_dir(self.host, self.path):
                return Status.VERR_INVALID_NAME, R.NO_RESULT
            return Status.VINF_SUCCESS, R.PATH_NOT_FOUND
        if status == Status.VERR_ALREADY_EXISTS:
            try:
                self.set_info(self.query(self.path))
            except RtError:
                pass  # the object vanished again; Info stays as the guest sent it
            return Status.VINF_SUCCESS, R.FILE_EXISTS
        return status, R.NO_RESULT

    def create_mode(self, legacy_handle: int) -> int:
        """Unix permission bits for a new file (0 -> the host default 0600)."""
        fmode = self.parms.Info.Attr.fMode
        if fmode & RtFs.DOS_MASK and not fmode & RtFs.UNIX_MASK:
            mode = 0o444
            if fmode & RtFs.DOS_DIRECTORY:
                mode |= 0o111
            if not fmode & RtFs.DOS_READONLY:
                mode |= 0o222
        elif legacy_handle == 0:
            mode = 0  # old additions: the mode field is garbage
        else:
            mode = fmode & 0o777
        return mode or 0o600

    def open_dir(self) -> int:
        """vbsfOpenDir: allocate the handle, create the directory if asked (mode 0777),
        then open it unless the creation failed without OPEN_IF_EXISTS."""
        reserved = self.reserve_handle()
        if reserved is not None:
            return reserved
        flags = self.parms.CreateFlags
        result = R.FILE_EXISTS
        status: int = Status.VINF_SUCCESS
        created = False
        wants_create = flags & ShflCf.ACT_MASK_IF_NEW == ShflCf.ACT_CREATE_IF_NEW
        if wants_create:
            try:
                self.host.mkdir(self.path)
                result, created = R.FILE_CREATED, True
            except RtError as err:
                result, status = _MKDIR_RESULT.get(err.status, R.NO_RESULT), err.status
                if (status == Status.VERR_FILE_NOT_FOUND and self.windows
                        and errstyle.parent_not_found(self.host, self.path)):
                    result, status = R.PATH_NOT_FOUND, Status.VERR_PATH_NOT_FOUND
        open_anyway = flags & ShflCf.ACT_MASK_IF_EXISTS == ShflCf.ACT_OPEN_IF_EXISTS
        if wants_create and not created and not open_anyway:
            return self.failed_open(status, result)
        try:
            dobj = self.host.open_dir(self.path)
        except RtError as err:
            return self.failed_open(*self.open_dir_failure(err.status))
        try:
            # RTDirQueryInfo: a path query of the opened directory, links followed.  IPRT
            # keeps that path with a trailing slash, so no name is seen: never DOS_HIDDEN.
            info = self.host.query_info(self.path, follow=True, named=False)
        except RtError as err:
            dobj.close()
            return self.failed_open(err.status, result)  # Result stays as already set
        handle = self.ctx.state.new_handle(self.ctx.client, self.root_id, self.mapping,
                                             HandleKind.DIR, dobj, self.path)
        self.set_info(info)
        self.parms.Handle = handle.value
        self.parms.Result = result
        return Status.VINF_SUCCESS

    def open_dir_failure(self, status: int) -> tuple[int, ShflCreateResult]:
        """(rc, Result) of a failed directory open, adjusted for Windows style (§4.5)."""
        if self.windows:
            if status == Status.VERR_FILE_NOT_FOUND and errstyle.parent_not_found(self.host, self.path):
                return Status.VERR_PATH_NOT_FOUND, R.PATH_NOT_FOUND
            if status == Status.VERR_PATH_NOT_FOUND and errstyle.not_a_directory(self.host, self.path):
                return Status.VERR_NOT_A_DIRECTORY, R.FILE_EXISTS
        return status, _OPENDIR_RESULT.get(status, R.NO_RESULT)

    def run(self) -> int:
        legacy_handle = self.parms.Handle
        self.parms.Result = R.NO_RESULT
        flags = self.parms.CreateFlags
        if flags & ShflCf.LOOKUP:
            return self.lookup()
        try:
            existing: ObjInfo | None = self.query(self.path)
        except RtError:
            existing = None
        if existing is not None:
            if existing.mode & RtFs.DOS_DIRECTORY:
                flags |= ShflCf.DIRECTORY
            if flags & ShflCf.OPEN_TARGET_DIRECTORY:
                self.path = self.path.parent()
                flags = (flags & ~int(ShflCf.ACT_MASK_IF_EXISTS | ShflCf.ACT_MASK_IF_NEW)) | (
                    ShflCf.DIRECTORY | ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_FAIL_IF_NEW)
        self.parms.CreateFlags = flags
        if_exists = flags & ShflCf.ACT_MASK_IF_EXISTS
        if (if_exists in (ShflCf.ACT_REPLACE_IF_EXISTS, ShflCf.ACT_OVERWRITE_IF_EXISTS)
                or flags & ShflCf.ACT_MASK_IF_NEW == ShflCf.ACT_CREATE_IF_NEW) and not self.mapping.writable:
            return self.fail(Status.VERR_WRITE_PROTECT)
        if flags & ShflCf.DIRECTORY:
            return self.open_dir()
        return self.open_file(legacy_handle)


def create(ctx: CallContext) -> int:
    """CREATE(root, path, parms): see the module docstring and reference §5.2.3."""
    root, _, parms_parm = ctx.params
    if len(parms_parm.buffer) != ctypes.sizeof(ShflCreateParms):
        raise RtError(Status.VERR_INVALID_PARAMETER, "SHFLCREATEPARMS size")
    mapping = ctx.state.path_mapping(ctx.client, root.value)
    text = ctx.decoded[1]
    assert text is not None
    path = ctx.state.host_path(ctx.client, mapping, text)
    assert mapping.root is not None
    parms = ShflCreateParms.from_buffer_copy(bytes(parms_parm.buffer))
    op = _Create(ctx, root.value, mapping, mapping.root, path, parms)
    try:
        return op.run()
    finally:
        parms_parm.buffer[:] = bytes(parms)

"""A guest-less Shared Folders client for baselines: calls the service from Python with the
same parameters a guest would send."""

from __future__ import annotations

from hgcmlab.services.hgcm import HgcmCall, SvcParm
from hgcmlab.services.sharedfolders import strings
from hgcmlab.services.sharedfolders.abi import SHFL_HANDLE_NIL, ShflCreateParms, ShflFn
from hgcmlab.services.sharedfolders.service import SharedFoldersService


class DirectClient:
    """One connected UTF-8 client of ``service``."""

    def __init__(self, service: SharedFoldersService, client_id: int) -> None:
        self.service = service
        self.client_id = client_id
        service.connect(client_id, 0xFFFFFFFF)
        self.call(ShflFn.SET_UTF8)

    def call(self, function: int, *params: SvcParm) -> int:
        """One synchronous call; returns its status."""
        return int(self.service.call(HgcmCall(self.client_id, function, list(params))))  # type: ignore[arg-type]

    def map(self, share: str) -> int:
        """MAP_FOLDER with '/' and case sensitivity; returns the root."""
        root = SvcParm.u32(0)
        status = self.call(ShflFn.MAP_FOLDER, SvcParm.ptr(strings.build(share, True)), root,
                           SvcParm.u32(ord("/")), SvcParm.u32(1))
        if status != 0:
            raise RuntimeError(f"MAP_FOLDER {share!r} failed with {status}")
        return root.value

    def create(self, root: int, path: str, flags: int) -> int:
        """CREATE ``path`` with SHFL_CF_* ``flags``; returns the handle."""
        parms = ShflCreateParms()
        parms.Handle = SHFL_HANDLE_NIL
        parms.CreateFlags = flags
        create = SvcParm.ptr(bytes(parms))
        status = self.call(ShflFn.CREATE, SvcParm.u32(root), SvcParm.ptr(strings.build(path, True)), create)
        handle = ShflCreateParms.from_buffer_copy(bytes(create.buffer)).Handle
        if status != 0 or handle == SHFL_HANDLE_NIL:
            raise RuntimeError(f"CREATE {path!r} failed with {status}")
        return handle

"""Helpers of the path and mapping conformance tests (REMOVE, RENAME, CLOSE_AND_REMOVE,
COPY_FILE(_PART), the mapping functions, dispatch): one call per helper, as a guest
driver issues it, and a description of host objects for asserting host state."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hgcmlab.services.hgcm import SvcParm
from hgcmlab.services.sharedfolders.abi import ShflFn
from tests.service.conftest import Guest


def remove(g: Guest, root: int, path: str, flags: int) -> int:
    """SHFL_FN_REMOVE(root, path, flags)."""
    return g.call(ShflFn.REMOVE, SvcParm.u32(root), g.s(path), SvcParm.u32(flags))


def rename(g: Guest, root: int, src: str, dst: str, flags: int) -> int:
    """SHFL_FN_RENAME(root, src, dst, flags)."""
    return g.call(ShflFn.RENAME, SvcParm.u32(root), g.s(src), g.s(dst), SvcParm.u32(flags))


def close_and_remove(g: Guest, root: int, path: str, flags: int, handle: SvcParm) -> int:
    """SHFL_FN_CLOSE_AND_REMOVE(root, path, flags, handle)."""
    return g.call(ShflFn.CLOSE_AND_REMOVE, SvcParm.u32(root), g.s(path), SvcParm.u32(flags), handle)


def copy_file(g: Guest, root_src: int, src: str, root_dst: int, dst: str, flags: int = 0) -> int:
    """SHFL_FN_COPY_FILE(root src, path src, root dst, path dst, flags)."""
    return g.call(ShflFn.COPY_FILE, SvcParm.u32(root_src), g.s(src), SvcParm.u32(root_dst), g.s(dst),
                  SvcParm.u32(flags))


def kind(p: Path) -> str:
    """What is at ``p`` (never following a final symlink): 'missing', 'dir', 'link->TARGET'
    or 'file:CONTENT'."""
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(st.st_mode):
        return "link->" + os.readlink(p)
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file:" + p.read_bytes().decode()
    return "other"


def snapshot(top: Path) -> dict[str, str]:
    """Every name beneath ``top`` (links not followed) -> ``kind``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            out[str(full.relative_to(top))] = kind(full)
    return out


def moved(snap: dict[str, str], src: str, dst: str) -> dict[str, str]:
    """``snap`` after ``src`` (and everything beneath it) took the name ``dst`` (whatever was
    at ``dst`` is gone): the expected host state of a successful rename."""
    src, dst = src.strip("/"), dst.strip("/")
    out = {k: v for k, v in snap.items() if k != dst and not k.startswith(dst + "/")}
    result = {}
    for k, v in out.items():
        if k == src:
            result[dst] = v
        elif k.startswith(src + "/"):
            result[dst + k[len(src):]] = v
        else:
            result[k] = v
    return result


def remove_tree(path: Path) -> None:
    """Delete ``path`` and everything beneath it without recursion and with short paths:
    each subdirectory is first moved up next to ``path`` (shutil.rmtree, and pytest's
    clean-up of old temporary directories, recurse and fail on chains ~1000 levels deep)."""
    queue, moved = [path], 0
    while queue:
        current = queue.pop()
        for entry in os.listdir(current):
            child = current / entry
            if child.is_dir() and not child.is_symlink():
                moved += 1
                target = path.parent / f"{path.name}.rm{moved}"
                os.rename(child, target)
                queue.append(target)
            else:
                os.unlink(child)
        os.rmdir(current)

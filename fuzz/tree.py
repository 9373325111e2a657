"""The adversarial host tree of security.md §5.1 and a fingerprint of what must never change.

Shared by the service tests (``tests/service/conftest.py``) and the fuzz harness.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Tree:
    """The fixture tree under ``base``: ``share`` (writable mapping "sf"), ``ro`` (read-only
    mapping "ro"), ``outside`` and ``share-evil`` (never reachable)."""

    base: Path

    @property
    def share(self) -> Path:
        return self.base / "share"

    @property
    def outside(self) -> Path:
        return self.base / "outside"

    @property
    def ro(self) -> Path:
        return self.base / "ro"

    def snapshot_outside(self) -> dict[str, bytes | str]:
        """Names and contents of everything outside the two shares."""
        out: dict[str, bytes | str] = {}
        for top in (self.outside, self.base / "share-evil"):
            for p in sorted(top.rglob("*")):
                out[str(p)] = p.read_bytes() if p.is_file() else f"dir {oct(p.stat().st_mode)}"
        out["entries"] = ",".join(sorted(os.listdir(self.base)))
        return out

    def fingerprint(self) -> tuple[object, ...]:
        """What no guest may change: everything outside ``share`` (the read-only share
        included) by name, type, mode, size, mtime and inode, plus the base listing."""
        rows: list[object] = [tuple(sorted(os.listdir(self.base))),
                              tuple(sorted(os.listdir(self.base.parent)))]
        for top in (self.outside, self.base / "share-evil", self.ro):
            for dirpath, dirnames, filenames in os.walk(top):
                for name in sorted(dirnames + filenames):
                    st = os.lstat(os.path.join(dirpath, name))
                    rows.append((dirpath, name, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino))
            st = os.lstat(top)
            rows.append((str(top), st.st_mode, st.st_mtime_ns))
        return tuple(rows)

    def reset_share(self) -> None:
        """Put ``share`` back as built (guests may change anything inside it)."""
        shutil.rmtree(self.share)
        _build_share(self.base)


def _build_share(base: Path) -> None:
    (base / "share/sub/empty").mkdir(parents=True)
    (base / "share/sub/file.txt").write_bytes(b"hello")
    os.symlink("sub", base / "share/link_in")
    os.symlink("../outside", base / "share/rel_out")
    os.symlink(str(base / "outside"), base / "share/abs_out")
    os.symlink(str(base / "outside/created.txt"), base / "share/dangling")
    os.symlink("loop", base / "share/loop")
    os.mkfifo(base / "share/fifo")


def build_tree(base: Path) -> Tree:
    """Create the fixture tree under the (existing, empty) directory ``base``."""
    _build_share(base)
    (base / "share-evil").mkdir()
    (base / "share-evil/x").write_bytes(b"evil")
    (base / "outside").mkdir()
    (base / "outside/secret.txt").write_bytes(b"TOPSECRET")
    (base / "ro").mkdir()
    (base / "ro/file.txt").write_bytes(b"ro-data")
    return Tree(base)

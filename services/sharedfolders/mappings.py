"""The mapping (share) table: 64 slots, root ids, version counters (reference §4.1).

A root id is the index of the lowest free entry; each root id has a version counter bumped
whenever it is assigned or released, and the table has a global version bumped on every
add, remove and "became placeholder".  Names match case-insensitively.  A mapping removed
while guests still have it mapped stays as a placeholder until its use count drops to 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from hgcmlab.runtime.fs import HostRoot
from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.sharedfolders.abi import SHFL_MAX_MAPPINGS


class SymlinkPolicy(Enum):
    """Which targets SYMLINK may store on a mapping whose host enabled symlink creation.

    FORBIDDEN: none (VERR_WRITE_PROTECT, like a mapping without creation); SUBTREE: only
    targets that resolve beneath the share root, judged from the link's real directory
    (others VERR_ACCESS_DENIED); ANY: any target text, as VirtualBox 7.0 stores it.
    Whatever is stored, host resolution stays confined to the share.
    """

    FORBIDDEN = "forbidden"
    SUBTREE = "subtree"
    ANY = "any"


def _fold(name: str) -> str:
    return name.casefold()


@dataclass(eq=False)
class Mapping:
    """One shared folder as the host configured it, plus its guest-side use state."""

    name: str
    host_path: str
    root: HostRoot | None
    writable: bool
    auto_mount: bool
    create_symlinks: bool
    auto_mount_point: str
    symlink_policy: SymlinkPolicy = SymlinkPolicy.SUBTREE
    host_case_sensitive: bool = True
    guest_case_sensitive: bool = False
    use_count: int = 0
    placeholder: bool = False


@dataclass
class MappingTable:
    """Root id -> Mapping, with per-root and global version counters.

    ``on_change`` callbacks run after every global version bump (WAIT_FOR_MAPPINGS_CHANGES).
    """

    use_openat2: bool | None = None
    #: Builds each mapping's HostRoot (a ReproducibleRoot factory in reproducible mode).
    root_factory: Callable[..., HostRoot] = HostRoot
    slots: list[Mapping | None] = field(default_factory=lambda: [None] * SHFL_MAX_MAPPINGS)
    root_versions: list[int] = field(default_factory=lambda: [0] * SHFL_MAX_MAPPINGS)
    version: int = 0
    on_change: list[Callable[[int], None]] = field(default_factory=list)

    def _bump(self) -> None:
        self.version = (self.version + 1) & 0xFFFFFFFF
        for callback in list(self.on_change):
            callback(self.version)

    def get(self, root: int) -> Mapping | None:
        """The mapping at ``root`` (placeholders included), or None."""
        return self.slots[root] if 0 <= root < SHFL_MAX_MAPPINGS else None

    def items(self) -> Iterator[tuple[int, Mapping]]:
        """(root id, mapping) in root id order."""
        for root, mapping in enumerate(self.slots):
            if mapping is not None:
                yield root, mapping

    def find(self, name: str) -> int | None:
        """Root id of the live (non-placeholder) mapping called ``name``, any case."""
        key = _fold(name)
        for root, mapping in self.items():
            if not mapping.placeholder and _fold(mapping.name) == key:
                return root
        return None

    def add(self, name: str, host_path: str, *, writable: bool, auto_mount: bool,
            create_symlinks: bool, auto_mount_point: str,
            symlink_policy: SymlinkPolicy = SymlinkPolicy.SUBTREE) -> int:
        """Add a mapping; returns a status (the host API's contract, never raises).

        VERR_ALREADY_EXISTS for a duplicate name, VERR_TOO_MUCH_DATA when all 64 slots are
        used, the host open failure when ``host_path`` is not an accessible directory.
        """
        if self.find(name) is not None:
            return Status.VERR_ALREADY_EXISTS
        free = next((i for i, m in enumerate(self.slots) if m is None), None)
        if free is None:
            return Status.VERR_TOO_MUCH_DATA
        try:
            host_root = self.root_factory(host_path, use_openat2=self.use_openat2)
        except RtError as err:
            return err.status
        self.slots[free] = Mapping(name, host_path, host_root, writable, auto_mount,
                                   create_symlinks, auto_mount_point, symlink_policy)
        self.root_versions[free] = (self.root_versions[free] + 1) & 0xFFFFFFFF
        self._bump()
        return Status.VINF_SUCCESS

    def remove(self, name: str) -> int:
        """Remove by name: unused -> freed (VINF_SUCCESS); in use -> placeholder
        (VINF_PERMISSION_DENIED); unknown -> VERR_FILE_NOT_FOUND."""
        root = self.find(name)
        if root is None:
            return Status.VERR_FILE_NOT_FOUND
        mapping = self.slots[root]
        assert mapping is not None
        if mapping.use_count > 0:
            mapping.placeholder = True
            self._close_root(mapping)
            self._bump()
            return Status.VINF_PERMISSION_DENIED
        self._free(root)
        return Status.VINF_SUCCESS

    def release(self, root: int) -> None:
        """One guest map reference of ``root`` is gone; drop a placeholder at zero."""
        mapping = self.slots[root]
        assert mapping is not None and mapping.use_count > 0
        mapping.use_count -= 1
        if mapping.use_count == 0 and mapping.placeholder:
            self._free(root)

    def _free(self, root: int) -> None:
        mapping = self.slots[root]
        assert mapping is not None
        self._close_root(mapping)
        self.slots[root] = None
        self.root_versions[root] = (self.root_versions[root] + 1) & 0xFFFFFFFF
        self._bump()

    @staticmethod
    def _close_root(mapping: Mapping) -> None:
        if mapping.root is not None:
            mapping.root.close()
            mapping.root = None

    def close(self) -> None:
        """Release every root fd (service unload)."""
        for mapping in self.slots:
            if mapping is not None:
                self._close_root(mapping)

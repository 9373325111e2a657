"""Reproducible mode: the guest sees no host-dependent object or volume information.

A share normally shows the guest what the host file system says (times, inode and device
numbers, owners, directory sizes, ...), as VirtualBox does.  Those values differ between two
runs of the same program on fresh folders, between file systems (ext4, tmpfs, ...) and
between days.  In reproducible mode each share's ``HostRoot`` is a ``ReproducibleRoot``: it
presents every object info the guest can see through ``describe`` (path queries, CREATE's
result, LIST records, INFORMATION GET, SYMLINK's result) and the volume information through
``statvfs`` / ``volume_serial``, with the host-dependent fields replaced by values that depend
only on what the guest did and when, in virtual time.

The rule per field (docs/tracing.md, "Reproducible runs", is the user-facing copy):

* Times are nanoseconds since 1970, ``epoch_ns + virtual cycles`` (1 cycle = 1 ns, the
  clock GetHostTime reports).  An object the run has not changed shows ``epoch_ns`` for all
  four times.  An operation the service performs sets the times the kernel would set, to the
  virtual time of the call: a new object (created file, directory, symlink, copy
  destination) gets all four; a write, truncation or O_TRUNC open sets modification and
  change time; a mode change the change time; a time change the given access/modification
  time (exactly the guest's value) and the change time; creating, removing or renaming an
  entry sets the modification and change time of the directories involved and the change
  time of a renamed or unlinked object.  Reads never move the access time (as on a noatime
  mount).  So every time the run set is later than every time it did not, and times the
  run set are ordered by the virtual time of the operation that set them.
* Node ids (``INodeId``) number the objects of a share 1, 2, 3, ... in the order the run
  first uses them; an object the service creates always gets a new id (an inode number the
  host reuses never carries an old id or old times over).
* The device id (``INodeIdDevice``) and the volume serial are the share's number: 1 for the
  first share added, 2 for the next, and so on.
* Owner and group ids are 0.
* Directories show size 0, allocated size 0 and link count 1; other objects show their real
  size, an allocated size rounded up to 4096 bytes and their real link count.
* Volume: 64 GiB total, 32 GiB available, 4096-byte allocation units, names up to 255 bytes;
  the read-only flag stays the host's.

Mode bits, sizes of non-directories, names, contents and statuses are the host's: they are
what the guest and the share's contents made them.  Changes made to the share by anything
other than this service during a run are not tracked (they would show the epoch).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, replace

from hgcmlab.runtime.fs import (
    Access,
    Disposition,
    HostDir,
    HostFile,
    HostRoot,
    ObjInfo,
    OpenAction,
    RenameType,
    RtFs,
    obj_info,
)
from hgcmlab.runtime.paths import GuestPath
from hgcmlab.runtime.status import RtError

#: Allocation unit of the presented volume; allocated sizes are rounded up to it.
ALLOCATION_UNIT = 4096
#: Presented volume size and free space.
VOLUME_TOTAL_BYTES = 64 << 30
VOLUME_AVAILABLE_BYTES = 32 << 30
#: Longest name component the presented volume reports (255 on ext4, tmpfs, xfs, btrfs).
VOLUME_NAME_MAX = 255

_Identity = tuple[int, int]  # host (st_dev, st_ino)
#: One saved node: host st_dev and st_ino, node id, access, modification, change and birth
#: time (ns).
NodeRow = tuple[int, int, int, int, int, int, int]


@dataclass
class _Node:
    """What the guest is shown for one host object: its node id and its four times (ns)."""

    node_id: int
    access_ns: int
    modification_ns: int
    change_ns: int
    birth_ns: int


class Reproducible:
    """The settings and state of reproducible mode shared by a service's shares.

    ``epoch_ns`` is what the guest sees as the time of cycle 0 (nanoseconds since 1970);
    ``cycles`` returns the current virtual time (1 cycle = 1 ns).  Each share gets its own
    ``ReproducibleRoot`` with the next share number.
    """

    def __init__(self, epoch_ns: int, cycles: Callable[[], int]) -> None:
        self.epoch_ns = epoch_ns
        self.cycles = cycles
        self._shares = 0

    def now_ns(self) -> int:
        """The guest-visible time now: the epoch plus virtual time."""
        return self.epoch_ns + self.cycles()

    def root_factory(self) -> Callable[..., HostRoot]:
        """A ``HostRoot`` factory for ``MappingTable``: each call opens one share."""
        return functools.partial(ReproducibleRoot, settings=self)

    def next_share_number(self) -> int:
        """1 for the first share opened, 2 for the next, ..."""
        self._shares += 1
        return self._shares

    @property
    def shares(self) -> int:
        """How many share numbers were handed out."""
        return self._shares

    def restore(self, epoch_ns: int, shares: int) -> None:
        """Continue a saved run: its epoch (guest-visible times depend on it) and its count
        of share numbers handed out."""
        self.epoch_ns = epoch_ns
        self._shares = shares


class ReproducibleRoot(HostRoot):
    """A share whose guest-visible object and volume information is reproducible.

    Resolution, confinement, statuses and host effects are those of ``HostRoot``; only what
    ``describe``, ``statvfs``, ``volume_serial`` and the open files' ``info`` report differs,
    and the mutating operations note what they changed at the current virtual time.
    """

    def __init__(self, host_path: str | bytes, *, use_openat2: bool | None = None,
                 settings: Reproducible) -> None:
        super().__init__(host_path, use_openat2=use_openat2)
        self.settings = settings
        self.share_number = settings.next_share_number()
        self._nodes: dict[_Identity, _Node] = {}
        self._last_id = 0

    # --- the node table ---------------------------------------------------------------

    def _node(self, identity: _Identity) -> _Node:
        """The node of an object, numbered on first use; unchanged objects show the epoch."""
        node = self._nodes.get(identity)
        if node is None:
            epoch = self.settings.epoch_ns
            node = _Node(self._next_id(), epoch, epoch, epoch, epoch)
            self._nodes[identity] = node
        return node

    def _created(self, st: os.stat_result) -> None:
        """The service created this object now: a new node id, all four times now."""
        now = self.settings.now_ns()
        self._nodes[(st.st_dev, st.st_ino)] = _Node(self._next_id(), now, now, now, now)

    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def node_rows(self) -> list[NodeRow]:
        """The node table as rows sorted by host identity (saved state)."""
        return [(dev, ino, n.node_id, n.access_ns, n.modification_ns, n.change_ns, n.birth_ns)
                for (dev, ino), n in sorted(self._nodes.items())]

    @property
    def last_node_id(self) -> int:
        """The last node id handed out."""
        return self._last_id

    def restore_nodes(self, share_number: int, last_node_id: int, rows: list[NodeRow]) -> None:
        """Continue a saved share: its number, node counter and node table.  The table
        is keyed by host identity (device and inode numbers), so it describes the objects
        it was saved for only on the file system where it was saved."""
        self.share_number = share_number
        self._last_id = last_node_id
        self._nodes = {(dev, ino): _Node(node_id, a, m, c, b)
                       for dev, ino, node_id, a, m, c, b in rows}

    def _forget(self, st: os.stat_result | None) -> None:
        """The object ``st`` describes is gone from the share: drop its node, so the table
        holds at most one node per object the share has (a guest creating and removing
        files in a loop does not grow it) and a reused inode number starts afresh."""
        if st is not None:
            self._nodes.pop((st.st_dev, st.st_ino), None)

    def note_modified(self, identity: _Identity) -> None:
        """Contents changed now: modification and change time."""
        node = self._node(identity)
        node.modification_ns = node.change_ns = self.settings.now_ns()

    def note_changed(self, identity: _Identity) -> None:
        """Metadata changed now: change time."""
        self._node(identity).change_ns = self.settings.now_ns()

    def note_times_set(self, identity: _Identity, access_ns: int | None,
                       modification_ns: int | None) -> None:
        """The guest set times: those values exactly, and the change time now."""
        node = self._node(identity)
        if access_ns is not None:
            node.access_ns = access_ns
        if modification_ns is not None:
            node.modification_ns = modification_ns
        node.change_ns = self.settings.now_ns()

    def _parent_modified(self, path: GuestPath) -> None:
        """An entry of ``path``'s directory was added, removed or renamed."""
        if not path.is_root:
            try:
                st = self.stat(path.parent(), follow=True)
            except RtError:
                return  # bookkeeping never changes an operation's outcome
            self.note_modified((st.st_dev, st.st_ino))

    def _lstat(self, path: GuestPath) -> os.stat_result | None:
        """``lstat_at`` before an operation, None when it fails: the operation itself then
        reports the failure with its own status."""
        try:
            return self.lstat_at(path)
        except RtError:
            return None

    # --- presentation -----------------------------------------------------------------

    def describe(self, st: os.stat_result, name: bytes | None = None) -> ObjInfo:
        """``obj_info`` with every host-dependent field replaced (module docstring)."""
        info = obj_info(st, name)
        node = self._node((st.st_dev, st.st_ino))
        is_dir = info.mode & RtFs.TYPE_MASK == RtFs.TYPE_DIRECTORY
        size = 0 if is_dir else info.size
        allocated = -(-size // ALLOCATION_UNIT) * ALLOCATION_UNIT
        return replace(info, size=size, allocated=allocated, access_ns=node.access_ns,
                       modification_ns=node.modification_ns, change_ns=node.change_ns,
                       birth_ns=node.birth_ns, uid=0, gid=0, nlink=1 if is_dir else info.nlink,
                       dev=self.share_number, ino=node.node_id)

    def statvfs(self) -> os.statvfs_result:
        """The presented volume; only the read-only flag comes from the host."""
        read_only = super().statvfs().f_flag & os.ST_RDONLY
        blocks = VOLUME_TOTAL_BYTES // ALLOCATION_UNIT
        free = VOLUME_AVAILABLE_BYTES // ALLOCATION_UNIT
        return os.statvfs_result((ALLOCATION_UNIT, ALLOCATION_UNIT, blocks, free, free,
                                  0, 0, 0, read_only, VOLUME_NAME_MAX))

    def volume_serial(self) -> int:
        """The share number."""
        return self.share_number

    # --- operations that change objects -------------------------------------------------

    def _checked(self, fd: int, append: bool, dirs: bool = False) -> HostFile:  # type: ignore[override]
        plain = HostRoot._checked(fd, append, dirs)
        return _TrackedFile(plain.fd, plain.append, self)

    def open_file(self, path: GuestPath, access: Access, disposition: Disposition,
                  mode: int = 0o600, append: bool = False,
                  dirs: bool = False) -> tuple[HostFile, OpenAction]:
        """``HostRoot.open_file``, noting a creation or truncation."""
        fobj, action = super().open_file(path, access, disposition, mode, append, dirs)
        if action is OpenAction.CREATED:
            self._created(fobj.stat())
            self._parent_modified(path)
        elif action is OpenAction.REPLACED:
            self.note_modified(_identity(fobj))
        return fobj, action

    def open_dir(self, path: GuestPath) -> HostDir:
        """``HostRoot.open_dir``; the handle reports presented info."""
        plain = super().open_dir(path)
        return _TrackedDir(plain.fd, plain.path, self)

    def mkdir(self, path: GuestPath, mode: int = 0o777) -> None:
        """``HostRoot.mkdir``, noting the new directory and its parent's change."""
        super().mkdir(path, mode)
        self._created(self.stat(path, follow=False))
        self._parent_modified(path)

    def unlink(self, path: GuestPath) -> None:
        """``HostRoot.unlink``, noting the object's and its directory's change."""
        st = self._lstat(path)
        super().unlink(path)
        if st is not None and st.st_nlink > 1:
            self.note_changed((st.st_dev, st.st_ino))  # still reachable by another name
        else:
            self._forget(st)
        self._parent_modified(path)

    def rmdir(self, path: GuestPath) -> None:
        """``HostRoot.rmdir``, noting the parent directory's change."""
        st = self._lstat(path)
        super().rmdir(path)
        self._forget(st)
        self._parent_modified(path)

    def rename(self, src: GuestPath, dst: GuestPath, *, replace: bool, want: RenameType = None,
               before: Callable[[os.stat_result], None] | None = None) -> None:
        """``HostRoot.rename``, noting the object's and both directories' change."""
        st = self._lstat(src)
        replaced = self._lstat(dst)
        super().rename(src, dst, replace=replace, want=want, before=before)
        if replaced is not None and st is not None and (replaced.st_dev, replaced.st_ino) != (st.st_dev, st.st_ino):
            self._forget(replaced)
        if st is not None:
            self.note_changed((st.st_dev, st.st_ino))
        self._parent_modified(src)
        self._parent_modified(dst)

    def symlink(self, path: GuestPath, target: bytes) -> os.stat_result:
        """``HostRoot.symlink``, noting the new link and its directory's change."""
        st = super().symlink(path, target)
        self._created(st)
        self._parent_modified(path)
        return st


def _identity(fobj: HostFile) -> _Identity:
    st = fobj.stat()
    return st.st_dev, st.st_ino


class _TrackedFile(HostFile):
    """An open file of a ReproducibleRoot: reports presented info, notes its changes."""

    def __init__(self, fd: int, append: bool, root: ReproducibleRoot) -> None:
        super().__init__(fd, append)
        self.root = root

    def info(self) -> ObjInfo:
        return self.root.describe(self.stat())

    def write_at(self, offset: int, data: bytes | bytearray | memoryview) -> int:
        done = super().write_at(offset, data)
        if done:
            self.root.note_modified(_identity(self))
        return done

    def set_size(self, size: int) -> None:
        super().set_size(size)
        self.root.note_modified(_identity(self))

    def set_mode(self, mode: int) -> None:
        super().set_mode(mode)
        self.root.note_changed(_identity(self))

    def set_times(self, access_ns: int | None, modification_ns: int | None) -> None:
        super().set_times(access_ns, modification_ns)
        self.root.note_times_set(_identity(self), access_ns, modification_ns)

    def copy_to(self, dst: HostFile) -> int:
        copied = super().copy_to(dst)
        if copied and isinstance(dst, _TrackedFile):
            dst.root.note_modified(_identity(dst))
        return copied


class _TrackedDir(_TrackedFile, HostDir):
    """An open directory of a ReproducibleRoot (listing handles)."""

    def __init__(self, fd: int, path: GuestPath, root: ReproducibleRoot) -> None:
        HostDir.__init__(self, fd, path)
        self.root = root

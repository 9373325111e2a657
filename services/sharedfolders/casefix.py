"""Case correction of guest paths (reference §4.3 step 7, tstShflCase).

A guest that mapped a share case-insensitively (Windows) on a case-sensitive host names
``SUB/FILE.TXT`` and means ``sub/file.txt``.  When the path does not exist as given, the
longest existing prefix is kept and each following missing component is replaced by the
first entry of its parent directory that has the same UTF-8 byte length and matches
case-insensitively.  A component without such an entry ends the correction; the rest stays
as the guest wrote it and the conversion still succeeds (the path may name a new file).

Every existence check and listing goes through the share's confined ``HostRoot``, so the
correction can only ever substitute names of entries beneath the share root.
"""

from __future__ import annotations

from hgcmlab.runtime.fs import HostRoot
from hgcmlab.runtime.paths import GuestPath, fold_name
from hgcmlab.runtime.status import RtError


def _exists(host: HostRoot, components: tuple[bytes, ...], follow: bool) -> bool:
    try:
        host.stat(GuestPath(components), follow)
    except RtError:
        return False
    return True


def _match(host: HostRoot, parent: tuple[bytes, ...], name: bytes) -> bytes | None:
    """The first entry of ``parent`` equal to ``name`` ignoring case, with equal byte length."""
    try:
        listing = host.open_dir(GuestPath(parent))
    except RtError:
        return None
    try:
        entries = listing.names()
    finally:
        listing.close()
    wanted = fold_name(name.decode("utf-8"))
    for entry in entries:
        if len(entry) != len(name) or entry in (b".", b".."):
            continue
        try:
            if fold_name(entry.decode("utf-8")) == wanted:
                return entry
        except UnicodeDecodeError:
            continue  # a host name no guest could have typed
    return None


def correct_case(host: HostRoot, path: GuestPath, *, follow: bool, keep_last: bool) -> GuestPath:
    """``path`` with missing components replaced by existing names differing only in case.

    ``keep_last`` leaves the final component alone (a rename destination, or a LIST
    pattern with wildcards).  ``follow`` is the client's symlink mode for the existence
    checks (§4.4).  Host failures only stop the correction; they are never raised.
    """
    fixed = list(path.components[:-1] if keep_last else path.components)
    if not fixed or _exists(host, tuple(fixed), follow):
        return path
    start = len(fixed) - 1
    while start > 0 and not _exists(host, tuple(fixed[:start]), follow):
        start -= 1
    for index in range(start, len(fixed)):
        if index > start and _exists(host, tuple(fixed[:index + 1]), follow):
            continue
        found = _match(host, tuple(fixed[:index]), fixed[index])
        if found is None:
            break
        fixed[index] = found
    tail = path.components[-1:] if keep_last else ()
    return GuestPath(tuple(fixed) + tail, path.trailing_delimiter)

"""Windows error-style adjustments (reference §4.5), for clients that sent SET_ERROR_STYLE(1).

A POSIX host reports a missing parent directory as "file not found" (ENOENT) and a path
through a non-directory as "path not found" (ENOTDIR); Windows guests expect the NT
distinction instead.  VirtualBox (vbsf.cpp) corrects a few statuses with the three checks
below; every check resolves through the share's confined resolver (``HostRoot.stat``), so a
link leading out of the share counts as neither found nor a directory and nothing outside
is ever looked at.  Linux-style clients (the default) never reach these checks.
"""

from __future__ import annotations

import stat as st_mod

from hgcmlab.runtime.fs import HostRoot
from hgcmlab.runtime.paths import GuestPath
from hgcmlab.runtime.status import RtError, Status
from hgcmlab.services.sharedfolders.abi import ShflErrorStyle
from hgcmlab.services.sharedfolders.context import ClientState

_NOT_FOUND = (Status.VERR_FILE_NOT_FOUND, Status.VERR_PATH_NOT_FOUND)


def windows(client: ClientState) -> bool:
    """True when ``client`` asked for Windows-style errors."""
    return client.error_style is ShflErrorStyle.WINDOWS


def parent_not_found(host: HostRoot, path: GuestPath) -> bool:
    """vbsfErrorStyleIsWindowsPathNotFound: the directory holding ``path``'s last component
    does not exist (file or path not found) or is not a directory (links followed)."""
    if path.is_root:
        return False
    try:
        st = host.stat(path.parent(), follow=True)
    except RtError as err:
        return err.status in _NOT_FOUND
    return not st_mod.S_ISDIR(st.st_mode)


def not_a_directory(host: HostRoot, path: GuestPath) -> bool:
    """vbsfErrorStyleIsWindowsNotADirectory: ``path`` exists and is not a directory.

    The host path keeps the guest's trailing delimiter, so "file/" does not exist (ENOTDIR).
    """
    try:
        st = host.stat(path, follow=True, slash=path.trailing_delimiter)
    except RtError:
        return False
    return not st_mod.S_ISDIR(st.st_mode)


def invalid_name_for_non_dir(host: HostRoot, path: GuestPath) -> bool:
    """vbsfErrorStyleIsWindowsInvalidNameForNonDir: the guest path ended with its delimiter
    and the directory holding its last component exists and is a directory."""
    if not path.trailing_delimiter or path.is_root:
        return False
    try:
        st = host.stat(path.parent(), follow=True)
    except RtError:
        return False
    return st_mod.S_ISDIR(st.st_mode)

"""Guest path text -> host path components (pure, no I/O).

VirtualBox (vbsfpath.cpp) strips leading guest delimiters, replaces the guest delimiter by
the host slash, rejects '/' inside a component when the guest delimiter is '\\', and then
normalises the joined host path lexically ("." dropped, ".." eats the previous component),
refusing a result that leaves the share root with VERR_INVALID_NAME.

This module does the same on a component stack: a ".." that would pop past the share root is
refused at once (VirtualBox lets "../share/x" re-enter the root; we do not, see
docs/deviations.md).  The result is a tuple of UTF-8 component byte strings, relative to the
share root, that never contains "", "." or "..": what ``hgcmlab.runtime.fs`` resolves beneath its
root fd.
"""

from __future__ import annotations

from dataclasses import dataclass

from hgcmlab.runtime.status import RtError, Status

#: Longest component a Linux host accepts (NAME_MAX).
NAME_MAX = 255
#: Longest relative host path we build (PATH_MAX 4096 less the terminator).
PATH_MAX = 4095

DELIM_SLASH = 0x2F
DELIM_BACKSLASH = 0x5C


@dataclass(frozen=True)
class GuestPath:
    """A guest path resolved lexically against the share root.

    ``components`` are the host names from the root down (empty = the root itself);
    ``trailing_delimiter`` records that the guest text ended with its delimiter (never set
    for the root): VirtualBox's host path keeps it as a trailing '/' (RTPathAbsEx), so the
    host calls that get the final name (open, unlink, rmdir, lstat, rename in
    ``hgcmlab.runtime.fs``) see it and answer as the kernel does for "name/".
    """

    components: tuple[bytes, ...]
    trailing_delimiter: bool = False

    @property
    def is_root(self) -> bool:
        """True when the path names the share root itself."""
        return not self.components

    @property
    def name(self) -> bytes:
        """The last component (``b""`` for the root)."""
        return self.components[-1] if self.components else b""

    def parent(self) -> GuestPath:
        """The path without its last component (the root stays the root)."""
        return GuestPath(self.components[:-1])

    def child(self, name: bytes) -> GuestPath:
        """The path extended by one host component."""
        return GuestPath(self.components + (name,))

    def host_relpath(self) -> bytes:
        """The components joined with '/' (``b"."`` for the root)."""
        return b"/".join(self.components) if self.components else b"."


def convert_guest_path(text: str, delimiter: int) -> GuestPath:
    """Convert decoded guest path ``text`` using the client's ``delimiter`` code unit.

    ``delimiter`` is '/' (0x2F), '\\' (0x5C), or 0 before the client mapped anything: then,
    as in VirtualBox, nothing is stripped or converted, so the whole text is one component.
    Raises RtError: VERR_INVALID_NAME for NUL, for '/' inside a component, for text that
    is not encodable as UTF-8 (lone surrogates), and for ".." above the root; VERR_FILENAME_TOO_LONG for a component over 255 bytes or a path over
    4095 bytes.
    """
    if "\0" in text:
        raise RtError(Status.VERR_INVALID_NAME, "NUL in guest path")
    if delimiter == 0:
        pieces = [text] if text else []
        trailing = False
    else:
        delim = chr(delimiter)
        stripped = text.lstrip(delim)
        pieces = stripped.split(delim)
        trailing = bool(stripped) and stripped.endswith(delim)
    stack: list[bytes] = []
    for piece in pieces:
        if "/" in piece:
            # The host separator inside a guest component would smuggle in extra levels.
            raise RtError(Status.VERR_INVALID_NAME, "'/' inside a path component")
        if piece in ("", "."):
            continue
        if piece == "..":
            if not stack:
                raise RtError(Status.VERR_INVALID_NAME, "path leaves the share root")
            stack.pop()
            continue
        try:
            encoded = piece.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates never come out of the strict SHFLSTRING decoder; refuse them
            # here too rather than raise, whoever the caller is.
            raise RtError(Status.VERR_INVALID_NAME, "unencodable guest path") from None
        if len(encoded) > NAME_MAX:
            raise RtError(Status.VERR_FILENAME_TOO_LONG, "component longer than 255 bytes")
        stack.append(encoded)
    if sum(len(c) + 1 for c in stack) - 1 > PATH_MAX:
        raise RtError(Status.VERR_FILENAME_TOO_LONG, "path longer than 4095 bytes")
    return GuestPath(tuple(stack), trailing and bool(stack))


# --- names: case folding, NT wildcards, symlink targets -----------------------------------

#: NT wildcard characters: '*' '?' and the DOS forms '<' (DOS star), '>' (DOS question
#: mark), '"' (DOS dot).  VirtualBox records all five in a guest component on every host.
WILDCARD_CHARS = frozenset("*?<>\"")


def fold_name(name: str) -> str:
    """Upper-case ``name`` one code point at a time, as IPRT's case-insensitive compares do.

    A code point whose upper case is several code points (German sharp s) stays as it is,
    so a folded name has exactly as many code points as the original.
    """
    return "".join(u if len(u := c.upper()) == 1 else c for c in name)


def has_wildcard(name: bytes) -> bool:
    """True when the component contains one of the NT wildcard characters."""
    return any(chr(b) in WILDCARD_CHARS for b in name)


def nt_wildcard_match(pattern: str, name: str) -> bool:
    """NT-style match of ``name`` against ``pattern``, case-insensitively (RTDirOpenFiltered
    with the WINNT filter).

    '*' matches any run of characters, '?' exactly one.  '<' matches any run that does not
    swallow the name's last '.'; '>' matches one character, or nothing at a '.' or at the
    end of the name; '"' matches a '.' or the end of the name.  Any other character matches
    itself.  Dynamic programming over (pattern, name) positions: O(len(pattern) * len(name)),
    so a hostile pattern cannot make the match exponential.
    """
    pat, text = fold_name(pattern), fold_name(name)
    last_dot = text.rfind(".")
    # reach[j]: the pattern prefix consumed so far can end exactly at name position j.
    reach = [True] + [False] * len(text)
    for ch in pat:
        nxt = [False] * (len(text) + 1)
        for j, ok in enumerate(reach):
            if not ok:
                continue
            if ch == "*":
                for k in range(j, len(text) + 1):
                    nxt[k] = True
                break  # every later position is already reachable
            if ch == "<":
                stop = last_dot if last_dot >= j else len(text)
                for k in range(j, stop + 1):
                    nxt[k] = True
            elif ch == ">":
                if j == len(text) or text[j] == ".":
                    nxt[j] = True
                else:
                    nxt[j + 1] = True
            elif ch == "\"":
                if j == len(text):
                    nxt[j] = True
                elif text[j] == ".":
                    nxt[j + 1] = True
            elif j < len(text) and (ch == "?" or text[j] == ch):
                nxt[j + 1] = True
        reach = nxt
    return reach[len(text)]


def symlink_target_inside(target: bytes, depth: int) -> bool:
    """Whether a symlink ``target`` stays beneath the share root, judged lexically.

    ``depth`` is how many directories the link's own directory lies beneath the root.  An
    absolute target is outside; otherwise the target's components are applied to a stack of
    that depth and a ".." that would pop past the root means outside.  Intermediate symlinks
    inside the target are not resolved (they are confined again whenever the link is used).
    """
    if target.startswith(b"/"):
        return False
    level = depth
    for part in target.split(b"/"):
        if part == b"..":
            level -= 1
            if level < 0:
                return False
        elif part not in (b"", b"."):
            level += 1
    return True

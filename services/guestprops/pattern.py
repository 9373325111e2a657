"""Name patterns: RTStrSimplePatternMultiMatch as Property::Matches uses it
(Runtime/common/string/simplepattern.cpp, HostServices/GuestProperties/VBoxGuestPropSvc.cpp).

Patterns are byte strings: ``*`` matches any run, ``?`` one byte, everything else itself;
alternatives are separated by ``|`` and an empty alternative matches nothing (names are
never empty).  An empty pattern list matches every name (Property::Matches).  ``*``
swallows the ``*`` and ``?`` that follow it, so ``a*?`` matches ``a``.

IPRT backtracks recursively, which a guest could make exponential ("*a*a*a...*b" against
"aaa...") and which would need memory per pattern byte here.  With the swallowed
characters dropped, its rule is plain glob matching, so each alternative is matched by the
usual greedy scan that returns to the last ``*`` on a mismatch: no recursion, no memory
beyond two positions, at most pattern length x name length steps (names have at most 63
bytes).  Both are checked against each other in tests/service/test_guestprops_pattern.py.
"""

from __future__ import annotations

_STAR, _QUESTION, _BAR = 0x2A, 0x3F, 0x7C


def _normalised(pattern: bytes) -> bytes:
    """``pattern`` without the ``*`` and ``?`` that directly follow a ``*``."""
    out = bytearray()
    for ch in pattern:
        if not (out and out[-1] == _STAR and ch in (_STAR, _QUESTION)):
            out.append(ch)
    return bytes(out)


def _match_one(pattern: bytes, name: bytes) -> bool:
    """RTStrSimplePatternNMatch of one alternative against a whole name."""
    pattern = _normalised(pattern)
    p = s = 0
    star, resume = -1, 0
    while s < len(name):
        if p < len(pattern) and pattern[p] != _STAR and pattern[p] in (_QUESTION, name[s]):
            p, s = p + 1, s + 1
        elif p < len(pattern) and pattern[p] == _STAR:
            star, resume = p, s
            p += 1
        elif star >= 0:
            resume += 1
            p, s = star + 1, resume
        else:
            return False
    while p < len(pattern) and pattern[p] == _STAR:
        p += 1
    return p == len(pattern)


def matches(patterns: bytes, name: bytes) -> bool:
    """Property::Matches: whether ``name`` matches one of the ``|``-separated ``patterns``
    (both without terminator)."""
    if not patterns:
        return True
    return any(_match_one(alternative, name) for alternative in patterns.split(bytes([_BAR])))

"""Name patterns: RTStrSimplePatternMultiMatch as Property::Matches uses it
(Runtime/common/string/simplepattern.cpp, HostServices/GuestProperties/VBoxGuestPropSvc.cpp).

Patterns are byte strings: ``*`` matches any run, ``?`` one byte, everything else itself;
alternatives are separated by ``|`` and an empty alternative matches nothing (names are
never empty).  An empty pattern list matches every name (Property::Matches).  ``*``
swallows the ``*`` and ``?`` that follow it, so ``a*?`` matches ``a``.

IPRT backtracks; a guest could make that exponential ("*a*a*a...*b" against "aaa..."), so
the same recursion is computed as a table over (pattern position, name position) instead:
pattern length x name length steps.
"""

from __future__ import annotations

_STAR, _QUESTION, _BAR = 0x2A, 0x3F, 0x7C


def _match_one(pattern: bytes, name: bytes) -> bool:
    """RTStrSimplePatternNMatch of one alternative against a whole name.

    ``rows[p][s]``: whether ``pattern[p:]`` matches ``name[s:]``, filled from the end of the
    pattern backwards (IPRT's recursion, memoised and without Python recursion).
    """
    n, m = len(name), len(pattern)
    rows: list[list[bool]] = [[]] * (m + 1)
    rows[m] = [s == n for s in range(n + 1)]
    for p in range(m - 1, -1, -1):
        ch = pattern[p]
        if ch == _STAR:
            q = p
            while q < m and pattern[q] in (_STAR, _QUESTION):
                q += 1
            if q == m:
                rows[p] = [True] * (n + 1)
                continue
            after = rows[q + 1]
            row = [False] * (n + 1)
            found = False
            for s in range(n - 1, -1, -1):  # any i >= s with name[i] == pattern[q], rest matching
                found = found or (name[s] == pattern[q] and after[s + 1])
                row[s] = found
            rows[p] = row
        else:
            after = rows[p + 1]
            rows[p] = [s < n and (ch == _QUESTION or name[s] == ch) and after[s + 1] for s in range(n + 1)]
    return rows[0][0]


def matches(patterns: bytes, name: bytes) -> bool:
    """Property::Matches: whether ``name`` matches one of the ``|``-separated ``patterns``
    (both without terminator)."""
    if not patterns:
        return True
    return any(_match_one(alternative, name) for alternative in patterns.split(bytes([_BAR])))

"""The pattern matcher against a transliteration of IPRT's recursive
RTStrSimplePatternNMatch (Runtime/common/string/simplepattern.cpp), and its cost bound."""

from __future__ import annotations

import random

from hgcmlab.services.guestprops.pattern import matches

_STAR, _QUESTION = 0x2A, 0x3F


def _iprt(pattern: bytes, name: bytes) -> bool:
    """RTStrSimplePatternNMatch step by step (recursion included), NUL meaning the end."""
    def rec(p: int, s: int) -> bool:
        while True:
            ch = pattern[p] if p < len(pattern) else 0
            if ch == _STAR:
                while True:
                    p += 1
                    if p >= len(pattern):
                        return True
                    ch = pattern[p]
                    if ch not in (_STAR, _QUESTION):
                        break
                while True:
                    if s >= len(name):
                        return False
                    found = name[s]
                    s += 1
                    if found == ch and rec(p + 1, s):
                        return True
            elif ch == _QUESTION:
                if s >= len(name):
                    return False
            elif ch == 0:
                return s >= len(name)
            elif (name[s] if s < len(name) else 0) != ch:
                return False
            p += 1
            s += 1
    return rec(0, 0)


def test_agrees_with_iprt_on_random_patterns() -> None:
    rng = random.Random(13)
    for _ in range(20000):
        pattern = bytes(rng.choice(b"ab*?") for _ in range(rng.randint(1, 7)))
        name = bytes(rng.choice(b"ab") for _ in range(rng.randint(1, 6)))
        assert matches(pattern, name) == _iprt(pattern, name), (pattern, name)


def test_hostile_patterns_stay_cheap() -> None:
    """A megabyte of ``*a`` against a 63-byte name that almost matches: one linear scan."""
    assert not matches(b"*a" * 500_000 + b"*b", b"a" * 62 + b"c")
    assert matches(b"*a" * 31 + b"*", b"a" * 63)

"""The fuzz target in CI: every committed seed runs clean, the invariant checks really fire,
and a bounded coverage-guided campaign (atheris/libFuzzer in a subprocess; the seeded
mutational engine where atheris is not installed) finds nothing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fuzz.__main__ import SEED_CORPUS
from fuzz.engine import campaign
from fuzz.harness import Finding, Harness

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("fuzz"))
    yield h
    h.close()


def test_seed_corpus_runs_clean(harness: Harness) -> None:
    seeds = sorted(SEED_CORPUS.iterdir())
    assert 10 <= len(seeds) and sum(p.stat().st_size for p in seeds) < 64 * 1024
    for path in seeds:
        harness.run(path.read_bytes())


def test_outside_change_is_a_finding(harness: Harness) -> None:
    secret = harness.tree.outside / "secret.txt"
    harness.run(b"")
    secret.write_bytes(b"CHANGED!!")
    try:
        with pytest.raises(Finding, match="outside"):
            harness.run(b"")
    finally:
        secret.write_bytes(b"TOPSECRET")
        os.utime(secret, ns=(0, 0))
        harness.baseline = harness.tree.fingerprint()


def test_fd_leak_is_a_finding(harness: Harness) -> None:
    fd = os.open(harness.tree.base, os.O_RDONLY)
    try:
        with pytest.raises(Finding, match="fd count"):
            harness.run(b"")
    finally:
        os.close(fd)
    harness.run(b"")


def test_mutational_engine_smoke(harness: Harness) -> None:
    seeds = [p.read_bytes() for p in sorted(SEED_CORPUS.iterdir())]
    stats = campaign(harness.run, seeds, 300, seed=7, timeout=10)
    assert stats.findings == [] and stats.inputs == 300


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed")
def test_coverage_guided_smoke_campaign(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "fuzz", "--inputs", "3000", "--max-time", "12",
                           "--work", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "Done" in proc.stderr and not list(tmp_path.glob("crash-*"))

"""The loader fuzz target in CI: a few thousand mutated ELF files raise nothing but a
one-line LoadError, and the target's contract checks really fire.  (The long campaign,
>= 100k inputs, is recorded in docs/security.md.)"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import hgcmlab.machine.loader
from fuzz.elf import ElfSpec, Segment, build_elf, loader_seeds
from fuzz.engine import campaign
from fuzz.loader_target import LOADER_RAM, Finding, check_loader
from hgcmlab.machine.loader import Image, LoadError

REPO = Path(__file__).resolve().parents[2]


def test_seeds_are_accepted_elf_files_of_both_classes() -> None:
    seeds = loader_seeds()
    assert {seed[4] for seed in seeds} == {1, 2}  # ELFCLASS32 and ELFCLASS64
    for seed in seeds:
        image = hgcmlab.machine.loader.elf_image(seed, ram_size=LOADER_RAM)
        assert image.segments
        check_loader(seed)


def test_mutated_elf_smoke_campaign_finds_nothing() -> None:
    stats = campaign(check_loader, loader_seeds(), 4000, seed=12, timeout=10)
    assert stats.findings == []
    assert stats.inputs == 4000


def test_a_huge_memsz_is_refused_without_allocating() -> None:
    # 2**62 bytes of bss: the old loader tried to allocate them (MemoryError/OverflowError).
    data = build_elf(ElfSpec(64, 0x100000, [Segment(0x100000, b"\xf4", memsz=1 << 62)]))
    with pytest.raises(LoadError, match="does not fit"):
        hgcmlab.machine.loader.elf_image(data, ram_size=LOADER_RAM)
    check_loader(data)  # and the target accepts the refusal


def test_an_exception_other_than_load_error_escapes_as_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    import struct

    def broken(data: bytes, **_kwargs: object) -> Image:
        raise struct.error("unpack_from requires a buffer of at least 24 bytes")

    monkeypatch.setattr("fuzz.loader_target.elf_image", broken)
    stats = campaign(check_loader, loader_seeds(), 5, seed=1, timeout=10)
    assert stats.findings and stats.findings[0][1].startswith("error: unpack_from")


@pytest.mark.parametrize("bad_image, reason", [
    (Image([(0x1000, b"\xf4")], 0x1000, 64), "argument block"),
    (Image([(LOADER_RAM - 16, b"\xf4" * 16)], LOADER_RAM - 16, 64), "stack page"),
    (Image([(0x100000, b"\xf4" * 32), (0x100010, b"\xf4")], 0x100000, 64), "overlap"),
    (Image([(0x100000, b"\xf4")], 0x200000, 64), "entry point"),
])
def test_an_unplaceable_image_is_a_finding(monkeypatch: pytest.MonkeyPatch, bad_image: Image, reason: str) -> None:
    monkeypatch.setattr("fuzz.loader_target.elf_image", lambda data, **_kwargs: bad_image)
    with pytest.raises(Finding, match=reason):
        check_loader(b"\x7fELF")


def test_a_multi_line_load_error_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    def two_lines(data: bytes, **_kwargs: object) -> Image:
        raise LoadError("first\nsecond")

    monkeypatch.setattr("fuzz.loader_target.elf_image", two_lines)
    with pytest.raises(Finding, match="one line"):
        check_loader(b"\x7fELF")


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed")
def test_coverage_guided_loader_smoke_campaign(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "fuzz", "--target", "loader", "--inputs", "20000",
                           "--max-time", "20", "--work", str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "Done" in proc.stderr and not list(tmp_path.glob("crash-*"))

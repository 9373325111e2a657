"""The loader fuzz target: arbitrary bytes as a program file.

One input is the whole content of a program file.  It goes through ``elf_image`` (ELF
class, byte order, machine, type, program and section headers, symbol table) and
``flat_image`` for a machine with ``LOADER_RAM`` bytes of RAM.  The contract checked:

* the only exception is ``LoadError``, with a one-line, non-empty message;
* an accepted image is placeable, checked here from the numbers alone (not by asking the
  loader): every segment lies in RAM below the stack page and outside the argument block,
  segments do not overlap, the entry point is inside one, and the bytes allocated never
  exceed the RAM size.

A violation raises ``Finding``; any other exception escapes as a finding by itself.
"""

from __future__ import annotations

from hgcmlab.machine.loader import ARGS_BASE, ARGS_MAX_SIZE, STACK_RESERVE, Image, LoadError, elf_image, flat_image

#: Guest RAM the fuzzed files are loaded for (small, so oversized segments are refused
#: rather than allocated).
LOADER_RAM = 0x200000


class Finding(AssertionError):
    """The loader broke its contract for one input."""


def check_loader(data: bytes) -> None:
    """Run one input through the ELF and flat loaders; raise ``Finding`` on a violation."""
    for load in (_load_elf, _load_flat):
        try:
            image = load(data)
        except LoadError as error:
            message = str(error)
            if not message or "\n" in message:
                raise Finding(f"LoadError message is not one line: {message!r}") from None
            continue
        _check_image(image)


def _load_elf(data: bytes) -> Image:
    return elf_image(data, name="fuzz.elf", ram_size=LOADER_RAM)


def _load_flat(data: bytes) -> Image:
    return flat_image(data, name="fuzz.bin", ram_size=LOADER_RAM)


def _check_image(image: Image) -> None:
    if image.mode not in (None, 32, 64):
        raise Finding(f"image mode {image.mode!r}")
    total = 0
    spans: list[tuple[int, int]] = []
    for address, content in image.segments:
        end = address + len(content)
        total += len(content)
        if not content:
            raise Finding(f"empty segment at {address:#x}")
        if address < 0 or end > LOADER_RAM - STACK_RESERVE:
            raise Finding(f"segment {address:#x}..{end:#x} is outside RAM below the stack page")
        if address < ARGS_BASE + ARGS_MAX_SIZE and end > ARGS_BASE:
            raise Finding(f"segment {address:#x}..{end:#x} overlaps the argument block")
        for other_start, other_end in spans:
            if address < other_end and other_start < end:
                raise Finding(f"segments {other_start:#x} and {address:#x} overlap")
        spans.append((address, end))
    if total > LOADER_RAM:
        raise Finding(f"{total} bytes allocated for {LOADER_RAM} bytes of RAM")
    if not any(start <= image.entry < end for start, end in spans):
        raise Finding(f"entry point {image.entry:#x} is outside every segment")
    for name, value in image.symbols.items():
        if not isinstance(name, str) or not name or not isinstance(value, int):
            raise Finding(f"bad symbol {name!r}={value!r}")

"""The C guest kit: headers, crt0, linker script, a freestanding C library and an HGCM
library for guest programs written in C (docs/c-guests.md).  ``hgcmlab.guest_asm.c.compiler``
builds programs with the system's gcc or clang; ``hgcmlab.guest_asm.c.genabi`` writes the ABI
header from the Python ABI modules."""

from pathlib import Path

#: The kit's root folder (``include/``, ``src/``, ``link.ld``), shipped as package data.
KIT_DIR = Path(__file__).resolve().parent

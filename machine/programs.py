"""The example programs bundled in ``guest_asm/programs``, as machine images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from guest_asm.assembler import AssembledProgram, assemble
from guest_asm.c.compiler import build as build_c, define_flags
from guest_asm.errors import AssemblyError
from machine.loader import MAX_GUEST_RAM, Image, LoadError, elf_image

#: Where the bundled example programs live.
PROGRAMS_DIR = Path(__file__).resolve().parent.parent / "guest_asm" / "programs"


def bundled_program(name: str, *, mode: int, defines: dict[str, int] | None = None) -> Image:
    """Assemble one of the example programs shipped in ``guest_asm/programs``."""
    path = PROGRAMS_DIR / name
    if not path.is_file():
        available = ", ".join(sorted(p.name for p in PROGRAMS_DIR.glob("*.s"))) or "none"
        raise LoadError(f"no bundled program {name!r} (available: {available})")
    return assembled_image(path, mode=mode, defines=defines)


def c_image(path: Path, *, mode: int, defines: dict[str, int] | None = None, flags: Sequence[str] = (),
            ram_size: int = MAX_GUEST_RAM, paging: bool = False) -> Image:
    """Build the C source at ``path`` for ``mode`` with the C guest kit (guest_asm/c; cached
    by content) and load the ELF; ``defines`` become ``-DNAME=VALUE``, ``flags`` follow them
    on the compiler's command line.  With ``paging`` the program is built as a higher-half
    kernel-like image for the loader's paged start (load it with ``paging=True``).  Source lines come
    from its DWARF line table.  Raises ``CompilerMissing``/``CompileError`` (both LoadError,
    the latter with the compiler's diagnostics) or LoadError."""
    program = build_c(path, mode=mode, extra_flags=[*define_flags(defines), *flags], higher_half=paging)
    image = elf_image(program.elf, name=str(path), ram_size=ram_size, paging=paging)
    image.source_lookup = program.source_at
    return image

"""Assembled programs as machine images: the bridge from ``guest_asm`` to the loader."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from guest_asm.assembler import AssembledProgram, assemble
from guest_asm.c.compiler import build as build_c, define_flags
from guest_asm.errors import AssemblyError
from machine.loader import MAX_GUEST_RAM, Image, LoadError, elf_image

#: Where the bundled example programs live.
PROGRAMS_DIR = Path(__file__).resolve().parent.parent / "guest_asm" / "programs"


def image_from_assembled(program: AssembledProgram) -> Image:
    """Wrap an assembled program as a loadable image (entry ``_start``, source lines kept)."""

    return Image(list(program.segments), program.entry, program.mode, dict(program.symbols),
                 program.name, program.source_at)


def assembled_image(path: Path, *, mode: int, defines: dict[str, int] | None = None) -> Image:
    """Assemble the source file at ``path`` for ``mode``; assembly errors, and a source (or
    an included file) that cannot be read or is not UTF-8 text, become LoadError."""
    try:
        program = assemble(path, mode=mode, defines=dict(defines or {}))
    except AssemblyError as error:
        raise LoadError(f"assembly failed: {error}") from None
    except UnicodeDecodeError as error:
        raise LoadError(f"{path}: the source (or a file it includes) is not UTF-8 text: {error.reason} "
                        f"at byte {error.start}") from None
    except OSError as error:
        raise LoadError(f"{path}: cannot read: {error.strerror or error}") from None
    return image_from_assembled(program)


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

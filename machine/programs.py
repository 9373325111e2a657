"""The example programs bundled in ``guest_asm/programs``, as machine images."""

from __future__ import annotations

from pathlib import Path

from hgcmlab.machine.loader import Image, LoadError, assembled_image

#: Where the bundled example programs live.
PROGRAMS_DIR = Path(__file__).resolve().parent.parent / "guest_asm" / "programs"


def bundled_program(name: str, *, mode: int, defines: dict[str, int] | None = None) -> Image:
    """Assemble one of the example programs shipped in ``guest_asm/programs``."""
    path = PROGRAMS_DIR / name
    if not path.is_file():
        available = ", ".join(sorted(p.name for p in PROGRAMS_DIR.glob("*.s"))) or "none"
        raise LoadError(f"no bundled program {name!r} (available: {available})")
    return assembled_image(path, mode=mode, defines=defines)

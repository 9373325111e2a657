"""Build C guest programs with the system's gcc or clang, cached by content.

``build(source, mode=64)`` compiles ``source`` together with the kit (crt0, the freestanding
C library, the HGCM and Shared Folders library) into a static ELF executable loaded at
0x10000 (``link.ld``; a higher-half image with ``higher_half``), freestanding and with DWARF debug information, and returns the ELF
bytes with the program's line table (address -> file, line, text) for source-line reports.

The compiler is ``$HGCMLAB_CC`` when set, else ``gcc``, else ``clang``; none of them is a
one-line ``CompilerMissing``.  Compile and link errors raise ``CompileError`` whose message
is a one-line summary and whose ``diagnostics`` are the compiler's own output.

Cache: a build is stored under ``cache_directory()`` (``$HGCMLAB_CACHE_DIR``, else
``$XDG_CACHE_HOME/hgcmlab/c``, else ``~/.cache/hgcmlab/c``) by the SHA-256 of the
compiler's identity (path and ``--version``), the flags, every kit file and the program's
preprocessed text (so a change in any header it includes, its own too, is a new build).
Entries are written atomically (a temporary file renamed into place), so concurrent test
workers never see half a file; a corrupt entry is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hgcmlab.guest_asm.c import KIT_DIR
from hgcmlab.guest_asm.errors import LoadError
from hgcmlab.guest_asm.source import SourceLocation

#: Flags every program is built with (``-m32``/``-m64`` and the kit's paths are added).
#: Kernel-style: no libc, no PIC, no red zone (interrupt handlers push below rsp), no SSE
#: (the machine does not enable it), no stack protector (no TLS), -Og keeps source lines exact.
BASE_FLAGS: tuple[str, ...] = (
    "-std=gnu11", "-Og", "-g", "-Wall", "-Wextra",
    "-ffreestanding", "-fno-builtin", "-fno-pic", "-fno-pie", "-no-pie", "-static", "-nostdlib",
    "-fno-stack-protector", "-mno-red-zone", "-mgeneral-regs-only", "-fno-asynchronous-unwind-tables",
    "-ffunction-sections", "-fdata-sections",
    "-Wl,--gc-sections", "-Wl,--build-id=none", "-Wl,-z,max-page-size=0x1000", "-Wl,-z,noexecstack",
)
#: The kit's library sources, compiled into every program.
KIT_SOURCES: tuple[str, ...] = ("start.c", "string.c", "log.c", "paging.c", "hgcm.c", "irq.c", "sf.c")
#: A compiler that has not finished after this many seconds is stopped (a runaway build).
COMPILE_TIMEOUT = 120.0
#: Compiler output kept for a failed build (the first bytes; the rest is dropped).
MAX_DIAGNOSTICS = 64 * 1024
_INSTALL_HINT = "install gcc (apt-get install gcc) or clang, or set HGCMLAB_CC"


class CompileError(LoadError):
    """The program did not compile or link; ``diagnostics`` holds the compiler's output."""

    def __init__(self, summary: str, diagnostics: str) -> None:
        super().__init__(summary)
        self.diagnostics = diagnostics


class CompilerMissing(LoadError):
    """No C compiler is installed (the message says what to install)."""


@dataclass(frozen=True)
class LineEntry:
    """The first address of a run of code from one source line."""

    address: int
    file: str
    line: int
    text: str


@dataclass(frozen=True)
class CProgram:
    """A built C program: the ELF bytes, where it is cached and its line table (sorted)."""

    elf: bytes
    path: Path
    lines: tuple[LineEntry, ...]

    def source_at(self, address: int) -> SourceLocation | None:
        """The source line the code at ``address`` came from (the nearest entry at or below it)."""
        index = bisect_right([entry.address for entry in self.lines], address) - 1
        if index < 0:
            return None
        entry = self.lines[index]
        return SourceLocation(entry.file, entry.line, entry.text)


def define_flags(defines: dict[str, int] | None) -> list[str]:
    """``-DNAME=VALUE`` for each define, sorted by name (the order is part of the cache key)."""
    return [f"-D{name}={value}" for name, value in sorted((defines or {}).items())]


def find_compiler() -> str:
    """The compiler command: ``$HGCMLAB_CC``, gcc or clang; ``CompilerMissing`` if none exists."""
    wanted = os.environ.get("HGCMLAB_CC")
    candidates = [wanted] if wanted else ["gcc", "clang"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    if wanted:
        raise CompilerMissing(f"HGCMLAB_CC={wanted} not found: {_INSTALL_HINT}")
    raise CompilerMissing(f"gcc not found: {_INSTALL_HINT}")


@cache
def compiler_identity(compiler: str) -> str:
    """The compiler's path and first ``--version`` line (part of every cache key)."""
    result = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False,
                            timeout=COMPILE_TIMEOUT)
    return f"{compiler}\n{result.stdout.splitlines()[0] if result.stdout else ''}"


def cache_directory() -> Path:
    """Where built programs are cached (see the module docstring)."""
    explicit = os.environ.get("HGCMLAB_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hgcmlab" / "c"


def _layout_flags(mode: int, higher_half: bool) -> list[str]:
    """Mode, linker script and include path.  A higher-half image is linked at
    KERNEL_BASE + 1 MiB and loaded at 1 MiB (``higher-half-<mode>.ld``); 64-bit code there
    needs the kernel code model (addresses in the top 2 GiB)."""
    if mode not in (32, 64):
        raise ValueError(f"mode must be 32 or 64, not {mode}")
    script = KIT_DIR / (f"higher-half-{mode}.ld" if higher_half else "link.ld")
    model = ["-mcmodel=kernel"] if higher_half and mode == 64 else []
    return [f"-m{mode}", *model, f"-Wl,-T,{script}", f"-I{KIT_DIR / 'include'}"]


def _kit_files() -> list[Path]:
    return sorted(path for path in KIT_DIR.rglob("*") if path.is_file() and path.suffix in (".c", ".h", ".S", ".ld"))


def _run(command: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, errors="replace", check=False,
                              timeout=COMPILE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CompileError(f"{what}: the compiler did not finish within {COMPILE_TIMEOUT:.0f} s", "") from None
    except OSError as error:
        raise CompilerMissing(f"{command[0]}: cannot run: {error.strerror or error}: {_INSTALL_HINT}") from None


def _failure(source: Path, result: subprocess.CompletedProcess[str], stage: str) -> CompileError:
    diagnostics = (result.stderr + result.stdout)[:MAX_DIAGNOSTICS]
    errors = sum(1 for line in diagnostics.splitlines() if " error: " in line or line.startswith("error:"))
    count = f"{errors} error{'s' if errors != 1 else ''}" if errors else f"exit status {result.returncode}"
    return CompileError(f"{source}: {stage} failed ({count})", diagnostics)


def _cache_key(compiler: str, flags: list[str], source: Path) -> str:
    preprocessed = _run([compiler, *flags, "-E", str(source)], str(source))
    if preprocessed.returncode != 0:
        raise _failure(source, preprocessed, "compilation")
    digest = hashlib.sha256()
    for part in (compiler_identity(compiler), "\0".join(flags), preprocessed.stdout):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0\0")
    for path in _kit_files():
        digest.update(str(path.relative_to(KIT_DIR)).encode() + b"\0" + path.read_bytes() + b"\0\0")
    return digest.hexdigest()


def _line_table(elf: Path, sources: list[Path]) -> list[LineEntry]:
    """Statement rows of the DWARF line table, read with ``objdump --dwarf=decodedline``
    (binutils comes with gcc); without objdump the table is empty (no source lines).  File
    names there are base names, resolved against the files the program was built from."""
    objdump = shutil.which("objdump")
    if objdump is None:
        return []
    result = subprocess.run([objdump, "--dwarf=decodedline", str(elf)], capture_output=True, text=True,
                            errors="replace", check=False, timeout=COMPILE_TIMEOUT)
    by_name = {path.name: path for path in sources}
    texts: dict[Path, list[str]] = {}
    entries: dict[int, LineEntry] = {}
    for row in result.stdout.splitlines():
        fields = row.split()
        if len(fields) < 3 or not fields[1].isdigit() or not fields[2].startswith("0x"):
            continue
        path = by_name.get(fields[0])
        if path is None:
            continue
        if path not in texts:
            texts[path] = path.read_text(encoding="utf-8", errors="replace").splitlines()
        number = int(fields[1])
        lines = texts[path]
        text = lines[number - 1] if 0 < number <= len(lines) else ""
        entries[int(fields[2], 16)] = LineEntry(int(fields[2], 16), str(path), number, text)
    return [entries[address] for address in sorted(entries)]


def _load_cached(elf_path: Path, lines_path: Path) -> CProgram | None:
    try:
        elf = elf_path.read_bytes()
        rows = json.loads(lines_path.read_text(encoding="utf-8"))
        lines = tuple(LineEntry(int(a), str(f), int(n), str(t)) for a, f, n, t in rows)
    except (OSError, ValueError, TypeError):
        return None
    return CProgram(elf, elf_path, lines)


def _store(directory: Path, name: str, data: bytes) -> Path:
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
    target = directory / name
    os.replace(temporary, target)
    return target


def build(source: Path, *, mode: int = 64, extra_flags: Sequence[str] = (), higher_half: bool = False,
          cache_dir: Path | None = None) -> CProgram:
    """Build ``source`` for ``mode`` (32 or 64) with the kit, or take it from the cache.

    By default the program is linked at 0x10000 and starts unpaged; ``higher_half`` links a
    kernel-like image at 0xffffffff80100000 (64-bit) or 0xC0100000 (32-bit), loaded at
    physical 0x100000, for the loader's paged start (``run --paging``, docs/paging.md).

    ``extra_flags`` go to the compiler after the kit's (e.g. ``-DVERBOSE=1``, ``-O2``).
    Raises ``CompilerMissing``, ``CompileError`` (diagnostics kept) or ``LoadError`` for a
    missing or unreadable source or cache directory."""
    if not source.is_file():
        raise LoadError(f"{source}: no such program file" if not source.exists() else f"{source}: not a regular file")
    compiler = find_compiler()
    flags = [*BASE_FLAGS, *_layout_flags(mode, higher_half), *extra_flags]
    key = _cache_key(compiler, flags, source)
    directory = cache_dir or cache_directory()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LoadError(f"cannot create the C build cache {directory}: {error.strerror or error}") from None
    elf_path, lines_path = directory / f"{key}-{mode}.elf", directory / f"{key}-{mode}.lines.json"
    cached = _load_cached(elf_path, lines_path)
    if cached is not None:
        return cached
    sources = [KIT_DIR / "src" / f"crt0_{mode}.S", *(KIT_DIR / "src" / name for name in KIT_SOURCES), source]
    with tempfile.TemporaryDirectory(dir=directory, prefix=".build-") as work:
        output = Path(work) / "program.elf"
        result = _run([compiler, *flags, *map(str, sources), "-o", str(output)], str(source))
        if result.returncode != 0:
            raise _failure(source, result, "build")
        headers = [*(KIT_DIR / "include" / "hgcmlab").glob("*.h"), *source.resolve().parent.glob("*.h")]
        lines = _line_table(output, [*sources, *headers])
        elf = output.read_bytes()
    _store(directory, lines_path.name, json.dumps([[e.address, e.file, e.line, e.text] for e in lines]).encode())
    _store(directory, elf_path.name, elf)
    return CProgram(elf, elf_path, tuple(lines))

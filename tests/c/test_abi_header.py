"""The C ABI header is generated from the Python ABI modules and cannot drift from them."""

import ctypes
import shutil
import subprocess

import pytest

from hgcmlab.guest_asm.c import genabi

needs_cc = pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("clang") is None,
                              reason="no C compiler (gcc or clang) installed")


def _compile(text: str, mode: int, tmp_path) -> subprocess.CompletedProcess:
    source = tmp_path / "check.c"
    source.write_text(text)
    compiler = shutil.which("gcc") or shutil.which("clang")
    return subprocess.run([compiler, f"-m{mode}", "-ffreestanding", "-fsyntax-only", "-std=gnu11",
                           f"-I{genabi.KIT_DIR / 'include'}", str(source)], capture_output=True, text=True)


def test_checked_in_header_is_what_the_generator_writes():
    # Fails whenever an ABI module changes without `python -m hgcmlab.guest_asm.c.genabi`.
    assert genabi.HEADER_PATH.read_text(encoding="utf-8") == genabi.render()


def test_header_carries_constants_and_layouts_of_the_abi_modules():
    text = genabi.render()
    assert "#define VMMDEV_PORT 53280\n" in text
    assert "#define VMMDevReq_HGCMCall64 63\n" in text
    assert "#define VERR_INVALID_PARAMETER (-2)\n" in text
    assert "#define SHFL_HANDLE_NIL 0xffffffffffffffffULL\n" in text
    assert '_Static_assert(sizeof(HgcmCall) == 44' in text
    assert '_Static_assert(__builtin_offsetof(ShflCreateParms, Info) == 16' in text


@needs_cc
@pytest.mark.parametrize("mode", [32, 64])
def test_header_compiles_and_its_layout_checks_hold(mode, tmp_path):
    result = _compile('#include <hgcmlab/abi.h>\n#include <hgcmlab/hgcm.h>\n#include <hgcmlab/sf.h>\n'
                      '#include <hgcmlab/paging.h>\n#include <hgcmlab/libc.h>\n#include <hgcmlab/io.h>\n',
                      mode, tmp_path)
    assert result.returncode == 0, result.stderr


@needs_cc
def test_a_layout_that_differs_from_ctypes_is_refused_by_the_compiler(tmp_path):
    class Skewed(ctypes.LittleEndianStructure):
        _pack_ = 1
        _fields_ = [("a", ctypes.c_uint8), ("b", ctypes.c_uint32)]

    lines = genabi._struct_text(Skewed)
    # The same C struct with the natural packing: b moves to offset 4, the asserts fire.
    broken = "\n".join(line for line in lines if not line.startswith("#pragma"))
    result = _compile("#include <stdint.h>\n" + broken + "\n", 64, tmp_path)
    assert result.returncode != 0
    assert "Skewed.b: offset differs from the ABI module" in result.stderr

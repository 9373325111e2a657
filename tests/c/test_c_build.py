"""Building C guests: `hgcmlab run prog.c`, `hgcmlab build`, errors, the content cache."""

import io
import shutil
from pathlib import Path

import pytest

import hgcmlab.guest_asm.c.compiler as compiler
from hgcmlab.machine.cli import main

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("clang") is None,
                                reason="no C compiler (gcc or clang) installed")

PROGRAM = '#include <hgcmlab/libc.h>\nint main(int argc, char **argv) { hg_printf("hi %s\\n", argv[0]); return argc + 40; }\n'


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("HGCMLAB_CACHE_DIR", str(directory))
    return directory


@pytest.mark.parametrize("mode", ["32", "64"])
def test_run_builds_and_runs_a_c_source(mode, tmp_path, cache):
    source = tmp_path / "hi.c"
    source.write_text(PROGRAM)
    status, out, err = _cli("run", str(source), "--mode", mode, "--", "there", "x")
    assert (status, err) == (42, "")
    assert out.splitlines()[0] == "[guest] hi there"


def test_build_writes_an_elf_with_debug_information_that_runs(tmp_path, cache):
    source = tmp_path / "hi.c"
    source.write_text(PROGRAM)
    status, out, _err = _cli("build", str(source), "--mode", "32", "-o", str(tmp_path / "hi.elf"))
    assert status == 0 and out.startswith(f"{tmp_path / 'hi.elf'}: ")
    data = (tmp_path / "hi.elf").read_bytes()
    assert data[:5] == b"\x7fELF\x01" and b".debug_line" in data
    status, out, _err = _cli("run", str(tmp_path / "hi.elf"), "--mode", "32", "-q", "--", "elf")
    assert (status, out) == (41, "[guest] hi elf\n")


def test_compile_errors_show_the_diagnostics_and_a_summary(tmp_path, cache):
    source = tmp_path / "bad.c"
    source.write_text("int main(void) {\n    return undefined_name;\n}\n")
    status, out, err = _cli("run", str(source))
    assert status == 2 and out == ""
    assert f"{source}:2:12: error: " in err and "undefined_name" in err
    assert err.splitlines()[-1] == f"hgcmlab: error: {source}: build failed (1 error)"
    assert "Traceback" not in err
    status, _out, err_build = _cli("build", str(source))
    assert status == 2 and err_build.splitlines()[-1] == err.splitlines()[-1]


def test_a_missing_compiler_is_one_line_naming_what_to_install(tmp_path, cache, monkeypatch):
    source = tmp_path / "hi.c"
    source.write_text(PROGRAM)
    monkeypatch.setenv("HGCMLAB_CC", "no-such-compiler-here")
    status, _out, err = _cli("run", str(source))
    assert status == 2
    assert err == ("hgcmlab: error: HGCMLAB_CC=no-such-compiler-here not found: install gcc "
                   "(apt-get install gcc) or clang, or set HGCMLAB_CC\n")
    monkeypatch.delenv("HGCMLAB_CC")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(compiler.CompilerMissing, match=r"^gcc not found: install gcc \(apt-get install gcc\) or clang"):
        compiler.find_compiler()


def test_builds_are_cached_by_content_including_included_headers(tmp_path, cache, monkeypatch):
    (tmp_path / "value.h").write_text("#define VALUE 1\n")
    source = tmp_path / "prog.c"
    source.write_text('#include "value.h"\nint main(void) { return VALUE; }\n')
    commands: list[list[str]] = []
    real_run = compiler._run

    def counting_run(command, what):
        commands.append(command)
        return real_run(command, what)

    monkeypatch.setattr(compiler, "_run", counting_run)
    first = compiler.build(source, mode=64)
    builds = sum("-E" not in command for command in commands)
    again = compiler.build(source, mode=64)
    assert sum("-E" not in command for command in commands) == builds == 1  # a cache hit compiles nothing
    assert again.elf == first.elf and again.path == first.path and again.path.parent == cache
    (tmp_path / "value.h").write_text("#define VALUE 2\n")
    changed = compiler.build(source, mode=64)
    assert changed.path != first.path and sum("-E" not in command for command in commands) == 2


def test_a_corrupt_cache_entry_is_rebuilt(tmp_path, cache):
    source = tmp_path / "prog.c"
    source.write_text("int main(void) { return 3; }\n")
    first = compiler.build(source, mode=32)
    lines = first.path.with_name(first.path.name.replace(".elf", ".lines.json"))
    lines.write_text("{not json")
    assert compiler.build(source, mode=32).elf == first.elf

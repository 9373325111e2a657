"""The command-line example programs (ls, cat, cp, ...) run end to end on real host trees.

Arguments come through the argument block (Machine.set_arguments); each test checks the
guest's log lines and exit code and the host tree afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hgcmlab.guest_asm import assemble
from hgcmlab.guest_asm.source import LIB_DIR
from hgcmlab.machine.boards import vbox_board

PROGRAMS = Path(LIB_DIR).parent / "programs"
TOOLS = ["ls.s", "cat.s", "cp.s", "cp_copyfile.s", "mkdir.s", "rmdir.s", "mv.s", "stat.s", "df.s",
         "ln_s.s", "readlink.s"]
MODES = (64, 32)


def run(program: str, args: list[str], share: Path, mode: int = 64, *,
        readonly: Path | None = None, symlinks: bool = False):
    machine = vbox_board(mode=mode)
    machine.add_share("d", share, create_symlinks=symlinks)
    if readonly is not None:
        machine.add_share("r", readonly, writable=False)
    machine.set_arguments(args)
    machine.load(assemble(PROGRAMS / program, mode=mode))
    result = machine.run()
    assert result.fault is None, result.fault.format()
    return result


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("program", TOOLS)
def test_tool_without_arguments_prints_usage_and_exits_1(tmp_path: Path, program: str, mode: int) -> None:
    result = run(program, [], tmp_path, mode)
    assert result.exit_code == 1
    assert len(result.log_lines) == 1 and result.log_lines[0].startswith("usage: ")


@pytest.mark.parametrize("mode", MODES)
def test_ls_lists_every_name_once(tmp_path: Path, mode: int) -> None:
    names = ["a.txt", ".hidden", "sub", "ünï cödé", "x" * 200]
    for name in names:
        (tmp_path / name).write_text(name)
    result = run("ls.s", ["d:/"], tmp_path, mode)
    assert result.exit_code == 0
    assert sorted(result.log_lines) == sorted(names)


def test_ls_of_10000_entries_resumes_until_no_more_files(tmp_path: Path) -> None:
    names = {f"entry_{i:05d}.dat" for i in range(10_000)}
    for name in names:
        (tmp_path / name).touch()
    result = run("ls.s", ["d:"], tmp_path)
    assert result.exit_code == 0
    assert len(result.log_lines) == 10_000
    assert set(result.log_lines) == names


def test_ls_of_a_missing_directory_fails(tmp_path: Path) -> None:
    result = run("ls.s", ["d:/nope"], tmp_path)
    assert result.exit_code == 3
    assert result.log_lines == ["error: open d:/nope: -102"]


@pytest.mark.parametrize("mode", MODES)
def test_cat_prints_a_multi_kib_file(tmp_path: Path, mode: int) -> None:
    lines = [f"line {i:04d}: " + "abcdefghij" * (i % 7 + 1) for i in range(900)]
    (tmp_path / "notes.txt").write_text("\n".join(lines) + "\n")
    assert (tmp_path / "notes.txt").stat().st_size > 40_000
    result = run("cat.s", ["d:/notes.txt"], tmp_path, mode)
    assert (result.exit_code, result.log_lines) == (0, lines)


def test_cat_ends_a_last_line_without_newline(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"one\ntwo")
    result = run("cat.s", ["d:f"], tmp_path)
    assert (result.exit_code, result.log_lines) == (0, ["one", "two"])


@pytest.mark.parametrize("mode", MODES)
def test_cat_of_a_missing_file_fails_with_file_not_found(tmp_path: Path, mode: int) -> None:
    result = run("cat.s", ["d:/missing.txt"], tmp_path, mode)
    assert result.exit_code == 3
    assert result.log_lines == ["error: open d:/missing.txt: -102"]


def test_bad_path_argument_and_unknown_share(tmp_path: Path) -> None:
    result = run("cat.s", ["notes.txt"], tmp_path)
    assert result.exit_code == 1
    assert result.log_lines[-1].startswith("error: bad path (want SHARE:PATH) notes.txt: ")
    result = run("cat.s", ["zz:/notes.txt"], tmp_path)
    assert (result.exit_code, result.log_lines) == (2, ["error: map zz:/notes.txt: -102"])


@pytest.mark.parametrize("mode", MODES)
def test_cp_copies_byte_identical_with_the_mode(tmp_path: Path, mode: int) -> None:
    data = os.urandom(200_000) + b"\n\0\r" * 100
    (tmp_path / "src.bin").write_bytes(data)
    (tmp_path / "src.bin").chmod(0o640)
    (tmp_path / "sub").mkdir()
    result = run("cp.s", ["d:/src.bin", "d:/sub/dst.bin"], tmp_path, mode)
    assert (result.exit_code, result.log_lines) == (0, [])
    assert (tmp_path / "sub" / "dst.bin").read_bytes() == data
    assert (tmp_path / "sub" / "dst.bin").stat().st_mode & 0o777 == 0o640


def test_cp_truncates_an_existing_destination_and_copies_across_shares(tmp_path: Path) -> None:
    share, other = tmp_path / "d", tmp_path / "r"
    share.mkdir()
    other.mkdir()
    (share / "dst").write_bytes(b"x" * 5000)
    (other / "src").write_bytes(b"short")
    result = run("cp.s", ["r:/src", "d:/dst"], share, readonly=other)
    assert result.exit_code == 0
    assert (share / "dst").read_bytes() == b"short"


def test_cp_to_a_read_only_share_fails_with_write_protect(tmp_path: Path) -> None:
    share, readonly = tmp_path / "d", tmp_path / "r"
    share.mkdir()
    readonly.mkdir()
    (share / "src").write_bytes(b"data")
    result = run("cp.s", ["d:/src", "r:/dst"], share, readonly=readonly)
    assert (result.exit_code, result.log_lines) == (3, ["error: create r:/dst: -113"])
    assert not (readonly / "dst").exists()


@pytest.mark.parametrize("mode", MODES)
def test_cp_copyfile_copies_on_the_host(tmp_path: Path, mode: int) -> None:
    data = os.urandom(70_000)
    (tmp_path / "a").write_bytes(data)
    result = run("cp_copyfile.s", ["d:/a", "d:/b"], tmp_path, mode)
    assert (result.exit_code, result.log_lines) == (0, [])
    assert (tmp_path / "b").read_bytes() == data
    again = run("cp_copyfile.s", ["d:/a", "d:/b"], tmp_path, mode)
    assert (again.exit_code, again.log_lines) == (3, ["error: copy d:/a: -105"])


@pytest.mark.parametrize("mode", MODES)
def test_mkdir_mv_rmdir(tmp_path: Path, mode: int) -> None:
    assert run("mkdir.s", ["d:/new"], tmp_path, mode).exit_code == 0
    assert (tmp_path / "new").is_dir()
    again = run("mkdir.s", ["d:/new"], tmp_path, mode)
    assert (again.exit_code, again.log_lines) == (3, ["error: mkdir d:/new: -105"])
    assert run("mv.s", ["d:/new", "d:/moved"], tmp_path, mode).exit_code == 0
    assert (tmp_path / "moved").is_dir() and not (tmp_path / "new").exists()
    (tmp_path / "moved" / "f").write_text("x")
    full = run("rmdir.s", ["d:/moved"], tmp_path, mode)
    assert (full.exit_code, full.log_lines) == (3, ["error: rmdir d:/moved: -125"])
    (tmp_path / "moved" / "f").unlink()
    assert run("rmdir.s", ["d:/moved"], tmp_path, mode).exit_code == 0
    assert list(tmp_path.iterdir()) == []


def test_mv_replaces_a_file_and_reports_a_missing_source(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("new")
    (tmp_path / "b").write_text("old")
    assert run("mv.s", ["d:/a", "d:/b"], tmp_path).exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["b"] and (tmp_path / "b").read_text() == "new"
    missing = run("mv.s", ["d:/a", "d:/c"], tmp_path)
    assert (missing.exit_code, missing.log_lines) == (3, ["error: mv d:/a: -102"])


def test_mkdir_on_a_read_only_share_fails(tmp_path: Path) -> None:
    result = run("mkdir.s", ["r:/x"], tmp_path, readonly=tmp_path)
    assert (result.exit_code, result.log_lines) == (3, ["error: mkdir r:/x: -113"])
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["notes.txt", "dir"])
def test_stat_matches_os_stat(tmp_path: Path, mode: int, name: str) -> None:
    (tmp_path / "notes.txt").write_bytes(b"z" * 12345)
    (tmp_path / "dir").mkdir()
    os.utime(tmp_path / name, ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    st = os.stat(tmp_path / name)
    result = run("stat.s", [f"d:/{name}"], tmp_path, mode)
    assert result.exit_code == 0
    assert result.log_lines == [
        f"size: {st.st_size}", f"mode: {st.st_mode:o}", f"atime: {st.st_atime_ns}",
        f"mtime: {st.st_mtime_ns}", f"ctime: {st.st_ctime_ns}", f"btime: {st.st_ctime_ns}"]


def test_stat_of_a_missing_path_fails(tmp_path: Path) -> None:
    result = run("stat.s", ["d:/a/b"], tmp_path)
    assert (result.exit_code, result.log_lines) == (3, ["error: stat d:/a/b: -102"])


@pytest.mark.parametrize("mode", MODES)
def test_df_matches_statvfs(tmp_path: Path, mode: int) -> None:
    result = run("df.s", ["d:"], tmp_path, mode)
    vfs = os.statvfs(tmp_path)
    assert result.exit_code == 0
    fields = dict(line.split(": ") for line in result.log_lines)
    assert list(fields) == ["total", "free", "unit", "sector"]
    assert int(fields["total"]) == vfs.f_blocks * vfs.f_frsize
    assert int(fields["unit"]) == vfs.f_frsize
    assert int(fields["sector"]) == 512
    # Free space may move a little while the test runs (other processes write).
    assert abs(int(fields["free"]) - vfs.f_bavail * vfs.f_frsize) < 256 << 20


@pytest.mark.parametrize("mode", MODES)
def test_ln_s_and_readlink(tmp_path: Path, mode: int) -> None:
    (tmp_path / "notes.txt").write_text("x")
    result = run("ln_s.s", ["notes.txt", "d:/link"], tmp_path, mode, symlinks=True)
    assert (result.exit_code, result.log_lines) == (0, [])
    assert os.readlink(tmp_path / "link") == "notes.txt"
    result = run("readlink.s", ["d:/link"], tmp_path, mode)
    assert (result.exit_code, result.log_lines) == (0, ["notes.txt"])
    again = run("ln_s.s", ["other", "d:/link"], tmp_path, mode, symlinks=True)
    assert (again.exit_code, again.log_lines) == (3, ["error: ln_s d:/link: -105"])


def test_ln_s_needs_a_share_that_allows_symlinks(tmp_path: Path) -> None:
    result = run("ln_s.s", ["t", "d:/link"], tmp_path)
    assert (result.exit_code, result.log_lines) == (3, ["error: ln_s d:/link: -113"])
    assert not os.path.lexists(tmp_path / "link")


def test_readlink_of_a_regular_file_fails(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    result = run("readlink.s", ["d:/f"], tmp_path)
    assert (result.exit_code, result.log_lines) == (3, ["error: readlink d:/f: -19"])

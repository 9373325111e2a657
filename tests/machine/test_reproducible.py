"""Reproducible runs (issue 14): two runs of every bundled program on fresh folders, one on
the disk's file system and one on tmpfs, with the host times of everything in the folders
moved apart (as if made on different days), give byte-identical traces and ``trace diff``
reports them equal.  Without the option the same runs differ (the control that shows the
comparison can fail)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.machine.cli import main as cli_main
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.programs import bundled_program
from hgcmlab.machine.trace.files import TraceWriter

TMPFS_DIR = Path("/dev/shm")

#: program -> (mode, arguments, expected exit code); every program runs with shares "d" and
#: "demo" on the same fresh tree.
PROGRAMS: dict[str, tuple[int, list[str], int]] = {
    "demo.s": (64, [], 0),
    "demo_irq.s": (64, [], 0),
    "demo_poll_async.s": (32, [], 0),
    "pci_probe.s": (64, [], 0),
    "cancel.s": (64, [], 0),
    "sf_write_read_32.s": (32, [], 0),
    "sf_write_read_64.s": (64, [], 0),
    "ls.s": (64, ["d:/"], 0),
    "cat.s": (32, ["d:/a.txt"], 0),
    "cp.s": (64, ["d:/a.txt", "d:/sub/copy.txt"], 0),
    "cp_copyfile.s": (64, ["d:/a.txt", "d:/b.txt"], 0),
    "mkdir.s": (64, ["d:/sub/new"], 0),
    "rmdir.s": (64, ["d:/empty"], 0),
    "mv.s": (64, ["d:/a.txt", "d:/sub/moved.txt"], 0),
    "stat.s": (64, ["d:/sub"], 0),
    "df.s": (64, ["d:/"], 0),
    "ln_s.s": (64, ["a.txt", "d:/link2"], 0),
    "readlink.s": (64, ["d:/link"], 0),
    "hello_log.s": (64, [], 0),
    "exit_code.s": (64, [], 42),
    "guestprop.s": (32, ["enum"], 0),
}


def fs_type(path: Path) -> str:
    """The file system type of the mount holding ``path`` (from /proc/self/mountinfo)."""
    best, kind = "", ""
    target = str(path.resolve())
    with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            mount_point = fields[4]
            fstype = fields[fields.index("-") + 1]
            inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best):
                best, kind = mount_point, fstype
    return kind


def make_tree(root: Path, day_ns: int, reverse: bool) -> Path:
    """A share folder with files, directories and a symlink, every host time set around
    ``day_ns`` (in reverse order of creation when ``reverse``)."""
    share = root / "share"
    share.mkdir()
    (share / "a.txt").write_text("alpha\n")
    (share / "sub").mkdir()
    (share / "sub" / "notes.txt").write_text("notes\n" * 100)
    (share / "empty").mkdir()
    (share / ".hidden").write_bytes(b"\0" * 5000)
    (share / "link").symlink_to("a.txt")
    objects = [share / "a.txt", share / "sub" / "notes.txt", share / ".hidden", share / "link",
               share / "empty", share / "sub", share]
    for index, path in enumerate(reversed(objects) if reverse else objects):
        stamp = day_ns + index * 3_600_000_000_000
        os.utime(path, ns=(stamp, stamp + 1), follow_symlinks=False)
    return share


def record(program: str, share: Path, out: Path, *, reproducible: bool, async_hgcm: bool = False) -> bytes:
    """Run ``program`` on ``share`` with every event written to ``out``; the file's bytes.
    ``async_hgcm``: every HGCM command completes after its latency (``--async-hgcm``)."""
    mode, arguments, expected = PROGRAMS[program]
    config = VMMDevConfig(timing=HgcmTiming(force_async=True)) if async_hgcm else None
    machine = vbox_board(mode, reproducible=reproducible, vmmdev_config=config)
    try:
        machine.add_share("d", share, create_symlinks=True)
        machine.add_share("demo", share)
        machine.set_arguments(arguments)
        machine.load(bundled_program(program, mode=mode))
        with TraceWriter(out) as writer:
            machine.tracer.add_sink(writer)
            result = machine.run()
    finally:
        machine.close()
    assert (result.end.value, result.exit_code) in (("exit", expected), ("halt", expected)), result.log_lines
    return out.read_bytes()


@pytest.fixture
def two_folders(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(a folder on the disk's file system, a folder on tmpfs), removed afterwards."""
    if fs_type(TMPFS_DIR) != "tmpfs" or fs_type(tmp_path) == "tmpfs":
        pytest.skip("needs /dev/shm on tmpfs and the pytest temporary directory elsewhere")
    with tempfile.TemporaryDirectory(dir=TMPFS_DIR) as shm:
        yield tmp_path, Path(shm)


DAY_1995 = 800_000_000_000_000_000
DAY_2040 = 2_200_000_000_000_000_000


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_two_runs_on_different_file_systems_and_days_give_identical_traces(
        program: str, two_folders: tuple[Path, Path]) -> None:
    disk, shm = two_folders
    a = record(program, make_tree(disk, DAY_1995, reverse=False), disk / "a.jsonl", reproducible=True)
    b = record(program, make_tree(shm, DAY_2040, reverse=True), shm / "b.jsonl", reproducible=True)
    assert a == b
    assert cli_main(["trace", "diff", str(disk / "a.jsonl"), str(shm / "b.jsonl")]) == 0


@pytest.mark.parametrize("program", ["demo_irq.s", "cp.s", "mv.s"])
def test_asynchronous_completion_is_reproducible_too(program: str, two_folders: tuple[Path, Path]) -> None:
    disk, shm = two_folders
    a = record(program, make_tree(disk, DAY_1995, reverse=False), disk / "a.jsonl", reproducible=True,
               async_hgcm=True)
    b = record(program, make_tree(shm, DAY_2040, reverse=True), shm / "b.jsonl", reproducible=True,
               async_hgcm=True)
    assert a == b


@pytest.mark.parametrize("program", ["ls.s", "stat.s", "df.s", "demo.s"])
def test_without_the_option_the_same_runs_differ(program: str, two_folders: tuple[Path, Path]) -> None:
    disk, shm = two_folders
    a = record(program, make_tree(disk, DAY_1995, reverse=False), disk / "a.jsonl", reproducible=False)
    b = record(program, make_tree(shm, DAY_2040, reverse=True), shm / "b.jsonl", reproducible=False)
    assert a != b
    assert cli_main(["trace", "diff", str(disk / "a.jsonl"), str(shm / "b.jsonl")]) == 1


def test_trace_record_option_gives_identical_files(two_folders: tuple[Path, Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    disk, shm = two_folders
    outputs = []
    for folder, day, reverse in ((disk, DAY_1995, False), (shm, DAY_2040, True)):
        share = make_tree(folder, day, reverse)
        out = folder / "record.jsonl"
        program = str(Path(__file__).parents[2] / "guest_asm" / "programs" / "ls.s")
        assert cli_main(["trace", "record", program, "--reproducible", "--share", f"d={share}",
                         "-o", str(out), "--", "d:/sub"]) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    capsys.readouterr()


def test_run_option_shows_the_epoch_for_existing_files(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    share = make_tree(tmp_path, DAY_2040, reverse=False)
    program = str(Path(__file__).parents[2] / "guest_asm" / "programs" / "stat.s")
    assert cli_main(["run", program, "--reproducible", "--share", f"d={share}", "--", "d:/a.txt"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for label in ("atime", "mtime", "ctime", "btime"):
        assert f"[guest] {label}: 1704067200000000000" in lines
    assert cli_main(["run", program, "--share", f"d={share}", "--", "d:/a.txt"]) == 0
    # without it: the host's (make_tree set a.txt's modification time to the day + 1 ns)
    assert f"[guest] mtime: {DAY_2040 + 1}" in capsys.readouterr().out.splitlines()

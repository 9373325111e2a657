"""The C examples (examples/c/) built with the C guest kit and run in both modes; the host
files are the check.  Needs gcc or clang (the c_guest fixture skips the test without one)."""

from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.machine.machine import RunEnd

C_EXAMPLES = Path(__file__).parent / "c"
ASYNC = VMMDevConfig(timing=HgcmTiming(force_async=True))


@pytest.mark.parametrize("mode,extra", [(64, []), (64, ["irq"]), (32, []), (32, ["irq", "pae"])])
def test_sfcopy_copies_through_a_paged_scattered_window(mode, extra, hgcm_machine, hgcm_share, c_guest):
    source = bytes((i * 131 + i // 4096) % 256 for i in range(45000))  # several copy chunks
    (hgcm_share / "src.bin").write_bytes(source)
    # A small RAM keeps the identity map (built by the guest, 4 KiB pages) short.
    machine = hgcm_machine(mode, ram_size=0x400000, vmmdev_config=ASYNC)
    machine.add_share("d", hgcm_share)
    machine.set_arguments(["d:/src.bin", "d:/dst.bin", *extra])
    machine.load(c_guest(C_EXAMPLES / "sfcopy.c", mode))
    result = machine.run()
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.log_lines
    assert (hgcm_share / "dst.bin").read_bytes() == source
    assert result.log_lines[-1] == "copied 45000 bytes" + (" (interrupts)" if "irq" in extra else "")


@pytest.mark.parametrize("mode", [64, 32])
@pytest.mark.parametrize("wait", [[], ["irq"]])
def test_hhdriver_runs_as_a_higher_half_image(mode, wait, hgcm_machine, hgcm_share, c_guest):
    machine = hgcm_machine(mode, vmmdev_config=ASYNC)
    machine.add_share("d", hgcm_share)
    machine.set_arguments(["d:/out.bin", *wait])
    machine.load(c_guest(C_EXAMPLES / "hhdriver.c", mode, paging=True), paging=True)
    result = machine.run()
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.log_lines
    size = 6 * 4096 - 64
    assert (hgcm_share / "out.bin").read_bytes() == bytes((i * 7 + i // 4096) % 256 for i in range(size))
    base = "0xffffffff801" if mode == 64 else "0xc01"
    assert result.log_lines[0].startswith(f"main at {base}")


def test_hhdriver_refuses_an_unpaged_start(hgcm_machine, c_guest):
    machine = hgcm_machine(64)
    machine.set_arguments(["d:/out.bin"])
    machine.load(c_guest(C_EXAMPLES / "hhdriver.c", 64))
    assert machine.run().exit_code == 2

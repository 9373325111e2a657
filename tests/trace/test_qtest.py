"""The qtest driver on its own (the examples show the VMMDev interrupt round trip)."""

from __future__ import annotations

import struct

import pytest

from hgcmlab.devices.vmmdev import builder
from hgcmlab.devices.vmmdev.abi import RequestType
from hgcmlab.devices.vmmdev.abi import MMIO_OFF_HAVE_EVENTS, MMIO_OFF_SIZE, VMMDEV_MEMORY_SIZE
from hgcmlab.machine.qtest import QTest, QTestError


def test_ports_memory_and_mmio(hgcm_qtest) -> None:
    qt: QTest = hgcm_qtest(mode=32)
    base = qt.machine.vmmdev.mmio_base
    assert qt.readl(base + MMIO_OFF_SIZE) == VMMDEV_MEMORY_SIZE
    qt.writeb(base + MMIO_OFF_HAVE_EVENTS, 1)
    assert qt.machine.vmmdev.events.mmio.read(MMIO_OFF_HAVE_EVENTS, 1) == b"\x01"
    qt.writeq(0x30000, 0x1122334455667788)
    assert (qt.readl(0x30000), qt.readw(0x30006), qt.readb(0x30007)) == (0x55667788, 0x1122, 0x11)
    assert qt.inl(0x1234) == 0xFFFFFFFF                      # unclaimed port
    assert qt.events.of_kind("port_unclaimed")[-1].fields["port"] == 0x1234
    qt.write(0x20000, builder.connect("VBoxSharedFolders"))
    qt.outl(qt.vmmdev_port, 0x20000)
    assert struct.unpack_from("<I", qt.read(0x20000, 168), 164)[0] == 1   # client id written back
    with pytest.raises(QTestError, match="neither guest RAM nor the VMMDev MMIO page"):
        qt.readl(base - 4)


def test_time_advances_on_request_and_wait_irq_times_out(hgcm_qtest) -> None:
    qt = hgcm_qtest(mode=64)
    start = qt.cycle
    assert qt.clock_step(500) >= start + 500
    assert qt.run_until(2000) >= 2000
    before = qt.machine.cpu.instructions
    qt.step(3)
    assert qt.machine.cpu.instructions == before + 3
    with pytest.raises(QTestError, match="IRQ 11 not asserted within 3000 cycles"):
        qt.wait_irq(11, max_cycles=3000)


def test_sync_completion_raises_the_line_once_guest_info_is_reported(hgcm_qtest) -> None:
    qt = hgcm_qtest(mode=64)
    info = builder.poisoned(32, RequestType.ReportGuestInfo)
    info[24:32] = struct.pack("<II", 0x00010004, 0x53100)
    qt.write(0x20000, info)
    qt.outl(qt.vmmdev_port, 0x20000)
    assert not qt.irq_asserted()
    qt.write(0x21000, builder.connect("VBoxSharedFolders"))
    qt.outl(qt.vmmdev_port, 0x21000)
    asserted_at = qt.wait_irq(max_cycles=100_000)
    line = [e for e in qt.events.of_kind("irq_line") if e.fields["asserted"]][0]
    assert asserted_at == line.cycle and qt.irq_asserted(line.fields["irq"])

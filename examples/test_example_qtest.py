"""Device-level tests without guest code: poke the VMMDev through ports and memory."""

import struct

from hgcmlab.devices.vmmdev import builder
from hgcmlab.devices.vmmdev.abi import RequestType
from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig

REQUEST = 0x20000          # where we put requests in guest RAM
VMMDEV_IRQ = VMMDevConfig().irq
HGCM_EVENT = 0x2


def submit(qt, address, data):
    qt.write(address, data)
    qt.outl(qt.vmmdev_port, address)
    return qt.read(address, len(data))


def test_mmio_page_header(hgcm_qtest):
    qt = hgcm_qtest(mode=64)
    base = qt.machine.vmmdev.mmio_base
    assert qt.readl(base + 4) == 1          # VMMDevMemory version


def test_async_connect_raises_the_irq_and_ack_lowers_it(hgcm_qtest):
    timing = HgcmTiming(call_cycles=5000, byte_cycles=0, force_async=True)
    qt = hgcm_qtest(mode=64, vmmdev_config=VMMDevConfig(timing=timing))
    info = builder.poisoned(32, RequestType.ReportGuestInfo)
    info[24:32] = struct.pack("<II", 0x00010004, 0x53100)
    assert builder.rc_of(submit(qt, REQUEST, info)) == 0
    submitted = qt.cycle
    after = submit(qt, REQUEST + 0x1000, builder.connect("VBoxSharedFolders"))
    assert builder.flags_of(after) & 1 == 0                       # not DONE yet
    asserted = qt.wait_irq(VMMDEV_IRQ, max_cycles=100_000)
    assert asserted - submitted >= 5000
    assert builder.flags_of(qt.read(REQUEST + 0x1000, 168)) & 1 == 1
    ack = submit(qt, REQUEST + 0x2000, builder.poisoned(28, RequestType.AcknowledgeEvents))
    assert struct.unpack_from("<I", ack, 24)[0] & HGCM_EVENT
    assert not qt.irq_asserted(VMMDEV_IRQ)

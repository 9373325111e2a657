"""PCI configuration numbers a guest driver uses: mechanism #1 ports and header registers.

Import-free, so that guest assembly (``hgcmlab.guest_asm.constants``, as ``PCI_<NAME>``) and the
machine's PCI bus (machine/pci.py) take them from one place.  Values: PCI Local Bus
Specification 3.0, §3.2.2.3.2 (configuration mechanism #1) and §6.1 (type 0 header).
"""

#: CONFIG_ADDRESS: enable bit, bus, device, function and register are written here.
CONFIG_ADDRESS_PORT = 0xCF8
#: CONFIG_DATA: the addressed register's dword (any byte lane of it).
CONFIG_DATA_PORT = 0xCFC
#: CONFIG_ADDRESS bit 31: without it the data port reaches no function.
CONFIG_ADDRESS_ENABLE = 0x80000000

OFF_VENDOR_ID = 0x00
OFF_DEVICE_ID = 0x02
OFF_COMMAND = 0x04
OFF_STATUS = 0x06
OFF_REVISION = 0x08
OFF_PROG_IF = 0x09
OFF_SUBCLASS = 0x0A
OFF_CLASS = 0x0B
OFF_HEADER_TYPE = 0x0E
OFF_BAR0 = 0x10
OFF_INTERRUPT_LINE = 0x3C
OFF_INTERRUPT_PIN = 0x3D
COMMAND_IO = 0x1
COMMAND_MEMORY = 0x2
COMMAND_BUS_MASTER = 0x4

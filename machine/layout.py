"""The guest-visible layout of the machine: addresses, ports and vectors a guest relies on.

Import-free on purpose (standard library only, and not even that): guest assembly
(``hgcmlab.guest_asm.constants``) turns these numbers into assembler symbols, and the machine's
implementation modules take them from here, so the assembler never imports the machine.
Every number below is a public contract (README, docs/design.md); changing one changes
what guests see.
"""

# --- program loading -----------------------------------------------------------------------

#: Where flat binaries and assembled programs are loaded (and start, without ``_start``).
DEFAULT_LOAD_ADDRESS = 0x10000
#: Where the machine writes the program's argument block (below the load address).
ARGS_BASE = 0x1000
#: The argument block never grows past this many bytes (it must end below 0x10000).
ARGS_MAX_SIZE = 0xE000
#: The top of RAM kept for the stack (the stack pointer starts at the top of RAM): a
#: segment reaching into it would be overwritten by the program's first pushes.
STACK_RESERVE = 0x1000
#: With a paged start (``--paging``): the top of RAM kept for the stack (the stack pointer
#: starts at the top of RAM, as without paging) ...
PAGING_STACK_RESERVE = 0x10000
#: ... and the page tables the loader builds, right below it (root table first).
PAGING_AREA_SIZE = 0x40000

# --- physical address map ------------------------------------------------------------------

#: Where PCI memory BARs (the MMIO window) start; RAM ends below it.
MMIO_WINDOW_BASE = 0xE0000000
#: The largest guest RAM a machine can have: everything below the MMIO window.
MAX_GUEST_RAM = MMIO_WINDOW_BASE
#: A read-only page outside guest RAM holding the flat GDT the machine starts with.
FIRMWARE_PAGE = 0xFFFFF000

# --- ports and interrupts ------------------------------------------------------------------

#: The exit device's port: a write ends the run with the written value as exit status.
EXIT_PORT = 0xF4
#: VirtualBox's backdoor log port: bytes written form log lines.
BACKDOOR_LOG_PORT = 0x504
#: External interrupt line n is delivered as vector IRQ_VECTOR_BASE + n.
IRQ_VECTOR_BASE = 0x20
#: The interrupt line VMMDev's INTA# is routed to (its PCI interrupt line register).
VMMDEV_IRQ = 11

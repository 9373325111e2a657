"""Architectural paging bits a guest programs and the machine reads (Intel SDM vol. 3 §2, §4).

Import-free on purpose, like ``hgcmlab.machine.layout``: guest assembly and the C kit's
generated header take these numbers as symbols (``CR0_PG``, ``PTE_P``, ``PF_WRITE``...), and
``hgcmlab.machine.paging`` walks page tables with them, so neither side types them twice.
"""

#: Control-register and EFER bits.
CR0_PG = 1 << 31
CR0_WP = 1 << 16
CR4_PSE = 1 << 4
CR4_PAE = 1 << 5
EFER_LMA = 1 << 10
EFER_NXE = 1 << 11

#: Page-table entry bits (the same positions at every level and in every form; PS only in
#: entries that can map a large page, NX only in PAE and 4-level entries).
PAGE_SIZE = 4096
PTE_P = 1 << 0
PTE_RW = 1 << 1
PTE_US = 1 << 2
PTE_A = 1 << 5
PTE_D = 1 << 6
PTE_PS = 1 << 7
PTE_NX = 1 << 63

#: #PF error code bits (Intel SDM vol. 3 §4.7).
PF_PROTECTION = 1 << 0
PF_WRITE = 1 << 1
PF_USER = 1 << 2
PF_RESERVED = 1 << 3
PF_FETCH = 1 << 4

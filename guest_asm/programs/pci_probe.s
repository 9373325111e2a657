# pci_probe.s - find VMMDev over PCI (vmmdev_pci_probe), log what was found, then run the
# shared-folder write of demo.s through the discovered request port.  Either mode.
# Log lines: "pci: id CAFE80EE bdf 00000020", "pci: bar0 port 0000D020 size 00000020",
# "pci: bar1 mmio E0000000 size 00400000", "pci: irq 11 pin 1" (values as found), then
# demo.s's sf: lines.  Expects a writable share "demo"; creates hello.txt.
# Exit code: sf_roundtrip's (0 success, 1-14), or 20 + the probe's failure (21-24).

.include "ccall.s"

_start:
    ccall0 vmmdev_pci_probe
    test eax, eax
    jz pci_probe_found
    add eax, 20
.if MODE == 64
    ccall1 exit, rax
.else
    ccall1 exit, eax
.endif
pci_probe_found:
    ccall1 log_string, pci_msg_id
    ccall1 log_hex32, [vmmdev_pci_id]
    ccall1 log_string, pci_msg_bdf
    ccall1 log_hex32, [vmmdev_pci_bdf]
    ccall1 log_char, 10
    ccall1 log_string, pci_msg_bar0
    ccall1 log_hex32, [vmmdev_port]
    ccall1 log_string, pci_msg_size
    ccall1 log_hex32, [vmmdev_port_size]
    ccall1 log_char, 10
    ccall1 log_string, pci_msg_bar1
    ccall1 log_hex32, [vmmdev_mmio]
    ccall1 log_string, pci_msg_size
    ccall1 log_hex32, [vmmdev_mmio_size]
    ccall1 log_char, 10
    ccall1 log_string, pci_msg_irq
    ccall1 log_udec32, [vmmdev_irq]
    ccall1 log_string, pci_msg_pin
    ccall1 log_udec32, [vmmdev_pci_pin]
    ccall1 log_char, 10
    ccall4 sf_roundtrip, pci_share, pci_file, pci_message, pci_message_end - pci_message
.if MODE == 64
    ccall1 exit, rax
.else
    ccall1 exit, eax
.endif

.include "pci.s"
.include "sf_roundtrip.s"

pci_msg_id:   .asciz "pci: id "
pci_msg_bdf:  .asciz " bdf "
pci_msg_bar0: .asciz "pci: bar0 port "
pci_msg_bar1: .asciz "pci: bar1 mmio "
pci_msg_size: .asciz " size "
pci_msg_irq:  .asciz "pci: irq "
pci_msg_pin:  .asciz " pin "
pci_share:    .asciz "demo"
pci_file:     .asciz "hello.txt"
pci_message:  .ascii "Hello from the hgcmlab guest!\n"
pci_message_end:

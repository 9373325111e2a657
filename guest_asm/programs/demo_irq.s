# demo_irq.s - demo.s as a driver does it: find VMMDev over PCI, send the driver's load
# sequence (vmmdev_driver_init), install the VMMDev interrupt handler and wait for every
# HGCM completion in `sti; hlt` (hgcm_wait_irq) instead of polling.  Either mode.
# Define FAST_IRQ_ACK=1 to acknowledge with the fast IN from BAR0+8 (VirtualBox
# Additions) instead of an AcknowledgeEvents request (Linux).
# Expects a writable share "demo"; creates hello.txt like demo.s.  Logs the sf: lines,
# then "irq: interrupts N, hgcm events N, sleeps N".
# Exit code: sf_roundtrip's (0 success, 1-14), 20 PCI probe failed, 21 driver init failed.

.include "ccall.s"

.ifndef FAST_IRQ_ACK
.equ FAST_IRQ_ACK, 0
.endif

_start:
    ccall0 vmmdev_pci_probe
    test eax, eax
    jz demo_irq_probed
    ccall1 exit, 20
demo_irq_probed:
    ccall0 vmmdev_driver_init
    test eax, eax
    jz demo_irq_ready
    ccall1 exit, 21
demo_irq_ready:
    ccall1 vmmdev_irq_setup, FAST_IRQ_ACK
    ccall4 sf_roundtrip, demo_share, demo_file, demo_message, demo_message_end - demo_message
    mov dword ptr [demo_exit], eax
    ccall1 log_string, demo_msg_irq
    ccall1 log_udec32, [vmmdev_irq_count]
    ccall1 log_string, demo_msg_events
    ccall1 log_udec32, [vmmdev_hgcm_events]
    ccall1 log_string, demo_msg_sleeps
    ccall1 log_udec32, [hgcm_wait_sleeps]
    ccall1 log_char, 10
    ccall1 exit, [demo_exit]

.include "pci.s"
.include "vmmdev_init.s"
.include "irq.s"
.include "sf_roundtrip.s"

demo_share:      .asciz "demo"
demo_file:       .asciz "hello.txt"
demo_msg_irq:    .asciz "irq: interrupts "
demo_msg_events: .asciz ", hgcm events "
demo_msg_sleeps: .asciz ", sleeps "
demo_message:    .ascii "Hello from the hgcmlab guest!\n"
demo_message_end:
.align 8
demo_exit:       .quad 0

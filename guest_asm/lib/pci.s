# pci.s - PCI configuration mechanism #1 (PCI_CONFIG_ADDRESS_PORT / PCI_CONFIG_DATA_PORT)
# and the VMMDev PCI probe a guest driver does before it talks to the device.
# Calling convention: see vmmdev.s.  Routines clobber the caller-saved registers.
#
# A bdf is bus << 8 | device << 3 | function (what Linux calls bus number + devfn).
#
# pci_config_read32(bdf, reg) -> eax           the dword register at reg & 0xFC
# pci_config_write32(bdf, reg, value)
# pci_bar_probe(bdf, reg) -> eax = sizing mask, edx = the BAR's value
#   The standard sizing protocol: read the BAR, write all ones, read the mask back,
#   restore the original value.  (Callers turn decoding off around it, as Linux does.)
# pci_find_device(vendor, device) -> eax = bdf, or -1 when absent
#   Scans bus 0 (the machine has no bridges): function 0 of each device slot; a missing
#   function 0 (vendor 0xFFFF) skips the slot; functions 1-7 are scanned only when the
#   header type says multi-function (bit 7).
# vmmdev_pci_probe() -> eax = 0, or the failed check:
#     1 no 80EE:CAFE on bus 0, 2 BAR0 is not a non-empty I/O BAR, 3 BAR1 is not a
#     non-empty 32-bit memory BAR, 4 the VMMDevMemory page is bad (u32Version !=
#     VMMDEV_MEMORY_VERSION, or u32Size < 32, or u32Size > the BAR1 size; Linux's check).
#   What Linux's vbg_pci_probe (with the PCI core's BAR sizing) does: find the device,
#   size BAR0 and BAR1 with I/O and memory decoding off, turn decoding on
#   (PCI_COMMAND_IO | PCI_COMMAND_MEMORY), check VMMDevMemory, read the interrupt line.
#   On success stores vmmdev_port (BAR0 base), vmmdev_mmio (BAR1 base), vmmdev_irq (the
#   interrupt line; vmmdev.s) and vmmdev_pci_bdf, vmmdev_pci_id (vendor | device << 16),
#   vmmdev_port_size, vmmdev_mmio_size, vmmdev_pci_pin; on failure leaves the first three
#   unchanged.

.include "ccall.s"
.include "vmmdev.s"

# Bit 31 of CONFIG_ADDRESS: the enable bit of configuration mechanism #1.
.equ PCI_CONFIG_ENABLE, 0x80000000
.equ PCI_HEADER_MULTIFUNCTION, 0x800000
.equ PCI_BAR_IO_MASK, 0xFFFFFFFC
.equ PCI_BAR_MEM_MASK, 0xFFFFFFF0
.equ PCI_BAR_MEM_TYPE, 0x6
.equ PCI_SLOTS_BUS0, 256
.equ PCI_OFF_BAR1, 0x14
.equ PCI_OFF_HEADER_DWORD, 0x0C
.equ PCI_DECODE_BITS, 0x3
.equ PCI_NOT_DECODE, 0xFFFFFFFC
.equ VMMDEV_MEMORY_MIN_SIZE, 32

.if MODE == 64
pci_config_read32:
    mov eax, edi
    shl eax, 8
    and esi, 0xFC
    or eax, esi
    or eax, PCI_CONFIG_ENABLE
    mov edx, PCI_CONFIG_ADDRESS_PORT
    out dx, eax
    mov edx, PCI_CONFIG_DATA_PORT
    in eax, dx
    ret

pci_config_write32:
    mov ecx, edx
    mov eax, edi
    shl eax, 8
    and esi, 0xFC
    or eax, esi
    or eax, PCI_CONFIG_ENABLE
    mov edx, PCI_CONFIG_ADDRESS_PORT
    out dx, eax
    mov edx, PCI_CONFIG_DATA_PORT
    mov eax, ecx
    out dx, eax
    ret

pci_find_device:
    push rbx
    push r12
    mov r12d, esi
    shl r12d, 16
    movzx edi, di
    or r12d, edi
    xor ebx, ebx
pci_find_next:
    mov edi, ebx
    xor esi, esi
    call pci_config_read32
    cmp eax, r12d
    je pci_find_found
    test ebx, 7
    jnz pci_find_next_function
    cmp ax, 0xFFFF
    je pci_find_next_slot
    mov edi, ebx
    mov esi, PCI_OFF_HEADER_DWORD
    call pci_config_read32
    test eax, PCI_HEADER_MULTIFUNCTION
    jz pci_find_next_slot
pci_find_next_function:
    inc ebx
    jmp pci_find_check
pci_find_next_slot:
    add ebx, 8
    and ebx, 0xFFF8
pci_find_check:
    cmp ebx, PCI_SLOTS_BUS0
    jb pci_find_next
    mov eax, -1
    jmp pci_find_done
pci_find_found:
    mov eax, ebx
pci_find_done:
    pop r12
    pop rbx
    ret

pci_bar_probe:
    push rbx
    push r12
    push r13
    mov ebx, edi
    mov r12d, esi
    call pci_config_read32
    mov r13d, eax
    mov edi, ebx
    mov esi, r12d
    mov edx, 0xFFFFFFFF
    call pci_config_write32
    mov edi, ebx
    mov esi, r12d
    call pci_config_read32
    push rax
    mov edi, ebx
    mov esi, r12d
    mov edx, r13d
    call pci_config_write32
    pop rax
    mov edx, r13d
    pop r13
    pop r12
    pop rbx
    ret
.else
pci_config_read32:
    mov eax, dword ptr [esp + 4]
    shl eax, 8
    mov ecx, dword ptr [esp + 8]
    and ecx, 0xFC
    or eax, ecx
    or eax, PCI_CONFIG_ENABLE
    mov edx, PCI_CONFIG_ADDRESS_PORT
    out dx, eax
    mov edx, PCI_CONFIG_DATA_PORT
    in eax, dx
    ret

pci_config_write32:
    mov eax, dword ptr [esp + 4]
    shl eax, 8
    mov ecx, dword ptr [esp + 8]
    and ecx, 0xFC
    or eax, ecx
    or eax, PCI_CONFIG_ENABLE
    mov edx, PCI_CONFIG_ADDRESS_PORT
    out dx, eax
    mov edx, PCI_CONFIG_DATA_PORT
    mov eax, dword ptr [esp + 12]
    out dx, eax
    ret

pci_find_device:
    push ebx
    push esi
    mov esi, dword ptr [esp + 16]
    shl esi, 16
    movzx eax, word ptr [esp + 12]
    or esi, eax
    xor ebx, ebx
pci_find_next:
    ccall2 pci_config_read32, ebx, 0
    cmp eax, esi
    je pci_find_found
    test ebx, 7
    jnz pci_find_next_function
    cmp ax, 0xFFFF
    je pci_find_next_slot
    ccall2 pci_config_read32, ebx, PCI_OFF_HEADER_DWORD
    test eax, PCI_HEADER_MULTIFUNCTION
    jz pci_find_next_slot
pci_find_next_function:
    inc ebx
    jmp pci_find_check
pci_find_next_slot:
    add ebx, 8
    and ebx, 0xFFF8
pci_find_check:
    cmp ebx, PCI_SLOTS_BUS0
    jb pci_find_next
    mov eax, -1
    jmp pci_find_done
pci_find_found:
    mov eax, ebx
pci_find_done:
    pop esi
    pop ebx
    ret

pci_bar_probe:
    push ebx
    push esi
    push edi
    mov ebx, dword ptr [esp + 16]
    mov esi, dword ptr [esp + 20]
    ccall2 pci_config_read32, ebx, esi
    mov edi, eax
    ccall3 pci_config_write32, ebx, esi, 0xFFFFFFFF
    ccall2 pci_config_read32, ebx, esi
    push eax
    ccall3 pci_config_write32, ebx, esi, edi
    pop eax
    mov edx, edi
    pop edi
    pop esi
    pop ebx
    ret
.endif

# Mode-neutral from here on: state in memory, calls through ccall (eax, edx results).
vmmdev_pci_probe:
    ccall2 pci_find_device, VMMDEV_PCI_VENDOR, VMMDEV_PCI_DEVICE_ID
    cmp eax, -1
    jne vmmdev_pci_probe_found
    mov eax, 1
    ret
vmmdev_pci_probe_found:
    mov dword ptr [vmmdev_pci_bdf], eax
    ccall2 pci_config_read32, [vmmdev_pci_bdf], PCI_OFF_VENDOR_ID
    mov dword ptr [vmmdev_pci_id], eax
    # Decoding off while the BARs are sized (the PCI core does this too).
    ccall2 pci_config_read32, [vmmdev_pci_bdf], PCI_OFF_COMMAND
    and eax, 0xFFFF
    mov dword ptr [pci_probe_command], eax
    and eax, PCI_NOT_DECODE
    mov dword ptr [pci_probe_value], eax
    ccall3 pci_config_write32, [vmmdev_pci_bdf], PCI_OFF_COMMAND, [pci_probe_value]
    ccall2 pci_bar_probe, [vmmdev_pci_bdf], PCI_OFF_BAR0
    mov dword ptr [pci_probe_bar0], edx
    mov dword ptr [pci_probe_bar0_mask], eax
    ccall2 pci_bar_probe, [vmmdev_pci_bdf], PCI_OFF_BAR1
    mov dword ptr [pci_probe_bar1], edx
    mov dword ptr [pci_probe_bar1_mask], eax
    mov eax, dword ptr [pci_probe_command]
    or eax, PCI_DECODE_BITS
    mov dword ptr [pci_probe_value], eax
    ccall3 pci_config_write32, [vmmdev_pci_bdf], PCI_OFF_COMMAND, [pci_probe_value]
    # BAR0: an I/O BAR; a mask without the upper 16 bits is a 16-bit BAR (as Linux reads it).
    mov ecx, dword ptr [pci_probe_bar0]
    test ecx, 1
    jz vmmdev_pci_probe_bad_bar0
    mov eax, dword ptr [pci_probe_bar0_mask]
    and eax, PCI_BAR_IO_MASK
    jz vmmdev_pci_probe_bad_bar0
    test eax, 0xFFFF0000
    jnz vmmdev_pci_probe_io_sized
    or eax, 0xFFFF0000
vmmdev_pci_probe_io_sized:
    neg eax
    jz vmmdev_pci_probe_bad_bar0
    mov dword ptr [vmmdev_port_size], eax
    and ecx, PCI_BAR_IO_MASK
    mov dword ptr [pci_probe_bar0], ecx
    # BAR1: a 32-bit memory BAR.
    mov ecx, dword ptr [pci_probe_bar1]
    test ecx, 1
    jnz vmmdev_pci_probe_bad_bar1
    test ecx, PCI_BAR_MEM_TYPE
    jnz vmmdev_pci_probe_bad_bar1
    mov eax, dword ptr [pci_probe_bar1_mask]
    and eax, PCI_BAR_MEM_MASK
    jz vmmdev_pci_probe_bad_bar1
    neg eax
    mov dword ptr [vmmdev_mmio_size], eax
    and ecx, PCI_BAR_MEM_MASK
    jz vmmdev_pci_probe_bad_bar1
    mov dword ptr [pci_probe_bar1], ecx
    # VMMDevMemory: u32Version == 1 and 32 <= u32Size <= the BAR size.
    cmp dword ptr [ecx + MMIO_OFF_VERSION], VMMDEV_MEMORY_VERSION
    jne vmmdev_pci_probe_bad_memory
    mov edx, dword ptr [ecx + MMIO_OFF_SIZE]
    cmp edx, VMMDEV_MEMORY_MIN_SIZE
    jb vmmdev_pci_probe_bad_memory
    cmp edx, eax
    ja vmmdev_pci_probe_bad_memory
    ccall2 pci_config_read32, [vmmdev_pci_bdf], PCI_OFF_INTERRUPT_LINE
    movzx ecx, ah
    mov dword ptr [vmmdev_pci_pin], ecx
    movzx eax, al
    mov dword ptr [vmmdev_irq], eax
    mov eax, dword ptr [pci_probe_bar0]
    mov dword ptr [vmmdev_port], eax
    mov eax, dword ptr [pci_probe_bar1]
    mov dword ptr [vmmdev_mmio], eax
    xor eax, eax
    ret
vmmdev_pci_probe_bad_bar0:
    mov eax, 2
    ret
vmmdev_pci_probe_bad_bar1:
    mov eax, 3
    ret
vmmdev_pci_probe_bad_memory:
    mov eax, 4
    ret

.align 8
# ccall passes these as 64-bit memory operands in 64-bit mode: keep each 8 bytes wide.
vmmdev_pci_bdf:       .quad 0
pci_probe_value:      .quad 0
vmmdev_pci_id:        .long 0
vmmdev_pci_pin:       .long 0
vmmdev_port_size:     .long 0
vmmdev_mmio_size:     .long 0
pci_probe_command:    .long 0
pci_probe_bar0:       .long 0
pci_probe_bar0_mask:  .long 0
pci_probe_bar1:       .long 0
pci_probe_bar1_mask:  .long 0

# paging.s - the guest's own page tables: build them, map and unmap 4 KiB pages, turn
# paging on, translate through them.  64-bit: 4-level paging (PML4); 32-bit: 32-bit
# paging (one page directory).  Only 4 KiB pages; tables come from a pool the caller
# gives (page-aligned, identity-mapped once paging is on, never freed).  Not reentrant.
# Calling convention: see vmmdev.s.
#
# pg_init(pool)                    Take tables from `pool` on; allocate the (zeroed) root.
#                                  -> eax/rax = the root's physical address.
# pg_map(linear, physical, flags)  Map the 4 KiB page at `linear` to `physical` with PTE
#                                  bits `flags` (PTE_P | PTE_RW ...), allocating tables on
#                                  the way (present + writable), then invlpg it.
# pg_unmap(linear)                 Clear the page's PTE and invlpg it.
# pg_map_range(linear, physical, size, flags)   pg_map every page of [linear, linear+size).
# pg_identity(size)                Identity-map [0, size) writable, plus FIRMWARE_PAGE
#                                  read-only (the machine's GDT: iret and segment loads
#                                  read it through the page tables).
# pg_enable()                      CR3 = the root; 64-bit: CR4.PAE (long mode is already
#                                  active, so CR0.PG turns on 4-level paging); CR0.PG.
# pg_translate(linear) -> eax/rax = physical address, or -1 when a level is not present.
# pg_page_list(info, linear, size, flags) -> eax = 0, or -1 when a page does not translate
#                                  Fill an HGCMPageListInfo at `info`: flags, offFirstPage,
#                                  cPages and one u64 frame per page of the buffer, taken
#                                  from these page tables (what a driver does for a
#                                  virtually contiguous, physically scattered buffer).
# pg_translate_page_list(info)     Replace each page address of the HGCMPageListInfo at
#                                  `info` by its frame (pg_translate; -1 for a page that
#                                  does not translate).  Set hgcm.s's hgcm_pagelist_fixup
#                                  to it and every page list the library builds is made
#                                  from these page tables.
# Clobbers: 64-bit rax rcx rdx rsi rdi r8 r9; 32-bit eax ecx edx.

.equ PG_TABLE_FLAGS, PTE_P | PTE_RW

.if MODE == 64
pg_alloc:
    push rdi
    mov rdi, qword ptr [rip + pg_next]
    lea rax, [rdi + 4096]
    mov qword ptr [rip + pg_next], rax
    push rdi
    xor eax, eax
    mov ecx, 512
    rep stosq
    pop rax
    pop rdi
    ret

pg_init:
    mov qword ptr [rip + pg_next], rdi
    call pg_alloc
    mov qword ptr [rip + pg_root], rax
    ret

# rdi = linear -> rax = address of its PTE (tables allocated as needed); preserves rdi.
pg_pte:
    mov r8, qword ptr [rip + pg_root]
    mov r9d, 39
pg_pte_level:
    mov rax, rdi
    mov ecx, r9d
    shr rax, cl
    and eax, 0x1FF
    lea rdx, [r8 + rax * 8]
    cmp r9d, 12
    je pg_pte_found
    mov rax, qword ptr [rdx]
    test al, PTE_P
    jnz pg_pte_next
    push rdx
    call pg_alloc
    pop rdx
    or rax, PG_TABLE_FLAGS
    mov qword ptr [rdx], rax
pg_pte_next:
    mov rcx, 0x000FFFFFFFFFF000
    and rax, rcx
    mov r8, rax
    sub r9d, 9
    jmp pg_pte_level
pg_pte_found:
    mov rax, rdx
    ret

pg_map:
    push rsi
    push rdx
    call pg_pte
    pop rdx
    pop rsi
    or rsi, rdx
    mov qword ptr [rax], rsi
    invlpg [rdi]
    ret

pg_unmap:
    call pg_pte
    mov qword ptr [rax], 0
    invlpg [rdi]
    ret

pg_map_range:
    push rbx
    push r12
    push r13
    push r14
    mov rbx, rdi
    mov r12, rsi
    mov r13, rdx
    mov r14, rcx
    test r13, r13
    jz pg_map_range_done
pg_map_range_page:
    mov rdi, rbx
    mov rsi, r12
    mov rdx, r14
    call pg_map
    add rbx, 4096
    add r12, 4096
    sub r13, 4096
    ja pg_map_range_page
pg_map_range_done:
    pop r14
    pop r13
    pop r12
    pop rbx
    ret

pg_identity:
    mov rdx, rdi
    xor edi, edi
    xor esi, esi
    mov ecx, PG_TABLE_FLAGS
    call pg_map_range
    mov edi, FIRMWARE_PAGE
    mov esi, FIRMWARE_PAGE
    mov edx, PTE_P
    jmp pg_map

pg_enable:
    mov rax, qword ptr [rip + pg_root]
    mov cr3, rax
    mov rax, cr4
    or eax, CR4_PAE
    mov cr4, rax
    mov rax, cr0
    bts rax, 31
    mov cr0, rax
    ret

pg_translate:
    mov r8, qword ptr [rip + pg_root]
    mov r9d, 39
pg_translate_level:
    mov rax, rdi
    mov ecx, r9d
    shr rax, cl
    and eax, 0x1FF
    mov rax, qword ptr [r8 + rax * 8]
    test al, PTE_P
    jz pg_translate_fail
    mov rcx, 0x000FFFFFFFFFF000
    and rax, rcx
    cmp r9d, 12
    je pg_translate_found
    mov r8, rax
    sub r9d, 9
    jmp pg_translate_level
pg_translate_found:
    mov rcx, rdi
    and ecx, 0xFFF
    or rax, rcx
    ret
pg_translate_fail:
    mov rax, -1
    ret

pg_page_list:
    push rbx
    push r12
    push r13
    mov rbx, rdi
    mov dword ptr [rbx + HGCMPAGELISTINFO_OFF_FLAGS], ecx
    mov eax, esi
    and eax, 0xFFF
    mov word ptr [rbx + HGCMPAGELISTINFO_OFF_OFFFIRSTPAGE], ax
    lea rax, [rax + rdx + 4095]
    shr rax, 12
    mov word ptr [rbx + HGCMPAGELISTINFO_OFF_CPAGES], ax
    mov r13, rax
    mov r12, rsi
    and r12, -4096
    add rbx, HGCMPAGELISTINFO_SIZE
pg_page_list_page:
    test r13, r13
    jz pg_page_list_done
    mov rdi, r12
    call pg_translate
    cmp rax, -1
    je pg_page_list_out
    mov qword ptr [rbx], rax
    add rbx, 8
    add r12, 4096
    dec r13
    jmp pg_page_list_page
pg_page_list_done:
    xor eax, eax
pg_page_list_out:
    pop r13
    pop r12
    pop rbx
    ret

pg_translate_page_list:
    movzx esi, word ptr [rdi + HGCMPAGELISTINFO_OFF_CPAGES]
    lea rdx, [rdi + HGCMPAGELISTINFO_SIZE]
pg_translate_page_list_page:
    test esi, esi
    jz pg_translate_page_list_done
    push rdx
    push rsi
    mov rdi, qword ptr [rdx]
    call pg_translate
    pop rsi
    pop rdx
    mov qword ptr [rdx], rax
    add rdx, 8
    dec esi
    jmp pg_translate_page_list_page
pg_translate_page_list_done:
    ret

.align 8
pg_next: .quad 0
pg_root: .quad 0

.else
pg_alloc:
    push edi
    mov edi, dword ptr [pg_next]
    lea eax, [edi + 4096]
    mov dword ptr [pg_next], eax
    push edi
    xor eax, eax
    mov ecx, 1024
    rep stosd
    pop eax
    pop edi
    ret

pg_init:
    mov eax, dword ptr [esp + 4]
    mov dword ptr [pg_next], eax
    call pg_alloc
    mov dword ptr [pg_root], eax
    ret

# edx = linear -> eax = address of its PTE (a page table allocated if needed); preserves edx.
pg_pte:
    mov eax, edx
    shr eax, 22
    mov ecx, dword ptr [pg_root]
    lea ecx, [ecx + eax * 4]
    mov eax, dword ptr [ecx]
    test al, PTE_P
    jnz pg_pte_table
    push ecx
    push edx
    call pg_alloc
    pop edx
    pop ecx
    or eax, PG_TABLE_FLAGS
    mov dword ptr [ecx], eax
pg_pte_table:
    and eax, 0xFFFFF000
    mov ecx, edx
    shr ecx, 12
    and ecx, 0x3FF
    lea eax, [eax + ecx * 4]
    ret

pg_map:
    mov edx, dword ptr [esp + 4]
    call pg_pte
    mov ecx, dword ptr [esp + 8]
    or ecx, dword ptr [esp + 12]
    mov dword ptr [eax], ecx
    invlpg [edx]
    ret

pg_unmap:
    mov edx, dword ptr [esp + 4]
    call pg_pte
    mov dword ptr [eax], 0
    invlpg [edx]
    ret

pg_map_range:
    push ebx
    push esi
    push edi
    push ebp
    mov ebx, dword ptr [esp + 20]
    mov esi, dword ptr [esp + 24]
    mov edi, dword ptr [esp + 28]
    mov ebp, dword ptr [esp + 32]
    test edi, edi
    jz pg_map_range_done
pg_map_range_page:
    push ebp
    push esi
    push ebx
    call pg_map
    add esp, 12
    add ebx, 4096
    add esi, 4096
    sub edi, 4096
    ja pg_map_range_page
pg_map_range_done:
    pop ebp
    pop edi
    pop esi
    pop ebx
    ret

pg_identity:
    mov eax, PG_TABLE_FLAGS
    mov ecx, dword ptr [esp + 4]
    xor edx, edx
    push eax
    push ecx
    push edx
    push edx
    call pg_map_range
    add esp, 16
    mov eax, PTE_P
    mov ecx, FIRMWARE_PAGE
    push eax
    push ecx
    push ecx
    call pg_map
    add esp, 12
    ret

pg_enable:
    mov eax, dword ptr [pg_root]
    mov cr3, eax
    mov eax, cr0
    or eax, CR0_PG
    mov cr0, eax
    ret

pg_translate:
    mov edx, dword ptr [esp + 4]
    mov eax, edx
    shr eax, 22
    mov ecx, dword ptr [pg_root]
    mov eax, dword ptr [ecx + eax * 4]
    test al, PTE_P
    jz pg_translate_fail
    and eax, 0xFFFFF000
    mov ecx, edx
    shr ecx, 12
    and ecx, 0x3FF
    mov eax, dword ptr [eax + ecx * 4]
    test al, PTE_P
    jz pg_translate_fail
    and eax, 0xFFFFF000
    and edx, 0xFFF
    or eax, edx
    ret
pg_translate_fail:
    mov eax, -1
    ret

pg_page_list:
    push ebx
    push esi
    push edi
    mov ebx, dword ptr [esp + 16]
    mov esi, dword ptr [esp + 20]
    mov eax, dword ptr [esp + 28]
    mov dword ptr [ebx + HGCMPAGELISTINFO_OFF_FLAGS], eax
    mov eax, esi
    and eax, 0xFFF
    mov word ptr [ebx + HGCMPAGELISTINFO_OFF_OFFFIRSTPAGE], ax
    add eax, dword ptr [esp + 24]
    add eax, 4095
    shr eax, 12
    mov word ptr [ebx + HGCMPAGELISTINFO_OFF_CPAGES], ax
    mov edi, eax
    and esi, 0xFFFFF000
    add ebx, HGCMPAGELISTINFO_SIZE
pg_page_list_page:
    test edi, edi
    jz pg_page_list_done
    push esi
    call pg_translate
    add esp, 4
    cmp eax, -1
    je pg_page_list_out
    mov dword ptr [ebx], eax
    mov dword ptr [ebx + 4], 0
    add ebx, 8
    add esi, 4096
    dec edi
    jmp pg_page_list_page
pg_page_list_done:
    xor eax, eax
pg_page_list_out:
    pop edi
    pop esi
    pop ebx
    ret

pg_translate_page_list:
    push esi
    push edi
    mov edi, dword ptr [esp + 12]
    movzx esi, word ptr [edi + HGCMPAGELISTINFO_OFF_CPAGES]
    add edi, HGCMPAGELISTINFO_SIZE
pg_translate_page_list_page:
    test esi, esi
    jz pg_translate_page_list_done
    push dword ptr [edi]
    call pg_translate
    add esp, 4
    mov dword ptr [edi], eax
    mov dword ptr [edi + 4], 0
    cmp eax, -1
    jne pg_translate_page_list_next
    mov dword ptr [edi + 4], eax
pg_translate_page_list_next:
    add edi, 8
    dec esi
    jmp pg_translate_page_list_page
pg_translate_page_list_done:
    pop edi
    pop esi
    ret

.align 4
pg_next: .long 0
pg_root: .long 0
.endif

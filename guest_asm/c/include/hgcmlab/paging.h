/* hgcmlab/paging.h - what a guest kernel does with page tables: translate its own linear
 * addresses to physical ones by walking the active tables, and build tables to turn paging on.
 *
 * Requirement (as in most small kernels): page-table frames are reachable at their physical
 * address, i.e. RAM is identity-mapped (hg_pt_map_identity; the loader's paged start does it).
 * The arena may live anywhere mapped: its frames' physical addresses come from a walk. */
#ifndef HGCMLAB_PAGING_H
#define HGCMLAB_PAGING_H

#include <stdint.h>
#include <hgcmlab/abi.h>

/* Entry bits (PTE_P, PTE_RW, PTE_US, PTE_PS, ...) and control-register bits (CR0_PG, CR4_PAE,
 * ...) come from hgcmlab/abi.h (machine/paging.py).  IA32_EFER's MSR number: */
#define HG_MSR_EFER 0xC0000080u

/* Translate `linear` through the active page tables (identity while CR0.PG is clear):
 * 32-bit paging with 4 MiB pages, PAE and 4-level long-mode paging with 2 MiB/1 GiB pages.
 * Returns 0 and the physical address in *phys, or -1 when a level is not present (*phys
 * untouched).  `writable`, when not NULL, receives whether every level
 * allows writes. */
int hg_virt_to_phys(uintptr_t linear, uint64_t *phys, int *writable);

/* Formats hg_pt_init can build: the one of the current CPU mode (long mode in 64-bit
 * programs, 32-bit paging in 32-bit ones) or PAE (32-bit programs only). */
enum hg_pt_format { HG_PT_NATIVE = 0, HG_PT_PAE = 1 };

/* A set of page tables built in a caller-provided arena of 4 KiB-aligned frames. */
typedef struct hg_pt {
    uint64_t root;        /* CR3 value */
    uint8_t *arena;
    uint32_t frames;      /* arena size in frames */
    uint32_t used;        /* frames handed out */
    int levels;           /* 2 (32-bit), 3 (PAE), 4 (long mode) */
} hg_pt;

/* Start empty tables in `arena` (`frames` 4 KiB frames, 4 KiB aligned); 0 or -1 (bad args). */
int hg_pt_init(hg_pt *pt, void *arena, uint32_t frames, enum hg_pt_format format);
/* Take over the active page tables (paging must be on, e.g. after the loader's paged start),
 * with `arena` for the tables hg_pt_map adds; 0 or -1. */
int hg_pt_adopt(hg_pt *pt, void *arena, uint32_t frames);
/* Map the 4 KiB page at `linear` to the frame at `phys` with `flags` (PTE_RW, PTE_US;
 * present is implied; PTE_P alone maps read-only).  0, or -1 when the arena is full, an
 * address does not fit the format or a large page covers `linear`.  A mapping that exists is
 * replaced (flush it yourself with hg_invlpg when paging is on). */
int hg_pt_map(hg_pt *pt, uintptr_t linear, uint64_t phys, uint32_t flags);
/* Remove the 4 KiB mapping at `linear` (its entry becomes not present); 0 or -1 (unmapped). */
int hg_pt_unmap(hg_pt *pt, uintptr_t linear);
/* Identity-map [start, end) with 4 KiB pages; 0 or -1. */
int hg_pt_map_identity(hg_pt *pt, uint64_t start, uint64_t end, uint32_t flags);
/* Identity-map the pages of the current GDT read-only (the machine's start-up GDT lies on
 * a page above RAM, and the CPU reads the GDT through the page tables at every segment load
 * and iret), load CR3 and turn paging on (CR4.PAE for PAE/long mode, CR0.PG|WP): from then
 * on every access, including the next instruction fetch, goes through these tables.
 * 0, or -1 (paging stays off) when the GDT pages cannot be mapped. */
int hg_pt_activate(hg_pt *pt);

/* The top of RAM (the stack pointer the machine started the program with). */
extern uintptr_t hg_ram_top;

#endif

/* paging.c - page-table walks and a small page-table builder (hgcmlab/paging.h).
 * Formats from the Intel SDM vol. 3, chapter 4: 32-bit paging (2 levels of 1024 4-byte
 * entries, 4 MiB pages when CR4.PSE), PAE (a 4-entry PDPT, then 2 levels of 512 8-byte
 * entries, 2 MiB pages) and 4-level paging (4 levels of 512, 1 GiB and 2 MiB pages). */
#include <hgcmlab/io.h>
#include <hgcmlab/libc.h>
#include <hgcmlab/paging.h>

#define FRAME_MASK 0x000FFFFFFFFFF000ull
#define PAGE 4096u

uintptr_t hg_ram_top;

/* The layout of one format: entries are 4 or 8 bytes; level `i` (0 = root) indexes with
 * bits [shift[i], shift[i] + bits[i]). */
struct format {
    int levels;
    int entry_size;
    uint8_t shift[4];
    uint8_t bits[4];
};

static const struct format LONG_MODE = {4, 8, {39, 30, 21, 12}, {9, 9, 9, 9}};
static const struct format PAE = {3, 8, {30, 21, 12, 0}, {2, 9, 9, 0}};
static const struct format LEGACY = {2, 4, {22, 12, 0, 0}, {10, 10, 0, 0}};

static const struct format *format_of(int levels) {
    return levels == 4 ? &LONG_MODE : levels == 3 ? &PAE : &LEGACY;
}

static uint64_t read_entry(uint64_t table, const struct format *f, unsigned index) {
    if (f->entry_size == 4)
        return ((volatile const uint32_t *)(uintptr_t)table)[index];
    return ((volatile const uint64_t *)(uintptr_t)table)[index];
}

static void write_entry(uint64_t table, const struct format *f, unsigned index, uint64_t value) {
    if (f->entry_size == 4)
        ((volatile uint32_t *)(uintptr_t)table)[index] = (uint32_t)value;
    else
        ((volatile uint64_t *)(uintptr_t)table)[index] = value;
}

static unsigned index_at(const struct format *f, int level, uint64_t linear) {
    return (unsigned)(linear >> f->shift[level]) & ((1u << f->bits[level]) - 1);
}

static int active_levels(void) {
#if defined(__x86_64__)
    if (hg_rdmsr(HG_MSR_EFER) & EFER_LMA)
        return 4;
#endif
    return (hg_read_cr4() & CR4_PAE) ? 3 : 2;
}

/* Whether `entry` at `level` maps a large page (1 GiB, 2 MiB or 4 MiB) rather than a table. */
static int is_large(const struct format *f, int level, uint64_t entry) {
    if (!(entry & PTE_PS))
        return 0;
    if (f->levels == 4)
        return level == 1 || level == 2;
    if (f->levels == 3)
        return level == 1;
    return level == 0 && (hg_read_cr4() & CR4_PSE);
}

int hg_virt_to_phys(uintptr_t linear, uint64_t *phys, int *writable) {
    if (!(hg_read_cr0() & CR0_PG)) {
        *phys = linear;
        if (writable)
            *writable = 1;
        return 0;
    }
    const struct format *f = format_of(active_levels());
    uint64_t table = hg_read_cr3() & (f->levels == 3 ? ~0x1Full : ~0xFFFull);
    int write_ok = 1;
    for (int level = 0; level < f->levels; level++) {
        uint64_t entry = read_entry(table, f, index_at(f, level, linear));
        if (!(entry & PTE_P))
            return -1;
        /* PAE PDPT entries have no R/W bit: they never restrict writes. */
        if (!(f->levels == 3 && level == 0) && !(entry & PTE_RW))
            write_ok = 0;
        if (level == f->levels - 1 || is_large(f, level, entry)) {
            uint64_t offset_mask = ((uint64_t)1 << f->shift[level]) - 1;
            uint64_t base = f->entry_size == 4 ? (entry & 0xFFFFF000u) : (entry & FRAME_MASK);
            *phys = (base & ~offset_mask) | (linear & offset_mask);
            if (writable)
                *writable = write_ok;
            return 0;
        }
        table = f->entry_size == 4 ? (entry & 0xFFFFF000u) : (entry & FRAME_MASK);
    }
    return -1;
}

/* The physical address of a kit-owned frame (identity while paging is off). */
static uint64_t frame_phys(const void *frame) {
    uint64_t phys;
    return hg_virt_to_phys((uintptr_t)frame, &phys, NULL) == 0 ? phys : 0;
}

int hg_pt_adopt(hg_pt *pt, void *arena, uint32_t frames) {
    if (((uintptr_t)arena & (PAGE - 1)) || frames == 0 || !(hg_read_cr0() & CR0_PG))
        return -1;
    pt->levels = active_levels();
    pt->arena = arena;
    pt->frames = frames;
    pt->used = 0;
    pt->root = hg_read_cr3() & (pt->levels == 3 ? ~0x1Full : ~0xFFFull);
    return 0;
}

int hg_pt_init(hg_pt *pt, void *arena, uint32_t frames, enum hg_pt_format format) {
    if (((uintptr_t)arena & (PAGE - 1)) || frames == 0)
        return -1;
#if defined(__x86_64__)
    if (format != HG_PT_NATIVE)
        return -1;
    pt->levels = 4;
#else
    pt->levels = format == HG_PT_PAE ? 3 : 2;
#endif
    pt->arena = arena;
    pt->frames = frames;
    pt->used = 1;
    memset(arena, 0, PAGE);
    pt->root = frame_phys(arena);
    return 0;
}

static uint64_t new_table(hg_pt *pt) {
    if (pt->used >= pt->frames)
        return 0;
    uint8_t *frame = pt->arena + (uintptr_t)pt->used++ * PAGE;
    memset(frame, 0, PAGE);
    return frame_phys(frame);
}

/* The table holding the last-level entry for `linear`, creating tables on the way when
 * `create`; 0 when absent (or the arena is full). */
static uint64_t leaf_table(hg_pt *pt, uint64_t linear, int create) {
    const struct format *f = format_of(pt->levels);
    uint64_t table = pt->root;
    for (int level = 0; level < f->levels - 1; level++) {
        unsigned index = index_at(f, level, linear);
        uint64_t entry = read_entry(table, f, index);
        if ((entry & PTE_P) && is_large(f, level, entry))
            return 0; /* a large page is in the way: this builder does not split it */
        if (!(entry & PTE_P)) {
            uint64_t next = create ? new_table(pt) : 0;
            if (!next)
                return 0;
            /* PAE PDPT entries take only P (R/W and U/S are reserved there). */
            entry = next | (pt->levels == 3 && level == 0 ? PTE_P : PTE_P | PTE_RW | PTE_US);
            write_entry(table, f, index, entry);
        }
        table = entry & (f->entry_size == 4 ? 0xFFFFF000u : FRAME_MASK);
    }
    return table;
}

int hg_pt_map(hg_pt *pt, uintptr_t linear, uint64_t phys, uint32_t flags) {
    const struct format *f = format_of(pt->levels);
    if ((linear | phys) & (PAGE - 1) || (f->entry_size == 4 && phys >> 32))
        return -1;
    uint64_t table = leaf_table(pt, linear, 1);
    if (!table)
        return -1;
    write_entry(table, f, index_at(f, f->levels - 1, linear), phys | PTE_P | (flags & (PTE_RW | PTE_US)));
    return 0;
}

int hg_pt_unmap(hg_pt *pt, uintptr_t linear) {
    const struct format *f = format_of(pt->levels);
    uint64_t table = leaf_table(pt, linear, 0);
    if (!table)
        return -1;
    write_entry(table, f, index_at(f, f->levels - 1, linear), 0);
    return 0;
}

int hg_pt_map_identity(hg_pt *pt, uint64_t start, uint64_t end, uint32_t flags) {
    for (uint64_t page = start & ~(uint64_t)(PAGE - 1); page < end; page += PAGE)
        if (hg_pt_map(pt, (uintptr_t)page, page, flags) != 0)
            return -1;
    return 0;
}

int hg_pt_activate(hg_pt *pt) {
    /* The GDT is read through the page tables on every segment load and iret; the machine's
     * start-up GDT lies on a page above RAM, which an identity map of RAM misses. */
    struct {
        uint16_t limit;
        uintptr_t base;
    } __attribute__((packed)) gdtr;
    __asm__ volatile("sgdt %0" : "=m"(gdtr));
    if (hg_pt_map_identity(pt, gdtr.base, (uint64_t)gdtr.base + gdtr.limit + 1, 0) != 0)
        return -1;
    if (pt->levels >= 3)
        hg_write_cr4(hg_read_cr4() | CR4_PAE);
    hg_write_cr3((uintptr_t)pt->root);
    hg_write_cr0(hg_read_cr0() | CR0_PG | CR0_WP);
    return 0;
}

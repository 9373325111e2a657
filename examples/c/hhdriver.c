/* hhdriver.c - a driver-style program in a higher-half kernel-like image: the loader starts it
 * paged (run --paging) at 0xffffffff80100000 (64-bit) or 0xC0100000 (32-bit), loaded at
 * physical 1 MiB.  Like a kernel's vmalloc, it takes over the loader's page tables and maps a
 * virtually contiguous buffer onto frames of its own .bss in a scattered order, then writes a
 * file through it with page lists (its frames found by walking the tables), reads it back
 * through LinAddr parameters (the device walks the same tables) and compares.
 *
 *   hgcmlab run examples/c/hhdriver.c --paging [--mode 32] --share d=DIR -- d:/out.bin [irq]
 *
 * Exit: 0 done, 1 bad arguments, 2 not started paged / page tables, 3 connect/map,
 * 4 open/write/read/close, 5 the data read back differs. */
#include <hgcmlab/hgcm.h>
#include <hgcmlab/libc.h>
#include <hgcmlab/paging.h>
#include <hgcmlab/sf.h>

#define PAGES 6
/* The "vmalloc" area: 1 MiB above the image's read-only data, in a range the loader left
 * unmapped (in 32-bit mode the 4 MiB region of the image is the only one the loader maps
 * with 4 KiB pages; the others are identity-mapped with 4 MiB pages). */
#define VMALLOC_BASE ((uintptr_t)&vmalloc_anchor + 0x100000)

static uint8_t table_arena[8][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static uint8_t frames[PAGES][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static const uint8_t vmalloc_anchor __attribute__((aligned(PAGE_SIZE))) = 0;
/* Virtual page i of the buffer is frame order[i]. */
static const int order[PAGES] = {4, 1, 5, 0, 3, 2};

static uint8_t *vmalloc_scattered(void) {
    hg_pt pt;
    if (hg_pt_adopt(&pt, table_arena, 8) != 0)
        return NULL;
    uintptr_t base = VMALLOC_BASE & ~(uintptr_t)(PAGE_SIZE - 1);
    for (int i = 0; i < PAGES; i++) {
        uint64_t phys;
        if (hg_virt_to_phys((uintptr_t)frames[order[i]], &phys, NULL) != 0 ||
            hg_pt_map(&pt, base + (uintptr_t)i * PAGE_SIZE, phys, PTE_RW) != 0)
            return NULL;
    }
    return (uint8_t *)base;
}

int main(int argc, char **argv) {
    char share[32];
    const char *colon = argc > 0 ? strchr(argv[0], ':') : NULL;
    if (!colon || colon == argv[0] || (size_t)(colon - argv[0]) >= sizeof share) {
        hg_puts("usage: hhdriver SHARE:/FILE [irq]");
        return 1;
    }
    memcpy(share, argv[0], (size_t)(colon - argv[0]));
    share[colon - argv[0]] = 0;
    uint8_t *buffer = vmalloc_scattered();
    if ((uintptr_t)main < 0x80000000u || !buffer) {
        hg_puts("error: start me paged (--paging) as a higher-half image");
        return 2;
    }
    uint64_t phys_main;
    hg_virt_to_phys((uintptr_t)main, &phys_main, NULL);
    hg_printf("main at %p (physical %llx), buffer at %p\n", (void *)main, (unsigned long long)phys_main, buffer);

    uint32_t client, root, size = PAGES * PAGE_SIZE - 64;
    uint64_t file;
    int rc = hg_vmmdev_init();
    if (rc >= 0 && argc > 1 && !strcmp(argv[1], "irq"))
        hg_irq_setup();
    if (rc < 0 || (rc = sf_connect(&client)) < 0 || (rc = sf_map(client, share, &root)) < 0) {
        hg_printf("error: connect/map: %d\n", rc);
        return 3;
    }
    for (uint32_t i = 0; i < size; i++)
        buffer[32 + i] = (uint8_t)(i * 7 + i / PAGE_SIZE);
    uint32_t written = size, read = size;
    if ((rc = sf_open(client, root, colon + 1,
                      SHFL_CF_ACT_CREATE_IF_NEW | SHFL_CF_ACT_REPLACE_IF_EXISTS | SHFL_CF_ACCESS_READWRITE, &file)) < 0 ||
        (rc = sf_write(client, root, file, 0, buffer + 32, &written)) < 0) {
        hg_printf("error: open/write: %d\n", rc);
        return 4;
    }
    memset(buffer, 0, PAGES * PAGE_SIZE);
    sf_set_buffer_kind(SF_BUFFERS_LINADDR);
    if ((rc = sf_read(client, root, file, 0, buffer + 32, &read)) < 0 || (rc = sf_close(client, root, file)) < 0) {
        hg_printf("error: read/close: %d\n", rc);
        return 4;
    }
    for (uint32_t i = 0; i < size; i++)
        if (buffer[32 + i] != (uint8_t)(i * 7 + i / PAGE_SIZE)) {
            hg_printf("error: byte %u differs\n", i);
            return 5;
        }
    hg_printf("wrote %u bytes with page lists, read %u back with LinAddr: equal\n", written, read);
    sf_disconnect(client);
    return 0;
}

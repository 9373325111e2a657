/* sfcopy.c - copy a file between shared folders the way a guest kernel driver would: with
 * paging on, through a copy buffer that is virtually contiguous and physically scattered.
 *
 *   hgcmlab run examples/c/sfcopy.c [--mode 32] --share d=DIR -- d:/src.txt d:/dst.txt [irq]
 *
 * The program builds its own page tables (long-mode paging in 64-bit, 32-bit paging in
 * 32-bit mode, PAE with the extra argument "pae"): an identity map of RAM (code, data, stack,
 * the tables themselves), plus a COPY_PAGES-page window at WINDOW whose pages map frames of a
 * pool in reverse order.  It turns paging on, then reads the source into the window and writes
 * it to the destination chunk by chunk; each READ/WRITE carries a page list the HGCM library
 * builds by walking those tables (so the frames go out of order).  "irq" waits for
 * completions by interrupt instead of polling.
 * Exit: 0 copied, 1 bad arguments, 2 connect/map failed, 3 open/read/write/close failed,
 * 4 page tables. */
#include <hgcmlab/hgcm.h>
#include <hgcmlab/libc.h>
#include <hgcmlab/paging.h>
#include <hgcmlab/sf.h>

#define COPY_PAGES 5
#define TABLE_FRAMES 80
#if defined(__x86_64__)
#define WINDOW 0x00007F0000000000ull
#else
#define WINDOW 0x80000000u
#endif

static uint8_t tables[TABLE_FRAMES][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static uint8_t pool[COPY_PAGES][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

/* "share:/path" -> share name in `share`, path after the colon. */
static const char *split(const char *spec, char *share, size_t size) {
    const char *colon = strchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= size || colon == spec)
        return NULL;
    memcpy(share, spec, (size_t)(colon - spec));
    share[colon - spec] = 0;
    return colon + 1;
}

static int paging_on(enum hg_pt_format format) {
    hg_pt pt;
    if (hg_pt_init(&pt, tables, TABLE_FRAMES, format) != 0 || hg_pt_map_identity(&pt, 0, hg_ram_top, PTE_RW) != 0)
        return -1;
    for (int page = 0; page < COPY_PAGES; page++)
        if (hg_pt_map(&pt, (uintptr_t)(WINDOW + (uintptr_t)page * PAGE_SIZE),
                      (uintptr_t)pool[COPY_PAGES - 1 - page], PTE_RW) != 0)
            return -1;
    return hg_pt_activate(&pt);
}

int main(int argc, char **argv) {
    char src_share[64], dst_share[64];
    const char *src, *dst;
    if (argc < 2 || !(src = split(argv[0], src_share, sizeof src_share)) ||
        !(dst = split(argv[1], dst_share, sizeof dst_share))) {
        hg_puts("usage: sfcopy SHARE:/SRC SHARE:/DST [irq] [pae]");
        return 1;
    }
    int use_irq = 0, pae = 0;
    for (int i = 2; i < argc; i++) {
        use_irq |= strcmp(argv[i], "irq") == 0;
        pae |= strcmp(argv[i], "pae") == 0;
    }
    if (paging_on(pae ? HG_PT_PAE : HG_PT_NATIVE) != 0) {
        hg_puts("error: cannot build the page tables");
        return 4;
    }
    uint8_t *window = (uint8_t *)(uintptr_t)WINDOW;
    uint64_t first;
    hg_virt_to_phys((uintptr_t)window, &first, NULL);
    hg_printf("paging on: window %p -> frame %llx\n", (void *)window, (unsigned long long)first);

    uint32_t client, src_root, dst_root;
    int rc = hg_vmmdev_init();
    if (rc >= 0 && use_irq)
        hg_irq_setup();
    if (rc < 0 || (rc = sf_connect(&client)) < 0 || (rc = sf_map(client, src_share, &src_root)) < 0 ||
        (rc = sf_map(client, dst_share, &dst_root)) < 0) {
        hg_printf("error: connect/map: %d\n", rc);
        return 2;
    }
    uint64_t in, out;
    if ((rc = sf_open(client, src_root, src, SHFL_CF_ACT_OPEN_IF_EXISTS | SHFL_CF_ACT_FAIL_IF_NEW | SHFL_CF_ACCESS_READ,
                      &in)) < 0 ||
        (rc = sf_open(client, dst_root, dst,
                      SHFL_CF_ACT_CREATE_IF_NEW | SHFL_CF_ACT_REPLACE_IF_EXISTS | SHFL_CF_ACCESS_WRITE, &out)) < 0) {
        hg_printf("error: open: %d\n", rc);
        return 3;
    }
    uint64_t offset = 0;
    for (;;) {
        /* Start 100 bytes into the window: the page list's first page is partial. */
        uint32_t size = COPY_PAGES * PAGE_SIZE - 100;
        if ((rc = sf_read(client, src_root, in, offset, window + 100, &size)) < 0)
            break;
        if (size == 0)
            break;
        uint32_t written = size;
        if ((rc = sf_write(client, dst_root, out, offset, window + 100, &written)) < 0 || written != size)
            break;
        offset += size;
    }
    int closed = sf_close(client, src_root, in) | sf_close(client, dst_root, out);
    if (rc < 0 || closed < 0) {
        hg_printf("error: copy: %d\n", rc < 0 ? rc : closed);
        return 3;
    }
    hg_printf("copied %llu bytes%s\n", (unsigned long long)offset, use_irq ? " (interrupts)" : "");
    sf_disconnect(client);
    return 0;
}

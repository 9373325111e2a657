/* start.c - from the machine's entry state to main(argc, argv) and back to the exit port.
 * crt0 calls hg_cstart(argc, block, ram_top) with the values the machine put in rdi/edi and
 * rsi/esi and its initial stack pointer (the top of RAM, kept in hg_ram_top):
 * the argument block at ARGS_BASE (u32 argc, u32 size, argc u32 offsets from the block start
 * of NUL-terminated strings).  argv is built on the stack (argc+1 pointers, argv[argc] = NULL);
 * main's return value is written to EXIT_PORT.  .bss needs no clearing: the loader zero-fills
 * every segment's memory beyond its file bytes. */
#include <hgcmlab/abi.h>
#include <hgcmlab/libc.h>
#include <hgcmlab/paging.h>

int main(int argc, char **argv);
__attribute__((noreturn, used)) void hg_cstart(uint32_t argc, const uint8_t *block, uintptr_t ram_top);

void hg_cstart(uint32_t argc, const uint8_t *block, uintptr_t ram_top) {
    hg_ram_top = ram_top;
    const uint32_t *offsets = (const uint32_t *)(block + 8);
    char *argv[argc + 1];
    for (uint32_t i = 0; i < argc; i++)
        argv[i] = (char *)(block + offsets[i]);
    argv[argc] = NULL;
    hg_exit(main((int)argc, argv));
}

/* hgcmlab/io.h - port I/O and control registers for C guests (freestanding, header only).
 * Ports: VMMDEV_PORT (requests, 32-bit out of a physical address), EXIT_PORT, BACKDOOR_LOG_PORT
 * come from hgcmlab/abi.h. */
#ifndef HGCMLAB_IO_H
#define HGCMLAB_IO_H

#include <stdint.h>

static inline void hg_outb(uint16_t port, uint8_t value) { __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port)); }
static inline void hg_outl(uint16_t port, uint32_t value) { __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port)); }
static inline uint8_t hg_inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t hg_inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

/* Control registers as full machine words (uintptr_t: 32 or 64 bits). */
#define HG_CR_ACCESSORS(n) \
    static inline uintptr_t hg_read_cr##n(void) { uintptr_t v; __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v)); return v; } \
    static inline void hg_write_cr##n(uintptr_t v) { __asm__ volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); }
HG_CR_ACCESSORS(0)
HG_CR_ACCESSORS(2)
HG_CR_ACCESSORS(3)
HG_CR_ACCESSORS(4)
#undef HG_CR_ACCESSORS

static inline uint64_t hg_rdmsr(uint32_t msr) {
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}
static inline void hg_wrmsr(uint32_t msr, uint64_t value) {
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)));
}
static inline void hg_invlpg(const void *address) { __asm__ volatile("invlpg (%0)" : : "r"(address) : "memory"); }
static inline void hg_sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void hg_cli(void) { __asm__ volatile("cli" ::: "memory"); }
/* sti; hlt as one pair: an interrupt pending at the sti is taken at the hlt, not lost. */
static inline void hg_sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
static inline void hg_barrier(void) { __asm__ volatile("" ::: "memory"); }

#endif

/* hgcmlab/libc.h - the kit's freestanding C library: memory and string functions, formatted
 * log output to the log port (BACKDOOR_LOG_PORT, line-buffered by the machine) and exit.
 *
 * hg_printf understands %d %i %u %x %X %p %s %c %% with an optional '-' or '0' flag, a decimal
 * width, and the length modifiers hh h l ll z j t; no floating point.  It returns the number of
 * bytes written. */
#ifndef HGCMLAB_LIBC_H
#define HGCMLAB_LIBC_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int value, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strrchr(const char *s, int c);
/* Copies at most size-1 bytes and always terminates (when size > 0); returns strlen(src). */
size_t strlcpy(char *dst, const char *src, size_t size);

int hg_putc(int c);
int hg_puts(const char *s);                       /* s and a newline */
int hg_printf(const char *format, ...) __attribute__((format(printf, 1, 2)));
int hg_vprintf(const char *format, va_list args);
/* Format into buf (at most size bytes with the terminating NUL); returns the full length. */
int hg_snprintf(char *buf, size_t size, const char *format, ...) __attribute__((format(printf, 3, 4)));
int hg_vsnprintf(char *buf, size_t size, const char *format, va_list args);

/* End the run with exit code `code` (EXIT_PORT, 32-bit write). */
__attribute__((noreturn)) void hg_exit(int code);

#endif

/* log.c - formatted output to the log port and exit (hgcmlab/libc.h). */
#include <hgcmlab/abi.h>
#include <hgcmlab/io.h>
#include <hgcmlab/libc.h>

/* Where formatted bytes go: the log port (buf == NULL) or a bounded buffer. */
struct sink {
    char *buf;
    size_t size;
    size_t count;
};

static void emit(struct sink *sink, char c) {
    if (!sink->buf)
        hg_outb(BACKDOOR_LOG_PORT, (uint8_t)c);
    else if (sink->count + 1 < sink->size)
        sink->buf[sink->count] = c;
    sink->count++;
}

static void emit_padded(struct sink *sink, const char *text, size_t length, int width, int left, char pad) {
    int fill = width > (int)length ? width - (int)length : 0;
    if (!left && pad == '0' && length && (*text == '-')) {
        emit(sink, *text++);
        length--;
    }
    if (!left)
        for (; fill > 0; fill--)
            emit(sink, pad);
    while (length--)
        emit(sink, *text++);
    for (; fill > 0; fill--)
        emit(sink, ' ');
}

/* value / base with the remainder in *rest, by binary long division: 32-bit guests have no
 * libgcc (__udivdi3) to link against. */
static uint64_t divide(uint64_t value, unsigned base, unsigned *rest) {
    uint64_t quotient = 0;
    uint32_t remainder = 0;
    for (int bit = 63; bit >= 0; bit--) {
        remainder = (remainder << 1) | (uint32_t)((value >> bit) & 1);
        if (remainder >= base) {
            remainder -= base;
            quotient |= (uint64_t)1 << bit;
        }
    }
    *rest = remainder;
    return quotient;
}

/* Digits of `value` in `base` written backwards from `end`; returns the first digit. */
static char *digits(uint64_t value, unsigned base, int upper, char *end) {
    const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char *p = end;
    do {
        unsigned digit;
        value = divide(value, base, &digit);
        *--p = set[digit];
    } while (value);
    return p;
}

static void format(struct sink *sink, const char *f, va_list args) {
    char number[24];
    char *const end = number + sizeof number;
    for (; *f; f++) {
        if (*f != '%') {
            emit(sink, *f);
            continue;
        }
        int left = 0, width = 0, longness = 0;
        char pad = ' ';
        for (f++; *f == '-' || *f == '0'; f++) {
            if (*f == '-')
                left = 1;
            else
                pad = '0';
        }
        for (; *f >= '0' && *f <= '9'; f++)
            width = width * 10 + (*f - '0');
        for (; *f == 'l' || *f == 'h' || *f == 'z' || *f == 'j' || *f == 't'; f++)
            longness += *f == 'l' ? 1 : (*f == 'h' ? 0 : 2);
        if (left)
            pad = ' ';
        uint64_t value;
        char *text;
        switch (*f) {
        case 'd':
        case 'i': {
            int64_t v = longness >= 2 ? va_arg(args, long long) : longness ? va_arg(args, long) : va_arg(args, int);
            text = digits(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, 0, end);
            if (v < 0)
                *--text = '-';
            emit_padded(sink, text, (size_t)(end - text), width, left, pad);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
            value = longness >= 2 ? va_arg(args, unsigned long long)
                    : longness ? va_arg(args, unsigned long) : va_arg(args, unsigned int);
            text = digits(value, *f == 'u' ? 10 : 16, *f == 'X', end);
            emit_padded(sink, text, (size_t)(end - text), width, left, pad);
            break;
        case 'p':
            text = digits((uintptr_t)va_arg(args, void *), 16, 0, end);
            *--text = 'x';
            *--text = '0';
            emit_padded(sink, text, (size_t)(end - text), width, left, ' ');
            break;
        case 's':
            text = va_arg(args, char *);
            if (!text)
                text = "(null)";
            emit_padded(sink, text, strlen(text), width, left, ' ');
            break;
        case 'c':
            number[0] = (char)va_arg(args, int);
            emit_padded(sink, number, 1, width, left, ' ');
            break;
        case '%':
            emit(sink, '%');
            break;
        default: /* an unknown conversion is shown as written, never skipped silently */
            emit(sink, '%');
            if (!*f)
                return;
            emit(sink, *f);
        }
    }
}

int hg_vsnprintf(char *buf, size_t size, const char *f, va_list args) {
    char none;
    struct sink sink = {size ? buf : &none, size, 0};
    format(&sink, f, args);
    if (size)
        buf[sink.count < size ? sink.count : size - 1] = 0;
    return (int)sink.count;
}

int hg_snprintf(char *buf, size_t size, const char *f, ...) {
    va_list args;
    va_start(args, f);
    int n = hg_vsnprintf(buf, size, f, args);
    va_end(args);
    return n;
}

int hg_vprintf(const char *f, va_list args) {
    struct sink sink = {NULL, 0, 0};
    format(&sink, f, args);
    return (int)sink.count;
}

int hg_printf(const char *f, ...) {
    va_list args;
    va_start(args, f);
    int n = hg_vprintf(f, args);
    va_end(args);
    return n;
}

int hg_putc(int c) {
    hg_outb(BACKDOOR_LOG_PORT, (uint8_t)c);
    return (unsigned char)c;
}

int hg_puts(const char *s) {
    int n = 0;
    for (; s[n]; n++)
        hg_putc(s[n]);
    hg_putc('\n');
    return n + 1;
}

void hg_exit(int code) {
    hg_outl(EXIT_PORT, (uint32_t)code);
    for (;;)
        __asm__ volatile("hlt");
}

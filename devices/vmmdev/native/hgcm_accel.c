/*
 * The native HGCM accelerator: Shared Folders READ and WRITE completed inside Unicorn's OUT
 * hook, without entering Python.  devices/vmmdev/accel.py states the contract, builds this
 * file and prepends the generated prelude: every wire offset, size and constant below
 * (REQ_*, CALL_*, PARM_*, PL_*, ...) and the layouts of `struct accel`, `struct
 * accel_handle` and `struct cpu_state` come from the Python ABI and ctypes declarations,
 * so no wire number is typed here.
 *
 * The hook takes a call only when the Python direct path (devices/vmmdev/device.py:
 * _direct_call) would take it and complete it successfully inside this `out`, with the same
 * result; it decides that before touching anything.  Whatever else reaches it, any port, any
 * request, any condition it does not model, goes to the Python hook unchanged.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* What the call needs once it is decided. */
struct plan {
    uint8_t *request;
    uint8_t *parms;
    uint32_t parm_size;
    uint64_t start;          /* guest-physical start of the buffer */
    uint32_t buffer_size;    /* the buffer parameter's byte count */
    uint32_t direction;      /* VBOX_HGCM_F_PARM_DIRECTION_* bits */
    uint32_t count;          /* cb: bytes to transfer */
    uint64_t offset;         /* file offset */
    const struct accel_handle *handle;
    /* A page list whose pages are not one consecutive run (the general path's bounce
     * buffer, page by page): the buffer as pieces of guest RAM, in order. */
    int scattered;
    int pieces;
    struct iovec piece[MAX_SCATTER_PAGES];
};

/* HGCM heap category of a requestor (devices/vmmdev/commands.py: heap_category). */
static int heap_category(uint32_t requestor)
{
    uint32_t usr;
    if (requestor == REQUESTOR_LEGACY)
        return 0;
    usr = requestor & 7;
    return usr <= 2 ? 0 : usr <= 4 ? 1 : 2;
}

/* A page list's header checks (devices/vmmdev/params.py: _page_list; direct.py:
 * _consecutive_pages): its direction, page count and first page's offset, or 0. */
static int page_list_head(const uint8_t *request, uint32_t size, uint32_t offset, uint32_t cb, uint32_t off_extra,
                          uint32_t *direction, uint32_t *pages, uint32_t *off_first)
{
    const uint8_t *list;
    uint32_t flags;
    if (!(offset >= off_extra && size >= PL_MIN_SIZE && offset <= size - PL_MIN_SIZE))
        return 0;
    list = request + offset;
    flags = rd32(list + PL_OFF_FLAGS);
    *off_first = rd16(list + PL_OFF_FIRST_PAGE);
    *pages = rd16(list + PL_OFF_PAGE_COUNT);
    if (*pages == 0 || *pages > 1 + (size - offset - PL_MIN_SIZE) / PL_ENTRY_SIZE)
        return 0;
    if ((flags & DIRECTION_MASK) == 0 || (flags & ~(uint32_t)DIRECTION_MASK))
        return 0;
    if (*off_first >= GUEST_PAGE_SIZE || (uint64_t)*pages * GUEST_PAGE_SIZE - *off_first < cb)
        return 0;
    *direction = flags & DIRECTION_MASK;
    return 1;
}

/* A page list (PageList type): 1 and the plan's buffer when it passes every check of the
 * general path and its pages lie in RAM: one consecutive run (the direct path's case:
 * every listed page follows the one before), or pieces, one per page the buffer uses
 * (the bounce buffer's case: page-aligned entries of RAM pages, none overlapping the
 * request, at most MAX_SCATTER_PAGES of them); else 0. */
static int page_list(const struct accel *a, const uint8_t *request, uint32_t address, uint32_t size,
                     uint32_t offset, uint32_t off_extra, struct plan *p)
{
    const uint8_t *entries = request + offset + PL_OFF_PAGES;
    uint32_t pages, off_first, used, i, remaining;
    uint64_t first;
    if (!page_list_head(request, size, offset, p->buffer_size, off_extra, &p->direction, &pages, &off_first))
        return 0;
    first = rd64(entries);
    if (!(first & (GUEST_PAGE_SIZE - 1)) && first <= UINT64_MAX - (uint64_t)(pages - 1) * GUEST_PAGE_SIZE) {
        for (i = 1; i < pages; i++)
            if (rd64(entries + (uint64_t)i * PL_ENTRY_SIZE) != first + (uint64_t)i * GUEST_PAGE_SIZE)
                break;
        if (i == pages) {
            p->scattered = 0;
            p->start = first + off_first;
            return 1;
        }
    }
    used = (uint32_t)(((uint64_t)off_first + p->buffer_size + GUEST_PAGE_SIZE - 1) / GUEST_PAGE_SIZE);
    if (used > MAX_SCATTER_PAGES)
        return 0;
    remaining = p->buffer_size;
    for (i = 0; i < used; i++) {
        uint64_t page = rd64(entries + (uint64_t)i * PL_ENTRY_SIZE);
        uint32_t within = i == 0 ? off_first : 0;
        uint32_t take = remaining < GUEST_PAGE_SIZE - within ? remaining : GUEST_PAGE_SIZE - within;
        if (page & (GUEST_PAGE_SIZE - 1) || page > a->ram_size || a->ram_size - page < GUEST_PAGE_SIZE)
            return 0;
        if (page < (uint64_t)address + size && address < page + GUEST_PAGE_SIZE)
            return 0;
        p->piece[i].iov_base = (uint8_t *)(uintptr_t)a->ram + page + within;
        p->piece[i].iov_len = take;
        remaining -= take;
    }
    p->scattered = 1;
    p->pieces = (int)used;
    return 1;
}

/* The exported handle for (client, root, handle) that is still current, or NULL (the miss
 * is recorded for Python to export it). */
static const struct accel_handle *find_handle(struct accel *a, uint32_t client, uint32_t root, uint64_t handle)
{
    uint64_t generation = *(const volatile uint64_t *)(uintptr_t)a->generation;
    uint32_t i;
    for (i = 0; i < a->handle_count && i < MAX_HANDLES; i++) {
        const struct accel_handle *h = &a->handles[i];
        if (h->client == client && h->root == root && h->handle == handle && h->generation == generation)
            return h;
    }
    a->miss_client = client;
    a->miss_root = root;
    a->miss_handle = handle;
    a->miss_valid = 1;
    return 0;
}

/* Every check the Python path makes, in any order (none of them has an effect): 1 and
 * the plan when the call is READ or WRITE of an exported handle that the direct path would
 * complete successfully, else 0. */
static int decide(void *uc, struct accel *a, uint32_t address, struct plan *p)
{
    uint8_t *request, *parms, *buffer_parm;
    uint32_t size, type, client, function, cparms, parm_size, buffer_type, requestor, i;
    uint64_t linear, cr0 = 0;
    int category;
    if (address > a->ram_size || a->ram_size - address < REQ_HEADER_SIZE)
        return 0;
    request = (uint8_t *)(uintptr_t)a->ram + address;
    size = rd32(request + REQ_OFF_SIZE);
    type = rd32(request + REQ_OFF_TYPE);
    if (rd32(request + REQ_OFF_VERSION) != REQUEST_HEADER_VERSION || size > MAX_REQUEST_SIZE)
        return 0;
    if ((type != REQ_TYPE_CALL32 && type != REQ_TYPE_CALL64) || size < CALL_SIZE || a->ram_size - address < size)
        return 0;
    client = rd32(request + CALL_OFF_CLIENT);
    function = rd32(request + CALL_OFF_FUNCTION);
    cparms = rd32(request + CALL_OFF_PARM_COUNT);
    if ((function != SHFL_FN_READ && function != SHFL_FN_WRITE) || cparms != SHFL_TRANSFER_PARMS)
        return 0;
    parm_size = type == REQ_TYPE_CALL64 ? PARM64_SIZE : PARM32_SIZE;
    if ((uint64_t)cparms * parm_size > size - CALL_OFF_PARMS)
        return 0;
    parms = request + CALL_OFF_PARMS;
    /* root u32, handle u64, offset u64, cb u32, then the buffer. */
    if (rd32(parms + PARM_OFF_TYPE) != PARM_BIT32 || rd32(parms + parm_size + PARM_OFF_TYPE) != PARM_BIT64
        || rd32(parms + 2 * parm_size + PARM_OFF_TYPE) != PARM_BIT64
        || rd32(parms + 3 * parm_size + PARM_OFF_TYPE) != PARM_BIT32)
        return 0;
    buffer_parm = parms + 4 * parm_size;
    buffer_type = rd32(buffer_parm + PARM_OFF_TYPE);
    p->buffer_size = rd32(buffer_parm + PARM_OFF_VALUE);
    if (p->buffer_size == 0 || p->buffer_size > MAX_HGCM_DATA_SIZE)
        return 0;
    if (buffer_type == PARM_LINADDR || buffer_type == PARM_LINADDR_IN || buffer_type == PARM_LINADDR_OUT) {
        p->direction = buffer_type == PARM_LINADDR ? DIRECTION_BOTH
                       : buffer_type == PARM_LINADDR_IN ? DIRECTION_TO_HOST : DIRECTION_FROM_HOST;
        linear = parm_size == PARM64_SIZE ? rd64(buffer_parm + PARM_OFF_ADDR) : rd32(buffer_parm + PARM_OFF_ADDR);
        /* A paged guest's buffer is translated (and traced) by Python. */
        if (((int (*)(void *, int, void *))(uintptr_t)a->reg_read)(uc, REG_CR0, &cr0) != 0 || (cr0 & CR0_PAGING))
            return 0;
        p->start = linear;
        p->scattered = 0;
    } else if (buffer_type == PARM_PAGE_LIST) {
        if (!page_list(a, request, address, size, rd32(buffer_parm + PARM_OFF_ADDR),
                       CALL_OFF_PARMS + cparms * parm_size, p))
            return 0;
    } else {
        return 0;
    }
    /* A scattered buffer that also travels to the host, read into: the general path
     * copies its guest bytes back page by page after the read, and a page listed twice
     * then ends up with the bytes it had before the read (the later copy wins), which
     * one preadv would not reproduce.  Such lists go to Python. */
    if (p->scattered && function == SHFL_FN_READ && (p->direction & DIRECTION_TO_HOST))
        return 0;
    /* READ stores into the buffer, WRITE reads it: the direction must say so. */
    if (function == SHFL_FN_READ ? !(p->direction & DIRECTION_FROM_HOST) : !(p->direction & DIRECTION_TO_HOST))
        return 0;
    if (!p->scattered) {
        if (p->start > a->ram_size || p->buffer_size > a->ram_size - p->start)
            return 0;
        if (p->start < (uint64_t)address + size && address < p->start + p->buffer_size)
            return 0;
        p->piece[0].iov_base = (uint8_t *)(uintptr_t)a->ram + p->start;
        p->piece[0].iov_len = p->buffer_size;
        p->pieces = 1;
    }
    /* The device: heap budget, no command pending at this address, the call limit. */
    requestor = a->requestor_info ? rd32(request + REQ_OFF_REQUESTOR) : REQUESTOR_LEGACY;
    category = heap_category(requestor);
    if (p->buffer_size > MAX_CALL_HEAP
        || (int64_t)(COMMAND_HEAP_COST + (uint64_t)p->buffer_size) > a->heap_available[category])
        return 0;
    for (i = 0; i < a->pending_count && i < MAX_PENDING; i++)
        if (a->pending[i] == address)
            return 0;
    /* The service: a current handle of this client, access, counts. */
    p->offset = rd64(parms + 2 * parm_size + PARM_OFF_VALUE);
    p->count = rd32(parms + 3 * parm_size + PARM_OFF_VALUE);
    {
        uint64_t handle = rd64(parms + parm_size + PARM_OFF_VALUE);
        if (handle == SHFL_HANDLE_ROOT || handle == SHFL_HANDLE_NIL)
            return 0;
        p->handle = find_handle(a, client, rd32(parms + PARM_OFF_VALUE), handle);
    }
    if (!p->handle || !p->handle->admitted || (function == SHFL_FN_WRITE && !p->handle->writable))
        return 0;
    if (p->count == 0 || p->count > p->buffer_size || p->offset >> 63)
        return 0;
    p->request = request;
    p->parms = parms;
    p->parm_size = parm_size;
    return 1;
}

/* The cycles the call charges, or -1 when they would reach the pending deadline (Python then
 * takes the call and stops the run where it must). */
static int64_t charge_for(const struct accel *a, uint32_t function, uint32_t buffer_size)
{
    const struct cpu_state *cpu = (const struct cpu_state *)(uintptr_t)a->cpu;
    uint64_t base = function == SHFL_FN_READ ? a->read_cycles : a->write_cycles;
    uint64_t total = a->port_cycles + base + a->byte_cycles * buffer_size;
    if (cpu->inexact)
        return -1;
    if (cpu->deadline != NO_DEADLINE && cpu->cycles + cpu->charged + total >= cpu->deadline)
        return -1;
    return (int64_t)total;
}

/* The pieces holding the buffer's first `count` bytes, into `out`; how many. */
static int first_bytes(const struct plan *p, uint32_t count, struct iovec *out)
{
    int n = 0;
    while (count && n < p->pieces) {
        out[n] = p->piece[n];
        if (out[n].iov_len > count)
            out[n].iov_len = count;
        count -= (uint32_t)out[n].iov_len;
        n++;
    }
    return n;
}

/* Zero the buffer from byte `from` on (what a zero-filled bounce buffer leaves there). */
static void zero_from(const struct plan *p, uint64_t from)
{
    int i;
    for (i = 0; i < p->pieces; i++) {
        uint64_t length = p->piece[i].iov_len;
        if (from < length)
            memset((uint8_t *)p->piece[i].iov_base + from, 0, length - from);
        from = from > length ? from - length : 0;
    }
}

/* Positional read into the buffer's first `count` bytes: the count read (short at the end
 * of the file), or -1 when it failed (nothing was read). */
static ssize_t read_at(int fd, const struct plan *p, uint32_t count, uint64_t offset)
{
    struct iovec pieces[MAX_SCATTER_PAGES];
    int n = first_bytes(p, count, pieces);
    unsigned long long tries;
    for (tries = 0; tries <= EINTR_RETRIES; tries++) {
        ssize_t done = preadv(fd, pieces, n, (off_t)offset);
        if (done >= 0 || errno != EINTR)
            return done;
    }
    return -1;
}

/* Positional write of the buffer's first `count` bytes, all of them (runtime/fs.py:
 * HostFile.write_at): the bytes written, or -1 when the first write failed (nothing was
 * written). */
static int64_t write_at(int fd, const struct plan *p, uint32_t count, uint64_t offset)
{
    struct iovec pieces[MAX_SCATTER_PAGES];
    int n = first_bytes(p, count, pieces), next = 0;
    uint32_t done = 0;
    while (done < count) {
        ssize_t step = -1;
        unsigned long long tries;
        for (tries = 0; tries <= EINTR_RETRIES; tries++) {
            step = pwritev(fd, pieces + next, n - next, (off_t)(offset + done));
            if (step >= 0 || errno != EINTR)
                break;
        }
        if (step < 0)
            return done ? (int64_t)done : -1;
        if (step == 0)
            break;
        done += (uint32_t)step;
        /* Past what went out: whole pieces dropped, the next one shortened. */
        while (next < n && (size_t)step >= pieces[next].iov_len) {
            step -= (ssize_t)pieces[next].iov_len;
            next++;
        }
        if (next < n) {
            pieces[next].iov_base = (uint8_t *)pieces[next].iov_base + step;
            pieces[next].iov_len -= (size_t)step;
        }
    }
    return done;
}

static int try_call(void *uc, struct accel *a, uint32_t address)
{
    struct plan p;
    uint32_t function;
    int64_t cycles, moved;
    if (!decide(uc, a, address, &p))
        return 0;
    function = rd32(p.request + CALL_OFF_FUNCTION);
    cycles = charge_for(a, function, p.buffer_size);
    if (cycles < 0)
        return 0;
    if (function == SHFL_FN_READ) {
        moved = read_at(p.handle->fd, &p, p.count, p.offset);
        if (moved < 0)
            return 0;   /* nothing happened: Python repeats it and reports the status */
        /* A bounce buffer would have been copied back whole, zero past what was read. */
        if (!(p.direction & DIRECTION_TO_HOST) && (uint64_t)moved < p.buffer_size)
            zero_from(&p, (uint64_t)moved);
        if ((uint64_t)moved != p.count)
            wr32(p.parms + 3 * p.parm_size + PARM_OFF_VALUE, (uint32_t)moved);
    } else {
        moved = write_at(p.handle->fd, &p, p.count, p.offset);
        if (moved < 0)
            return 0;   /* nothing was written: Python repeats it and reports the status */
        if (moved)
            wr64(p.parms + 2 * p.parm_size + PARM_OFF_VALUE, p.offset + (uint64_t)moved);
        if ((uint64_t)moved != p.count)
            wr32(p.parms + 3 * p.parm_size + PARM_OFF_VALUE, (uint32_t)moved);
    }
    /* Counted apart: the direct path counts its own calls (direct_calls), the general
     * path's (scattered page lists) are counted only as calls. */
    if (p.scattered)
        function == SHFL_FN_READ ? a->scattered_reads++ : a->scattered_writes++;
    else
        function == SHFL_FN_READ ? a->reads++ : a->writes++;
    wr32(p.request + REQ_OFF_RC, (uint32_t)STATUS_ASYNC_EXECUTE);
    wr32(p.request + HGCM_OFF_RESULT, 0);
    wr32(p.request + HGCM_OFF_FLAGS, rd32(p.request + HGCM_OFF_FLAGS) | REQ_DONE);
    ((struct cpu_state *)(uintptr_t)a->cpu)->charged += (uint64_t)cycles;
    /* The completion's HGCM event: nothing to do while it is pending already, else the
     * device's own event logic (the interrupt line, fHaveEvents) runs in Python. */
    if (!a->event_pending)
        ((void (*)(void))(uintptr_t)a->notify)();
    return 1;
}

/* Unicorn's OUT hook (UC_HOOK_INSN, UC_X86_INS_OUT); user data: the struct accel. */
void hgcmlab_accel_out(void *uc, uint32_t port, int size, uint32_t value, void *user)
{
    struct accel *a = user;
    if (a->armed && port == a->port && size == 4 && try_call(uc, a, value))
        return;
    ((void (*)(void *, uint32_t, int, uint32_t, void *))(uintptr_t)a->fallback)(uc, port, size, value, 0);
}

/* hgcm.c - the guest side of HGCM (hgcmlab/hgcm.h), following what Linux's vboxguest
 * (vbg_hgcm_call, hgcm_call_preprocess, vbg_core_isr) and the asm library (lib/hgcm.s)
 * do.  Not reentrant except hg_wait from the interrupt handler's point of view. */
#include <hgcmlab/hgcm.h>
#include <hgcmlab/io.h>
#include <hgcmlab/libc.h>
#include <hgcmlab/paging.h>

/* ReportGuestInfo's osType: 0 is VBOXOSTYPE_Unknown (the device does not interpret it). */
#define OSTYPE_UNKNOWN 0u

static uint8_t slots[HG_REQUEST_SLOTS][HG_REQUEST_MAX] __attribute__((aligned(PAGE_SIZE)));
static uint8_t slot_used[HG_REQUEST_SLOTS];
static enum hg_wait_mode wait_mode = HG_WAIT_POLL;
volatile uint32_t hg_irq_count, hg_hgcm_events;

void *hg_request_alloc(size_t size) {
    if (size > HG_REQUEST_MAX)
        return NULL;
    for (int i = 0; i < HG_REQUEST_SLOTS; i++) {
        if (!slot_used[i]) {
            slot_used[i] = 1;
            memset(slots[i], 0, HG_REQUEST_MAX);
            return slots[i];
        }
    }
    return NULL;
}

void hg_request_free(void *request) {
    for (int i = 0; i < HG_REQUEST_SLOTS; i++)
        if (request == slots[i])
            slot_used[i] = 0;
}

uint64_t hg_phys(const void *p) {
    uint64_t phys;
    return hg_virt_to_phys((uintptr_t)p, &phys, NULL) == 0 ? phys : 0;
}

static void header_init(void *request, uint32_t size, uint32_t type) {
    RequestHeader *header = request;
    header->size = size;
    header->version = VMMDEV_REQUEST_HEADER_VERSION;
    header->requestType = type;
    header->rc = VERR_INTERNAL_ERROR; /* poisoned: a device that writes nothing back is seen */
}

int hg_request_submit(void *request) {
    hg_outl(VMMDEV_PORT, (uint32_t)hg_phys(request));
    hg_barrier();
    return ((volatile RequestHeader *)request)->rc;
}

int hg_vmmdev_init(void) {
    ReqHostVersion *version = hg_request_alloc(sizeof *version);
    ReportGuestInfo *info = hg_request_alloc(sizeof *info);
    int rc = VERR_NO_MEMORY;
    if (version && info) {
        header_init(version, sizeof *version, VMMDevReq_GetHostVersion);
        rc = hg_request_submit(version);
        if (rc >= 0) {
            header_init(info, sizeof *info, VMMDevReq_ReportGuestInfo);
            info->interfaceVersion = VMMDEV_VERSION;
            info->osType = OSTYPE_UNKNOWN;
            rc = hg_request_submit(info);
        }
    }
    hg_request_free(version);
    hg_request_free(info);
    return rc;
}

void hg_set_wait_mode(enum hg_wait_mode mode) { wait_mode = mode; }

static int done(volatile HgcmRequestHeader *header) { return header->fu32Flags & VBOX_HGCM_REQ_DONE; }

int hg_wait(void *hgcm_request) {
    volatile HgcmRequestHeader *header = hgcm_request;
    if (wait_mode == HG_WAIT_IRQ) {
        /* Linux's wait: test with interrupts off, then sti;hlt as a pair, so a completion
         * after the test wakes the hlt instead of being lost. */
        for (;;) {
            hg_cli();
            if (done(header))
                break;
            hg_sti_hlt();
        }
        hg_sti();
    } else {
        while (!done(header))
            __asm__ volatile("pause");
    }
    return header->header.rc;
}

/* rc after waiting for an asynchronous completion; a failed rc, else the HGCM result. */
static int finish(void *hgcm_request, int rc) {
    if (rc == VINF_HGCM_ASYNC_EXECUTE)
        rc = hg_wait(hgcm_request);
    return rc < 0 ? rc : ((volatile HgcmRequestHeader *)hgcm_request)->result;
}

int hg_connect(const char *service, uint32_t *client_id) {
    HgcmConnect *req = hg_request_alloc(sizeof *req);
    if (!req)
        return VERR_NO_MEMORY;
    header_init(req, sizeof *req, VMMDevReq_HGCMConnect);
    req->loc.type = VMMDevHGCMLoc_LocalHost_Existing;
    strlcpy(req->loc.achName, service, sizeof req->loc.achName);
    int rc = finish(req, hg_request_submit(req));
    if (rc >= 0)
        *client_id = req->u32ClientID;
    hg_request_free(req);
    return rc;
}

int hg_disconnect(uint32_t client_id) {
    HgcmDisconnect *req = hg_request_alloc(sizeof *req);
    if (!req)
        return VERR_NO_MEMORY;
    header_init(req, sizeof *req, VMMDevReq_HGCMDisconnect);
    req->u32ClientID = client_id;
    int rc = finish(req, hg_request_submit(req));
    hg_request_free(req);
    return rc;
}

static hg_parm *parm(const hg_call *call, uint32_t index) {
    return (hg_parm *)((uint8_t *)call->req + sizeof(HgcmCall)) + index;
}

int hg_call_begin(hg_call *call, uint32_t client_id, uint32_t function, uint32_t parms) {
    if (parms > HG_MAX_PARMS)
        return VERR_INVALID_PARAMETER;
    call->req = hg_request_alloc(HG_REQUEST_MAX);
    if (!call->req)
        return VERR_NO_MEMORY;
    call->parms = parms;
    call->used = sizeof(HgcmCall) + parms * sizeof(hg_parm);
    call->req->u32ClientID = client_id;
    call->req->u32Function = function;
    call->req->cParms = parms;
    return VINF_SUCCESS;
}

void hg_call_u32(hg_call *call, uint32_t index, uint32_t value) {
    hg_parm *p = parm(call, index);
    p->type = VMMDevHGCMParmType_Bit32;
    p->u0 = value;
}

void hg_call_u64(hg_call *call, uint32_t index, uint64_t value) {
    hg_parm *p = parm(call, index);
    p->type = VMMDevHGCMParmType_Bit64;
    p->u0 = (uint32_t)value; /* the u64 value sits at +4 in both layouts: low, then high */
    p->u1 = (uint32_t)(value >> 32);
}

void hg_call_linaddr(hg_call *call, uint32_t index, uint32_t type, const void *buffer, uint32_t size) {
    hg_parm *p = parm(call, index);
    p->type = type;
    p->u0 = size;
    p->u1 = (uintptr_t)buffer;
}

int hg_call_pagelist(hg_call *call, uint32_t index, uint32_t direction, const void *buffer, uint32_t size) {
    uintptr_t start = (uintptr_t)buffer;
    uint32_t first_offset = start & (PAGE_SIZE - 1);
    uint32_t pages = size ? (first_offset + size + PAGE_SIZE - 1) / PAGE_SIZE : 0;
    uint32_t list_size = sizeof(HgcmPageListInfo) + pages * sizeof(uint64_t);
    if (pages > 0xFFFF || call->used + list_size > HG_REQUEST_MAX)
        return VERR_BUFFER_OVERFLOW;
    HgcmPageListInfo *info = (HgcmPageListInfo *)((uint8_t *)call->req + call->used);
    uint64_t *frames = (uint64_t *)(info + 1);
    for (uint32_t i = 0; i < pages; i++) {
        uint64_t phys;
        if (hg_virt_to_phys((start & ~(uintptr_t)(PAGE_SIZE - 1)) + (uintptr_t)i * PAGE_SIZE, &phys, NULL) != 0)
            return VERR_INVALID_POINTER;
        frames[i] = phys;
    }
    info->flags = direction;
    info->offFirstPage = (uint16_t)first_offset;
    info->cPages = (uint16_t)pages;
    hg_parm *p = parm(call, index);
    p->type = VMMDevHGCMParmType_PageList;
    p->u0 = size;
    p->u1 = call->used;
    call->used += list_size;
    return VINF_SUCCESS;
}

int hg_call_start(hg_call *call) {
    header_init(call->req, call->used, HG_REQ_HGCM_CALL);
    call->req->header.fu32Flags = 0;
    call->req->header.result = VERR_INTERNAL_ERROR;
    return hg_request_submit(call->req);
}

int hg_call_submit(hg_call *call) { return finish(call->req, hg_call_start(call)); }

int hg_call_cancel(hg_call *call) {
    HgcmCancel2 *req = hg_request_alloc(sizeof *req);
    if (!req)
        return VERR_NO_MEMORY;
    header_init(req, sizeof *req, VMMDevReq_HGCMCancel2);
    req->physReqToCancel = (uint32_t)hg_phys(call->req);
    int rc = hg_request_submit(req);
    if (rc >= 0)
        call->req->header.fu32Flags |= VBOX_HGCM_REQ_CANCELLED;
    hg_request_free(req);
    return rc;
}

uint32_t hg_call_get_u32(const hg_call *call, uint32_t index) { return parm(call, index)->u0; }

uint64_t hg_call_get_u64(const hg_call *call, uint32_t index) {
    const hg_parm *p = parm(call, index);
    return ((uint64_t)(uint32_t)p->u1 << 32) | p->u0;
}

uint32_t hg_call_get_size(const hg_call *call, uint32_t index) { return parm(call, index)->u0; }

void hg_call_end(hg_call *call) {
    hg_request_free(call->req);
    call->req = NULL;
}

/* hgcmlab/hgcm.h - what a guest driver does to talk HGCM: allocate a request, fill its
 * parameters (values, LinAddr buffers, page lists built by walking its own page tables),
 * submit it with one 32-bit out of its physical address to VMMDEV_PORT, wait for
 * VBOX_HGCM_REQ_DONE by polling or by interrupt, cancel.
 *
 * Status convention: functions return a VBox status (hgcmlab/abi.h): the request header's rc
 * when it failed, else the call's HGCM result; VINF_SUCCESS (0) when both succeeded.  The
 * library's own limits answer VERR_NO_MEMORY (no free request), VERR_BUFFER_OVERFLOW (the
 * page lists do not fit in the request) and VERR_INVALID_POINTER (a buffer page that does
 * not translate). */
#ifndef HGCMLAB_HGCM_H
#define HGCMLAB_HGCM_H

#include <stddef.h>
#include <stdint.h>
#include <hgcmlab/abi.h>

/* The parameter layout and call request of the CPU mode (HGCMCall64 or HGCMCall32). */
#if defined(__x86_64__)
typedef HgcmParam64 hg_parm;
#define HG_REQ_HGCM_CALL VMMDevReq_HGCMCall64
#else
typedef HgcmParam32 hg_parm;
#define HG_REQ_HGCM_CALL VMMDevReq_HGCMCall32
#endif

/* Requests live in a pool of page-aligned one-page slots, so each is physically contiguous
 * whatever the page tables say. */
#define HG_REQUEST_SLOTS 8
#define HG_REQUEST_MAX PAGE_SIZE
#define HG_MAX_PARMS 16

/* How hg_wait waits for DONE: spinning on the flag, or sleeping (sti; hlt) until the VMMDev
 * interrupt, which hg_irq_setup must have installed. */
enum hg_wait_mode { HG_WAIT_POLL = 0, HG_WAIT_IRQ = 1 };

/* One HGCM call being built: the request, its parameter count and the bytes of the
 * request used so far (header, parameters, then page lists). */
typedef struct hg_call {
    HgcmCall *req;
    uint32_t parms;
    uint32_t used;
} hg_call;

/* Request memory: a zeroed slot of `size` bytes (at most HG_REQUEST_MAX), or NULL. */
void *hg_request_alloc(size_t size);
void hg_request_free(void *request);
/* Physical address of a request or buffer byte (hg_virt_to_phys; 0 if it does not translate). */
uint64_t hg_phys(const void *p);

/* Submit any VMMDev request (header.size set) and return header.rc as the device left it. */
int hg_request_submit(void *request);

/* GetHostVersion, then ReportGuestInfo (HGCM is refused before it): the driver's init. */
int hg_vmmdev_init(void);

/* Install an IDT with the VMMDev interrupt handler (IRQ_VECTOR_BASE + VMMDEV_IRQ), which
 * acknowledges events with AcknowledgeEvents, and enable interrupts. */
void hg_irq_setup(void);
/* Interrupts taken and HGCM events acknowledged since hg_irq_setup. */
extern volatile uint32_t hg_irq_count, hg_hgcm_events;

/* The wait mode hg_call_submit/hg_connect/hg_disconnect use (HG_WAIT_POLL by default). */
void hg_set_wait_mode(enum hg_wait_mode mode);
/* Wait until the request's DONE flag is set; returns its header.rc. */
int hg_wait(void *hgcm_request);

int hg_connect(const char *service, uint32_t *client_id);
int hg_disconnect(uint32_t client_id);

/* Start a call of `function` with `parms` parameters (at most HG_MAX_PARMS). */
int hg_call_begin(hg_call *call, uint32_t client_id, uint32_t function, uint32_t parms);
void hg_call_u32(hg_call *call, uint32_t index, uint32_t value);
void hg_call_u64(hg_call *call, uint32_t index, uint64_t value);
/* A LinAddr parameter (type VMMDevHGCMParmType_LinAddr, _In or _Out): the device translates
 * the linear address itself. */
void hg_call_linaddr(hg_call *call, uint32_t index, uint32_t type, const void *buffer, uint32_t size);
/* A page-list parameter (type 10) for the virtually contiguous buffer [buffer, buffer+size):
 * each page's frame is found by walking the page tables, the list is appended to the request.
 * `direction` is VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, _FROM_HOST or _BOTH. */
int hg_call_pagelist(hg_call *call, uint32_t index, uint32_t direction, const void *buffer, uint32_t size);
/* Submit and wait (the current wait mode); returns rc, else the call's result. */
int hg_call_submit(hg_call *call);
/* Submit without waiting; hg_wait(call->req) or hg_call_cancel later. */
int hg_call_start(hg_call *call);
/* Ask the device to cancel the call (HGCMCancel2 with its physical address); returns rc. */
int hg_call_cancel(hg_call *call);
uint32_t hg_call_get_u32(const hg_call *call, uint32_t index);
uint64_t hg_call_get_u64(const hg_call *call, uint32_t index);
/* The size the host reported for a buffer parameter (LinAddr or page list). */
uint32_t hg_call_get_size(const hg_call *call, uint32_t index);
void hg_call_end(hg_call *call);

#endif

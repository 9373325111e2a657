/* irq.c - the VMMDev interrupt for C guests (hgcmlab/hgcm.h: hg_irq_setup): an IDT whose
 * only present gate is the VMMDev vector, and a handler that does what Linux's vbg_core_isr
 * does: acknowledge the pending events with an AcknowledgeEvents request (which lowers the
 * level-triggered line) and note HGCM completions.  hg_wait re-checks DONE after each wakeup. */
#include <hgcmlab/hgcm.h>
#include <hgcmlab/libc.h>

struct interrupt_frame;

/* One IDT gate (Intel SDM vol. 3, 6.11 and 6.14.1): 16 bytes in long mode, 8 in 32-bit. */
struct gate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t attributes;      /* present, DPL 0, interrupt gate (IF cleared on entry) */
    uint16_t offset_middle;
#if defined(__x86_64__)
    uint32_t offset_high;
    uint32_t reserved;
#endif
} __attribute__((packed));

#define GATE_INTERRUPT 0x8E

static struct gate idt[256] __attribute__((aligned(16)));
static ReqEvents *ack_request;

__attribute__((interrupt)) static void vmmdev_isr(struct interrupt_frame *frame) {
    (void)frame;
    hg_irq_count++;
    memset(ack_request, 0, sizeof *ack_request);
    ack_request->header.size = sizeof *ack_request;
    ack_request->header.version = VMMDEV_REQUEST_HEADER_VERSION;
    ack_request->header.requestType = VMMDevReq_AcknowledgeEvents;
    ack_request->header.rc = VERR_INTERNAL_ERROR;
    if (hg_request_submit(ack_request) >= 0 && (ack_request->events & VMMDEV_EVENT_HGCM))
        hg_hgcm_events++;
}

void hg_irq_setup(void) {
    ack_request = hg_request_alloc(sizeof *ack_request);
    uintptr_t handler = (uintptr_t)vmmdev_isr;
    uint16_t code_selector;
    __asm__ volatile("mov %%cs, %0" : "=r"(code_selector));
    struct gate *gate = &idt[IRQ_VECTOR_BASE + VMMDEV_IRQ];
    gate->offset_low = (uint16_t)handler;
    gate->selector = code_selector;
    gate->attributes = GATE_INTERRUPT;
    gate->offset_middle = (uint16_t)(handler >> 16);
#if defined(__x86_64__)
    gate->offset_high = (uint32_t)(handler >> 32);
#endif
    struct {
        uint16_t limit;
        uintptr_t base;
    } __attribute__((packed)) descriptor = {sizeof idt - 1, (uintptr_t)idt};
    __asm__ volatile("lidt %0" : : "m"(descriptor));
    hg_set_wait_mode(HG_WAIT_IRQ);
    __asm__ volatile("sti");
}

"""C guests built with the kit run on the machine: crt0's contract, the C library, HGCM and
Shared Folders calls, paging from C with scattered page lists, interrupts, cancel."""

from pathlib import Path

import pytest

from hgcmlab.devices.vmmdev.config import HgcmTiming, VMMDevConfig
from hgcmlab.machine.machine import RunEnd
from hgcmlab.services.sharedfolders.abi import ShflFn

MODES = [32, 64]

HELLO = r"""
#include <hgcmlab/libc.h>
int main(int argc, char **argv) {
    hg_printf("argc=%d [%s] [%s] %s\n", argc, argv[0], argv[1], argv[2] ? "?" : "null");
    hg_printf("%d|%5d|%-5d|%05d|%u|%x|%X|%08x|%lld|%llx|%c|%s|%%|%q\n", -42, 7, 7, -42, 4000000000u,
              0xbeefu, 0xbeefu, 0x1234u, -9000000000ll, 0x123456789abcull, 'z', "str");
    char small[8];
    int full = hg_snprintf(small, sizeof small, "%s-%d", "abcdef", 123);
    hg_printf("snprintf %d [%s]\n", full, small);
    return 77;
}
"""


@pytest.mark.parametrize("mode", MODES)
def test_crt0_passes_arguments_and_exits_with_mains_value(mode, hgcm_machine, c_guest):
    # The public contract: argument block at 0x1000 -> argc/argv, log port, exit port.
    machine = hgcm_machine(mode)
    machine.set_arguments(["first", "second arg"])
    machine.load(c_guest(HELLO, mode))
    result = machine.run()
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 77)
    assert result.log_lines == [
        "argc=2 [first] [second arg] null",
        "-42|    7|7    |-0042|4000000000|beef|BEEF|00001234|-9000000000|123456789abc|z|str|%|%q",
        "snprintf 10 [abcdef-]",
    ]


STRINGS = r"""
#include <hgcmlab/libc.h>
int main(void) {
    char buf[16] = "0123456789";
    memmove(buf + 2, buf, 5);                 /* overlapping, forwards */
    if (memcmp(buf, "0101234789", 10)) return 1;
    memmove(buf, buf + 2, 5);                 /* overlapping, backwards */
    if (memcmp(buf, "01234", 5)) return 2;
    if (strcmp("abc", "abd") >= 0 || strcmp("b", "a") <= 0 || strcmp("x", "x")) return 3;
    if (strncmp("abcX", "abcY", 3) || strlen("hello") != 5 || strnlen("hello", 3) != 3) return 4;
    if (strchr("a/b/c", '/') != (char *)"a/b/c" + 1 && *strchr("a/b/c", '/') != '/') return 5;
    const char *path = "a/b/c";
    if (strrchr(path, '/') != path + 3 || strchr(path, 'z')) return 6;
    char dst[4];
    if (strlcpy(dst, "truncate", sizeof dst) != 8 || strcmp(dst, "tru")) return 7;
    memset(buf, 'x', 3);
    if (memcmp(buf, "xxx34", 5)) return 8;
    return 0;
}
"""


@pytest.mark.parametrize("mode", MODES)
def test_string_functions(mode, hgcm_machine, c_guest):
    machine = hgcm_machine(mode)
    machine.load(c_guest(STRINGS, mode))
    assert machine.run().exit_code == 0


SF_ROUNDTRIP = r"""
#include <hgcmlab/hgcm.h>
#include <hgcmlab/libc.h>
#include <hgcmlab/sf.h>
static char data[9000];
int main(int argc, char **argv) {
    uint32_t client, root, n, count;
    uint64_t file, dir;
    if (hg_vmmdev_init() < 0) return 1;
    if (argc > 0 && !strcmp(argv[0], "irq")) hg_irq_setup();
    if (sf_connect(&client) < 0 || sf_map(client, "d", &root) < 0) return 2;
    if (sf_open(client, root, "c.txt", SHFL_CF_ACT_CREATE_IF_NEW | SHFL_CF_ACT_FAIL_IF_EXISTS | SHFL_CF_ACCESS_READWRITE, &file) < 0) return 3;
    for (unsigned i = 0; i < sizeof data; i++) data[i] = 'a' + i % 23;
    n = sizeof data;
    if (sf_write(client, root, file, 0, data, &n) < 0 || n != sizeof data) return 4;
    memset(data, 0, sizeof data);
    n = 100;
    if (sf_read(client, root, file, 4090, data + 4000, &n) < 0 || n != 100 || data[4000] != 'a' + 4090 % 23) return 5;
    if (sf_close(client, root, file) < 0) return 6;
    if (sf_open(client, root, "missing.txt", SHFL_CF_ACT_FAIL_IF_NEW | SHFL_CF_ACCESS_READ, &file) != VERR_FILE_NOT_FOUND) return 7;
    if (sf_open(client, root, "/", SHFL_CF_DIRECTORY | SHFL_CF_ACT_OPEN_IF_EXISTS | SHFL_CF_ACCESS_READ, &dir) < 0) return 8;
    n = sizeof data;
    if (sf_list(client, root, dir, 0, data, &n, &count) < 0 || count < 2) return 9;
    sf_close(client, root, dir);
    if (sf_remove(client, root, "gone.txt", SHFL_REMOVE_FILE) < 0) return 10;
    if (sf_unmap(client, root) < 0 || sf_disconnect(client) < 0) return 11;
    hg_printf("irqs %u\n", hg_irq_count);
    return 0;
}
"""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("wait", ["poll", "irq"])
def test_shared_folder_calls_from_c(mode, wait, hgcm_machine, hgcm_share, c_guest):
    (hgcm_share / "gone.txt").write_text("x")
    (hgcm_share / "other.txt").write_text("y")
    # Asynchronous completion: the wait (polling or sleeping until the interrupt) is exercised.
    machine = hgcm_machine(mode, vmmdev_config=VMMDevConfig(timing=HgcmTiming(force_async=True)))
    machine.add_share("d", hgcm_share)
    machine.set_arguments([wait])
    machine.load(c_guest(SF_ROUNDTRIP, mode))
    result = machine.run()
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.log_lines
    assert (hgcm_share / "c.txt").read_bytes() == bytes(ord("a") + i % 23 for i in range(9000))
    assert not (hgcm_share / "gone.txt").exists()
    interrupts = int(result.log_lines[-1].split()[1])
    assert (interrupts > 0) == (wait == "irq")


PAGED = r"""
#include <hgcmlab/hgcm.h>
#include <hgcmlab/io.h>
#include <hgcmlab/libc.h>
#include <hgcmlab/paging.h>
#include <hgcmlab/sf.h>
#define PAGES 4
#define WINDOW 0x40000000u
static uint8_t tables[24][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static uint8_t frames[PAGES][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
int main(int argc, char **argv) {
    hg_pt pt;
    if (hg_pt_init(&pt, tables, 24, argc > 0 ? HG_PT_PAE : HG_PT_NATIVE) < 0) return 1;
    if (hg_pt_map_identity(&pt, 0, hg_ram_top, PTE_RW) < 0) return 2;
    /* Window page i -> frame order[i]: physically scattered and out of order. */
    static const int order[PAGES] = {2, 0, 3, 1};
    for (int i = 0; i < PAGES; i++)
        if (hg_pt_map(&pt, WINDOW + i * PAGE_SIZE, (uintptr_t)frames[order[i]], PTE_RW) < 0) return 3;
    if (hg_pt_activate(&pt) < 0) return 4;
    uint64_t phys;
    if (hg_virt_to_phys(WINDOW + 2 * PAGE_SIZE + 7, &phys, NULL) || phys != (uintptr_t)frames[3] + 7) return 5;
    if (hg_virt_to_phys(0x50000000u, &phys, NULL) != -1) return 6;
    int writable;
    if (hg_pt_map(&pt, 0x50000000u, (uintptr_t)frames[0], PTE_P) < 0) return 12;
    if (hg_virt_to_phys(0x50000000u, &phys, &writable) || writable || phys != (uintptr_t)frames[0]) return 13;
    if (hg_pt_unmap(&pt, 0x50000000u) < 0) return 14;
    hg_invlpg((void *)0x50000000u);
    if (hg_virt_to_phys(0x50000000u, &phys, NULL) != -1) return 15;
    char *window = (char *)(uintptr_t)WINDOW;
    for (int i = 0; i < PAGES * PAGE_SIZE; i++) window[i] = (char)('A' + i / PAGE_SIZE);
    uint32_t client, root, n = PAGES * PAGE_SIZE - 300;
    uint64_t file;
    if (hg_vmmdev_init() < 0 || sf_connect(&client) < 0 || sf_map(client, "d", &root) < 0) return 7;
    if (sf_open(client, root, "paged.bin", SHFL_CF_ACT_CREATE_IF_NEW | SHFL_CF_ACCESS_READWRITE, &file) < 0) return 8;
    if (sf_write(client, root, file, 0, window + 100, &n) < 0) return 9;
    memset(window, 0, PAGES * PAGE_SIZE);
    n = PAGES * PAGE_SIZE - 300;
    if (sf_read(client, root, file, 0, window + 200, &n) < 0 || window[200] != 'A' || window[200 + 3 * PAGE_SIZE] != 'D') return 10;
    return sf_close(client, root, file) < 0 ? 11 : 0;
}
"""


@pytest.mark.parametrize("mode,format", [(64, "native"), (32, "native"), (32, "pae")])
def test_paging_on_from_c_with_scattered_page_lists(mode, format, hgcm_machine, hgcm_share, c_guest):
    machine = hgcm_machine(mode, ram_size=0x400000)
    machine.add_share("d", hgcm_share)
    machine.set_arguments(["pae"] if format == "pae" else [])
    machine.load(c_guest(PAGED, mode))
    result = machine.run()
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0)
    # Window offset 100 onward: page i of the window holds letter i, wherever its frame is.
    expected = bytes(ord("A") + (100 + i) // 4096 for i in range(4 * 4096 - 300))
    assert (hgcm_share / "paged.bin").read_bytes() == expected
    pages = [event for event in hgcm_machine.events(machine) if event.kind == "hgcm_call"
             and event.fields.get("function_name") == "WRITE"]
    assert pages, "the WRITE call is traced"


CANCEL = r"""
#include <hgcmlab/hgcm.h>
#include <hgcmlab/libc.h>
#include <hgcmlab/sf.h>
int main(void) {
    uint32_t client, root;
    hg_call call;
    if (hg_vmmdev_init() < 0 || sf_connect(&client) < 0 || sf_map(client, "d", &root) < 0) return 1;
    if (hg_call_begin(&call, client, SHFL_FN_QUERY_MAP_NAME, 2) < 0) return 2;
    static char name[64];
    hg_call_u32(&call, 0, root);
    ((ShflStringHeader *)name)->u16Size = sizeof name - 4;
    hg_call_pagelist(&call, 1, VBOX_HGCM_F_PARM_DIRECTION_BOTH, name, sizeof name);
    if (hg_call_start(&call) != VINF_HGCM_ASYNC_EXECUTE) return 3;
    int rc = hg_call_cancel(&call);
    hg_printf("cancel %d flags %u\n", rc, call.req->header.fu32Flags);
    return 0;
}
"""


@pytest.mark.parametrize("mode", MODES)
def test_cancel_of_a_call_in_flight(mode, hgcm_machine, hgcm_share, c_guest):
    # VMMDevHGCM.cpp: vmmdevR3HgcmCancel2 finds the pending command by its physical address.
    # The call takes far longer than the guest needs to cancel it.
    slow = HgcmTiming(force_async=True, function_cycles={ShflFn.QUERY_MAP_NAME: 10**9})
    machine = hgcm_machine(mode, vmmdev_config=VMMDevConfig(timing=slow))
    machine.add_share("d", hgcm_share)
    machine.load(c_guest(CANCEL, mode))
    result = machine.run()
    assert result.exit_code == 0, result.log_lines
    assert result.log_lines[-1] == "cancel 0 flags 2"  # VINF_SUCCESS; CANCELLED set, never DONE
    assert any(event.kind == "hgcm_cancel" for event in hgcm_machine.events(machine))


def test_a_fault_in_c_names_the_c_source_line(hgcm_machine, c_guest):
    machine = hgcm_machine(64)
    machine.load(c_guest("int main(void) {\n    *(volatile int *)0xF0000000u = 1;\n    return 0;\n}\n"))
    result = machine.run()
    assert result.end is RunEnd.FAULT
    location = machine.image.source_at(machine.cpu.pc)
    assert (location.line, location.text.strip()) == (2, "*(volatile int *)0xF0000000u = 1;")


def test_defines_reach_the_program(hgcm_machine, c_guest):
    machine = hgcm_machine(32)
    machine.load(c_guest("int main(void) { return ANSWER; }\n", 32, defines={"ANSWER": 42}))
    assert machine.run().exit_code == 42


def test_program_files_include_their_own_headers(hgcm_machine, c_guest, tmp_path: Path):
    (tmp_path / "local.h").write_text("#define VALUE 5\n")
    (tmp_path / "prog.c").write_text('#include "local.h"\nint main(void) { return VALUE; }\n')
    machine = hgcm_machine(64)
    machine.load(c_guest(tmp_path / "prog.c"))
    assert machine.run().exit_code == 5

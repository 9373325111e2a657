"""Shared-folder READ and WRITE from a guest that turned paging on itself (guest_asm/lib/
paging.s), with virtually contiguous, physically scattered buffers, through LinAddr
parameters (translated by the device) and page lists (built from the guest's own page
tables), 32- and 64-bit; LinAddr buffers over not-present and read-only pages behave as
VirtualBox's VMMDevHGCM.cpp makes them behave."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.guest_asm.assembler import assemble
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.machine import Machine, RunEnd
from hgcmlab.machine.paging import MAX_PHYS_ADDR_BITS
from hgcmlab.machine.tracing import ListSink
from hgcmlab.services.sharedfolders.abi import ShflCf

RAM = 16 * 1024 * 1024
POOL = 0x200000
RW_CREATE = int(ShflCf.ACCESS_READWRITE | ShflCf.ACT_OPEN_IF_EXISTS | ShflCf.ACT_CREATE_IF_NEW)
#: The write buffer's pages (virtual 0x40000000 + i * 4 KiB) lie in these frames, out of order.
WRITE_FRAMES = (0x303000, 0x301000, 0x306000, 0x300000)
READ_FRAMES = (0x30A000, 0x308000, 0x30B000, 0x309000)
WRITE_VIRTUAL = 0x40000000
READ_VIRTUAL = 0x40100000
OFFSET = 0x123
LENGTH = 3 * 4096 + 0x321  # spans all four pages from OFFSET

PROGRAM = """
.include "tool.s"
.include "mem.s"
.include "paging.s"
_start:
    ccall1 pg_init, {pool}
    ccall1 pg_identity, {ram}
{maps}
    ccall0 pg_enable
.ifndef HGCM_USE_LINADDR
.if MODE == 64
    lea rax, [rip + pg_translate_page_list]
    mov qword ptr [rip + hgcm_pagelist_fixup], rax
.else
    mov dword ptr [hgcm_pagelist_fixup], pg_translate_page_list
.endif
.endif
    ccall2 tool_start, 0, usage
    ccall2 tool_open_spec, obj, spec
    ccall3 tool_create, obj, {flags}, 0
    test eax, eax
    js failed
{body}
    ccall0 tool_finish
failed:
    mov al, 3
    out 0xf4, al
wrong_count:
    mov al, 4
    out 0xf4, al
wrong_data:
    mov al, 5
    out 0xf4, al
usage: .asciz "t"
spec: .asciz "b:/data.bin"
.align 8
obj: .space 1056
"""

#: Fill `length` bytes at `start` with byte i = 7 * i + (i >> 8) (see ``pattern``).
FILL = """
    mov edi, {start}
    xor ecx, ecx
fill_{label}:
    mov eax, ecx
    imul eax, eax, 7
    mov edx, ecx
    shr edx, 8
    add eax, edx
.if MODE == 64
    mov byte ptr [rdi + rcx], al
.else
    mov byte ptr [edi + ecx], al
.endif
    inc ecx
    cmp ecx, {length}
    jne fill_{label}
"""

WRITE_READ_BACK = """
    ccall3 tool_write, obj, {write}, {length}
    test eax, eax
    js failed
    cmp edx, {length}
    jne wrong_count
    lea edi, [obj]
.if MODE == 64
    mov qword ptr [rdi + TF_OFFSET], 0
.else
    mov dword ptr [edi + TF_OFFSET], 0
    mov dword ptr [edi + TF_OFFSET + 4], 0
.endif
    ccall3 tool_read, obj, {read}, {length}
    test eax, eax
    js failed
    cmp edx, {length}
    jne wrong_count
    ccall3 mem_equal, {write}, {read}, {length}
    cmp eax, 1
    jne wrong_data
"""


def pattern(length: int) -> bytes:
    return bytes((7 * i + (i >> 8)) & 0xFF for i in range(length))


def maps(virtual: int, frames: tuple[int, ...], flags: str = "PTE_P | PTE_RW") -> str:
    return "\n".join(f"    ccall3 pg_map, {virtual + index * 4096:#x}, {frame:#x}, {flags}"
                     for index, frame in enumerate(frames))


def program(body: str, mapping: str, *, mode: int, linaddr: bool) -> object:
    source = PROGRAM.format(pool=POOL, ram=RAM, maps=mapping, flags=RW_CREATE, body=body)
    return assemble(source, mode=mode, defines={"HGCM_USE_LINADDR": 1} if linaddr else None)


def run(folder: Path, assembled: object, mode: int) -> tuple[Machine, object, list[object]]:
    machine = vbox_board(mode, RAM)
    sink = ListSink()
    machine.tracer.add_sink(sink)
    machine.add_share("b", folder)
    machine.load(assembled)  # type: ignore[arg-type]
    result = machine.run(20_000_000)
    return machine, result, sink.events


def frames_bytes(machine: Machine, frames: tuple[int, ...], offset: int, length: int) -> bytes:
    """The bytes of a buffer at ``offset`` in a virtual range whose pages are ``frames``."""
    out = b""
    position = offset
    while position < offset + length:
        page, within = divmod(position, 4096)
        take = min(4096 - within, offset + length - position)
        out += machine.memory.read(frames[page] + within, take)
        position += take
    return out


def run_scattered(folder: Path, body: str, *, mode: int, linaddr: bool) -> tuple[Machine, list[object]]:
    """Run ``body`` with the write and read buffers mapped onto their scattered frames; the
    run must end with exit code 0."""
    mapping = maps(WRITE_VIRTUAL, WRITE_FRAMES) + "\n" + maps(READ_VIRTUAL, READ_FRAMES)
    machine, result, events = run(folder, program(body, mapping, mode=mode, linaddr=linaddr), mode)
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.fault and result.fault.format()
    return machine, events


@pytest.mark.parametrize("mode", [64, 32])
@pytest.mark.parametrize("linaddr", [True, False], ids=["linaddr", "pagelist"])
def test_scattered_buffers_write_and_read_back_through_the_guests_page_tables(tmp_path: Path, mode: int,
                                                                              linaddr: bool) -> None:
    body = FILL.format(start=WRITE_VIRTUAL + OFFSET, length=LENGTH, label="w") + WRITE_READ_BACK.format(
        write=WRITE_VIRTUAL + OFFSET, read=READ_VIRTUAL + 0x456, length=LENGTH)
    machine, events = run_scattered(tmp_path, body, mode=mode, linaddr=linaddr)
    expected = pattern(LENGTH)
    assert (tmp_path / "data.bin").read_bytes() == expected
    # The bytes really lie in the scattered frames (so the device did not read linear = physical).
    assert frames_bytes(machine, WRITE_FRAMES, OFFSET, LENGTH) == expected
    assert frames_bytes(machine, READ_FRAMES, 0x456, LENGTH) == expected
    if linaddr:
        runs = [event.fields["runs"] for event in events if event.kind == "linaddr_translation"
                and event.fields["runs"][0][0] == WRITE_VIRTUAL + OFFSET]
        assert runs == [[[WRITE_VIRTUAL + OFFSET, WRITE_FRAMES[0] + OFFSET, 4096 - OFFSET]]
                        + [[WRITE_VIRTUAL + page * 4096, WRITE_FRAMES[page], 4096] for page in (1, 2)]
                        + [[WRITE_VIRTUAL + 3 * 4096, WRITE_FRAMES[3], OFFSET + LENGTH - 3 * 4096]]]
    machine.close()


def test_paged_runs_are_deterministic(tmp_path: Path) -> None:
    """Instruction and cycle counts and the whole trace are the same on a second run."""
    body = FILL.format(start=WRITE_VIRTUAL + OFFSET, length=LENGTH, label="w") + WRITE_READ_BACK.format(
        write=WRITE_VIRTUAL + OFFSET, read=READ_VIRTUAL, length=LENGTH)
    assembled = program(body, maps(WRITE_VIRTUAL, WRITE_FRAMES) + "\n" + maps(READ_VIRTUAL, READ_FRAMES),
                        mode=64, linaddr=True)
    outcomes = []
    for attempt in ("one", "two"):
        folder = tmp_path / attempt
        folder.mkdir()
        machine, result, events = run(folder, assembled, 64)
        outcomes.append((result.end, result.instructions, result.cycles,
                         [event.host_independent().to_json() for event in events]))
        machine.close()
    assert outcomes[0] == outcomes[1]


def write_and_read_back_remapped(folder: Path, remaps: str, *, mode: int, linaddr: bool) -> Machine:
    """Fill the four write pages with the pattern and the four read pages with
    ``pattern(4 pages)``, run the guest code ``remaps``, write LENGTH bytes from
    WRITE_VIRTUAL + OFFSET to the file and read them back to READ_VIRTUAL + OFFSET (no
    comparison in the guest); the run must end with exit code 0."""
    body = (FILL.format(start=WRITE_VIRTUAL + OFFSET, length=LENGTH, label="w")
            + FILL.format(start=READ_VIRTUAL, length=4 * 4096, label="r") + remaps
            + WRITE_READ_BACK.split("    ccall3 mem_equal")[0].format(
                write=WRITE_VIRTUAL + OFFSET, read=READ_VIRTUAL + OFFSET, length=LENGTH))
    mapping = maps(WRITE_VIRTUAL, WRITE_FRAMES) + "\n" + maps(READ_VIRTUAL, READ_FRAMES)
    machine, result, _events = run(folder, program(body, mapping, mode=mode, linaddr=linaddr), mode)
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.fault and result.fault.format()
    return machine


@pytest.mark.parametrize("mode", [64, 32])
def test_linaddr_over_a_not_present_page_skips_it(tmp_path: Path, mode: int) -> None:
    """VMMDevHGCM.cpp vmmdevR3HgcmCallFetchGuestParms: a page PGMPhysGCPtr2GCPhys cannot
    translate gets NIL_RTGCPHYS; vmmdevR3HgcmGuestBufferRead skips it (the zero-filled host
    buffer keeps zeros there) and vmmdevR3HgcmGuestBufferWrite writes nothing to it.  The
    guest fills four pages, unmaps the third, writes them to the file (LinAddr_In) and reads
    the file back (LinAddr_Out) into four pages whose second is unmapped."""
    remaps = (f"    ccall1 pg_unmap, {WRITE_VIRTUAL + 2 * 4096:#x}\n"
              f"    ccall1 pg_unmap, {READ_VIRTUAL + 4096:#x}\n")
    machine = write_and_read_back_remapped(tmp_path, remaps, mode=mode, linaddr=True)
    written = bytearray(pattern(LENGTH))
    hole = 2 * 4096 - OFFSET
    written[hole:hole + 4096] = bytes(4096)
    assert (tmp_path / "data.bin").read_bytes() == written
    before = pattern(4 * 4096)
    # Pages 0, 2, 3 of the read buffer got the file's bytes; page 1 (unmapped) kept its own.
    got = frames_bytes(machine, READ_FRAMES, 0, 4 * 4096)
    assert got[4096:8192] == before[4096:8192]
    assert got[OFFSET:4096] == bytes(written[:4096 - OFFSET])
    assert got[8192:OFFSET + LENGTH] == bytes(written[8192 - OFFSET:])
    machine.close()


@pytest.mark.parametrize("mode", [64, 32])
def test_one_page_linaddr_over_a_not_present_page_reads_unassigned_memory(tmp_path: Path, mode: int) -> None:
    """A one-page buffer counts as contiguous (vmmdevR3HgcmGuestBufferIsContiguous), so
    vmmdevR3HgcmGuestBufferRead reads it with one PDMDevHlpPhysRead from
    NIL_RTGCPHYS | offset: unassigned memory, which PGMPhysRead fills with 0xFF."""
    body = f"""
    ccall1 pg_unmap, {WRITE_VIRTUAL:#x}
    ccall3 tool_write, obj, {WRITE_VIRTUAL + 0x10:#x}, 32
    test eax, eax
    js failed
    cmp edx, 32
    jne wrong_count
"""
    machine, result, _events = run(tmp_path, program(body, maps(WRITE_VIRTUAL, WRITE_FRAMES), mode=mode,
                                                     linaddr=True), mode)
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.fault and result.fault.format()
    assert (tmp_path / "data.bin").read_bytes() == b"\xff" * 32
    machine.close()


@pytest.mark.parametrize("mode", [64, 32])
def test_linaddr_out_over_a_read_only_page_is_written(tmp_path: Path, mode: int) -> None:
    """PGMPhysGCPtr2GCPhys (PGMAllPhys.cpp) only needs the page to be present: the R/W bit
    plays no part, and vmmdevR3HgcmGuestBufferWrite writes the frame with
    PDMDevHlpPhysWrite.  So a READ into a page the guest mapped read-only fills it."""
    (tmp_path / "data.bin").write_bytes(pattern(LENGTH))
    body = f"""
    ccall3 tool_read, obj, {READ_VIRTUAL + OFFSET:#x}, {LENGTH}
    test eax, eax
    js failed
    cmp edx, {LENGTH}
    jne wrong_count
"""
    mapping = maps(READ_VIRTUAL, READ_FRAMES[:1]) + "\n" + maps(READ_VIRTUAL + 4096, READ_FRAMES[1:2], "PTE_P") \
        + "\n" + maps(READ_VIRTUAL + 2 * 4096, READ_FRAMES[2:])
    machine, result, _events = run(tmp_path, program(body, mapping, mode=mode, linaddr=True), mode)
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.fault and result.fault.format()
    assert machine.cpu.translate(READ_VIRTUAL + 4096).writable is False
    assert frames_bytes(machine, READ_FRAMES, OFFSET, LENGTH) == pattern(LENGTH)
    machine.close()


#: The data the device should read lies at this physical address (identity-mapped too).
RESERVED_FRAME = 0x300000
#: How each case maps RESERVED_VIRTUAL to RESERVED_FRAME with an entry PGM refuses.
RESERVED_MAPPINGS = {
    # 4-level PTE with a frame bit beyond MAXPHYADDR (fGstAmd64MbzPteMask).
    "pte-frame-beyond-maxphyaddr": (64, 0x40000000, f"""
    mov rsi, {RESERVED_FRAME | 1 << MAX_PHYS_ADDR_BITS:#x}
    ccall3 pg_map, 0x40000000, rsi, PTE_P | PTE_RW
"""),
    # 4-level PDPTE with PS: VirtualBox 7.0.14's guest walk has no 1 GiB pages, PS is among
    # the PDPTE's must-be-zero bits (X86_PDPE_LM_MBZ_MASK_NO_NX); the CPU accepts it.
    "1-gib-page": (64, 0x80000000 + RESERVED_FRAME, f"""
    mov rax, qword ptr [rip + pg_root]
    mov rax, qword ptr [rax]
    shr rax, 12
    shl rax, 12
    mov qword ptr [rax + 16], PTE_P | PTE_RW | PTE_PS
    mov eax, {0x80000000 + RESERVED_FRAME:#x}
    cmp byte ptr [rax + 1], 7
    jne wrong_data
"""),
    # 32-bit paging, 4 MiB PDE with bit 21 set (fGst32BitMbzBigPdeMask, X86_PDE4M_MBZ_MASK).
    "4-mib-pde-bit-21": (32, 0x40000000 + RESERVED_FRAME, """
    mov eax, cr4
    or eax, CR4_PSE
    mov cr4, eax
    mov eax, dword ptr [pg_root]
    mov dword ptr [eax + (0x40000000 >> 22) * 4], PTE_P | PTE_RW | PTE_PS | (1 << 21)
"""),
}


@pytest.mark.parametrize("case", sorted(RESERVED_MAPPINGS))
def test_linaddr_through_an_entry_with_a_reserved_bit_does_not_translate(tmp_path: Path, case: str) -> None:
    """PGMAllGst.h PGM_GST_NAME(Walk): an entry with a must-be-zero bit set ends the walk
    (WalkReturnRsvdError, VERR_PAGE_TABLE_NOT_PRESENT), so PGMPhysGCPtr2GCPhys fails and
    vmmdevR3HgcmCallFetchGuestParms records NIL_RTGCPHYS; the one-page buffer is then read
    from NIL | offset, unassigned memory: 0xFF bytes (PGMAllPhys.cpp PGMPhysRead).  The
    guest filled the frame with its pattern first, so the host would see it had the walk
    translated."""
    mode, virtual, mapping = RESERVED_MAPPINGS[case]
    body = FILL.format(start=RESERVED_FRAME, length=64, label="f") + mapping + f"""
    ccall3 tool_write, obj, {virtual:#x}, 32
    test eax, eax
    js failed
    cmp edx, 32
    jne wrong_count
"""
    source = PROGRAM.format(pool=POOL, ram=RAM, maps="", flags=RW_CREATE, body=body)
    assembled = assemble(source, mode=mode, defines={"HGCM_USE_LINADDR": 1})
    machine, result, events = run(tmp_path, assembled, mode)
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.fault and result.fault.format()
    assert machine.memory.read(RESERVED_FRAME, 32) == pattern(32)
    assert (tmp_path / "data.bin").read_bytes() == b"\xff" * 32
    runs = [event.fields["runs"] for event in events if event.kind == "linaddr_translation"
            and event.fields["runs"][0][0] == virtual]
    assert runs == [[[virtual, None, 32]]]
    machine.close()


def set_page_list_type(name: str) -> str:
    """Guest code making hgcm_parm_pagelist send VMMDevHGCMParmType_<name> parameters."""
    return f"""
.if MODE == 64
    mov dword ptr [rip + hgcm_pagelist_type], VMMDevHGCMParmType_{name}
.else
    mov dword ptr [hgcm_pagelist_type], VMMDevHGCMParmType_{name}
.endif
"""


def page_list_types(events: list[object], length: int) -> list[str]:
    """The guest type of every pointer parameter of ``length`` bytes the device received."""
    return [param["guest"] for event in events if event.kind == "hgcm_call"  # type: ignore[attr-defined]
            for param in event.fields.get("params", [])  # type: ignore[attr-defined]
            if isinstance(param, dict) and param.get("size") == length]


@pytest.mark.parametrize("mode", [64, 32])
@pytest.mark.parametrize("type_name, length", [("NoBouncePageList", LENGTH), ("ContiguousPageList", 0x321)],
                         ids=["type13", "type12"])
def test_page_list_types_carry_the_guests_scattered_frames(tmp_path: Path, mode: int, type_name: str,
                                                           length: int) -> None:
    """Types 13 (several out-of-order frames) and 12 (one frame, the buffer within its
    page) built from the guest's own page tables: the host gets the bytes of the frames
    and the READ lands in the frames (VMMDevHGCM.cpp vmmdevR3HgcmCallFetchGuestParms takes
    the frames as given; the guest linear addresses are not physical)."""
    body = (FILL.format(start=WRITE_VIRTUAL + OFFSET, length=length, label="w") + set_page_list_type(type_name)
            + WRITE_READ_BACK.format(write=WRITE_VIRTUAL + OFFSET, read=READ_VIRTUAL + 0x456, length=length))
    mapping = maps(WRITE_VIRTUAL, WRITE_FRAMES) + "\n" + maps(READ_VIRTUAL, READ_FRAMES)
    machine, result, events = run(tmp_path, program(body, mapping, mode=mode, linaddr=False), mode)
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.fault and result.fault.format()
    assert (tmp_path / "data.bin").read_bytes() == pattern(length)
    assert frames_bytes(machine, READ_FRAMES, 0x456, length) == pattern(length)
    assert page_list_types(events, length) == [type_name] * 2
    machine.close()


@pytest.mark.parametrize("mode", [64, 32])
def test_page_list_frames_beyond_ram_and_nil_frames(tmp_path: Path, mode: int) -> None:
    """A PageList whose frames are not consecutive is copied page by page
    (VMMDevHGCM.cpp vmmdevR3HgcmGuestBufferRead/-Write): a NIL_RTGCPHYS entry (what
    pg_translate_page_list gives an unmapped page) is skipped, so the host sees zeros and
    nothing is written to it; a frame beyond guest RAM is unassigned memory, which
    PGMPhysRead (PGMAllPhys.cpp) fills with 0xFF and PGMPhysWrite skips.  Written: page 1
    of the buffer unmapped, page 2 mapped beyond RAM; read back into a buffer whose page 1
    lies beyond RAM and page 3 is unmapped."""
    beyond = RAM + 0x5000
    remaps = (f"    ccall1 pg_unmap, {WRITE_VIRTUAL + 4096:#x}\n"
              f"    ccall3 pg_map, {WRITE_VIRTUAL + 2 * 4096:#x}, {beyond:#x}, PTE_P | PTE_RW\n"
              f"    ccall3 pg_map, {READ_VIRTUAL + 4096:#x}, {beyond + 4096:#x}, PTE_P | PTE_RW\n"
              f"    ccall1 pg_unmap, {READ_VIRTUAL + 3 * 4096:#x}\n")
    machine = write_and_read_back_remapped(tmp_path, remaps, mode=mode, linaddr=False)
    written = bytearray(pattern(LENGTH))
    page1, page2 = 4096 - OFFSET, 2 * 4096 - OFFSET
    written[page1:page2] = bytes(4096)
    written[page2:page2 + 4096] = b"\xff" * 4096
    assert (tmp_path / "data.bin").read_bytes() == written
    before = pattern(4 * 4096)
    got = frames_bytes(machine, READ_FRAMES, 0, 4 * 4096)
    assert got[:OFFSET] == before[:OFFSET]
    assert got[OFFSET:4096] == written[:page1]
    assert got[4096:8192] == before[4096:8192]  # its page lies beyond RAM now
    assert got[8192:12288] == written[page2:page2 + 4096]
    assert got[12288:] == before[12288:]  # skipped
    machine.close()


#: An Embedded buffer must fit the library's one-page static request: this one starts
#: 0xA00 into WRITE_VIRTUAL's first page and ends in its second (frames out of order).
EMBEDDED_OFFSET = 0xA00
EMBEDDED_LENGTH = 0xC00

#: One SHFL WRITE or READ whose buffer is an Embedded parameter (hgcm.s hgcm_parm_embedded).
EMBEDDED_CALL = """
    ccall3 hgcm_call_begin, [tool_client], {function}, SHFL_CPARMS_WRITE
    lea ebx, [obj]
.if MODE == 64
    ccall2 hgcm_parm_u32, 0, [rbx+TF_ROOT]
    ccall2 hgcm_parm_u64, 1, [rbx+TF_HANDLE]
    ccall2 hgcm_parm_u64, 2, 0
.else
    ccall2 hgcm_parm_u32, 0, [ebx+TF_ROOT]
    ccall3 hgcm_parm_u64, 1, [ebx+TF_HANDLE], [ebx+TF_HANDLE+4]
    ccall3 hgcm_parm_u64, 2, 0, 0
.endif
    ccall2 hgcm_parm_u32, 3, {length}
    ccall4 hgcm_parm_embedded, 4, {flags}, {buffer}, {length}
    test eax, eax
    jnz failed
    ccall0 hgcm_call
    test eax, eax
    js failed
    ccall1 hgcm_parm_get_u32, 3
    cmp eax, {length}
    jne wrong_count
"""


@pytest.mark.parametrize("mode", [64, 32])
def test_embedded_buffers_from_a_paged_guest(tmp_path: Path, mode: int) -> None:
    """Embedded parameters carry their bytes inside the request: VMMDevHGCM.cpp
    vmmdevR3HgcmCallFetchGuestParms takes offData relative to the request (checked to lie
    in it), vmmdevR3HgcmInitHostParameters copies the bytes from the device's copy of the
    request (read at the physical address the guest wrote to the port; no page tables
    involved) and vmmdevR3HgcmCompleteCallRequest writes the result and cbData back into
    it.  The paged guest copies a virtually contiguous, physically scattered buffer into
    the request for a WRITE, READs it back into another scattered buffer with
    hgcm_parm_embedded_get, and compares."""
    write, read = WRITE_VIRTUAL + EMBEDDED_OFFSET, READ_VIRTUAL + 0x456
    body = (FILL.format(start=write, length=EMBEDDED_LENGTH, label="w")
            + EMBEDDED_CALL.format(function="SHFL_FN_WRITE", flags="VBOX_HGCM_F_PARM_DIRECTION_TO_HOST",
                                   buffer=write, length=EMBEDDED_LENGTH)
            + EMBEDDED_CALL.format(function="SHFL_FN_READ", flags="VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST",
                                   buffer=0, length=EMBEDDED_LENGTH)
            + f"""
    ccall2 hgcm_parm_embedded_get, 4, {read:#x}
    cmp eax, {EMBEDDED_LENGTH}
    jne wrong_count
    ccall3 mem_equal, {write:#x}, {read:#x}, {EMBEDDED_LENGTH}
    cmp eax, 1
    jne wrong_data
""")
    machine, events = run_scattered(tmp_path, body, mode=mode, linaddr=False)
    expected = pattern(EMBEDDED_LENGTH)
    assert (tmp_path / "data.bin").read_bytes() == expected
    assert frames_bytes(machine, WRITE_FRAMES, EMBEDDED_OFFSET, EMBEDDED_LENGTH) == expected
    assert frames_bytes(machine, READ_FRAMES, 0x456, EMBEDDED_LENGTH) == expected
    assert page_list_types(events, EMBEDDED_LENGTH) == ["Embedded"] * 2
    machine.close()


@pytest.mark.parametrize("mode", [64, 32])
def test_embedded_buffer_too_big_for_the_request_is_refused_by_the_library(tmp_path: Path, mode: int) -> None:
    """hgcm_parm_embedded bounds what it copies by the static request's capacity: a buffer
    that does not fit returns VERR_BUFFER_OVERFLOW (-41) and builds nothing."""
    body = """
    ccall3 hgcm_call_begin, [tool_client], SHFL_FN_WRITE, SHFL_CPARMS_WRITE
    ccall4 hgcm_parm_embedded, 4, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, 0x40000000, 4096
    cmp eax, VERR_BUFFER_OVERFLOW
    jne failed
"""
    machine, result, _events = run(tmp_path, program(body, maps(WRITE_VIRTUAL, WRITE_FRAMES), mode=mode,
                                                     linaddr=False), mode)
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.fault and result.fault.format()
    machine.close()


def vmmdev_memory_base(mode: int) -> int:
    """Where the board maps the VMMDev's RAM BAR (VMMDevMemory, an MMIO2 range to PGM)."""
    machine = vbox_board(mode, RAM)
    base = machine.vmmdev.mmio_base
    machine.close()
    assert base is not None
    return base


@pytest.mark.parametrize("mode", [64, 32])
@pytest.mark.parametrize("kind", ["PageList", "NoBouncePageList", "LinAddr"])
def test_buffer_pages_on_the_vmmdev_ram_bar_are_copied_like_ram(tmp_path: Path, mode: int, kind: str) -> None:
    """PGMAllPhys.cpp PGMPhysRead/PGMPhysWrite copy to and from MMIO2 pages as from RAM (they
    are RAM ranges to PGM), and PGMR3PhysBulkGCPhys2CCPtrExternal (PGMPhys.cpp) locks an
    MMIO2 page of a NoBouncePageList (only MMIO and special-alias pages, or pages with
    access handlers, give VERR_PGM_PHYS_PAGE_RESERVED).  The first page of the write buffer
    is mapped onto the RAM BAR's first page (used from OFFSET on, past the VMMDevMemory
    header), the read buffer's onto its second (zeros until the READ): the guest fills the
    write buffer through its mapping, writes it to the file and reads the file back."""
    base = vmmdev_memory_base(mode)
    remaps = (f"    ccall3 pg_map, {WRITE_VIRTUAL:#x}, {base:#x}, PTE_P | PTE_RW\n"
              f"    ccall3 pg_map, {READ_VIRTUAL:#x}, {base + 4096:#x}, PTE_P | PTE_RW\n")
    body = (remaps + FILL.format(start=WRITE_VIRTUAL + OFFSET, length=LENGTH, label="w")
            + (set_page_list_type(kind) if kind == "NoBouncePageList" else "")
            + WRITE_READ_BACK.split("    ccall3 mem_equal")[0].format(
                write=WRITE_VIRTUAL + OFFSET, read=READ_VIRTUAL + OFFSET, length=LENGTH))
    machine, events = run_scattered(tmp_path, body, mode=mode, linaddr=kind == "LinAddr")
    expected = pattern(LENGTH)
    assert (tmp_path / "data.bin").read_bytes() == expected
    ram_bar = machine.vmmdev.events.mmio
    assert ram_bar is not None
    assert ram_bar.read(OFFSET, 4096 - OFFSET) == expected[:4096 - OFFSET]  # what the guest wrote
    assert ram_bar.read(4096 + OFFSET, 4096 - OFFSET) == expected[:4096 - OFFSET]  # what the READ put
    assert frames_bytes(machine, READ_FRAMES, 4096, LENGTH + OFFSET - 4096) == expected[4096 - OFFSET:]
    if kind != "LinAddr":
        assert page_list_types(events, LENGTH) == [kind] * 2
    machine.close()


@pytest.mark.parametrize("mode", [64, 32])
def test_no_bounce_page_list_with_a_frame_outside_ram_fails_the_call(tmp_path: Path, mode: int) -> None:
    """VMMDevHGCM.cpp vmmdevR3HgcmCallFetchGuestParms locks a NoBouncePageList's pages with
    PDMDevHlpPhysBulkGCPhys2CCPtrReadOnly (TO_HOST) or PDMDevHlpPhysBulkGCPhys2CCPtr; a
    page in no RAM or MMIO2 range fails the lookup in PGMR3PhysBulkGCPhys2CCPtr(ReadOnly)
    External (PGMPhys.cpp) with VERR_PGM_INVALID_GC_PHYSICAL_ADDRESS, and as that is not
    VERR_PGM_PHYS_PAGE_RESERVED the call fails with it (no PageList fallback).  The same
    list as a PageList is carried (test_page_list_frames_beyond_ram_and_nil_frames)."""
    remaps = f"    ccall3 pg_map, {WRITE_VIRTUAL + 2 * 4096:#x}, {RAM + 0x5000:#x}, PTE_P | PTE_RW\n"
    body = (FILL.format(start=WRITE_VIRTUAL + OFFSET, length=2 * 4096 - OFFSET, label="w") + remaps
            + set_page_list_type("NoBouncePageList") + f"""
    ccall3 tool_write, obj, {WRITE_VIRTUAL + OFFSET:#x}, {LENGTH}
    cmp eax, VERR_PGM_INVALID_GC_PHYSICAL_ADDRESS
    jne failed
""")
    mapping = maps(WRITE_VIRTUAL, WRITE_FRAMES)
    machine, result, events = run(tmp_path, program(body, mapping, mode=mode, linaddr=False), mode)
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 0), result.fault and result.fault.format()
    assert (tmp_path / "data.bin").read_bytes() == b""
    rejected = [(event.fields["status"], event.fields["reason"]) for event in events if event.kind == "hgcm_rejected"]
    assert rejected == [(-1605, "VERR_PGM_INVALID_GC_PHYSICAL_ADDRESS: no-bounce page list frame "
                                f"{RAM + 0x5000:#x} is neither RAM nor device memory")]
    machine.close()

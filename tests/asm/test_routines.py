"""The bundled routines and programs assemble in both modes and define their entry points."""

from __future__ import annotations

from pathlib import Path

import pytest

from guest_asm import assemble
from guest_asm.source import LIB_DIR

PROGRAMS = Path(LIB_DIR).parent / "programs"
ROUTINES = {
    "vmmdev.s": ["vmmdev_req_init", "vmmdev_request", "vmmdev_report_guest_info"],
    "hgcm.s": ["hgcm_connect", "hgcm_disconnect", "hgcm_call_begin", "hgcm_parm_u32", "hgcm_parm_u64",
               "hgcm_parm_linaddr", "hgcm_parm_pagelist", "hgcm_parm_buf", "hgcm_call",
               "hgcm_parm_get_u32", "hgcm_parm_get_u64"],
    "sf.s": ["sf_set_utf8", "sf_map_folder", "sf_unmap_folder", "sf_create", "sf_close", "sf_read",
             "sf_write", "sf_flush", "sf_query_mappings", "sf_query_map_name"],
    "shflstring.s": ["shfl_string_init", "shfl_string_init_buffer", "shfl_create_parms_init"],
    "log.s": ["log_char", "log_string", "log_hex32", "exit"],
    "mem.s": ["mem_equal"],
    "sf_roundtrip.s": ["sf_roundtrip"],
}


@pytest.mark.parametrize("mode", (64, 32))
@pytest.mark.parametrize("name", sorted(ROUTINES))
def test_routine_file_assembles(mode: int, name: str) -> None:
    program = assemble(f'.include "{name}"\n', mode=mode)
    assert set(ROUTINES[name]) <= program.symbols.keys()


@pytest.mark.parametrize("mode", (64, 32))
@pytest.mark.parametrize("linaddr", (False, True))
def test_hgcm_assembles_with_both_buffer_kinds(mode: int, linaddr: bool) -> None:
    defines = {"HGCM_USE_LINADDR": 1} if linaddr else None
    assert assemble('.include "hgcm.s"\n', mode=mode, defines=defines).code


def test_every_routine_file_has_a_contract_header() -> None:
    for path in Path(LIB_DIR).glob("*.s"):
        assert path.read_text().startswith(f"# {path.name} - "), path


@pytest.mark.parametrize("mode", (64, 32))
@pytest.mark.parametrize("program", ["demo.s", "hello_log.s", "exit_code.s"])
def test_programs_assemble_with_an_entry(mode: int, program: str) -> None:
    assembled = assemble(PROGRAMS / program, mode=mode)
    assert assembled.entry == assembled.symbols["_start"] == 0x10000


@pytest.mark.parametrize("mode", (64, 32))
def test_sf_write_read_programs_assemble(mode: int) -> None:
    assembled = assemble(PROGRAMS / f"sf_write_read_{mode}.s", mode=mode)
    assert assembled.entry == 0x10000

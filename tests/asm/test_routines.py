"""The bundled routines and programs assemble in both modes and define their entry points."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgcmlab.guest_asm import assemble
from hgcmlab.guest_asm.source import LIB_DIR

PROGRAMS = Path(LIB_DIR).parent / "programs"
ROUTINES = {
    "vmmdev.s": ["vmmdev_req_init", "vmmdev_request", "vmmdev_report_guest_info"],
    "hgcm.s": ["hgcm_connect", "hgcm_disconnect", "hgcm_call_begin", "hgcm_parm_u32", "hgcm_parm_u64",
               "hgcm_parm_linaddr", "hgcm_parm_pagelist", "hgcm_parm_buf", "hgcm_call",
               "hgcm_parm_get_u32", "hgcm_parm_get_u64"],
    "sf.s": ["sf_set_utf8", "sf_map_folder", "sf_unmap_folder", "sf_create", "sf_close", "sf_read",
             "sf_write", "sf_flush", "sf_query_mappings", "sf_query_map_name"],
    "shflstring.s": ["shfl_string_init", "shfl_string_init_buffer", "shfl_create_parms_init"],
    "sf_file.s": ["sf_lock", "sf_information", "sf_fsinfo_get", "sf_fsinfo_set", "sf_fsinfo_set_size",
                  "sf_volume_info", "sf_set_file_size", "sf_copy_file_part"],
    "sf_path.s": ["sf_remove", "sf_close_and_remove", "sf_rename", "sf_readlink", "sf_symlink",
                  "sf_copy_file"],
    "sf_dir.s": ["sf_list"],
    "sf_client.s": ["sf_map_folder_old", "sf_set_symlinks", "sf_query_map_info",
                    "sf_wait_for_mappings_changes", "sf_cancel_mappings_changes_waits",
                    "sf_query_features", "sf_set_error_style"],
    "sfwrap.s": [],
    "args.s": ["args_count", "args_get", "str_len", "args_split_spec"],
    "tool.s": ["tool_start", "tool_open_spec", "tool_open_arg", "tool_create", "tool_close", "tool_read",
               "tool_write", "tool_list", "tool_fsinfo", "tool_volinfo", "tool_remove", "tool_rename",
               "tool_copy_file", "tool_symlink", "tool_readlink", "tool_die", "tool_finish"],
    "log.s": ["log_char", "log_string", "log_hex32", "log_bytes", "log_dec32", "log_udec32", "log_octal",
              "log_dec64p", "exit"],
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
@pytest.mark.parametrize("program", ["ls.s", "cat.s", "cp.s", "cp_copyfile.s", "mkdir.s", "rmdir.s", "mv.s",
                                     "stat.s", "df.s", "ln_s.s", "readlink.s"])
def test_tools_assemble_in_both_modes(mode: int, program: str) -> None:
    assembled = assemble(PROGRAMS / program, mode=mode)
    assert assembled.entry == assembled.symbols["_start"]
    assert PROGRAMS.joinpath(program).read_text().startswith(f"# {program} - ")


@pytest.mark.parametrize("mode", (64, 32))
def test_sf_write_read_programs_assemble(mode: int) -> None:
    assembled = assemble(PROGRAMS / f"sf_write_read_{mode}.s", mode=mode)
    assert assembled.entry == 0x10000

"""Generic dispatch: unknown functions, validation styles, strings, async waits."""

from __future__ import annotations

import pytest

from hgcmlab.runtime.status import Status
from hgcmlab.services.hgcm import ASYNC, HgcmCall, SvcParm
from hgcmlab.services.sharedfolders import strings
from hgcmlab.services.sharedfolders.abi import ShflFn
from hgcmlab.services.sharedfolders.functions import FUNCTIONS, Style
from hgcmlab.services.sharedfolders.service import SharedFoldersService
from tests.service.conftest import Guest, Tree


@pytest.mark.parametrize("fn", [0, 10, 30, 0xFFFFFFFF])
def test_unknown_function_not_implemented(guest: Guest, fn: int) -> None:
    assert guest.call(fn) == Status.VERR_NOT_IMPLEMENTED


def test_every_unregistered_function_answers_not_implemented(guest: Guest) -> None:
    for fn in ShflFn:
        if fn not in FUNCTIONS:
            assert guest.call(fn, SvcParm.u32(0)) == Status.VERR_NOT_IMPLEMENTED


def test_unknown_client_rejected(svc: SharedFoldersService) -> None:
    assert svc.call(HgcmCall(999, ShflFn.SET_UTF8, [])) == Status.VERR_INVALID_CLIENT_ID


def test_old_style_count_and_type_faults(guest: Guest) -> None:
    assert guest.call(ShflFn.CLOSE, SvcParm.u32(0)) == Status.VERR_INVALID_PARAMETER
    assert guest.call(ShflFn.CLOSE, SvcParm.u32(0), SvcParm.u32(1)) == Status.VERR_INVALID_PARAMETER
    assert guest.call(ShflFn.CANCEL_MAPPINGS_CHANGES_WAITS, SvcParm.u32(0)) == Status.VERR_INVALID_PARAMETER


def test_new_style_count_and_type_faults(guest: Guest) -> None:
    assert guest.call(ShflFn.READ, SvcParm.u32(0)) == Status.VERR_WRONG_PARAMETER_COUNT
    args = [SvcParm.u32(0), SvcParm.u32(1), SvcParm.u64(0), SvcParm.u32(1), SvcParm.ptr(1)]
    assert guest.call(ShflFn.READ, *args) == Status.VERR_WRONG_PARAMETER_TYPE
    assert guest.call(ShflFn.QUERY_FEATURES, SvcParm.u32(0), SvcParm.u32(0)) == Status.VERR_WRONG_PARAMETER_TYPE


def test_style_table_matches_reference() -> None:
    new = {ShflFn.READ, ShflFn.WRITE, ShflFn.REMOVE, ShflFn.CLOSE_AND_REMOVE, ShflFn.SET_FILE_SIZE,
           ShflFn.QUERY_FEATURES, ShflFn.COPY_FILE, ShflFn.COPY_FILE_PART, ShflFn.SET_ERROR_STYLE}
    for fn, spec in FUNCTIONS.items():
        if fn in (ShflFn.SET_UTF8, ShflFn.SET_SYMLINKS):
            assert spec.style is Style.UNCHECKED
        else:
            assert (spec.style is Style.NEW) == (fn in new), spec.name


def bad_string_cases(utf8: bool) -> list[bytes]:
    good = bytearray(strings.build("sub", utf8))
    no_room = bytearray(good)
    no_room[2] = no_room[0]  # u16Length == u16Size (P13)
    cases = [bytes(no_room), bytes(good[:4]), bytes(good[:-1])]  # P15, size beyond buffer
    if utf8:
        cases += [b"\x06\x00\x05\x00\xc0\xae\xc0\xae/\x00",  # overlong dots (C05)
                  b"\x04\x00\x03\x00\xed\xa0\x80\x00",        # encoded surrogate
                  b"\x04\x00\x03\x00\xef\xbf\xbf\x00",        # U+FFFF
                  b"\x04\x00\x03\x00a\x00b\x00",              # embedded NUL
                  b"\x04\x00\x03\x00abcd"]                    # no terminator
    else:
        cases += [b"\x06\x00\x04\x00\x00\xd8\x41\x00\x00\x00",  # lone surrogate (P17)
                  b"\x06\x00\x03\x00a\x00b\x00\x00\x00"]          # odd length
    return cases


@pytest.mark.parametrize("utf8", [True, False], ids=["utf8", "utf16"])
def test_bad_strings_are_invalid_parameter(svc: SharedFoldersService, tree: Tree, utf8: bool) -> None:
    g = Guest(svc, utf8=utf8)
    root = g.map("sf")
    for raw in bad_string_cases(utf8):
        parms = SvcParm.ptr(108)
        assert g.call(ShflFn.CREATE, SvcParm.u32(root), SvcParm.ptr(raw), parms) == \
            Status.VERR_INVALID_PARAMETER, raw
        assert bytes(parms.buffer) == bytes(108)
    assert sorted(p.name for p in tree.share.iterdir()) == sorted(
        ["sub", "link_in", "rel_out", "abs_out", "dangling", "loop", "fifo"])


def test_query_features_and_error_style(guest: Guest) -> None:
    feats, last = SvcParm.u64(0), SvcParm.u32(0)
    assert guest.call(ShflFn.QUERY_FEATURES, feats, last) == 0
    assert (feats.value, last.value) == (1, 29)
    assert guest.call(ShflFn.SET_ERROR_STYLE, SvcParm.u32(1), SvcParm.u32(0)) == 0
    assert guest.call(ShflFn.SET_ERROR_STYLE, SvcParm.u32(3), SvcParm.u32(0)) == Status.VERR_WRONG_PARAMETER_TYPE
    assert guest.call(ShflFn.SET_ERROR_STYLE, SvcParm.u32(2), SvcParm.u32(1)) == Status.VERR_WRONG_PARAMETER_TYPE


def test_wait_for_mappings_changes(svc: SharedFoldersService, tree: Tree) -> None:
    g = Guest(svc)
    ver = SvcParm.u32(0)
    assert g.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, ver) == 0 and ver.value == svc.table.version
    assert g.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, ver) is ASYNC
    assert svc.add_mapping("new", str(tree.share / "sub")) == 0
    assert len(g.completions) == 1
    call, status = g.completions[0]
    assert status == Status.VERR_CANCELLED and call.params[0].value == svc.table.version  # quirk 1
    w = SvcParm.u32(svc.table.version)
    assert g.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, w) is ASYNC
    assert g.call(ShflFn.CANCEL_MAPPINGS_CHANGES_WAITS) == 0
    assert g.completions[-1][1] == Status.VERR_CANCELLED
    assert g.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, SvcParm.u32(svc.table.version)) == Status.VERR_CANCELLED
    # More than 64 waits over the service's lifetime keep working (quirk 2 not copied).
    for _ in range(70):
        assert g.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, SvcParm.u32(svc.table.version)) is ASYNC
        g.call(ShflFn.CANCEL_MAPPINGS_CHANGES_WAITS)
        g.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, SvcParm.u32(svc.table.version))


def test_pending_wait_limit_and_disconnect(svc: SharedFoldersService) -> None:
    g = Guest(svc)
    for _ in range(64):
        assert g.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, SvcParm.u32(svc.table.version)) is ASYNC
    assert g.call(ShflFn.WAIT_FOR_MAPPINGS_CHANGES, SvcParm.u32(svc.table.version)) == \
        Status.VERR_OUT_OF_RESOURCES
    g.disconnect()
    assert len(g.completions) == 64 and all(s == Status.VERR_CANCELLED for _, s in g.completions)


def test_cancel_hint_completes_once(svc: SharedFoldersService) -> None:
    g = Guest(svc)
    call = HgcmCall(g.client_id, ShflFn.WAIT_FOR_MAPPINGS_CHANGES, [SvcParm.u32(svc.table.version)])
    assert svc.call(call) is ASYNC
    svc.cancel(call)
    assert call.completed and not svc.clients[g.client_id].waits

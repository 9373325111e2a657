"""The command line's guest property options: --guest-property and --dump-guest-properties."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from hgcmlab.guest_asm.source import LIB_DIR
from hgcmlab.machine.cli import EXIT_USAGE, main
from hgcmlab.machine.guestpropcli import parse_guest_property

TOOL = str(Path(LIB_DIR).parent / "programs" / "guestprop.s")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("text", "parsed"), [
    ("a=b", ("a", "b", "")),
    ("a=", ("a", "", "")),
    ("a=b,TRANSIENT, RDONLYGUEST", ("a", "b", "TRANSIENT, RDONLYGUEST")),
    ("a=b=c", ("a", "b=c", "")),
])
def test_parse(text: str, parsed: tuple[str, str, str]) -> None:
    assert parse_guest_property(text) == parsed


def test_dump_lists_host_and_guest_changes() -> None:
    status, out, err = cli("run", "-q", "--guest-property", "/Host/Greeting=hi,TRANSIENT",
                           "--dump-guest-properties", TOOL, "--", "set", "/Guest/Seen", "yes")
    assert (status, err) == (0, "")
    lines = {line.split(" = ")[0]: line for line in out.splitlines()}
    assert len(lines) == 7 + 2  # the service's own seven, the host's and the guest's
    assert re.fullmatch(r"guest property /Host/Greeting = 'hi' \(timestamp \d+, TRANSIENT\)",
                        lines["guest property /Host/Greeting"])
    assert re.fullmatch(r"guest property /Guest/Seen = 'yes' \(timestamp \d+\)", lines["guest property /Guest/Seen"])


def test_host_set_reaches_the_guest() -> None:
    status, out, _ = cli("run", "--guest-property", "/Host/Greeting=hi there", TOOL, "--", "get", "/Host/Greeting")
    assert status == 0 and "[guest] Value: hi there\n" in out and "[guest] Flags: \n" in out


@pytest.mark.parametrize(("option", "message"), [
    ("bad*=x", "hgcmlab: error: guest property 'bad*': VERR_INVALID_PARAMETER\n"),
    ("a=x,BOGUS", "hgcmlab: error: guest property 'a': VERR_PARSE_ERROR\n"),
    ("/VirtualBox/HostInfo/VBoxVer=1,RDONLYHOST", None),
])
def test_refused_property_is_a_usage_error(option: str, message: str | None) -> None:
    status, out, err = cli("run", "--guest-property", option, TOOL, "--", "get", "x")
    if message is None:  # the host may overwrite host-reserved properties
        assert status == 3 and "error: get x: -78" in out
        return
    assert (status, err, out) == (EXIT_USAGE, message, "")

"""The command line's guest property options: host-side sets before a run
(``--guest-property NAME=VALUE[,FLAGS]``) and the properties after it
(``--dump-guest-properties``)."""

from __future__ import annotations

import argparse

from hgcmlab.machine.machine import Machine
from hgcmlab.runtime.status import status_name


def parse_guest_property(text: str) -> tuple[str, str, str]:
    """Parse ``NAME=VALUE`` or ``NAME=VALUE,FLAGS`` into (name, value, flags): the value
    ends at the first comma, everything after it is the flags list (which has commas of
    its own, e.g. ``TRANSIENT,RDONLYGUEST``)."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"invalid guest property {text!r}: expected NAME=VALUE[,FLAGS]")
    value, _, flags = rest.partition(",")
    return name, value, flags


def add_guest_property_option(parser: argparse.ArgumentParser) -> None:
    """``--guest-property`` (any command that builds a machine)."""
    parser.add_argument("--guest-property", action="append", default=[], type=parse_guest_property,
                        metavar="NAME=VALUE[,FLAGS]",
                        help="set guest property NAME to VALUE from the host before the guest starts, "
                             "with FLAGS such as TRANSIENT,RDONLYGUEST (the value ends at the first "
                             "comma) (repeatable)")


def add_dump_option(parser: argparse.ArgumentParser) -> None:
    """``--dump-guest-properties`` (``run``)."""
    parser.add_argument("--dump-guest-properties", action="store_true",
                        help="after the run, print every guest property: name, value, timestamp "
                             "(ns) and flags")


def apply_guest_properties(machine: Machine, properties: list[tuple[str, str, str]]) -> None:
    """Set each (name, value, flags) as the host; ValueError naming the property and
    VirtualBox's status when the service refuses one."""
    for name, value, flags in properties:
        status = machine.guest_properties.set_property(name, value, flags)
        if status < 0:
            raise ValueError(f"guest property {name!r}: {status_name(status)}")


def dump_lines(machine: Machine) -> list[str]:
    """One line per property, in VirtualBox's enumeration order."""
    return [f"guest property {name} = {value!r} (timestamp {timestamp}{', ' + flags if flags else ''})"
            for name, value, timestamp, flags in machine.guest_properties.properties()]

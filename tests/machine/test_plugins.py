"""Device plugins as docs/design.md ("Device plugins") documents them: the example plugin
installed and run through the command line, ports picked by the machine, all-or-nothing
claims, and one-line errors for every way a plugin or its placement can go wrong (issue 12:
a port conflict used to raise a traceback, the port was mandatory, and `--device` refused
the built-in devices `hgcmlab devices` listed without saying why)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import hgcmlab.machine.plugincli as plugincli_module
from hgcmlab.guest_asm import assemble
from hgcmlab.machine.cli import EXIT_DEVICE_FAILURE, EXIT_USAGE, main
from hgcmlab.machine.device import AttachContext, PortRange
from hgcmlab.machine.boards import vbox_board
from hgcmlab.machine.portbus import PLUGIN_PORT_START, PortConflictError

REPO = Path(__file__).resolve().parents[2]
DESIGN = REPO / "docs" / "design.md"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def _doc_blocks() -> dict[str, str]:
    """The python, toml and asm code blocks of the design doc's plugin section."""
    text = DESIGN.read_text()
    section = text[text.index("### Device plugins"):]
    section = section[:section.index("\n## ")]
    return {language: body for language, body in re.findall(r"```(\w+)\n(.*?)```", section, re.S)}


def _install_doc_plugin(root: Path) -> dict[str, str]:
    """Install the documented plugin as a distribution under ``root`` (what `pip install`
    leaves behind: the module plus a dist-info with entry_points.txt)."""
    blocks = _doc_blocks()
    (root / "counter_plugin.py").write_text(blocks["python"])
    info = root / "counter_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: counter-plugin\nVersion: 1.0\n")
    groups = tomllib.loads(blocks["toml"])["project"]["entry-points"]
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items())
        for group, entries in groups.items()))
    (root / "sum.s").write_text(blocks["asm"])
    return blocks


def _run_cli(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(REPO)]))
    return subprocess.run([sys.executable, "-m", "hgcmlab.machine.cli", *argv], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_documented_example_plugin_works_end_to_end(tmp_path: Path) -> None:
    _install_doc_plugin(tmp_path)
    listed = _run_cli(tmp_path, "devices")
    assert listed.returncode == 0
    assert "counter\tcounter_plugin:CounterDevice\n" in listed.stdout
    ran = _run_cli(tmp_path, "run", "sum.s", "--device", "counter")
    assert (ran.returncode, ran.stderr) == (42, "")
    assert ran.stdout.splitlines()[0] == "device counter: sum 0xc000"
    explicit = _run_cli(tmp_path, "run", "sum.s", "--device", "counter@0xc000", "--quiet")
    assert (explicit.returncode, explicit.stdout, explicit.stderr) == (42, "", "")


def test_documented_plugin_at_a_taken_port_is_one_line(tmp_path: Path) -> None:
    _install_doc_plugin(tmp_path)
    ran = _run_cli(tmp_path, "run", "sum.s", "--device", "counter@0xd020")
    assert ran.returncode == EXIT_USAGE
    assert ran.stderr == ("hgcmlab: error: device 'counter@0xd020': counter: port 0xd020 (sum) is already "
                          "claimed by vmmdev (request)\n")


# --- in-process: fake entry points pointing at the classes below ---------------------------


class Counter:
    """Like the documented plugin (a copy, so these tests do not depend on the doc)."""

    name = "counter"

    def __init__(self) -> None:
        self.total = 0

    def port_ranges(self) -> list[PortRange]:
        return [PortRange("sum", 0, 4, frozenset({4}))]

    def attach(self, context: AttachContext) -> None:
        self.context = context

    def io_read(self, range_name: str, offset: int, size: int) -> int:
        return self.total

    def io_write(self, range_name: str, offset: int, size: int, value: int) -> None:
        self.total = (self.total + value) & 0xFFFFFFFF


class FailingConstructor(Counter):
    def __init__(self) -> None:
        raise RuntimeError("no license key")


class NotADevice:
    name = "notadevice"


class FailingRanges(Counter):
    def port_ranges(self) -> list[PortRange]:
        raise KeyError("ranges")


class FailingAttach(Counter):
    def attach(self, context: AttachContext) -> None:
        raise OSError("backend unavailable")


class FailingRead(Counter):
    def io_read(self, range_name: str, offset: int, size: int) -> int:
        return 1 // 0


class FailingWrite(Counter):
    def io_write(self, range_name: str, offset: int, size: int, value: int) -> None:
        raise ValueError(f"refuses {value}")


class TwoRanges(Counter):
    """Two ranges 0x10 apart: a 0x14-port span (aligned to 0x20 when placed by the machine)."""

    def port_ranges(self) -> list[PortRange]:
        return [PortRange("sum", 0, 4, frozenset({4})), PortRange("status", 0x10, 4, frozenset({4}))]


_PLUGINS = {
    "counter": "Counter", "broken_ctor": "FailingConstructor", "notadevice": "NotADevice",
    "broken_ranges": "FailingRanges", "broken_attach": "FailingAttach", "tworanges": "TwoRanges",
    "broken_read": "FailingRead", "broken_write": "FailingWrite",
    "missing_module": None,
}


@pytest.fixture(autouse=True)
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    def installed() -> dict[str, metadata.EntryPoint]:
        real = {ep.name: ep for ep in metadata.entry_points(group="hgcmlab.devices")}
        for name, attribute in _PLUGINS.items():
            value = f"{__name__}:{attribute}" if attribute else "no_such_plugin_module:Device"
            real[name] = metadata.EntryPoint(name, value, "hgcmlab.devices")
        return real
    monkeypatch.setattr(plugincli_module, "plugin_devices", installed)


@pytest.fixture
def program(tmp_path: Path):
    def write(text: str) -> str:
        path = tmp_path / "prog.s"
        path.write_text(text)
        return str(path)
    return write


@pytest.mark.parametrize("mode", ["64", "32"])
def test_two_plugins_without_ports_get_consecutive_blocks_the_guest_uses(program, mode: str) -> None:
    path = program("""
_start:
    mov dx, 0xc000
    mov eax, 30
    out dx, eax
    mov dx, 0xc004
    mov eax, 12
    out dx, eax
    in eax, dx
    mov ebx, eax
    mov dx, 0xc000
    in eax, dx
    add eax, ebx
    out 0xf4, al
""")
    status, out, err = cli("run", path, "--mode", mode, "--device", "counter", "--device", "counter")
    assert (status, err) == (42, "")
    assert out.splitlines()[:2] == ["device counter: sum 0xc000", "device counter: sum 0xc004"]


def test_a_plugin_next_to_an_explicitly_placed_one(program) -> None:
    path = program("_start:\n mov dx, 0xc004\n mov eax, 9\n out dx, eax\n in eax, dx\n out 0xf4, al\n")
    status, out, _err = cli("run", path, "--device", "counter@0xc000", "--device", "counter")
    assert status == 9
    assert "device counter: sum 0xc004" in out.splitlines()


@pytest.mark.parametrize("spec, message", [
    ("counter@0xd020", "device 'counter@0xd020': counter: port 0xd020 (sum) is already claimed by vmmdev (request)"),
    ("counter@0xfffe", "device 'counter@0xfffe': counter: port range sum at 0xfffe (4 ports) lies outside "
                       "the port space"),
    ("counter@-4", "lies outside the port space"),
    ("counter@port", "device 'counter@port': 'port' is not a port number"),
    ("broken_ctor", "device 'broken_ctor' (tests.machine.test_plugins:FailingConstructor) cannot be loaded: "
                    "RuntimeError: no license key"),
    ("missing_module", "device 'missing_module' (no_such_plugin_module:Device) cannot be loaded: "
                       "ModuleNotFoundError: No module named 'no_such_plugin_module'"),
    ("notadevice", "is not a hgcmlab.machine.device.Device"),
    ("broken_ranges", "device 'broken_ranges' cannot be attached: KeyError: 'ranges'"),
    ("broken_attach", "device 'broken_attach' cannot be attached: OSError: backend unavailable"),
    ("exit", "device 'exit' is already on this board (port 0xf4) and a board has one of it"),
    ("debuglog", "device 'debuglog' is already on this board (port 0x504)"),
    ("vmmdev", "device 'vmmdev' is already on this board (ports 0xd020, 0xd028)"),
    ("nosuch", "unknown device 'nosuch' (installed plugins: "),
])
def test_plugin_problems_are_one_line_usage_errors(program, spec: str, message: str) -> None:
    status, _out, err = cli("run", program("_start: hlt\n"), "--device", spec)
    assert status == EXIT_USAGE
    assert err.count("\n") == 1 and err.startswith("hgcmlab: error: ") and message in err, err


@pytest.mark.parametrize("mode", ["64", "32"])
@pytest.mark.parametrize("spec, access, error", [
    ("broken_read", "IN of 4 byte(s) from port 0xc000", "ZeroDivisionError: integer division or modulo by zero"),
    ("broken_write", "OUT of 4 byte(s) (0x7) to port 0xc000", "ValueError: refuses 7"),
])
def test_a_plugin_failing_during_the_run_is_one_line(program, tmp_path: Path, mode: str, spec: str,
                                                      access: str, error: str) -> None:
    """A plugin's io_read/io_write raising mid-run: the run stops, stderr has one line naming
    the device, the access and its error (no traceback), the status is 70, and a trace file
    written so far is complete and readable."""
    path = program("_start:\n mov dx, 0xc000\n mov eax, 7\n out dx, eax\n in eax, dx\n out 0xf4, al\n")
    trace = tmp_path / "t.jsonl"
    status, _out, err = cli("run", path, "--mode", mode, "--device", spec, "--trace", str(trace), "--quiet")
    assert status == EXIT_DEVICE_FAILURE == 70
    # The failing classes inherit the name "counter" from Counter.
    assert err == f"hgcmlab: error: device 'counter' failed on {access} (range 'sum', offset 0): {error}\n"
    assert trace.read_text().endswith("}\n")


def test_devices_lists_built_ins_with_their_ports() -> None:
    status, out, err = cli("devices")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert "exit\thgcmlab.machine.stddevices:ExitDevice\tbuilt in (port 0xf4), always present" in lines
    assert "debuglog\thgcmlab.machine.stddevices:BackdoorLogDevice\tbuilt in (port 0x504), always present" in lines
    assert ("vmmdev\thgcmlab.devices.vmmdev.device:VMMDevDevice\tbuilt in (ports 0xd020, 0xd028), always present"
            in lines)
    assert "counter\ttests.machine.test_plugins:Counter" in lines


# --- the machine and the bus ---------------------------------------------------------------


def test_machine_places_a_device_without_a_base_deterministically() -> None:
    first, second = vbox_board(64), vbox_board(64)
    for machine in (first, second):
        machine.add_device(Counter())
        machine.add_device(TwoRanges())
    for machine in (first, second):
        assert machine.bus.owner(PLUGIN_PORT_START) == "counter"
        # TwoRanges spans 0x14 ports: aligned to 0x20, the first free block is 0xc020.
        assert [machine.bus.base_of(machine.devices[-1], r) for r in ("sum", "status")] == [0xC020, 0xC030]
        machine.close()


def test_claims_are_all_or_nothing() -> None:
    machine = vbox_board(64)
    device = TwoRanges()
    # "sum" would fit at 0xd010, "status" (0xd020) collides with the VMMDev request port.
    with pytest.raises(PortConflictError, match="port 0xd020 \\(status\\) is already claimed by vmmdev"):
        machine.add_device(device, base=0xD010)
    assert machine.bus.owner(0xD010) is None
    assert device not in machine.devices
    machine.add_device(device, base=0xD040)  # the same device fits elsewhere afterwards
    assert machine.bus.owner(0xD040) == machine.bus.owner(0xD050) == "counter"
    machine.close()


def test_port_conflict_error_is_a_value_error() -> None:
    assert issubclass(PortConflictError, ValueError)


def test_guest_reads_a_machine_placed_device() -> None:
    machine = vbox_board(32)
    device = Counter()
    device.total = 0x33
    machine.add_device(device)
    machine.load(assemble("_start:\n mov dx, 0xc000\n in eax, dx\n out 0xf4, al\n", mode=32))
    assert machine.run().exit_code == 0x33
    machine.close()


def test_guest_moving_the_vmmdev_bar_onto_a_plugin_is_no_traceback() -> None:
    # Used to raise PortConflictError out of Machine.run (and leave VMMDev without ports).
    # Now the plugin keeps its ports, VMMDev decodes nothing there, and moving the BAR to
    # free ports brings it back (the request below succeeds at 0xe000).
    machine = vbox_board(64)
    device = Counter()
    device.total = 5
    machine.add_device(device)
    events = []
    machine.tracer.add_sink(events.append)
    machine.load(assemble("""
_start:
    mov eax, 0x80002010
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    mov eax, 0xc001
    out dx, eax
    mov dx, 0xc000
    in eax, dx
    mov esi, eax
    mov eax, 0x80002010
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    mov eax, 0xe001
    out dx, eax
    mov dword ptr [0x21000], 40
    mov dword ptr [0x21004], 0x10001
    mov dword ptr [0x21008], 4
    mov dword ptr [0x2100c], -1
    mov eax, 0x21000
    mov dx, 0xe000
    out dx, eax
    mov eax, [0x2100c]
    test eax, eax
    jnz bad
    mov eax, esi
    out 0xf4, al
bad:
    mov al, 0xff
    out 0xf4, al
""", mode=64))
    assert machine.run().exit_code == 5
    conflicts = [e.fields for e in events if e.kind == "pci_bar_conflict"]
    assert conflicts == [{"device": "vmmdev", "bar": 0, "base": 0xC000,
                          "reason": "vmmdev: port 0xc000 (request) is already claimed by counter (sum)"}]
    assert machine.bus.owner(0xC000) == "counter" and machine.bus.owner(0xE000) == "vmmdev"
    machine.close()

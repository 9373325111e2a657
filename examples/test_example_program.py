"""Run your own guest program and check what it did (fixtures come from hgcmlab's plugin)."""

from pathlib import Path

from hgcmlab.machine.machine import RunEnd

PROGRAMS = Path(__file__).parent / "programs"


def test_greet_logs_and_exits(hgcm_machine, hgcm_assemble):
    machine = hgcm_machine(mode=64)
    machine.load(hgcm_assemble(PROGRAMS / "greet.s", mode=64))
    result = machine.run()
    assert (result.end, result.exit_code) == (RunEnd.EXIT, 7)
    assert result.log_lines == ["hello from examples/programs/greet.s"]


def test_bundled_demo_writes_the_shared_file(hgcm_machine, hgcm_share, hgcm_assemble):
    machine = hgcm_machine(mode=32)
    machine.add_share("demo", hgcm_share)
    machine.load(hgcm_assemble.bundled("demo.s", mode=32))
    assert machine.run().exit_code == 0
    assert (hgcm_share / "hello.txt").read_text() == "Hello from the hgcmlab guest!\n"
    # Every event of the run is available, with decoded Shared Folders parameters.
    creates = [e for e in hgcm_machine.events(machine) if e.fields.get("function_name") == "CREATE"]
    assert creates[0].kind == "hgcm_call"

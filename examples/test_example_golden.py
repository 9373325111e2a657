"""A golden-trace test: the HGCM conversation of a run, compared with golden/demo_session.jsonl.

After an intended change, accept the new trace with:  python -m pytest examples --update-golden
"""


def test_demo_session(hgcm_machine, hgcm_share, hgcm_assemble, assert_trace):
    machine = hgcm_machine(mode=64)
    machine.add_share("demo", hgcm_share)
    machine.load(hgcm_assemble.bundled("demo.s"))
    machine.run()
    assert_trace(machine, "demo_session")


def test_only_the_calls(hgcm_machine, hgcm_share, hgcm_assemble, assert_trace):
    machine = hgcm_machine(mode=64)
    machine.add_share("demo", hgcm_share)
    machine.load(hgcm_assemble.bundled("demo.s"))
    machine.run()
    # A narrower golden: only calls, and only their decoded form.
    assert_trace(machine, "demo_calls", kinds=["hgcm_call"], fields=["call"])

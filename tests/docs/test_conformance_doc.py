"""docs/conformance.md's Shared Folders table is exactly what the conformance suite pins."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_conformance_doc_is_generated_from_the_suite() -> None:
    """Fails when a conformance test was added/changed without regenerating the doc, or when a
    function has no test or a test lacks its marker, branch line or VirtualBox citation."""
    done = subprocess.run([sys.executable, "-m", "tests.conformance.report", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

"""The ``hgcmlab`` console command.

Importing the CLI (Unicorn, capstone, the device and service packages) takes a noticeable part
of a second; a Ctrl-C in that window, or while the interpreter shuts down afterwards, must not
print a Python traceback.  This module imports nothing heavy itself, so it can catch both.
"""

from __future__ import annotations

import signal
import sys

#: Exit status after Ctrl-C (128 + SIGINT), as machine.cli reports it during a run.
EXIT_INTERRUPTED = 130


def main() -> int:
    """Run ``machine.cli.main`` and return its status; 130 for a Ctrl-C while it loads."""
    try:
        from machine.cli import main as cli_main
        status = cli_main()
    except KeyboardInterrupt:
        print("hgcmlab: interrupted", file=sys.stderr)
        status = EXIT_INTERRUPTED
    # From here on only interpreter shutdown is left: a late Ctrl-C ends the process by the
    # signal's default action (the shell sees 130) rather than raising in some finalizer.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    return status

"""The ``hgcmlab`` console command.

Importing the CLI (Unicorn, capstone, the device and service packages) takes a noticeable part
of a second; a Ctrl-C in that window, or while the interpreter shuts down afterwards, must not
print a Python traceback.  Nor may standard output that cannot be written (a full disk,
``/dev/full``, a closed pipe).  This module imports nothing heavy itself, so it can catch these.
"""

from __future__ import annotations

import errno
import os
import signal
import sys

#: Exit status after Ctrl-C (128 + SIGINT), as hgcmlab.machine.cli reports it during a run.
EXIT_INTERRUPTED = 130
#: Exit status when standard output cannot be written (hgcmlab.machine.runcontrol's EXIT_USAGE: the
#: status of every output file that cannot be written).
EXIT_OUTPUT_FAILED = 2
#: errno values of a standard output that refuses our writes.
_OUTPUT_ERRNOS = frozenset({errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def main() -> int:
    """Run ``hgcmlab.machine.cli.main`` and return its status; 130 for a Ctrl-C while it loads."""
    try:
        from hgcmlab.machine.cli import main as cli_main
        status = cli_main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("hgcmlab: interrupted", file=sys.stderr)
        status = EXIT_INTERRUPTED
    except OSError as error:
        if error.errno not in _OUTPUT_ERRNOS:
            raise
        status = _output_failed(error)
    # From here on only interpreter shutdown is left: a late Ctrl-C ends the process by the
    # signal's default action (the shell sees 130) rather than raising in some finalizer.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    return status


def _output_failed(error: OSError) -> int:
    """One line on stderr for an output that refused a write (none for a reader that went
    away: ``hgcmlab ... | head`` is ordinary use); standard output is pointed at /dev/null so
    that the interpreter's final flush does not fail (and print) again."""
    if error.errno != errno.EPIPE:
        print(f"hgcmlab: error: cannot write output: {error.strerror or error}", file=sys.stderr)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a descriptor (replaced, closed): nothing to redirect
        pass
    return EXIT_OUTPUT_FAILED

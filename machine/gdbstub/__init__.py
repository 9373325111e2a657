"""A gdb remote stub for the machine: see docs/debugging.md.

``run_under_gdb(machine, GdbServer(port=1234), exec_file=...)`` waits for gdb, stops before
the first instruction and runs the loaded program under gdb's control.
"""

from hgcmlab.machine.gdbstub.server import DEFAULT_HOST, DebugRunEnded, GdbServer, exec_file_for, parse_listen_address, run_under_gdb
from hgcmlab.machine.gdbstub.session import ExecFile

__all__ = ["DEFAULT_HOST", "DebugRunEnded", "ExecFile", "GdbServer", "exec_file_for", "parse_listen_address",
           "run_under_gdb"]

"""Guest assembly: the keystone front end, the ABI constants bridge and guest routines."""

from hgcmlab.guest_asm.assembler import AssembledProgram, LineMap, assemble
from hgcmlab.guest_asm.errors import AssemblyError, AssemblyTimeout
from hgcmlab.guest_asm.source import SourceLocation

__all__ = ["AssembledProgram", "AssemblyError", "AssemblyTimeout", "LineMap", "SourceLocation", "assemble"]

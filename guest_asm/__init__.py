"""Guest assembly: the keystone front end, the ABI constants bridge and guest routines."""

from guest_asm.assembler import AssembledProgram, LineMap, assemble
from guest_asm.errors import AssemblyError, AssemblyTimeout
from guest_asm.source import SourceLocation

__all__ = ["AssembledProgram", "AssemblyError", "AssemblyTimeout", "LineMap", "SourceLocation", "assemble"]

"""The constants bridge: wire numbers from the Python ABI modules, as assembler symbols.

Guest sources use these names directly (``mov edx, VMMDEV_PORT``); the assembler defines
each referenced name with ``.equ`` in front of the program, so no wire number is typed in
assembly.  Everything is derived programmatically from ``hgcmlab.devices.vmmdev.abi``,
``hgcmlab.services.sharedfolders.abi``, ``hgcmlab.services.guestprops.abi``, ``hgcmlab.runtime.status``,
``hgcmlab.runtime.fsmode`` and the machine's guest-visible layout (``hgcmlab.machine.layout``,
``hgcmlab.machine.pci_regs``, ``hgcmlab.machine.paging_regs``).  Those modules import
nothing of the project's implementation, so the assembler does not depend on the machine
(``tests/structure/test_imports.py`` keeps it that way).

Naming scheme
-------------
* Module-level integer constants keep their Python name: ``VMMDEV_VERSION``,
  ``VBOX_HGCM_REQ_DONE``, ``HGCM_CALL_OFF_PARMS``, ``PAGE_SIZE``, ``SHFL_HANDLE_NIL``,
  ``VMMDEV_EVENT_HGCM``, ``MMIO_OFF_HAVE_EVENTS``, and hgcmlab.machine.layout's ``EXIT_PORT``,
  ``BACKDOOR_LOG_PORT``, ``ARGS_BASE``, ``IRQ_VECTOR_BASE``, ``VMMDEV_IRQ``, ``FIRMWARE_PAGE``,
  ``PAGING_AREA_SIZE`` ..., and hgcmlab.machine.paging_regs' ``CR0_PG``, ``CR4_PAE``, ``PTE_P``,
  ``PF_WRITE`` ...
* hgcmlab.machine.pci_regs' integers with the prefix ``PCI_``: ``PCI_CONFIG_ADDRESS_PORT``,
  ``PCI_OFF_BAR0``, ``PCI_COMMAND_IO``.
* Derived ports: ``VMMDEV_PORT`` (request port at the default base, 0xD020) and
  ``VMMDEV_PORT_FAST``.
* Enum members get their VirtualBox prefix (a table below): ``VMMDevReq_HGCMCall64``,
  ``VMMDevHGCMParmType_LinAddr_In``, ``VMMDevHGCMParmType_PageList``,
  ``VBOX_HGCM_F_PARM_DIRECTION_TO_HOST``, ``VMMDevHGCMLoc_LocalHost_Existing``,
  ``VMMDEV_HVF_FAST_IRQ_ACK``, ``SHFL_FN_CREATE``, ``SHFL_CF_ACCESS_READ``,
  ``SHFL_FILE_CREATED`` (SHFLCREATERESULT), ``SHFL_MF_UTF8``, ``RTFS_TYPE_FILE``, ...
  Status codes keep their names: ``VINF_SUCCESS``, ``VINF_HGCM_ASYNC_EXECUTE``,
  ``VERR_FILE_NOT_FOUND``.
* Parameter counts: ``SHFL_CPARMS_<FN>`` (``SHFL_CPARMS_READ`` = 5) and
  ``GUEST_PROP_CPARMS_<FN>`` (``GUEST_PROP_CPARMS_GET_PROP`` = 4); guest property
  functions and flags are ``GUEST_PROP_FN_*`` and ``GUEST_PROP_F_*``.
* Structures: ``<STRUCT>_SIZE`` and ``<STRUCT>_OFF_<PATH>``, where STRUCT is the ctypes
  class name upper-cased (``HgcmCall`` -> ``HGCMCALL``, ``ShflCreateParms`` ->
  ``SHFLCREATEPARMS``) and PATH the dotted field path with dots turned into underscores,
  upper-cased (``HGCMCALL_OFF_HEADER_HEADER_RC``).  When a field's own name occurs once
  in the flattened structure it also gets the short alias ``<STRUCT>_OFF_<FIELD>``
  (``HGCMCALL_OFF_RC``, ``HGCMCALL_OFF_RESULT``, ``HGCMCALL_OFF_FU32FLAGS``,
  ``SHFLCREATEPARMS_OFF_HANDLE``, ``SHFLCREATEPARMS_OFF_CREATEFLAGS``).
* ``MODE`` is 64 or 32, the mode being assembled for; caller ``defines`` are added as
  given (they may not redefine an ABI name).
"""

from __future__ import annotations

import ctypes
import inspect
from collections.abc import Iterator
from enum import Enum
from functools import cache
from types import ModuleType

import hgcmlab.devices.vmmdev.abi as vmmdev_abi
import hgcmlab.machine.layout as layout
import hgcmlab.machine.paging_regs as paging_regs
import hgcmlab.machine.pci_regs as pci_regs
import hgcmlab.runtime.fsmode as fsmode
import hgcmlab.runtime.status as status_module
import hgcmlab.services.guestprops.abi as gp_abi
import hgcmlab.services.sharedfolders.abi as shfl_abi

#: Enum class -> assembler name prefix (VirtualBox spellings where they exist).
_ENUM_PREFIXES: dict[type[Enum], str] = {
    vmmdev_abi.RequestType: "VMMDevReq_",
    vmmdev_abi.HgcmParmType: "VMMDevHGCMParmType_",
    vmmdev_abi.HgcmParmDirection: "VBOX_HGCM_F_PARM_DIRECTION_",
    vmmdev_abi.HgcmLocationType: "VMMDevHGCMLoc_",
    vmmdev_abi.HostFeature: "VMMDEV_HVF_",
    status_module.Status: "",
    shfl_abi.ShflFn: "SHFL_FN_",
    shfl_abi.ShflHostFn: "SHFL_HOST_FN_",
    shfl_abi.ShflCreateResult: "SHFL_",
    shfl_abi.ShflCf: "SHFL_CF_",
    shfl_abi.ShflMf: "SHFL_MF_",
    shfl_abi.ShflList: "SHFL_LIST_",
    shfl_abi.ShflInfo: "SHFL_INFO_",
    shfl_abi.ShflLock: "SHFL_LOCK_",
    shfl_abi.ShflRemove: "SHFL_REMOVE_",
    shfl_abi.ShflRename: "SHFL_RENAME_",
    shfl_abi.ShflMiqf: "SHFL_MIQF_",
    shfl_abi.ShflMif: "SHFL_MIF_",
    shfl_abi.ShflErrorStyle: "SHFL_ERROR_STYLE_",
    shfl_abi.ShflAddMappingFlag: "SHFL_ADD_MAPPING_F_",
    shfl_abi.ShflFsObjAttrAdd: "SHFLFSOBJATTRADD_",
    fsmode.RtFs: "RTFS_",
    gp_abi.GuestPropFn: "GUEST_PROP_FN_",
    gp_abi.GuestPropFlag: "GUEST_PROP_F_",
}

_MODULES: tuple[ModuleType, ...] = (vmmdev_abi, shfl_abi, gp_abi, status_module, layout, paging_regs)


def _module_ints(module: ModuleType) -> Iterator[tuple[str, int]]:
    for name, value in vars(module).items():
        if name.isupper() and isinstance(value, int) and not isinstance(value, (bool, Enum)):
            yield name, value


def _struct_classes(module: ModuleType) -> Iterator[type[ctypes.Structure]]:
    for name, value in vars(module).items():
        if (inspect.isclass(value) and issubclass(value, ctypes.Structure)
                and value.__module__ == module.__name__ and not name.startswith("_")):
            yield value


def _fields(struct: type[ctypes.Structure], prefix: str = "", base: int = 0) -> Iterator[tuple[str, int]]:
    """(dotted path, absolute offset) of every field, depth first; bit-fields have no byte
    offset of their own and are left out."""
    for entry in struct._fields_[:]:
        if len(entry) != 2:
            continue
        name, ctype = entry
        offset = base + getattr(struct, name).offset
        path = f"{prefix}{name}"
        yield path, offset
        if inspect.isclass(ctype) and issubclass(ctype, ctypes.Structure):
            yield from _fields(ctype, f"{path}.", offset)


def struct_constants(struct: type[ctypes.Structure]) -> dict[str, int]:
    """``<STRUCT>_SIZE`` and ``<STRUCT>_OFF_*`` for one ctypes structure."""
    stem = struct.__name__.upper()
    result = {f"{stem}_SIZE": ctypes.sizeof(struct)}
    fields = list(_fields(struct))
    leaves: dict[str, list[int]] = {}
    for path, offset in fields:
        result[f"{stem}_OFF_{path.replace('.', '_').upper()}"] = offset
        leaves.setdefault(path.rsplit(".", 1)[-1].upper(), []).append(offset)
    for leaf, offsets in leaves.items():
        if len(offsets) == 1:
            result.setdefault(f"{stem}_OFF_{leaf}", offsets[0])
    return result


def _add(table: dict[str, int], name: str, value: int, origin: str) -> None:
    if name in table and table[name] != value:
        raise RuntimeError(f"assembler constant {name} derived twice with different values ({origin})")
    table[name] = int(value)


@cache
def abi_constants() -> dict[str, int]:
    """Every ABI-derived assembler constant (without ``MODE`` and caller defines)."""
    table: dict[str, int] = {}
    for module in _MODULES:
        for name, value in _module_ints(module):
            _add(table, name, value, module.__name__)
        for struct in _struct_classes(module):
            for name, value in struct_constants(struct).items():
                _add(table, name, value, struct.__name__)
    for enum_class, prefix in _ENUM_PREFIXES.items():
        # __members__, not iteration: iterating an IntFlag skips multi-bit members and
        # aliases such as ACCESS_READWRITE or DIRECTION_BOTH.
        for member_name, member in enum_class.__members__.items():
            _add(table, f"{prefix}{member_name}", int(member.value), enum_class.__name__)
    for fn, count in shfl_abi.SHFL_CPARMS.items():
        _add(table, f"SHFL_CPARMS_{fn.name}", count, "SHFL_CPARMS")
    for gp_fn, count in gp_abi.GUEST_PROP_CPARMS.items():
        _add(table, f"GUEST_PROP_CPARMS_{gp_fn.name}", count, "GUEST_PROP_CPARMS")
    base = vmmdev_abi.VMMDEV_DEFAULT_PORT_BASE
    _add(table, "VMMDEV_PORT", base + vmmdev_abi.VMMDEV_PORT_OFF_REQUEST, "derived")
    _add(table, "VMMDEV_PORT_FAST", base + vmmdev_abi.VMMDEV_PORT_OFF_REQUEST_FAST, "derived")
    for name, value in _module_ints(pci_regs):
        _add(table, f"PCI_{name}", value, "hgcmlab.machine.pci_regs")
    return table


def program_constants(mode: int, defines: dict[str, int | str] | None) -> dict[str, int | str]:
    """The full symbol table a program sees: ABI constants, ``MODE`` and ``defines``.

    A define may be an int or an expression string keystone understands; redefining an ABI
    name or ``MODE`` is refused with ``ValueError`` (a silently shadowed wire number is the
    kind of bug this bridge exists to prevent).
    """
    table: dict[str, int | str] = dict(abi_constants())
    table["MODE"] = mode
    for name, value in (defines or {}).items():
        if name in table:
            raise ValueError(f"define {name!r} would redefine an ABI constant")
        if not name.isidentifier():
            raise ValueError(f"define name {name!r} is not an identifier")
        table[name] = value
    return table

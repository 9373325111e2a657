"""Reading a saved Shared Folders state (saved_state.py) without trusting it.

``parse`` checks the whole plain-data state, field by field, and turns it into the
records below; anything malformed (a missing field, a wrong type, a value out of range,
a path component a guest path could never have, parts that disagree with each other) is a
``StateError`` naming the place in one line.  Nothing here touches the host or a service,
so a load that fails here changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from hgcmlab.runtime.fs import Access, DirEntry, ObjInfo
from hgcmlab.runtime.paths import GuestPath
from hgcmlab.services.sharedfolders.abi import SHFL_MAX_MAPPINGS, ShflErrorStyle
from hgcmlab.services.sharedfolders.context import ClientState
from hgcmlab.services.sharedfolders.handles import HANDLE_SLOTS, HandleKind
from hgcmlab.services.sharedfolders.mappings import Mapping, SymlinkPolicy
from hgcmlab.services.sharedfolders.reproducible import NodeRow

#: Version of the state layout; ``parse`` refuses any other.
STATE_VERSION = 1
_U32 = 1 << 32
_U64 = 1 << 64
_NS_RANGE = 1 << 63  # signed 64-bit nanoseconds
_OBJ_INFO_FIELDS = tuple(f.name for f in fields(ObjInfo))


class StateError(ValueError):
    """The saved state is malformed; the message names where, in one line."""


class _Record:
    """Typed access to one saved dict; every failure is a StateError naming the place."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise StateError(f"saved Shared Folders state: {where}: not a record")
        self.data = data
        self.where = where

    def fail(self, key: str, what: str) -> StateError:
        """The error for field ``key``."""
        return StateError(f"saved Shared Folders state: {self.where}.{key}: {what}")

    def get(self, key: str) -> object:
        """The raw field (StateError when absent)."""
        if key not in self.data:
            raise self.fail(key, "missing")
        return self.data[key]

    def integer(self, key: str, low: int = 0, high: int = _U64) -> int:
        """An int in [low, high)."""
        value = self.get(key)
        if type(value) is not int or not low <= value < high:
            raise self.fail(key, f"not an integer in [{low}, {high})")
        return value

    def flag(self, key: str) -> bool:
        """A bool."""
        value = self.get(key)
        if type(value) is not bool:
            raise self.fail(key, "not a bool")
        return value

    def text(self, key: str) -> str:
        """A str."""
        value = self.get(key)
        if not isinstance(value, str):
            raise self.fail(key, "not a string")
        return value

    def items(self, key: str) -> list:
        """A list."""
        value = self.get(key)
        if not isinstance(value, list):
            raise self.fail(key, "not a list")
        return value

    def record(self, key: str) -> _Record | None:
        """A nested record, or None."""
        value = self.get(key)
        return None if value is None else _Record(value, f"{self.where}.{key}")

    def path(self, key: str) -> GuestPath:
        """A path beneath a share: host name components, never empty, '.', '..' or with
        '/' or NUL (so a tampered state cannot name anything a guest path could not)."""
        rec = _Record(self.get(key), f"{self.where}.{key}")
        parts = rec.items("components")
        for part in parts:
            if (not isinstance(part, bytes) or part in (b"", b".", b"..")
                    or b"/" in part or b"\0" in part):
                raise rec.fail("components", f"bad component {part!r}")
        return GuestPath(tuple(parts), rec.flag("trailing") and bool(parts))

    def names(self, key: str) -> list[bytes] | None:
        """A list of bytes, or None."""
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(n, bytes) for n in value):
            raise self.fail(key, "not a list of bytes")
        return value


@dataclass
class SavedMapping:
    """One mapping slot: the mapping (no host root yet), its folder's saved identity
    (device, inode), and in reproducible mode (share number, last node id, node rows)."""

    mapping: Mapping
    identity: tuple[int, int] | None
    nodes: tuple[int, int, list[NodeRow]] | None


@dataclass
class SavedObject:
    """A handle's host object: the path it was opened by, where it was at save time,
    what it was (identity, directory or not, size, modification time) and how it was
    opened (access, append)."""

    opened_as: GuestPath
    at: GuestPath
    identity: tuple[int, int]
    directory: bool
    size: int
    mtime_ns: int
    access: Access
    append: bool


@dataclass
class SavedStream:
    """A LIST stream: name snapshot (None: not taken yet) and position; a search stream
    also has its pattern and its directory (a status name when lost at save)."""

    names: list[bytes] | None
    pos: int
    pattern: str | None = None
    dir: SavedObject | str | None = None


@dataclass
class SavedHandle:
    """One live handle as saved."""

    value: int
    client_id: int
    root: int
    kind: HandleKind
    path: GuestPath
    orphan: bool
    #: The object to re-open; a status name when it was lost at save; None: unreachable.
    obj: SavedObject | str | None
    stream: SavedStream | None
    search: SavedStream | None
    saved: DirEntry | None


@dataclass
class Saved:
    """A whole parsed state: mapping table, handle table, clients with their wait tags,
    reproducible mode's (epoch, share count)."""

    version: int
    root_versions: list[int]
    slots: list[SavedMapping | None]
    cursor: int
    generations: list[tuple[int, int]]
    handles: list[SavedHandle]
    clients: list[tuple[ClientState, list[int]]]
    reproducible: tuple[int, int] | None


def parse(state: object) -> Saved:
    top = _Record(state, "top")
    if top.get("version") != STATE_VERSION:
        raise top.fail("version", f"unsupported (this build reads {STATE_VERSION})")
    maps = _Record(top.get("mappings"), "mappings")
    versions = maps.items("root_versions")
    slots = maps.items("slots")
    if len(versions) != SHFL_MAX_MAPPINGS or len(slots) != SHFL_MAX_MAPPINGS:
        raise maps.fail("slots", f"not {SHFL_MAX_MAPPINGS} entries")
    if not all(type(v) is int and 0 <= v < _U32 for v in versions):
        raise maps.fail("root_versions", "not 32-bit counters")
    hand = _Record(top.get("handles"), "handles")
    repro = top.record("reproducible")
    saved = Saved(
        version=maps.integer("version", 0, _U32),
        root_versions=versions,
        slots=[None if s is None else _parse_mapping(_Record(s, f"mappings.slots[{i}]"))
               for i, s in enumerate(slots)],
        cursor=hand.integer("cursor", 1, HANDLE_SLOTS - 1),
        generations=[_pair(g, f"handles.generations[{i}]")
                     for i, g in enumerate(hand.items("generations"))],
        handles=[_parse_handle(_Record(h, f"handles.live[{i}]"))
                 for i, h in enumerate(hand.items("live"))],
        clients=[_parse_client(_Record(c, f"clients[{i}]"))
                 for i, c in enumerate(top.items("clients"))],
        reproducible=None if repro is None else (repro.integer("epoch_ns", -_NS_RANGE, _NS_RANGE),
                                                 repro.integer("shares")),
    )
    _check_consistent(saved)
    return saved


def _check_consistent(saved: Saved) -> None:
    """What the service relies on between its parts: client ids and call tags unique
    (a call completes once), every handle owned by a saved client, each mapping's use
    count the sum of the clients' map counts."""
    ids = [client.client_id for client, _ in saved.clients]
    if len(set(ids)) != len(ids):
        raise StateError("saved Shared Folders state: clients: a client id appears twice")
    tags = [tag for _, waits in saved.clients for tag in waits]
    if len(set(tags)) != len(tags):
        raise StateError("saved Shared Folders state: clients: a call tag appears twice")
    if any(h.client_id not in ids for h in saved.handles):
        raise StateError("saved Shared Folders state: handles: a handle of an unknown client")
    uses = [0] * SHFL_MAX_MAPPINGS
    for client, _ in saved.clients:
        for root, count in client.map_counts.items():
            uses[root] += count
    for root, entry in enumerate(saved.slots):
        if uses[root] != (0 if entry is None else entry.mapping.use_count):
            raise StateError(f"saved Shared Folders state: mappings.slots[{root}]: use count "
                             "differs from the clients' map counts")


def _pair(value: object, where: str) -> tuple[int, int]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(type(v) is int and 0 <= v < _U64 for v in value)):
        raise StateError(f"saved Shared Folders state: {where}: not a pair of integers")
    return value[0], value[1]


def _ints(value: object, count: int, where: str) -> list[int]:
    if (not isinstance(value, list) or len(value) != count
            or not all(type(v) is int and -_NS_RANGE <= v < _U64 for v in value)):
        raise StateError(f"saved Shared Folders state: {where}: not {count} integers")
    return value


def _parse_mapping(rec: _Record) -> SavedMapping:
    try:
        policy = SymlinkPolicy(rec.text("symlink_policy"))
    except ValueError:
        raise rec.fail("symlink_policy", "unknown") from None
    mapping = Mapping(
        name=rec.text("name"), host_path=rec.text("host_path"), root=None,
        writable=rec.flag("writable"), auto_mount=rec.flag("auto_mount"),
        create_symlinks=rec.flag("create_symlinks"),
        auto_mount_point=rec.text("auto_mount_point"), symlink_policy=policy,
        host_case_sensitive=rec.flag("host_case_sensitive"),
        guest_case_sensitive=rec.flag("guest_case_sensitive"),
        use_count=rec.integer("use_count", 0, _U32), placeholder=rec.flag("placeholder"))
    identity = rec.get("identity")
    nodes = rec.record("nodes")
    return SavedMapping(
        mapping,
        None if identity is None else _pair(identity, f"{rec.where}.identity"),
        None if nodes is None else (
            nodes.integer("share_number"), nodes.integer("last_id"),
            [tuple(_ints(r, 7, f"{nodes.where}.rows[{i}]"))  # type: ignore[misc]
             for i, r in enumerate(nodes.items("rows"))]))


def _parse_object(rec: _Record | None) -> SavedObject | str | None:
    if rec is None:
        return None
    if "lost" in rec.data:
        return rec.text("lost")
    try:
        access = Access(rec.integer("access"))
    except ValueError:
        raise rec.fail("access", "unknown") from None
    return SavedObject(
        opened_as=rec.path("opened_as"), at=rec.path("at"),
        identity=_pair(rec.get("identity"), f"{rec.where}.identity"),
        directory=rec.flag("directory"), size=rec.integer("size"),
        mtime_ns=rec.integer("mtime_ns", -_NS_RANGE, _NS_RANGE), access=access,
        append=rec.flag("append"))


def _parse_stream(rec: _Record | None, search: bool) -> SavedStream | None:
    """A plain stream (names, position) or, with ``search``, a search stream (also its
    pattern and its own directory)."""
    if rec is None:
        return None
    stream = SavedStream(rec.names("names"), rec.integer("pos", 0, _U32))
    if search:
        pattern = rec.get("pattern")
        if pattern is not None and not isinstance(pattern, str):
            raise rec.fail("pattern", "not a string")
        stream.pattern = pattern
        stream.dir = _parse_object(rec.record("dir"))
        if stream.dir is None:
            raise rec.fail("dir", "missing")
    return stream


def _parse_entry(rec: _Record | None) -> DirEntry | None:
    if rec is None:
        return None
    info = _Record(rec.get("info"), f"{rec.where}.info")
    values = {name: info.get(name) for name in _OBJ_INFO_FIELDS}
    if set(info.data) != set(_OBJ_INFO_FIELDS) or not all(
            type(v) is (bool if name == "unix_attrs" else int) for name, v in values.items()):
        raise rec.fail("info", "not an object info record")
    name = rec.get("name")
    if not isinstance(name, bytes):
        raise rec.fail("name", "not bytes")
    return DirEntry(name, ObjInfo(**values), rec.flag("has_info"))  # type: ignore[arg-type]


def _parse_handle(rec: _Record) -> SavedHandle:
    try:
        kind = HandleKind(rec.text("kind"))
    except ValueError:
        raise rec.fail("kind", "unknown") from None
    return SavedHandle(
        value=rec.integer("value"), client_id=rec.integer("client_id", 0, _U32),
        root=rec.integer("root", 0, SHFL_MAX_MAPPINGS), kind=kind, path=rec.path("path"),
        orphan=rec.flag("orphan"), obj=_parse_object(rec.record("object")),
        stream=_parse_stream(rec.record("stream"), search=False),
        search=_parse_stream(rec.record("search"), search=True),
        saved=_parse_entry(rec.record("saved")))


def _parse_client(rec: _Record) -> tuple[ClientState, list[int]]:
    try:
        style = ShflErrorStyle(rec.integer("error_style"))
    except ValueError:
        raise rec.fail("error_style", "unknown") from None
    counts = [_pair(p, f"{rec.where}.map_counts[{i}]")
              for i, p in enumerate(rec.items("map_counts"))]
    if any(root >= SHFL_MAX_MAPPINGS for root, _ in counts):
        raise rec.fail("map_counts", "root id out of range")
    waits = rec.items("waits")
    if not all(type(t) is int for t in waits):
        raise rec.fail("waits", "not call tags")
    client = ClientState(
        rec.integer("client_id", 0, _U32), rec.integer("requestor", 0, _U32),
        utf8=rec.flag("utf8"), delimiter=rec.integer("delimiter", 0, 0x10000),
        symlinks=rec.flag("symlinks"), error_style=style,
        cancel_next_wait=rec.flag("cancel_next_wait"), map_counts=dict(counts))
    return client, waits

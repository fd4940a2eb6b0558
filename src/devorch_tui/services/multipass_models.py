"""Typed results of the multipass CLI (`--format json`), parsed from both 1.16 and 1.17-dev output.

Parsing goes by key, never by position: 1.16 prints keys sorted, 1.17-dev in insertion order plus
a ``zone`` object. Unknown keys are ignored. Numbers multipass prints as strings (``cpu_count``,
``snapshot_count``, disk bytes) become ``int`` or ``None`` when empty (the instance is not running).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

# `multipass list` prints these two states with IP addresses (MP_UTILS.is_running).
RUNNING_STATES = frozenset({"Running", "Delayed Shutdown"})
TRANSITIONAL_STATES = frozenset({"Starting", "Restarting", "Suspending"})
ALL_STATES = (
    "Running",
    "Stopped",
    "Deleted",
    "Starting",
    "Restarting",
    "Delayed Shutdown",
    "Suspending",
    "Suspended",
    "Unknown",
    "Unavailable",  # 1.17-dev only
)


class JsonFormatError(ValueError):
    """multipass printed something that is not the JSON shape it documents."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


# --------------------------------------------------------------------------- helpers


def load_json(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonFormatError(f"`multipass {what}` did not print JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise JsonFormatError(f"`multipass {what}` printed JSON that is not an object")
    return data


def _int_or_none(value: Any) -> int | None:
    """``"1932735284"`` / ``1610612736`` -> int; ``""`` / missing -> None."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None


def _str_list(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def usable_ipv4(addresses: list[str]) -> list[str]:
    """The entries that really are IPv4 addresses (drops ``N/A`` and anything else)."""
    usable = []
    for address in addresses:
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            continue
        usable.append(address)
    return usable


_VERSION_RE = re.compile(r"([0-9]+)\.([0-9]+)(?:\.([0-9]+))?")  # ASCII: \d takes other digits too


def version_tuple(text: str | None) -> tuple[int, int, int] | None:
    """``1.16.3+mac`` -> (1, 16, 3); ``1.17.0-dev.123+gabc`` -> (1, 17, 0); not a version -> None."""
    match = _VERSION_RE.match((text or "").strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


# --------------------------------------------------------------------------- version


class UpdateInfo(_Model):
    title: str = ""
    description: str = ""
    url: str = ""


class VersionInfo(_Model):
    """`multipass version --format json`. ``daemon`` is None when the daemon is unreachable."""

    client: str
    daemon: str | None = None
    update: UpdateInfo | None = None

    @property
    def client_version(self) -> tuple[int, int, int] | None:
        return version_tuple(self.client)

    @property
    def daemon_version(self) -> tuple[int, int, int] | None:
        return version_tuple(self.daemon)

    @property
    def daemon_reachable(self) -> bool:
        return self.daemon is not None

    @classmethod
    def from_json(cls, text: str) -> VersionInfo:
        data = load_json(text, "version")
        if "multipass" not in data:
            raise JsonFormatError("`multipass version` JSON has no 'multipass' key")
        update = data.get("update")
        return cls(
            client=str(data["multipass"]),
            daemon=str(data["multipassd"]) if data.get("multipassd") not in (None, "") else None,
            update=UpdateInfo(**{k: str(v) for k, v in update.items() if k in ("title", "description", "url")})
            if isinstance(update, dict)
            else None,
        )


# --------------------------------------------------------------------------- list


class Zone(_Model):
    """1.17-dev availability zone."""

    name: str = ""
    available: bool = True

    @classmethod
    def from_raw(cls, raw: Any) -> Zone | None:
        if not isinstance(raw, dict):
            return None
        return cls(name=str(raw.get("name", "")), available=bool(raw.get("available", True)))


class Instance(_Model):
    """One row of `multipass list --format json`."""

    name: str
    state: str
    ipv4: list[str] = []
    release: str = ""
    zone: Zone | None = None

    @property
    def address(self) -> str | None:
        """The first usable IPv4 address (``N/A`` and the like are skipped), or None."""
        usable = usable_ipv4(self.ipv4)
        return usable[0] if usable else None

    @property
    def is_running(self) -> bool:
        return self.state in RUNNING_STATES

    @property
    def is_stopped(self) -> bool:
        return self.state == "Stopped"

    @property
    def is_deleted(self) -> bool:
        return self.state == "Deleted"

    @property
    def is_transitional(self) -> bool:
        return self.state in TRANSITIONAL_STATES

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> Instance:
        return cls(
            name=str(raw.get("name", "")),
            state=str(raw.get("state", "Unknown")),
            ipv4=_str_list(raw.get("ipv4")),
            release=str(raw.get("release", "")),
            zone=Zone.from_raw(raw.get("zone")),
        )


def parse_list(text: str) -> list[Instance]:
    """`multipass list --format json` -> instances sorted by name (multipass prints them in no order)."""
    data = load_json(text, "list")
    rows = data.get("list")
    if not isinstance(rows, list):
        raise JsonFormatError("`multipass list` JSON has no 'list' array")
    return sorted((Instance.from_raw(row) for row in rows if isinstance(row, dict)), key=lambda item: item.name)


# --------------------------------------------------------------------------- snapshots


class SnapshotSummary(_Model):
    """One snapshot of `multipass list --snapshots --format json`."""

    instance: str
    name: str
    parent: str = ""
    comment: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.instance}.{self.name}"


def parse_snapshot_list(text: str) -> list[SnapshotSummary]:
    """`multipass list --snapshots --format json` -> snapshots sorted by instance, then name."""
    data = load_json(text, "list --snapshots")
    info = _dict(data.get("info"))
    snapshots = [
        SnapshotSummary(
            instance=instance,
            name=name,
            parent=str(_dict(raw).get("parent", "")),
            comment=str(_dict(raw).get("comment", "")),
        )
        for instance, snaps in info.items()
        for name, raw in _dict(snaps).items()
    ]
    return sorted(snapshots, key=lambda snap: (snap.instance, snap.name))


class SnapshotInfo(_Model):
    """One snapshot of `multipass info VM.SNAP --format json` (or `info --snapshots`)."""

    instance: str
    name: str
    parent: str = ""
    children: list[str] = []
    comment: str = ""
    created: str = ""  # opaque: locale-formatted by the real CLI
    cpu_count: int | None = None
    disk_space: str = ""  # human readable, e.g. "4.9GiB"
    memory_size: str = ""
    size: str = ""
    mounts: dict[str, str] = {}  # target -> source path

    @classmethod
    def from_raw(cls, instance: str, name: str, raw: dict[str, Any]) -> SnapshotInfo:
        return cls(
            instance=instance,
            name=name,
            parent=str(raw.get("parent", "")),
            children=_str_list(raw.get("children")),
            comment=str(raw.get("comment", "")),
            created=str(raw.get("created", "")),
            cpu_count=_int_or_none(raw.get("cpu_count")),
            disk_space=str(raw.get("disk_space", "")),
            memory_size=str(raw.get("memory_size", "")),
            size=str(raw.get("size", "")),
            mounts={target: str(_dict(mount).get("source_path", "")) for target, mount in _dict(raw.get("mounts")).items()},
        )


# --------------------------------------------------------------------------- info


class Mount(_Model):
    source_path: str = ""
    uid_mappings: list[str] = []
    gid_mappings: list[str] = []


class InstanceInfo(_Model):
    """One instance of `multipass info --format json`.

    Runtime fields (release, cpu_count, load, memory, disk usage, ipv4) are only filled while the
    instance runs; otherwise they are None / empty. An entry produced only by a snapshot request
    (`info vm.snap`) has ``has_details`` False and only ``snapshots``.
    """

    name: str
    state: str = ""
    image_hash: str = ""
    image_release: str = ""
    release: str = ""
    cpu_count: int | None = None
    load: list[float] = []
    memory_used: int | None = None
    memory_total: int | None = None
    disk_used: int | None = None
    disk_total: int | None = None
    ipv4: list[str] = []
    mounts: dict[str, Mount] = {}
    snapshot_count: int | None = None  # None on backends without snapshots (lxd, libvirt)
    snapshots: dict[str, SnapshotInfo] = {}
    zone: Zone | None = None

    @property
    def has_details(self) -> bool:
        return bool(self.state)

    @property
    def address(self) -> str | None:
        usable = usable_ipv4(self.ipv4)
        return usable[0] if usable else None

    @property
    def is_running(self) -> bool:
        return self.state in RUNNING_STATES

    @classmethod
    def from_raw(cls, name: str, raw: dict[str, Any]) -> InstanceInfo:
        disks = [_dict(disk) for disk in _dict(raw.get("disks")).values()]
        used = [_int_or_none(disk.get("used")) for disk in disks]
        total = [_int_or_none(disk.get("total")) for disk in disks]
        memory = _dict(raw.get("memory"))
        load = []
        for value in raw.get("load") or []:
            try:
                load.append(float(value))
            except (TypeError, ValueError):
                continue
        return cls(
            name=name,
            state=str(raw.get("state", "")),
            image_hash=str(raw.get("image_hash", "")),
            image_release=str(raw.get("image_release", "")),
            release=str(raw.get("release", "")),
            cpu_count=_int_or_none(raw.get("cpu_count")),
            load=load,
            memory_used=_int_or_none(memory.get("used")),
            memory_total=_int_or_none(memory.get("total")),
            disk_used=sum(v for v in used if v is not None) if any(v is not None for v in used) else None,
            disk_total=sum(v for v in total if v is not None) if any(v is not None for v in total) else None,
            ipv4=_str_list(raw.get("ipv4")),
            mounts={
                target: Mount(
                    source_path=str(_dict(mount).get("source_path", "")),
                    uid_mappings=_str_list(_dict(mount).get("uid_mappings")),
                    gid_mappings=_str_list(_dict(mount).get("gid_mappings")),
                )
                for target, mount in _dict(raw.get("mounts")).items()
            },
            snapshot_count=_int_or_none(raw.get("snapshot_count")),
            snapshots={
                snap: SnapshotInfo.from_raw(name, snap, _dict(snap_raw))
                for snap, snap_raw in sorted(_dict(raw.get("snapshots")).items())
            },
            zone=Zone.from_raw(raw.get("zone")),
        )


def parse_info(text: str) -> dict[str, InstanceInfo]:
    """`multipass info --format json` -> {name: InstanceInfo}, ordered by name."""
    data = load_json(text, "info")
    info = data.get("info")
    if not isinstance(info, dict):
        raise JsonFormatError("`multipass info` JSON has no 'info' object")
    return {name: InstanceInfo.from_raw(name, _dict(raw)) for name, raw in sorted(info.items())}


# --------------------------------------------------------------------------- get


# MemorySize::human_readable(): one decimal and a binary unit ("4.0GiB", "950.4MiB"), or bytes ("512B").
_HUMAN_SIZE_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KiB|MiB|GiB|TiB)?\s*")
_HUMAN_UNITS = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


def parse_human_size(text: str) -> int | None:
    """``4.0GiB`` -> bytes (to the precision multipass printed); anything else -> None."""
    match = _HUMAN_SIZE_RE.fullmatch(text or "")
    if not match:
        return None
    return round(float(match.group(1)) * _HUMAN_UNITS[match.group(2) or ""])


class InstanceResources(_Model):
    """What an instance is given (`multipass get local.VM.cpus|memory|disk`), running or not."""

    cpus: int | None = None
    memory: int | None = None
    """Bytes, as precise as `get` prints it (one decimal of the unit)."""
    disk: int | None = None

    @classmethod
    def from_settings(cls, cpus: str, memory: str, disk: str) -> InstanceResources:
        return cls(
            cpus=int(cpus) if cpus.strip().isascii() and cpus.strip().isdigit() else None,
            memory=parse_human_size(memory),
            disk=parse_human_size(disk),
        )


# --------------------------------------------------------------------------- find


class Image(_Model):
    """One image of `multipass find --format json` (key like ``22.04`` or ``daily:19.10``)."""

    name: str
    aliases: list[str] = []
    os: str = ""
    release: str = ""
    remote: str = ""
    version: str = ""
    blueprint: bool = False

    @property
    def label(self) -> str:
        return f"{self.os} {self.release}".strip()


def parse_find(text: str, *, blueprints: bool = False) -> list[Image]:
    """`multipass find --format json` -> images sorted by name (blueprints only when asked)."""
    data = load_json(text, "find")
    images = []
    sections = [("images", False)] + ([("blueprints (deprecated)", True), ("blueprints", True)] if blueprints else [])
    for key, is_blueprint in sections:
        for name, raw in _dict(data.get(key)).items():
            raw = _dict(raw)
            images.append(
                Image(
                    name=name,
                    aliases=_str_list(raw.get("aliases")),
                    os=str(raw.get("os", "")),
                    release=str(raw.get("release", "")),
                    remote=str(raw.get("remote", "")),
                    version=str(raw.get("version", "")),
                    blueprint=is_blueprint,
                )
            )
    return sorted(images, key=lambda image: (image.blueprint, image.name))

"""State and output formatting of the multipass test double (stdlib only).

Shared by the executable double (``tests/fakes/multipass``) and the pytest fixture
(``tests/fakes/multipass_fixture.py``) so both read and write the same JSON state file under the
same file lock. Nothing here runs in the background: timed transitions ("Starting" for 2 s, then
"Running") are stored as ``pending`` records with a deadline and settled whenever the state is read.

State file layout (JSON)::

    {
      "version": "1.16.3", "daemon_version": "1.16.3", "update": null,
      "daemon": "up" | "down" | "denied",
      "driver": "qemu" | "lxd",
      "delays": {"prepare": 0, "launch": 0, "start": 0, "stop": 0, "suspend": 0, "restart": 0, "delete": 0},
                 (prepare: seconds a launched instance is not listed yet, its image being fetched)
                 (any other command name: answer that many seconds late, e.g. "list": 5)
      "json_style": null | "1.16" | "1.17"   (default: from "version")
      "failures": [{"command": "info", "stderr": "...", "stdout": "", "exit_code": 2, "times": 1}],
      "instances": {"name": {...instance record, see new_instance()...}}
    }
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time

# Imported lazily or for type checking only: the double runs once per multipass call, so start-up
# time matters (pathlib, typing, hashlib, tempfile cost ~100 ms together on a busy box).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import Any

STATE_ENV = "FAKE_MULTIPASS_STATE"

KiB = 1024
MiB = 1024**2
GiB = 1024**3

RUNNING_STATES = ("Running", "Delayed Shutdown")
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
)

# src/utils/memory_size.cpp (case-insensitive, anchored: used with fullmatch). ASCII only, like
# std::regex: Python's \d and \s would also take "٣" and non-ASCII spaces.
SIZE_RE = re.compile(r"[ \t\n\r\f\v]*([0-9]+)(?:\.([0-9]+)(?=[KMG]))?(?:([KMG])(?:i?B)?|B)?[ \t\n\r\f\v]*", re.IGNORECASE)
# src/utils/utils.cpp valid_hostname() (anchored: used with fullmatch, so "vm1\n" is no name)
NAME_RE = re.compile(r"[a-zA-Z]|[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9]")


def valid_name(name: str) -> bool:
    """An instance, snapshot or clone name multipass accepts."""
    return NAME_RE.fullmatch(name) is not None


def ascii_digits(text: str) -> bool:
    """Only 0-9 (str.isdigit also takes "²" and "٣", which multipass's parsers refuse)."""
    return text.isascii() and text.isdigit()

DEFAULT_VERSION = "1.16.3"

# The images `find` offers and `launch` accepts: alias -> (release title, version)
IMAGES = {
    "20.04": ("20.04 LTS", "20250115", ("focal",)),
    "22.04": ("22.04 LTS", "20250516", ("jammy",)),
    "24.04": ("24.04 LTS", "20250516", ("noble", "lts")),
}
IMAGE_ALIASES = {
    **{key: key for key in IMAGES},
    "focal": "20.04",
    "f": "20.04",
    "jammy": "22.04",
    "j": "22.04",
    "noble": "24.04",
    "n": "24.04",
    "lts": "24.04",
    "default": "24.04",
    "": "24.04",
}
GUEST_RELEASES = {
    "20.04 LTS": "Ubuntu 20.04.6 LTS",
    "22.04 LTS": "Ubuntu 22.04.5 LTS",
    "24.04 LTS": "Ubuntu 24.04.3 LTS",
}


# --------------------------------------------------------------------------- sizes


def parse_size(text: str) -> int | None:
    """A multipass size in bytes, or None when it is not a size."""
    match = SIZE_RE.fullmatch(text or "")
    if not match:
        return None
    whole, fraction, unit = match.group(1), match.group(2), (match.group(3) or "").upper()
    multiplier = {"": 1, "K": KiB, "M": MiB, "G": GiB}[unit]
    number = int(whole) * multiplier
    if fraction:
        number += int(fraction) * multiplier // (10 ** len(fraction))
    return number


def human_size(size: int) -> str:
    """MemorySize::human_readable(): one decimal and a binary unit (``5.0GiB``, ``950.4MiB``)."""
    for unit, factor in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= factor:
            return f"{size / factor:.1f}{unit}"
    return f"{size}B"


def size_value(value: int | str) -> int:
    if isinstance(value, int):
        return value
    parsed = parse_size(value)
    if parsed is None:
        raise ValueError(f"{value!r} is not a size")
    return parsed


def image_release(release: str) -> str:
    """``22.04`` -> ``22.04 LTS``; anything else is kept as given."""
    release = release.strip()
    if release in IMAGE_ALIASES:
        return IMAGES[IMAGE_ALIASES[release]][0]
    return release


# --------------------------------------------------------------------------- Qt-style JSON


def _scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        # QJsonValue holds doubles; toJson prints the shortest form ("0" for 0.0, "0.45").
        number = float(value)
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return repr(number)
    return json.dumps(value, ensure_ascii=False)


def qt_json(value: Any, *, sort_keys: bool = True) -> str:
    """Print like QJsonDocument::toJson(Indented) in 1.16 (keys sorted, empty containers on two lines).

    With ``sort_keys=False`` keys keep insertion order, as the Boost.JSON formatter of 1.17-dev does.
    """
    return _dump(value, 0, sort_keys) + "\n"


def _dump(value: Any, level: int, sort_keys: bool) -> str:
    pad = "    " * level
    inner = pad + "    "
    if isinstance(value, dict):
        if not value:
            return "{\n" + pad + "}"
        keys = sorted(value) if sort_keys else list(value)
        items = [f"{inner}{_scalar(str(key))}: {_dump(value[key], level + 1, sort_keys)}" for key in keys]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[\n" + pad + "]"
        items = [f"{inner}{_dump(item, level + 1, sort_keys)}" for item in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return _scalar(value)


# --------------------------------------------------------------------------- records


def made_up_ip(name: str) -> str:
    import hashlib

    digest = hashlib.sha1(name.encode()).digest()
    return f"10.{118 + digest[0] % 8}.{digest[1]}.{2 + digest[2] % 250}"


def made_up_hash(seed: str) -> str:
    import hashlib

    return hashlib.sha256(seed.encode()).hexdigest()


def new_instance(
    name: str,
    *,
    state: str = "Running",
    release: str = "22.04",
    cpus: int = 1,
    memory: int | str = "1G",
    disk: int | str = "5G",
    snapshots: Any = (),
    ipv4: list[str] | None = None,
    image_hash: str | None = None,
    os_release: str | None = None,
    mounts: dict[str, Any] | None = None,
    load: list[float] | None = None,
    memory_used: int | None = None,
    disk_used: int | None = None,
    zone: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A fresh instance record with plausible, deterministic runtime numbers."""
    if state not in ALL_STATES:
        raise ValueError(f"unknown state {state!r}; one of {ALL_STATES}")
    title = image_release(release)
    memory_bytes = size_value(memory)
    disk_bytes = size_value(disk)
    record: dict[str, Any] = {
        "state": state,
        "image_release": title,
        "image_hash": image_hash or made_up_hash(title),
        "os_release": os_release if os_release is not None else GUEST_RELEASES.get(title, f"Ubuntu {title}"),
        "cpus": int(cpus),
        "memory": memory_bytes,
        "disk": disk_bytes,
        "memory_used": memory_used if memory_used is not None else min(memory_bytes, 180 * MiB + len(name) * MiB),
        "disk_used": disk_used if disk_used is not None else min(disk_bytes, 1932735284),
        "load": list(load) if load is not None else [0.08, 0.03, 0.01],
        "ipv4": list(ipv4) if ipv4 is not None else None,
        "mgmt_ip": made_up_ip(name),
        "mounts": dict(mounts or {}),
        "snapshots": {},
        "snapshot_head": "",
        "snapshot_counter": 0,
        "clone_counter": 0,
        "pending": None,
        "backing": None,
        "cloud_init": None,
        "image": release,
        "created": time.time(),
        "zone": dict(zone) if zone else None,
    }
    for snapshot in snapshots:
        spec = {"name": snapshot} if isinstance(snapshot, str) else dict(snapshot)
        add_snapshot(record, spec.pop("name", None), **spec)
    return record


def add_snapshot(
    record: dict[str, Any],
    name: str | None = None,
    *,
    comment: str = "",
    parent: str | None = None,
    created: str | float | None = None,
) -> str:
    record["snapshot_counter"] += 1
    name = name or f"snapshot{record['snapshot_counter']}"
    record["snapshots"][name] = {
        "comment": comment,
        "parent": record["snapshot_head"] if parent is None else parent,
        "created": created if created is not None else time.time(),
        "cpus": record["cpus"],
        "memory": record["memory"],
        "disk": record["disk"],
        "mounts": {target: {"source_path": mount.get("source_path", "")} for target, mount in record["mounts"].items()},
    }
    record["snapshot_head"] = name
    return name


def settle(record: dict[str, Any], now: float | None = None) -> bool:
    """Finish a timed transition whose deadline has passed. Returns True when something changed."""
    pending = record.get("pending")
    if not pending:
        return False
    if (now if now is not None else time.time()) < pending["until"]:
        return False
    record["state"] = pending["then"]
    record["pending"] = None
    return True


def settle_all(state: dict[str, Any], now: float | None = None) -> None:
    """Settle every due transition; instances whose image was being prepared become listed."""
    now = now if now is not None else time.time()
    preparing = state.setdefault("preparing", {})
    for name in [n for n, entry in preparing.items() if entry["until"] <= now]:
        state["instances"][name] = preparing.pop(name)["record"]
    for record in state["instances"].values():
        settle(record, now)


def shown_state(record: dict[str, Any]) -> str:
    """The state string multipass prints for this record right now."""
    pending = record.get("pending")
    return pending["state"] if pending else record["state"]


def current_ipv4(name: str, record: dict[str, Any]) -> list[str]:
    """IPs only while Running/Delayed Shutdown: the backing address, a set list, or a made-up 10.x one."""
    if shown_state(record) not in RUNNING_STATES:
        return []
    backing = record.get("backing")
    if backing and backing.get("ipv4"):
        return [backing["ipv4"]]
    if record.get("ipv4") is not None:
        return list(record["ipv4"])
    return [record.get("mgmt_ip") or made_up_ip(name)]


def default_state() -> dict[str, Any]:
    return {
        "version": DEFAULT_VERSION,
        "daemon_version": DEFAULT_VERSION,
        "update": None,
        "daemon": "up",
        "driver": "qemu",
        "delays": {"prepare": 0.0, "launch": 0.0, "start": 0.0, "stop": 0.0, "suspend": 0.0, "restart": 0.0, "delete": 0.0},
        "failures": [],
        "instances": {},
        "preparing": {},  # name -> {"until": t, "record": {...}}: being launched, not listed yet
    }


# --------------------------------------------------------------------------- the store


class StateStore:
    """The JSON state file, read and written under an exclusive ``flock`` on ``<state>.lock``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.folder = os.path.dirname(self.path)
        self.lock_path = self.path + ".lock"
        self.calls_path = self.path + ".calls.jsonl"

    @property
    def scratch_root(self) -> Path:
        """Per-instance folders where `exec` runs commands of instances without a backing sshd."""
        from pathlib import Path

        return Path(self.path + ".d")

    def scratch_dir(self, name: str) -> Path:
        """The instance's "/" for unbacked instances (with /home/ubuntu, where exec starts)."""
        folder = self.scratch_root / "instances" / name
        (folder / "home" / "ubuntu").mkdir(parents=True, exist_ok=True)
        return folder

    def scratch_path(self, name: str, inner: str) -> Path:
        """An instance path (absolute, or relative to /home/ubuntu) inside the scratch folder."""
        root = self.scratch_dir(name)
        base = root if inner.startswith("/") else root / "home" / "ubuntu"
        return base / inner.lstrip("/")

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """Yield the state (settled) for reading and writing; it is saved when the block ends."""
        os.makedirs(self.folder, exist_ok=True)
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._read()
                before = json.dumps(state, sort_keys=True)
                settle_all(state)
                try:
                    yield state
                finally:  # also when the command fails: a consumed injected failure must be saved
                    if json.dumps(state, sort_keys=True) != before:
                        self._write(state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> dict[str, Any]:
        """A settled copy of the state (the file is not changed)."""
        with open(self._ensure_lock(), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            try:
                state = self._read()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        settle_all(state)
        return state

    def _ensure_lock(self) -> str:
        os.makedirs(self.folder, exist_ok=True)
        return self.lock_path

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return default_state()
        state = default_state()
        state.update(json.loads(text) if text.strip() else {})
        return state

    def _write(self, state: dict[str, Any]) -> None:
        tmp = f"{self.path}.{os.getpid()}.tmp"  # writers hold the lock: one at a time
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=1)
        os.replace(tmp, self.path)

    def log_call(self, argv: list[str]) -> None:
        os.makedirs(self.folder, exist_ok=True)
        line = json.dumps({"argv": argv, "time": time.time()}) + "\n"
        fd = os.open(self.calls_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def calls(self) -> list[list[str]]:
        try:
            with open(self.calls_path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line)["argv"] for line in lines if line.strip()]

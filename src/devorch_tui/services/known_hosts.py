"""Pinned SSH host keys (trust on first use) in devorch-tui's own known_hosts file.

The file lives in the state folder (``settings.paths.known_hosts``), in OpenSSH format so ``ssh -o
UserKnownHostsFile=...`` can read it too::

    [127.0.0.5]:2222 ssh-ed25519 AAAAC3Nz... dev-python

The first connection to a host records the key it presents; later connections accept only that key.
A changed key is refused until the user forgets the host (``devorch-tui forget-host TARGET``); the
trailing comment names the VM so a deleted VM can still be forgotten by name.

This module works on text only; the executor turns the lines into asyncssh keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from devorch_tui.errors import DevorchError


class KnownHostsError(DevorchError):
    """The known_hosts file cannot be read or written."""


def host_pattern(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts: ``host`` on port 22, else ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


@dataclass(frozen=True)
class PinnedKey:
    pattern: str
    key_type: str
    key_data: str
    label: str = ""

    @property
    def openssh(self) -> str:
        """``TYPE BASE64`` as asyncssh.import_public_key accepts it."""
        return f"{self.key_type} {self.key_data}"

    def line(self) -> str:
        return " ".join(part for part in (self.pattern, self.key_type, self.key_data, self.label) if part)


def _parse(line: str) -> PinnedKey | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#") or stripped.startswith("@"):
        return None
    parts = stripped.split(None, 3)
    if len(parts) < 3:
        return None
    return PinnedKey(parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else "")


class KnownHosts:
    """The pinned keys in one known_hosts file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def from_settings(cls, settings) -> KnownHosts:  # noqa: ANN001
        return cls(settings.paths.known_hosts)

    def _lines(self) -> list[str]:
        try:
            return self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise KnownHostsError(
                f"cannot read the pinned host keys in {self.path}: {exc}",
                hint=f"check the file's permissions, or move {self.path} away to trust hosts anew",
            ) from None

    def _write(self, lines: list[str]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "w", encoding="utf-8") as handle:
                handle.write("".join(f"{line}\n" for line in lines))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise KnownHostsError(
                f"cannot write the pinned host keys to {self.path}: {exc.strerror or exc}",
                hint="check that the state folder is writable (setting state_dir)",
            ) from None

    def entries(self) -> list[PinnedKey]:
        return [entry for entry in map(_parse, self._lines()) if entry is not None]

    def lookup(self, host: str, port: int) -> list[PinnedKey]:
        """The keys pinned for ``host:port`` (an empty list means: never seen, trust on first use)."""
        pattern = host_pattern(host, port)
        return [entry for entry in self.entries() if pattern in entry.pattern.split(",")]

    def pin(self, host: str, port: int, openssh_key: str, label: str = "") -> PinnedKey:
        """Record ``openssh_key`` (``TYPE BASE64 [comment]``) as the key of ``host:port``."""
        parts = openssh_key.split()
        if len(parts) < 2:
            raise KnownHostsError(f"not an OpenSSH public key: {openssh_key[:40]!r}")
        label = "".join(ch if ch.isprintable() and not ch.isspace() else "_" for ch in label)
        entry = PinnedKey(host_pattern(host, port), parts[0], parts[1], label)
        lines = self._lines()
        for line in lines:
            existing = _parse(line)
            if existing is not None and (existing.pattern, existing.key_type, existing.key_data) == (
                entry.pattern,
                entry.key_type,
                entry.key_data,
            ):
                return existing  # already pinned (whatever its label)
        self._write([*lines, entry.line()])
        return entry

    def forget(self, host: str, port: int | None = None) -> list[PinnedKey]:
        """Remove the keys of ``host`` (every port unless ``port``), or of the VM labelled ``host``.

        Returns what was removed (empty when nothing matched).
        """
        wanted = {host_pattern(host, port)} if port is not None else {host, f"[{host}]"}
        kept: list[str] = []
        removed: list[PinnedKey] = []
        for line in self._lines():
            entry = _parse(line)
            if entry is not None and _matches(entry, wanted, host, port):
                removed.append(entry)
            else:
                kept.append(line)
        if removed:
            self._write(kept)
        return removed


def _matches(entry: PinnedKey, wanted: set[str], host: str, port: int | None) -> bool:
    if entry.label == host:
        return True
    for pattern in entry.pattern.split(","):
        if pattern in wanted:
            return True
        if port is None and pattern.startswith(f"[{host}]:"):
            return True
    return False

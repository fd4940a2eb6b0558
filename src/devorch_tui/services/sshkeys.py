"""The dedicated SSH key pair devorch-tui uses for VMs (ed25519, private key 0600)."""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from devorch_tui.errors import DevorchError, ValidationError
from devorch_tui.services import procs
from devorch_tui.services.validation import validate_ssh_public_key


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    public_text: str


class KeyError_(DevorchError):
    """The dedicated key could not be made or read."""


def public_path(private: Path) -> Path:
    return private.with_name(private.name + ".pub")


def read_keypair(private: Path) -> KeyPair | None:
    """The existing pair at ``private``, or None when there is none yet.

    A public half that is not a valid key line is a KeyError_ naming the .pub file and how to remake it.
    """
    pub = public_path(private)
    if not private.is_file() or not pub.is_file():
        return None
    try:
        text = pub.read_text(encoding="utf-8")
        return KeyPair(private, pub, validate_ssh_public_key(text, field=str(pub)))
    except (ValidationError, UnicodeDecodeError, OSError) as exc:
        reason = exc.reason if isinstance(exc, ValidationError) else "is not a readable text file"
        raise KeyError_(
            f"the public key {pub} {reason}",
            hint=f"remake it from the private key: `ssh-keygen -y -f {shlex.quote(str(private))} > {shlex.quote(str(pub))}` "
            "(or `devorch-tui keygen --force` for a new pair; VMs that trust the old key lose access)",
        ) from None


def key_problems(private: Path) -> list[str]:
    """What is wrong with an existing pair (missing public half, loose permissions), in plain words."""
    problems = []
    if not private.is_file():
        return [f"no private key at {private}"]
    if not public_path(private).is_file():
        problems.append(f"public key {public_path(private)} is missing")
    mode = private.stat().st_mode & 0o777
    if mode & 0o077:
        problems.append(f"private key {private} has mode {mode:o}; it must be 600")
    return problems


async def generate_keypair(private: Path, *, comment: str | None = None, overwrite: bool = False) -> KeyPair:
    """Create an ed25519 pair at ``private`` (0600) and ``private.pub`` (0644).

    An existing key is kept unless ``overwrite``: losing it would lock the user out of their VMs.
    """
    existing = None if overwrite else read_keypair(private)
    if existing:
        return existing
    if private.exists() and not overwrite:
        raise KeyError_(
            f"{private} exists but its public half is missing or damaged",
            hint=f"move {private} away, or regenerate it with `ssh-keygen -y -f {private} > {public_path(private)}`",
        )
    comment = comment or f"devorch-tui {getpass.getuser()}@{socket.gethostname()}"
    try:
        private.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(private.parent, 0o700)
    except OSError as exc:
        raise KeyError_(f"cannot create {private.parent}: {exc.strerror}", hint="check the folder's permissions") from None
    for path in (private, public_path(private)):
        path.unlink(missing_ok=True)
    if shutil.which("ssh-keygen"):
        result = await procs.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(private)], timeout=30
        )
        if not result.ok:
            raise KeyError_(f"ssh-keygen failed: {result.stderr.strip()}", hint="check that the folder is writable")
    else:
        _generate_with_asyncssh(private, comment)
    os.chmod(private, 0o600)
    os.chmod(public_path(private), 0o644)
    pair = read_keypair(private)
    if pair is None:  # pragma: no cover - ssh-keygen said ok but wrote nothing
        raise KeyError_(f"no key was written to {private}", hint="run ssh-keygen by hand to see why")
    return pair


def _generate_with_asyncssh(private: Path, comment: str) -> None:
    import asyncssh  # lazy: costs start-up time

    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.export_private_key())
    public_path(private).write_bytes(key.export_public_key())

r"""Validation of user-given values: the one place for each rule.

Used by the .env editor, the multipass client (before it calls multipass), the launch/provision
forms and the CLI. Every function returns the normalised value or raises ValidationError with a
message saying what is wrong and how to fix it. Numbers are ASCII digits only (``[0-9]``, never
``\d`` or ``isdigit()``, which accept other scripts' digits and superscripts). A message shows the
value only when its field is not secret-looking (``shown_value``).
"""

from __future__ import annotations

import base64
import binascii
import re
import struct

from devorch_tui.errors import ValidationError
from devorch_tui.services.secrets import is_secret_name

# multipass src/utils/utils.cpp valid_hostname(); same rule for snapshot and clone names.
VM_NAME_RE = re.compile(r"^([a-zA-Z]|[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9])$")
VM_NAME_MAX = 63
VM_NAME_RULE = (
    "use letters, digits and hyphens only, start with a letter, end with a letter or digit, "
    f"at most {VM_NAME_MAX} characters (no dots or underscores)"
)

# multipass src/utils/memory_size.cpp, case-insensitive and anchored; ASCII only, bounded digit runs.
SIZE_RE = re.compile(r"([0-9]{1,18})(?:\.([0-9]{1,9})(?=[KMG]))?(?:([KMG])(?:i?B)?|B)?", re.IGNORECASE | re.ASCII)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
MIN_MEMORY = "512M"
MIN_DISK = "1G"

EMAIL_RE = re.compile(r"[^@\s<>\"'\x00-\x1f\x7f]+@[^@\s<>\"'\x00-\x1f\x7f]+\.[^@\s<>\"'.\x00-\x1f\x7f]+")
CPUS_RE = re.compile(r"[0-9]{1,4}")

SSH_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)


def shown_value(field: str, value: str, limit: int = 40) -> str:
    """``value`` as an error message may show it: quoted and shortened, or not at all for a secret field."""
    if is_secret_name(field):
        return "the value"
    return repr(value if len(value) <= limit else value[:limit] + "…")


def validate_vm_name(name: str, *, field: str = "VM name") -> str:
    """A multipass instance (or snapshot / clone) name."""
    name = name.strip()
    if not name:
        raise ValidationError(field, "is empty", hint=VM_NAME_RULE)
    if len(name) > VM_NAME_MAX:
        raise ValidationError(field, f"{shown_value(field, name, 20)} is {len(name)} characters long", hint=VM_NAME_RULE)
    if not VM_NAME_RE.fullmatch(name):
        raise ValidationError(field, f"{shown_value(field, name)} is not a valid name", hint=VM_NAME_RULE)
    return name


def parse_size(value: str, *, field: str = "size") -> int:
    """A multipass size (``4G``, ``512M``, ``1.5G``, ``2GiB``, ``1073741824``) in bytes."""
    match = SIZE_RE.fullmatch((value or "").strip())
    if not match:
        raise ValidationError(
            field,
            f"{shown_value(field, value or '')} is not a size",
            hint="write a number with a unit, like 512M, 4G or 1.5G (K, M, G; optional B or iB)",
        )
    whole, fraction, unit = match.group(1), match.group(2), (match.group(3) or "").upper()
    multiplier = _UNITS[unit]
    number = int(whole) * multiplier
    if fraction:
        number += int(fraction) * multiplier // (10 ** len(fraction))
    return number


def validate_size(value: str, *, minimum: str, field: str = "size") -> str:
    """A size no smaller than ``minimum``; returns it stripped."""
    size = parse_size(value, field=field)
    if size < parse_size(minimum):
        raise ValidationError(field, f"{shown_value(field, value.strip())} is below the minimum of {minimum}", hint=f"use {minimum} or more")
    return value.strip()


def validate_memory(value: str, *, field: str = "VM_MEMORY") -> str:
    return validate_size(value, minimum=MIN_MEMORY, field=field)


def validate_disk(value: str, *, field: str = "VM_DISK") -> str:
    return validate_size(value, minimum=MIN_DISK, field=field)


def validate_cpus(value: str | int, *, field: str = "VM_CPUS") -> int:
    text = str(value).strip()
    if not CPUS_RE.fullmatch(text) or int(text) < 1:
        raise ValidationError(field, f"{shown_value(field, text)} is not a CPU count", hint="use a whole number from 1 to 9999, in digits 0-9")
    return int(text)


def validate_email(value: str, *, field: str = "GIT_EMAIL") -> str:
    value = value.strip()
    if not EMAIL_RE.fullmatch(value):
        raise ValidationError(field, f"{shown_value(field, value)} is not an email address", hint="write it as name@example.com")
    return value


_PUB_HINT = "paste the whole line of the .pub file: type, key and comment, e.g. 'ssh-ed25519 AAAAC3Nza... you@host'"
_ECDSA_POINT_BYTES = {"nistp256": 65, "nistp384": 97, "nistp521": 133}
_MIN_RSA_BITS = 1024


class _KeyBlob:
    """Reads the SSH wire format (RFC 4251): uint32-length-prefixed strings."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.offset = 0

    def string(self) -> bytes:
        if self.offset + 4 > len(self.blob):
            raise _CutOff
        (length,) = struct.unpack_from(">I", self.blob, self.offset)
        start, end = self.offset + 4, self.offset + 4 + length
        if end > len(self.blob):
            raise _CutOff
        self.offset = end
        return self.blob[start:end]

    @property
    def done(self) -> bool:
        return self.offset == len(self.blob)


class _CutOff(Exception):
    """The key body ends before its last field."""


def _key_body_problem(key_type: str, blob: bytes) -> str | None:
    """What is wrong with the decoded body of a ``key_type`` key (None when its structure is right)."""
    reader = _KeyBlob(blob)
    try:
        embedded = reader.string().decode("ascii")
    except (_CutOff, UnicodeDecodeError):
        return "has a damaged key body (no key type inside)"
    if embedded != key_type:
        return f"says {key_type} but its body is a {embedded if embedded in SSH_KEY_TYPES else 'different'} key"
    if reader.done:
        return "holds only the key type, not the key itself"
    try:
        if key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
            if len(reader.string()) != 32:
                return "has a damaged key body (an ed25519 key is 32 bytes)"
        elif key_type == "ssh-rsa":
            exponent, modulus = reader.string(), reader.string()
            if not exponent.strip(b"\0") or not modulus.strip(b"\0"):
                return "has a damaged key body (empty RSA numbers)"
            bits = int.from_bytes(modulus, "big").bit_length()
            if bits < _MIN_RSA_BITS:
                return f"is a {bits}-bit RSA key; OpenSSH refuses RSA keys under {_MIN_RSA_BITS} bits"
        else:  # ecdsa-sha2-nistpNNN, sk-ecdsa-sha2-nistp256@openssh.com
            curve = reader.string().decode("ascii", "replace")
            if curve not in key_type or curve not in _ECDSA_POINT_BYTES:
                return f"says {key_type} but its body names the curve {curve[:20]!r}"
            point = reader.string()
            if len(point) != _ECDSA_POINT_BYTES[curve] or point[:1] != b"\x04":
                return "has a damaged key body (not a valid curve point)"
        if key_type.startswith("sk-"):
            reader.string()  # the FIDO application, e.g. "ssh:"
    except _CutOff:
        return "is cut off: the key body ends early"
    if not reader.done:
        return "has extra bytes after the key"
    return None


def validate_ssh_public_key(value: str, *, field: str = "SSH_PUBLIC_KEY") -> str:
    """One OpenSSH public key line, ``<type> <base64 body> [comment]``, whose body is a well-formed key
    of that type (decoded and checked field by field, not only its first bytes)."""
    value = value.strip()
    if not value:
        raise ValidationError(field, "is empty", hint="press the generate-key binding or paste the contents of a .pub file")
    if "PRIVATE KEY" in value:
        raise ValidationError(
            field,
            "looks like a PRIVATE key; it must never be pasted here",
            hint="paste the .pub file (one line starting with ssh-ed25519 or ssh-rsa)",
        )
    if "\n" in value or "\r" in value:
        raise ValidationError(field, "holds more than one line", hint="paste exactly one key: the single line of one .pub file")
    parts = value.split()
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise ValidationError(field, "is not an OpenSSH public key", hint=_PUB_HINT)
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(field, "is cut off or damaged (its key body is not valid base64)", hint=_PUB_HINT) from None
    problem = _key_body_problem(parts[0], blob)
    if problem is not None:
        raise ValidationError(field, problem, hint=_PUB_HINT)
    return value

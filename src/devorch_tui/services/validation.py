"""Validation of user-given values: the one place for each rule.

Used by the .env editor, the multipass client (before it calls multipass), the launch/provision
forms and the CLI. Every function returns the normalised value or raises ValidationError with a
message saying what is wrong and how to fix it.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct

from devorch_tui.errors import ValidationError

# multipass src/utils/utils.cpp valid_hostname(); same rule for snapshot and clone names.
VM_NAME_RE = re.compile(r"^([a-zA-Z]|[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9])$")
VM_NAME_MAX = 63
VM_NAME_RULE = (
    "use letters, digits and hyphens only, start with a letter, end with a letter or digit, "
    f"at most {VM_NAME_MAX} characters (no dots or underscores)"
)

# multipass src/utils/memory_size.cpp, case-insensitive and anchored.
SIZE_RE = re.compile(r"^\s*(\d+)(?:\.(\d+)(?=[KMG]))?(?:([KMG])(?:i?B)?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
MIN_MEMORY = "512M"
MIN_DISK = "1G"

EMAIL_RE = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"'.]+$")

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


def validate_vm_name(name: str, *, field: str = "VM name") -> str:
    """A multipass instance (or snapshot / clone) name."""
    name = name.strip()
    if not name:
        raise ValidationError(field, "is empty", hint=VM_NAME_RULE)
    if len(name) > VM_NAME_MAX:
        raise ValidationError(field, f"{name[:20]}... is {len(name)} characters long", hint=VM_NAME_RULE)
    if not VM_NAME_RE.match(name):
        raise ValidationError(field, f"{name!r} is not a valid name", hint=VM_NAME_RULE)
    return name


def parse_size(value: str, *, field: str = "size") -> int:
    """A multipass size (``4G``, ``512M``, ``1.5G``, ``2GiB``, ``1073741824``) in bytes."""
    match = SIZE_RE.match(value or "")
    if not match:
        raise ValidationError(
            field,
            f"{value!r} is not a size",
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
        raise ValidationError(field, f"{value.strip()} is below the minimum of {minimum}", hint=f"use {minimum} or more")
    return value.strip()


def validate_memory(value: str, *, field: str = "VM_MEMORY") -> str:
    return validate_size(value, minimum=MIN_MEMORY, field=field)


def validate_disk(value: str, *, field: str = "VM_DISK") -> str:
    return validate_size(value, minimum=MIN_DISK, field=field)


def validate_cpus(value: str | int, *, field: str = "VM_CPUS") -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise ValidationError(field, f"{text!r} is not a CPU count", hint="use a whole number, 1 or more")
    return int(text)


def validate_email(value: str, *, field: str = "GIT_EMAIL") -> str:
    value = value.strip()
    if not EMAIL_RE.match(value):
        raise ValidationError(field, f"{value!r} is not an email address", hint="write it as name@example.com")
    return value


def validate_ssh_public_key(value: str, *, field: str = "SSH_PUBLIC_KEY") -> str:
    """An OpenSSH public key line: ``<type> <base64 blob> [comment]`` whose blob names the same type."""
    value = value.strip()
    if not value:
        raise ValidationError(field, "is empty", hint="press the generate-key binding or paste the contents of a .pub file")
    if "PRIVATE KEY" in value:
        raise ValidationError(
            field,
            "looks like a PRIVATE key; it must never be pasted here",
            hint="paste the .pub file (one line starting with ssh-ed25519 or ssh-rsa)",
        )
    parts = value.split()
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise ValidationError(
            field,
            "is not an OpenSSH public key",
            hint="it is one line like 'ssh-ed25519 AAAAC3Nza... you@host' (the contents of a .pub file)",
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        embedded = blob[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        raise ValidationError(field, "has a damaged key body (not valid base64)", hint="copy the .pub file again, whole") from None
    if embedded != parts[0]:
        raise ValidationError(
            field, f"says {parts[0]} but its body is a {embedded or 'unknown'} key", hint="copy the .pub file again, whole"
        )
    return value

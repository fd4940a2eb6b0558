from __future__ import annotations

import base64
import struct

import pytest

from devorch_tui.errors import ValidationError
from devorch_tui.services import validation as v


@pytest.mark.parametrize("name", ["a", "dev-x", "Golden1", "a" * 63, "x1-2-y"])
def test_valid_vm_names(name: str) -> None:
    assert v.validate_vm_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "is empty"),
        ("1abc", "not a valid name"),
        ("bad_name", "not a valid name"),
        ("sbuild-docs-24.04", "not a valid name"),
        ("ends-", "not a valid name"),
        ("-starts", "not a valid name"),
        ("a" * 64, "64 characters"),
    ],
)
def test_invalid_vm_names_explain_the_rule(name: str, why: str) -> None:
    with pytest.raises(ValidationError) as info:
        v.validate_vm_name(name)
    assert why in info.value.message
    assert "start with a letter" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1073741824", 1024**3),
        ("4G", 4 * 1024**3),
        ("4g", 4 * 1024**3),
        ("512M", 512 * 1024**2),
        ("512MB", 512 * 1024**2),
        ("2GiB", 2 * 1024**3),
        ("1.5G", 1024**3 + 512 * 1024**2),
        (" 8K ", 8 * 1024),
        ("100B", 100),
    ],
)
def test_parse_size_follows_multipass_syntax(text: str, expected: int) -> None:
    assert v.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "4X", "G", "1.5", "-1G", "4 G", "4GB2"])
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        v.parse_size(text, field="VM_MEMORY")
    assert info.value.field == "VM_MEMORY"
    assert "512M" in (info.value.hint or "")


def test_memory_and_disk_minimums() -> None:
    assert v.validate_memory("512M") == "512M"
    assert v.validate_disk("1G") == "1G"
    with pytest.raises(ValidationError, match="below the minimum of 512M"):
        v.validate_memory("256M")
    with pytest.raises(ValidationError, match="below the minimum of 1G"):
        v.validate_disk("900M")


@pytest.mark.parametrize("value", ["1", "16", " 2 "])
def test_cpus_ok(value: str) -> None:
    assert v.validate_cpus(value) == int(value)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", ""])
def test_cpus_rejected(value: str) -> None:
    with pytest.raises(ValidationError, match="not a CPU count"):
        v.validate_cpus(value)


def test_email() -> None:
    assert v.validate_email(" ada@example.org ") == "ada@example.org"
    for bad in ["ada", "ada@", "@example.org", "ada@example", "a b@example.org"]:
        with pytest.raises(ValidationError, match="not an email address"):
            v.validate_email(bad)


def _pub(key_type: str, embedded: str | None = None) -> str:
    embedded = embedded or key_type
    blob = struct.pack(">I", len(embedded)) + embedded.encode() + b"\x00" * 32
    return f"{key_type} {base64.b64encode(blob).decode()} me@host"


def test_ssh_public_key_accepts_a_real_shape() -> None:
    key = _pub("ssh-ed25519")
    assert v.validate_ssh_public_key(key + "\n") == key


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "is empty"),
        ("hello", "not an OpenSSH public key"),
        ("ssh-ed25519 !!!notbase64", "damaged key body"),
        (_pub("ssh-ed25519", "ssh-rsa"), "body is a ssh-rsa key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc", "PRIVATE key"),
    ],
)
def test_ssh_public_key_rejections(value: str, why: str) -> None:
    with pytest.raises(ValidationError) as info:
        v.validate_ssh_public_key(value)
    assert why in info.value.message

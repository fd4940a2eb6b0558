from __future__ import annotations

import base64
import shutil
import struct
import subprocess

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


@pytest.mark.parametrize(
    "text",
    ["", "4X", "G", "1.5", "-1G", "4 G", "4GB2", "٤G", "４G", "4\u212a", "²G", "9" * 5000 + "G", "1." + "5" * 5000 + "G"],
)
def test_parse_size_rejects_garbage(text: str) -> None:
    """Only ASCII digits and units: Arabic-Indic, full-width and superscript digits, the Kelvin sign
    (which matches K case-insensitively) and digit runs too long for int() are refused, never a crash."""
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


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "", "²", "٣", "１", "2\u00b3", "99999", "9" * 5000])
def test_cpus_rejected(value: str) -> None:
    """ASCII digits only: `²`.isdigit() is true but int('²') raises; `٣` would reach multipass."""
    with pytest.raises(ValidationError, match="not a CPU count"):
        v.validate_cpus(value)


def test_messages_never_show_a_secret_fields_value() -> None:
    for check in (v.validate_cpus, v.validate_email, v.validate_vm_name, v.parse_size):
        with pytest.raises(ValidationError) as info:
            check("Hunter2_SECRET!", field="DB_PASSWORD")
        assert "Hunter2" not in info.value.message and "Hunter2" not in (info.value.hint or "")
    with pytest.raises(ValidationError) as info:
        v.validate_email("Hunter2-SECRET")  # a public field shows what was typed
    assert "Hunter2-SECRET" in info.value.message


def test_email() -> None:
    assert v.validate_email(" ada@example.org ") == "ada@example.org"
    for bad in ["ada", "ada@", "@example.org", "ada@example", "a b@example.org"]:
        with pytest.raises(ValidationError, match="not an email address"):
            v.validate_email(bad)


@pytest.fixture(scope="module")
def real_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Public key lines made by the real ssh-keygen, one per key type it makes."""
    folder = tmp_path_factory.mktemp("keys")
    keys = {}
    for name, args in {"ed25519": [], "rsa": ["-b", "2048"], "ecdsa256": ["-t", "ecdsa", "-b", "256"], "ecdsa521": ["-t", "ecdsa", "-b", "521"]}.items():
        path = folder / name
        key_type = [] if "-t" in args else ["-t", name]
        subprocess.run(["ssh-keygen", "-q", *key_type, *args, "-N", "", "-C", "me@host", "-f", str(path)], check=True, timeout=60)
        keys[name] = path.with_suffix(".pub").read_text()
    return keys


def _blob(*fields: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(field)) + field for field in fields)


def _line(key_type: str, blob: bytes) -> str:
    return f"{key_type} {base64.b64encode(blob).decode()} me@host"


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen (openssh-client)")
@pytest.mark.parametrize("name", ["ed25519", "rsa", "ecdsa256", "ecdsa521"])
def test_ssh_public_key_accepts_real_keys(real_keys: dict[str, str], name: str) -> None:
    assert v.validate_ssh_public_key(real_keys[name]) == real_keys[name].strip()


ED25519 = _line("ssh-ed25519", _blob(b"ssh-ed25519", bytes(range(32))))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "is empty"),
        ("hello", "not an OpenSSH public key"),
        ("ssh-ed25519 !!!notbase64", "not valid base64"),
        (_line("ssh-ed25519", _blob(b"ssh-rsa", b"\x01\x00\x01", b"\x01" * 256)), "body is a ssh-rsa key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc", "PRIVATE key"),
        # The audit's cases: the type header alone, a key cut short, a second key on another line.
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "only the key type"),
        (ED25519.split()[0] + " " + ED25519.split()[1][:40], "cut off"),
        (ED25519 + "\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH8fmxB3hyKmJ36jbvsFCMJrPEz6nq8Y8bk6qGW7PBRm x", "more than one line"),
        (_line("ssh-ed25519", _blob(b"ssh-ed25519", b"\x00" * 31)), "32 bytes"),
        (_line("ssh-ed25519", _blob(b"ssh-ed25519", b"\x00" * 32) + b"junk"), "extra bytes"),
        (_line("ssh-rsa", _blob(b"ssh-rsa", b"\x01\x00\x01")), "cut off"),
        (_line("ssh-rsa", _blob(b"ssh-rsa", b"\x01\x00\x01", b"\xff" * 64)), "512-bit RSA key"),
        (_line("ecdsa-sha2-nistp256", _blob(b"ecdsa-sha2-nistp256", b"nistp384", b"\x04" + b"\x00" * 96)), "curve 'nistp384'"),
        (_line("ecdsa-sha2-nistp256", _blob(b"ecdsa-sha2-nistp256", b"nistp256", b"\x04" + b"\x00" * 10)), "curve point"),
    ],
)
def test_ssh_public_key_rejections(value: str, why: str) -> None:
    with pytest.raises(ValidationError) as info:
        v.validate_ssh_public_key(value)
    assert why in info.value.message
    if value:
        assert info.value.hint  # says how to fix it


def test_ssh_public_key_body_is_checked_field_by_field() -> None:
    assert v.validate_ssh_public_key(ED25519 + "\n") == ED25519
    truncated_real = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH8fmxB3hyKmJ36jbvsFCMJrPEz6nq8Y8bk6"
    with pytest.raises(ValidationError, match="cut off"):
        v.validate_ssh_public_key(truncated_real)

from __future__ import annotations

import shutil
import stat

import pytest

from devorch_tui.services import sshkeys
from devorch_tui.services.validation import validate_ssh_public_key


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_generate_keypair_writes_0600_private_key(tmp_path) -> None:
    private = tmp_path / "ssh" / "id_ed25519"
    pair = await sshkeys.generate_keypair(private, comment="test")
    assert mode(private) == 0o600
    assert mode(private.parent) == 0o700
    assert pair.public_text.startswith("ssh-ed25519 ")
    assert pair.public_text.endswith(" test")
    assert validate_ssh_public_key(pair.public_text) == pair.public_text
    assert "PRIVATE KEY" in private.read_text()
    assert sshkeys.key_problems(private) == []


async def test_existing_key_is_kept_unless_overwrite(tmp_path) -> None:
    private = tmp_path / "id_ed25519"
    first = await sshkeys.generate_keypair(private)
    again = await sshkeys.generate_keypair(private)
    assert again.public_text == first.public_text
    replaced = await sshkeys.generate_keypair(private, overwrite=True)
    assert replaced.public_text != first.public_text


async def test_private_key_without_public_half_is_not_clobbered(tmp_path) -> None:
    private = tmp_path / "id_ed25519"
    await sshkeys.generate_keypair(private)
    sshkeys.public_path(private).unlink()
    before = private.read_bytes()
    with pytest.raises(sshkeys.KeyError_) as info:
        await sshkeys.generate_keypair(private)
    assert "public half is missing" in info.value.message
    assert "ssh-keygen -y" in (info.value.hint or "")
    assert private.read_bytes() == before


async def test_asyncssh_fallback_when_ssh_keygen_is_missing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    private = tmp_path / "id_ed25519"
    pair = await sshkeys.generate_keypair(private, comment="fallback")
    assert mode(private) == 0o600
    assert pair.public_text.startswith("ssh-ed25519 ")


def test_key_problems_reports_loose_permissions(tmp_path) -> None:
    private = tmp_path / "id_ed25519"
    assert sshkeys.key_problems(private) == [f"no private key at {private}"]
    private.write_text("x")
    private.chmod(0o644)
    problems = sshkeys.key_problems(private)
    assert any("must be 600" in p for p in problems)
    assert any("public key" in p and "missing" in p for p in problems)


def test_a_damaged_public_key_names_its_file_and_the_fix(tmp_path, capsys, monkeypatch) -> None:
    """Not the .env field message (`SSH_PUBLIC_KEY: ...`): the .pub file, and how to remake it."""
    import asyncio

    from devorch_tui.cli import main

    monkeypatch.setenv("DEVORCH_DATA_DIR", str(tmp_path / "data"))
    from devorch_tui.config import load_settings

    private = load_settings().paths.dedicated_key
    asyncio.run(sshkeys.generate_keypair(private))
    pub = sshkeys.public_path(private)
    pub.write_text(pub.read_text()[:40] + "\n")  # cut short
    with pytest.raises(sshkeys.KeyError_) as info:
        sshkeys.read_keypair(private)
    assert str(pub) in info.value.message and "SSH_PUBLIC_KEY" not in info.value.message
    assert f"ssh-keygen -y -f {private}" in (info.value.hint or "") and "--force" in (info.value.hint or "")
    before = private.read_bytes()
    assert main(["keygen"]) == 1
    err = capsys.readouterr().err
    assert f"error: the public key {pub}" in err and "fix: remake it" in err and "Traceback" not in err
    assert private.read_bytes() == before  # nothing replaced without --force
    assert main(["keygen", "--force"]) == 0
    assert validate_ssh_public_key(pub.read_text())
    assert private.read_bytes() != before

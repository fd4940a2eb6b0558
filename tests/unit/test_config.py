from __future__ import annotations

from pathlib import Path

import pytest

from devorch_tui.config import load_settings
from devorch_tui.errors import DevorchError


def test_folders_come_from_env(isolated_dirs: dict[str, Path]) -> None:
    settings = load_settings()
    paths = settings.paths
    assert paths.config_dir == isolated_dirs["config"]
    assert paths.known_hosts == isolated_dirs["state"] / "known_hosts"
    assert paths.dedicated_key == isolated_dirs["data"] / "ssh" / "id_ed25519"
    assert settings.ssh_private_key == paths.dedicated_key
    assert settings.workspace_paths.rendered == isolated_dirs["workspace"].resolve() / "cloud-init.yaml"


def test_settings_file_is_read_and_env_wins(isolated_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    isolated_dirs["config"].mkdir()
    (isolated_dirs["config"] / "settings.toml").write_text('poll_interval = 5.0\nssh_user = "dev"\n[keymap]\n"vms.start" = "S"\n')
    monkeypatch.setenv("DEVORCH_SSH_USER", "ops")
    settings = load_settings()
    assert settings.poll_interval == 5.0
    assert settings.ssh_user == "ops"
    assert settings.keymap == {"vms.start": "S"}


def test_explicit_override_wins_over_env(tmp_path: Path) -> None:
    assert load_settings(workspace=tmp_path).workspace == tmp_path


def test_broken_settings_file_is_a_clear_error(isolated_dirs: dict[str, Path]) -> None:
    isolated_dirs["config"].mkdir()
    (isolated_dirs["config"] / "settings.toml").write_text("poll_interval = = 2\n")
    with pytest.raises(DevorchError) as info:
        load_settings()
    assert "not valid TOML" in info.value.message
    assert "settings.toml" in (info.value.hint or "")


def test_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVORCH_SSH_PORT", "99999")
    with pytest.raises(DevorchError) as info:
        load_settings()
    assert info.value.message.startswith("invalid setting: ssh_port")

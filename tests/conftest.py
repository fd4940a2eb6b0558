"""Shared fixtures: every test runs with its own config/data/state folders and workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from devorch_tui.config import Settings, load_settings

pytest_plugins = ["tests.fakes.multipass_fixture", "tests.fakes.sshd", "tests.fakes.vm_lab"]

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point every app folder at tmp_path so no test touches the real user's files."""
    dirs = {
        "config": tmp_path / "config",
        "data": tmp_path / "data",
        "state": tmp_path / "state",
        "workspace": tmp_path / "workspace",
    }
    dirs["workspace"].mkdir()
    monkeypatch.setenv("DEVORCH_CONFIG_DIR", str(dirs["config"]))
    monkeypatch.setenv("DEVORCH_DATA_DIR", str(dirs["data"]))
    monkeypatch.setenv("DEVORCH_STATE_DIR", str(dirs["state"]))
    monkeypatch.setenv("DEVORCH_WORKSPACE", str(dirs["workspace"]))
    for name in ("DEVORCH_MULTIPASS_BIN", "DEVORCH_SSH_KEY", "DEVORCH_SSH_USER", "DEVORCH_SSH_PORT", "DEVORCH_KEYMAP"):
        monkeypatch.delenv(name, raising=False)
    return dirs


@pytest.fixture
def workspace(isolated_dirs: dict[str, Path]) -> Path:
    return isolated_dirs["workspace"]


@pytest.fixture
def settings(isolated_dirs: dict[str, Path]) -> Settings:
    return load_settings()

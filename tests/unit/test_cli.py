from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devorch_tui import __version__
from devorch_tui.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"devorch-tui {__version__}"


def test_paths_json(capsys: pytest.CaptureFixture[str], isolated_dirs: dict[str, Path]) -> None:
    assert main(["paths", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["state_dir"] == str(isolated_dirs["state"])
    assert data["workspace"] == str(isolated_dirs["workspace"].resolve())
    assert set(data) >= {"config_dir", "settings_file", "data_dir", "ssh_key", "known_hosts", "runs_dir", "env_file", "rendered"}


def test_workspace_flag_after_the_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["paths", "--workspace", str(tmp_path)]) == 0
    assert f"workspace      {tmp_path}" in capsys.readouterr().out


def test_bad_setting_is_error_and_fix_not_traceback(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVORCH_POLL_INTERVAL", "-1")
    assert main(["paths"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: invalid setting: poll_interval")
    assert "  fix: " in err
    assert "Traceback" not in err


def test_python_dash_m_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "devorch_tui", "--help"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("usage: devorch-tui")
    assert "paths" in out

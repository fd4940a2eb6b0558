from __future__ import annotations

import json
import os
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


def test_commands_table_matches_what_the_modules_register() -> None:
    """cli.COMMANDS lists every command (for --help) without importing its module: keep them in step."""
    import argparse
    import importlib

    from devorch_tui.cli import COMMAND_MODULES, COMMANDS

    registered: list[tuple[str, str, str | None]] = []
    for module_name in COMMAND_MODULES:
        parser = argparse.ArgumentParser()
        subparsers = parser.add_subparsers()
        importlib.import_module(f"devorch_tui.commands.{module_name}").register(subparsers, argparse.ArgumentParser(add_help=False))
        helps = {action.dest: action.help for action in subparsers._choices_actions}
        registered += [(name, module_name, helps.get(name)) for name in subparsers._name_parser_map]
    assert registered == [(name, module, help) for name, (module, help) in COMMANDS.items()]


def test_only_the_module_of_the_command_run_is_imported() -> None:
    code = (
        "import sys\n"
        "from devorch_tui.cli import build_parser\n"
        "def loaded(): return sorted(m for m in sys.modules if m.startswith('devorch_tui.commands.'))\n"
        "args = build_parser().parse_args([])\n"
        "print(loaded(), 'devorch_tui.config' in sys.modules)\n"
        "args = build_parser().parse_args(['paths', '--json'])\n"
        "print(loaded(), args.json, args.handler.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[] False", "['devorch_tui.commands.workspace'] True devorch_tui.commands.workspace"]


def test_every_command_parses_and_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    from devorch_tui.cli import COMMANDS

    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    for name, (_, help) in COMMANDS.items():
        assert f"    {name}" in listing and help.split()[0] in listing
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: devorch-tui {name}")


def test_a_usage_error_is_error_and_fix_with_exit_code_1(capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input exits 1 (2 is a multipass daemon error), in the CLI's error/fix style."""
    with pytest.raises(SystemExit) as info:
        main(["vm", "launch"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "error: the following arguments are required: NAME" in err
    assert "  fix: see `devorch-tui vm launch --help`" in err
    assert main(["templates"]) == 1  # a group without its command: its help, on stderr
    assert capsys.readouterr().err.startswith("usage: devorch-tui templates")


def test_a_reader_that_leaves_early_is_no_traceback_and_no_success(tmp_path: Path) -> None:
    """`devorch-tui ... | head`: the pipe closes before the output ends. No traceback, and the exit
    code is SIGPIPE's 141, never 0 (the command's own result is unknown)."""
    reader_gone = subprocess.Popen(
        [sys.executable, "-m", "devorch_tui", "tasks", "schema"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    assert reader_gone.stdout is not None and reader_gone.stderr is not None
    reader_gone.stdout.close()  # the reader leaves before the schema is written (Python takes ~0.3 s to start)
    stderr = reader_gone.stderr.read().decode()
    assert reader_gone.wait(timeout=60) == 141
    assert "Traceback" not in stderr and "Exception ignored" not in stderr

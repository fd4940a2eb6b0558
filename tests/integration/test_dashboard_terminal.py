"""`devorch-tui` opened in a real terminal (tmux), as a user opens it."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)")


class Terminal:
    """A tmux session (on a tmux server of its own) running one command with exactly the given
    environment; what it shows is read with ``screen()``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tmux = ["tmux", "-L", name]

    def start(self, command: str, env: dict[str, str]) -> None:
        exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        subprocess.run(
            [*self.tmux, "new-session", "-d", "-s", self.name, "-x", "120", "-y", "30", f"env -i {exports} sh -c {shlex.quote(command)}"],
            check=True,
        )

    def screen(self) -> str:
        result = subprocess.run([*self.tmux, "capture-pane", "-p", "-J", "-t", self.name], capture_output=True, text=True)
        return result.stdout

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never showed; the terminal shows:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


@pytest.fixture
def terminal(request: pytest.FixtureRequest) -> Iterator[Terminal]:
    term = Terminal(f"devorch-test-{os.getpid()}-{abs(hash(request.node.name))}")
    yield term
    term.close()


def child_env(tmp_path: Path) -> dict[str, str]:
    names = ("DEVORCH_CONFIG_DIR", "DEVORCH_DATA_DIR", "DEVORCH_STATE_DIR", "DEVORCH_WORKSPACE", "PATH", "HOME", "PYTHONPATH")
    env = {name: os.environ[name] for name in names if name in os.environ}
    env["DEVORCH_MULTIPASS_BIN"] = str(tmp_path / "no-multipass")
    env["TERM"] = "xterm-256color"
    return env


def devorch_command(rc_file: Path) -> str:
    return f"{shlex.quote(sys.executable)} -m devorch_tui; echo rc=$? > {shlex.quote(str(rc_file))}; sleep 60"


def test_the_dashboard_opens_and_ctrl_q_quits(terminal: Terminal, tmp_path: Path, isolated_dirs: dict[str, Path]) -> None:
    rc = tmp_path / "rc"
    terminal.start(devorch_command(rc), child_env(tmp_path))
    shown = terminal.wait_for("Create SSH key")  # the footer of the Host pane
    assert "1 Host" in shown and "4 Logs" in shown
    # The settings load after the first frame: then the host checks run with them, the header names
    # the workspace and the other panes mount.
    terminal.wait_for("SSH key for VMs")
    terminal.wait_for(f"devorch-tui — {isolated_dirs['workspace'].resolve()}")
    terminal.keys("3")
    terminal.wait_for("Cannot list VMs. multipass is not installed")  # the VMs pane, with the settings' binary
    terminal.keys("C-q")
    deadline = time.monotonic() + 15
    while not rc.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rc.read_text().strip() == "rc=0"


def test_a_bad_setting_ends_in_error_and_fix_not_a_traceback(terminal: Terminal, tmp_path: Path) -> None:
    rc = tmp_path / "rc"
    env = child_env(tmp_path) | {"DEVORCH_POLL_INTERVAL": "-1"}
    terminal.start(devorch_command(rc), env)
    shown = terminal.wait_for("fix:")
    assert "error: invalid setting: poll_interval: Input should be greater than 0" in shown
    assert "settings.toml" in shown
    assert "Traceback" not in shown
    deadline = time.monotonic() + 15
    while not rc.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rc.read_text().strip() == "rc=1"

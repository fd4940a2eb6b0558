"""Every shipped template, rendered with example values, passes Debian's `cloud-init schema`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from devorch_tui.config import Workspace
from devorch_tui.services import templates
from devorch_tui.services.envfile import EnvFile

pytestmark = [
    pytest.mark.cloudinit,
    pytest.mark.skipif(shutil.which("cloud-init") is None, reason="Debian's cloud-init is not installed (apt install cloud-init)"),
]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_VALUES = {
    "GIT_NAME": "Ada O'Lovelace \"Countess\": #1",
    "GIT_EMAIL": "ada@example.com",
    "SSH_PUBLIC_KEY": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH8fmxB3hyKmJ36jbvsFCMJrPEz6nq8Y8bk6qGW7PBRm ada@laptop",
}


def schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True, timeout=120)


def render_example(folder: Path, workspace: Path) -> Path:
    ws = Workspace(workspace)
    shutil.copytree(folder, ws.templates_dir, dirs_exist_ok=True)
    env = EnvFile.load(ws.env_example)
    env.update(EXAMPLE_VALUES)
    env.save(ws.env_file)
    result = templates.render(ws)
    assert result.path == ws.rendered
    return ws.rendered


@pytest.mark.parametrize("name", ["python", "nodejs"])
def test_example_renders_to_schema_valid_cloud_config(name: str, workspace: Path) -> None:
    rendered = render_example(templates.get_template(name).path, workspace)
    outcome = schema(rendered)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    assert "Valid cloud-config" in outcome.stdout
    data = yaml.safe_load(rendered.read_text())
    # The pieces the product promises are really in the config.
    assert data["ssh_authorized_keys"] == [EXAMPLE_VALUES["SSH_PUBLIC_KEY"]]
    assert {"podman", "uidmap", "slirp4netns", "fuse-overlayfs", "git"} <= set(data["packages"])
    commands = [" ".join(map(str, item)) if isinstance(item, list) else item for item in data["runcmd"]]
    assert commands[0] == "set -e"
    assert any("enable-linger ubuntu" in command for command in commands)
    assert any("/etc/subuid" in command for command in commands)
    assert "/var/lib/devorch/ready" in commands[-1]  # the marker is written last
    assert any(EXAMPLE_VALUES["GIT_NAME"] in command for command in commands)


def test_top_level_templates_folder_renders_too(workspace: Path) -> None:
    outcome = schema(render_example(REPO / "templates", workspace))
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr


def test_schema_check_is_strict_enough_to_catch_a_broken_config(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("#cloud-config\nruncmd: 5\n")
    assert schema(broken).returncode != 0


def test_python_template_makes_python_the_chosen_version_in_every_shell(workspace: Path) -> None:
    """Ubuntu 22.04's python3 is 3.10 (apt needs it): `python`, pip and uv are 3.12's, in /usr/local/bin,
    and the settings reach non-login ssh sessions (agent tasks) through /etc/environment."""
    rendered = render_example(templates.get_template("python").path, workspace)
    data = yaml.safe_load(rendered.read_text())
    environment = next(item for item in data["write_files"] if item["path"] == "/etc/environment")
    assert environment["append"] is True and "UV_PYTHON_PREFERENCE=only-system" in environment["content"]
    assert not any(item["path"].startswith("/etc/profile.d/") for item in data["write_files"])  # login shells only
    runcmd = [item for item in data["runcmd"] if isinstance(item, list)]
    assert ["ln", "-sf", "/usr/bin/python3.12", "/usr/local/bin/python"] in runcmd
    assert ["python3.12", "/tmp/get-pip.py", "--break-system-packages", "--root-user-action=ignore"] in runcmd
    assert not any("python3" == item[0] for item in runcmd)  # never the system 3.10
    # Every tool the verify commands call is installed by this config.
    text = rendered.read_text()
    for command in templates.get_template("python").verify_commands:
        tool = command[0]
        assert tool in {"python", "pip", "git", "podman"} or f", {tool}]" in text or f"install, {tool}" in text or f", {tool}\n" in text, tool
    assert "python3.12-venv" in data["packages"]

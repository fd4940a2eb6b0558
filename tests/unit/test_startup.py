"""What the dashboard loads before its first frame (bench/startup.py measures the time it takes).

The first frame is the header, the tabs and the Host pane. The other panes, their services (jinja2
and yaml for templates, the pydantic run models, the multipass client, provisioning, asyncssh) and
the headless command modules are loaded after it, so these tests keep them out of that path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Run in a fresh interpreter: the same entry path as `devorch-tui` with no arguments
# (cli parser -> app with the settings loader, which runs after the first frame), first frame =
# Textual's Ready event, fixed host probe.
CHILD = """
import functools, json, sys
from pathlib import Path
from devorch_tui import cli
from devorch_tui.services.host import HostFacts, MultipassFacts
from devorch_tui.ui.app import DevorchApp

FACTS = HostFacts(
    system="Linux", release="6.8.0", machine="x86_64",
    multipass=MultipassFacts(path="/snap/bin/multipass", client_version="1.16.3", daemon_version="1.16.3"),
    kvm_present=True, kvm_accessible=True, memory_bytes=16 << 30, disk_path=Path("/tmp"),
    disk_free_bytes=200 << 30, ssh_path="/usr/bin/ssh", ssh_keygen_path="/usr/bin/ssh-keygen",
    key_path=Path("/tmp/id_ed25519"),
)

async def probe(settings):
    return FACTS

class FirstFrame(DevorchApp):
    def on_ready(self):
        panes = sorted(widget.id for widget in self.query("Pane"))
        print(json.dumps({"modules": sorted(sys.modules), "panes": panes}), flush=True)
        self.exit()

args = cli.build_parser().parse_args([])
FirstFrame(functools.partial(cli.settings_from_args, args), host_probe=probe).run(headless=True, size=(160, 45))
"""

# Not needed for the first frame (each costs tens of milliseconds of start-up, some much more).
LATER = (
    "asyncssh",
    "jinja2",
    "yaml",
    "pydantic",
    "pydantic_settings",
    "devorch_tui.commands",
    "devorch_tui.config",
    "devorch_tui.services.agent",
    "devorch_tui.services.envfile",
    "devorch_tui.services.golden",
    "devorch_tui.services.known_hosts",
    "devorch_tui.services.multipass",
    "devorch_tui.services.multipass_models",
    "devorch_tui.services.provision",
    "devorch_tui.services.runs",
    "devorch_tui.services.targets",
    "devorch_tui.services.tasks",
    "devorch_tui.services.templates",
    "devorch_tui.ui.panes.logs",
    "devorch_tui.ui.panes.templates",
    "devorch_tui.ui.panes.vms",
)


def first_frame(tmp_path: Path) -> dict[str, list[str]]:
    env = {**os.environ, "DEVORCH_MULTIPASS_BIN": str(tmp_path / "no-multipass")}
    env.pop("TEXTUAL", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[0])


def test_first_frame_is_the_host_pane_without_the_other_areas(isolated_dirs: dict[str, Path], tmp_path: Path) -> None:
    seen = first_frame(tmp_path)
    loaded = [name for name in seen["modules"] if any(name == heavy or name.startswith(f"{heavy}.") for heavy in LATER)]
    assert loaded == []
    assert "devorch_tui.ui.panes.host" in seen["modules"]
    assert seen["panes"] == ["host"]


def test_loading_the_ssh_executor_prints_nothing() -> None:
    """Importing asyncssh through devorch-tui leaves stderr empty (cryptography warns about DSA on
    asyncssh's import: noise in every headless `devorch-tui run`)."""
    env = {**os.environ, "PYTHONWARNINGS": ""}
    done = subprocess.run(
        [sys.executable, "-c", "import devorch_tui.services.agent, asyncssh, asyncssh.crypto; print('loaded')"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == "loaded"
    assert done.stderr == ""

#!/usr/bin/env python3
"""Make the README's screenshots: SVGs of the real dashboard, one per pane.

The app runs headless against the multipass test double (tests/fakes/multipass) with a few VMs,
a workspace made by `init` with example values, a finished task run on disk and fixed host facts,
so the pictures are the real widgets with believable data and no machine-specific paths.

    python screenshots/make_screenshots.py          # writes screenshots/*.svg
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "screenshots"
SIZE = (140, 38)
sys.path.insert(0, str(REPO))  # tests.fakes (the multipass double)

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq7r2eFqz1yZJm0yq2f3xYwB4p2x8zKQvJmT1cW5d9H dev@laptop"


def prepare(root: Path) -> None:
    """Folders, workspace, multipass double state and a finished run, all under ``root``."""
    for name in ("config", "data", "state"):
        os.environ[f"DEVORCH_{name.upper()}_DIR"] = str(root / name)
    workspace = root / "my-workspace"
    workspace.mkdir()
    os.environ["DEVORCH_WORKSPACE"] = str(workspace)
    os.environ["DEVORCH_POLL_INTERVAL"] = "60"  # one poll on mount is all a picture needs

    from tests.fakes.multipass_fixture import FakeMultipass

    fake = FakeMultipass(root / "fake-multipass" / "state.json")
    os.environ.update(fake.env)
    fake.add("golden-python", state="Stopped", release="22.04", cpus=2, memory="4G", disk="20G")
    fake.add("dev-api", state="Running", release="22.04", cpus=4, memory="8G", disk="40G", load=[0.42, 0.3, 0.21])
    fake.add("dev-web", state="Running", release="22.04", cpus=2, memory="4G", disk="20G", load=[1.05, 0.8, 0.5])
    fake.add("dev-docs", state="Suspended", release="22.04", cpus=2, memory="4G", disk="20G")
    fake.add("scratch", state="Stopped", release="24.04", cpus=1, memory="1G", disk="5G")

    from devorch_tui.config import load_settings
    from devorch_tui.services import envfile, templates

    settings = load_settings()
    templates.init_workspace(settings.workspace_paths, "python")
    envfile.save_values(
        settings.workspace_paths.env_file,
        {
            "GIT_NAME": "Ada Lovelace",
            "GIT_EMAIL": "ada@example.com",
            "SSH_PUBLIC_KEY": PUBLIC_KEY,
            "VM_NAME": "golden-python",
            "VM_CPUS": "2",
            "VM_MEMORY": "4G",
            "VM_DISK": "20G",
        },
        example_file=settings.workspace_paths.env_example,
    )

    from devorch_tui.services.runs import RunStore

    store = RunStore(settings.paths.runs_dir)
    steps = ["install dependencies", "lint", "unit tests"]
    from devorch_tui.services import golden

    rendered = templates.render(settings.workspace_paths, write=True)
    fake.add_snapshot("golden-python", golden.GOLDEN_SNAPSHOT, comment=golden.golden_comment(rendered.template.name, rendered.sha256))

    run = store.open_run("tasks", "python-tasks on dev-api", ["dev-api"], steps=steps)
    start = datetime.now(timezone.utc) - timedelta(seconds=30)
    run.record.started = start  # the steps below claim past times: the run began with them
    outputs = {
        "install dependencies": ["Resolved 42 packages in 180ms", "Installed 42 packages in 1.21s"],
        "lint": ["All checks passed!"],
        "unit tests": [
            "============================= test session starts ==============================",
            "collected 128 items",
            "tests/test_api.py ......................................................   [ 42%]",
            "tests/test_models.py ..................................................... [ 83%]",
            "tests/test_views.py ......................                                [100%]",
            "============================= 128 passed in 4.12s ==============================",
        ],
    }
    for index, step in enumerate(steps):
        run.step("dev-api", step, "running", started=start + timedelta(seconds=index * 8))
        run.lines("dev-api", step, "stdout", outputs[step])
        run.step("dev-api", step, "ok", exit_code=0, duration=2.5 + index * 2)
    run.finish("ok")


async def take(root: Path) -> list[Path]:
    from devorch_tui.config import load_settings
    from devorch_tui.services.host import GiB, HostFacts, MultipassFacts
    from devorch_tui.ui.app import DevorchApp

    settings = load_settings()
    facts = HostFacts(
        system="Linux",
        release="6.8.0-45-generic",
        machine="x86_64",
        user="dev",
        multipass=MultipassFacts(path="/snap/bin/multipass", client_version="1.16.3", daemon_version="1.16.3"),
        kvm_present=True,
        kvm_accessible=True,
        cpu_virt_flags=True,
        memory_bytes=32 * GiB,
        disk_path=Path("/home/dev/.local/share/devorch-tui"),
        disk_free_bytes=212 * GiB,
        ssh_path="/usr/bin/ssh",
        ssh_keygen_path="/usr/bin/ssh-keygen",
        key_path=Path("/home/dev/.local/share/devorch-tui/ssh/id_ed25519"),
        key_problems=(),
        snap_path="/usr/bin/snap",
    )

    async def probe(_settings: object) -> HostFacts:
        return facts

    app = DevorchApp(settings, host_probe=probe)
    written: list[Path] = []
    async with app.run_test(size=SIZE) as pilot:
        app.sub_title = "~/my-workspace"
        for key, name in (("1", "host"), ("2", "templates"), ("3", "vms"), ("4", "logs")):
            await pilot.press(key)
            await app.workers.wait_for_complete()
            await pilot.pause(0.5)
            await app.workers.wait_for_complete()
            await pilot.pause()
            path = OUT / f"{name}.svg"
            app.save_screenshot(filename=path.name, path=str(OUT))
            written.append(path)
    return written


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="devorch-shots-") as tmp:
        root = Path(tmp)
        prepare(root)
        for path in asyncio.run(take(root)):
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

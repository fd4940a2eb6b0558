"""SVG snapshot of the Templates pane: python template active, .env half filled, one invalid value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from devorch_tui.config import Settings
from devorch_tui.services import templates
from devorch_tui.services.envfile import EnvFile
from tests.snapshots.test_host_snapshot import fixed_probe


async def show_templates(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.press("2")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_templates_pane_snapshot(snap_compare: Callable[..., bool], make_app: Callable[..., Any], settings: Settings) -> None:
    workspace = settings.workspace_paths
    templates.init_workspace(workspace, "python")
    env = EnvFile.load(workspace.env_file)
    env.update({"GIT_NAME": "Ada Lovelace", "GIT_EMAIL": "ada-at-example.com"})
    env.save()
    app = make_app(host_probe=fixed_probe)
    assert snap_compare(app, terminal_size=(140, 40), run_before=show_templates)

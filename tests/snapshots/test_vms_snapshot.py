"""SVG snapshot of the VMs pane against the multipass double in a fixed state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from devorch_tui.ui.panes.vms import VMsPane
from tests.fakes.multipass_fixture import FakeMultipass

GiB = 1024**3
MiB = 1024**2


def seed(fake: FakeMultipass) -> None:
    fake.add(
        "dev-api",
        "Running",
        release="24.04",
        cpus=4,
        memory="8G",
        disk="40G",
        ipv4=["10.84.12.31", "172.17.0.1"],
        load=[0.42, 0.3, 0.12],
        memory_used=2200 * MiB,
        disk_used=9 * GiB,
        snapshots=[
            {"name": "clean", "comment": "fresh from golden"},
            {"name": "before-upgrade", "comment": "pinned deps", "parent": "clean"},
        ],
    )
    fake.add("dev-web", "Running", release="22.04", cpus=2, memory="4G", disk="20G", ipv4=["10.84.12.44"],
             load=[0.05, 0.02, 0.0], memory_used=610 * MiB, disk_used=3 * GiB)
    fake.add("golden", "Stopped", release="24.04", cpus=2, memory="4G", disk="20G",
             snapshots=[{"name": "golden-image", "comment": "python 3.12, uv, podman"}])
    fake.add("scratch", "Suspended", release="24.04")
    fake.add("old-test", "Deleted", release="22.04")


async def fleet_shown(pilot: Pilot) -> None:
    app = pilot.app
    await pilot.press("3")
    pane = app.query_one(VMsPane)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not (
        pane.table.row_count == 5
        and pane.table.get_cell("dev-api", "cpus").plain == "4"
        and pane.table.get_cell("golden", "cpus").plain == "2"  # a stopped VM's resources come from `get`
        and pane.table.get_cell("scratch", "cpus").plain == "1"
        and pane._detail_state is not None
        and pane._detail_state[0] == "dev-api"
        and pane._detail_state[2] is not None
        and pane._detail_state[3] is not None
    ):
        assert loop.time() < deadline, "the fleet never showed"
        await pilot.pause(0.05)
    pane.list_poll.stop()  # nothing may change while the screen is captured
    pane.info_poll.stop()
    await app.workers.wait_for_complete()
    await pilot.pause()


def test_vms_pane_snapshot(fake_multipass: FakeMultipass, snap_compare: Callable[..., bool], make_app: Callable[..., Any]) -> None:
    seed(fake_multipass)
    app = make_app()
    assert snap_compare(app, terminal_size=(160, 40), run_before=fleet_shown)

"""SVG snapshot of the Host pane with fixed facts (a Linux host without multipass and without the key)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from devorch_tui.config import Settings
from devorch_tui.services.host import GiB, HostFacts, MultipassFacts

FACTS = HostFacts(
    system="Linux",
    release="6.8.0-45-generic",
    machine="x86_64",
    user="dev",
    multipass=MultipassFacts(),
    kvm_present=True,
    kvm_accessible=True,
    cpu_virt_flags=True,
    memory_bytes=16 * GiB,
    disk_path=Path("/home/dev/.local/share/devorch-tui"),
    disk_free_bytes=72 * GiB,
    ssh_path="/usr/bin/ssh",
    ssh_keygen_path="/usr/bin/ssh-keygen",
    key_path=Path("/home/dev/.local/share/devorch-tui/ssh/id_ed25519"),
    key_problems=("no private key at /home/dev/.local/share/devorch-tui/ssh/id_ed25519",),
    snap_path="/usr/bin/snap",
)


async def fixed_probe(settings: Settings) -> HostFacts:
    return FACTS


async def checks_done(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_host_pane_snapshot(snap_compare: Callable[..., bool], make_app: Callable[..., Any]) -> None:
    app = make_app(host_probe=fixed_probe)
    assert snap_compare(app, terminal_size=(140, 36), run_before=checks_done)

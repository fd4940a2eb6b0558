"""The detail panel of the VMs pane: `multipass info` of the selected VM and its snapshots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.containers import Horizontal
from textual.widgets import Static

from devorch_tui.ui.widgets.vm_table import BUSY_MARK, BUSY_STYLE, STATE_STYLES, given, human_bytes, used_of_total

if TYPE_CHECKING:
    from devorch_tui.services.multipass_models import Instance, InstanceInfo, InstanceResources, SnapshotSummary

DEFAULT_KEYS = {"snapshot": "S", "stop": "x", "recover": "U"}
"""The pane's keys the panel mentions (the pane passes the ones the user's keymap gives)."""


def _grid() -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def _one_line(text: str) -> str:
    """Snapshot comments may hold newlines and carriage returns; show them on one line."""
    return " ".join(text.split())


def render_info(
    instance: Instance | None,
    info: InstanceInfo | None,
    *,
    busy: str | None = None,
    name: str | None = None,
    resources: InstanceResources | None = None,
) -> RenderableType:
    """The left column: what multipass says about the VM. Every value is a Text (never markup)."""
    if instance is None and name is None:
        return Text("No VM selected. Press n to launch one.", style="italic")
    title = instance.name if instance is not None else (name or "")
    grid = _grid()
    state = instance.state if instance is not None else ""
    if busy:
        grid.add_row("State", Text(f"{BUSY_MARK} {busy}", style=BUSY_STYLE))
    elif state:
        grid.add_row("State", Text(state, style=STATE_STYLES.get(state, "")))
    if instance is not None:
        addresses = instance.ipv4 or (info.ipv4 if info is not None and instance.is_running else [])
        grid.add_row("IPv4", Text(", ".join(addresses) or "-"))
        grid.add_row("Release", Text(instance.release or "-"))
    if info is not None and info.has_details:
        if info.image_release:
            image = f"{info.image_release} ({info.image_hash[:12]})" if info.image_hash else info.image_release
            grid.add_row("Image", Text(image))
        cpus, memory_total, disk_total = given(info, resources, running=info.is_running)
        grid.add_row("CPUs", Text("-" if cpus is None else str(cpus)))
        grid.add_row("Load", Text(" ".join(f"{value:.2f}" for value in info.load) if info.load else "-"))
        grid.add_row("Memory", Text(used_of_total(info.memory_used, memory_total)))
        disk = used_of_total(info.disk_used, disk_total)
        if disk_total and info.disk_used is not None:
            disk += f" ({human_bytes(disk_total - info.disk_used)} free)"
        grid.add_row("Disk", Text(disk))
        for target, mount in info.mounts.items():
            grid.add_row("Mount", Text(f"{mount.source_path} -> {target}"))
    elif instance is not None:
        grid.add_row("Resources", Text("loading…", style="italic"))
    return Group(Text(title, style="bold underline"), grid)


def render_snapshots(
    name: str | None,
    snapshots: Sequence[SnapshotSummary] | None,
    *,
    state: str = "",
    keys: Mapping[str, str] = DEFAULT_KEYS,
) -> RenderableType:
    """The right column: the VM's snapshots (name, parent, comment on one line)."""
    if name is None:
        return Text("")
    if snapshots is None:
        return Text("Snapshots: loading…", style="italic")
    if not snapshots:
        keys = {**DEFAULT_KEYS, **keys}
        if state == "Deleted":
            how = f"None. A deleted VM takes none: recover it ({keys['recover']}) first."
        elif state == "Stopped":
            how = f"None yet. Press {keys['snapshot']} to take one."
        else:
            how = f"None yet. Stop the VM ({keys['stop']}), then press {keys['snapshot']} to take one."
        return Group(Text("Snapshots", style="bold underline"), Text(how, style="italic"))
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold", expand=True)
    table.add_column("Name", no_wrap=True)
    table.add_column("Parent", no_wrap=True)
    table.add_column("Comment", no_wrap=True, overflow="ellipsis", ratio=1)
    for snap in snapshots:
        table.add_row(Text(snap.name), Text(snap.parent or "-"), Text(_one_line(snap.comment)))
    return Group(Text(f"Snapshots ({len(snapshots)})", style="bold underline"), table)


class VMDetail(Horizontal):
    """Shows one VM; the pane calls ``show`` whenever the selection or its data changes."""

    DEFAULT_CSS = """
    VMDetail > #vm-detail-info {
        width: 1fr;
        height: auto;
    }
    VMDetail > #vm-detail-snapshots {
        width: 1fr;
        height: auto;
        padding-left: 2;
    }
    """

    can_focus = False

    def compose(self):  # type: ignore[override]
        yield Static(render_info(None, None), id="vm-detail-info")
        yield Static("", id="vm-detail-snapshots")

    def show(
        self,
        instance: Instance | None,
        info: InstanceInfo | None,
        snapshots: Sequence[SnapshotSummary] | None,
        *,
        busy: str | None = None,
        name: str | None = None,
        resources: InstanceResources | None = None,
        keys: Mapping[str, str] = DEFAULT_KEYS,
    ) -> None:
        state = instance.state if instance is not None else ""
        _update(self.query_one("#vm-detail-info", Static), render_info(instance, info, busy=busy, name=name, resources=resources))
        _update(self.query_one("#vm-detail-snapshots", Static), render_snapshots(name, snapshots, state=state, keys=keys))


def _update(static: Static, content: RenderableType) -> None:
    """``Static.update`` with a layout only when the text's height changes. A layout re-arranges and
    repaints the whole screen, every poll that changes the selected VM (its state, its load) would
    pay it; the same number of lines in the same place only needs a repaint."""
    static.update(content, layout=False)
    size = static.size
    if not size or static.get_content_height(size, static.app.size, size.width) != size.height:
        static.refresh(layout=True)

"""The VMs pane: the live list of multipass instances and their whole lifecycle from the keyboard.

Two self-rescheduling polls feed it (``ui/vm_poller.Poll``): `multipass list --no-ipv4` every
``settings.poll_interval`` seconds (cheap: no SSH into each VM) and `multipass info` plus
`list --snapshots` every ``settings.info_interval`` seconds for resources, addresses and
snapshots. The selected VM's info is also fetched on demand when the cursor rests on it, after
every action, and when a state change is seen. Rows are diffed by key (``VMTable.apply``), so the
cursor and the scroll position survive every poll. When multipass is missing or its daemon is
unreachable a banner says how to fix it and the list poll backs off (2, 4, 8... 30 s) until it
answers again; the rest of the app keeps working.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from devorch_tui.errors import DevorchError
from devorch_tui.ui.jobs import run_job
from devorch_tui.ui.golden_actions import GoldenActions
from devorch_tui.ui.panes.base import Pane, PaneCommand
from devorch_tui.ui.screens.clone_form import CloneForm
from devorch_tui.ui.screens.confirm import ConfirmScreen
from devorch_tui.ui.screens.launch_form import LaunchDefaults, LaunchForm, LaunchRequest
from devorch_tui.ui.screens.restore_picker import RestorePicker
from devorch_tui.ui.screens.snapshot_form import SnapshotForm, SnapshotRequest
from devorch_tui.ui.vm_poller import Backoff, Poll
from devorch_tui.ui.widgets.vm_detail import VMDetail
from devorch_tui.ui.widgets.vm_table import COLUMNS, VMRow, VMTable, vm_row

if TYPE_CHECKING:
    from devorch_tui.services.multipass import MultipassClient
    from devorch_tui.services.multipass_models import Instance, InstanceInfo, InstanceResources, SnapshotSummary

log = logging.getLogger("devorch_tui")

COLUMN_LABELS = {column.key: column.label for column in COLUMNS}
DETAIL_DELAY = 0.3
"""Seconds the cursor must rest on a VM before its info is fetched (scrolling fetches nothing)."""

RESOURCE_FETCHES = 3
"""`multipass get` calls at once when the resources of stopped VMs are fetched."""
RESOURCE_BATCH = 3
"""Stopped VMs whose resources one fleet refresh fetches at most (three `get` calls each), in table
order: a fleet is filled in over a few refreshes (about one call a second at the default 10 s),
not in a burst of processes; the selected VM's come at once."""

FleetInfo = tuple[dict[str, "InstanceInfo"], dict[str, list["SnapshotSummary"]] | None, dict[str, "InstanceResources"]]


def _settings_only(state: str) -> bool:
    """A VM whose CPUs, memory and disk only `multipass get` knows: `info` has no runtime data for
    it (it is not running), and it is not deleted."""
    from devorch_tui.services.multipass_models import RUNNING_STATES

    return state not in RUNNING_STATES and state not in ("Deleted", "")


class VMsPane(Pane):
    PANE_ID = "vms"
    PANE_TITLE = "VMs"
    PANE_KEY = "3"

    BINDINGS = [
        Binding("n", "launch", "Launch", id="vms.launch", tooltip="Launch a new VM (name, image, CPUs, memory, disk, cloud-init)"),
        Binding("u", "start", "Start", id="vms.start", tooltip="Start the selected VM"),
        Binding("x", "stop", "Stop", id="vms.stop", tooltip="Stop the selected VM (clean shutdown)"),
        Binding("X", "force_stop", "Force stop", id="vms.force_stop", show=False, tooltip="Power the selected VM off at once"),
        Binding("z", "suspend", "Suspend", id="vms.suspend", show=False, tooltip="Suspend the selected VM"),
        Binding("r", "restart", "Restart", id="vms.restart", show=False, tooltip="Restart the selected VM"),
        Binding("d", "delete", "Delete", id="vms.delete", tooltip="Delete the selected VM (recoverable until purged)"),
        Binding("U", "recover", "Recover", id="vms.recover", show=False, tooltip="Recover the selected deleted VM"),
        Binding("P", "purge", "Purge deleted", id="vms.purge", show=False, tooltip="Permanently remove every deleted VM"),
        Binding("S", "snapshot", "Snapshot", id="vms.snapshot", tooltip="Take a snapshot of the selected (stopped) VM"),
        Binding("b", "restore", "Restore", id="vms.restore", show=False, tooltip="Restore the selected (stopped) VM to a snapshot"),
        Binding("c", "clone", "Clone", id="vms.clone", show=False, tooltip="Clone the selected (stopped) VM under a new name"),
        Binding("e", "shell", "Shell", id="vms.shell", tooltip="Open a shell in the selected VM (the dashboard comes back on exit)"),
        Binding("t", "task_run", "Run tasks", id="vms.task_run", show=False, tooltip="Run a task file on the selected VM"),
        Binding("i", "refresh", "Refresh", id="vms.refresh", show=False, tooltip="Poll multipass now (list, info, snapshots)"),
        Binding("s", "sort", "Sort", id="vms.sort", tooltip="Sort by the next column"),
        Binding("slash", "filter", "Filter", id="vms.filter", tooltip="Show only VMs matching a text"),
        Binding("escape", "clear_filter", "Clear filter", id="vms.clear_filter", show=False),
        Binding("g", "golden", "Golden image", id="vms.golden", tooltip="Build the golden base image from the active template (reused when up to date)"),
        Binding("p", "provision", "Provision", id="vms.provision", tooltip="Provision a project VM from the golden image with a repository cloned inside"),
        Binding("T", "teardown", "Tear down", id="vms.teardown", show=False, tooltip="Delete and purge the selected VM, forget its host key, keep its run logs"),
    ]
    EXTRA_COMMANDS = (
        PaneCommand("VMs: Rebuild golden image", "Delete the golden VM and build it again from today's template", "golden_rebuild"),
        PaneCommand("VMs: Verify golden image", "Run the template's checks in the golden VM", "golden_verify"),
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._instances: dict[str, Instance] = {}
        self._infos: dict[str, InstanceInfo] = {}
        self._resources: dict[str, InstanceResources] = {}
        """What stopped VMs are given (CPUs, memory, disk), from `multipass get`: `info` knows it
        only while a VM runs. Fetched once per VM by the fleet refresh, again for the selected VM."""
        self._snapshots: dict[str, list[SnapshotSummary]] | None = None
        """Snapshots by VM; None until loaded (or when the backend has no snapshots)."""
        self._snapshots_supported = True
        self._cheap_list = True
        self._busy: dict[str, str] = {}
        self._built_rows: dict[str, tuple[Instance, InstanceInfo | None, str | None, InstanceResources | None, VMRow]] = {}
        """The row last made for each VM and what it was made from (``vm_row`` reads the instance's
        name, state, addresses and release; the name is the key)."""
        self._loaded = False
        self._status = "Loading VMs…"
        self._problem: str | None = None
        self._shown_name: str | None = None
        self._detail_state: tuple[Any, ...] | None = None
        self._detail_timer: Timer | None = None
        self._list_poll: Poll[list[Instance]] | None = None
        self._info_poll: Poll[FleetInfo] | None = None
        self.golden = GoldenActions(self, lambda _status: self._update_status())

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static("", id="vms-banner", markup=False)
        yield Input(placeholder="filter: name, state, IP or release (Enter keeps it, Esc clears)", id="vms-filter")
        with Vertical(id="vms-body"):
            yield VMTable(id="vms-table")
            yield Static("Loading VMs…", id="vms-status", markup=False)
            yield VMDetail(id="vms-detail")

    @property
    def table(self) -> VMTable:
        return self.query_one("#vms-table", VMTable)

    @property
    def client(self) -> MultipassClient:
        return self.devorch.multipass

    @property
    def list_poll(self) -> Poll[list[Instance]]:
        assert self._list_poll is not None
        return self._list_poll

    @property
    def info_poll(self) -> Poll[FleetInfo]:
        assert self._info_poll is not None
        return self._info_poll

    @property
    def problem(self) -> str | None:
        """The banner text while multipass cannot be reached, else None."""
        return self._problem

    def on_mount(self) -> None:
        settings = self.devorch.settings
        self.query_one("#vms-banner").display = False
        self.query_one("#vms-filter").display = False
        self._list_poll = Poll(
            self,
            "vms-list",
            self._list_instances,
            interval=settings.poll_interval,
            on_result=self._on_list,
            on_error=self._on_list_error,
            backoff=Backoff(first=2.0, maximum=30.0),
        )
        self._info_poll = Poll(
            self,
            "vms-info",
            self._fetch_fleet_info,
            interval=settings.info_interval,
            on_result=self._on_fleet_info,
            on_error=self._on_fleet_info_error,
            backoff=Backoff(first=settings.info_interval, maximum=max(30.0, settings.info_interval)),
        )
        self._list_poll.start()

    def on_unmount(self) -> None:
        for poll in (self._list_poll, self._info_poll):
            if poll is not None:
                poll.stop()

    def on_pane_shown(self) -> None:
        self.table.focus()

    # ------------------------------------------------------------------ polling

    async def _list_instances(self) -> list[Instance]:
        """`list --no-ipv4` (no SSH into every VM); plain `list` if this multipass lacks the hidden flag."""
        from devorch_tui.services.multipass_errors import MultipassError

        if self._cheap_list:
            try:
                return await self.client.list(ipv4=False)
            except MultipassError as exc:
                if "no-ipv4" not in f"{exc.stderr} {exc.message}":
                    raise
                log.info("multipass has no `list --no-ipv4`; polling plain `list` from now on")
                self._cheap_list = False
        return await self.client.list()

    def _on_list(self, instances: list[Instance]) -> None:
        previous = self._instances
        self._instances = {instance.name: instance for instance in instances}
        self._infos = {name: info for name, info in self._infos.items() if name in self._instances}
        changed = {
            name for name, instance in self._instances.items() if previous.get(name) is None or previous[name].state != instance.state
        }
        # Kept while a VM stays as it was; asked again (on the slow cadence) once it changed state.
        self._resources = {name: res for name, res in self._resources.items() if name in self._instances and name not in changed}
        if self._problem is not None:
            self._set_problem(None)
            self.notify("Multipass answers again; the VM list is live.", title="VMs")
        first = not self._loaded
        self._loaded = True
        self._render_rows()
        if first:
            self.info_poll.start()
        elif changed:
            # A VM appeared or changed state: its addresses and resources changed too.
            self.info_poll.poll_now()

    def _on_list_error(self, exc: BaseException, retry_in: float) -> None:
        message = exc.describe() if isinstance(exc, DevorchError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, DevorchError):
            log.error("VM list poll failed", exc_info=exc)
        self._set_problem(f"Cannot list VMs. {message}\nRetrying in {retry_in:g} s (press {self._key('refresh')} to retry now).")

    def _set_problem(self, text: str | None) -> None:
        self._problem = text
        banner = self.query_one("#vms-banner", Static)
        banner.update(text or "")
        banner.display = text is not None
        self.table.set_class(text is not None, "-stale")
        self._update_status()

    async def _fetch_fleet_info(self) -> FleetInfo:
        """`info` for every VM (falling back to no runtime data if one VM breaks it) and all snapshots."""
        from devorch_tui.services.multipass_errors import MultipassError, MultipassErrorKind

        if not self._instances:
            return {}, {}, {}
        try:
            infos = await self.client.info()
        except MultipassError as exc:
            if exc.kind in (MultipassErrorKind.DAEMON_UNREACHABLE, MultipassErrorKind.SOCKET_DENIED, MultipassErrorKind.MISSING):
                raise
            # One VM failing its SSH runtime query fails the whole call (multipass #4527).
            infos = await self.client.info(runtime=False)
        snapshots = await self._fetch_snapshots()
        order = [name for name in self.table.visible_names if name in self._instances] + sorted(self._instances)
        unknown = [
            name for name in dict.fromkeys(order) if _settings_only(self._instances[name].state) and name not in self._resources
        ]
        return infos, snapshots, await self._fetch_resources(unknown[:RESOURCE_BATCH])

    async def _fetch_resources(self, names: list[str]) -> dict[str, InstanceResources]:
        """`get local.NAME.cpus|memory|disk` of stopped VMs (a few at a time). A VM that fails gets
        empty resources, so the fleet refresh does not ask again (selecting it does)."""
        from devorch_tui.errors import DevorchError
        from devorch_tui.services.multipass_models import InstanceResources

        gate = asyncio.Semaphore(RESOURCE_FETCHES)
        found: dict[str, InstanceResources] = {}

        async def one(name: str) -> None:
            async with gate:
                try:
                    found[name] = await self.client.resources(name)
                except DevorchError as exc:  # gone meanwhile, or a multipass without these keys
                    log.info("resources of %s unavailable: %s", name, exc)
                    found[name] = InstanceResources()

        await asyncio.gather(*(one(name) for name in names))
        return found

    async def _fetch_snapshots(self) -> dict[str, list[SnapshotSummary]] | None:
        from devorch_tui.services.multipass_errors import MultipassError, MultipassErrorKind

        if not self._snapshots_supported:
            return None
        try:
            summaries = await self.client.list_snapshots()
        except MultipassError as exc:
            if exc.kind is MultipassErrorKind.NOT_SUPPORTED:
                self._snapshots_supported = False
                return None
            raise
        grouped: dict[str, list[SnapshotSummary]] = {}
        for snap in summaries:
            grouped.setdefault(snap.instance, []).append(snap)
        return grouped

    def _on_fleet_info(self, result: FleetInfo) -> None:
        infos, snapshots, resources = result
        self.golden.refresh_status(list(self._instances.values()))
        self._infos = {name: info for name, info in infos.items() if name in self._instances}
        self._resources.update({name: res for name, res in resources.items() if name in self._instances})
        if snapshots is not None:
            self._snapshots = snapshots
        elif not self._snapshots_supported:
            self._snapshots = {}
        self._render_rows()

    def _on_fleet_info_error(self, exc: BaseException, retry_in: float) -> None:
        log.info("VM info refresh failed (retry in %g s): %s", retry_in, exc)

    def refresh_vm(self, name: str, *, snapshots: bool = False) -> None:
        """Fetch info of one VM now (the selected one, or one an action touched).

        Snapshots come with the fleet refresh; they are fetched here too when ``snapshots`` is set
        (after snapshot / restore / clone) or before they were ever loaded.
        """
        with_snapshots = snapshots or self._snapshots is None

        async def fetch() -> FleetInfo:
            infos = await self.client.info(name)
            info = infos.get(name)
            # Stopped: what it is given comes from `get` (it may have been resized or restored).
            resources = await self._fetch_resources([name]) if info is not None and _settings_only(info.state) else {}
            return infos, (await self._fetch_snapshots() if with_snapshots else None), resources

        def done(result: FleetInfo) -> None:
            infos, snapshots, resources = result
            if name in infos and name in self._instances:
                self._infos[name] = infos[name]
                if name in resources:
                    self._resources[name] = resources[name]
            if snapshots is not None:
                self._snapshots = snapshots
            self._render_rows()

        async def work() -> None:
            try:
                done(await fetch())
            except DevorchError as exc:  # the VM may be gone already; the list poll will show it
                log.info("info for %s failed: %s", name, exc)

        self.run_worker(work(), name=f"vm-info-{name}", group=f"vm-info-{name}", exclusive=True, exit_on_error=False)

    # ------------------------------------------------------------------ rendering

    def _rows(self) -> list[VMRow]:
        infos, busy, resources, previous = self._infos, self._busy, self._resources, self._built_rows
        built: dict[str, tuple[Instance, InstanceInfo | None, str | None, InstanceResources | None, VMRow]] = {}
        for name, instance in self._instances.items():
            inputs = (instance, infos.get(name), busy.get(name), resources.get(name))
            last = previous.get(name)
            if (
                last is not None
                and last[1] is inputs[1]
                and last[3] is inputs[3]
                and last[2] == inputs[2]
                and last[0].state == instance.state
                and last[0].ipv4 == instance.ipv4
                and last[0].release == instance.release
            ):
                row = last[4]  # made from the same values: the table skips it by identity
            else:
                row = vm_row(*inputs)
            built[name] = (*inputs, row)
        self._built_rows = built
        rows = [entry[4] for entry in built.values()]
        # A VM being launched is not listed until multipass has created it: show it as busy.
        rows += [VMRow(name=name, state="", busy=busy) for name, busy in self._busy.items() if name not in self._instances]
        return rows

    def _render_rows(self) -> None:
        self.table.apply(self._rows())
        self._update_status()
        self._sync_selection()

    def _update_status(self) -> None:
        text = self._status_text()
        if text != self._status:
            self._status = text
            # One line whatever the text (#vms-status is height 1): repaint it, no layout (a layout
            # re-arranges and repaints the whole screen).
            self.query_one("#vms-status", Static).update(text, layout=False)

    def _status_text(self) -> str:
        if not self._loaded:
            return "Loading VMs…" if self._problem is None else "No VM list yet."
        total = len(self._instances)
        running = sum(1 for instance in self._instances.values() if instance.is_running)
        parts = [f"{total} VM{'s' if total != 1 else ''}", f"{running} running", f"sorted by {COLUMN_LABELS[self.table.sort_column]}"]
        if self.table.filter_text:
            parts.append(f"filter {self.table.filter_text!r}: {self.table.row_count} shown")
        if self._busy:
            parts.append(f"{len(self._busy)} busy")
        golden = self.golden.status
        if total == 0 and not self._busy:
            buildable = golden is None or (not golden.exists and golden.snapshots_supported)
            parts = ["No VMs yet. Press n to launch one" + (", or g to build the golden image." if buildable else ".")]
        elif golden is not None:
            if golden_job := self.golden.golden_job():
                parts.append(f"{golden_job} is running (Logs pane)")
            elif not golden.snapshots_supported:
                parts.append("no golden image on this backend (no snapshots): p launches from cloud-init")
            elif golden.stale:
                parts.append(f"golden {golden.vm_name}: STALE (template changed; g rebuilds it)")
            elif golden.ready:
                parts.append(f"golden {golden.vm_name}: up to date")
            else:
                parts.append("no golden image (press g)")
        return " · ".join(parts)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._sync_selection()

    def _sync_selection(self) -> None:
        name = self.table.selected_name
        if name != self._shown_name:
            self._shown_name = name
            self.devorch.selected_vm = name
            if self._detail_timer is not None:
                self._detail_timer.stop()
                self._detail_timer = None
            if name is not None and name in self._instances:
                self._detail_timer = self.set_timer(DETAIL_DELAY, lambda: self.refresh_vm(name), name="vm-detail")
        self._update_detail()

    def _update_detail(self) -> None:
        name = self._shown_name
        instance = self._instances.get(name) if name else None
        info = self._infos.get(name) if name else None
        snapshots = None if self._snapshots is None or name is None else self._snapshots.get(name, [])
        busy = self._busy.get(name) if name else None
        resources = self._resources.get(name) if name else None
        state = (name, instance, info, tuple(snapshots) if snapshots is not None else None, busy, resources)
        if state == self._detail_state:
            return
        self._detail_state = state
        keys = {action: self._key(action) for action in ("snapshot", "stop", "recover")}
        self.query_one(VMDetail).show(instance, info, snapshots, busy=busy, name=name, resources=resources, keys=keys)

    # ------------------------------------------------------------------ filter and sort

    def action_sort(self) -> None:
        column = self.table.cycle_sort()
        self._update_status()
        self.notify(f"Sorted by {COLUMN_LABELS[column]}", timeout=2)

    def action_filter(self) -> None:
        box = self.query_one("#vms-filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "vms-filter":
            event.stop()
            self.table.set_filter(event.value)
            self._update_status()
            self._sync_selection()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "vms-filter":
            event.stop()
            if not event.value.strip():
                event.input.display = False
            self.table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#vms-filter", Input)
        if not box.display and not self.table.filter_text:
            return
        box.value = ""
        box.display = False
        self.table.set_filter("")
        self._update_status()
        self._sync_selection()
        self.table.focus()

    # ------------------------------------------------------------------ actions: helpers

    def _selected(self) -> str | None:
        name = self.table.selected_name
        if name is None:
            self.notify(f"No VM selected. Launch one with {self._key('launch')}.", severity="warning", timeout=4)
            return None
        if name in self._busy:
            self.notify(f"{name} is busy ({self._busy[name]}); wait until it is done.", severity="warning", timeout=4)
            return None
        return name

    def _key(self, action: str) -> str:
        """The key of one of this pane's actions as the footer shows it (after the user's keymap)."""
        binding_id = f"vms.{action}"
        keys = self.devorch.settings.keymap.get(binding_id) or next(b.key for b in self.BINDINGS if b.id == binding_id)
        return self.app.get_key_display(Binding(keys.split(",")[0].strip(), action))

    def _key_hints(self) -> dict[str, str]:
        """How a multipass fix names an action here: its key, not its CLI command."""
        return {
            "list": "the VM list (i refreshes it)",
            "start": self._key("start"),
            "stop": self._key("stop"),
            "force_stop": self._key("force_stop"),
            "recover": self._key("recover"),
            "purge": self._key("purge"),
            "snapshots": "the detail panel below the list",
        }

    def _keyed(self, work: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        """``work`` whose multipass failures name this pane's keys in their fix, not CLI commands."""
        from devorch_tui.services.multipass_errors import MultipassError

        async def keyed() -> Any:
            try:
                return await work()
            except MultipassError as exc:
                exc.hint = exc.hint_for(self._key_hints())
                raise

        return keyed

    def _state(self, name: str) -> str:
        instance = self._instances.get(name)
        return instance.state if instance is not None else ""

    def _refused_unless_stopped(self, name: str, doing: str) -> bool:
        """Say why ``doing`` (e.g. "take snapshots of") cannot happen unless ``name`` is Stopped."""
        state = self._state(name)
        if state == "Stopped":
            return False
        if state == "Deleted":
            text = f"{name} is deleted: recover it first ({self._key('recover')})."
        elif state in ("Suspended", "Suspending"):
            text = f"Stop {name} first: it is suspended, so force stop it ({self._key('force_stop')})."
        else:
            text = f"Stop {name} first ({self._key('stop')}): multipass can only {doing} a stopped VM."
        self.notify(text, severity="warning", markup=False, timeout=6)
        return True

    def unfinished_work(self) -> str | None:
        """The lifecycle actions running now (e.g. "stopping alpha"): quitting would cut them off.
        (Golden image builds and provisions are runs: the Logs pane names those.)"""
        return ", ".join(f"{label} {name}" for name, label in sorted(self._busy.items())) or None

    def _set_busy(self, name: str, label: str | None) -> None:
        if label is None:
            self._busy.pop(name, None)
        else:
            self._busy[name] = label
        self._render_rows()

    def _run_vm_action(
        self,
        name: str,
        busy: str,
        failure_title: str,
        work: Callable[[], Awaitable[Any]],
        success: Callable[[Any], str],
        *,
        also_refresh: tuple[str, ...] = (),
        snapshots: bool = False,
    ) -> None:
        """Run one lifecycle call: row busy, worker, notification, then an immediate re-poll."""
        self._set_busy(name, busy)

        def finish() -> None:
            self._set_busy(name, None)
            self.list_poll.poll_now()
            for vm in (name, *also_refresh):
                self.refresh_vm(vm, snapshots=snapshots)

        def on_done(result: Any) -> None:
            finish()
            self.notify(success(result), title="VMs", markup=False)

        run_job(
            self,
            self._keyed(work),
            title=failure_title,
            on_done=on_done,
            on_error=lambda exc: finish(),
            group=f"vm-action-{name}",
        )

    def _confirm(self, title: str, message: str, label: str, then: Callable[[], None]) -> None:
        def answered(confirmed: bool | None) -> None:
            if confirmed:
                then()

        self.app.push_screen(ConfirmScreen(title, message, confirm_label=label, destructive=True), answered)

    # ------------------------------------------------------------------ actions

    def action_launch(self) -> None:
        existing = set(self._instances) | set(self._busy)
        self.app.push_screen(LaunchForm(self._launch_defaults(existing), existing), self._launch)

    def _launch_defaults(self, existing: set[str]) -> LaunchDefaults:
        from devorch_tui.services.envfile import effective_values

        workspace = self.devorch.workspace
        try:
            values = effective_values(workspace.env_file, workspace.env_example if workspace.env_example.is_file() else None)
        except (DevorchError, OSError):
            values = {}
        base = LaunchDefaults()
        name = values.get("VM_NAME", "").strip()
        return LaunchDefaults(
            name="" if name in existing else name,
            image=base.image,
            cpus=values.get("VM_CPUS", "").strip() or base.cpus,
            memory=values.get("VM_MEMORY", "").strip() or base.memory,
            disk=values.get("VM_DISK", "").strip() or base.disk,
            cloud_init=str(workspace.rendered) if workspace.rendered.is_file() else "",
        )

    def _launch(self, request: LaunchRequest | None) -> None:
        if request is None:
            return
        self._run_vm_action(
            request.name,
            "launching",
            f"Launch {request.name} failed",
            lambda: self.client.launch(
                request.name,
                image=request.image,
                cpus=request.cpus,
                memory=request.memory,
                disk=request.disk,
                cloud_init=request.cloud_init,
            ),
            lambda _: f"Launched {request.name}.",
        )

    def action_start(self) -> None:
        if name := self._selected():
            self._run_vm_action(name, "starting", f"Start {name} failed", lambda: self.client.start(name), lambda _: f"{name} is running.")

    def action_stop(self) -> None:
        if name := self._selected():
            self._run_vm_action(name, "stopping", f"Stop {name} failed", lambda: self.client.stop(name), lambda _: f"{name} stopped.")

    def action_force_stop(self) -> None:
        if name := self._selected():
            self._confirm(
                f"Force stop {name}?",
                f"{name} is powered off at once, like pulling the plug: unsaved work inside it is lost.",
                "Force stop",
                lambda: self._run_vm_action(
                    name,
                    "powering off",
                    f"Force stop {name} failed",
                    lambda: self.client.stop(name, force=True),
                    lambda _: f"{name} was powered off.",
                ),
            )

    def action_suspend(self) -> None:
        if name := self._selected():
            self._run_vm_action(
                name, "suspending", f"Suspend {name} failed", lambda: self.client.suspend(name), lambda _: f"{name} is suspended."
            )

    def action_restart(self) -> None:
        if name := self._selected():
            self._run_vm_action(
                name, "restarting", f"Restart {name} failed", lambda: self.client.restart(name), lambda _: f"{name} restarted."
            )

    def action_delete(self) -> None:
        if name := self._selected():
            self._confirm(
                f"Delete {name}?",
                f"{name} is shut down and marked Deleted. You can recover it (U) until you purge (P).",
                "Delete",
                lambda: self._run_vm_action(
                    name,
                    "deleting",
                    f"Delete {name} failed",
                    lambda: self.client.delete(name),
                    lambda _: f"{name} deleted. Recover it with {self._key('recover')}, or purge it with {self._key('purge')}.",
                ),
            )

    def action_recover(self) -> None:
        if name := self._selected():
            if self._state(name) != "Deleted":
                self.notify(
                    f"{name} is not deleted (it is {self._state(name) or 'not listed yet'}): only deleted VMs can be recovered.",
                    severity="warning",
                    markup=False,
                    timeout=6,
                )
                return
            self._run_vm_action(
                name, "recovering", f"Recover {name} failed", lambda: self.client.recover(name), lambda _: f"{name} recovered; it is stopped."
            )

    def action_purge(self) -> None:
        deleted = sorted(name for name, instance in self._instances.items() if instance.is_deleted)
        if not deleted:
            self.notify("There are no deleted VMs to purge.", timeout=4)
            return

        def purge() -> None:
            for name in deleted:
                self._busy[name] = "purging"
            self._render_rows()

            def finish() -> None:
                for name in deleted:
                    self._busy.pop(name, None)
                self._render_rows()
                self.list_poll.poll_now()

            def on_done(_: Any) -> None:
                finish()
                self.notify(f"Purged for good: {', '.join(deleted)}.", title="VMs", markup=False)

            run_job(self, self._keyed(self.client.purge), title="Purge failed", on_done=on_done, on_error=lambda exc: finish(), group="vm-purge")

        self._confirm(
            "Purge deleted VMs?",
            f"These VMs are removed for good and cannot be recovered: {', '.join(deleted)}.",
            "Purge",
            purge,
        )

    def action_snapshot(self) -> None:
        name = self._selected()
        if name is None or self._refused_unless_stopped(name, "take snapshots of"):
            return
        existing = {snap.name for snap in (self._snapshots or {}).get(name, [])}

        def take(request: SnapshotRequest | None) -> None:
            if request is None:
                return
            self._run_vm_action(
                name,
                "snapshotting",
                f"Snapshot of {name} failed",
                lambda: self.client.snapshot(name, request.name, request.comment),
                lambda snapshot: f"Took snapshot {snapshot} of {name}.",
                snapshots=True,
            )

        self.app.push_screen(SnapshotForm(name, existing), take)

    def action_restore(self) -> None:
        name = self._selected()
        if name is None or self._refused_unless_stopped(name, "restore"):
            return

        def restore(snapshot: str | None) -> None:
            if snapshot is None:
                return
            self._confirm(
                f"Restore {name} to {snapshot}?",
                f"Everything on {name} since snapshot {snapshot} was taken is lost.",
                "Restore",
                lambda: self._run_vm_action(
                    name,
                    "restoring",
                    f"Restore of {name} failed",
                    lambda: self.client.restore(name, snapshot),
                    lambda _: f"{name} is back at snapshot {snapshot}.",
                    snapshots=True,
                ),
            )

        def pick(snapshots: dict[str, list[SnapshotSummary]] | None) -> None:
            if snapshots is None:
                self.notify("This multipass backend has no snapshots (use the qemu driver).", severity="warning")
                return
            self._snapshots = snapshots
            self._update_detail()
            mine = snapshots.get(name, [])
            if not mine:
                self.notify(f"{name} has no snapshots. Press {self._key('snapshot')} to take one.", severity="warning", markup=False)
                return
            self.app.push_screen(RestorePicker(name, mine), restore)

        run_job(self, self._keyed(self._fetch_snapshots), title=f"Listing snapshots of {name} failed", on_done=pick, group="vm-snapshots")

    def action_clone(self) -> None:
        source = self._selected()
        if source is None or self._refused_unless_stopped(source, "clone"):
            return

        def clone(new_name: str | None) -> None:
            if new_name is None:
                return
            self._busy[new_name] = "cloning"
            self._run_vm_action(
                source,
                "cloning",
                f"Clone of {source} failed",
                lambda: self._clone(source, new_name),
                lambda _: f"Cloned {source} to {new_name} (stopped; start it with {self._key('start')}).",
                also_refresh=(new_name,),
            )

        self.app.push_screen(CloneForm(source, set(self._instances) | set(self._busy)), clone)

    async def _clone(self, source: str, new_name: str) -> None:
        try:
            await self.client.clone(source, new_name)
        finally:
            self._busy.pop(new_name, None)

    def action_shell(self) -> None:
        from devorch_tui.services.multipass_errors import MultipassError

        name = self._selected()
        if name is None:
            return
        state = self._state(name)
        if state in ("Deleted", "Unknown"):
            fix = f"recover it first ({self._key('recover')})" if state == "Deleted" else f"force stop it ({self._key('force_stop')}), then try again"
            self.notify(f"No shell in {name}: it is {state.lower()}; {fix}.", severity="warning", markup=False, timeout=6)
            return
        try:
            argv = self.client.shell_argv(name)
        except DevorchError as exc:
            self.notify(exc.describe(), severity="error", markup=False)
            return
        failure: Exception | None = None
        try:
            with self.app.suspend():
                # Nothing may escape this block: App.suspend() only resumes the app when it ends normally.
                print(f"devorch-tui: opening a shell in {name}; type `exit` to come back.", flush=True)
                try:
                    self.client.run_shell(name)  # the inner shell's own exit code is the user's business
                except (MultipassError, OSError) as exc:
                    failure = exc
        except SuspendNotSupported:
            self.notify(
                f"A shell needs a real terminal. Run it yourself: {' '.join(argv)}", severity="warning", markup=False, timeout=8
            )
            return
        if isinstance(failure, MultipassError):
            failure.hint = failure.hint_for(self._key_hints())
            self.notify(failure.describe(), title=f"Shell in {name} failed", severity="error", markup=False, timeout=10)
        elif failure is not None:
            self.notify(f"Could not run {argv[0]}: {failure}", title=f"Shell in {name} failed", severity="error", markup=False)
            return
        self.list_poll.poll_now()
        self.refresh_vm(name)

    async def action_task_run(self) -> None:
        await self.devorch.run_pane_action("logs", "new_run")

    def action_refresh(self) -> None:
        self.list_poll.poll_now()
        if self.info_poll.running:
            self.info_poll.poll_now()
        if self._shown_name is not None and self._shown_name in self._instances:
            self.refresh_vm(self._shown_name)

    # ------------------------------------------------------------------ golden image and projects

    def action_golden(self) -> None:
        self.golden.build()

    def action_golden_rebuild(self) -> None:
        self.golden.build(rebuild=True)

    def action_golden_verify(self) -> None:
        self.golden.verify()

    def action_provision(self) -> None:
        self.golden.provision(set(self._instances) | set(self._busy))

    def action_teardown(self) -> None:
        self.golden.teardown(self.table.selected_name)

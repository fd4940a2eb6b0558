"""Logs pane: watch a run live (tasks, base image, provisioning), browse past runs, filter, save.

Live lines come from ``RunStore`` events. The subscriber callback runs on the event loop for every
chunk of lines, so it only formats and appends to the view's buffer; ``RunLog`` writes the buffer
once per ~50 ms. Other events (run started, step changed, run finished) are posted as messages.

Switching to a run (or changing the filter) reads its log file from disk up to the size it has at
that moment, while lines arriving meanwhile are held and appended after: nothing is lost or shown
twice, and a filter sees the whole log, not only what the view still holds.

A run that is running in *another* process (a headless ``devorch-tui run`` while the dashboard is
open) sends no events here: the pane follows it from disk instead, reading what its log file gained
and its run.json every TAIL_INTERVAL seconds until it ends (or its process dies: interrupted).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Select

from devorch_tui.errors import DevorchError
from devorch_tui.services.runs import (
    FINAL_STEP_STATUSES,
    LinesEvent,
    RunEvent,
    RunFinished,
    RunRecord,
    RunStarted,
    StepEvent,
    TargetRecord,
)
from devorch_tui.ui.jobs import run_job
from devorch_tui.ui.panes.base import Pane
from devorch_tui.ui.screens.confirm import ConfirmScreen
from devorch_tui.ui.widgets.run_log import LineFormatter, LogSlice, RunLog, StatusLine, read_log_slice, save_log_view
from devorch_tui.ui.widgets.run_tasks import RunTasks, TaskRow, format_duration, to_epoch

if TYPE_CHECKING:
    from devorch_tui.services.runs import ActiveRun, RunStore
    from devorch_tui.services.tasks import TaskFile
    from devorch_tui.ui.screens.new_run import NewRunRequest

TAIL_INTERVAL = 0.5
"""Seconds between two looks at the files of a run that runs in another process."""

RUN_STATUS_STYLE = {
    "running": "bold $accent",
    "ok": "bold $success",
    "failed": "bold $error",
    "cancelled": "bold $warning",
    "interrupted": "bold $warning",
}


_ssh_import_lock = threading.Lock()


def _import_ssh_modules() -> None:
    with _ssh_import_lock:  # a second caller waits here, in its thread, until the first is done
        importlib.import_module("asyncssh")
        importlib.import_module("devorch_tui.services.agent")


async def warm_up_ssh() -> None:
    """Import asyncssh (and the executor) in a thread. Imported lazily on the event loop it would
    freeze the UI ~0.5 s; and the loop must never import it while a thread does (the import lock
    would freeze it just the same), so every caller waits for the import in a thread."""
    if "asyncssh" in sys.modules and "devorch_tui.services.agent" in sys.modules and not _ssh_import_lock.locked():
        return
    await asyncio.to_thread(_import_ssh_modules)


def step_rows(target: TargetRecord) -> list[TaskRow]:
    return [
        TaskRow(
            name=step.name,
            status=step.status,
            exit_code=step.exit_code,
            started=to_epoch(step.started),
            duration=step.duration,
        )
        for step in target.steps
    ]


def describe_running(record: RunRecord) -> str:
    """``a task run on dev-x is running`` (or a golden image build, or a provisioning)."""
    targets = ", ".join(record.target_names)
    if record.kind == "tasks":
        return f"a task run on {targets} is running"
    if record.kind == "base-image":
        return f"the golden image build ({targets}) is running"
    return f"the provisioning of {targets} is running"


def default_save_path(run_id: str, target_log_file: str, cwd: Path | None = None) -> Path:
    stem = Path(target_log_file).stem
    return (cwd or Path.cwd()) / f"{run_id}-{stem}.log"


class LogsPane(Pane):
    """A run's output beside its task list; keys to switch run/target, filter, save and cancel."""

    PANE_ID = "logs"
    PANE_TITLE = "Logs"
    PANE_KEY = "4"

    BINDINGS = [
        Binding("n", "new_run", "New run", id="logs.new_run", tooltip="Run a task file on one or more targets"),
        Binding("r", "switch_run", "Runs", id="logs.switch_run", tooltip="Show another run or target"),
        Binding("left_square_bracket", "prev_target", "Prev target", id="logs.prev_target", show=False),
        Binding("right_square_bracket", "next_target", "Next target", id="logs.next_target", show=False),
        Binding("slash", "filter", "Filter", id="logs.filter", tooltip="Show only lines containing a text"),
        Binding("escape", "clear_filter", "Clear filter", id="logs.clear_filter"),
        Binding("f", "follow", "Follow", id="logs.follow", tooltip="Jump to the last line and follow new ones"),
        Binding("w", "save", "Save log", id="logs.save", tooltip="Write the log shown to a file"),
        Binding("c", "cancel_run", "Cancel run", id="logs.cancel", tooltip="Stop the run shown"),
    ]

    class RunEventPosted(Message):
        """A run event other than output lines, delivered on the UI side."""

        def __init__(self, event: RunEvent) -> None:
            super().__init__()
            self.event = event

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.run_id: str | None = None
        self.target: str | None = None
        self.record: RunRecord | None = None
        self.filter_text: str | None = None
        self._formatter = LineFormatter()
        self._hold: list[tuple[str, str, int]] | None = None
        self._generation = 0
        self._hidden_lines = 0
        self._loaded_once = False
        self._unsubscribe: Callable[[], None] | None = None
        self._cancellers: dict[str, Callable[[], None]] = {}
        self._wanted_run: str | None = None
        self._last_targets: list[str] = []
        self._last_task_path: Path | None = None
        self._status_text: tuple[str, str] = ("", "")
        self._select_names: list[str] = []
        self._log_view: RunLog | None = None
        self._task_list: RunTasks | None = None

    # --- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="logs-bar"):
            yield StatusLine("No run shown", id="logs-run")
            yield Select[str]([], id="logs-target", prompt="target", allow_blank=True, compact=True)
        with Horizontal(id="logs-body"):
            yield RunTasks(id="logs-tasks")
            with Vertical(id="logs-main"):
                yield Input(id="logs-filter", placeholder="Show lines containing… (Enter applies, Esc clears)")
                yield RunLog(id="logs-log", max_lines=self.devorch.settings.log_max_lines)
                yield StatusLine("", id="logs-status")

    @property
    def store(self) -> RunStore:
        return self.devorch.run_store

    @property
    def log_view(self) -> RunLog:
        view = self._log_view
        if view is None:  # looked up once: live output asks for it hundreds of times a second
            view = self._log_view = self.query_one("#logs-log", RunLog)
        return view

    @property
    def task_list(self) -> RunTasks:
        tasks = self._task_list
        if tasks is None:
            tasks = self._task_list = self.query_one("#logs-tasks", RunTasks)
        return tasks

    def on_mount(self) -> None:
        self.query_one("#logs-filter", Input).display = False
        self.query_one("#logs-target", Select).display = False
        self._unsubscribe = self.store.subscribe(self._on_store_event, batched=True)
        self.set_interval(0.25, self._refresh_status, name="logs-status")
        self._refresh_status()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def on_pane_shown(self) -> None:
        if not self._loaded_once:
            self._loaded_once = True
            self.run_worker(self._warm_up(), name="import asyncssh", group="logs-warm-up", exit_on_error=False)
            if self._wanted_run is None:
                self._show_latest()
        self.log_view.focus()

    async def _warm_up(self) -> None:
        await warm_up_ssh()
        # asyncssh, cryptography and the executor (~40k objects) load after the app froze what it had
        # loaded: left unfrozen, they made a full collection of 10-28 ms land on the first run start.
        self.devorch.freeze_long_lived()

    # --- live events (called by RunStore on the event loop: keep it cheap) ---------------------

    def _on_store_event(self, event: RunEvent) -> None:
        if type(event) is LinesEvent:
            if event.run_id != self.run_id or event.target != self.target:
                return
            prefix = self._formatter.prefix(event.ts, event.stream, event.step)
            if self._hold is not None:
                self._hold.append((prefix, event.text, event.count))
            else:
                self.log_view.push_text(prefix, event.text, event.count)
            return
        self.post_message(self.RunEventPosted(event))

    @on(RunEventPosted)
    def _on_run_event(self, message: RunEventPosted) -> None:
        event = message.event
        if isinstance(event, RunStarted):
            if self._wanted_run is None:
                self.follow_run(event.run.id)  # nothing shown yet: show the first run that starts
        elif isinstance(event, StepEvent):
            if event.run_id != self.run_id or self.record is None:
                return
            if event.target == self.target and event.status in FINAL_STEP_STATUSES and self._hold is None:
                # The step's last lines show now, not at the next flush (up to 100 ms later in a flood).
                self.log_view.flush()
            try:
                target = self.record.target(event.target)
            except KeyError:
                return
            step = target.find_step(event.step)
            if step is None:
                from devorch_tui.services.runs import StepRecord

                step = StepRecord(name=event.step)
                target.steps.append(step)
            step.status = event.status
            step.exit_code = event.exit_code
            step.started = event.started
            step.duration = event.duration
            if event.status == "running" and target.status == "pending":
                target.status = "running"
            if event.target == self.target:
                self.task_list.upsert(
                    TaskRow(event.step, event.status, event.exit_code, to_epoch(event.started), event.duration)
                )
        elif isinstance(event, RunFinished):
            self._cancellers.pop(event.run.id, None)
            if event.run.id == self.run_id:
                if self._hold is None:
                    self.log_view.flush()
                self.record = event.run
                self._show_steps()
                self.refresh_bindings()
        self._refresh_status()

    # --- showing a run -------------------------------------------------------------------------

    def follow_run(self, run_id: str, target: str | None = None) -> None:
        """Show ``run_id`` (its first target unless one is given) and follow its output live."""
        self.log_view.following = True
        self._load(run_id, target)

    def show_run(self, run_id: str, target: str | None = None) -> None:
        """Show a run (past or live) from its log on disk."""
        self._load(run_id, target)

    def _show_latest(self) -> None:
        async def work() -> RunRecord | None:
            return await asyncio.to_thread(self.store.latest)

        def done(record: RunRecord | None) -> None:
            if record is not None and self._wanted_run is None:
                self._load(record.id, None)

        run_job(self, work, title="Run history", on_done=done, group="logs-history")

    def _load(self, run_id: str, target: str | None) -> None:
        """Switch the view to (run, target): record and log from disk, then live lines."""
        self._generation += 1
        generation = self._generation
        self._wanted_run = run_id
        self._hold = []  # from now on, live lines of the new view wait for the disk part
        previous = (self.run_id, self.target)

        async def work() -> None:
            record = await asyncio.to_thread(self.store.load, run_id)
            if generation != self._generation:
                return
            active = self.store.active(run_id)
            if active is not None:
                record = active.snapshot()  # events since the load above are in here
            names = record.target_names
            chosen = target if target in names else (self.target if self.target in names else names[0])
            self.run_id, self.target, self.record = run_id, chosen, record
            self._hold = []
            self.log_view.clear()
            self.log_view.needle = self.filter_text.lower() if self.filter_text else None
            path = self.store.run_dir(run_id) / record.target(chosen).log_file
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                size = 0
            self._sync_target_select()
            self._show_steps()
            self.refresh_bindings()
            self._refresh_status()
            piece: LogSlice = await asyncio.to_thread(
                read_log_slice, path, upto=size, needle=self.filter_text, max_lines=self.log_view.max_lines or 200_000
            )
            if generation != self._generation:
                return
            self._hidden_lines = piece.hidden
            held, self._hold = self._hold or [], None
            self.log_view.write_loaded(piece.lines)  # all of it (up to max_lines), not a flood's share
            for prefix, text, count in held:
                self.log_view.push_text(prefix, text, count)
            self.log_view.flush()
            self._refresh_status()
            if record.status == "running" and self.store.active(run_id) is None:
                self._tail_later(generation, run_id, chosen, piece.read_bytes)  # it runs in another process

        def failed(_exc: BaseException) -> None:
            if generation == self._generation:
                self._hold = None
                self.run_id, self.target = previous
                self._wanted_run = previous[0]

        run_job(self, work, title="Show run", on_error=failed, group="logs-load", exclusive=True)

    # --- a run of another process: followed from its files -------------------------------------

    def _tail_later(self, generation: int, run_id: str, target: str, offset: int) -> None:
        self.set_timer(TAIL_INTERVAL, lambda: self._tail(generation, run_id, target, offset), name="logs-tail")

    def _tail(self, generation: int, run_id: str, target: str, offset: int) -> None:
        """One look at the run's record and at what its log gained since byte ``offset``; again in
        TAIL_INTERVAL while it still runs (self-rescheduling: two looks never overlap)."""
        if generation != self._generation:
            return  # the view moved on
        needle, max_lines = self.filter_text, self.log_view.max_lines or 200_000
        store = self.store

        def look() -> tuple[RunRecord, LogSlice] | None:
            try:
                record = store.load(run_id)  # first: once it says "finished", the log read next is complete
                path = store.run_dir(run_id) / record.target(target).log_file
                size = os.stat(path).st_size
            except (DevorchError, KeyError, OSError):
                return None  # a file being replaced or removed: look again next time
            return record, read_log_slice(path, start=offset, upto=size, needle=needle, max_lines=max_lines)

        async def work() -> tuple[RunRecord, LogSlice] | None:
            return await asyncio.to_thread(look)

        def done(result: tuple[RunRecord, LogSlice] | None) -> None:
            if generation != self._generation:
                return
            if result is None:
                self._tail_later(generation, run_id, target, offset)
                return
            record, piece = result
            if piece.lines:
                self._hidden_lines += piece.hidden
                self.log_view.push_many(piece.lines)
            if record != self.record:
                self.record = record
                self._show_steps()
                self.refresh_bindings()
            if record.status == "running" and store.active(run_id) is None:
                self._tail_later(generation, run_id, target, offset + piece.read_bytes)
            else:
                self.log_view.flush()
            self._refresh_status()

        run_job(self, work, title="Follow run", on_done=done, group="logs-tail")

    def _show_steps(self) -> None:
        if self.record is None or self.target is None:
            self.task_list.reset()
            return
        try:
            target = self.record.target(self.target)
        except KeyError:
            self.task_list.reset()
            return
        self.task_list.set_rows(step_rows(target))

    def _sync_target_select(self) -> None:
        select = self.query_one("#logs-target", Select)
        names = self.record.target_names if self.record else []
        select.display = len(names) > 1
        if len(names) <= 1:
            return  # hidden: left as it is (new options re-lay out the screen just as a run starts)
        if names != self._select_names:
            select.set_options([(name, name) for name in names])
            self._select_names = names
        if self.target in names and select.value != self.target:
            select.value = self.target

    @on(Select.Changed, "#logs-target")
    def _target_picked(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str) and self.run_id and event.value != self.target:
            self._load(self.run_id, event.value)

    # --- status line ---------------------------------------------------------------------------

    def _refresh_status(self) -> None:
        header = self.query_one("#logs-run", StatusLine)
        record = self.record
        if record is None:
            header.update("No run shown: n runs a task file, r lists past runs")
        else:
            counts = record.counts()
            done = sum(n for status, n in counts.items() if status not in ("pending", "running"))
            total = sum(counts.values())
            duration = record.duration
            if duration is None and record.status == "running":
                duration = max(0.0, time.time() - record.started.timestamp())
            header.update(
                f"{record.id} · {record.kind} · {record.title} · {record.status}"
                f" · {done}/{total} steps · {format_duration(duration)}"
            )
            for status in RUN_STATUS_STYLE:
                header.set_class(record.status == status, f"-{status}")
        view = self.log_view
        parts: list[str] = []
        if self.target:
            parts.append(f"target {self.target}")
        shown = view.line_count + view.pending_count
        if self.filter_text:
            parts.append(f"filter “{self.filter_text}”: {self._hidden_lines + view.total_pushed + view.pending_count:,} matching lines")
        else:
            parts.append(f"{self._hidden_lines + view.total_pushed + view.pending_count:,} lines")
        dropped = self._hidden_lines + view.total_pushed + view.pending_count - shown
        if dropped > 0:
            parts.append(f"oldest {dropped:,} not in view (w saves all)")
        if self._hold is not None and self.run_id is not None:
            parts.append("loading…")
        follow = "following" if view.following else "paused: End or f follows"
        text = " · ".join(parts)
        if (text, follow) != self._status_text:
            self._status_text = (text, follow)
            self.query_one("#logs-status", StatusLine).update(text, end=follow)  # the follow state always shows

    @on(RunLog.FollowChanged)
    def _follow_changed(self, event: RunLog.FollowChanged) -> None:
        event.stop()
        self._refresh_status()

    # --- quitting ------------------------------------------------------------------------------

    def unfinished_work(self) -> str | None:
        """Runs started in this app that are still running: quitting stops them."""
        running = [active.record for active in self.store.active_runs() if not active.finished]
        if not running:
            return None
        described = "; ".join(describe_running(record) for record in running)
        return f"{described} (quitting stops {'it' if len(running) == 1 else 'them'})"

    # --- actions -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False hides a key that does not apply; None shows it dimmed.
        if action == "clear_filter":
            return bool(self.filter_text or self.query_one("#logs-filter", Input).display)
        if action in ("prev_target", "next_target"):
            return self.record is not None and len(self.record.targets) > 1
        if action == "cancel_run":
            # Dimmed, not hidden, when nothing runs: the footer keeps the same keys when a run starts
            # or ends (a key that appears or goes rebuilds it and re-lays out the screen: 25-50 ms,
            # exactly as the run starts; a dimmed key is restyled in place).
            return True if self.record is not None and self.record.status == "running" else None
        if action in ("save", "filter", "follow"):
            return True if self.record is not None else None
        return True

    def action_follow(self) -> None:
        view = self.log_view
        view.action_follow()
        if not view.has_focus:
            view.focus()  # focusing the focused view again still repaints all of it

    def action_prev_target(self) -> None:
        self._step_target(-1)

    def action_next_target(self) -> None:
        self._step_target(+1)

    def _step_target(self, delta: int) -> None:
        if self.record is None or self.run_id is None or not self.record.targets:
            return
        names = self.record.target_names
        index = names.index(self.target) if self.target in names else 0
        self._load(self.run_id, names[(index + delta) % len(names)])

    def action_filter(self) -> None:
        box = self.query_one("#logs-filter", Input)
        box.display = True
        box.value = self.filter_text or ""
        box.focus()
        self.refresh_bindings()

    @on(Input.Submitted, "#logs-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.apply_filter(event.value)
        self.log_view.focus()

    def apply_filter(self, text: str | None) -> None:
        """Show only lines containing ``text`` (case-insensitive), read from the whole log; None/"" clears."""
        text = (text or "").strip() or None
        box = self.query_one("#logs-filter", Input)
        box.display = text is not None
        if text is not None:
            box.value = text
        if text == self.filter_text:
            return
        self.filter_text = text
        self.refresh_bindings()
        if self.run_id is not None:
            self.follow_run(self.run_id, self.target)

    def action_clear_filter(self) -> None:
        self.apply_filter(None)
        self.log_view.focus()

    def action_switch_run(self) -> None:
        from devorch_tui.ui.screens.run_picker import RunPickerScreen

        async def work() -> list[RunRecord]:
            return await asyncio.to_thread(self.store.list, 500)

        def picked(choice: tuple[str, str] | None) -> None:
            if choice is not None:
                run_id, target = choice
                self.follow_run(run_id, target or None)

        def show(records: list[RunRecord]) -> None:
            current = (self.run_id, self.target) if self.run_id and self.target else None
            self.app.push_screen(RunPickerScreen(records, current=current), picked)

        run_job(self, work, title="Run history", on_done=show, group="logs-history")

    def action_save(self) -> None:
        from devorch_tui.ui.screens.save_log import SaveLogScreen

        if self.record is None or self.run_id is None or self.target is None:
            self.notify("No run shown: nothing to save", severity="warning")
            return
        run_id, target = self.run_id, self.target
        target_record = self.record.target(target)
        needle = self.filter_text
        what = (
            f"Lines of {target} in run {run_id} containing “{needle}” (the whole log is searched)."
            if needle
            else f"The whole log of {target} in run {run_id}."
        )

        def chosen(path: Path | None) -> None:
            if path is None:
                return
            source = self.store.run_dir(run_id) / target_record.log_file

            async def work() -> int:
                return await asyncio.to_thread(save_log_view, source, path, needle=needle)

            def done(count: int) -> None:
                self.notify(f"Saved {count:,} lines to {path}", title="Log saved")

            run_job(self, work, title="Save log", on_done=done)

        self.app.push_screen(SaveLogScreen(default_save_path(run_id, target_record.log_file), what=what), chosen)

    def register_canceller(self, run_id: str, cancel: Callable[[], None]) -> None:
        """Let `c` stop a run started elsewhere in the app (provisioning registers its own)."""
        self._cancellers[run_id] = cancel

    def action_cancel_run(self) -> None:
        record = self.record
        if record is None or record.status != "running":
            self.notify("The run shown is not running", severity="warning")
            return
        cancel = self._cancellers.get(record.id)
        if cancel is None:
            self.notify(
                f"Run {record.id} was not started from this window: stop it where it runs (Ctrl+C in its terminal).",
                title="Cannot cancel",
                severity="warning",
                markup=False,
            )
            return

        def answered(yes: bool | None) -> None:
            if yes and record.id in self._cancellers:
                self._cancellers[record.id]()
                self.notify(f"Stopping run {record.id}…", title="Cancel run")

        self.app.push_screen(
            ConfirmScreen(
                "Cancel run",
                f"Stop run {record.id} ({record.title})?\nThe running task is stopped on every target; "
                "the log so far is kept.",
                confirm_label="Stop run",
            ),
            answered,
        )

    def action_new_run(self) -> None:
        from devorch_tui.ui.screens.new_run import NewRunScreen

        targets = self._last_targets or ([self.devorch.selected_vm] if self.devorch.selected_vm else [])
        if self.devorch.selected_vm and self.devorch.selected_vm not in targets:
            targets = [self.devorch.selected_vm]
        screen = NewRunScreen(targets=targets, task_path=self._last_task_path, base_dir=self.devorch.workspace.root)
        self.app.push_screen(screen, self._start_run)

    def _start_run(self, request: NewRunRequest | None) -> None:
        if request is None:
            return
        self._last_targets = request.targets
        self._last_task_path = request.task_path
        self.start_run(request.targets, request.task_file, source=request.task_path)

    def start_run(self, specs: list[str], task_file: TaskFile, *, source: Path | None = None) -> None:
        """Resolve ``specs`` and run ``task_file`` on them in a worker; the pane follows the run."""
        cancel = asyncio.Event()
        settings = self.devorch.settings

        def started(active: ActiveRun) -> None:
            self._cancellers[active.id] = cancel.set
            self.follow_run(active.id)

        async def work() -> RunRecord:
            await warm_up_ssh()
            from devorch_tui.services import agent
            from devorch_tui.services.targets import resolve_targets

            targets = await resolve_targets(specs, self.devorch.multipass, user=settings.ssh_user, port=settings.ssh_port)
            return await agent.run_tasks(
                task_file, targets, self.store, settings, cancel=cancel, source=source, on_started=started
            )

        def done(record: RunRecord) -> None:
            severity = "information" if record.status == "ok" else "warning" if record.status == "cancelled" else "error"
            self.notify(f"Run {record.id}: {record.status}", title=record.title, severity=severity, markup=False)

        run_job(self, work, title="Run tasks", on_done=done, group="logs-runs")

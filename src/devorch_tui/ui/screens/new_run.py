"""Start a run: pick the target(s) and a task file; the file is checked before anything runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static

from devorch_tui.errors import DevorchError
from devorch_tui.services.tasks import TaskFile, load_task_file
from devorch_tui.ui.screens.form import FormScreen


@dataclass(frozen=True)
class NewRunRequest:
    """What the user asked to run."""

    targets: list[str]
    task_path: Path
    task_file: TaskFile


def split_targets(text: str) -> list[str]:
    """``vm1, vm2 ssh://u@h:22`` -> ``["vm1", "vm2", "ssh://u@h:22"]`` (duplicates dropped, order kept)."""
    seen: dict[str, None] = {}
    for part in re.split(r"[\s,]+", text.strip()):
        if part:
            seen.setdefault(part, None)
    return list(seen)


def task_file_candidates(*folders: Path) -> list[str]:
    """JSON files in ``folders`` (and their ``tasks/`` subfolder) to suggest while typing."""
    found: list[str] = []
    for folder in folders:
        for pattern in ("*.json", "tasks/*.json"):
            try:
                found.extend(str(path) for path in sorted(folder.glob(pattern)) if path.is_file())
            except OSError:
                continue
    return list(dict.fromkeys(found))


def describe_task_file(task_file: TaskFile) -> str:
    names = [task.name for task in task_file.tasks]
    shown = ", ".join(names[:6]) + (f", … (+{len(names) - 6})" if len(names) > 6 else "")
    return f"{task_file.name}: {len(names)} task{'s' if len(names) != 1 else ''} ({shown})"


class NewRunScreen(FormScreen[NewRunRequest]):
    """Dismisses with a :class:`NewRunRequest` once targets are given and the task file is valid."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="new_run.cancel")]
    SUBMIT_BUTTON = "run"

    def __init__(self, *, targets: list[str], task_path: Path | None, base_dir: Path) -> None:
        super().__init__()
        self._targets = targets
        self._task_path = task_path
        self._base_dir = base_dir

    def compose(self) -> ComposeResult:
        candidates = task_file_candidates(self._base_dir, Path.cwd())
        with Vertical(id="new-run-dialog", classes="dialog"):
            yield Label("Run a task file", classes="dialog-title")
            yield Label("Targets (VM names or ssh://user@host:port, separated by spaces or commas)")
            yield Input(" ".join(self._targets), id="new-run-targets", placeholder="dev-my-project")
            yield Static("", id="new-run-targets-error", classes="form-error", markup=False)
            yield Label("Task file (JSON)")
            yield Input(
                str(self._task_path) if self._task_path else "",
                id="new-run-task-file",
                placeholder="python-tasks.json",
                suggester=SuggestFromList(candidates, case_sensitive=True) if candidates else None,
            )
            yield Static("", id="new-run-task-info", classes="form-info", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Run", id="run", variant="success")

    def on_mount(self) -> None:
        first_empty = "#new-run-targets" if not self._targets else "#new-run-task-file"
        self.query_one(first_empty, Input).focus()
        if self._task_path:
            self._check_task_file()

    # --- checks ----------------------------------------------------------------------------

    def _check_targets(self) -> list[str] | None:
        targets = split_targets(self.query_one("#new-run-targets", Input).value)
        error = self.query_one("#new-run-targets-error", Static)
        if not targets:
            error.update("Give at least one target: a VM name (see the VMs pane) or ssh://user@host:port")
            error.add_class("-invalid")
            return None
        error.update("")
        error.remove_class("-invalid")
        return targets

    def _resolve_path(self) -> Path | None:
        text = self.query_one("#new-run-task-file", Input).value.strip()
        if not text:
            return None
        path = Path(text).expanduser()
        return path if path.is_absolute() else self._base_dir / path

    def _check_task_file(self) -> tuple[Path, TaskFile] | None:
        info = self.query_one("#new-run-task-info", Static)
        path = self._resolve_path()
        if path is None:
            info.update("Give the path of a task file, e.g. python-tasks.json (`devorch-tui tasks schema` shows the format)")
            info.add_class("-invalid")
            return None
        try:
            task_file = load_task_file(path)
        except DevorchError as exc:
            info.update(exc.describe())
            info.add_class("-invalid")
            return None
        info.update(describe_task_file(task_file))
        info.remove_class("-invalid")
        return path, task_file

    # --- events ----------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "new-run-targets":
            self._check_targets()

    def field_submitted(self, field: Input) -> None:
        """Enter in the targets field moves on to the task file (once targets are given); Enter in
        the task file field runs (after checking both fields)."""
        if field.id == "new-run-targets":
            if self._check_targets() is not None:
                self.query_one("#new-run-task-file", Input).focus()
            return
        self.submit()

    def on_input_blurred(self, event: Input.Blurred) -> None:
        if event.input.id == "new-run-task-file" and event.value.strip():
            self._check_task_file()

    def submit(self) -> None:
        targets = self._check_targets()
        checked = self._check_task_file()
        if targets is None or checked is None:
            return
        path, task_file = checked
        self.dismiss(NewRunRequest(targets=targets, task_path=path, task_file=task_file))

"""Ask where to save a run log: a path prompt with a default in the current directory."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from devorch_tui.ui.screens.form import FormScreen


def check_save_path(text: str, cwd: Path | None = None) -> tuple[Path | None, str | None]:
    """Resolve what the user typed to a file path, or say what is wrong with it."""
    text = text.strip()
    if not text:
        return None, "Type a file path, e.g. run.log"
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    if path.is_dir():
        return None, f"{path} is a folder: add a file name"
    if not path.parent.is_dir():
        return None, f"folder {path.parent} does not exist: create it or pick another"
    return path, None


class SaveLogScreen(FormScreen[Path]):
    """Dismisses with the chosen path (an existing file is overwritten, the prompt says so) or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="save_log.cancel")]
    SUBMIT_BUTTON = "save"

    def __init__(self, default_path: Path, *, what: str) -> None:
        super().__init__()
        self._default_path = default_path
        self._what = what

    def compose(self) -> ComposeResult:
        with Vertical(id="save-log-dialog", classes="dialog"):
            yield Label("Save log", classes="dialog-title")
            yield Static(self._what, id="save-log-what", markup=False)
            yield Input(str(self._default_path), id="save-log-path", placeholder="file path")
            yield Static("", id="save-log-error", classes="form-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#save-log-path", Input).focus()
        self._check(self._default_path.as_posix())

    def _check(self, text: str) -> Path | None:
        path, problem = check_save_path(text)
        message = problem or (f"{path} exists and will be overwritten" if path and path.exists() else "")
        error = self.query_one("#save-log-error", Static)
        error.update(message)
        error.set_class(bool(problem), "-invalid")
        return path

    def on_input_changed(self, event: Input.Changed) -> None:
        self._check(event.value)

    def submit(self) -> None:
        path = self._check(self.query_one("#save-log-path", Input).value)
        if path is not None:
            self.dismiss(path)

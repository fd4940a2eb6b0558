"""Clone a stopped VM under a new name."""

from __future__ import annotations

from collections.abc import Collection

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from devorch_tui.errors import ValidationError
from devorch_tui.services.validation import validate_vm_name
from devorch_tui.ui.screens.form import FormScreen


def suggest_clone_name(source: str, existing: Collection[str]) -> str:
    """``<source>-cloneN`` with the smallest N not taken (multipass's own default pattern)."""
    number = 1
    while f"{source}-clone{number}" in existing:
        number += 1
    return f"{source}-clone{number}"


class CloneForm(FormScreen[str]):
    """Dismisses with the new VM name, or None on Cancel / Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="clone_form.cancel")]
    SUBMIT_BUTTON = "clone"

    def __init__(self, source: str, existing: Collection[str] = ()) -> None:
        super().__init__()
        self._source = source
        self._existing = set(existing)

    def compose(self) -> ComposeResult:
        with Vertical(id="clone-dialog", classes="dialog form-dialog"):
            yield Label(f"Clone {self._source}", classes="dialog-title", markup=False)
            yield Static("The source must be stopped. The clone starts Stopped, with no snapshots.", classes="form-help")
            with Horizontal(classes="form-row"):
                yield Label("New name", classes="form-label")
                yield Input(suggest_clone_name(self._source, self._existing), id="clone-name", classes="form-input")
            yield Static("", id="clone-name-error", classes="field-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Clone", id="clone", variant="success")

    def on_mount(self) -> None:
        self.query_one("#clone-name", Input).focus()

    def submit(self) -> None:
        error = self.query_one("#clone-name-error", Static)
        try:
            name = validate_vm_name(self.query_one("#clone-name", Input).value, field="new name")
            if name in self._existing:
                raise ValidationError("new name", f"a VM named {name} already exists", hint="pick another name")
        except ValidationError as exc:
            error.update(exc.describe())
            error.add_class("visible")
            return
        self.dismiss(name)

"""Take a snapshot: an optional name (multipass picks snapshotN when empty) and a comment."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from devorch_tui.errors import ValidationError
from devorch_tui.services.validation import validate_vm_name
from devorch_tui.ui.screens.form import FormScreen


@dataclass(frozen=True)
class SnapshotRequest:
    name: str | None
    comment: str | None


class SnapshotForm(FormScreen[SnapshotRequest]):
    """Dismisses with a SnapshotRequest, or None on Cancel / Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="snapshot_form.cancel")]
    SUBMIT_BUTTON = "take"

    def __init__(self, vm: str, existing: set[str] | None = None) -> None:
        super().__init__()
        self._vm = vm
        self._existing = existing or set()

    def compose(self) -> ComposeResult:
        with Vertical(id="snapshot-dialog", classes="dialog form-dialog"):
            yield Label(f"Snapshot {self._vm}", classes="dialog-title", markup=False)
            yield Static("The VM must be stopped. Leave the name empty to let multipass pick one.", classes="form-help")
            with Horizontal(classes="form-row"):
                yield Label("Name", classes="form-label")
                yield Input(placeholder="e.g. before-upgrade (optional)", id="snapshot-name", classes="form-input")
            yield Static("", id="snapshot-name-error", classes="field-error", markup=False)
            with Horizontal(classes="form-row"):
                yield Label("Comment", classes="form-label")
                yield Input(placeholder="optional", id="snapshot-comment", classes="form-input")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Take snapshot", id="take", variant="success")

    def on_mount(self) -> None:
        self.query_one("#snapshot-name", Input).focus()

    def submit(self) -> None:
        raw = self.query_one("#snapshot-name", Input).value.strip()
        error = self.query_one("#snapshot-name-error", Static)
        try:
            name = validate_vm_name(raw, field="snapshot name") if raw else None
            if name is not None and name in self._existing:
                raise ValidationError("snapshot name", f"{self._vm} already has a snapshot named {name}", hint="pick another name")
        except ValidationError as exc:
            error.update(exc.describe())
            error.add_class("visible")
            return
        comment = self.query_one("#snapshot-comment", Input).value.strip() or None
        self.dismiss(SnapshotRequest(name=name, comment=comment))

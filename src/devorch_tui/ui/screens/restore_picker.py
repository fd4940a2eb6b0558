"""Pick the snapshot to restore a VM to (the pane then asks for confirmation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList
from textual.widgets.option_list import Option

if TYPE_CHECKING:
    from devorch_tui.services.multipass_models import SnapshotSummary


def _label(snapshot: SnapshotSummary) -> Text:
    text = Text(snapshot.name, style="bold")
    if snapshot.parent:
        text.append(f"  (from {snapshot.parent})", style="dim")
    comment = " ".join(snapshot.comment.split())
    if comment:
        text.append(f"  {comment}")
    return text


class RestorePicker(ModalScreen[str | None]):
    """Dismisses with the chosen snapshot name, or None on Cancel / Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="restore_picker.cancel")]

    def __init__(self, vm: str, snapshots: Sequence[SnapshotSummary]) -> None:
        super().__init__()
        self._vm = vm
        self._snapshots = list(snapshots)

    def compose(self) -> ComposeResult:
        with Vertical(id="restore-dialog", classes="dialog form-dialog"):
            yield Label(f"Restore {self._vm} to a snapshot", classes="dialog-title", markup=False)
            yield OptionList(*(Option(_label(snap), id=snap.name) for snap in self._snapshots), id="restore-options")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Restore…", id="restore", variant="warning")

    def on_mount(self) -> None:
        options = self.query_one("#restore-options", OptionList)
        options.highlighted = 0 if self._snapshots else None
        options.focus()

    def _choose(self) -> None:
        options = self.query_one("#restore-options", OptionList)
        if options.highlighted is None:
            return
        self.dismiss(options.get_option_at_index(options.highlighted).id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "restore":
            self._choose()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

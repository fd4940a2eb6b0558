"""A yes/no question whose default is Cancel (for anything destructive or that runs a program)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True only when the confirm button is pressed; Escape and Cancel give False."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="confirm.cancel"),
        # Arrow keys move between the two buttons, as in most dialogs (Tab does too); Enter presses.
        Binding("left", "app.focus_previous", "Previous button", id="confirm.left", show=False),
        Binding("right", "app.focus_next", "Next button", id="confirm.right", show=False),
    ]

    def __init__(self, title: str, message: str, *, confirm_label: str = "Confirm", destructive: bool = True) -> None:
        super().__init__()
        self._title = title
        self._message = message
        self._confirm_label = confirm_label
        self._destructive = destructive

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="dialog"):
            yield Label(self._title, id="confirm-title", classes="dialog-title")
            yield Static(self._message, id="confirm-message", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button(self._confirm_label, id="confirm", variant="error" if self._destructive else "success")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)

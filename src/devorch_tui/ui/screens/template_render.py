"""Shows a rendered cloud-init.yaml (read only), with its path and hash."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static, TextArea


class RenderedScreen(ModalScreen[None]):
    """The rendered text in a read-only TextArea; Escape or Close dismisses it."""

    BINDINGS = [Binding("escape", "close", "Close", id="template_render.close")]

    def __init__(self, title: str, summary: str, text: str) -> None:
        super().__init__()
        self._title = title
        self._summary = summary
        self._text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="rendered-dialog", classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Static(self._summary, id="rendered-summary", markup=False)
            yield TextArea(self._text, read_only=True, show_line_numbers=True, id="rendered-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)

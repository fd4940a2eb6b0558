"""Templates & .env pane (being built)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from devorch_tui.ui.panes.base import Pane


class TemplatesPane(Pane):
    PANE_ID = "templates"
    PANE_TITLE = "Templates"
    PANE_KEY = "2"

    def compose(self) -> ComposeResult:
        yield Static("Templates")

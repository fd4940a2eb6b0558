"""Host checks pane (being built)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from devorch_tui.ui.panes.base import Pane


class HostPane(Pane):
    PANE_ID = "host"
    PANE_TITLE = "Host"
    PANE_KEY = "1"

    def compose(self) -> ComposeResult:
        yield Static("Host checks")

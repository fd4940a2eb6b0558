"""The dashboard's panes, in tab order. Each pane is one area of the product."""

from __future__ import annotations

from devorch_tui.ui.panes.base import Pane
from devorch_tui.ui.panes.host import HostPane
from devorch_tui.ui.panes.logs import LogsPane
from devorch_tui.ui.panes.templates import TemplatesPane
from devorch_tui.ui.panes.vms import VMsPane

PANES: tuple[type[Pane], ...] = (HostPane, TemplatesPane, VMsPane, LogsPane)

__all__ = ["PANES", "Pane"]

"""The dashboard's panes, in tab order. Each pane is one area of the product.

PANE_SPECS says what the app shell needs before a pane's module is imported (tab title, key, id):
the dashboard imports only the first pane for its first frame and loads the others right after it
(their modules pull in the services they use: jinja2, pydantic models, the multipass client...).
``PANES`` (the pane classes, in the same order) imports every pane module when first used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devorch_tui.ui.panes.base import Pane

if TYPE_CHECKING:
    PANES: tuple[type[Pane], ...]


@dataclass(frozen=True)
class PaneSpec:
    """A pane without its module: the same id, title and key as the class (a test checks they match)."""

    id: str
    title: str
    key: str
    module: str
    class_name: str

    def load(self) -> type[Pane]:
        """Import the pane's module and return its class."""
        return getattr(importlib.import_module(self.module), self.class_name)


PANE_SPECS: tuple[PaneSpec, ...] = (
    PaneSpec("host", "Host", "1", "devorch_tui.ui.panes.host", "HostPane"),
    PaneSpec("templates", "Templates", "2", "devorch_tui.ui.panes.templates", "TemplatesPane"),
    PaneSpec("vms", "VMs", "3", "devorch_tui.ui.panes.vms", "VMsPane"),
    PaneSpec("logs", "Logs", "4", "devorch_tui.ui.panes.logs", "LogsPane"),
)


def __getattr__(name: str) -> Any:
    if name == "PANES":
        return tuple(spec.load() for spec in PANE_SPECS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PANES", "PANE_SPECS", "Pane", "PaneSpec"]

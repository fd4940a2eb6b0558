"""What every pane has: an id, a tab title, a key to reach it, and palette commands from its bindings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding
from textual.containers import Vertical

if TYPE_CHECKING:
    from devorch_tui.ui.app import DevorchApp


@dataclass(frozen=True)
class PaneCommand:
    """An action of a pane offered in the command palette."""

    title: str
    help: str
    action: str


class Pane(Vertical):
    """Base class of the dashboard panes.

    Every Binding with a description becomes a command palette entry ("Pane: description"), so an
    action declared once is reachable by key and by palette. Actions without a key go in
    ``EXTRA_COMMANDS``.
    """

    PANE_ID: ClassVar[str]
    PANE_TITLE: ClassVar[str]
    PANE_KEY: ClassVar[str]
    EXTRA_COMMANDS: ClassVar[tuple[PaneCommand, ...]] = ()

    can_focus = False

    @property
    def devorch(self) -> DevorchApp:
        return self.app  # type: ignore[return-value]

    @classmethod
    def palette_commands(cls) -> Iterable[PaneCommand]:
        for binding in Binding.make_bindings(cls.BINDINGS):
            if binding.description:
                help_text = binding.tooltip or binding.description
                yield PaneCommand(f"{cls.PANE_TITLE}: {binding.description}", help_text, binding.action)
        yield from cls.EXTRA_COMMANDS

    def on_pane_shown(self) -> None:
        """Called when the pane's tab becomes active. Override to refresh or focus."""

    def unfinished_work(self) -> str | None:
        """What quitting now would lose or stop, in a few plain words (e.g. "unsaved .env edits");
        None when nothing. The app asks before it quits when a pane says something."""
        return None

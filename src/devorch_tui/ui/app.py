"""The dashboard: a header, a tab per pane, a footer with the bindings, and the command palette."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cached_property, partial
from typing import TYPE_CHECKING

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, TabbedContent, TabPane

from devorch_tui import __version__
from devorch_tui.config import Settings, Workspace
from devorch_tui.resources import styles_dir
from devorch_tui.services.host import HostProbe, gather_facts
from devorch_tui.ui.panes import PANES, Pane

if TYPE_CHECKING:
    from devorch_tui.services.multipass import MultipassClient
    from devorch_tui.services.runs import RunStore


def _stylesheets() -> list[str]:
    folder = styles_dir()
    sheets = sorted(folder.glob("*.tcss"), key=lambda path: (path.name != "app.tcss", path.name))
    return [str(path) for path in sheets]


class DevorchApp(App[None]):
    TITLE = "devorch-tui"
    SUB_TITLE = f"v{__version__}"
    CSS_PATH = _stylesheets()
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        Binding("ctrl+p", "command_palette", "Commands", id="app.command_palette"),
        *(
            Binding(pane.PANE_KEY, f"show_pane('{pane.PANE_ID}')", pane.PANE_TITLE, id=f"app.pane.{pane.PANE_ID}", show=False)
            for pane in PANES
        ),
    ]

    def __init__(self, settings: Settings, *, host_probe: HostProbe | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.host_probe: HostProbe = host_probe or gather_facts
        """Gathers the host facts the Host pane judges; tests and screenshots pass a fixed one."""
        self.workspace: Workspace = settings.workspace_paths
        self.sub_title = str(self.workspace.root)
        self.selected_vm: str | None = None
        """The VM under the cursor in the VMs pane; other panes use it as their default target."""
        self._setup_logging()
        if settings.keymap:
            self.set_keymap(settings.keymap)

    def _setup_logging(self) -> None:
        log_file = self.settings.paths.log_file
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError:
            return  # an unwritable state dir must not stop the dashboard
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("devorch_tui")
        logger.handlers = [handler]
        logger.setLevel(logging.INFO)

    @cached_property
    def multipass(self) -> MultipassClient:
        """The one multipass client of the app (it serialises mutating calls per instance)."""
        from devorch_tui.services.multipass import MultipassClient

        return MultipassClient.from_settings(self.settings)

    @cached_property
    def run_store(self) -> RunStore:
        """The one run history of the app: every run started here reports through it (Logs pane)."""
        from devorch_tui.services.runs import RunStore

        return RunStore(self.settings.paths.runs_dir)

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="panes"):
            for pane in PANES:
                with TabPane(f"{pane.PANE_KEY} {pane.PANE_TITLE}", id=f"tab-{pane.PANE_ID}"):
                    yield pane(id=pane.PANE_ID)
        yield Footer()

    def pane(self, pane_id: str) -> Pane:
        return self.query_one(f"#{pane_id}", Pane)

    def action_show_pane(self, pane_id: str) -> None:
        self.query_one("#panes", TabbedContent).active = f"tab-{pane_id}"

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane_id = (event.pane.id or "").removeprefix("tab-")
        if pane_id:
            self.pane(pane_id).on_pane_shown()

    async def run_pane_action(self, pane_id: str, action: str) -> None:
        """Show a pane and run one of its actions (used by the command palette)."""
        self.action_show_pane(pane_id)
        await self.pane(pane_id).run_action(action)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for pane in PANES:
            yield SystemCommand(f"Go to {pane.PANE_TITLE}", f"Show the {pane.PANE_TITLE} pane ({pane.PANE_KEY})", partial(self.action_show_pane, pane.PANE_ID))
            for command in pane.palette_commands():
                yield SystemCommand(command.title, command.help, partial(self.run_pane_action, pane.PANE_ID, command.action))

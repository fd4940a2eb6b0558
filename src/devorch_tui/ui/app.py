"""The dashboard: a header, a tab per pane, a footer with the bindings, and the command palette.

The first frame shows the first pane (Host); the other panes are imported and mounted right after
it, in a worker, or at once when they are asked for (tab key, palette) before that: their modules
pull in the services they use, which the first frame does not need.

The settings can come the same way: the CLI hands the app a loader instead of Settings, and the app
runs it (pydantic and pydantic-settings, a quarter of a second of imports) in a thread once the first
frame is up. Whatever needs the settings waits for them (``settings_ready``); a settings error closes
the app and is kept in ``startup_error`` for the CLI to print as it prints every other error.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Iterable
from functools import cached_property, partial
from typing import TYPE_CHECKING

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, TabbedContent, TabPane

from devorch_tui import __version__
from devorch_tui.resources import styles_dir
from devorch_tui.services.host import HostProbe, gather_facts
from devorch_tui.ui.jobs import run_job
from devorch_tui.ui.panes import PANE_SPECS, Pane
from devorch_tui.ui.screens.confirm import ConfirmScreen
from devorch_tui.ui.widgets.footer import KeysFooter

if TYPE_CHECKING:
    from textual.widget import AwaitMount

    from devorch_tui.config import Settings, Workspace
    from devorch_tui.services.multipass import MultipassClient
    from devorch_tui.services.runs import RunStore


log = logging.getLogger("devorch_tui")


def _stylesheets() -> list[str]:
    folder = styles_dir()
    sheets = sorted(folder.glob("*.tcss"), key=lambda path: (path.name != "app.tcss", path.name))
    return [str(path) for path in sheets]


class QuitScreen(ConfirmScreen):
    """"Quit anyway?" listing what would be lost or stopped (Cancel has the focus)."""

    def __init__(self, unfinished: list[str]) -> None:
        listed = "\n".join(f"  • {text}" for text in unfinished)
        super().__init__(
            "Quit devorch-tui?",
            f"Quitting now would lose or stop:\n\n{listed}\n\nctrl+q again quits anyway.",
            confirm_label="Quit anyway",
        )


class DevorchApp(App[None]):
    TITLE = "devorch-tui"
    SUB_TITLE = f"v{__version__}"
    CSS_PATH = _stylesheets()
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, tooltip="Quit (asks first when work would be lost)"),
        Binding("ctrl+p", "command_palette", "Commands", id="app.command_palette", show=False),  # the footer shows it at its right
        *(
            Binding(spec.key, f"show_pane('{spec.id}')", spec.title, id=f"app.pane.{spec.id}", show=False)
            for spec in PANE_SPECS
        ),
    ]

    def __init__(
        self,
        settings: Settings | Callable[[], Settings],
        *,
        host_probe: HostProbe | None = None,
        own_process: bool = False,
    ) -> None:
        """``settings``: the Settings, or a function that loads them (run in a thread after the first frame)."""
        super().__init__()
        self.own_process = own_process
        """The app is the process (the CLI's dashboard), not one of many apps in it (tests): it may tune
        process-wide things such as the garbage collector."""
        self.host_probe: HostProbe = host_probe or gather_facts
        """Gathers the host facts the Host pane judges; tests and screenshots pass a fixed one."""
        self.selected_vm: str | None = None
        """The VM under the cursor in the VMs pane; other panes use it as their default target."""
        self.startup_error: Exception | None = None
        """Why the settings could not be loaded (the app has closed); the CLI reports it."""
        self._pane_mounts: dict[str, AwaitMount] = {}
        """Panes mounted after the first frame (by id): awaiting one waits until it is mounted."""
        self._settings: Settings | None = None
        self._settings_loaded = asyncio.Event()
        self._settings_loader: Callable[[], Settings] | None = None
        if callable(settings):
            self._settings_loader = settings
        else:
            self._use_settings(settings)

    @property
    def settings(self) -> Settings:
        """The app's settings (``settings_ready`` waits for them while they load)."""
        if self._settings is None:
            raise RuntimeError("the settings are still loading: await settings_ready() first")
        return self._settings

    @property
    def workspace(self) -> Workspace:
        return self.settings.workspace_paths

    async def settings_ready(self) -> Settings:
        """The settings, once loaded."""
        await self._settings_loaded.wait()
        return self.settings

    def _use_settings(self, settings: Settings) -> None:
        self._settings = settings
        self.sub_title = str(settings.workspace_paths.root)
        self._setup_logging()
        if settings.keymap:
            self.set_keymap(settings.keymap)
        self._settings_loaded.set()

    def _fatal_error(self) -> None:
        """A crash (a bug: every expected failure is a message): Textual prints the traceback with its
        local variables, which may hold secrets (a task file, a .env value). Print it without them, and
        keep it in the app log."""
        import rich
        from rich.segment import Segments
        from rich.traceback import Traceback

        log.error("devorch-tui stopped on an unexpected error", exc_info=True)
        self.bell()
        traceback = Traceback(show_locals=False, width=None, suppress=[rich])
        self._exit_renderables.append(Segments(self.console.render(traceback, self.console.options)))
        self._close_messages_no_wait()

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
            for index, spec in enumerate(PANE_SPECS):
                with TabPane(f"{spec.key} {spec.title}", id=f"tab-{spec.id}"):
                    if index == 0:  # the active pane; the others are mounted after the first frame
                        yield spec.load()(id=spec.id)
        yield KeysFooter()  # Textual's Footer, updated in place (see its module)

    def on_ready(self) -> None:
        """The first frame is on screen: load the settings (if they were not given) and the other panes now."""
        run_job(self, self._load_panes, title="Loading the panes", group="load-panes")

    async def _load_settings(self) -> bool:
        """Run the settings loader in a thread (the UI keeps drawing); on failure close the app."""
        loader = self._settings_loader
        if loader is None:
            return True
        self._settings_loader = None
        try:
            settings = await asyncio.to_thread(loader)
        except Exception as exc:  # noqa: BLE001 - reported by the CLI once the terminal is back
            self.startup_error = exc
            self.exit(return_code=getattr(exc, "exit_code", 1))
            return False
        self._use_settings(settings)
        return True

    async def _load_panes(self) -> None:
        if not await self._load_settings():
            return
        for spec in PANE_SPECS:
            await self.load_pane(spec.id)
        self.freeze_long_lived()

    def freeze_long_lived(self) -> None:
        """Everything allocated so far lives as long as the process (modules, panes): keep the cyclic
        garbage collector from walking it again (a full collection of it stalled the first key press
        or the start of a run by 10-100 ms). Only when the app is the process, not one of many (tests):
        what is already cyclic garbage at that moment is never freed."""
        if self.own_process:
            gc.freeze()

    async def load_pane(self, pane_id: str) -> Pane:
        """The pane ``pane_id`` once it is mounted (importing and mounting it now if it was not yet)."""
        mounting = self._pane_mounts.get(pane_id)
        if mounting is None:
            mounted = self.query(f"#{pane_id}").results(Pane)
            pane = next(mounted, None)
            if pane is not None:  # composed with the app
                return pane
            await self.settings_ready()  # the other panes use them from the moment they mount
            mounting = self._pane_mounts.get(pane_id)  # asked for twice while the settings loaded
        if mounting is None:
            spec = next(spec for spec in PANE_SPECS if spec.id == pane_id)
            mounting = self._pane_mounts[pane_id] = self.query_one(f"#tab-{pane_id}", TabPane).mount(spec.load()(id=spec.id))
        await mounting
        return self.pane(pane_id)

    def pane(self, pane_id: str) -> Pane:
        return self.query_one(f"#{pane_id}", Pane)

    async def action_quit(self) -> None:
        """Quit; first ask when a pane has unfinished work (unsaved edits, a running job). ctrl+q again
        while the question is shown quits."""
        if isinstance(self.screen, QuitScreen):
            self.exit()
            return
        unfinished = [text for pane in self.query(Pane) if (text := pane.unfinished_work())]
        if not unfinished:
            self.exit()
            return

        def answered(quit_anyway: bool | None) -> None:
            if quit_anyway:
                self.exit()

        self.push_screen(QuitScreen(unfinished), answered)

    def action_show_pane(self, pane_id: str) -> None:
        self.query_one("#panes", TabbedContent).active = f"tab-{pane_id}"

    async def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        tab_id = event.pane.id or ""
        pane_id = tab_id.removeprefix("tab-")
        if pane_id:
            pane = await self.load_pane(pane_id)
            if self.query_one("#panes", TabbedContent).active == tab_id:  # still shown once it is mounted
                pane.on_pane_shown()

    async def run_pane_action(self, pane_id: str, action: str) -> None:
        """Show a pane and run one of its actions (used by the command palette)."""
        self.action_show_pane(pane_id)
        pane = await self.load_pane(pane_id)
        await pane.run_action(action)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for spec in PANE_SPECS:
            yield SystemCommand(f"Go to {spec.title}", f"Show the {spec.title} pane ({spec.key})", partial(self.action_show_pane, spec.id))
            for command in spec.load().palette_commands():
                yield SystemCommand(command.title, command.help, partial(self.run_pane_action, spec.id, command.action))

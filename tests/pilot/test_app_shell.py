"""The app shell: panes, switching, palette, quit, binding ids."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import threading
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.command import CommandPalette
from textual.widgets import TabbedContent

import devorch_tui.ui
from devorch_tui.config import Settings
from devorch_tui.errors import DevorchError
from devorch_tui.services.host import HostFacts
from devorch_tui.ui.app import DevorchApp
from devorch_tui.ui.panes import PANES, Pane
from tests.pilot.test_host_pane import READY as FACTS
from tests.pilot.test_host_pane import Probe
from tests.pilot.waiting import wait_until


def ui_classes_with_bindings() -> list[type]:
    classes: dict[str, type] = {}
    for module_info in pkgutil.walk_packages(devorch_tui.ui.__path__, "devorch_tui.ui."):
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and "BINDINGS" in cls.__dict__:
                classes[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return list(classes.values())


def test_every_binding_has_an_id() -> None:
    classes = ui_classes_with_bindings()
    assert DevorchApp in classes
    missing = [
        f"{cls.__qualname__}: {binding.key} -> {binding.action}"
        for cls in classes
        for binding in Binding.make_bindings(cls.__dict__["BINDINGS"])
        if not binding.id
    ]
    assert missing == []


def test_binding_ids_are_unique() -> None:
    seen: dict[str, str] = {}
    duplicates = []
    for cls in ui_classes_with_bindings():
        for binding in Binding.make_bindings(cls.__dict__["BINDINGS"]):
            if binding.id in seen and seen[binding.id] != cls.__qualname__:
                duplicates.append(binding.id)
            seen[binding.id] = cls.__qualname__
    assert duplicates == []


async def test_number_keys_switch_panes_and_ctrl_q_quits(settings: Settings) -> None:
    app = DevorchApp(settings)
    async with app.run_test(size=(140, 40)) as pilot:
        tabs = app.query_one("#panes", TabbedContent)
        assert tabs.active == f"tab-{PANES[0].PANE_ID}"
        for pane in reversed(PANES):
            await pilot.press(pane.PANE_KEY)
            await pilot.pause()
            assert tabs.active == f"tab-{pane.PANE_ID}"
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0


async def test_palette_offers_every_pane_and_its_actions(settings: Settings) -> None:
    app = DevorchApp(settings)
    async with app.run_test(size=(140, 40)) as pilot:
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for pane in PANES:
            assert f"Go to {pane.PANE_TITLE}" in titles
            for command in pane.palette_commands():
                assert command.title in titles
        # Using the palette for real: open it, pick "Go to <last pane>".
        last = PANES[-1]
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*f"Go to {last.PANE_TITLE}")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#panes", TabbedContent).active == f"tab-{last.PANE_ID}"


def test_pane_specs_match_the_pane_classes() -> None:
    from devorch_tui.ui.panes import PANE_SPECS

    assert [(spec.id, spec.title, spec.key) for spec in PANE_SPECS] == [(pane.PANE_ID, pane.PANE_TITLE, pane.PANE_KEY) for pane in PANES]


async def test_other_panes_are_mounted_after_the_first_frame(settings: Settings) -> None:
    """Only the Host pane is composed with the app; the others follow without being asked for."""
    app = DevorchApp(settings)
    async with app.run_test(size=(140, 40)) as pilot:
        for _ in range(200):
            panes = list(app.query(Pane))
            if len(panes) == len(PANES) and all(pane.is_mounted for pane in panes):
                break
            await pilot.pause(0.05)
        assert [pane.id for pane in app.query(Pane)] == [pane.PANE_ID for pane in PANES]
        assert all(pane.is_mounted for pane in app.query(Pane))
        assert app.query_one("#panes", TabbedContent).active == f"tab-{PANES[0].PANE_ID}"
        assert app.focused is not None and app.pane(PANES[0].PANE_ID) in app.focused.ancestors


async def test_settings_given_as_a_loader_load_after_the_first_frame(isolated_dirs: dict[str, Path]) -> None:
    """The CLI's path: the first frame is up before the settings load (in a thread); then the header
    names the workspace, the keymap applies, the Host pane checks with them and the panes mount."""
    from devorch_tui.config import load_settings

    calls: list[tuple[bool, str]] = []
    first_frame_up: list[bool] = []

    def loader() -> Settings:
        calls.append((bool(first_frame_up), threading.current_thread().name))
        return load_settings(keymap={"app.pane.logs": "0"})

    class Watched(DevorchApp):
        def on_ready(self) -> None:
            first_frame_up.append(True)
            super().on_ready()

    probed: list[Settings] = []

    async def probe(settings: Settings) -> HostFacts:
        probed.append(settings)
        return FACTS

    app = Watched(loader, host_probe=probe)
    async with app.run_test(size=(140, 40)) as pilot:
        settings = await app.settings_ready()
        await wait_until(pilot, lambda: len(list(app.query(Pane))) == len(PANES) and bool(probed), "panes and the host check")
        assert calls == [(True, calls[0][1])] and calls[0][1] != threading.main_thread().name
        assert app.settings is settings and probed == [settings]
        assert app.sub_title == str(isolated_dirs["workspace"].resolve())
        await pilot.press("0")  # the keymap from the loaded settings
        await pilot.pause()
        assert app.query_one("#panes", TabbedContent).active == "tab-logs"
    assert app.startup_error is None


async def test_a_settings_error_closes_the_dashboard_and_is_kept_for_the_cli() -> None:
    def loader() -> Settings:
        raise DevorchError("invalid setting: poll_interval: Input should be greater than 0", hint="check DEVORCH_*")

    app = DevorchApp(loader, host_probe=Probe(FACTS))
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: app.startup_error is not None and not app.is_running, "the app closes")
    assert isinstance(app.startup_error, DevorchError)
    assert "poll_interval" in app.startup_error.message
    assert app.return_code == 1


async def test_quit_asks_first_when_a_pane_has_unfinished_work(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from devorch_tui.ui.app import QuitScreen
    from devorch_tui.ui.panes.host import HostPane

    monkeypatch.setattr(HostPane, "unfinished_work", lambda self: "unsaved test edits")
    app = DevorchApp(settings, host_probe=Probe(FACTS))
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit question")
        assert "unsaved test edits" in str(app.screen.query_one("#confirm-message").render())
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.press("enter")  # Cancel: the app stays
        await wait_until(pilot, lambda: not isinstance(app.screen, QuitScreen), "the question closes")
        assert app.is_running
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit question again")
        await pilot.press("ctrl+q")  # twice quits
        await wait_until(pilot, lambda: not app.is_running, "the app quits")
    assert app.return_code == 0


async def test_a_crash_prints_its_traceback_without_local_variables(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """Textual shows a crash's local variables; they may hold secrets (a task file, a .env value)."""

    class Crashing(DevorchApp):
        BINDINGS = [Binding("f12", "crash", id="test.crash")]

        def action_crash(self) -> None:
            api_token = "-".join(("tok", "SuperSecret123"))  # the value is not in the source shown
            raise RuntimeError(f"boom ({len(api_token)})")

    app = Crashing(settings, host_probe=Probe(FACTS))
    with pytest.raises(RuntimeError, match="boom"):
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.press("f12")
            await pilot.pause()
    shown = capsys.readouterr().err
    assert "RuntimeError: boom (18)" in shown and "action_crash" in shown
    assert "tok-SuperSecret123" not in shown
    assert app.return_code == 1


async def test_the_footer_restyled_in_place_shows_what_a_rebuilt_footer_shows(settings: Settings) -> None:
    """KeysFooter skips Footer's rebuild when only the keys' state changes: after every change it must
    show exactly the keys, labels and dimmed states that Textual's own rebuild gives."""
    from devorch_tui.ui.panes.logs import LogsPane
    from devorch_tui.ui.widgets.footer import KeysFooter

    def shown(footer: KeysFooter) -> list[tuple[str, str, bool, str | None]]:
        return [(key.key, key.description, key.has_class("-disabled"), key.tooltip) for key in footer.query("FooterKey")]

    async def same_as_rebuilt(footer: KeysFooter) -> list[tuple[str, str, bool, str | None]]:
        await pilot.pause(0.1)
        in_place, keys_before = shown(footer), set(map(id, footer.children))
        footer.call_later(footer.recompose)  # Footer's own rebuild, in the footer's context
        await wait_until(pilot, lambda: not keys_before & set(map(id, footer.children)), "the rebuilt footer")
        assert shown(footer) == in_place
        return in_place

    app = DevorchApp(settings, host_probe=Probe(FACTS))
    async with app.run_test(size=(160, 40)) as pilot:
        footer = app.query_one(KeysFooter)
        assert [key for key, *_ in await same_as_rebuilt(footer)][:3] == ["r", "i", "k"]
        await pilot.press("4")
        logs = await app.load_pane("logs")
        assert isinstance(logs, LogsPane)
        idle = await same_as_rebuilt(footer)
        assert ("c", "Cancel run", True, idle[[key for key, *_ in idle].index("c")][3]) in idle  # dimmed: no run
        run = app.run_store.open_run("tasks", "demo", ["vm1"], steps=["s"])
        logs.register_canceller(run.id, lambda: None)
        await wait_until(pilot, lambda: logs.run_id == run.id, "the run shown")
        running = await same_as_rebuilt(footer)
        assert [disabled for key, _, disabled, _ in running if key == "c"] == [False]  # live while it runs
        run.finish()
        await wait_until(pilot, lambda: logs.record is not None and logs.record.status != "running", "the run ends")
        await same_as_rebuilt(footer)
        await pilot.press("2")
        await pilot.pause(0.3)
        assert "Copy" in [description for _, description, _, _ in await same_as_rebuilt(footer)]

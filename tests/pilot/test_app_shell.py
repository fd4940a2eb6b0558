"""The app shell: panes, switching, palette, quit, binding ids."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from textual.binding import Binding
from textual.command import CommandPalette
from textual.widgets import TabbedContent

import devorch_tui.ui
from devorch_tui.config import Settings
from devorch_tui.ui.app import DevorchApp
from devorch_tui.ui.panes import PANES, Pane


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

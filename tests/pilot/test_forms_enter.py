"""Enter in the fields of every dialog form: one submit (one dismiss, one result), never two.

Textual runs a message handler defined in each class of the MRO; a form subclass that handled
Input.Submitted itself next to FormScreen's handler dismissed twice and crashed the app with
``ScreenStackError: Can't pop screen``. These tests type and press Enter as a user does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Input

from devorch_tui.ui.screens.clone_form import CloneForm
from devorch_tui.ui.screens.form import FormScreen
from devorch_tui.ui.screens.launch_form import LaunchDefaults, LaunchForm
from devorch_tui.ui.screens.new_run import NewRunRequest, NewRunScreen
from devorch_tui.ui.screens.provision_form import ProvisionForm
from devorch_tui.ui.screens.save_log import SaveLogScreen
from devorch_tui.ui.screens.snapshot_form import SnapshotForm
from tests.pilot.waiting import wait_until


class Host(App[None]):
    """An empty app that opens one form and records every result it is dismissed with."""

    def __init__(self, make: Callable[[], FormScreen]) -> None:
        super().__init__()
        self._make = make
        self.results: list[object] = []

    def on_mount(self) -> None:
        self.push_screen(self._make(), self.results.append)


async def enter_in(pilot, field_id: str, text: str | None = None) -> None:  # noqa: ANN001
    """Focus ``field_id``, optionally type ``text`` into it (replacing its value), press Enter."""
    field = pilot.app.screen.query_one(f"#{field_id}", Input)
    field.focus()
    if text is not None:
        field.value = ""
        await pilot.press(*text)
    await pilot.press("enter")


async def test_enter_in_every_field_of_the_launch_form_launches_once() -> None:
    app = Host(lambda: LaunchForm(LaunchDefaults(name="dev-1")))
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, LaunchForm), "launch form")
        await enter_in(pilot, "launch-disk", "30G")
        await pilot.press("enter")  # a second Enter (key repeat) reaches the screen below: no second result
        await wait_until(pilot, lambda: not isinstance(app.screen, LaunchForm), "form closed")
        await pilot.pause()
    assert len(app.results) == 1 and app.results[0].disk == "30G"  # type: ignore[union-attr]


async def test_enter_in_the_launch_form_with_a_bad_value_stays_open() -> None:
    app = Host(lambda: LaunchForm(LaunchDefaults(name="dev-1")))
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, LaunchForm), "launch form")
        await enter_in(pilot, "launch-cpus", "lots")
        await pilot.pause()
        assert isinstance(app.screen, LaunchForm) and app.results == []
        await enter_in(pilot, "launch-cpus", "4")
        await wait_until(pilot, lambda: not isinstance(app.screen, LaunchForm), "form closed")
    assert len(app.results) == 1 and app.results[0].cpus == 4  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("make", "field_id", "text", "expected"),
    [
        (lambda: CloneForm("golden", existing={"golden"}), "clone-name", "dev-copy", "dev-copy"),
        (lambda: SnapshotForm("dev-1"), "snapshot-name", "before", "before"),
        (lambda: SnapshotForm("dev-1"), "snapshot-comment", "a note", None),
    ],
)
async def test_enter_submits_small_forms_once(make, field_id: str, text: str, expected: str | None) -> None:  # noqa: ANN001
    app = Host(make)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, FormScreen), "form")
        await enter_in(pilot, field_id, text)
        await wait_until(pilot, lambda: not isinstance(app.screen, FormScreen), "form closed")
        await pilot.pause()
    assert len(app.results) == 1
    result = app.results[0]
    assert (result if isinstance(result, str) else result.name) == expected  # type: ignore[union-attr]


async def test_enter_in_the_provision_form_submits_once() -> None:
    app = Host(lambda: ProvisionForm())
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ProvisionForm), "form")
        app.screen.query_one("#provision-name", Input).value = "demo"
        await enter_in(pilot, "provision-repo", "https://example.com/demo.git")
        await wait_until(pilot, lambda: not isinstance(app.screen, ProvisionForm), "form closed")
        await pilot.pause()
    assert len(app.results) == 1 and app.results[0].name == "demo"  # type: ignore[union-attr]


async def test_enter_in_the_save_prompt_saves_once(tmp_path: Path) -> None:
    app = Host(lambda: SaveLogScreen(tmp_path / "a.log", what="the log"))
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SaveLogScreen), "prompt")
        await enter_in(pilot, "save-log-path", str(tmp_path / "b.log"))
        await wait_until(pilot, lambda: not isinstance(app.screen, SaveLogScreen), "prompt closed")
        await pilot.pause()
    assert app.results == [tmp_path / "b.log"]


async def test_new_run_form_enter_moves_on_from_targets_then_runs_once(workspace: Path) -> None:
    (workspace / "t.json").write_text('{"name": "x", "tasks": [{"name": "a", "run": "true"}]}')
    app = Host(lambda: NewRunScreen(targets=[], task_path=None, base_dir=workspace))
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, NewRunScreen), "form")
        screen = app.screen
        await pilot.press("enter")  # no target yet: says so and stays
        await pilot.pause()
        assert "at least one target" in str(screen.query_one("#new-run-targets-error").render())
        await pilot.press(*"dev-a")
        await pilot.press("enter")  # moves on to the task file field, does not run
        await wait_until(pilot, lambda: screen.query_one("#new-run-task-file", Input).has_focus, "task file field focused")
        assert app.screen is screen and app.results == []
        await pilot.press(*"t.json", "enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, NewRunScreen), "form closed")
        await pilot.pause()
    assert len(app.results) == 1
    request = app.results[0]
    assert isinstance(request, NewRunRequest) and request.targets == ["dev-a"] and request.task_path == workspace / "t.json"


def test_a_form_cannot_handle_enter_or_buttons_itself() -> None:
    with pytest.raises(TypeError, match="field_submitted"):

        class Broken(FormScreen[str]):  # noqa: F841
            SUBMIT_BUTTON = "ok"

            def on_input_submitted(self, event: Input.Submitted) -> None: ...

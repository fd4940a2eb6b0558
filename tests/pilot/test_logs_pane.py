"""The Logs pane driven through the real app: live lines from RunStore events, follow, filter, save,
task list, switching runs and targets, cancel, past runs from disk, and a real run over SSH."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from devorch_tui.config import Settings, load_settings
from devorch_tui.services.runs import RunStore
from devorch_tui.ui.app import DevorchApp, QuitScreen
from devorch_tui.ui.panes.logs import LogsPane
from devorch_tui.ui.screens.confirm import ConfirmScreen
from devorch_tui.ui.screens.new_run import NewRunScreen
from devorch_tui.ui.screens.run_picker import RunPickerScreen
from devorch_tui.ui.screens.save_log import SaveLogScreen
from devorch_tui.ui.widgets.run_log import RunLog
from tests.pilot.waiting import click_again, wait_until

SIZE = (140, 40)


def showing(app: DevorchApp, screen_type: type, selector: str) -> Callable[[], bool]:
    """A condition: ``screen_type`` is on top and has composed ``selector``."""
    return lambda: isinstance(app.screen, screen_type) and bool(app.screen.query(selector))


def texts(pane: LogsPane) -> list[str]:
    """The text part of every line in the view (after the ``HH:MM:SS M [step] `` prefix)."""
    return [line.split("] ", 1)[1] if "] " in line else line for line in pane.log_view.lines]


async def open_logs(pilot: Pilot) -> LogsPane:
    await pilot.press("4")
    await pilot.pause()
    return pilot.app.query_one("#logs", LogsPane)


async def test_live_lines_arrive_in_batches_with_ansi_stripped(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[int] = []
    original = RunLog._append

    def counting(self: RunLog, lines: list[str]) -> int:
        writes.append(len(lines))
        return original(self, lines)

    monkeypatch.setattr(RunLog, "_append", counting)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        run = app.run_store.open_run("tasks", "demo", ["vm1"], steps=["build"])
        await wait_until(pilot, lambda: pane.run_id == run.id and pane._hold is None, "the new run is shown")
        writes.clear()
        run.step("vm1", "build", "running")
        for i in range(5000):
            run.line("vm1", "build", "stdout", f"line {i}")
        run.line("vm1", "build", "stderr", "\x1b[1;31mred alert\x1b[0m and \x1b]0;title\x07more")
        await wait_until(pilot, lambda: pane.log_view.line_count == 5001, "5001 lines in the view")
        assert texts(pane)[:3] == ["line 0", "line 1", "line 2"]
        assert texts(pane)[-1] == "red alert and more"
        assert " ! [build] " in pane.log_view.lines[-1]  # stderr is marked
        assert sum(writes) == 5001
        assert len(writes) <= 3, f"5001 lines pushed in one go were written in {len(writes)} writes"


async def test_follow_stops_on_scroll_up_and_resumes_at_the_end(settings: Settings) -> None:
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        run = app.run_store.open_run("tasks", "demo", ["vm1"], steps=["build"])
        await wait_until(pilot, lambda: pane.run_id == run.id and pane._hold is None, "run shown")
        run.lines("vm1", "build", "stdout", [f"first {i}" for i in range(200)])
        view = pane.log_view
        await wait_until(pilot, lambda: view.line_count == 200, "200 lines")
        await pilot.pause()
        assert view.following and view.scroll_y == view.max_scroll_y > 0

        view.focus()
        await pilot.press("pageup")
        await wait_until(pilot, lambda: not view.following, "follow stops")
        held_at = view.scroll_y
        assert held_at < view.max_scroll_y
        assert "paused" in str(app.query_one("#logs-status").render())

        run.lines("vm1", "build", "stdout", [f"second {i}" for i in range(100)])
        await wait_until(pilot, lambda: view.line_count == 300, "300 lines")
        await pilot.pause()
        assert view.scroll_y == held_at, "the view must not move while the user reads"

        await pilot.press("end")
        await wait_until(pilot, lambda: view.following, "follow resumes")
        run.lines("vm1", "build", "stdout", [f"third {i}" for i in range(50)])
        await wait_until(pilot, lambda: view.line_count == 350, "350 lines")
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y
        assert "following" in str(app.query_one("#logs-status").render())


async def test_unfollowed_view_stays_on_its_lines_when_old_ones_are_dropped(isolated_dirs: dict[str, Path]) -> None:
    settings = load_settings(log_max_lines=1000)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        run = app.run_store.open_run("tasks", "demo", ["vm1"], steps=["s"])
        await wait_until(pilot, lambda: pane.run_id == run.id and pane._hold is None, "run shown")
        run.lines("vm1", "s", "stdout", [f"n{i}" for i in range(1000)])
        view = pane.log_view
        await wait_until(pilot, lambda: view.line_count == 1000, "1000 lines")
        view.focus()
        await pilot.press("pageup")
        await wait_until(pilot, lambda: not view.following, "paused")
        top_before = texts(pane)[round(view.scroll_y)]
        run.lines("vm1", "s", "stdout", [f"m{i}" for i in range(300)])
        await wait_until(pilot, lambda: view.total_pushed == 1300, "1300 lines pushed")
        assert view.line_count == 1000  # max_lines holds
        assert texts(pane)[round(view.scroll_y)] == top_before


async def test_filter_reads_the_whole_log_from_disk_and_applies_to_live_lines(isolated_dirs: dict[str, Path]) -> None:
    settings = load_settings(log_max_lines=1000)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        run = app.run_store.open_run("tasks", "demo", ["vm1"], steps=["s"])
        await wait_until(pilot, lambda: pane.run_id == run.id and pane._hold is None, "run shown")
        run.lines("vm1", "s", "stdout", [("needle" if i % 100 == 0 else "hay") + f" {i}" for i in range(3000)])
        await wait_until(pilot, lambda: pane.log_view.total_pushed == 3000, "3000 lines")
        assert pane.log_view.line_count == 1000  # the view dropped the oldest 2000 lines

        await pilot.press("slash")
        box = app.query_one("#logs-filter", Input)
        assert box.display and box.has_focus
        await pilot.press(*"NEEDLE", "enter")
        await wait_until(pilot, lambda: pane.filter_text == "NEEDLE" and pane._hold is None, "filter applied")
        await wait_until(pilot, lambda: pane.log_view.line_count == 30, "30 matches")
        assert texts(pane) == [f"needle {i}" for i in range(0, 3000, 100)]  # old ones too, from disk
        assert "30 matching lines" in str(app.query_one("#logs-status").render())

        run.lines("vm1", "s", "stdout", ["hay late", "needle late"])
        await wait_until(pilot, lambda: pane.log_view.line_count == 31, "a live match")
        assert texts(pane)[-1] == "needle late"

        pane.log_view.focus()
        await pilot.press("escape")
        await wait_until(pilot, lambda: pane.filter_text is None and pane._hold is None, "filter cleared")
        await wait_until(pilot, lambda: pane.log_view.line_count == 1000, "full view again")
        assert texts(pane)[-2:] == ["hay late", "needle late"]
        assert not box.display


async def test_save_writes_the_whole_log_to_the_chosen_file(settings: Settings, tmp_path: Path) -> None:
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        run = app.run_store.open_run("tasks", "demo", ["vm1"], steps=["s"])
        await wait_until(pilot, lambda: pane.run_id == run.id and pane._hold is None, "run shown")
        run.lines("vm1", "s", "stdout", [f"row {i}" for i in range(500)])
        run.line("vm1", "s", "stderr", "\x1b[31mbad\x1b[0m")
        await wait_until(pilot, lambda: pane.log_view.line_count == 501, "501 lines")

        await pilot.press("w")
        await wait_until(pilot, showing(app, SaveLogScreen, "#save-log-path"), "save prompt")
        path_box = app.screen.query_one("#save-log-path", Input)
        assert path_box.value == str(Path.cwd() / f"{run.id}-vm1.log")  # default: cwd
        target = tmp_path / "saved.log"
        path_box.value = str(target)
        await pilot.press("enter")
        await wait_until(pilot, target.exists, "saved file")
        saved = target.read_text().splitlines()
        assert saved == list(pane.log_view.lines)
        assert saved[-1].endswith("! [s] bad")
        assert target.stat().st_mode & 0o777 == 0o600  # as private as the run's own log


async def test_save_prompt_refuses_a_missing_folder(settings: Settings, tmp_path: Path) -> None:
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        run = app.run_store.open_run("tasks", "demo", ["vm1"], steps=["s"])
        await wait_until(pilot, lambda: pane.run_id == run.id, "run shown")
        await pilot.press("w")
        await wait_until(pilot, showing(app, SaveLogScreen, "#save-log-path"), "save prompt")
        app.screen.query_one("#save-log-path", Input).value = str(tmp_path / "nope" / "x.log")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SaveLogScreen)
        assert "does not exist" in str(app.screen.query_one("#save-log-error").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, SaveLogScreen)


async def test_task_list_shows_status_exit_code_and_duration(settings: Settings) -> None:
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        run = app.run_store.open_run("tasks", "demo", ["vm1"], steps=["sync", "tests", "lint"])
        await wait_until(pilot, lambda: pane.run_id == run.id and pane._hold is None, "run shown")
        rows = pane.task_list.rows_by_name
        assert [row.status for row in rows.values()] == ["pending"] * 3
        run.step("vm1", "sync", "running")
        run.step("vm1", "sync", "ok", exit_code=0, duration=1.25)
        run.step("vm1", "tests", "running")
        run.step("vm1", "tests", "failed", exit_code=3, duration=75.0)
        await wait_until(pilot, lambda: pane.task_list.rows_by_name["tests"].status == "failed", "tests failed")
        table = pane.task_list
        assert [str(table.get_cell("sync", key)) for key in ("status", "exit", "time")] == ["ok", "0", "1.2s"]
        assert [str(table.get_cell("tests", key)) for key in ("status", "exit", "time")] == ["failed", "3", "1m15s"]
        assert str(table.get_cell("lint", "status")) == "pending"
        run.finish()
        await wait_until(pilot, lambda: pane.record is not None and pane.record.status == "failed", "run finished")
        assert "failed" in str(app.query_one("#logs-run").render())


async def test_targets_switch_with_brackets_and_keep_their_own_lines(settings: Settings) -> None:
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        run = app.run_store.open_run("tasks", "fan-out", ["vm1", "vm2"], steps=["s"])
        await wait_until(pilot, lambda: pane.run_id == run.id and pane._hold is None, "run shown")
        assert pane.target == "vm1"
        run.lines("vm1", "s", "stdout", ["from one"])
        run.lines("vm2", "s", "stdout", ["from two"])
        await wait_until(pilot, lambda: pane.log_view.line_count == 1, "vm1 line")
        assert texts(pane) == ["from one"]

        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: pane.target == "vm2" and pane._hold is None, "vm2 shown")
        await wait_until(pilot, lambda: pane.log_view.line_count == 1, "vm2 line")
        assert texts(pane) == ["from two"]
        run.lines("vm2", "s", "stdout", ["two again"])
        run.lines("vm1", "s", "stdout", ["one again"])
        await wait_until(pilot, lambda: pane.log_view.line_count == 2, "live vm2 line")
        assert texts(pane) == ["from two", "two again"]

        await pilot.press("left_square_bracket")
        await wait_until(pilot, lambda: pane.target == "vm1" and pane._hold is None, "vm1 again")
        await wait_until(pilot, lambda: pane.log_view.line_count == 2, "vm1 lines from disk")
        assert texts(pane) == ["from one", "one again"]


async def test_run_picker_switches_to_a_past_run(settings: Settings) -> None:
    store = RunStore(settings.paths.runs_dir)
    old = store.open_run("provision", "provision dev-a", ["dev-a"], steps=["clone"])
    old.line("dev-a", "clone", "stdout", "cloned old")
    old.finish("ok")
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        await wait_until(pilot, lambda: pane.run_id == old.id, "latest run shown at start")
        new = app.run_store.open_run("tasks", "newer", ["vm9"], steps=["s"])
        new.line("vm9", "s", "stdout", "new line")
        pane.follow_run(new.id)
        await wait_until(pilot, lambda: pane.run_id == new.id and pane._hold is None, "new run shown")

        await pilot.press("r")
        await wait_until(pilot, showing(app, RunPickerScreen, "#run-picker-table"), "picker")
        table = app.screen.query_one("#run-picker-table", DataTable)
        assert table.row_count == 2
        assert table.cursor_row == 0  # the current run is first (newest)
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: pane.run_id == old.id and pane._hold is None, "old run shown")
        await wait_until(pilot, lambda: pane.log_view.line_count == 1, "old log")
        assert texts(pane) == ["cloned old"]
        assert pane.record is not None and pane.record.kind == "provision"


async def test_past_run_cut_off_by_a_crash_shows_as_interrupted(settings: Settings) -> None:
    store = RunStore(settings.paths.runs_dir)
    run = store.open_run("tasks", "crashed", ["vm1"], steps=["long"])
    run.step("vm1", "long", "running")
    run.line("vm1", "long", "stdout", "working…")
    record_path = run.dir / "run.json"
    data = json.loads(record_path.read_text())
    data["pid"] = 2**22 + 12345  # no such process: the owner is gone
    data["pid_started"] = None
    record_path.write_text(json.dumps(data))
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        await wait_until(pilot, lambda: pane.run_id == run.id and pane._hold is None, "run shown")
        await wait_until(pilot, lambda: pane.log_view.line_count == 1, "its log")
        assert pane.record is not None and pane.record.status == "interrupted"
        assert pane.task_list.rows_by_name["long"].status == "interrupted"
        assert "interrupted" in str(app.query_one("#logs-run").render())


async def test_cancel_asks_first_and_then_stops_the_run(settings: Settings) -> None:
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        run = app.run_store.open_run("tasks", "long one", ["vm1"], steps=["s"])
        stop = asyncio.Event()
        pane.register_canceller(run.id, stop.set)
        await wait_until(pilot, lambda: pane.run_id == run.id and pane._hold is None, "run shown")

        await pilot.press("c")
        await wait_until(pilot, showing(app, ConfirmScreen, "#confirm"), "confirm")
        await pilot.press("enter")  # Cancel has the focus: nothing stops
        await pilot.pause()
        assert not stop.is_set()

        await pilot.press("c")
        await wait_until(pilot, showing(app, ConfirmScreen, "#confirm"), "confirm again")
        await pilot.click("#confirm")
        await wait_until(pilot, stop.is_set, "cancel requested")


async def test_new_run_form_checks_the_task_file(settings: Settings, workspace: Path) -> None:
    bad = workspace / "bad-tasks.json"
    bad.write_text(json.dumps({"name": "x", "tasks": [{"name": "a", "run": "true", "timeout": -1}]}))
    app = DevorchApp(settings)
    app.selected_vm = "dev-project"
    async with app.run_test(size=SIZE) as pilot:
        await app.run_pane_action("logs", "new_run")
        await wait_until(pilot, showing(app, NewRunScreen, "#new-run-task-file"), "new run form")
        screen = app.screen
        assert screen.query_one("#new-run-targets", Input).value == "dev-project"
        screen.query_one("#new-run-task-file", Input).value = "bad-tasks.json"
        await pilot.click("#run")
        await pilot.pause()
        assert isinstance(app.screen, NewRunScreen)
        info = str(screen.query_one("#new-run-task-info").render())
        assert "tasks[0].timeout" in info
        screen.query_one("#new-run-targets", Input).value = ""
        await click_again(pilot, "#run")
        await pilot.pause()
        assert "at least one target" in str(screen.query_one("#new-run-targets-error").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, NewRunScreen)


@pytest.mark.ssh
async def test_a_real_run_over_ssh_streams_into_the_pane(isolated_dirs: dict[str, Path], sshd, tmp_path: Path) -> None:  # noqa: ANN001
    """The whole path: New run form -> resolve -> asyncssh against a real sshd -> RunStore -> the view."""
    settings = load_settings(ssh_key=sshd.client_key, ssh_user=sshd.user)
    gate = tmp_path / "gate"  # sshd runs on this machine: the task waits for this file
    task_path = isolated_dirs["workspace"] / "tasks.json"
    task_path.write_text(
        json.dumps(
            {
                "name": "stream check",
                "tasks": [
                    {
                        "name": "count",
                        "run": f"seq 1 300 | sed 's/^/line /'; echo 'oops' >&2; "
                        f"while [ ! -e {gate} ]; do sleep 0.02; done; seq 301 400 | sed 's/^/line /'",
                    },
                    {"name": "last", "run": "printf '\\033[32mgreen\\033[0m done\\n'; exit 3"},
                ],
            }
        )
    )
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        await pilot.press("n")
        await wait_until(pilot, showing(app, NewRunScreen, "#new-run-task-file"), "new run form")
        app.screen.query_one("#new-run-targets", Input).value = sshd.url
        app.screen.query_one("#new-run-task-file", Input).value = "tasks.json"
        await pilot.click("#run")

        # Live, while the task still runs: lines, stderr mark, task status.
        await wait_until(pilot, lambda: pane.run_id is not None and pane.log_view.line_count >= 301, "first lines live", 20)
        assert pane.record is not None and pane.record.status == "running"
        assert pane.target == sshd.url
        shown = texts(pane)
        assert [line for line in shown if line.startswith("line ")] == [f"line {i}" for i in range(1, 301)]
        assert any(line.endswith("! [count] oops") for line in pane.log_view.lines)
        assert pane.task_list.rows_by_name["count"].status == "running"
        assert pane.task_list.rows_by_name["last"].status == "pending"

        # Scroll up: follow stops and the view stays put while lines keep coming.
        view = pane.log_view
        view.focus()
        await pilot.press("pageup")
        await wait_until(pilot, lambda: not view.following, "paused")
        held_at = view.scroll_y
        gate.touch()
        await wait_until(pilot, lambda: pane.record is not None and pane.record.status != "running", "run finished", 20)
        await wait_until(pilot, lambda: "line 400" in texts(pane), "late lines")
        assert view.scroll_y == held_at
        assert [line for line in texts(pane) if line.startswith("line ")] == [f"line {i}" for i in range(1, 401)]
        assert "green done" in texts(pane)  # ANSI stripped

        rows = pane.task_list.rows_by_name
        assert (rows["count"].status, rows["count"].exit_code) == ("ok", 0)
        assert (rows["last"].status, rows["last"].exit_code) == ("failed", 3)
        assert rows["count"].duration is not None and rows["count"].duration > 0
        assert pane.record.status == "failed"

        # Filter on the finished run, then save what the filter shows.
        await pilot.press("slash", *"line 3", "enter")
        await wait_until(pilot, lambda: pane.filter_text == "line 3" and pane._hold is None, "filtered")
        expected = [f"line {i}" for i in range(1, 401) if f"line {i}".startswith("line 3")]
        await wait_until(pilot, lambda: texts(pane) == expected, "only matching lines")
        await pilot.press("w")
        await wait_until(pilot, showing(app, SaveLogScreen, "#save-log-path"), "save prompt")
        out = tmp_path / "filtered.log"
        app.screen.query_one("#save-log-path", Input).value = str(out)
        await pilot.press("enter")
        await wait_until(pilot, out.exists, "saved")
        assert [line.split("] ", 1)[1] for line in out.read_text().splitlines()] == expected


async def test_blocks_of_lines_are_cut_prefixed_and_bounded_like_single_lines() -> None:
    """The streaming path queues whole blocks (lines joined by newlines): the view builds only the
    newest FLOOD_LINES of a flood, cutting the oldest block it keeps in the middle, strips ANSI in a
    block that has any, and filters a block line by line."""
    from textual.app import App, ComposeResult

    from devorch_tui.ui.widgets.run_log import FLOOD_LINES, skipped_marker

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield RunLog(max_lines=50_000)

    app = Host()
    async with app.run_test(size=(100, 20)):
        view = app.query_one(RunLog)
        half = FLOOD_LINES // 2
        view.push_text("a ", "\n".join(f"{i}" for i in range(half + 7)))  # its 7 oldest lines are cut
        view.push_text("b ", "\x1b[31mred\x1b[0m\nplain")
        view.push_chunk("c ", [f"{i}" for i in range(half - 2)])
        assert view.pending_count == FLOOD_LINES + 7
        assert view.flush() == FLOOD_LINES + 7
        lines = view.lines
        assert lines[0] == skipped_marker(7) and len(lines) == FLOOD_LINES + 1
        assert lines[1] == "a 7" and lines[half] == f"a {half + 6}"
        assert lines[half + 1 : half + 3] == ["b red", "b plain"]
        assert lines[-1] == f"c {half - 3}"
        assert view.total_pushed == FLOOD_LINES + 7

        view.clear()
        view.needle = "needle"
        view.push_text("p ", "hay\nneedle 1\n\x1b[1mneedle\x1b[0m 2\nhay")
        view.push_text("needle ", "x\ny")  # the prefix is part of what the filter sees
        view.flush()
        assert view.lines == ["p needle 1", "p needle 2", "needle x", "needle y"]


async def test_enter_in_the_new_run_form_starts_one_run(settings: Settings, workspace: Path) -> None:
    """4, n, type the target, Tab, type the task file, Enter: the run starts once, nothing crashes."""
    (workspace / "t.json").write_text(json.dumps({"name": "enter test", "tasks": [{"name": "a", "run": "true"}]}))
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        await pilot.press("n")
        await wait_until(pilot, showing(app, NewRunScreen, "#new-run-targets"), "new run form")
        await pilot.press(*"ssh://someone@127.0.0.1:1", "tab", *"t.json", "enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, NewRunScreen), "form closed")
        # no SSH key in this test's folders: the run fails at once, with the reason
        await wait_until(pilot, lambda: pane.record is not None and pane.record.status == "failed", "run finished")
        await pilot.pause()
        assert len(app.run_store.list()) == 1
        assert any("no SSH private key" in line for line in texts(pane))
        assert app.screen is app.screen_stack[0]


async def test_a_run_of_another_process_is_followed_from_disk(settings: Settings) -> None:
    """A run written by another RunStore (as a headless `devorch-tui run` in another terminal does)
    sends no events to the app: the pane follows its log file and record instead."""
    elsewhere = RunStore(settings.paths.runs_dir)  # not the app's store: nothing reaches the app but files
    run = elsewhere.open_run("tasks", "headless", ["vm1"], steps=["build", "test"])
    run.step("vm1", "build", "running")
    run.line("vm1", "build", "stdout", "first")
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        await wait_until(pilot, lambda: pane.run_id == run.id and texts(pane) == ["first"], "the run shown from disk")
        assert app.run_store.active(run.id) is None and pane.record is not None and pane.record.status == "running"

        run.lines("vm1", "build", "stdout", [f"more {i}" for i in range(3)])
        run.line("vm1", "build", "stderr", "a warning")
        await wait_until(pilot, lambda: texts(pane)[-1] == "a warning", "new lines from the log file")
        assert texts(pane) == ["first", "more 0", "more 1", "more 2", "a warning"]
        run.step("vm1", "build", "ok", exit_code=0, duration=1.0)
        run.step("vm1", "test", "running")
        await wait_until(pilot, lambda: pane.task_list.rows_by_name["build"].status == "ok", "the step change from run.json")
        assert pane.task_list.rows_by_name["test"].status == "running"

        run.line("vm1", "test", "stdout", "last line")
        run.step("vm1", "test", "failed", exit_code=2, duration=0.5)
        run.finish()
        await wait_until(pilot, lambda: pane.record is not None and pane.record.status == "failed", "the end of the run")
        await wait_until(pilot, lambda: texts(pane)[-1] == "last line", "its last line")
        assert "failed" in str(app.query_one("#logs-run").render())
        assert texts(pane).count("first") == 1  # nothing shown twice


async def test_a_past_run_shows_up_to_max_lines_without_a_flood_marker(settings: Settings) -> None:
    store = RunStore(settings.paths.runs_dir)
    run = store.open_run("tasks", "big", ["vm1"], steps=["s"])
    run.lines("vm1", "s", "stdout", [f"n{i}" for i in range(50_000)])
    run.finish("ok")
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        await wait_until(pilot, lambda: pane.run_id == run.id and pane._hold is None, "run shown")
        await wait_until(pilot, lambda: pane.log_view.line_count == 50_000, "all 50,000 lines", 20)
        assert texts(pane)[0] == "n0" and texts(pane)[-1] == "n49999"
        assert not any("arrived faster" in line for line in pane.log_view.lines)
        status = str(app.query_one("#logs-status").render())
        assert "50,000 lines" in status and "not in view" not in status


async def test_the_follow_state_shows_beside_a_long_ssh_target(settings: Settings) -> None:
    app = DevorchApp(settings)
    target = "ssh://a-long-user-name@build-server-number-one.lab.example.internal:22022"
    async with app.run_test(size=(160, 45)) as pilot:
        pane = await open_logs(pilot)
        run = app.run_store.open_run("tasks", "wide", [target], steps=["s"])
        await wait_until(pilot, lambda: pane.run_id == run.id and pane._hold is None, "run shown")
        run.lines(target, "s", "stdout", [f"l{i}" for i in range(1500)])
        await pilot.press("slash", *"l1", "enter")
        await wait_until(pilot, lambda: pane.filter_text == "l1" and pane._hold is None, "filtered")
        status = app.query_one("#logs-status")
        await wait_until(pilot, lambda: "matching lines" in pane._status_text[0], "status updated")
        shown = str(status.render())
        assert len(shown) <= status.size.width < len(pane._status_text[0]) + len(" · following")  # too long for the line
        assert shown.startswith("target ssh://a-long-user-name@") and "…" in shown  # the head gives way...
        assert shown.endswith(" · following"), shown  # ...the follow state shows whole
        pane.log_view.unfollow()
        await wait_until(pilot, lambda: str(status.render()).endswith(" · paused: End or f follows"), "paused shown whole")


async def test_quitting_asks_first_while_a_run_of_this_app_runs(settings: Settings) -> None:
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        assert pane.unfinished_work() is None
        run = app.run_store.open_run("tasks", "long", ["dev-x"], steps=["s"])
        assert pane.unfinished_work() == "a task run on dev-x is running (quitting stops it)"
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit question")
        assert "a task run on dev-x is running (quitting stops it)" in str(app.screen.query_one("#confirm-message").render())
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, QuitScreen), "question closed")
        run.finish()
        assert pane.unfinished_work() is None


@pytest.mark.ssh
async def test_cancel_a_real_ssh_run_from_the_pane(isolated_dirs: dict[str, Path], sshd) -> None:  # noqa: ANN001
    """c, then confirm: the run ends as cancelled and its process on the target is gone."""
    settings = load_settings(ssh_key=sshd.client_key, ssh_user=sshd.user)
    (isolated_dirs["workspace"] / "long.json").write_text(
        json.dumps({"name": "long", "tasks": [{"name": "wait", "run": "echo begun; sleep 3611"}, {"name": "after", "run": "true"}]})
    )
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_logs(pilot)
        await pilot.press("n")
        await wait_until(pilot, showing(app, NewRunScreen, "#new-run-targets"), "new run form")
        await pilot.press(*sshd.url, "tab", *"long.json", "enter")
        await wait_until(pilot, lambda: "begun" in texts(pane), "the task runs", 20)
        assert sshd.processes("sleep 3611") != []

        await pilot.press("c")
        await wait_until(pilot, showing(app, ConfirmScreen, "#confirm"), "confirm")
        await pilot.press("tab", "enter")  # from Cancel (the default) to "Stop run"
        await wait_until(pilot, lambda: pane.record is not None and pane.record.status == "cancelled", "run cancelled", 20)
        assert [row.status for row in pane.task_list.rows_by_name.values()] == ["cancelled", "skipped"]
    check = subprocess.run(sshd.ssh_argv("pgrep -f 'sleep 361[1]' || echo gone"), capture_output=True, text=True, timeout=30)
    assert check.stdout.strip() == "gone" and sshd.processes("sleep 3611") == []

"""SVG snapshot of the Logs pane showing a finished run written to disk with fixed times."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from devorch_tui.config import Settings
from devorch_tui.services.runs import RunRecord, StepRecord, TargetRecord, format_ts

RUN_ID = "20261125-090501-ab12"
STARTED = datetime(2026, 11, 25, 9, 5, 1, tzinfo=timezone.utc)

STEPS = [
    ("sync", "ok", 0, 3.4, [("stdout", "Resolved 24 packages in 310ms"), ("stdout", "Installed 24 packages in 2.9s")]),
    ("lint", "ok", 0, 1.2, [("stdout", "All checks passed!")]),
    (
        "tests",
        "failed",
        1,
        75.5,
        [
            ("info", "$ uv run pytest -q"),
            ("stdout", "\x1b[32m........\x1b[0m\x1b[31mF\x1b[0m.."),
            ("stdout", "FAILED tests/test_api.py::test_login - AssertionError: 401 != 200"),
            ("stderr", "1 failed, 10 passed in 75.41s"),
            ("info", "exit code 1 after 75.5s"),
        ],
    ),
    ("build", "skipped", None, None, []),
]


def write_finished_run(runs_dir: Path) -> None:
    run_dir = runs_dir / RUN_ID
    run_dir.mkdir(parents=True)
    steps = []
    lines = []
    clock = STARTED.timestamp()
    for name, status, code, duration, output in STEPS:
        started = datetime.fromtimestamp(clock, timezone.utc) if duration is not None else None
        steps.append(StepRecord(name=name, status=status, exit_code=code, started=started, duration=duration, attempts=1))
        for stream, text in output:
            lines.append(f"{format_ts(clock)}\t{stream}\t{name}\t{text}\n")
            clock += 0.5
        clock += duration or 0
    record = RunRecord(
        id=RUN_ID,
        kind="tasks",
        title="python checks",
        status="failed",
        started=STARTED,
        finished=datetime.fromtimestamp(clock, timezone.utc),
        duration=clock - STARTED.timestamp(),
        pid=1,
        hostname="snapshot-host",
        targets=[TargetRecord(name="dev-my-python-project", log_file="dev-my-python-project.log", status="failed", steps=steps)],
    )
    (run_dir / "run.json").write_text(record.model_dump_json(indent=2))
    (run_dir / "dev-my-python-project.log").write_text("".join(lines))


async def run_shown(pilot: Pilot) -> None:
    await pilot.press("4")
    pane = pilot.app.query_one("#logs")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not (pane.run_id == RUN_ID and pane._hold is None and pane.log_view.line_count == 8):
        assert loop.time() < deadline, "the run did not load"
        await pilot.pause(0.02)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.fixture
def utc_clock(monkeypatch: pytest.MonkeyPatch):
    """Times in the view are local: pin the zone so the SVG is the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_logs_pane_snapshot(
    snap_compare: Callable[..., bool], make_app: Callable[..., Any], settings: Settings, utc_clock: None
) -> None:
    write_finished_run(settings.paths.runs_dir)
    app = make_app()
    assert snap_compare(app, terminal_size=(140, 30), run_before=run_shown)

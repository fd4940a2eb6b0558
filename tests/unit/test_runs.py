"""Run history: records and logs on disk before anyone sees them, events, redaction, interrupted runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devorch_tui.services.runs import (
    ActiveRun,
    LineEvent,
    LinesEvent,
    RunError,
    RunFinished,
    RunNotFound,
    RunStarted,
    RunStore,
    StepEvent,
    log_file_name,
)
from devorch_tui.services.secrets import MASK, Redactor


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def test_open_run_writes_a_running_record_and_empty_logs(store: RunStore) -> None:
    run = store.open_run("tasks", "demo", ["vm-1", "ssh://u@h:2222"], steps=["build", "test"])
    record = json.loads((run.dir / "run.json").read_text())
    assert record["status"] == "running" and record["kind"] == "tasks" and record["pid"] == os.getpid()
    assert [t["name"] for t in record["targets"]] == ["vm-1", "ssh://u@h:2222"]
    assert [s["status"] for s in record["targets"][0]["steps"]] == ["pending", "pending"]
    assert sorted(p.name for p in run.dir.iterdir()) == ["run.json", "ssh_u_h_2222.log", "vm-1.log"]
    assert (run.dir / "vm-1.log").stat().st_mode & 0o777 == 0o600


def test_lines_are_on_disk_before_subscribers_see_them(store: RunStore) -> None:
    seen_on_disk: list[list[str]] = []

    def subscriber(event) -> None:  # noqa: ANN001
        if isinstance(event, LineEvent):
            seen_on_disk.append(list(store.read_log(event.run_id, event.target)))

    store.subscribe(subscriber)
    run = store.open_run("tasks", "demo", ["vm-1"])
    run.line("vm-1", "build", "stdout", "compiling")
    assert len(seen_on_disk) == 1
    assert seen_on_disk[0][0].endswith("\tstdout\tbuild\tcompiling")


def test_events_in_order_and_unsubscribe(store: RunStore) -> None:
    events: list = []
    unsubscribe = store.subscribe(events.append)
    run = store.open_run("provision", "dev-x", ["dev-x"], steps=["clone"])
    run.step("dev-x", "clone", "running")
    run.lines("dev-x", "clone", "stderr", ["Cloning into 'x'...", "done."])
    run.step("dev-x", "clone", "ok", exit_code=0, duration=1.5)
    final = run.finish()
    assert [type(e) for e in events] == [RunStarted, StepEvent, LineEvent, LineEvent, StepEvent, RunFinished]
    assert events[2].stream == "stderr" and events[3].text == "done."
    assert events[4].status == "ok" and events[4].exit_code == 0 and events[4].duration == 1.5
    assert final.status == "ok" and events[-1].run.status == "ok"
    unsubscribe()
    store.open_run("tasks", "again", ["x"])
    assert len(events) == 6


def test_batched_subscriber_gets_one_event_per_chunk(store: RunStore) -> None:
    batches: list = []
    singles: list = []
    store.subscribe(batches.append, batched=True)
    store.subscribe(singles.append)
    run = store.open_run("tasks", "demo", ["t"])
    run.lines("t", "s", "stdout", ["1", "2", "3"], ts=1_700_000_000.25)
    chunk = [e for e in batches if isinstance(e, LinesEvent)]
    assert chunk == [LinesEvent(run.id, "t", "s", "stdout", 1_700_000_000.25, "1\n2\n3")]
    assert chunk[0].lines == ("1", "2", "3") and chunk[0].count == 3
    assert [e.text for e in singles if isinstance(e, LineEvent)] == ["1", "2", "3"]


def test_a_block_of_lines_is_one_write_with_every_line_prefixed(store: RunStore) -> None:
    batches: list = []
    store.subscribe(batches.append, batched=True)
    run = store.open_run("tasks", "demo", ["t"])
    run.block("t", "s", "stdout", "a\n\nc\r\n\x1b[31mred\x1b[0m", ts=1_700_000_000.25)
    run.block("t", "s", "stderr", "", ts=1_700_000_000.5)  # one empty line
    raw = (run.dir / "t.log").read_text()
    assert raw == "".join(
        f"2023-11-14T22:13:20.{ms}Z\t{stream}\ts\t{text}\n"
        for ms, stream, text in [
            ("250", "stdout", "a"), ("250", "stdout", ""), ("250", "stdout", "c"), ("250", "stdout", "\x1b[31mred\x1b[0m"),
            ("500", "stderr", ""),
        ]
    )  # fmt: skip
    assert [e.count for e in batches if isinstance(e, LinesEvent)] == [4, 1]
    assert [e.text for e in store.read_lines(run.id, "t")] == ["a", "", "c", "\x1b[31mred\x1b[0m", ""]


def test_lines_holding_a_newline_stay_one_line(store: RunStore) -> None:
    run = store.open_run("tasks", "demo", ["t"])
    run.lines("t", "s", "stdout", ["one\ntwo", "three"])
    assert [e.text for e in store.read_lines(run.id, "t")] == ["one two", "three"]


def test_a_failing_subscriber_does_not_break_the_run(store: RunStore) -> None:
    def broken(event) -> None:  # noqa: ANN001
        raise RuntimeError("view bug")

    store.subscribe(broken)
    run = store.open_run("tasks", "demo", ["t"])
    run.line("t", "s", "stdout", "still logged")
    assert run.finish().status == "ok"
    assert [e.text for e in store.read_lines(run.id, "t")] == ["still logged"]


def test_secrets_and_private_key_blocks_are_redacted_on_disk_and_in_events(store: RunStore) -> None:
    events: list = []
    store.subscribe(events.append)
    run = store.open_run("tasks", "demo", ["t"], redactor=Redactor.from_env({"API_TOKEN": "hunter22", "GIT_NAME": "Ada"}))
    run.line("t", "s", "stdout", "token=hunter22 user=Ada")
    run.lines("t", "s", "stdout", ["-----BEGIN OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXktdjE=", "-----END OPENSSH PRIVATE KEY-----", "after"])
    texts = [e.text for e in events if isinstance(e, LineEvent)]
    assert texts == [f"token={MASK} user=Ada", MASK, MASK, MASK, "after"]
    on_disk = (run.dir / "t.log").read_text()
    assert "hunter22" not in on_disk and "b3BlbnNzaC1rZXktdjE" not in on_disk
    assert [e.text for e in store.read_lines(run.id, "t")] == texts


@pytest.mark.parametrize("extra", [[], ["multi\nline"]], ids=["block-path", "a-secret-with-a-newline"])
def test_redaction_of_blocks_matches_line_by_line(store: RunStore, extra: list[str]) -> None:
    """The chunk fast path masks exactly what line-by-line redaction masks, whatever the chunking:
    secrets anywhere in a block, several per line, a key block spanning chunks (its END in a later
    chunk), a secret on the line right after the END line; and a secret holding a newline (which
    sends every block line by line)."""
    secrets = ["hunter22", "hunter2222", "s3cr3t-value", *extra]
    lines = [
        "plain", "token=hunter22 again hunter2222", "x s3cr3t-value y hunter22", "",
        "-----BEGIN RSA PRIVATE KEY-----", "MIIEow", "hunter22 inside", "-----END RSA PRIVATE KEY----- tail",
        "after hunter22", "one-line -----BEGIN PRIVATE KEY----- x -----END PRIVATE KEY-----", "free", "multi", "line",
    ]  # fmt: skip
    expected_redactor = Redactor(secrets)
    expected = [expected_redactor.redact_line(line) for line in lines]
    assert "hunter22" not in "".join(expected) and expected[5] == MASK and expected[8] == f"after {MASK}"
    for size in (1, 2, 3, 5, len(lines)):
        run = store.open_run("tasks", "demo", ["t"], redactor=Redactor(secrets))
        for start in range(0, len(lines), size):
            run.block("t", "s", "stdout", "\n".join(lines[start : start + size]))
        assert [e.text for e in store.read_lines(run.id, "t")] == expected, size
        run.finish()


def test_redact_block_without_key_blocks_or_secrets_returns_the_text() -> None:
    text = "\n".join(str(i) for i in range(10_000))
    assert Redactor(["not-there"]).redact_block(text) is text
    assert Redactor().redact_block(text) is text
    masked = Redactor(["1234", "99999"]).redact_block(text + "\n41234\n999999")
    assert masked.endswith(f"\n4{MASK}\n{MASK}9") and masked.count("\n") == text.count("\n") + 2


def test_log_round_trip_keeps_tabs_and_strips_carriage_returns(store: RunStore) -> None:
    run = store.open_run("tasks", "demo", ["t"])
    run.line("t", "step one", "stdout", "a\tb\tc\r")
    (event,) = store.read_lines(run.id, "t")
    assert (event.step, event.stream, event.text) == ("step one", "stdout", "a\tb\tc")


def test_finish_derives_status_and_skips_pending_steps(store: RunStore) -> None:
    run = store.open_run("tasks", "demo", ["a", "b"], steps=["one", "two"])
    run.step("a", "one", "ok", exit_code=0)
    run.step("a", "two", "ok", exit_code=0)
    run.target_done("a")
    run.step("b", "one", "failed", exit_code=2, message="exit status 2")
    run.target_done("b")
    final = run.finish()
    assert final.status == "failed"
    assert [t.status for t in final.targets] == ["ok", "failed"]
    assert [s.status for s in final.target("b").steps] == ["failed", "skipped"]
    assert final.finished is not None and final.duration is not None
    assert store.load(run.id) == final  # what is on disk is what was returned


def test_cancelled_finish_marks_running_steps(store: RunStore) -> None:
    run = store.open_run("tasks", "demo", ["a"], steps=["one", "two"])
    run.step("a", "one", "running")
    final = run.finish("cancelled", "cancelled")
    assert final.status == "cancelled"
    assert [s.status for s in final.targets[0].steps] == ["cancelled", "skipped"]


def test_steps_unknown_up_front_are_appended(store: RunStore) -> None:
    run = store.open_run("base-image", "golden", ["golden"])
    run.step("golden", "launch", "running")
    run.step("golden", "launch", "ok", exit_code=0)
    run.step("golden", "snapshot", "ok")
    assert [s.name for s in run.finish().targets[0].steps] == ["launch", "snapshot"]


def test_context_manager_fails_the_run_on_error(store: RunStore) -> None:
    with pytest.raises(ValueError):
        with store.open_run("provision", "p", ["vm"]) as run:
            raise ValueError("boom")
    record = store.load(run.id)
    assert record.status == "failed" and record.message == "boom"


def test_list_is_newest_first_and_skips_broken_records(store: RunStore) -> None:
    first = store.open_run("tasks", "first", ["t"])
    first.finish()
    second = store.open_run("tasks", "second", ["t"])
    second.finish()
    broken = store.runs_dir / "20000101-000000-0000"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    ids = [record.id for record in store.list()]
    assert ids == [second.id, first.id]  # by start time (ids of the same second sort by chance)
    with pytest.raises(RunError, match="cannot be read"):
        store.load("20000101-000000-0000")
    with pytest.raises(RunNotFound):
        store.load("20000101-000000-ffff")
    with pytest.raises(RunNotFound):
        store.load("../etc")


def test_run_owned_by_a_dead_process_shows_as_interrupted(store: RunStore, tmp_path: Path) -> None:
    """A real process opens a run, starts a step and dies without finishing (like a crash)."""
    code = (
        "import sys, os\n"
        "from devorch_tui.services.runs import RunStore\n"
        "run = RunStore(sys.argv[1]).open_run('tasks', 'crashy', ['vm'], steps=['long', 'after'])\n"
        "run.step('vm', 'long', 'running')\n"
        "run.line('vm', 'long', 'stdout', 'working')\n"
        "print(run.id, flush=True)\n"
        "os._exit(0)\n"
    )
    run_id = subprocess.run([sys.executable, "-c", code, str(store.runs_dir)], capture_output=True, text=True, check=True).stdout.strip()
    record = store.load(run_id)
    assert record.status == "interrupted"
    assert [s.status for s in record.targets[0].steps] == ["interrupted", "pending"]
    assert json.loads((store.runs_dir / run_id / "run.json").read_text())["status"] == "interrupted"
    assert [e.text for e in store.read_lines(run_id, "vm")] == ["working"]


def test_a_reused_pid_does_not_keep_a_run_running(store: RunStore) -> None:
    run = store.open_run("tasks", "demo", ["t"])
    path = run.dir / "run.json"
    data = json.loads(path.read_text())
    data["pid_started"] = "1"  # our pid, but "started" at another time: another process owned it
    path.write_text(json.dumps(data))
    store._closed(run.id)  # forget it is active in this process
    assert store.load(run.id).status == "interrupted"


def test_running_record_of_a_live_process_stays_running(store: RunStore) -> None:
    run = store.open_run("tasks", "demo", ["t"])
    store._closed(run.id)
    assert store.load(run.id).status == "running"


def test_log_file_names_are_safe_and_unique() -> None:
    assert log_file_name("ssh://ubuntu@10.0.0.5:22") == "ssh_ubuntu_10.0.0.5_22.log"
    assert log_file_name("../../etc/passwd") == "etc_passwd.log"
    assert log_file_name("a/b", ["a_b.log"]) == "a_b-2.log"


def test_bad_targets_are_refused(store: RunStore) -> None:
    with pytest.raises(RunError, match="at least one target"):
        store.open_run("tasks", "demo", [])
    with pytest.raises(RunError, match="listed twice"):
        store.open_run("tasks", "demo", ["a", "a"])


def test_carriage_returns_leave_what_a_terminal_shows(store: RunStore) -> None:
    run = store.open_run("tasks", "demo", ["t"])
    run.block("t", "s", "stdout", "progress 10%\rprogress 50%\rprogress 100%\nplain\ncrlf line\r\n\r\rlast\r")
    assert [event.text for event in store.read_lines(run.id, "t")] == ["progress 100%", "plain", "crlf line", "last"]


def test_a_target_cut_off_by_a_cancel_is_cancelled(store: RunStore) -> None:
    """Cancelled while connecting (no step ever ran): the target is cancelled, not "ok" with every step skipped."""
    run = store.open_run("tasks", "demo", ["a"], steps=["one", "two"])
    final = run.finish("cancelled", "cancelled")
    assert final.targets[0].status == "cancelled"
    assert [s.status for s in final.targets[0].steps] == ["skipped", "skipped"]


def test_a_step_cut_off_by_a_cancel_keeps_its_duration(store: RunStore) -> None:
    run = store.open_run("tasks", "demo", ["a"], steps=["one"])
    run.step("a", "one", "running")
    final = run.finish("cancelled", "cancelled")
    (step,) = final.targets[0].steps
    assert step.status == "cancelled" and step.duration is not None and step.duration >= 0


def test_runs_of_the_same_second_are_listed_by_start_time(store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """An id tells its start to the second and ends in random hex: the later of two runs of one
    second may have the smaller id. Listing, `latest` and a limit still go by the start time."""
    from datetime import datetime, timezone

    from devorch_tui.services import runs

    suffixes = iter(["ffff", "0000", "8888"])
    monkeypatch.setattr(runs._random, "token_hex", lambda _size: next(suffixes))

    def opened_at(second: int, microsecond: int, title: str) -> ActiveRun:
        moment = datetime(2026, 12, 6, 8, 0, second, microsecond, tzinfo=timezone.utc)
        monkeypatch.setattr(runs, "utcnow", lambda: moment)
        return store.open_run("tasks", title, ["t"])

    earlier = opened_at(0, 100_000, "earlier")  # 20261206-080000-ffff
    later = opened_at(0, 600_000, "later")  # 20261206-080000-0000: the smaller id
    newest = opened_at(1, 0, "newest")  # 20261206-080001-8888
    assert later.id < earlier.id
    assert [record.title for record in store.list()] == ["newest", "later", "earlier"]
    assert [record.title for record in store.list(limit=2)] == ["newest", "later"]
    newest.finish()
    shutil.rmtree(newest.dir)
    latest = store.latest()
    assert latest is not None and latest.title == "later"

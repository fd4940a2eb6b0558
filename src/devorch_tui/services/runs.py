"""Run history: one record and one log file per target for every run, on disk as it happens.

A *run* is anything that streams output on one or more targets: a task file (kind "tasks"), the
golden base image build ("base-image") or a project VM provisioning ("provision"). Layout::

    runs_dir/20261125-090501-ab12/run.json         the record (rewritten atomically on each step change)
    runs_dir/20261125-090501-ab12/<target>.log     one line per output line, flushed as it arrives

A log line is ``ISO-TIMESTAMP<TAB>STREAM<TAB>STEP<TAB>TEXT`` (stream is stdout, stderr or info), so a
log stays readable with ``less`` and parses back exactly (:meth:`RunStore.read_lines`).

Producers (the agent executor, provisioning) call :meth:`RunStore.open_run` and report through the
returned :class:`ActiveRun`: lines are redacted (secret values, private key blocks), written and
flushed to disk first, then handed to subscribers. Subscribers are plain callables called on the
event loop thread with :class:`RunEvent` objects; the UI turns them into messages.

A record whose status is still "running" while the process that owns it is gone (crash, kill -9,
power cut) is reported -- and rewritten -- as "interrupted".
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets as _random
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, Field, ValidationError as PydanticValidationError

from devorch_tui.errors import DevorchError
from devorch_tui.services.secrets import Redactor

log = logging.getLogger(__name__)

RunKind = Literal["tasks", "base-image", "provision"]
RunStatus = Literal["running", "ok", "failed", "cancelled", "interrupted"]
StepStatus = Literal["pending", "running", "ok", "failed", "cancelled", "skipped", "interrupted"]
Stream = Literal["stdout", "stderr", "info"]

RUN_STATUSES: tuple[str, ...] = ("running", "ok", "failed", "cancelled", "interrupted")
STEP_STATUSES: tuple[str, ...] = ("pending", "running", "ok", "failed", "cancelled", "skipped", "interrupted")
FINAL_STEP_STATUSES = frozenset({"ok", "failed", "cancelled", "skipped", "interrupted"})

_RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{4}$")
_ID_SECOND = len("20260101-120000")
"""The part of a run id that is its start time (to the second)."""
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class RunError(DevorchError):
    """A run record could not be found, read or written."""


class RunNotFound(RunError):
    def __init__(self, run_id: str, runs_dir: Path) -> None:
        super().__init__(f"no run with id {run_id!r} in {runs_dir}", hint="list the runs with `devorch-tui runs list`")
        self.run_id = run_id


# --------------------------------------------------------------------------------------------- records


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class StepRecord(BaseModel):
    """One task (or provisioning step) on one target."""

    name: str
    status: StepStatus = "pending"
    exit_code: int | None = None
    started: datetime | None = None
    duration: float | None = None
    attempts: int = 0
    message: str | None = None


class TargetRecord(BaseModel):
    """One target of a run: its steps and the file holding its log."""

    name: str
    log_file: str
    address: str | None = None
    status: StepStatus = "pending"
    message: str | None = None
    steps: list[StepRecord] = Field(default_factory=list)

    def find_step(self, name: str) -> StepRecord | None:
        for step in self.steps:
            if step.name == name:
                return step
        return None


class RunRecord(BaseModel):
    """What ``run.json`` holds."""

    id: str
    kind: RunKind
    title: str
    status: RunStatus = "running"
    started: datetime
    finished: datetime | None = None
    duration: float | None = None
    pid: int
    pid_started: str | None = None  # the owner's start time (Linux), so a reused pid is not mistaken for it
    hostname: str
    message: str | None = None
    meta: dict[str, str] = Field(default_factory=dict)
    targets: list[TargetRecord] = Field(default_factory=list)

    @property
    def target_names(self) -> list[str]:
        return [target.name for target in self.targets]

    def target(self, name: str) -> TargetRecord:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)

    def counts(self) -> dict[str, int]:
        """How many steps are in each status, over all targets."""
        counts: dict[str, int] = {}
        for target in self.targets:
            for step in target.steps:
                counts[step.status] = counts.get(step.status, 0) + 1
        return counts


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class RunStarted:
    run: RunRecord


@dataclass(frozen=True, slots=True)
class LineEvent:
    """One output line (already redacted). ``ts`` is seconds since the epoch."""

    run_id: str
    target: str
    step: str
    stream: Stream
    ts: float
    text: str


@dataclass(frozen=True, slots=True)
class LinesEvent:
    """Several consecutive lines of one stream that arrived together (already redacted).

    ``text`` is the lines joined by ``"\\n"`` (no trailing newline; ``""`` is one empty line): a view
    that renders in bulk uses it as it is and never pays per line. Only subscribers registered with
    ``subscribe(callback, batched=True)`` receive these (instead of one LineEvent per line).
    """

    run_id: str
    target: str
    step: str
    stream: Stream
    ts: float
    text: str
    known_count: int | None = field(default=None, compare=False, repr=False)
    """The number of lines when the producer already knows it (else ``count`` counts them)."""

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(self.text.split("\n"))

    @property
    def count(self) -> int:
        return self.text.count("\n") + 1 if self.known_count is None else self.known_count


@dataclass(frozen=True, slots=True)
class StepEvent:
    run_id: str
    target: str
    step: str
    status: StepStatus
    exit_code: int | None
    started: datetime | None
    duration: float | None
    message: str | None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class RunFinished:
    run: RunRecord


RunEvent = RunStarted | LineEvent | LinesEvent | StepEvent | RunFinished
Subscriber = Callable[[RunEvent], None]


# ------------------------------------------------------------------------------------------ log format


def format_ts(ts: float) -> str:
    """Epoch seconds as ``2026-11-25T09:05:01.123Z``."""
    whole = int(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((ts - whole) * 1000):03d}Z"


def parse_ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def _clean_field(value: str) -> str:
    return value.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def _clean_text(value: str) -> str:
    return value.replace("\n", " ").replace("\r", "")


def after_carriage_returns(text: str) -> str:
    """Lines (joined by newlines) as a terminal leaves them: a line holding carriage returns shows
    what follows its last one (``progress 10%\\rprogress 100%`` -> ``progress 100%``); a CR ending a
    line (CRLF endings) is dropped."""
    text = text.replace("\r\n", "\n").rstrip("\r")  # CRLF output: no work per line
    if "\r" not in text:
        return text
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if "\r" in line:
            line = line.rstrip("\r")
            lines[index] = line[line.rfind("\r") + 1 :]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- processes


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` from /proc (Linux); None elsewhere or when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) counts after the ")" closing the command name, which may contain spaces.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_alive(record: RunRecord) -> bool:
    """Is the process that wrote this running record still there? Unknown hosts count as alive."""
    if record.hostname != socket.gethostname():
        return True
    if not _pid_alive(record.pid):
        return False
    if record.pid_started is not None:
        current = _process_start(record.pid)
        if current is not None and current != record.pid_started:
            return False  # the pid was reused by another process
    return True


# ---------------------------------------------------------------------------------------------- store


def new_run_id(now: datetime | None = None) -> str:
    """Sortable id: UTC time of start plus 4 random hex digits, e.g. ``20261125-090501-ab12``."""
    now = now or utcnow()
    return f"{now.astimezone(timezone.utc):%Y%m%d-%H%M%S}-{_random.token_hex(2)}"


def log_file_name(target: str, taken: Iterable[str] = ()) -> str:
    """A safe, unique file name for a target's log (``ssh://u@h:22`` -> ``ssh_u_h_22.log``)."""
    stem = _UNSAFE_FILE_CHARS.sub("_", target).strip("._") or "target"
    name, n = f"{stem}.log", 2
    taken = set(taken)
    while name in taken:
        name, n = f"{stem}-{n}.log", n + 1
    return name


def _write_json_atomic(path: Path, data: str) -> None:
    """Write-then-rename: a reader (or a crash) sees the old record or the new one, never half.

    No fsync: the record is rewritten on every step change and a crash of devorch-tui (the case
    "interrupted" covers) does not lose data the kernel already has.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as handle:
        handle.write(data)
    os.replace(tmp, path)


class RunStore:
    """The run history folder, and the hub that hands live run events to subscribers."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = Path(runs_dir)
        self._subscribers: list[tuple[Subscriber, bool]] = []
        self._active: dict[str, ActiveRun] = {}

    @classmethod
    def from_settings(cls, settings) -> RunStore:  # noqa: ANN001 (Settings; avoids an import cycle)
        return cls(settings.paths.runs_dir)

    # -- live events

    def subscribe(self, callback: Subscriber, *, batched: bool = False) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of every run; returns the function that unsubscribes.

        With ``batched=True`` the callback gets one :class:`LinesEvent` per chunk of lines instead of
        one :class:`LineEvent` per line.
        """
        entry = (callback, batched)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            try:
                self._subscribers.remove(entry)
            except ValueError:
                pass

        return unsubscribe

    def _emit(self, event: RunEvent) -> None:
        for callback, _batched in tuple(self._subscribers):
            self._call(callback, event)

    def _emit_lines(
        self, run_id: str, target: str, step: str, stream: Stream, ts: float, text: str, count: int | None = None
    ) -> None:
        """Hand a block of lines (joined by newlines; ``count`` of them if known) to subscribers: as
        it is to batched ones."""
        subscribers = tuple(self._subscribers)
        if not subscribers:
            return
        batch: LinesEvent | None = None
        singles: list[LineEvent] | None = None
        for callback, batched in subscribers:
            if batched:
                if batch is None:
                    batch = LinesEvent(run_id, target, step, stream, ts, text, count)
                self._call(callback, batch)
            else:
                if singles is None:
                    singles = [LineEvent(run_id, target, step, stream, ts, line) for line in text.split("\n")]
                for event in singles:
                    self._call(callback, event)

    @staticmethod
    def _call(callback: Subscriber, event: RunEvent) -> None:
        try:
            callback(event)
        except Exception:  # a broken view must never break a run or lose its log
            log.exception("run event subscriber %r failed", callback)

    # -- runs

    def open_run(
        self,
        kind: RunKind,
        title: str,
        targets: Sequence[str],
        *,
        steps: Sequence[str] | dict[str, Sequence[str]] = (),
        redactor: Redactor | None = None,
        meta: dict[str, str] | None = None,
        addresses: dict[str, str] | None = None,
    ) -> ActiveRun:
        """Start a run: writes run.json (status "running"), creates empty logs, emits RunStarted.

        ``steps`` lists the step names known up front (the same for every target, or per target);
        steps first reported later are appended. ``redactor`` masks secrets in every line.
        """
        if not targets:
            raise RunError("a run needs at least one target")
        if len(set(targets)) != len(targets):
            raise RunError(f"a target is listed twice: {', '.join(targets)}")
        started = utcnow()
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            while True:
                run_id = new_run_id(started)
                run_dir = self.runs_dir / run_id
                try:
                    run_dir.mkdir(mode=0o700)
                    break
                except FileExistsError:
                    continue
        except OSError as exc:
            raise RunError(
                f"cannot create the run folder in {self.runs_dir}: {exc.strerror or exc}",
                hint="check that the state folder is writable (setting state_dir)",
            ) from None
        target_records: list[TargetRecord] = []
        for name in targets:
            names = steps.get(name, ()) if isinstance(steps, dict) else steps
            target_records.append(
                TargetRecord(
                    name=name,
                    log_file=log_file_name(name, (t.log_file for t in target_records)),
                    address=(addresses or {}).get(name),
                    steps=[StepRecord(name=step) for step in names],
                )
            )
        record = RunRecord(
            id=run_id,
            kind=kind,
            title=title,
            started=started,
            pid=os.getpid(),
            pid_started=_process_start(os.getpid()),
            hostname=socket.gethostname(),
            meta=dict(meta or {}),
            targets=target_records,
        )
        active = ActiveRun(self, record, run_dir, redactor or Redactor())
        self._active[run_id] = active
        self._emit(RunStarted(record.model_copy(deep=True)))
        return active

    def active(self, run_id: str) -> ActiveRun | None:
        """The run with this id if it is running in this process."""
        return self._active.get(run_id)

    def active_runs(self) -> list[ActiveRun]:
        return list(self._active.values())

    def _closed(self, run_id: str) -> None:
        self._active.pop(run_id, None)

    # -- history

    def run_dir(self, run_id: str) -> Path:
        if not _RUN_ID.match(run_id):
            raise RunNotFound(run_id, self.runs_dir)
        return self.runs_dir / run_id

    def ids(self) -> list[str]:
        """Ids of every run on disk, newest first."""
        try:
            names = [entry.name for entry in os.scandir(self.runs_dir) if entry.is_dir() and _RUN_ID.match(entry.name)]
        except FileNotFoundError:
            return []
        return sorted(names, reverse=True)

    def load(self, run_id: str) -> RunRecord:
        """The record of a run; a dead owner turns "running" into "interrupted" (and is saved so)."""
        active = self._active.get(run_id)
        if active is not None:
            return active.snapshot()
        path = self.run_dir(run_id) / "run.json"
        try:
            record = RunRecord.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise RunNotFound(run_id, self.runs_dir) from None
        except (OSError, ValueError, PydanticValidationError) as exc:
            raise RunError(
                f"run record {path} cannot be read: {str(exc).splitlines()[0]}",
                hint=f"remove the folder {path.parent} if the run is not needed",
            ) from None
        if record.status == "running" and not owner_alive(record):
            record = mark_interrupted(record)
            try:
                _write_json_atomic(path, record.model_dump_json(indent=2))
            except OSError:
                pass  # read-only history still shows the right status
        return record

    def list(self, limit: int | None = None) -> list[RunRecord]:
        """Records of past and current runs, newest first; unreadable records are skipped.

        An id names its start to the second only (its random end orders runs of the same second by
        chance), so the order is the records' start times: every run of the last second reached is
        read before the list is cut to ``limit``."""
        records: list[RunRecord] = []
        last_second = None
        for run_id in self.ids():
            second = run_id[:_ID_SECOND]
            if limit is not None and len(records) >= limit and second != last_second:
                break
            try:
                records.append(self.load(run_id))
            except RunError as exc:
                log.warning("skipping run %s: %s", run_id, exc)
                continue
            last_second = second
        records.sort(key=lambda record: (record.started, record.id), reverse=True)
        return records if limit is None else records[:limit]

    def latest(self) -> RunRecord | None:
        found = self.list(limit=1)
        return found[0] if found else None

    def log_path(self, run_id: str, target: str) -> Path:
        record = self.load(run_id)
        try:
            return self.run_dir(run_id) / record.target(target).log_file
        except KeyError:
            raise RunError(
                f"run {run_id} has no target {target!r}",
                hint=f"its targets are: {', '.join(record.target_names)}",
            ) from None

    def read_log(self, run_id: str, target: str) -> Iterator[str]:
        """The raw lines of a target's log file (without the newline)."""
        path = self.log_path(run_id, target)
        try:
            handle = open(path, encoding="utf-8", errors="replace", newline="\n")
        except FileNotFoundError:
            return iter(())
        return _iter_lines(handle)

    def read_lines(self, run_id: str, target: str) -> Iterator[LineEvent]:
        """A target's log parsed back into :class:`LineEvent` objects."""
        for raw in self.read_log(run_id, target):
            event = parse_log_line(run_id, target, raw)
            if event is not None:
                yield event


def _iter_lines(handle: IO[str]) -> Iterator[str]:
    with handle:
        for line in handle:
            yield line[:-1] if line.endswith("\n") else line


def parse_log_line(run_id: str, target: str, raw: str) -> LineEvent | None:
    parts = raw.split("\t", 3)
    if len(parts) != 4:
        return None
    ts_text, stream, step, text = parts
    try:
        ts = parse_ts(ts_text)
    except ValueError:
        return None
    if stream not in ("stdout", "stderr", "info"):
        return None
    return LineEvent(run_id, target, step, stream, ts, text)  # type: ignore[arg-type]


def mark_interrupted(record: RunRecord) -> RunRecord:
    record = record.model_copy(deep=True)
    record.status = "interrupted"
    record.message = record.message or "the process running it stopped before it finished"
    for target in record.targets:
        if target.status in ("running", "pending"):
            target.status = "interrupted"
        for step in target.steps:
            if step.status == "running":
                step.status = "interrupted"
    return record


# ------------------------------------------------------------------------------------------ active run


class ActiveRun:
    """A run in progress in this process. Methods are synchronous and run on the event loop thread."""

    def __init__(self, store: RunStore, record: RunRecord, run_dir: Path, redactor: Redactor) -> None:
        self.store = store
        self.record = record
        self.dir = run_dir
        self.redactor = redactor
        self._redactors: dict[tuple[str, str], Redactor] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._finished = False
        self._save()
        for target in record.targets:
            self._log(target.name)

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def finished(self) -> bool:
        return self._finished

    def snapshot(self) -> RunRecord:
        return self.record.model_copy(deep=True)

    def log_path(self, target: str) -> Path:
        return self.dir / self._target(target).log_file

    # -- internals

    def _target(self, name: str) -> TargetRecord:
        try:
            return self.record.target(name)
        except KeyError:
            raise RunError(f"run {self.id} has no target {name!r}") from None

    def _log(self, target: str) -> IO[bytes]:
        handle = self._logs.get(target)
        if handle is None:
            path = self.dir / self._target(target).log_file
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            handle = self._logs[target] = open(fd, "ab", buffering=0)  # unbuffered: every write is on disk
        return handle

    def _save(self) -> None:
        try:
            _write_json_atomic(self.dir / "run.json", self.record.model_dump_json(indent=2))
        except OSError as exc:
            log.error("cannot write %s: %s", self.dir / "run.json", exc)

    def _step(self, target: str, step: str) -> StepRecord:
        record = self._target(target)
        found = record.find_step(step)
        if found is None:
            found = StepRecord(name=step)
            record.steps.append(found)
        return found

    # -- reporting

    def line(self, target: str, step: str, stream: Stream, text: str, ts: float | None = None) -> None:
        """One output line: redacted, written and flushed, then given to subscribers."""
        self.lines(target, step, stream, (text,), ts)

    def lines(self, target: str, step: str, stream: Stream, texts: Sequence[str], ts: float | None = None) -> None:
        """Several lines of one stream that arrived together (one write, one flush)."""
        if not texts:
            return
        block = "\n".join(texts)
        if block.count("\n") != len(texts) - 1:  # a text holding a newline stays one line
            block = "\n".join([_clean_text(text) for text in texts])
        self.block(target, step, stream, block, ts)

    def block(self, target: str, step: str, stream: Stream, text: str, ts: float | None = None) -> None:
        """Lines joined by ``"\\n"`` (no trailing newline; ``""`` is one empty line) that arrived together:
        carriage returns applied (:func:`after_carriage_returns`), redacted, written and flushed in one
        go, then given to subscribers.

        The hot path of streaming output: the cost is a few passes over the block in C (no work per
        line in Python), so chunks of thousands of lines cost well under a millisecond.
        """
        ts = time.time() if ts is None else ts
        if "\r" in text:
            text = after_carriage_returns(text)
        key = (target, stream)
        redactor = self._redactors.get(key)
        if redactor is None:
            redactor = self._redactors[key] = self.redactor.copy()
        text = redactor.redact_block(text)
        prefix = f"{format_ts(ts)}\t{stream}\t{_clean_field(step)}\t".encode("utf-8", "replace")
        # Bytes: the block is encoded at its own size, before a prefix per line makes it ~4x larger,
        # and goes out in one system call without joining the parts (a text file encoded the grown
        # block and a join copied it once more: ~10% of this method's time), and the prefixes added
        # give the number of lines for free (the view needs it; counting costs another pass).
        raw = text.encode("utf-8", "replace")
        body = raw.replace(b"\n", b"\n" + prefix)
        count = (len(body) - len(raw)) // len(prefix) + 1  # each newline grew by one prefix
        try:
            _write_all(self._log(target), (prefix, body, b"\n"))
        except OSError as exc:
            log.error("cannot write the log of %s in run %s: %s", target, self.id, exc)
        self.store._emit_lines(self.id, target, step, stream, ts, text, count)

    def info(self, target: str, step: str, text: str) -> None:
        """A line from devorch-tui itself (command, retry, result) in the target's log."""
        self.line(target, step, "info", text)

    def step(
        self,
        target: str,
        step: str,
        status: StepStatus,
        *,
        exit_code: int | None = None,
        started: datetime | None = None,
        duration: float | None = None,
        message: str | None = None,
        attempts: int | None = None,
    ) -> None:
        """Record a step's new status (unknown steps are appended), save run.json, emit StepEvent."""
        record = self._step(target, step)
        record.status = status
        if status == "running":
            record.started = started or record.started or utcnow()
            record.exit_code = None
            record.duration = None
            record.message = message
        else:
            if started is not None:
                record.started = started
            record.exit_code = exit_code
            if duration is None and record.started is not None and status in FINAL_STEP_STATUSES:
                duration = (utcnow() - record.started).total_seconds()
            record.duration = duration
            record.message = message
        if attempts is not None:
            record.attempts = attempts
        target_record = self._target(target)
        if status == "running" and target_record.status == "pending":
            target_record.status = "running"
        self._save()
        self.store._emit(
            StepEvent(
                self.id, target, step, status, record.exit_code, record.started, record.duration, record.message, record.attempts
            )
        )

    def target_done(self, target: str, status: StepStatus | None = None, message: str | None = None) -> None:
        """Close a target: its status is given, or derived from its steps (any failed -> failed)."""
        record = self._target(target)
        record.status = status or _derive_status(record.steps)  # type: ignore[assignment]
        record.message = message
        for step in record.steps:
            if step.status == "pending" and record.status != "ok":
                step.status = "skipped"
        self._save()
        handle = self._logs.pop(target, None)
        if handle is not None:
            handle.close()

    def finish(self, status: RunStatus | None = None, message: str | None = None) -> RunRecord:
        """End the run (status given, or derived from the targets), save, close logs, emit RunFinished."""
        if self._finished:
            return self.snapshot()
        now = utcnow()
        for target in self.record.targets:
            for step in target.steps:
                if step.status == "running":
                    step.status = "cancelled" if status == "cancelled" else "interrupted"
                    if step.duration is None and step.started is not None:
                        step.duration = (now - step.started).total_seconds()
                elif step.status == "pending" and status is not None and status != "ok":
                    step.status = "skipped"
            if target.status in ("pending", "running"):
                # A target cut off by a cancel (while connecting, say) is cancelled, not "ok" with its steps skipped.
                target.status = "cancelled" if status == "cancelled" else _derive_status(target.steps)  # type: ignore[assignment]
        if status is None:
            statuses = {target.status for target in self.record.targets}
            status = "failed" if statuses & {"failed", "interrupted"} else "cancelled" if "cancelled" in statuses else "ok"
        self.record.status = status
        self.record.message = message
        self.record.finished = utcnow()
        self.record.duration = (self.record.finished - self.record.started).total_seconds()
        self._save()
        for handle in self._logs.values():
            try:
                handle.close()
            except OSError:
                pass
        self._logs.clear()
        self._finished = True
        self.store._closed(self.id)
        final = self.snapshot()
        self.store._emit(RunFinished(final))
        return final

    # -- context manager: an exception ends the run as failed (or cancelled)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if self._finished:
            return
        if exc_type is None:
            self.finish()
        elif issubclass(exc_type, (KeyboardInterrupt, GeneratorExit)) or exc_type.__name__ == "CancelledError":
            self.finish("cancelled", "cancelled")
        else:
            self.finish("failed", str(exc) or exc_type.__name__)


def _write_all(handle: IO[bytes], parts: Sequence[bytes]) -> None:
    """Write ``parts`` one after the other (one ``writev`` where there is one), all of them."""
    fd = handle.fileno()
    writev = getattr(os, "writev", None)
    if writev is not None:
        written = writev(fd, parts)
        if written == sum(len(part) for part in parts):
            return
        rest = memoryview(b"".join(parts))[written:]  # a short write (disk full, signal): rare
    else:
        rest = memoryview(b"".join(parts))
    while rest:
        rest = rest[os.write(fd, rest) :]


def _derive_status(steps: Sequence[StepRecord]) -> str:
    statuses = {step.status for step in steps}
    if statuses & {"failed", "interrupted"}:
        return "failed"
    if "cancelled" in statuses:
        return "cancelled"
    if "running" in statuses:
        return "running"
    return "ok"

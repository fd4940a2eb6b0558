"""Headless agent commands: `run`, `runs list|show`, `forget-host`, `tasks schema|check`.

`run` prints every output line as ``[target] task | line`` (``!`` instead of ``|`` for stderr, ``*``
for devorch-tui's own lines) and exits 0 when every task passed, 1 when one failed, 130 when
interrupted (ctrl+c: the run is recorded as cancelled and its reports are still written). asyncssh is
imported only when a run starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO
from xml.etree import ElementTree

from devorch_tui.commands import add_group, print_json
from devorch_tui.config import Settings
from devorch_tui.errors import DevorchError
from devorch_tui.services.known_hosts import KnownHosts, PinnedKey
from devorch_tui.services.runs import ActiveRun, LinesEvent, RunEvent, RunNotFound, RunRecord, RunStore, StepEvent
from devorch_tui.services.targets import TargetError, is_ssh_url, parse_ssh_url
from devorch_tui.services.tasks import load_task_file, task_file_schema
from devorch_tui.services.validation import validate_vm_name

STREAM_MARK = {"stdout": "|", "stderr": "!", "info": "*"}
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    run = subparsers.add_parser(
        "run",
        help="run a task file on one or more VMs or SSH hosts, streaming their output",
        description=(
            "Run the tasks of TASKS.json on every TARGET (a VM name or ssh://user@host:port) over SSH. "
            "Lines print as `[target] task | line` (`!` marks stderr, `*` devorch-tui's own notes). "
            "Exits 1 when a task failed. The run and its full log are kept: see `devorch-tui runs`."
        ),
        parents=[common],
    )
    run.add_argument("targets", nargs="+", metavar="TARGET", help="VM name or ssh://user@host:port")
    run.add_argument("task_file", metavar="TASKS.json", help="task file (see `devorch-tui tasks schema`)")
    run.add_argument("--json", action="store_true", help="print the run record as JSON on stdout (output lines go to stderr)")
    run.add_argument("--junit", metavar="FILE", type=Path, help="also write a JUnit XML report (one test case per task and target)")
    run.add_argument("-q", "--quiet", action="store_true", help="print only the summary (no output lines, no task results as they come)")
    run.set_defaults(handler=cmd_run)

    runs = add_group(subparsers, "runs", "past and current runs (task files, base image builds, provisioning)", common)
    runs_list = runs.add_parser("list", help="list runs, newest first", parents=[common])
    runs_list.add_argument("--json", action="store_true", help="print the records as JSON")
    runs_list.add_argument("-n", "--limit", type=int, default=None, metavar="N", help="show only the N newest runs")
    runs_list.set_defaults(handler=cmd_runs_list)
    runs_show = runs.add_parser("show", help="show one run: per target and task, status, exit code and duration", parents=[common])
    runs_show.add_argument("run_id", metavar="ID", help="run id (a unique prefix works; `latest` is the newest run)")
    runs_show.add_argument("--json", action="store_true", help="print the record as JSON")
    runs_show.add_argument("--log", action="store_true", help="also print the full log of every target")
    runs_show.add_argument("--target", metavar="TARGET", help="with --log: only this target's log")
    runs_show.set_defaults(handler=cmd_runs_show)

    forget = subparsers.add_parser(
        "forget-host",
        help="forget the pinned SSH host key of a VM or host (after the VM was recreated)",
        description=(
            "Remove the SSH host key pinned for TARGET (a VM name, ssh://user@host:port, or a host name "
            "or address) so the next connection trusts the key it is shown."
        ),
        parents=[common],
    )
    forget.add_argument("target", metavar="TARGET")
    forget.set_defaults(handler=cmd_forget_host)

    tasks = add_group(subparsers, "tasks", "task files: JSON schema and validation", common)
    schema = tasks.add_parser("schema", help="print the JSON Schema of task files (for editors)", parents=[common])
    schema.set_defaults(handler=cmd_tasks_schema)
    check = tasks.add_parser("check", help="validate a task file and list its tasks", parents=[common])
    check.add_argument("task_file", metavar="TASKS.json")
    check.set_defaults(handler=cmd_tasks_check)


# ------------------------------------------------------------------------------------------------- run


class LinePrinter:
    """Prints a run's events as prefixed lines (one write per chunk of lines)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, LinesEvent):
            prefix = f"[{event.target}] {event.step} {STREAM_MARK[event.stream]} "
            # The block as it came (lines joined by newlines): one replace, no work per line.
            self.out.write("".join((prefix, event.text.replace("\n", "\n" + prefix), "\n")))
            self.out.flush()
        elif isinstance(event, StepEvent) and event.status not in ("running", "pending"):
            code = "" if event.exit_code is None else f" exit {event.exit_code}"
            took = "" if event.duration is None else f" in {event.duration:.2f} s"
            self.out.write(f"[{event.target}] {event.step} = {event.status}{code}{took}\n")
            self.out.flush()


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from devorch_tui.services import agent  # asyncssh stays unloaded until a run starts

    task_file = load_task_file(args.task_file)
    targets = await agent.resolve_targets(
        args.targets,
        _multipass_if_needed(args.targets, settings),
        user=settings.ssh_user,
        port=settings.ssh_port,
    )
    store = RunStore.from_settings(settings)
    out = sys.stderr if args.json else sys.stdout
    unsubscribe = store.subscribe(LinePrinter(out), batched=True) if not args.quiet else (lambda: None)
    started: list[ActiveRun] = []
    try:
        record = await agent.run_tasks(
            task_file, targets, store, settings, source=Path(args.task_file).resolve(), on_started=started.append
        )
    except asyncio.CancelledError:  # ctrl+c: run_tasks stopped the remote processes and closed the record
        if not started:
            raise
        record = started[0].snapshot()
    finally:
        unsubscribe()
    if args.junit:
        write_junit(record, args.junit, store)
    if args.json:
        print_json(record)
    else:
        print_summary(record, store, sys.stdout)
    if record.status == "ok":
        return 0
    return EXIT_INTERRUPTED if record.status == "cancelled" else EXIT_FAILED


def _multipass_if_needed(specs: Sequence[str], settings: Settings):  # noqa: ANN202
    if all(is_ssh_url(spec) for spec in specs):
        return None
    from devorch_tui.services.multipass import MultipassClient

    return MultipassClient.from_settings(settings)


def print_summary(record: RunRecord, store: RunStore, out: TextIO) -> None:
    counts = record.counts()
    total = sum(counts.values())
    passed = counts.get("ok", 0)
    out.write(f"\nrun {record.id} {record.status}: {passed}/{total} tasks ok on {len(record.targets)} target(s)")
    out.write(f" in {_seconds(record.duration)}\n")
    for target in record.targets:
        failed = [step for step in target.steps if step.status in ("failed", "interrupted", "cancelled")]
        if target.message and not failed:
            out.write(f"  {target.name}: {target.status}: {target.message}\n")
        for step in failed:
            out.write(f"  {target.name}: {step.name} {step.status}: {step.message or ''}\n".rstrip() + "\n")
    out.write(f"logs: {store.run_dir(record.id)}  (devorch-tui runs show {record.id} --log)\n")


JUNIT_TAIL_LINES = 20
"""Lines of a failed task's output a JUnit failure shows (the whole log is in the run history)."""


def output_tails(store: RunStore, record: RunRecord, target: str, wanted: set[str], lines: int = JUNIT_TAIL_LINES) -> dict[str, list[str]]:
    """The last ``lines`` output lines (stdout and stderr, as logged: redacted) of each step in ``wanted``."""
    if not wanted:
        return {}
    tails: dict[str, deque[str]] = {name: deque(maxlen=lines) for name in wanted}
    try:
        for raw in store.read_log(record.id, target):  # raw lines: parsing timestamps would cost seconds on a big log
            parts = raw.split("\t", 3)
            if len(parts) == 4 and parts[2] in tails and parts[1] != "info":
                tails[parts[2]].append(parts[3])
    except (OSError, DevorchError):
        pass
    return {name: list(tail) for name, tail in tails.items()}


def write_junit(record: RunRecord, path: Path, store: RunStore | None = None) -> None:
    suites = ElementTree.Element("testsuites", name=record.title)
    for target in record.targets:
        steps = target.steps
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            name=target.name,
            tests=str(len(steps)),
            failures=str(sum(step.status == "failed" for step in steps)),
            errors=str(sum(step.status in ("interrupted", "cancelled") for step in steps)),
            skipped=str(sum(step.status == "skipped" for step in steps)),
            time=f"{sum(step.duration or 0 for step in steps):.3f}",
            timestamp=record.started.isoformat(),
        )
        failed = {step.name for step in steps if step.status in ("failed", "interrupted", "cancelled")}
        tails = output_tails(store, record, target.name, failed) if store is not None else {}
        for step in steps:
            case = ElementTree.SubElement(
                suite, "testcase", classname=f"{record.title}.{target.name}", name=step.name, time=f"{step.duration or 0:.3f}"
            )
            detail = step.message or target.message or step.status
            tail = tails.get(step.name) or []
            body = detail + (f"\n\nlast {len(tail)} lines of output:\n" + "\n".join(tail) if tail else "")
            if step.attempts > 1:
                body += f"\n\n({step.attempts} attempts)"
            if step.status == "failed":
                ElementTree.SubElement(case, "failure", message=detail).text = body
            elif step.status in ("interrupted", "cancelled"):
                ElementTree.SubElement(case, "error", message=detail).text = body
            elif step.status in ("skipped", "pending"):
                ElementTree.SubElement(case, "skipped", message=detail)
    tree = ElementTree.ElementTree(suites)
    ElementTree.indent(tree)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tree.write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise DevorchError(f"cannot write the JUnit report {path}: {exc.strerror or exc}", hint="check the folder exists and is writable") from None


# ------------------------------------------------------------------------------------------------ runs


def _seconds(value: float | None) -> str:
    if value is None:
        return "--"
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "--"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)


def cmd_runs_list(args: argparse.Namespace, settings: Settings) -> int:
    store = RunStore.from_settings(settings)
    records = store.list(limit=args.limit)
    if args.json:
        print_json([record.model_dump(mode="json") for record in records])
        return 0
    if not records:
        print(f"no runs yet ({store.runs_dir}); start one with `devorch-tui run TARGET TASKS.json`")
        return 0
    rows = [["ID", "KIND", "STATUS", "TASKS OK", "TARGETS", "STARTED", "DURATION", "TITLE"]]
    for record in records:
        counts = record.counts()
        rows.append(
            [
                record.id,
                record.kind,
                record.status,
                f"{counts.get('ok', 0)}/{sum(counts.values())}",
                ",".join(record.target_names),
                _when(record.started),
                _seconds(record.duration),
                record.title,
            ]
        )
    print(_table(rows))
    return 0


def find_run(store: RunStore, wanted: str) -> RunRecord:
    if wanted in ("latest", "last"):
        record = store.latest()
        if record is None:
            raise DevorchError("there are no runs yet", hint="start one with `devorch-tui run TARGET TASKS.json`")
        return record
    matches = [run_id for run_id in store.ids() if run_id.startswith(wanted)]
    if len(matches) > 1:
        raise DevorchError(f"{wanted!r} matches {len(matches)} runs", hint="give more of the id (see `devorch-tui runs list`)")
    if not matches:
        raise RunNotFound(wanted, store.runs_dir)
    return store.load(matches[0])


def cmd_runs_show(args: argparse.Namespace, settings: Settings) -> int:
    store = RunStore.from_settings(settings)
    record = find_run(store, args.run_id)
    if args.target and args.target not in record.target_names:
        raise DevorchError(f"run {record.id} has no target {args.target!r}", hint=f"its targets: {', '.join(record.target_names)}")
    if args.json:
        print_json(record.model_dump(mode="json"))
        return 0
    out = sys.stdout
    out.write(f"run {record.id}  {record.kind}  {record.status}  {record.title}\n")
    out.write(f"started {_when(record.started)}  duration {_seconds(record.duration)}")
    if record.meta.get("task_file"):
        out.write(f"  task file {record.meta['task_file']}")
    out.write("\n")
    if record.message:
        out.write(f"{record.message}\n")
    for target in record.targets:
        address = f" ({target.address})" if target.address else ""
        note = f": {target.message}" if target.message else ""
        out.write(f"\n{target.name}{address}  {target.status}{note}\n")
        rows = [["", "STATUS", "TASK", "EXIT", "STARTED", "DURATION", "TRIES", "MESSAGE"]]
        for step in target.steps:
            rows.append(
                [
                    "",
                    step.status,
                    step.name,
                    "" if step.exit_code is None else str(step.exit_code),
                    _when(step.started)[11:] if step.started else "",
                    _seconds(step.duration) if step.duration is not None else "",
                    str(step.attempts) if step.attempts else "",
                    step.message or "",
                ]
            )
        out.write(_table(rows) + "\n")
        out.write(f"  log: {store.run_dir(record.id) / target.log_file}\n")
    if args.log:
        for target in record.targets:
            if args.target and target.name != args.target:
                continue
            out.write(f"\n--- log of {target.name} ---\n")
            for event in store.read_lines(record.id, target.name):
                out.write(f"[{target.name}] {event.step} {STREAM_MARK[event.stream]} {event.text}\n")
    return 0


# ----------------------------------------------------------------------------------------- forget-host


async def cmd_forget_host(args: argparse.Namespace, settings: Settings) -> int:
    spec: str = args.target
    known = KnownHosts.from_settings(settings)
    removed: list[PinnedKey] = []
    if is_ssh_url(spec):
        target = parse_ssh_url(spec, default_user=settings.ssh_user, default_port=settings.ssh_port)
        removed = known.forget(target.host, target.port)
    else:
        host, _, port_text = spec.rpartition(":") if spec.count(":") == 1 else (spec, "", "")
        if port_text and port_text.isdigit():
            removed = known.forget(host, int(port_text))
        else:
            removed = known.forget(spec)  # a host name, an address, or a VM's label
            if not removed and _is_vm_name(spec):
                address = await _vm_address(spec, settings)
                if address:
                    removed = known.forget(address, settings.ssh_port)
    if not removed:
        print(f"no host key is pinned for {spec} (in {known.path}); nothing to forget")
        return 0
    for entry in removed:
        print(f"forgot {entry.pattern} {entry.key_type}{f' ({entry.label})' if entry.label else ''}")
    print("the next connection will trust the key the host presents and pin it")
    return 0


def _is_vm_name(spec: str) -> bool:
    try:
        validate_vm_name(spec)
    except DevorchError:
        return False
    return True


async def _vm_address(name: str, settings: Settings) -> str | None:
    from devorch_tui.services.multipass import MultipassClient

    try:
        instances = await MultipassClient.from_settings(settings).list()
    except DevorchError:
        return None
    for instance in instances:
        if instance.name == name:
            return instance.address
    return None


# ----------------------------------------------------------------------------------------------- tasks


def cmd_tasks_schema(args: argparse.Namespace, settings: Settings) -> int:
    json.dump(task_file_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def cmd_tasks_check(args: argparse.Namespace, settings: Settings) -> int:
    from devorch_tui.services.agent import build_redactor  # (asyncssh is imported only when a run starts)

    task_file = load_task_file(args.task_file)
    redactor = build_redactor(task_file, settings.workspace_paths.env_file)  # a run string may hold a secret value
    print(f"{args.task_file}: valid task file {task_file.name!r} with {len(task_file.tasks)} task(s)")
    for task in task_file.resolved_tasks():
        shown = redactor.redact(task.run if isinstance(task.run, str) else json.dumps(task.run))
        extras = [f"timeout {task.timeout:g}s"]
        if task.retries:
            extras.append(f"retries {task.retries}")
        if task.continue_on_error:
            extras.append("continue on error")
        print(f"  {task.name}: {shown}  ({', '.join(extras)})")
    return 0


__all__ = ["register", "write_junit", "LinePrinter", "TargetError"]

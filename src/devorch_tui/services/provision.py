"""Provisioning as named steps that report progress into a run record.

A workflow is a list of :class:`Step` (a name and a coroutine). :func:`execute` opens a run
(``runs.RunStore.open_run``, kind "base-image" or "provision"), runs the steps one after the other on
one target and reports each one's state and duration as it goes (``pending`` -> ``running`` ->
``ok``/``skipped``/``failed``/``cancelled``), so the Logs pane, the headless output and the record on
disk all show the same thing. A step may log lines, share data with later steps through
``ctx.data``, hold a lock across steps (``ctx.acquire``) and register a :class:`CleanupAction` for
whatever it made. A failure raises :class:`StepFailed` naming the step, the cause and the cleanup
actions for what was half made; setting the ``cancel`` event (or cancelling the task) stops the
running step and raises :class:`StepsCancelled` with the same cleanup list. Nothing is cleaned up
behind the user's back: :func:`run_cleanup` does it when asked.

The workflows themselves: :func:`provision_project` (golden image -> ``dev-NAME`` with the repository
cloned inside and setup tasks run) and :func:`teardown_project` here; the golden base image in
``services.golden``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devorch_tui.config import Settings
from devorch_tui.errors import DevorchError
from devorch_tui.services.multipass import MultipassClient
from devorch_tui.services.multipass_errors import MultipassError, MultipassErrorKind
from devorch_tui.services.runs import ActiveRun, RunKind, RunStore, utcnow
from devorch_tui.services.secrets import MASK, Redactor, is_secret_name

StepAction = Callable[["StepContext"], Awaitable["str | None"]]


@dataclass(frozen=True)
class Step:
    """One named unit of work. Its coroutine may return a short message shown next to the state."""

    name: str
    run: StepAction


@dataclass(frozen=True)
class CleanupAction:
    """How to undo something a workflow made (e.g. delete a half-provisioned VM)."""

    description: str
    undo: Callable[[], Awaitable[Any]]
    command: str | None = None  # the headless equivalent, shown to the user

    def __str__(self) -> str:
        return f"{self.description} (`{self.command}`)" if self.command else self.description


class SkipStep(Exception):
    """Raised by a step that has nothing to do; the message says why."""


@dataclass(frozen=True)
class StepOutcome:
    name: str
    status: str  # one of runs.STEP_STATUSES
    duration: float | None = None
    message: str | None = None


def _cleanup_hint(cleanup: Sequence[CleanupAction]) -> str | None:
    if not cleanup:
        return None
    return "clean up what was half made: " + "; ".join(str(action) for action in cleanup)


class StepFailed(DevorchError):
    """A step failed. Names the step and the cause, and lists cleanup actions for what was made."""

    def __init__(
        self,
        target: str,
        step: str,
        cause: BaseException,
        *,
        run_id: str | None = None,
        cleanup: Sequence[CleanupAction] = (),
        outcomes: Sequence[StepOutcome] = (),
    ) -> None:
        detail = describe_cause(cause)
        hints = [cause.hint] if isinstance(cause, DevorchError) and cause.hint else []
        if cleanup_hint := _cleanup_hint(cleanup):
            hints.append(cleanup_hint)
        super().__init__(f"{target}: step '{step}' failed: {detail}", hint="; ".join(hints) or None)
        self.target = target
        self.step = step
        self.cause = cause
        self.run_id = run_id
        self.cleanup = list(cleanup)
        self.outcomes = list(outcomes)
        if isinstance(cause, DevorchError):
            self.exit_code = max(cause.exit_code, 1)


class StepsCancelled(DevorchError):
    """The user cancelled while a step ran; lists cleanup actions for what was made so far."""

    exit_code = 130

    def __init__(
        self,
        target: str,
        step: str,
        *,
        run_id: str | None = None,
        cleanup: Sequence[CleanupAction] = (),
        outcomes: Sequence[StepOutcome] = (),
    ) -> None:
        super().__init__(f"{target}: cancelled during step '{step}'", hint=_cleanup_hint(cleanup))
        self.target = target
        self.step = step
        self.run_id = run_id
        self.cleanup = list(cleanup)
        self.outcomes = list(outcomes)


def describe_cause(cause: BaseException) -> str:
    """A one-line reason: a DevorchError's message, else the exception type and text."""
    if isinstance(cause, DevorchError):
        return cause.message
    if isinstance(cause, OSError) and cause.strerror:
        return f"{cause.strerror}" + (f": {cause.filename}" if cause.filename else "")
    text = str(cause)
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


class StepContext:
    """What a step sees: the run to log into, shared data, cleanup registry and held locks."""

    def __init__(self, run: ActiveRun, target: str, cancel: asyncio.Event, data: dict[str, Any] | None = None) -> None:
        self.run = run
        self.target = target
        self.cancel = cancel
        self.step = ""
        self.data: dict[str, Any] = dict(data or {})
        self.cleanup: list[CleanupAction] = []
        self.notes: list[str] = []
        self._held: list[Any] = []

    # -- logging

    def info(self, text: str) -> None:
        """A line from devorch-tui itself in the target's log."""
        self.run.info(self.target, self.step, text)

    def note(self, text: str) -> None:
        """An info line that is also worth showing in the final output (e.g. a fallback taken)."""
        self.notes.append(text)
        self.info(f"note: {text}")

    def output(self, text: str, stream: str = "stdout") -> None:
        """A line of output of a command the step runs."""
        self.run.line(self.target, self.step, stream, text)  # type: ignore[arg-type]

    def output_block(self, text: str, stream: str = "stdout") -> None:
        lines = [line for line in text.splitlines() if line.strip()]
        if lines:
            self.run.lines(self.target, self.step, stream, lines)  # type: ignore[arg-type]

    # -- cleanup

    def add_cleanup(self, description: str, undo: Callable[[], Awaitable[Any]], command: str | None = None) -> CleanupAction:
        action = CleanupAction(description, undo, command)
        self.cleanup.append(action)
        return action

    # -- locks held across steps

    async def acquire(self, lock: Any) -> float:
        """Take ``lock`` (an asyncio.Lock or anything with ``await acquire()``/``release()``) until
        :meth:`release` or the end of the workflow. Returns the seconds waited."""
        started = time.monotonic()
        await lock.acquire()
        self._held.append(lock)
        return time.monotonic() - started

    def release(self, lock: Any) -> None:
        if lock in self._held:
            self._held.remove(lock)
            lock.release()

    def release_all(self) -> None:
        while self._held:
            self._held.pop().release()


async def _run_one(step: Step, ctx: StepContext) -> str | None:
    """Run a step's coroutine; return early (raising CancelledError) when ``ctx.cancel`` is set."""
    task = asyncio.ensure_future(step.run(ctx))
    waiter = asyncio.ensure_future(ctx.cancel.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        await _cancel_and_wait(task)
        raise
    finally:
        waiter.cancel()
    if not task.done():
        await _cancel_and_wait(task)
        raise asyncio.CancelledError
    return task.result()


async def _cancel_and_wait(task: asyncio.Future[Any]) -> None:
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


async def run_steps(
    run: ActiveRun,
    target: str,
    steps: Sequence[Step],
    *,
    cancel: asyncio.Event | None = None,
    ctx: StepContext | None = None,
) -> list[StepOutcome]:
    """Run ``steps`` in order on ``target``, reporting each into ``run``.

    Returns the outcomes when every step ended ok or skipped. Raises :class:`StepFailed` on the first
    failure and :class:`StepsCancelled` when ``cancel`` is set; later steps are reported "skipped".
    Cancelling the calling task reports the running step "cancelled" and re-raises CancelledError.
    Locks taken with ``ctx.acquire`` are released in every case. The run itself is not finished here.
    """
    ctx = ctx or StepContext(run, target, cancel or asyncio.Event())
    outcomes: list[StepOutcome] = []

    def skip_rest(index: int, why: str) -> None:
        for later in steps[index:]:
            run.step(target, later.name, "skipped", message=why)
            outcomes.append(StepOutcome(later.name, "skipped", None, why))

    try:
        for index, step in enumerate(steps):
            ctx.step = step.name
            if ctx.cancel.is_set():
                run.step(target, step.name, "cancelled", duration=0.0, message="cancelled before it started")
                outcomes.append(StepOutcome(step.name, "cancelled", 0.0, "cancelled before it started"))
                skip_rest(index + 1, "not run: cancelled")
                raise StepsCancelled(target, step.name, run_id=run.id, cleanup=ctx.cleanup, outcomes=outcomes)
            started, t0 = utcnow(), time.monotonic()
            run.step(target, step.name, "running", started=started)
            try:
                message = await _run_one(step, ctx)
            except SkipStep as skipped:
                duration = time.monotonic() - t0
                run.step(target, step.name, "skipped", started=started, duration=duration, message=str(skipped) or None)
                outcomes.append(StepOutcome(step.name, "skipped", duration, str(skipped) or None))
                continue
            except asyncio.CancelledError:
                duration = time.monotonic() - t0
                run.step(target, step.name, "cancelled", started=started, duration=duration, message="cancelled")
                outcomes.append(StepOutcome(step.name, "cancelled", duration, "cancelled"))
                skip_rest(index + 1, "not run: cancelled")
                if ctx.cancel.is_set():
                    raise StepsCancelled(target, step.name, run_id=run.id, cleanup=ctx.cleanup, outcomes=outcomes) from None
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is reported with its step
                duration = time.monotonic() - t0
                reason = describe_cause(exc)
                exit_code = getattr(exc, "returncode", None)
                run.info(target, step.name, f"failed: {reason}")
                if isinstance(exc, DevorchError) and exc.hint:
                    run.info(target, step.name, f"fix: {exc.hint}")
                run.step(target, step.name, "failed", started=started, duration=duration, message=reason, exit_code=exit_code)
                outcomes.append(StepOutcome(step.name, "failed", duration, reason))
                skip_rest(index + 1, f"not run: '{step.name}' failed")
                raise StepFailed(target, step.name, exc, run_id=run.id, cleanup=ctx.cleanup, outcomes=outcomes) from exc
            duration = time.monotonic() - t0
            run.step(target, step.name, "ok", started=started, duration=duration, message=message)
            outcomes.append(StepOutcome(step.name, "ok", duration, message))
    finally:
        ctx.release_all()
    return outcomes


@dataclass
class WorkflowResult:
    """A workflow that ended well: its run, target, step outcomes and notes worth showing."""

    run_id: str
    target: str
    outcomes: list[StepOutcome]
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


async def execute(
    store: RunStore,
    kind: RunKind,
    title: str,
    target: str,
    steps: Sequence[Step],
    *,
    cancel: asyncio.Event | None = None,
    on_started: Callable[[ActiveRun], None] | None = None,
    data: dict[str, Any] | None = None,
    redactor: Redactor | None = None,
    meta: dict[str, str] | None = None,
) -> WorkflowResult:
    """Open a run of ``kind`` for ``target``, run ``steps`` in it and finish it with the right status."""
    run = store.open_run(kind, title, [target], steps=[step.name for step in steps], redactor=redactor, meta=meta)
    if on_started is not None:
        on_started(run)  # e.g. the dashboard shows the run and offers to cancel it
    ctx = StepContext(run, target, cancel or asyncio.Event(), data)
    try:
        outcomes = await run_steps(run, target, steps, ctx=ctx)
    except StepFailed as exc:
        run.target_done(target, "failed", exc.message)
        run.finish("failed", exc.message)
        raise
    except StepsCancelled as exc:
        run.target_done(target, "cancelled", exc.message)
        run.finish("cancelled", exc.message)
        raise
    except BaseException:
        run.target_done(target, "cancelled", "cancelled")
        run.finish("cancelled", "cancelled")
        raise
    run.target_done(target, "ok")
    run.finish("ok", "; ".join(ctx.notes) or None)
    return WorkflowResult(run.id, target, outcomes, list(ctx.notes), ctx.data)


async def run_cleanup(actions: Sequence[CleanupAction]) -> list[tuple[CleanupAction, DevorchError | None]]:
    """Undo what a failed workflow made, newest first. Every action is tried; failures are returned."""
    results: list[tuple[CleanupAction, DevorchError | None]] = []
    for action in reversed(actions):
        try:
            await action.undo()
        except DevorchError as exc:
            results.append((action, exc))
        else:
            results.append((action, None))
    return results


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"


# ==================================================================================== project VMs

PROJECT_PREFIX = "dev-"
DEFAULT_SSH_WAIT = 300.0
DEFAULT_CLONE_TIMEOUT = 1800.0
SSH_RETRY_INTERVAL = 1.0
_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9_.-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/\\].*|/.*)$")
_BRANCH_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|^-|^/|/$|\.lock$|^\.|/\.")


class ProvisionError(DevorchError):
    """A project VM cannot be provisioned as asked (name taken, no golden image, bad repository)."""


class SshWaitTimeout(DevorchError):
    """SSH in a new VM did not answer in time."""


def project_vm_name(name: str) -> str:
    """``NAME`` -> ``dev-NAME`` (a name already starting with ``dev-`` is kept)."""
    return name if name.startswith(PROJECT_PREFIX) else f"{PROJECT_PREFIX}{name}"


@dataclass(frozen=True)
class RepoUrl:
    """A repository to clone: the URL as given, how to show it, and whether it needs SSH."""

    url: str
    shown: str
    uses_ssh: bool
    secret: str | None
    directory: str


def parse_repo_url(url: str) -> RepoUrl:
    """Check a repository URL (https, http, ssh, git, file, scp-like ``git@host:path`` or a path).

    Credentials in an https URL are allowed but never shown: ``shown`` masks them and ``secret``
    is handed to the run's redactor.
    """
    url = (url or "").strip()
    hint = "give an https URL (https://github.com/org/repo.git), an ssh URL (git@github.com:org/repo.git) or a path to a git repository"
    if not url:
        raise ProvisionError("the repository URL is empty", hint=hint)
    if url.startswith("-") or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ProvisionError(f"{url!r} is not a repository URL (it starts with '-' or contains spaces or control characters)", hint=hint)
    secret: str | None = None
    shown = url
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http", "ssh", "git", "file"):
            raise ProvisionError(f"{url!r} uses the unsupported scheme {scheme!r}", hint=hint)
        if scheme != "file" and not parts.hostname:
            raise ProvisionError(f"{url!r} has no host name", hint=hint)
        if scheme == "file" and not parts.path:
            raise ProvisionError(f"{url!r} names no folder", hint=hint)
        if parts.password:
            secret = parts.password
            shown = url.replace(f":{parts.password}@", f":{MASK}@", 1)
        uses_ssh = scheme == "ssh"
        path = parts.path
    elif _SCP_LIKE.match(url) and not url.startswith(("/", ".", "~")):
        uses_ssh = True
        path = _SCP_LIKE.match(url).group("path")  # type: ignore[union-attr]
    elif url.startswith(("/", "./", "../", "~/")):
        uses_ssh = False
        path = url
    else:
        raise ProvisionError(f"{url!r} is not a repository URL", hint=hint)
    stem = path.rstrip("/").rsplit("/", 1)[-1]
    stem = stem[:-4] if stem.endswith(".git") else stem
    directory = stem if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", stem or "") else "project"
    return RepoUrl(url=url, shown=shown, uses_ssh=uses_ssh, secret=secret, directory=directory)


def validate_branch(branch: str) -> str:
    if not branch or _BRANCH_BAD.search(branch):
        raise ProvisionError(
            f"{branch!r} is not a valid branch name",
            hint="use a git branch or tag name such as main or release/1.2 (no spaces, no leading '-')",
        )
    return branch


@dataclass
class ProvisionRequest:
    """What ``devorch-tui provision NAME REPO_URL ...`` asks for."""

    name: str
    repo_url: str
    branch: str | None = None
    cpus: int | str | None = None
    memory: str | None = None
    disk: str | None = None
    tasks_file: Path | None = None
    forward_agent: bool = False
    ssh_timeout: float = DEFAULT_SSH_WAIT
    clone_timeout: float = DEFAULT_CLONE_TIMEOUT

    @property
    def vm_name(self) -> str:
        return project_vm_name(self.name)

    def checked(self) -> tuple[RepoUrl, Any]:
        """Validate everything before anything is made; returns the repository and the task file."""
        from devorch_tui.services.validation import validate_cpus, validate_disk, validate_memory, validate_vm_name

        validate_vm_name(self.vm_name, field="project VM name")
        if self.cpus is not None:
            validate_cpus(self.cpus, field="--cpus")
        if self.memory is not None:
            validate_memory(self.memory, field="--memory")
        if self.disk is not None:
            validate_disk(self.disk, field="--disk")
        if self.branch is not None:
            validate_branch(self.branch)
        repo = parse_repo_url(self.repo_url)
        if repo.uses_ssh and not self.forward_agent:
            raise ProvisionError(
                f"{repo.shown} is cloned over SSH, which needs your SSH agent inside the VM",
                hint="add --forward-agent (your agent's keys are used, never copied), or give the https URL",
            )
        task_file = None
        if self.tasks_file is not None:
            from devorch_tui.services.tasks import load_task_file

            task_file = load_task_file(self.tasks_file)
        return repo, task_file


PASSWORD_VARIABLE = "DEVORCH_GIT_PASSWORD"
# A one-shot git credential helper that answers with the password from the environment, so the
# password is never part of a command line (inside the VM `ps` shows argv, not environments).
_CREDENTIAL_HELPER = f'!f() {{ test "$1" = get && printf "password=%s\\n" "${PASSWORD_VARIABLE}"; }}; f'


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def clone_command(repo: RepoUrl, branch: str | None) -> str:
    """The remote command cloning ``repo`` into ``~/DIR`` (every value quoted with shlex).

    A password in the URL is not in the command: it goes in the environment (:func:`clone_env`) and
    reaches git through a credential helper.
    """
    argv = ["git"]
    url = repo.url
    if repo.secret:
        url = _without_password(repo.url)
        argv += ["-c", "credential.helper=", "-c", f"credential.helper={_CREDENTIAL_HELPER}"]
    argv.append("clone")
    if branch:
        argv += ["--branch", branch]
    argv += ["--", url]
    return (
        "GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND='ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new' "
        f'{shlex.join(argv)} "$HOME"/{shlex.quote(repo.directory)}'
    )


def clone_env(repo: RepoUrl) -> dict[str, str]:
    """Environment for :func:`clone_command` (sent inside the SSH session's script, never as argv)."""
    return {PASSWORD_VARIABLE: repo.secret} if repo.secret else {}


@dataclass
class ProvisionResult:
    vm_name: str
    workflow: WorkflowResult
    repo_dir: str
    cloned_from_golden: bool
    tasks_run_id: str | None = None

    @property
    def run_id(self) -> str:
        return self.workflow.run_id


async def _forget_host(settings: Settings, vm: str, address: str | None = None) -> int:
    from devorch_tui.services.known_hosts import KnownHosts

    known = KnownHosts.from_settings(settings)
    removed = known.forget(vm)
    if address:
        removed += known.forget(address)
    return len(removed)


def ssh_session(settings: Settings, target: Any, *, connect_timeout: float | None = None, forward_agent: bool = False) -> Any:
    """An agent.SshSession to ``target`` with the settings' key and pinned host keys."""
    from dataclasses import replace

    from devorch_tui.services.agent import SshOptions, SshSession

    options = SshOptions.from_settings(settings)
    if connect_timeout is not None:
        options = replace(options, connect_timeout=connect_timeout)
    if forward_agent:
        options = replace(options, forward_agent=True)
    return SshSession(target, options)


async def wait_for_ssh(settings: Settings, client: MultipassClient, vm: str, ctx: StepContext, timeout: float) -> Any:
    """Until ``timeout``: find the VM's address and log in with ``true``. Returns the Target."""
    from devorch_tui.services.agent import HostKeyChanged
    from devorch_tui.services.targets import resolve_targets

    deadline = time.monotonic() + timeout
    last = "no answer yet"
    attempts = 0
    while True:
        attempts += 1
        remaining = max(1.0, deadline - time.monotonic())
        try:
            (target,) = await resolve_targets([vm], client, user=settings.ssh_user, port=settings.ssh_port)
            async with ssh_session(settings, target, connect_timeout=min(remaining, settings.ssh_connect_timeout)) as session:
                code = await session.run("true", timeout=remaining)
            if code == 0:
                ctx.info(f"ssh {target.address} answered after {attempts} attempt(s)")
                return target
            last = f"`true` exited {code}"
        except HostKeyChanged:
            raise
        except DevorchError as exc:
            last = exc.message
        if time.monotonic() + SSH_RETRY_INTERVAL > deadline:
            raise SshWaitTimeout(
                f"SSH in {vm} did not answer within {timeout:g} s (last: {last})",
                hint=f"check the VM with `devorch-tui vm list` and `multipass exec {vm} -- systemctl status ssh`; "
                "raise --ssh-timeout if it is just slow",
            )
        if attempts == 1 or attempts % 10 == 0:
            ctx.info(f"waiting for ssh: {last}")
        await asyncio.sleep(SSH_RETRY_INTERVAL)


async def provision_project(
    request: ProvisionRequest,
    settings: Settings,
    client: MultipassClient,
    store: RunStore,
    *,
    cancel: asyncio.Event | None = None,
    on_started: Callable[[ActiveRun], None] | None = None,
) -> ProvisionResult:
    """Make ``dev-NAME`` from the golden image, clone the repository inside, run the setup tasks.

    Where clone is unsupported (multipass < 1.15, lxd) the VM is launched from the rendered cloud-init
    instead, and the run log and the result's notes say so.
    """
    from devorch_tui.services import golden

    repo, task_file = request.checked()
    vm = request.vm_name
    golden_vm = golden.vm_name_from_env(settings)
    if vm == golden_vm:
        raise ProvisionError(f"{vm} is the golden VM's name", hint="pick another project NAME")
    use_clone = await client.supports_clone()
    secrets_env = golden.workspace_env(settings)
    redactor = Redactor([*(v for k, v in secrets_env.items() if is_secret_name(k)), *([repo.secret] if repo.secret else [])])

    async def undo_vm() -> None:
        await client.delete(vm, purge=True)
        await _forget_host(settings, vm)

    async def creating(ctx: StepContext, make: Awaitable[Any]) -> Any:
        """Run the call that creates ``vm`` with its cleanup listed, unless the name turns out taken."""
        action = ctx.add_cleanup(f"delete the half-made VM {vm}", undo_vm, f"devorch-tui teardown {request.name} --yes")
        try:
            return await make
        except MultipassError as exc:
            if exc.kind == MultipassErrorKind.ALREADY_EXISTS:  # someone else's VM: never offer to delete it
                ctx.cleanup.remove(action)
            raise

    async def check(ctx: StepContext) -> str:
        listed = await client.list(ipv4=False)
        instances = {instance.name: instance for instance in listed}
        if vm in instances:
            raise ProvisionError(
                f"a VM named {vm} already exists ({instances[vm].state})",
                hint=f"pick another NAME, or remove it first with `devorch-tui teardown {request.name}`",
            )
        if not use_clone:
            version = await client.version()
            ctx.note(
                f"clone is not supported by this Multipass (client {version.client or '?'}; needs 1.15+ and the qemu, "
                f"hyperv or virtualbox driver): launching {vm} from cloud-init instead, which takes longer"
            )
            return "fallback: launch with cloud-init"
        status = await golden.golden_status(settings, client, golden_vm, instances=listed)
        if not status.ready:
            raise golden.GoldenImageError(
                status.summary,
                hint="rebuild it with `devorch-tui base-image create --rebuild`"
                if status.exists
                else "build it first: `devorch-tui base-image create`, or g in the VMs pane",
            )
        if status.stale:
            ctx.note(f"{status.summary}; rebuild it with `devorch-tui base-image create --rebuild`")
        elif status.render_problem:
            ctx.info(f"cannot tell whether the golden image is stale: {status.render_problem}")
        ctx.data["golden"] = status
        return f"{vm} is free; golden {golden_vm} ready"

    async def restore(ctx: StepContext) -> str:
        waited = await ctx.acquire(golden.golden_lock(settings, golden_vm))
        if waited >= 0.1:
            ctx.info(f"waited {waited:.1f}s for other golden image operations")
        state = ctx.data["golden"].state
        if state == "Stopped" and golden.is_pristine(settings, golden_vm):
            raise SkipStep(f"{golden_vm} unchanged since {golden.GOLDEN_SNAPSHOT}")
        fresh = {i.name: i for i in await client.list(ipv4=False)}.get(golden_vm)
        state = fresh.state if fresh else state
        changed = False
        if state != "Stopped":
            ctx.info(f"golden VM {golden_vm} is {state}: stopping it (it is restored to {golden.GOLDEN_SNAPSHOT} next)")
            golden.mark_pristine(settings, golden_vm, False)
            await client.stop(golden_vm, force=state in ("Suspended", "Suspending", "Unknown"))
            changed = True
        if not changed and golden.is_pristine(settings, golden_vm):
            raise SkipStep(f"{golden_vm} unchanged since {golden.GOLDEN_SNAPSHOT}")
        await client.restore(golden_vm, golden.GOLDEN_SNAPSHOT)
        golden.mark_pristine(settings, golden_vm, True)
        return f"{golden_vm} restored to {golden.GOLDEN_SNAPSHOT}"

    async def clone(ctx: StepContext) -> str:
        lock = golden.golden_lock(settings, golden_vm)
        try:
            await creating(ctx, client.clone(golden_vm, vm))
        finally:
            ctx.release(lock)
        return f"cloned {golden_vm} -> {vm}"

    async def resize(ctx: StepContext) -> str:
        changes = [(key, value) for key, value in (("cpus", request.cpus), ("memory", request.memory), ("disk", request.disk)) if value is not None]
        if not changes:
            raise SkipStep("keeps the golden image's size")
        for key, value in changes:
            await client.set_resource(vm, key, value)  # type: ignore[arg-type]
            ctx.info(f"set local.{vm}.{key}={value}")
        return ", ".join(f"{key}={value}" for key, value in changes)

    async def start(ctx: StepContext) -> str:
        await client.start(vm)
        return f"{vm} running"

    async def render(ctx: StepContext) -> str:
        plan = golden.plan_from_workspace(settings, write=True)
        ctx.data["plan"] = plan
        return f"{plan.template}, sha256 {plan.sha256[:12]}"

    async def launch(ctx: StepContext) -> str:
        plan = ctx.data["plan"]
        output = await creating(
            ctx,
            golden.launch_with_log(
                ctx,
                client,
                vm,
                client.launch(
                    vm,
                    golden.DEFAULT_IMAGE,
                    cpus=request.cpus or plan.cpus,
                    memory=request.memory or plan.memory,
                    disk=request.disk or plan.disk,
                    cloud_init=plan.rendered_path,
                ),
            ),
        )
        ctx.output_block(output)
        return f"launched {vm} with cloud-init"

    async def cloud_init(ctx: StepContext) -> str:
        return await golden.wait_for_cloud_init(client, vm, ctx, settings.multipass_launch_timeout)

    async def ssh(ctx: StepContext) -> str:
        target = await wait_for_ssh(settings, client, vm, ctx, request.ssh_timeout)
        ctx.data["target"] = target
        return target.address

    async def clone_repo(ctx: StepContext) -> str:
        target = ctx.data["target"]
        command = clone_command(repo, request.branch)
        ctx.info(f"git clone {repo.shown} into ~/{repo.directory}" + (f" (branch {request.branch})" if request.branch else ""))
        if request.forward_agent:
            ctx.info("SSH agent forwarding is on for this clone")

        errors: list[str] = []

        def on_line(stream: str, text: str) -> None:
            ctx.output(text, stream)
            if stream == "stderr" and text.startswith(("fatal:", "error:")):
                errors.append(text)

        async with ssh_session(settings, target, forward_agent=request.forward_agent) as session:
            code = await session.run(command, timeout=request.clone_timeout, on_line=on_line, env=clone_env(repo), cancel=ctx.cancel)
        if code != 0:
            raise ProvisionError(
                f"git clone of {repo.shown} failed (exit {code})" + (f": {redactor.redact(errors[0])}" if errors else ""),
                hint="check the URL and branch (see git's message in the run log); private repositories need "
                "--forward-agent with an ssh URL, or credentials your VM can use",
            )
        ctx.data["repo_dir"] = f"~/{repo.directory}"
        return f"~/{repo.directory}"

    async def tasks(ctx: StepContext) -> str:
        if task_file is None:
            raise SkipStep("no --tasks file")
        from devorch_tui.services.agent import run_tasks

        record = await run_tasks(task_file, [ctx.data["target"]], store, settings, cancel=ctx.cancel, source=request.tasks_file)
        ctx.data["tasks_run_id"] = record.id
        ctx.info(f"setup tasks ran as run {record.id}: {record.status}")
        if record.status != "ok":
            raise ProvisionError(
                f"setup tasks ended {record.status} (run {record.id})",
                hint=f"see their output with `devorch-tui runs show {record.id}`; the VM is up and the repository cloned",
            )
        return f"run {record.id}"

    if use_clone:
        steps = [
            Step("check", check),
            Step("restore golden", restore),
            Step("clone golden", clone),
            Step("resize", resize),
            Step("start", start),
            Step("wait for ssh", ssh),
        ]
    else:
        steps = [
            Step("check", check),
            Step("render template", render),
            Step("launch with cloud-init", launch),
            Step("wait for cloud-init", cloud_init),
            Step("wait for ssh", ssh),
        ]
    steps += [Step("clone repository", clone_repo), Step("setup tasks", tasks)]
    workflow = await execute(
        store,
        "provision",
        f"provision {vm} from {repo.shown}",
        vm,
        steps,
        cancel=cancel,
        on_started=on_started,
        redactor=redactor,
        meta={"repo": repo.shown, "mode": "clone" if use_clone else "launch"},
    )
    return ProvisionResult(
        vm_name=vm,
        workflow=workflow,
        repo_dir=workflow.data.get("repo_dir", f"~/{repo.directory}"),
        cloned_from_golden=use_clone,
        tasks_run_id=workflow.data.get("tasks_run_id"),
    )


@dataclass
class TeardownResult:
    vm_name: str
    forgotten_keys: int


async def teardown_project(name: str, settings: Settings, client: MultipassClient) -> TeardownResult:
    """Delete and purge ``dev-NAME`` and forget its host key. Its run logs are kept."""
    from devorch_tui.services import golden
    from devorch_tui.services.validation import validate_vm_name

    instances = {instance.name: instance for instance in await client.list()}
    vm = project_vm_name(name)
    if vm not in instances and name in instances:
        vm = name
    validate_vm_name(vm, field="project VM name")
    try:
        golden_vm = golden.vm_name_from_env(settings)
    except DevorchError:
        golden_vm = None
    if vm == golden_vm:
        raise ProvisionError(
            f"{vm} is the golden base VM, not a project VM",
            hint="rebuild it with `devorch-tui base-image create --rebuild`, or delete it from the VMs pane",
        )
    instance = instances.get(vm)
    if instance is None:
        known = ", ".join(n for n in instances if n.startswith(PROJECT_PREFIX)) or "none"
        raise ProvisionError(f"there is no project VM {vm} (project VMs: {known})", hint="check the name with `devorch-tui vm list`")
    await client.delete(vm, purge=True)
    forgotten = await _forget_host(settings, vm, instance.address)
    return TeardownResult(vm_name=vm, forgotten_keys=forgotten)

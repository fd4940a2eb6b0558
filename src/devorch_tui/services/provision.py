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
``services.golden``; repository URLs, the clone command and local repositories in ``services.repos``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devorch_tui.config import Settings
from devorch_tui.errors import DevorchError
from devorch_tui.services import repos
from devorch_tui.services.multipass import MultipassClient
from devorch_tui.services.multipass_errors import MultipassError, MultipassErrorKind
from devorch_tui.services.runs import ActiveRun, RunKind, RunStore, utcnow
from devorch_tui.services.repos import RepoUrl
from devorch_tui.services.secrets import Redactor, is_secret_name

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

    def state(self, text: str) -> None:
        """What the running step does now (e.g. "waiting for the golden image build"): shown as its
        message while it runs, and logged."""
        self.run.step(self.target, self.step, "running", message=text)
        self.info(text)

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

    async def acquire(self, lock: Any, **options: Any) -> float:
        """Take ``lock`` (an asyncio.Lock or anything with ``await acquire(**options)``/``release()``)
        until :meth:`release` or the end of the workflow. Returns the seconds waited."""
        started = time.monotonic()
        await lock.acquire(**options)
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


class ProvisionError(DevorchError):
    """A project VM cannot be provisioned as asked (name taken, no golden image, bad repository)."""


class SshWaitTimeout(DevorchError):
    """SSH in a new VM did not answer in time."""


def project_vm_name(name: str) -> str:
    """``NAME`` -> ``dev-NAME`` (a name already starting with ``dev-`` is kept)."""
    return name if name.startswith(PROJECT_PREFIX) else f"{PROJECT_PREFIX}{name}"


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
            repos.validate_branch(self.branch)
        repo = repos.parse_repo_url(self.repo_url)
        if repo.uses_ssh and not self.forward_agent:
            raise ProvisionError(
                f"{repo.shown} is cloned over SSH, which needs your SSH agent inside the VM",
                hint="turn on agent forwarding (--forward-agent, or the box in the dashboard's form): your agent's keys "
                "are used, never copied; or give the https URL",
            )
        task_file = None
        if self.tasks_file is not None:
            from devorch_tui.services.tasks import load_task_file

            task_file = load_task_file(self.tasks_file)
        return repo, task_file


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


async def _no_clone_reason(client: MultipassClient) -> str:
    """Why this multipass cannot clone: its version, or its backend (driver)."""
    from devorch_tui.services.multipass import CLONE_MIN_VERSION

    version = await client.version()
    for side, found, text in (("client", version.client_version, version.client), ("daemon", version.daemon_version, version.daemon)):
        if text is not None and (found is None or found < CLONE_MIN_VERSION):
            return f"Multipass {side} {text or '?'} cannot clone VMs (clone needs 1.15 or newer)"
    try:
        driver = (await client.get("local.driver")).strip() or "?"
    except DevorchError:
        driver = "?"
    return f"the {driver} backend of Multipass cannot clone VMs or keep snapshots (the qemu, hyperv or virtualbox driver can)"


async def _golden_disk(client: MultipassClient, golden_vm: str) -> tuple[str, int] | None:
    """The golden VM's disk size (as multipass shows it, in bytes), or None when multipass does not say."""
    from devorch_tui.services.validation import parse_size

    try:
        shown = await client.get(f"local.{golden_vm}.disk")
        return shown, parse_size(shown)
    except DevorchError:
        return None


class GitCloneFailed(ProvisionError):
    """`git clone` in the VM exited non-zero (``returncode`` is shown as the step's exit code)."""

    def __init__(self, message: str, *, hint: str, returncode: int) -> None:
        super().__init__(message, hint=hint)
        self.returncode = returncode


CLONE_HINT = (
    "check the URL and branch (see git's message in the run log); a private repository needs an ssh URL with "
    "agent forwarding (--forward-agent, or the box in the dashboard's form), or credentials the VM can use"
)


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

    The ``check`` step validates what can be known before a VM is made (the name, the repository
    from this machine, the golden image and its disk size), the last of it under the golden lock,
    which is held until the clone is made: a provision started during a golden image build waits for
    it. The golden VM is restored to its snapshot before every clone (multipass cannot tell whether
    a stopped VM was booted since). Where clone is unsupported (multipass < 1.15, lxd) the VM is
    launched from the rendered cloud-init instead, and the run log and the result's notes say so.
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
    lock = golden.golden_lock(settings, golden_vm)

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

    def name_is_free(listed: Sequence[Any]) -> None:
        taken = {instance.name: instance for instance in listed}.get(vm)
        if taken is not None:
            raise ProvisionError(
                f"a VM named {vm} already exists ({taken.state})",
                hint=f"pick another NAME, or remove it first with `devorch-tui teardown {request.name}`",
            )

    async def check(ctx: StepContext) -> str:
        name_is_free(await client.list(ipv4=False))
        for warning in await repos.check(repo, request.branch):
            ctx.note(warning)
        if not use_clone:
            ctx.note(f"{await _no_clone_reason(client)}: launching {vm} from cloud-init instead, which takes longer")
            return "fallback: launch with cloud-init"
        waited = await ctx.acquire(lock, owner=f"provisioning {vm} (restore and clone of the golden image)", on_wait=lambda what: ctx.state(f"waiting for {what}"))
        if waited >= 0.1:
            ctx.info(f"waited {waited:.1f}s for the golden image")
        listed = await client.list(ipv4=False)  # under the lock: a build may just have made the golden VM, a twin the name
        name_is_free(listed)
        status = await golden.golden_status(settings, client, golden_vm, instances=listed)
        if not status.ready:
            raise golden.GoldenImageError(
                status.summary,
                hint="rebuild it with `devorch-tui base-image create --rebuild` (g in the VMs pane offers it)"
                if status.exists
                else "build it first: `devorch-tui base-image create`, or g in the VMs pane",
            )
        if status.stale:
            ctx.note(f"{status.summary}; rebuild it with `devorch-tui base-image create --rebuild`")
        elif status.render_problem:
            ctx.info(f"cannot tell whether the golden image is stale: {status.render_problem}")
        ctx.data["golden"] = status
        disk = await _golden_disk(client, golden_vm) if request.disk is not None else None
        if disk is not None and request.disk is not None:
            from devorch_tui.services.validation import parse_size

            if parse_size(request.disk) < disk[1]:
                raise ProvisionError(
                    f"the disk size {request.disk} is smaller than the golden image's disk ({disk[0]}): a clone's disk can only grow",
                    hint=f"give {disk[0]} or more, or leave the disk empty to keep {disk[0]}",
                )
            ctx.data["golden_disk"] = disk[1]
        return f"{vm} is free; golden {golden_vm} ready"

    async def restore(ctx: StepContext) -> str:
        state = ctx.data["golden"].state  # seen under the golden lock, held since the check
        if state != "Stopped":
            ctx.info(f"golden VM {golden_vm} is {state}: stopping it (it is restored to {golden.GOLDEN_SNAPSHOT} next)")
            await client.stop(golden_vm, force=state in ("Suspended", "Suspending", "Unknown"))
        # Always: multipass cannot tell whether the stopped VM was booted (and changed) since its snapshot.
        ctx.info(f"restoring {golden_vm} to {golden.GOLDEN_SNAPSHOT} (before every clone, so the clone is exactly the image as built)")
        await client.restore(golden_vm, golden.GOLDEN_SNAPSHOT)
        return f"{golden_vm} is {golden.GOLDEN_SNAPSHOT} again"

    async def clone(ctx: StepContext) -> str:
        try:
            await creating(ctx, client.clone(golden_vm, vm))
        finally:
            ctx.release(lock)
        return f"cloned {golden_vm} -> {vm}"

    async def resize(ctx: StepContext) -> str:
        disk = request.disk
        if disk is not None and ctx.data.get("golden_disk") is not None:
            from devorch_tui.services.validation import parse_size

            if parse_size(disk) == ctx.data["golden_disk"]:
                ctx.info(f"disk {disk} is the golden image's size already")
                disk = None
        changes = [(key, value) for key, value in (("cpus", request.cpus), ("memory", request.memory), ("disk", disk)) if value is not None]
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
        branch = f" (branch {request.branch})" if request.branch else ""
        errors: list[str] = []

        def on_line(stream: str, text: str) -> None:
            ctx.output(text, stream)
            if stream == "stderr" and text.startswith(("fatal:", "error:")):
                errors.append(text)

        async with ssh_session(settings, target, forward_agent=request.forward_agent) as session:
            if repo.local is None:
                ctx.info(f"git clone {repo.shown} into ~/{repo.directory}{branch}")
                if request.forward_agent:
                    ctx.info("SSH agent forwarding is on for this clone")
                command, env = repos.clone_command(repo, request.branch), repos.clone_env(repo)
                code = await session.run(command, timeout=request.clone_timeout, on_line=on_line, env=env, cancel=ctx.cancel)
            else:
                code = await _clone_local(ctx, session, repo, request, on_line)
        if code != 0:
            raise GitCloneFailed(
                f"git clone of {repo.shown} failed (exit {code})" + (f": {redactor.redact(errors[0])}" if errors else ""),
                hint=CLONE_HINT,
                returncode=code,
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


async def _clone_local(ctx: StepContext, session: Any, repo: RepoUrl, request: ProvisionRequest, on_line: Callable[[str, str], None]) -> int:
    """Send a repository on this machine into the VM as a git bundle and clone it there (see services.repos)."""
    import secrets
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="devorch-bundle-"))
    try:
        bundle = await repos.make_bundle(repo, folder, timeout=request.clone_timeout)
        size = bundle.stat().st_size
        ctx.info(f"packed {repo.local} into a git bundle ({size:,} bytes); copying it into the VM over SSH")
        remote = await session.upload(bundle, f".devorch-{repo.directory}-{secrets.token_hex(4)}.bundle")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    origin = await repos.local_origin(repo)
    branch = f" (branch {request.branch})" if request.branch else ""
    ctx.info(
        f"git clone of the bundle into ~/{repo.directory}{branch}; origin "
        + (f"set to {origin}, the local repository's origin" if origin else "removed (the repository lives on this machine)")
    )
    command = repos.bundle_clone_command(repo, request.branch, remote, origin)
    return await session.run(command, timeout=request.clone_timeout, on_line=on_line, cancel=ctx.cancel)


@dataclass
class TeardownResult:
    vm_name: str
    forgotten_keys: int


async def teardown_project(name: str, settings: Settings, client: MultipassClient, *, exact: bool = False) -> TeardownResult:
    """Delete and purge ``dev-NAME`` and forget its host key. Its run logs are kept.

    ``exact``: ``name`` is the VM's own name (the dashboard's selected VM, which the user confirmed
    by name), not a project name; any VM but the golden one can be torn down that way. A project
    name never falls back to a VM of that name: `teardown web` must not purge a VM called `web`."""
    from devorch_tui.services import golden
    from devorch_tui.services.validation import validate_vm_name

    instances = {instance.name: instance for instance in await client.list()}
    vm = name if exact else project_vm_name(name)
    validate_vm_name(vm, field="VM name" if exact else "project VM name")
    try:
        golden_vm = golden.vm_name_from_env(settings)
    except DevorchError:
        golden_vm = None
    golden_refused = ProvisionError(
        f"{golden_vm} is the golden base VM, not a project VM",
        hint="rebuild it with `devorch-tui base-image create --rebuild`, or delete it from the VMs pane",
    )
    if vm == golden_vm:
        raise golden_refused
    instance = instances.get(vm)
    if instance is None:
        known = ", ".join(n for n in instances if n.startswith(PROJECT_PREFIX)) or "none"
        if exact:
            raise ProvisionError(f"there is no VM {vm}", hint="check the name with `devorch-tui vm list`")
        if name == golden_vm:  # `teardown golden-python`: no dev-golden-python, and that one is the golden VM
            raise golden_refused
        hint = "check the name with `devorch-tui vm list`"
        if name in instances:
            hint = f"{name} is not a project VM (they are named {PROJECT_PREFIX}NAME): delete it with `devorch-tui vm delete --purge {name}`"
        raise ProvisionError(f"there is no project VM {vm} (project VMs: {known})", hint=hint)
    await client.delete(vm, purge=True)
    forgotten = await _forget_host(settings, vm, instance.address)
    return TeardownResult(vm_name=vm, forgotten_keys=forgotten)

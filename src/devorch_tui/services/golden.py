"""The golden base image: one template VM, built from the rendered cloud-init, and its snapshot.

Multipass has no ``launch --snapshot``. The golden image is a VM named ``VM_NAME`` (from ``.env``),
launched with ``--cloud-init``, verified, stopped and snapshotted as ``golden-image`` with the comment
``template=NAME sha256=HASH`` (the hash of the rendered cloud-init). Project VMs are clones of that VM
(``services.provision``); every provision first puts the VM back exactly as it was built
(``restore --destructive``): multipass cannot tell whether a stopped VM was booted since its snapshot
(by the dashboard, `devorch-tui vm start`, or plain multipass), and restoring a stopped VM is fast.

An existing golden image is reused unless a rebuild is asked for. It is *stale* when the hash in its
comment differs from the hash of today's render. Every operation on the golden VM (build, verify,
restore + clone) takes the same lock (:func:`golden_lock`: in-process and across processes), so they
never overlap while several provisions run in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shlex
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devorch_tui.config import Settings
from devorch_tui.errors import DevorchError
from devorch_tui.services.known_hosts import KnownHosts
from devorch_tui.services.multipass import MultipassClient
from devorch_tui.services.multipass_errors import MultipassError, MultipassErrorKind
from devorch_tui.services.multipass_models import Instance
from devorch_tui.services.provision import SkipStep, Step, StepContext, WorkflowResult, execute
from devorch_tui.services.runs import ActiveRun, RunStore
from devorch_tui.services.secrets import Redactor

GOLDEN_SNAPSHOT = "golden-image"
DEFAULT_IMAGE = "22.04"
CLOUD_INIT_LOG = "/var/log/cloud-init-output.log"
LOG_POLL_INTERVAL = 1.0
REBUILD_WARNING = (
    "--rebuild deletes the current base VM {vm} before building the new one: if the build fails, "
    "there is no golden image until a build succeeds (project VMs already cloned from it are not touched)"
)
# ``template=NAME sha256=HASH``; a NAME with spaces, quotes or control characters is written as a JSON string.
_COMMENT_RE = re.compile(r'template=(?P<template>"(?:[^"\\]|\\.)*"|\S+)\s+sha256=(?P<sha>[0-9a-f]{64})')
_PLAIN_NAME_RE = re.compile(r'[^\s"]+')


class GoldenImageError(DevorchError):
    """The golden image is missing, half made, or failed to build or verify."""


class CloudInitError(DevorchError):
    """cloud-init inside the VM reported an error or did not finish in time."""


class VerifyFailed(DevorchError):
    """One or more environment checks failed inside the VM."""

    def __init__(self, failed: list[CheckResult]) -> None:
        names = ", ".join(check.name for check in failed)
        super().__init__(
            f"{len(failed)} check(s) failed: {names}",
            hint="read each check's output in the run log; fix the template and rebuild with "
            "`devorch-tui base-image create --rebuild`",
        )
        self.failed = failed


# --------------------------------------------------------------------------------------- comment


def golden_comment(template: str, sha256: str) -> str:
    """The snapshot comment that names the template and the hash of the rendered cloud-init.

    A plain name is written as it is (``template=python sha256=...``); any other (spaces, quotes,
    control characters, empty) as a JSON string (``template="my python" sha256=...``).
    """
    name = template if _PLAIN_NAME_RE.fullmatch(template) else json.dumps(template, ensure_ascii=False)
    return f"template={name} sha256={sha256}"


def parse_golden_comment(comment: str) -> tuple[str, str] | None:
    """``(template, sha256)`` from a golden snapshot comment, or None when it is not one of ours."""
    match = _COMMENT_RE.search(comment or "")
    if not match:
        return None
    name = match.group("template")
    if name.startswith('"'):
        try:
            name = json.loads(name)
        except ValueError:
            return None
    return name, match.group("sha")


# ------------------------------------------------------------------------------------------ lock

LOCK_POLL_INTERVAL = 0.1


class GoldenLock:
    """Serialises operations on one golden VM: an asyncio.Lock in this process plus an flock on
    ``state_dir/golden/VM.lock`` so two devorch-tui processes (the dashboard and a script) do not
    restore and clone the same VM at once. ``async with lock:`` or ``await acquire()`` / ``release()``.

    The holder writes what it does into the lock file (``owner``), so a waiter, in this process or
    another, can say what it waits for (:meth:`holder`).
    """

    def __init__(self, local: asyncio.Lock, path: Path) -> None:
        self._local = local
        self.path = path
        self._fd: int | None = None
        self._owner: str | None = None

    def locked(self) -> bool:
        return self._local.locked()

    def holder(self) -> str | None:
        """What the current holder does (e.g. "the golden image build"), when someone holds the lock."""
        if self._local.locked() and self._owner:
            return self._owner
        try:
            return self.path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    async def acquire(self, owner: str = "a golden image operation", on_wait: Callable[[str], None] | None = None) -> bool:
        """Take the lock; ``on_wait(what the holder does)`` is called once if it must wait."""
        if self._local.locked() and on_wait is not None:
            on_wait(self.holder() or "another golden image operation")
            on_wait = None
        await self._local.acquire()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:  # held by another process
                        if on_wait is not None:
                            on_wait(f"{self.holder() or 'a golden image operation'} in another devorch-tui process")
                            on_wait = None
                        await asyncio.sleep(LOCK_POLL_INTERVAL)
                os.ftruncate(fd, 0)
                os.pwrite(fd, owner.encode("utf-8"), 0)
            except BaseException:
                os.close(fd)
                raise
            self._fd, self._owner = fd, owner
        except BaseException:
            self._local.release()
            raise
        return True

    def release(self) -> None:
        fd, self._fd, self._owner = self._fd, None, None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._local.release()

    @contextlib.asynccontextmanager
    async def held(self, owner: str) -> AsyncIterator[GoldenLock]:
        """``async with lock.held("the golden image build"):`` (waiters can say what they wait for)."""
        await self.acquire(owner)
        try:
            yield self
        finally:
            self.release()

    async def __aenter__(self) -> GoldenLock:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()


_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Path, GoldenLock]] = weakref.WeakKeyDictionary()


def golden_lock(settings: Settings, vm_name: str) -> GoldenLock:
    """The lock serialising every operation on the golden VM ``vm_name`` (shared per event loop)."""
    path = settings.paths.state_dir / "golden" / f"{vm_name}.lock"
    loop = asyncio.get_running_loop()
    locks = _LOCKS.setdefault(loop, {})
    lock = locks.get(path)
    if lock is None:
        lock = locks[path] = GoldenLock(asyncio.Lock(), path)
    return lock


# ------------------------------------------------------------------------------ template + .env


@dataclass
class TemplatePlan:
    """What a build needs from the workspace: the template, its render and the VM's size."""

    template: str
    rendered_path: Path
    sha256: str
    vm_name: str
    cpus: str | None
    memory: str | None
    disk: str | None
    env: dict[str, str]
    verify_commands: list[str] = field(default_factory=list)
    ready_marker: str | None = None

    @property
    def comment(self) -> str:
        return golden_comment(self.template, self.sha256)


def workspace_env(settings: Settings) -> dict[str, str]:
    """The .env values in force (over the defaults of templates/.env.example)."""
    from devorch_tui.services import templates

    return templates.workspace_values(settings.workspace_paths)


def vm_name_from_env(settings: Settings) -> str:
    """VM_NAME from the workspace's .env (the golden VM's name)."""
    from devorch_tui.services.validation import validate_vm_name

    env = workspace_env(settings)
    name = env.get("VM_NAME", "").strip()
    if not name:
        raise GoldenImageError(
            f"VM_NAME is not set in {settings.workspace_paths.env_file}",
            hint="set VM_NAME in .env (Templates pane), e.g. VM_NAME=python-dev",
        )
    return validate_vm_name(name, field="VM_NAME")


def plan_from_workspace(settings: Settings, *, write: bool = True) -> TemplatePlan:
    """Render the workspace's template with its .env (and write cloud-init.yaml when ``write``)."""
    from devorch_tui.services import templates

    workspace = settings.workspace_paths
    result = templates.render(workspace, write=write)
    env = workspace_env(settings)
    return TemplatePlan(
        template=result.template.name,
        rendered_path=workspace.rendered,
        sha256=result.sha256,
        vm_name=vm_name_from_env(settings),
        cpus=env.get("VM_CPUS") or None,
        memory=env.get("VM_MEMORY") or None,
        disk=env.get("VM_DISK") or None,
        env=env,
        verify_commands=[shlex.join(argv) for argv in result.template.verify_commands],
        ready_marker=result.template.ready_marker or None,
    )


# ---------------------------------------------------------------------------------------- status


@dataclass
class GoldenStatus:
    vm_name: str
    exists: bool = False
    state: str | None = None
    has_snapshot: bool = False
    template: str | None = None
    sha256: str | None = None
    current_template: str | None = None
    current_sha256: str | None = None
    render_problem: str | None = None
    snapshots_supported: bool = True
    """False on a backend without snapshots (lxd): no golden image there; provisions launch from cloud-init."""

    @property
    def ready(self) -> bool:
        """A golden image exists that provisions can clone."""
        return self.exists and self.has_snapshot

    @property
    def stale(self) -> bool:
        """The snapshot was built from a different render than today's."""
        return self.ready and self.current_sha256 is not None and self.sha256 != self.current_sha256

    @property
    def summary(self) -> str:
        if not self.snapshots_supported:
            return (
                f"this Multipass backend has no snapshots, so it keeps no golden image"
                f"{f' (VM {self.vm_name} is {self.state})' if self.exists else ''}: "
                "provisioning launches each project VM from the rendered cloud-init instead"
            )
        if not self.exists:
            return f"no base image: VM {self.vm_name} does not exist"
        if not self.has_snapshot:
            return f"VM {self.vm_name} exists ({self.state}) but has no {GOLDEN_SNAPSHOT} snapshot: the build did not finish"
        if self.template and self.sha256:
            built = f"template {self.template}, sha256 {self.sha256[:12]}"
        else:
            built = "its snapshot comment does not record which template it was built from"
        if self.stale:
            return f"{self.vm_name}.{GOLDEN_SNAPSHOT} is STALE ({built}; today's render is sha256 {self.current_sha256[:12]})"  # type: ignore[index]
        return f"{self.vm_name}.{GOLDEN_SNAPSHOT} is up to date ({built})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "vm_name": self.vm_name,
            "exists": self.exists,
            "state": self.state,
            "snapshot": GOLDEN_SNAPSHOT if self.has_snapshot else None,
            "template": self.template,
            "sha256": self.sha256,
            "current_template": self.current_template,
            "current_sha256": self.current_sha256,
            "ready": self.ready,
            "stale": self.stale,
            "render_problem": self.render_problem,
            "snapshots_supported": self.snapshots_supported,
            "summary": self.summary,
        }


async def golden_status(
    settings: Settings, client: MultipassClient, vm_name: str | None = None, *, instances: Sequence[Instance] | None = None
) -> GoldenStatus:
    """Does the golden image exist, and is it stale against today's render? (Renders without writing.)

    ``instances`` is a `multipass list` the caller already has (saves one call).
    """
    plan: TemplatePlan | None = None
    problem: str | None = None
    try:
        plan = plan_from_workspace(settings, write=False)
    except DevorchError as exc:
        problem = exc.message
    if vm_name is None:
        vm_name = plan.vm_name if plan else vm_name_from_env(settings)
    status = GoldenStatus(vm_name=vm_name, render_problem=problem)
    if plan is not None:
        status.current_template, status.current_sha256 = plan.template, plan.sha256
    by_name = {instance.name: instance for instance in (instances if instances is not None else await client.list(ipv4=False))}
    instance = by_name.get(vm_name)
    if instance is not None and instance.state != "Deleted":
        status.exists, status.state = True, instance.state
    snapshots = await _snapshots(client)
    if snapshots is None:
        status.snapshots_supported = False
    if not status.exists or snapshots is None:
        return status
    for snapshot in snapshots:
        if snapshot.instance == vm_name and snapshot.name == GOLDEN_SNAPSHOT:
            status.has_snapshot = True
            parsed = parse_golden_comment(snapshot.comment)
            if parsed:
                status.template, status.sha256 = parsed
    return status


async def _snapshots(client: MultipassClient) -> list[Any] | None:
    """Every snapshot; None when the backend has none (lxd/libvirt: no golden image there either)."""
    try:
        return await client.list_snapshots()
    except MultipassError as exc:
        if exc.kind == MultipassErrorKind.NOT_SUPPORTED:
            return None
        raise


# ---------------------------------------------------------------------------------- in-VM helpers


class CloudInitLog:
    """Follows the cloud-init output log inside a VM into the run log (``tail -c +OFFSET`` every second).

    One follower per VM and workflow: it keeps its offset, so the lines seen while `multipass launch`
    runs and those seen while waiting for ``cloud-init status --wait`` are each logged once.
    """

    def __init__(self, client: MultipassClient, vm: str, path: str | None = None) -> None:
        self.client = client
        self.vm = vm
        self.path = path or CLOUD_INIT_LOG
        self.offset = 0
        self.pending = b""

    @classmethod
    def of(cls, ctx: StepContext, client: MultipassClient, vm: str) -> CloudInitLog:
        found = ctx.data.get("cloud_init_log")
        if found is None:
            found = ctx.data["cloud_init_log"] = cls(client, vm)
        return found

    async def poll(self, ctx: StepContext) -> None:
        try:
            result = await self.client.exec(self.vm, ["tail", "-c", f"+{self.offset + 1}", self.path], timeout=self.client.timeout)
        except MultipassError:
            return  # not there yet (still launching): try again next time
        if result.returncode != 0 or not result.stdout:
            return
        chunk = result.stdout.encode("utf-8", "replace")
        self.offset += len(chunk)
        *complete, self.pending = (self.pending + chunk).split(b"\n")
        if complete:
            ctx.run.lines(ctx.target, ctx.step, "stdout", [line.decode("utf-8", "replace").rstrip("\r") for line in complete])

    def flush(self, ctx: StepContext) -> None:
        if self.pending.strip():
            ctx.output(self.pending.decode("utf-8", "replace"))
        self.pending = b""

    @contextlib.asynccontextmanager
    async def following(self, ctx: StepContext, *, final: bool) -> AsyncIterator[None]:
        """Poll while the block runs; once more at the end. ``final`` also logs a last partial line."""
        stop = asyncio.Event()

        async def loop() -> None:
            while not stop.is_set():
                await self.poll(ctx)
                try:
                    await asyncio.wait_for(stop.wait(), LOG_POLL_INTERVAL)
                except asyncio.TimeoutError:
                    pass

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            stop.set()
            await task
        await self.poll(ctx)
        if final:
            self.flush(ctx)


async def wait_for_cloud_init(client: MultipassClient, vm: str, ctx: StepContext, timeout: float) -> str:
    """``cloud-init status --wait`` in ``vm`` while its output log streams into the run log."""
    try:
        async with CloudInitLog.of(ctx, client, vm).following(ctx, final=True):
            result = await client.exec(vm, ["cloud-init", "status", "--wait"], timeout=timeout)
    except MultipassError as exc:
        if exc.kind == MultipassErrorKind.TIMED_OUT:
            raise CloudInitError(
                f"cloud-init in {vm} did not finish within {timeout:g} s",
                hint="the VM may still be installing: see the cloud-init log in the run log; raise --timeout "
                "or rebuild with `devorch-tui base-image create --rebuild`",
            ) from None
        raise
    status_line = _status_line(result.stdout)
    if result.returncode == 0 and status_line in ("done", ""):
        return "cloud-init: done"
    if result.returncode == 2 and status_line == "done":  # cloud-init >= 23.4: done with recoverable errors
        ctx.note(f"cloud-init in {vm} finished with recoverable errors (status: degraded done)")
        return "cloud-init: done (with warnings)"
    detail = await _cloud_init_detail(client, vm, client.timeout)
    ctx.output_block(detail, "stderr")
    reason = f"cloud-init reported status '{status_line or 'unknown'}' (exit {result.returncode})"
    errors = [line.strip() for line in detail.splitlines() if line.strip().startswith(("-", "errors:"))]
    if errors:
        reason += ": " + " ".join(errors)[:300]
    raise CloudInitError(
        reason,
        hint=f"read the cloud-init log in the run log (or `multipass exec {vm} -- sudo cat {CLOUD_INIT_LOG}`), "
        "fix the template, then rebuild with `devorch-tui base-image create --rebuild`",
    )


async def launch_with_log(ctx: StepContext, client: MultipassClient, vm: str, launch: Awaitable[str]) -> str:
    """Await a `multipass launch` with cloud-init while its log streams into the run log.

    Multipass itself waits for cloud-init during launch; when it gives up on that wait ("timed out
    waiting for initialization to complete", the VM is usually fine) the wait goes on in the next step.
    """
    try:
        async with CloudInitLog.of(ctx, client, vm).following(ctx, final=False):
            return await launch
    except MultipassError as exc:
        if exc.kind == MultipassErrorKind.TIMED_OUT and "initialization" in exc.message.lower():
            ctx.info(f"multipass stopped waiting for cloud-init in {vm}; waiting for it in the next step")
            return ""
        raise


def _status_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip().startswith("status:"):
            return line.split(":", 1)[1].strip()
    return ""


async def _cloud_init_detail(client: MultipassClient, vm: str, timeout: float) -> str:
    try:
        result = await client.exec(vm, ["cloud-init", "status", "--long"], timeout=timeout)
    except MultipassError as exc:
        return exc.message
    return (result.stdout + result.stderr).strip()


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str = ""


async def _shell_check(client: MultipassClient, vm: str, name: str, command: str, timeout: float) -> CheckResult:
    """Run ``command`` in a login shell (so /etc/profile.d PATH additions apply) as the VM's user."""
    try:
        result = await client.exec(vm, ["bash", "-lc", command], timeout=timeout)
    except MultipassError as exc:
        return CheckResult(name, False, exc.message)
    output = (result.stdout.strip() or result.stderr.strip()).splitlines()
    first = output[0] if output else ""
    if result.returncode != 0:
        return CheckResult(name, False, f"exit {result.returncode}: {(result.stderr.strip() or first)[:300]}")
    return CheckResult(name, True, first[:200])


async def _expect_output(
    client: MultipassClient, vm: str, name: str, command: str, expected: str, timeout: float
) -> CheckResult:
    check = await _shell_check(client, vm, name, command, timeout)
    if check.ok and check.detail.strip() != expected:
        return CheckResult(name, False, f"expected {expected!r}, found {check.detail.strip()!r}")
    return check


async def ssh_login_check(settings: Settings, client: MultipassClient, vm: str, timeout: float) -> CheckResult:
    """Log in with devorch-tui's key over SSH (pinning the host key) and run ``true``."""
    from devorch_tui.services.agent import SshSession
    from devorch_tui.services.targets import resolve_targets

    try:
        (target,) = await resolve_targets([vm], client, user=settings.ssh_user, port=settings.ssh_port)
        async with SshSession.from_settings(target, settings) as session:
            code = await session.run("true", timeout=timeout)
    except DevorchError as exc:
        return CheckResult("ssh login", False, exc.message)
    if code != 0:
        return CheckResult("ssh login", False, f"`true` exited {code}")
    return CheckResult("ssh login", True, f"{target.address} with {settings.ssh_private_key}")


async def verify_environment(
    settings: Settings, client: MultipassClient, vm: str, plan: TemplatePlan, ctx: StepContext, timeout: float = 120.0
) -> list[CheckResult]:
    """Every check of a built VM (run at the same time), logged one line each; all run even when one fails."""
    probes = []
    if plan.ready_marker:
        probes.append(_shell_check(client, vm, "ready marker", f"test -f {shlex.quote(plan.ready_marker)}", timeout))
    for command in plan.verify_commands:
        probes.append(_shell_check(client, vm, command, command, timeout))
    if plan.env.get("GIT_NAME"):
        probes.append(_expect_output(client, vm, "git user.name", "git config --global user.name", plan.env["GIT_NAME"], timeout))
    if plan.env.get("GIT_EMAIL"):
        probes.append(_expect_output(client, vm, "git user.email", "git config --global user.email", plan.env["GIT_EMAIL"], timeout))
    probes.append(ssh_login_check(settings, client, vm, timeout))
    probes.append(
        _expect_output(client, vm, "podman rootless", "podman info --format '{{.Host.Security.Rootless}}'", "true", timeout)
    )
    checks: list[CheckResult] = list(await asyncio.gather(*probes))
    for check in checks:
        ctx.info(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    return checks


# -------------------------------------------------------------------------------------- workflows


@dataclass
class BaseImageResult:
    status: GoldenStatus
    reused: bool = False
    workflow: WorkflowResult | None = None

    @property
    def run_id(self) -> str | None:
        return self.workflow.run_id if self.workflow else None


def _redactor(env: dict[str, str]) -> Redactor:
    return Redactor.from_env(env)


async def create_base_image(
    settings: Settings,
    client: MultipassClient,
    store: RunStore,
    *,
    rebuild: bool = False,
    image: str = DEFAULT_IMAGE,
    timeout: float | None = None,
    cancel: asyncio.Event | None = None,
    on_started: Callable[[ActiveRun], None] | None = None,
) -> BaseImageResult:
    """Build the golden image (or reuse it). ``timeout`` bounds launch and cloud-init (default: settings)."""
    limit = timeout if timeout is not None else settings.multipass_launch_timeout
    plan = plan_from_workspace(settings, write=False)  # validate before touching anything
    vm = plan.vm_name
    async with golden_lock(settings, vm).held("the golden image build"):
        status = await golden_status(settings, client, vm)
        if not status.snapshots_supported:
            raise GoldenImageError(
                "this Multipass backend has no snapshots, so it cannot keep a golden image",
                hint="skip this step: `devorch-tui provision` launches each project VM from the rendered cloud-init "
                "instead; or switch to the qemu driver (`multipass set local.driver=qemu`)",
            )
        if status.ready and not rebuild:
            return BaseImageResult(status=status, reused=True)
        if status.exists and not status.has_snapshot and not rebuild:
            raise GoldenImageError(
                f"VM {vm} exists but has no {GOLDEN_SNAPSHOT} snapshot (an earlier build did not finish, "
                "or the name is used by another VM)",
                hint=f"rebuild it with `devorch-tui base-image create --rebuild` (deletes {vm}), or set another VM_NAME in .env",
            )

        async def render(ctx: StepContext) -> str:
            fresh = plan_from_workspace(settings, write=True)
            ctx.data["plan"] = fresh
            ctx.info(f"rendered {fresh.rendered_path} from template {fresh.template} (sha256 {fresh.sha256})")
            return f"{fresh.template}, sha256 {fresh.sha256[:12]}"

        async def remove_old(ctx: StepContext) -> str:
            if not status.exists:
                raise SkipStep(f"no VM {vm} yet")
            ctx.info(f"warning: {REBUILD_WARNING.format(vm=vm)}")
            ctx.info(f"deleting the old base VM {vm} (--rebuild)")
            await client.delete(vm, purge=True)
            KnownHosts.from_settings(settings).forget(vm)  # the rebuilt VM has new host keys
            return f"deleted {vm}"

        async def launch(ctx: StepContext) -> str:
            current: TemplatePlan = ctx.data["plan"]
            ctx.info(
                f"multipass launch {image} --name {vm} --cpus {current.cpus or '-'} --memory {current.memory or '-'} "
                f"--disk {current.disk or '-'} --cloud-init {current.rendered_path}"
            )

            async def undo() -> None:
                await client.delete(vm, purge=True)

            action = ctx.add_cleanup(f"delete the half-built base VM {vm}", undo, f"multipass delete --purge {vm}")
            try:
                output = await launch_with_log(
                    ctx, client, vm, client.launch(
                        vm, image, cpus=current.cpus, memory=current.memory, disk=current.disk, cloud_init=current.rendered_path, timeout=limit
                    )
                )
            except MultipassError as exc:
                if exc.kind == MultipassErrorKind.ALREADY_EXISTS:  # made by someone else meanwhile: not ours to delete
                    ctx.cleanup.remove(action)
                raise
            ctx.output_block(output)
            return f"launched {vm}"

        async def cloud_init(ctx: StepContext) -> str:
            return await wait_for_cloud_init(client, vm, ctx, limit)

        async def verify(ctx: StepContext) -> str:
            checks = await verify_environment(settings, client, vm, ctx.data["plan"], ctx)
            failed = [check for check in checks if not check.ok]
            if failed:
                raise VerifyFailed(failed)
            return f"{len(checks)} checks passed"

        async def stop(ctx: StepContext) -> str:
            await client.stop(vm)
            return f"{vm} stopped"

        async def snapshot(ctx: StepContext) -> str:
            current: TemplatePlan = ctx.data["plan"]
            name = await client.snapshot(vm, GOLDEN_SNAPSHOT, comment=current.comment)
            ctx.info(f"snapshot {vm}.{name} taken: {current.comment}")
            return f"{vm}.{name}"

        steps = [
            Step("render template", render),
            Step("remove old base VM", remove_old),
            Step("launch", launch),
            Step("wait for cloud-init", cloud_init),
            Step("verify", verify),
            Step("stop", stop),
            Step("snapshot", snapshot),
        ]
        workflow = await execute(
            store,
            "base-image",
            f"base image {vm} ({plan.template})",
            vm,
            steps,
            cancel=cancel,
            on_started=on_started,
            redactor=_redactor(plan.env),
            meta={"template": plan.template, "image": image},
        )
        final = await golden_status(settings, client, vm)
        return BaseImageResult(status=final, workflow=workflow)


async def verify_base_image(
    settings: Settings,
    client: MultipassClient,
    store: RunStore,
    *,
    timeout: float = 120.0,
    cancel: asyncio.Event | None = None,
    on_started: Callable[[ActiveRun], None] | None = None,
) -> WorkflowResult:
    """Run the environment checks alone on the golden VM, then put it back as it was."""
    plan = plan_from_workspace(settings, write=False)
    vm = plan.vm_name
    async with golden_lock(settings, vm).held("the golden image check (verify)"):
        status = await golden_status(settings, client, vm)
        if not status.exists:
            raise GoldenImageError(f"there is no base VM {vm} to verify", hint="build it with `devorch-tui base-image create`")
        was_stopped = status.state == "Stopped"

        async def start(ctx: StepContext) -> str:
            if status.state == "Running":
                raise SkipStep(f"{vm} is running")
            await client.start(vm)
            return f"{vm} started"

        async def put_back() -> None:
            """Leave the golden VM as it was found: stopped, and restored to its snapshot when it has one."""
            await client.stop(vm)
            if status.has_snapshot:
                await client.restore(vm, GOLDEN_SNAPSHOT)

        async def verify(ctx: StepContext) -> str:
            checks = await verify_environment(settings, client, vm, plan, ctx, timeout)
            failed = [check for check in checks if not check.ok]
            if failed:
                if was_stopped:
                    ctx.info(f"putting {vm} back as it was (stop" + (f", restore {GOLDEN_SNAPSHOT})" if status.has_snapshot else ")"))
                    await put_back()
                raise VerifyFailed(failed)
            return f"{len(checks)} checks passed"

        async def stop(ctx: StepContext) -> str:
            if not was_stopped:
                raise SkipStep(f"{vm} was {status.state} before: left running")
            await client.stop(vm)
            return f"{vm} stopped"

        async def restore(ctx: StepContext) -> str:
            if not (was_stopped and status.has_snapshot):
                raise SkipStep("no snapshot to restore" if not status.has_snapshot else "left running")
            await client.restore(vm, GOLDEN_SNAPSHOT)
            return f"{vm} is {vm}.{GOLDEN_SNAPSHOT} again"

        steps = [Step("start", start), Step("verify", verify), Step("stop", stop), Step("restore golden-image", restore)]
        try:
            return await execute(
                store,
                "base-image",
                f"verify base image {vm}",
                vm,
                steps,
                cancel=cancel,
                on_started=on_started,
                redactor=_redactor(plan.env),
                meta={"template": plan.template, "action": "verify"},
            )
        except DevorchError as exc:
            if was_stopped and getattr(exc, "step", None) != "verify":  # start failed or cancelled: best effort
                with contextlib.suppress(DevorchError):
                    await put_back()
            raise

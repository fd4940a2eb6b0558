"""Async client for the multipass CLI: typed results, typed errors.

Every call goes through :func:`devorch_tui.services.procs.run` (argv list, ``LC_ALL=C``, stdin
``/dev/null``, a timeout on every call, process group killed on timeout). Names and sizes are
validated before multipass is called. Calls that change an instance are serialised per instance
name with an ``asyncio.Lock``, so e.g. a restore and a clone of the same template never overlap.
Success is decided by the exit code only: stderr may carry daemon log lines on success. The one
exception to all this is the interactive shell (``run_shell``), which runs attached to the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from devorch_tui.errors import ValidationError
from devorch_tui.services import procs
from devorch_tui.services.multipass_errors import (
    INSTALL_HINT,
    MultipassError,
    MultipassErrorKind,
    classify,
    clean_detail,
    clean_output,
)
from devorch_tui.services.multipass_models import (
    Image,
    Instance,
    InstanceInfo,
    InstanceResources,
    JsonFormatError,
    Mount,
    SnapshotInfo,
    SnapshotSummary,
    UpdateInfo,
    VersionInfo,
    Zone,
    parse_find,
    parse_info,
    parse_list,
    parse_snapshot_list,
    version_tuple,
)
from devorch_tui.services.procs import ProcResult
from devorch_tui.services.validation import validate_cpus, validate_disk, validate_memory, validate_vm_name

if TYPE_CHECKING:
    from devorch_tui.config import Settings

__all__ = [
    "CLONE_MIN_VERSION",
    "Image",
    "Instance",
    "InstanceInfo",
    "InstanceResources",
    "LaunchPlan",
    "Mount",
    "MultipassClient",
    "MultipassError",
    "MultipassErrorKind",
    "ResourceKey",
    "SnapshotInfo",
    "SnapshotSummary",
    "UpdateInfo",
    "VersionInfo",
    "Zone",
    "clean_detail",
    "clean_output",
    "validate_timeout",
    "version_tuple",
]

ResourceKey = Literal["cpus", "memory", "disk"]
CLONE_MIN_VERSION = (1, 15, 0)
NO_CLONE_DRIVERS = frozenset({"lxd", "libvirt"})
# Extra seconds our own kill timer waits past multipass's --timeout, so exit 5 wins the race.
TIMEOUT_GRACE = 15.0

# multipass reads --timeout with QString::toInt: a positive 32-bit integer.
MAX_TIMEOUT = 2**31 - 1

_SHELL_STDERR_KEPT = 8192
_FAILED_LINE = re.compile(r"^(shell|start) failed: ", re.MULTILINE)  # shell starts a stopped VM first

_IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+~@%-]*")  # fullmatch: a trailing newline is no image
_SETTING_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def validate_timeout(value: float | int | str, *, field: str = "--timeout") -> int:
    """Seconds multipass may wait (``--timeout``): a finite number, at least 1; fractions round up."""
    text = str(value).strip()
    try:
        if not text.isascii() or "_" in text:  # float() takes "٣" and "1_0"; multipass does not
            raise ValueError(text)
        seconds = float(text)
    except ValueError:
        seconds, problem = 0.0, f"{text!r} is not a number of seconds"
    else:
        problem = f"{text} is not a finite number of seconds" if not math.isfinite(seconds) else ""
    if not problem and seconds < 1:
        problem = f"{text} is less than 1 second"
    if not problem and seconds > MAX_TIMEOUT:
        problem = f"{text} is more than multipass accepts ({MAX_TIMEOUT} s)"
    if problem:
        raise ValidationError(field, problem, hint="give whole seconds, 1 or more, e.g. 600 (10 minutes)")
    return math.ceil(seconds)


def _validate_image(image: str) -> str:
    image = image.strip()
    if not image or not _IMAGE_RE.fullmatch(image):
        raise ValidationError(
            "image",
            f"{image!r} is not an image name",
            hint="use a release like 24.04 or 22.04, a codename like noble, or an http(s):// / file:// URL",
        )
    return image


def _validate_target(spec: str) -> tuple[str, str | None]:
    """``vm`` or ``vm.snapshot`` for info/delete; both parts validated."""
    name, dot, snapshot = spec.partition(".")
    validate_vm_name(name)
    if dot:
        validate_vm_name(snapshot, field="snapshot name")
        return name, snapshot
    return name, None


def _validate_transfer_path(path: str) -> str:
    if not path or path.startswith("-"):
        raise ValidationError("transfer path", f"{path!r} is not a path", hint="use ./file for local files starting with '-'")
    name, colon, _ = path.partition(":")
    if colon and "/" not in name and name:  # instance path NAME:PATH
        validate_vm_name(name)
    return path


@dataclass(frozen=True)
class LaunchPlan:
    """A launch whose arguments were checked: the argv after ``multipass`` and our kill timer."""

    name: str
    argv: tuple[str, ...]
    limit: float


class MultipassClient:
    """Talks to one multipass binary. Share one instance per app so the per-instance locks hold."""

    def __init__(self, binary: str = "multipass", timeout: float = 30.0, launch_timeout: float = 1800.0) -> None:
        self.binary = binary
        self.timeout = float(timeout)
        self.launch_timeout = float(launch_timeout)
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> MultipassClient:
        return cls(
            binary=settings.multipass_bin,
            timeout=settings.multipass_timeout,
            launch_timeout=settings.multipass_launch_timeout,
        )

    def __repr__(self) -> str:
        return f"MultipassClient(binary={self.binary!r}, timeout={self.timeout:g}, launch_timeout={self.launch_timeout:g})"

    # ------------------------------------------------------------------ plumbing

    async def _call(
        self,
        args: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> ProcResult:
        """Run ``multipass <args>``; raise MultipassError on a non-zero exit when ``check``."""
        command = args[0]
        limit = timeout if timeout is not None else self.timeout
        try:
            result = await procs.run([self.binary, *args], timeout=limit)
        except procs.CommandNotFound:
            raise MultipassError(
                f"multipass is not installed (looked for {self.binary!r})",
                kind=MultipassErrorKind.MISSING,
                command=command,
                hint=INSTALL_HINT,
            ) from None
        except procs.CommandTimeout:
            raise MultipassError(
                f"multipass {command} did not answer within {limit:g} s and was stopped",
                kind=MultipassErrorKind.TIMED_OUT,
                command=command,
            ) from None
        if check and result.returncode != 0:
            raise MultipassError.from_result(command, result.returncode, result.stderr, result.stdout)
        return result

    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    @contextlib.asynccontextmanager
    async def _locked(self, *names: str) -> AsyncIterator[None]:
        """Hold the locks of every named instance (taken in sorted order, so never a deadlock)."""
        async with contextlib.AsyncExitStack() as stack:
            for name in sorted(set(names)):
                await stack.enter_async_context(self._lock(name))
            yield

    def is_busy(self, name: str) -> bool:
        """True while a mutating call on ``name`` runs through this client."""
        lock = self._locks.get(name)
        return bool(lock and lock.locked())

    @staticmethod
    def _names(names: Sequence[str]) -> list[str]:
        if not names:
            raise ValidationError("VM name", "no instance named", hint="name at least one instance")
        return [validate_vm_name(name) for name in dict.fromkeys(names)]

    def _with_timeout_flag(self, timeout: float | None) -> tuple[list[str], float]:
        """``--timeout N`` for multipass and our own (later) kill timer."""
        if timeout is None:
            seconds = validate_timeout(self.launch_timeout, field="multipass_launch_timeout")
        else:
            seconds = validate_timeout(timeout)
        return ["--timeout", str(seconds)], seconds + TIMEOUT_GRACE

    # ------------------------------------------------------------------ queries

    async def version(self) -> VersionInfo:
        """Client and daemon versions; ``daemon`` is None when the daemon is unreachable (exit 0)."""
        result = await self._call(["version", "--format", "json"])
        return self._parse(VersionInfo.from_json, result, "version")

    async def list(self, *, ipv4: bool = True) -> list[Instance]:
        """Every instance (Deleted ones too), sorted by name. ``ipv4=False`` is the cheap poll (no SSH)."""
        args = ["list", "--format", "json"] + ([] if ipv4 else ["--no-ipv4"])
        try:
            result = await self._call(args)
        except MultipassError as exc:
            # One instance whose IP lookup fails breaks the whole list (multipass #5219): fall back to
            # the list without addresses rather than showing nothing.
            if not ipv4 or exc.kind is not MultipassErrorKind.OTHER:
                raise
            result = await self._call([*args, "--no-ipv4"])
        return self._parse(parse_list, result, "list")

    async def list_snapshots(self) -> list[SnapshotSummary]:
        result = await self._call(["list", "--snapshots", "--format", "json"])
        return self._parse(parse_snapshot_list, result, "list --snapshots")

    async def info(self, *names: str, snapshots: bool = False, runtime: bool = True) -> dict[str, InstanceInfo]:
        """Details of the named instances (``vm.snap`` for a snapshot), or of all when none is named.

        ``snapshots=True`` returns the snapshots (``InstanceInfo.snapshots``) instead of the details;
        ``runtime=False`` skips the SSH runtime query (cheap; no load/memory/disk/ip).
        """
        for spec in names:
            _validate_target(spec)
        args = ["info", *dict.fromkeys(names), "--format", "json"]
        if snapshots:
            args.append("--snapshots")
        if not runtime:
            args.append("--no-runtime-information")
        result = await self._call(args)
        return self._parse(parse_info, result, "info")

    async def snapshots_of(self, name: str) -> list[SnapshotInfo]:
        """The snapshots of one instance with their details, sorted by name."""
        info = await self.info(name, snapshots=True)
        entry = info.get(name)
        return list(entry.snapshots.values()) if entry else []

    async def find(self) -> list[Image]:
        result = await self._call(["find", "--format", "json"])
        return self._parse(parse_find, result, "find")

    async def get(self, key: str) -> str:
        """``multipass get --raw KEY`` (e.g. ``local.driver``), stripped; "" for an empty value."""
        if not _SETTING_KEY_RE.fullmatch(key):
            raise ValidationError("setting key", f"{key!r} is not a multipass setting key", hint="e.g. local.driver")
        result = await self._call(["get", "--raw", key])
        return result.stdout.strip()

    async def resources(self, name: str) -> InstanceResources:
        """CPUs, memory and disk an instance is given (`get local.NAME.cpus|memory|disk`): known
        while it is stopped too, when `info` has no runtime data."""
        name = validate_vm_name(name)
        cpus, memory, disk = await asyncio.gather(*(self.get(f"local.{name}.{key}") for key in ("cpus", "memory", "disk")))
        return InstanceResources.from_settings(cpus, memory, disk)

    async def supports_clone(self) -> bool:
        """Clone needs multipass >= 1.15 and a driver other than lxd/libvirt."""
        version = await self.version()
        found = version.client_version
        if found is None or found < CLONE_MIN_VERSION:
            return False
        if version.daemon_version is not None and version.daemon_version < CLONE_MIN_VERSION:
            return False
        driver = await self.get("local.driver")
        return driver.strip().lower() not in NO_CLONE_DRIVERS

    @staticmethod
    def _parse(parser, result: ProcResult, what: str):  # type: ignore[no-untyped-def]
        try:
            return parser(result.stdout)
        except JsonFormatError as exc:
            raise MultipassError(
                str(exc),
                kind=MultipassErrorKind.OTHER,
                stderr=result.stderr,
                exit_code=result.returncode,
                command=what.split()[0],
                hint="check that DEVORCH_MULTIPASS_BIN points at a real multipass (`multipass version`)",
            ) from None

    # ------------------------------------------------------------------ lifecycle

    async def launch(
        self,
        name: str,
        image: str = "22.04",
        cpus: int | str | None = None,
        memory: str | None = None,
        disk: str | None = None,
        cloud_init: Path | None = None,
        timeout: float | None = None,
    ) -> str:
        """Create and start an instance; returns multipass's output without the spinner."""
        return await self.run_launch(self.plan_launch(name, image, cpus, memory, disk, cloud_init, timeout))

    def plan_launch(
        self,
        name: str,
        image: str = "22.04",
        cpus: int | str | None = None,
        memory: str | None = None,
        disk: str | None = None,
        cloud_init: Path | None = None,
        timeout: float | None = None,
    ) -> LaunchPlan:
        """Check every launch argument (ValidationError on the first bad one); nothing runs yet."""
        name = validate_vm_name(name)
        args = ["launch", _validate_image(image), "--name", name]
        if cpus is not None:
            args += ["--cpus", str(validate_cpus(cpus, field="CPUs"))]
        if memory is not None:
            args += ["--memory", validate_memory(memory, field="memory")]
        if disk is not None:
            args += ["--disk", validate_disk(disk, field="disk")]
        if cloud_init is not None:
            path = Path(cloud_init).expanduser()
            if not path.is_file():
                raise ValidationError(
                    "cloud-init file", f"{path} does not exist", hint="render it first (templates render) or pick another file"
                )
            args += ["--cloud-init", str(path.resolve())]
        flag, limit = self._with_timeout_flag(timeout)
        return LaunchPlan(name=name, argv=(*args, *flag), limit=limit)

    async def run_launch(self, plan: LaunchPlan) -> str:
        """Run a checked launch; returns multipass's output without the spinner."""
        async with self._locked(plan.name):
            result = await self._call(list(plan.argv), timeout=plan.limit)
        return clean_output(result.stdout)

    async def start(self, *names: str, timeout: float | None = None) -> None:
        names_ = self._names(names)
        flag, limit = self._with_timeout_flag(timeout)
        async with self._locked(*names_):
            await self._call(["start", *names_, *flag], timeout=limit)

    async def stop(self, *names: str, force: bool = False) -> None:
        names_ = self._names(names)
        async with self._locked(*names_):
            await self._call(["stop", *names_, *(["--force"] if force else [])], timeout=self.launch_timeout)

    async def suspend(self, *names: str) -> None:
        names_ = self._names(names)
        async with self._locked(*names_):
            await self._call(["suspend", *names_], timeout=self.launch_timeout)

    async def restart(self, *names: str, timeout: float | None = None) -> None:
        names_ = self._names(names)
        flag, limit = self._with_timeout_flag(timeout)
        async with self._locked(*names_):
            await self._call(["restart", *names_, *flag], timeout=limit)

    async def delete(self, *names: str, purge: bool = False) -> None:
        names_ = self._names(names)
        async with self._locked(*names_):
            await self._call(["delete", *names_, *(["--purge"] if purge else [])], timeout=self.launch_timeout)

    async def delete_snapshot(self, name: str, snapshot: str) -> None:
        """Snapshots can only be purged (without --purge multipass would prompt and crash)."""
        name = validate_vm_name(name)
        snapshot = validate_vm_name(snapshot, field="snapshot name")
        async with self._locked(name):
            await self._call(["delete", f"{name}.{snapshot}", "--purge"], timeout=self.launch_timeout)

    async def recover(self, *names: str) -> None:
        names_ = self._names(names)
        async with self._locked(*names_):
            await self._call(["recover", *names_], timeout=self.launch_timeout)

    async def purge(self) -> None:
        """Permanently remove every Deleted instance."""
        await self._call(["purge"], timeout=self.launch_timeout)

    async def snapshot(self, name: str, snapshot_name: str | None = None, comment: str | None = None) -> str:
        """Snapshot a Stopped instance; returns the snapshot's name (multipass picks one if not given)."""
        name = validate_vm_name(name)
        args = ["snapshot", name]
        if snapshot_name is not None:
            args += ["--name", validate_vm_name(snapshot_name, field="snapshot name")]
        if comment:
            args += ["--comment", comment]
        async with self._locked(name):
            result = await self._call(args, timeout=self.launch_timeout)
        match = re.search(r"Snapshot taken: ([^\s.]+)\.(\S+)", clean_output(result.stdout))
        if match:
            return match.group(2)
        if snapshot_name:
            return snapshot_name
        raise MultipassError(
            "multipass snapshot succeeded but did not say the snapshot's name",
            command="snapshot",
            stderr=result.stderr,
            hint="see the snapshots with `multipass list --snapshots`",
        )

    async def restore(self, name: str, snapshot: str) -> None:
        """Restore a Stopped instance to a snapshot, discarding its current state (--destructive)."""
        name = validate_vm_name(name)
        snapshot = validate_vm_name(snapshot, field="snapshot name")
        async with self._locked(name):
            await self._call(["restore", f"{name}.{snapshot}", "--destructive"], timeout=self.launch_timeout)

    async def clone(self, source: str, new_name: str) -> None:
        """Clone a Stopped instance (multipass >= 1.15, not on lxd); the clone is Stopped."""
        source = validate_vm_name(source, field="source VM")
        new_name = validate_vm_name(new_name, field="new VM name")
        async with self._locked(source, new_name):
            await self._call(["clone", source, "--name", new_name], timeout=self.launch_timeout)

    async def set_resource(self, name: str, key: ResourceKey, value: int | str) -> None:
        """``multipass set local.NAME.KEY=VALUE`` (instance must be Stopped; disk can only grow)."""
        name = validate_vm_name(name)
        if key == "cpus":
            text = str(validate_cpus(value, field="CPUs"))
        elif key == "memory":
            text = validate_memory(str(value), field="memory")
        elif key == "disk":
            text = validate_disk(str(value), field="disk")
        else:
            raise ValidationError("resource", f"{key!r} cannot be set", hint="use cpus, memory or disk")
        async with self._locked(name):
            await self._call(["set", f"local.{name}.{key}={text}"])

    # ------------------------------------------------------------------ in the instance

    async def exec(self, name: str, argv: list[str], timeout: float | None = None) -> ProcResult:
        """Run ``argv`` in the instance; the result carries the remote exit code (not raised).

        Raises MultipassError when multipass itself fails (missing instance, daemon down...).
        """
        name = validate_vm_name(name)
        if isinstance(argv, str) or not argv:
            raise TypeError("exec() takes a non-empty argv list")
        # -n: run in the home folder, wherever devorch-tui was started (and skip an extra info RPC).
        result = await self._call(
            ["exec", name, "--no-map-working-directory", "--", *argv],
            timeout=timeout if timeout is not None else self.launch_timeout,
            check=False,
        )
        if result.returncode != 0 and re.match(r"^exec failed: ", result.stderr):
            raise MultipassError.from_result("exec", result.returncode, result.stderr, result.stdout)
        if result.returncode != 0 and classify(result.returncode, result.stderr) in (
            MultipassErrorKind.DAEMON_UNREACHABLE,
            MultipassErrorKind.SOCKET_DENIED,
        ):
            raise MultipassError.from_result("exec", result.returncode, result.stderr, result.stdout)
        return result

    async def transfer(self, source: str, dest: str, *, recursive: bool = False, parents: bool = False) -> None:
        """Copy files; instance paths are written ``NAME:PATH``."""
        args = ["transfer"]
        if recursive:
            args.append("--recursive")
        if parents:
            args.append("--parents")
        args += [_validate_transfer_path(source), _validate_transfer_path(dest)]
        await self._call(args, timeout=self.launch_timeout)

    def shell_argv(self, name: str) -> list[str]:
        """The argv that opens an interactive shell (run it attached to the terminal)."""
        return [self.binary, "shell", validate_vm_name(name)]

    def run_shell(self, name: str) -> int:
        """Run `multipass shell NAME` attached to this terminal until it ends (blocking); returns its
        exit code, which from 1.17 on is the inner shell's own.

        multipass's stderr passes through to the terminal as it comes and its end is kept: when
        multipass itself failed (its "shell failed: ..." or a timeout there, not a command in the
        VM, whose output reaches the terminal through the session), this raises MultipassError, so
        a caller that hides the terminal again (the dashboard) can say what happened. OSError when
        the binary cannot be run.
        """
        argv = self.shell_argv(name)
        process = subprocess.Popen(argv, stderr=subprocess.PIPE)  # noqa: S603 - an argv list; stdin/stdout: the terminal
        assert process.stderr is not None
        tail = bytearray()
        with process.stderr:
            while chunk := os.read(process.stderr.fileno(), 4096):
                os.write(2, chunk)
                tail += chunk
                del tail[:-_SHELL_STDERR_KEPT]
        code = process.wait()
        stderr = tail.decode("utf-8", errors="replace")
        # By its words only: from 1.17 the inner shell's own exit code (e.g. 5) comes out here too.
        if code != 0 and (_FAILED_LINE.search(stderr) or classify(None, stderr) is not MultipassErrorKind.OTHER):
            raise MultipassError.from_result("shell", code, stderr)
        return code


"""Run external programs: argv lists only, a timeout on every call, no tty on stdin.

The one place that spawns subprocesses for services (multipass, ssh-keygen, ...). A timed-out
process is killed with its whole process group so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from devorch_tui.errors import DevorchError


@dataclass(frozen=True)
class ProcResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class CommandNotFound(DevorchError):
    """The program to run is not installed (or not on PATH)."""

    def __init__(self, program: str, *, hint: str | None = None) -> None:
        super().__init__(f"{program!r} was not found", hint=hint or f"install {program} or put it on PATH")
        self.program = program


class CommandTimeout(DevorchError):
    """The program did not finish in time and was killed."""

    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        super().__init__(
            f"`{' '.join(argv[:3])}` did not finish within {timeout:g} s and was stopped",
            hint="try again; if it keeps happening raise the timeout in settings",
        )
        self.argv = tuple(argv)
        self.timeout = timeout


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for children: ours, with a stable C locale, plus ``extra``."""
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    if extra:
        env.update(extra)
    return env


async def run(
    argv: Sequence[str],
    *,
    timeout: float,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> ProcResult:
    """Run ``argv`` to completion and capture its output.

    Raises CommandNotFound when the program does not exist and CommandTimeout when it runs longer than
    ``timeout`` seconds (the process group is killed first). A non-zero exit is *not* an error here:
    callers decide from ``returncode``.
    """
    if isinstance(argv, str):  # guard against accidental shell strings
        raise TypeError("run() takes an argv list, not a string")
    argv = [os.fspath(part) for part in argv]
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_env(env),
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise CommandNotFound(argv[0]) from None
    except PermissionError:
        raise DevorchError(f"{argv[0]!r} is not executable", hint=f"check the permissions of {argv[0]}") from None
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(input), timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
        kill_group(proc)
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise CommandTimeout(argv, timeout) from None
    return ProcResult(
        argv=tuple(argv),
        returncode=proc.returncode if proc.returncode is not None else -1,
        stdout=stdout.decode("utf-8", "replace"),
        stderr=stderr.decode("utf-8", "replace"),
        duration=time.monotonic() - started,
    )


def kill_group(proc: asyncio.subprocess.Process) -> None:
    """Kill a child started with ``start_new_session=True`` and everything it spawned."""
    if proc.returncode is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass

"""Run task files inside VMs over SSH (asyncssh), streaming every line into the run history.

One :class:`SshSession` per target holds one asyncssh connection (with keepalive) reused for all of
its tasks; each task is one SSH channel. asyncssh is imported inside functions only: it costs ~0.2 s
of start-up and the dashboard and the CLI parser must not pay for it.

How a command runs on the target
--------------------------------
The command line sshd sees -- and the target's process list shows -- is always the fixed bootstrap
``exec sh -s``: the shell reads the real script from the channel's stdin (closed right after it, so
the task itself sees an empty stdin). The environment values of a task (tokens, passwords) never appear in any argv, neither on
this machine nor on the target. (asyncssh's ``env=`` would be cleaner but sshd drops every variable
not listed in its ``AcceptEnv``, so it cannot be relied on.) The script::

    printf '\\036devorch-pid=%s\\n' "$$"      # first stdout line: the pid of the task's process group
    export NAME='value' ...                    # shlex-quoted
    cd -- "$HOME"/'project' || exit 1          # the task's cwd, when it has one
    exec bash -c 'the run string'              # or: exec argv... (shlex.join), no shell

sshd starts every session in its own session/process group (setsid), and ``exec`` keeps that pid, so
a timeout or a cancel kills the whole group with ``kill -TERM -- -PID`` (then ``-KILL`` after a grace
period) through a second channel on the same connection: the remote process really stops.

Output is read in the order the channel delivers it, at most READ_SIZE bytes per event loop turn, cut
at the last newline of each read (a partial line is kept until its newline arrives; a line longer than
64 KiB is cut, never inside a secret value: the cut moves before it), and handed on as one block of lines to :class:`ActiveRun`, which redacts, writes and
flushes it to disk before any view sees it. Nothing on this path works line by line in Python: at
millions of lines a second that is what held the event loop (and the UI) before.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shlex
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devorch_tui.errors import DevorchError
from devorch_tui.services.known_hosts import KnownHosts
from devorch_tui.services.runs import ActiveRun, RunRecord, RunStore, utcnow
from devorch_tui.services.secrets import Redactor, is_secret_name
from devorch_tui.services.targets import Target, TargetError, key_path_problem, resolve_targets
from devorch_tui.services.tasks import ResolvedTask, TaskFile, TaskFileError, load_task_file, task_file_schema

if TYPE_CHECKING:
    from devorch_tui.config import Settings

__all__ = [
    "AgentError",
    "CommandCancelled",
    "CommandTimedOut",
    "ConnectionDropped",
    "HostKeyChanged",
    "SshConnectError",
    "SshSession",
    "Target",
    "TargetError",
    "TaskFile",
    "TaskFileError",
    "build_script",
    "load_task_file",
    "resolve_targets",
    "run_tasks",
    "task_file_schema",
]

log = logging.getLogger(__name__)

BOOTSTRAP = "exec sh -s"
PID_MARKER = b"\x1edevorch-pid="
MAX_LINE = 64 * 1024
READ_SIZE = 64 * 1024
"""Most bytes read from an SSH socket in one event loop turn. asyncio reads up to 256 KiB at once and
asyncssh decrypts and delivers all of it in that one callback: ~4 ms of work at full speed, 10-20 ms
on a busy machine, and a key press in the UI crosses ~10 message queues, each waiting for the turn in
progress. 64 KiB keeps a turn near 1 ms at no measurable cost in throughput (bench/stream.py)."""
KILL_GRACE = 3.0
EXTENDED_DATA_STDERR = 1
UPLOAD_CHUNK = 1 << 20
"""Bytes read from the local file per SFTP write in :meth:`SshSession.upload`."""

LinesCallback = Callable[[str, list[str]], None]
LineCallback = Callable[[str, str], None]
TextCallback = Callable[[str, str], None]
"""``(stream, text)``: complete lines joined by newlines (no trailing newline)."""


# ---------------------------------------------------------------------------------------------- errors


class AgentError(DevorchError):
    """A task could not run as asked."""


class SshConnectError(AgentError):
    """The SSH connection could not be made (refused, timed out, key refused, ...)."""


class HostKeyChanged(SshConnectError):
    """The target presented another host key than the one pinned on first use."""


class ConnectionDropped(AgentError):
    """The connection broke while a command was running. ``pid`` is the remote process group of the
    command when it was known (it may still run on the target: see :meth:`SshSession.stop_orphans`)."""

    def __init__(self, message: str, *, hint: str | None = None, pid: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.pid = pid


class CommandTimedOut(AgentError):
    def __init__(self, timeout: float) -> None:
        super().__init__(f"timed out after {timeout:g} s; the remote process was stopped")
        self.timeout = timeout


class CommandCancelled(AgentError):
    def __init__(self) -> None:
        super().__init__("cancelled; the remote process was stopped")


# --------------------------------------------------------------------------------------------- scripts


def remote_path(path: str) -> str:
    """A path for the remote shell: ``~`` and ``~/x`` expand to the home folder, the rest is quoted."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:]) if path[2:] else '"$HOME"'
    return shlex.quote(path)


def display_command(command: str | Sequence[str]) -> str:
    return command if isinstance(command, str) else shlex.join(command)


def build_script(
    command: str | Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    shell: str = "bash",
) -> str:
    """The script sent on stdin to the bootstrap (see the module docstring)."""
    lines = ["printf '\\036devorch-pid=%s\\n' \"$$\""]
    for name, value in (env or {}).items():
        lines.append(f"export {name}={shlex.quote(value)}")
    if cwd:
        lines.append(f"cd -- {remote_path(cwd)} || exit 1")
    if isinstance(command, str):
        lines.append(f"exec {shlex.quote(shell)} -c {shlex.quote(command)}")
    else:
        lines.append("exec " + shlex.join(command))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- the channel


class _Collector:
    """Receives one channel's data (asyncssh session protocol, duck-typed) and cuts it into lines.

    Complete lines are passed on as one block per read (``on_text(stream, "line\\nline")``), never
    split one by one: at millions of lines a second, per-line Python work here is what would hold
    the event loop. A partial last line waits for the rest of it, so no line (and no secret in it)
    is ever cut in two by the way the data arrived.
    """

    def __init__(self, on_text: TextCallback, secrets: Sequence[bytes] = ()) -> None:
        self._on_text = on_text
        self._secrets = tuple(secrets)
        """Secret values (UTF-8): a long line is never cut inside one (redaction works per line)."""
        self._buffers = {"stdout": bytearray(), "stderr": bytearray()}
        self._seen_pid = False
        loop = asyncio.get_running_loop()
        self.pid: asyncio.Future[int | None] = loop.create_future()
        self.closed: asyncio.Future[Exception | None] = loop.create_future()

    # asyncssh session protocol
    def connection_made(self, chan: Any) -> None:
        pass

    def session_started(self) -> None:
        pass

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    def xon_xoff_requested(self, client_can_do: bool) -> None:
        pass

    def exit_status_received(self, status: int) -> None:
        pass

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        pass

    def eof_received(self) -> bool:
        self._flush_all()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._flush_all()
        if not self.pid.done():
            self.pid.set_result(None)
        if not self.closed.done():
            self.closed.set_result(exc)

    def data_received(self, data: bytes, datatype: int | None) -> None:
        stream = "stderr" if datatype == EXTENDED_DATA_STDERR else "stdout"
        buf = self._buffers[stream]
        buf += data
        if stream == "stdout" and not self._seen_pid:
            if not self._take_pid(buf):
                return
        end = buf.rfind(b"\n")
        if end < 0:
            if len(buf) >= MAX_LINE:  # a very long line: pass it on in pieces rather than hold it
                pieces = []
                while len(buf) >= MAX_LINE:
                    cut = _safe_cut(buf, _utf8_cut(buf, MAX_LINE), self._secrets)
                    pieces.append(bytes(buf[:cut]).decode("utf-8", "replace"))
                    del buf[:cut]
                self._on_text(stream, "\n".join(pieces))
            return
        chunk = bytes(buf[:end])
        del buf[: end + 1]
        if len(chunk) > MAX_LINE:  # only after a long partial line (reads are <= 32 KiB): rare
            self._on_text(stream, "\n".join(_split_long(chunk, self._secrets)))
        else:
            self._on_text(stream, chunk.decode("utf-8", "replace"))

    def _take_pid(self, buf: bytearray) -> bool:
        end = buf.find(b"\n")
        if end < 0:
            if len(buf) > 64 or not PID_MARKER.startswith(bytes(buf[: len(PID_MARKER)])):
                self._seen_pid = True  # no marker: treat everything as output
                self._set_pid(None)
                return True
            return False
        first = bytes(buf[:end])
        self._seen_pid = True
        if first.startswith(PID_MARKER):
            del buf[: end + 1]
            try:
                self._set_pid(int(first[len(PID_MARKER) :]))
            except ValueError:
                self._set_pid(None)
        else:
            self._set_pid(None)
        return True

    def _set_pid(self, pid: int | None) -> None:
        if not self.pid.done():
            self.pid.set_result(pid)

    def _flush_all(self) -> None:
        for stream, buf in self._buffers.items():
            if buf:
                text = bytes(buf).decode("utf-8", "replace")
                buf.clear()
                if stream == "stdout" and not self._seen_pid:
                    self._seen_pid = True
                    if text.startswith(PID_MARKER.decode()):
                        continue
                self._on_text(stream, text)


def _utf8_cut(data: bytes | bytearray, limit: int) -> int:
    """Where to cut ``data`` at most ``limit`` bytes in without splitting a UTF-8 character."""
    if limit >= len(data):
        return len(data)
    cut = limit
    while cut > limit - 4 and cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if cut > 0 else limit


def _safe_cut(data: bytes | bytearray, cut: int, secrets: Sequence[bytes]) -> int:
    """``cut``, moved back to the start of a secret that would be split by it: one that spans it, or
    one whose beginning ends ``data`` (its rest has not arrived yet). Redaction sees one line at a
    time, so half a secret on each side of a cut would be written in clear."""
    best = cut
    end = len(data)
    for secret in secrets:
        size = len(secret)
        low = max(0, cut - size + 1)
        found = bytes(data[low : cut + size - 1]).find(secret)
        while found >= 0 and low + found < cut:
            start = low + found
            if start + size > cut:
                best = min(best, start)
                break
            found = bytes(data[low : cut + size - 1]).find(secret, found + 1)
        for start in range(max(low, end - size + 1), min(cut, end)):  # only when data ends near the cut
            if secret.startswith(bytes(data[start:])):
                best = min(best, start)
                break
    return best if best > 0 else cut


def _split_long(chunk: bytes, secrets: Sequence[bytes] = ()) -> list[str]:
    """Lines of ``chunk`` (no trailing newline), each cut into pieces of at most MAX_LINE bytes
    (never inside one of ``secrets``)."""
    out: list[str] = []
    for line in chunk.split(b"\n"):
        while len(line) > MAX_LINE:
            cut = _safe_cut(line, _utf8_cut(line, MAX_LINE), secrets)
            out.append(line[:cut].decode("utf-8", "replace"))
            line = line[cut:]
        out.append(line.decode("utf-8", "replace"))
    return out


# --------------------------------------------------------------------------------------------- session


@dataclass
class SshOptions:
    key_path: Path
    known_hosts: KnownHosts
    connect_timeout: float = 15.0
    keepalive_interval: float = 15.0
    keepalive_count_max: int = 3
    forward_agent: bool = False
    """Forward the local ssh-agent (SSH_AUTH_SOCK) so commands can use its keys (``git clone git@...``)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SshOptions:
        return cls(
            key_path=settings.ssh_private_key,
            known_hosts=KnownHosts(settings.paths.known_hosts),
            connect_timeout=settings.ssh_connect_timeout,
            keepalive_interval=settings.ssh_keepalive_interval,
        )


class SshSession:
    """One SSH connection to one target, pinned host key, reused for many commands.

    ``async with SshSession(target, options) as ssh: code = await ssh.run("make", 60, on_line)``.
    A dropped connection is reopened by the next :meth:`run`.
    """

    def __init__(self, target: Target, options: SshOptions) -> None:
        self.target = target
        self.options = options
        self._conn: Any = None
        self.pinned_now: str | None = None
        """The fingerprint pinned by the last connect (first use), else None."""
        self.fingerprint: str | None = None
        self.orphans: list[int] = []
        """Remote process groups left by a dropped connection: they may still run on the target
        (nothing tells a process that its SSH session went away). :meth:`stop_orphans` ends them."""

    @classmethod
    def from_settings(cls, target: Target, settings: Settings) -> SshSession:
        return cls(target, SshOptions.from_settings(settings))

    async def __aenter__(self) -> SshSession:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def connect(self) -> None:
        """Open the connection (no-op when open). Raises SshConnectError / HostKeyChanged."""
        if self.connected:
            return
        import asyncssh

        target, options = self.target, self.options
        # The key and the pinned host keys are files: read (and parsed) in a thread, not on the event
        # loop, which is drawing the run that starts at this very moment.
        client_key, pinned, trusted = await asyncio.to_thread(_read_credentials, options, target)
        seen: dict[str, Any] = {}
        agent_options: dict[str, Any] = {"agent_path": None}
        if options.forward_agent:
            if not os.environ.get("SSH_AUTH_SOCK"):
                raise SshConnectError(
                    "SSH agent forwarding was asked for but no ssh-agent is running here (SSH_AUTH_SOCK is not set)",
                    hint="start one and add your key (`eval $(ssh-agent)` then `ssh-add`), or use an https URL",
                )
            # the agent is offered to the target only; devorch-tui itself still logs in with its own key
            agent_options = {"agent_path": None, "agent_forwarding": os.environ["SSH_AUTH_SOCK"]}

        class _Client(asyncssh.SSHClient):
            def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
                seen["key"] = key
                return not trusted  # first use: accept (and pin below); pinned: only the pinned key

        where = f"{target.host}:{target.port}"
        try:
            conn = await asyncio.wait_for(
                asyncssh.connect(
                    target.host,
                    target.port,
                    username=target.user,
                    client_keys=[client_key],
                    known_hosts=(trusted, [], []),
                    client_factory=_Client,
                    config=None,
                    **agent_options,
                    preferred_auth="publickey",
                    password=None,
                    kbdint_auth=False,
                    keepalive_interval=options.keepalive_interval,
                    keepalive_count_max=options.keepalive_count_max,
                    connect_timeout=options.connect_timeout,
                    login_timeout=options.connect_timeout,
                ),
                options.connect_timeout + 5,
            )
        except (asyncssh.HostKeyNotVerifiable, asyncssh.KeyExchangeFailed) as exc:
            if trusted:
                raise self._host_key_changed(pinned, seen.get("key")) from None
            raise SshConnectError(f"SSH key exchange with {where} failed: {exc.reason}", hint="check that the target runs OpenSSH") from None
        except asyncssh.PermissionDenied:
            raise SshConnectError(
                f"{where} refused the key {options.key_path} for user {target.user!r}",
                hint=(
                    f"add {options.key_path}.pub to ~{target.user}/.ssh/authorized_keys on the target "
                    "(VMs made by devorch-tui get it from SSH_PUBLIC_KEY in .env), or set ssh_user"
                ),
            ) from None
        except asyncssh.DisconnectError as exc:
            raise SshConnectError(f"{where} closed the SSH connection: {exc.reason}", hint="check the SSH server on the target") from None
        except ConnectionRefusedError:
            raise SshConnectError(
                f"connection to {where} refused",
                hint=_unreachable_hint(target),
            ) from None
        except (asyncio.TimeoutError, TimeoutError):
            raise SshConnectError(
                f"no answer from {where} within {options.connect_timeout:g} s",
                hint=_unreachable_hint(target) + "; or raise ssh_connect_timeout",
            ) from None
        except OSError as exc:
            raise SshConnectError(f"cannot reach {where}: {exc.strerror or exc}", hint=_unreachable_hint(target)) from None
        self._conn = conn
        _bound_reads(conn)
        key = seen.get("key")
        if key is None:
            key = conn.get_server_host_key()
        self.fingerprint = key.get_fingerprint() if key is not None else None
        self.pinned_now = None
        if not trusted and key is not None:
            openssh = key.export_public_key("openssh").decode().strip()
            try:
                await asyncio.to_thread(_pin, options.known_hosts, target, openssh)  # writes and fsyncs a file
            except BaseException:  # cancelled meanwhile, or the file cannot be written: no half-made session
                await self._drop()
                raise
            self.pinned_now = self.fingerprint

    def _host_key_changed(self, pinned: list[Any], offered: Any) -> HostKeyChanged:
        target = self.target
        offered_text = f" (it now presents {offered.get_fingerprint()})" if offered is not None else ""
        return HostKeyChanged(
            f"the SSH host key of {target.name} ({target.host}:{target.port}) is not the one pinned on first use{offered_text}; "
            "the connection was refused",
            hint=(
                f"if the VM was recreated this is expected: run `devorch-tui forget-host {target.name}` and try again; "
                f"otherwise someone may be intercepting the connection (pinned keys: {self.options.known_hosts.path})"
            ),
        )

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            with suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)

    async def run(
        self,
        command: str | Sequence[str],
        timeout: float | None = None,
        on_line: LineCallback | None = None,
        *,
        on_lines: LinesCallback | None = None,
        on_text: TextCallback | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        shell: str = "bash",
        cancel: asyncio.Event | None = None,
        secrets: Sequence[str] = (),
    ) -> int:
        """Run one command; return its exit code (negative signal number if killed by a signal).

        Output goes to ``on_text(stream, text)`` per chunk (its complete lines joined by newlines:
        the fast path), ``on_lines(stream, lines)`` per chunk, or ``on_line(stream, line)`` per line
        (stream is "stdout" or "stderr"); a line longer than MAX_LINE is cut into pieces, never
        inside one of ``secrets``. Raises CommandTimedOut / CommandCancelled (the remote process
        group is killed first), ConnectionDropped (the group is added to :attr:`orphans`),
        SshConnectError.
        """
        if cancel is not None:
            await unless_cancelled(self.connect(), cancel)
        else:
            await self.connect()
        if on_text is None:
            if on_lines is not None:
                lines_callback = on_lines

                def on_text(stream: str, text: str) -> None:
                    lines_callback(stream, text.split("\n"))

            elif on_line is not None:
                line_callback = on_line

                def on_text(stream: str, text: str) -> None:
                    for line in text.split("\n"):
                        line_callback(stream, line)

            else:
                on_text = _discard

        script = build_script(command, cwd=cwd, env=env, shell=shell)
        conn = self._conn
        collector_box: list[_Collector] = []
        secret_bytes = [value.encode("utf-8", "replace") for value in secrets]

        def factory() -> _Collector:
            collector = _Collector(on_text, secret_bytes)
            collector_box.append(collector)
            return collector

        import asyncssh

        try:
            chan, _session = await conn.create_session(factory, BOOTSTRAP, encoding=None)
        except (asyncssh.Error, OSError, asyncssh.ChannelOpenError) as exc:
            await self._drop()
            raise ConnectionDropped(
                f"the connection to {self.target.name} broke: {_reason(exc)}",
                hint="check that the target is up; the next task reconnects",
            ) from None
        collector = collector_box[0]
        chan.write(script.encode())
        chan.write_eof()

        waiters: list[asyncio.Future[Any]] = [collector.closed]
        cancel_task = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
        if cancel_task is not None:
            waiters.append(cancel_task)
        try:
            done, _pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await self._stop(chan, collector)
            raise
        finally:
            if cancel_task is not None and not cancel_task.done():
                cancel_task.cancel()
        if collector.closed not in done:
            await self._stop(chan, collector)
            if cancel_task is not None and cancel_task in done:
                raise CommandCancelled()
            raise CommandTimedOut(timeout or 0)
        exc = collector.closed.result()
        code = chan.get_returncode()
        if code is None or exc is not None:
            pid = collector.pid.result() if collector.pid.done() else None
            await self._drop()
            if pid:
                self.orphans.append(pid)
            raise ConnectionDropped(
                f"the connection to {self.target.name} broke while the command ran: {_reason(exc)}",
                hint="check that the target is up (a VM may have been stopped or restarted)",
                pid=pid,
            )
        return code

    async def upload(self, local: Path, remote: str, *, mode: int = 0o600) -> str:
        """Copy the file ``local`` to ``remote`` on the target (relative: in the login's home) over
        SFTP on this connection, created with ``mode``; returns the remote file's absolute path."""
        await self.connect()
        import asyncssh

        try:
            async with self._conn.start_sftp_client() as sftp:
                async with await sftp.open(remote, "wb", asyncssh.SFTPAttrs(permissions=mode)) as out:
                    with local.open("rb") as source:
                        while chunk := source.read(UPLOAD_CHUNK):
                            await out.write(chunk)
                return await sftp.realpath(remote)
        except asyncssh.SFTPError as exc:
            raise AgentError(
                f"cannot write {remote} on {self.target.name}: {exc.reason}",
                hint="check that the target's disk has room and its sshd offers SFTP (`Subsystem sftp` in sshd_config)",
            ) from None
        except (asyncssh.Error, OSError) as exc:
            await self._drop()
            raise ConnectionDropped(
                f"copying {local.name} to {self.target.name} failed: {_reason(exc)}",
                hint="check that the target is up and its sshd offers SFTP (`Subsystem sftp` in sshd_config)",
            ) from None

    async def _stop(self, chan: Any, collector: _Collector) -> None:
        """Kill the remote process group of a channel (TERM, then KILL after a grace period)."""
        try:
            pid = await asyncio.wait_for(asyncio.shield(collector.pid), 2.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pid = None
        if pid and self.connected:
            await self._signal(pid, "TERM")
            try:
                await asyncio.wait_for(asyncio.shield(collector.closed), KILL_GRACE)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                await self._signal(pid, "KILL")
        elif pid:
            self.orphans.append(pid)  # no connection to send the signal through: end it after a reconnect
        chan.close()
        with suppress(Exception):
            await asyncio.wait_for(asyncio.shield(collector.closed), 2.0)

    async def _signal(self, pid: int, signal: str) -> None:
        command = f"kill -{signal} -- -{pid} 2>/dev/null || kill -{signal} {pid} 2>/dev/null; true"
        with suppress(Exception):
            await asyncio.wait_for(self._conn.run(command, check=False), 5.0)

    async def stop_orphans(self) -> list[tuple[int, str]]:
        """End the process groups a dropped connection left behind (:attr:`orphans`): reconnect, then
        TERM each group and KILL it if it is still there after KILL_GRACE seconds.

        Returns ``(pid, what)`` per group, ``what`` being "stopped", "killed" (it ignored TERM) or
        "gone" (it had ended by itself). Raises SshConnectError (the groups stay in ``orphans``).
        """
        if not self.orphans:
            return []
        await self.connect()
        results: list[tuple[int, str]] = []
        for pid in list(self.orphans):
            command = _STOP_GROUP.format(pid=int(pid), tries=max(1, int(KILL_GRACE / 0.1)))
            try:
                result = await asyncio.wait_for(self._conn.run(command, check=False), KILL_GRACE + 10)
            except Exception as exc:  # noqa: BLE001 - asyncssh errors, a timeout, a new drop
                await self._drop()
                raise SshConnectError(
                    f"could not stop process group {pid} on {self.target.name}: {_reason(exc)}",
                    hint=_unreachable_hint(self.target),
                ) from None
            words = str(result.stdout or "").split()
            results.append((pid, words[-1] if words else "unknown"))
            self.orphans.remove(pid)
        return results

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()


def _discard(stream: str, text: str) -> None:
    pass


def _read_credentials(options: SshOptions, target: Target) -> tuple[Any, list[Any], list[Any]]:
    """The client key, the pinned host keys of ``target`` and those of them asyncssh can use (run in
    a thread: file reads). Raises SshConnectError when the key is missing or unusable."""
    import asyncssh

    problem = key_path_problem(options.key_path)
    if problem:
        raise SshConnectError(problem, hint="create the dedicated key with `devorch-tui keygen`, or set ssh_key in settings")
    try:
        client_key = asyncssh.read_private_key(options.key_path)
    except asyncssh.KeyImportError as exc:
        raise SshConnectError(
            f"cannot use the SSH key {options.key_path}: {exc}",
            hint="use an unencrypted ed25519 key (`devorch-tui keygen` makes one) or set ssh_key in settings",
        ) from None
    except OSError as exc:
        raise SshConnectError(f"cannot read the SSH key {options.key_path}: {exc.strerror}", hint="check its permissions") from None
    pinned = options.known_hosts.lookup(target.host, target.port)
    trusted = []
    for entry in pinned:
        with suppress(asyncssh.KeyImportError):
            trusted.append(asyncssh.import_public_key(entry.openssh))
    return client_key, pinned, trusted


_pin_lock = threading.Lock()
"""Pins of several targets connecting at once go one at a time: each rewrites the known_hosts file."""


def _pin(known_hosts: KnownHosts, target: Target, openssh_key: str) -> None:
    with _pin_lock:
        known_hosts.pin(target.host, target.port, openssh_key, label=target.vm or "")


def _bound_reads(conn: Any) -> None:
    """Cap the bytes one socket read takes (READ_SIZE). Uses the selector transport's ``max_size``
    (asyncio's, reached through asyncssh's connection): without either, reads stay as they are."""
    transport = getattr(conn, "_transport", None)
    if isinstance(getattr(transport, "max_size", None), int) and transport.max_size > READ_SIZE:
        transport.max_size = READ_SIZE


_STOP_GROUP = (
    # alive: a member of group p that is not a zombie (a zombie waits for a parent that may be the
    # stuck sshd of the dropped connection: it counts as ended); without procps' ps, kill -0 decides
    "p={pid}; alive() {{ if ps -e -o pgid= -o stat= >/dev/null 2>&1; then "
    "ps -e -o pgid= -o stat= | awk -v p=$p '$1 == p && $2 !~ /^Z/ {{ f = 1 }} END {{ exit !f }}'; "
    "else kill -0 -- -$p 2>/dev/null; fi; }}; "
    "alive || {{ echo gone; exit 0; }}; kill -TERM -- -$p 2>/dev/null; "
    "i=0; while [ $i -lt {tries} ]; do alive || {{ echo stopped; exit 0; }}; sleep 0.1; i=$((i+1)); done; "
    "kill -KILL -- -$p 2>/dev/null; echo killed"
)
"""The remote command that ends a process group left by a dropped connection (TERM, then KILL)."""


def exit_message(code: int) -> str:
    """``exit status 3``, or ``killed by signal TERM`` for a negative code (asyncssh's exit signals)."""
    if code >= 0:
        return f"exit status {code}"
    try:
        return f"killed by signal {signal.Signals(-code).name.removeprefix('SIG')}"
    except ValueError:
        return f"killed by signal {-code}"


async def unless_cancelled(awaitable: Any, cancel: asyncio.Event) -> Any:
    """Await ``awaitable`` unless ``cancel`` is set first: then it is cancelled and CommandCancelled
    raised (a connection attempt must not hold up a cancel for its whole timeout)."""
    if cancel.is_set():
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise CommandCancelled()
    task = asyncio.ensure_future(awaitable)
    waiter = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with suppress(BaseException):
                await task
    if task.cancelled():
        raise CommandCancelled()
    return task.result()


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "the server closed the channel without an exit status"
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return reason


def _unreachable_hint(target: Target) -> str:
    if target.vm:
        return f"check that VM {target.vm} is Running (`devorch-tui vm list`) and its SSH server is up"
    return f"check that {target.host} is up and an SSH server listens on port {target.port}"


# ------------------------------------------------------------------------------------------- task runs


def env_file_secrets(path: Path) -> list[str]:
    """Values of the secret-looking variables (TOKEN, PASSWORD, SECRET, KEY) in a .env file.

    A .env that cannot be read or parsed gives what could be read (lenient parse): masking must
    never stop a run.
    """
    from devorch_tui.services.envfile import EnvFile

    try:
        values = EnvFile.load(path, strict=False).as_dict()
    except DevorchError:
        return []
    return [value for name, value in values.items() if is_secret_name(name) and value]


def build_redactor(task_file: TaskFile, env_file: Path | None) -> Redactor:
    """Masks the task file's secret env values and the workspace .env's secret values."""
    secrets: list[str] = []
    for env in [task_file.defaults.env, *(task.env for task in task_file.tasks)]:
        secrets.extend(value for name, value in env.items() if is_secret_name(name))
    if env_file is not None:
        secrets.extend(env_file_secrets(env_file))
    return Redactor(secrets)


async def _sleep_or_cancel(delay: float, cancel: asyncio.Event | None) -> bool:
    """Wait ``delay`` seconds; True when cancel was set meanwhile."""
    if cancel is None:
        await asyncio.sleep(delay)
        return False
    try:
        await asyncio.wait_for(cancel.wait(), delay)
        return True
    except asyncio.TimeoutError:
        return False


SessionFactory = Callable[[Target], SshSession]


class _TargetRunner:
    """Runs the tasks of one run on one target, reporting into the ActiveRun."""

    def __init__(self, active: ActiveRun, target: Target, tasks: list[ResolvedTask], session: SshSession, cancel: asyncio.Event) -> None:
        self.active = active
        self.target = target
        self.tasks = tasks
        self.session = session
        self.cancel = cancel
        self._unreachable: set[int] = set()
        """Orphaned process groups a reconnect already failed to reach (not tried again at the end)."""

    def info(self, step: str, text: str) -> None:
        self.active.info(self.target.name, step, text)

    def problem(self, step: str, exc: AgentError, prefix: str = "error: ") -> None:
        """An error's message and, on its own line, how to fix it (the task's log shows both)."""
        self.info(step, f"{prefix}{exc.message}")
        if exc.hint:
            self.info(step, f"fix: {exc.hint}")

    async def run(self) -> None:
        name = self.target.name
        first = self.tasks[0].name
        if self.cancel.is_set():
            self.active.target_done(name, "cancelled", "cancelled before it started")
            return
        self.info(first, f"connecting to {self.target.address}")
        try:
            await unless_cancelled(self.session.connect(), self.cancel)
        except CommandCancelled:
            self.info(first, "cancelled while connecting")
            self.active.step(name, first, "cancelled", message="cancelled while connecting")
            self.active.target_done(name, "cancelled", "cancelled while connecting")
            return
        except AgentError as exc:
            self.problem(first, exc)
            self.active.step(name, first, "failed", message=exc.message)
            self.active.target_done(name, "failed", exc.message)
            return
        if self.session.pinned_now:
            self.info(first, f"pinned the host key {self.session.pinned_now} (first connection)")
        step = first
        try:
            for task in self.tasks:
                step = task.name
                status = await self.run_task(task)
                if status == "cancelled" or (status == "failed" and not task.continue_on_error):
                    break
        finally:
            if self.session.orphans:
                await self.stop_orphans(step, final=True)
            await self.session.close()
        self.active.target_done(name, "cancelled" if self.cancel.is_set() else None)

    async def stop_orphans(self, step: str, *, final: bool = False) -> None:
        """End what a dropped connection left running on the target, and say so in the log.

        Before a retry or the next task (``final`` False) every orphan is tried; at the end of the
        target only those no reconnect failed to reach yet, then whatever is left is named."""
        session = self.session
        if not final or any(pid not in self._unreachable for pid in session.orphans):
            try:
                results = await session.stop_orphans()
            except AgentError as exc:
                self._unreachable.update(session.orphans)
                self.problem(step, exc, prefix="could not stop what the dropped connection left running: ")
            else:
                for pid, what in results:
                    self.info(step, _ORPHAN_NOTES.get(what, "process group {pid} left by the dropped connection: {what}").format(pid=pid, what=what))
        if final and session.orphans:
            groups = ", ".join(str(pid) for pid in session.orphans)
            command = "kill -TERM -- " + " ".join(f"-{pid}" for pid in session.orphans)
            self.info(step, f"process group {groups} may still be running on {self.target.name}: stop it there with `{command}`")
            session.orphans.clear()

    async def run_task(self, task: ResolvedTask) -> str:
        name, step = self.target.name, task.name
        attempts = task.retries + 1
        shown = display_command(task.run)
        secrets = self.active.redactor.values

        def on_text(stream: str, text: str) -> None:
            self.active.block(name, step, stream, text)  # type: ignore[arg-type]

        first_started, first_clock = utcnow(), time.monotonic()  # the step's duration spans every attempt

        def total() -> float:
            return time.monotonic() - first_clock

        for attempt in range(1, attempts + 1):
            if self.cancel.is_set():
                self.active.step(name, step, "cancelled", message="cancelled", attempts=attempt - 1)
                return "cancelled"
            if self.session.orphans:
                await self.stop_orphans(step)
            clock = time.monotonic()
            self.active.step(name, step, "running", started=first_started, attempts=attempt)
            suffix = f"   (attempt {attempt} of {attempts})" if attempt > 1 else ""
            self.info(step, f"$ {shown}{suffix}")
            code: int | None = None
            try:
                code = await self.session.run(
                    task.run,
                    task.timeout,
                    on_text=on_text,
                    cwd=task.cwd,
                    env=task.env,
                    shell=task.shell,
                    cancel=self.cancel,
                    secrets=secrets,
                )
            except CommandCancelled as exc:
                self.info(step, exc.message)
                self.active.step(name, step, "cancelled", started=first_started, duration=total(), message=exc.message, attempts=attempt)
                return "cancelled"
            except asyncio.CancelledError:  # ctrl+c in the CLI, the app quitting: the remote process was stopped
                self.info(step, "cancelled; the remote process was stopped")
                self.active.step(name, step, "cancelled", started=first_started, duration=total(), message="cancelled", attempts=attempt)
                raise
            except AgentError as exc:  # timed out, connection dropped, cannot reconnect
                message = exc.message
                hint = exc.hint
            else:
                message = None if code == 0 else exit_message(code)
                hint = None
            took = time.monotonic() - clock
            overall = f" ({total():.2f} s over {attempt} attempts)" if attempt > 1 else ""
            if code == 0:
                self.info(step, f"ok in {took:.2f} s{overall}")
                self.active.step(name, step, "ok", exit_code=0, started=first_started, duration=total(), attempts=attempt)
                return "ok"
            self.info(step, f"failed after {took:.2f} s: {message}")
            if hint:
                self.info(step, f"fix: {hint}")
            if attempt < attempts:
                self.active.step(name, step, "running", started=first_started, message=message, attempts=attempt)
                if task.retry_delay:
                    self.info(step, f"retrying in {task.retry_delay:g} s")
                if await _sleep_or_cancel(task.retry_delay, self.cancel):
                    self.active.step(
                        name, step, "cancelled", exit_code=code, started=first_started, duration=total(), message="cancelled", attempts=attempt
                    )
                    return "cancelled"
                continue
            self.active.step(
                name, step, "failed", exit_code=code, started=first_started, duration=total(), message=message, attempts=attempt
            )
            if task.continue_on_error:
                self.info(step, "continue_on_error: going on with the next task")
            return "failed"
        raise AssertionError("unreachable")


_ORPHAN_NOTES = {
    "stopped": "stopped process group {pid}, left running on the target by the dropped connection",
    "killed": "killed process group {pid}, left running by the dropped connection (it ignored TERM)",
    "gone": "process group {pid} of the dropped connection had already ended",
}


async def run_tasks(
    task_file: TaskFile,
    targets: Sequence[Target],
    store: RunStore,
    settings: Settings,
    cancel: asyncio.Event | None = None,
    *,
    source: str | Path | None = None,
    session_factory: SessionFactory | None = None,
    on_started: Callable[[ActiveRun], None] | None = None,
) -> RunRecord:
    """Run every task of ``task_file`` on every target; return the finished record.

    Targets run at the same time, at most ``settings.max_parallel_targets`` at once; tasks run in
    order on each. A failed task stops its target's remaining tasks unless ``continue_on_error``;
    the run is "failed" when any task failed, "cancelled" when ``cancel`` was set. ``on_started``
    gets the ActiveRun as soon as it exists (the UI uses its id to follow the run).
    """
    if not targets:
        raise TargetError("no target given", hint="name a VM or an ssh://user@host:port")
    cancel = cancel or asyncio.Event()
    tasks = task_file.resolved_tasks()
    redactor = build_redactor(task_file, settings.workspace_paths.env_file)
    make_session = session_factory or functools.partial(SshSession.from_settings, settings=settings)
    meta = {"task_file": str(source)} if source else {}
    active = store.open_run(
        "tasks",
        task_file.name,
        [target.name for target in targets],
        steps=[task.name for task in tasks],
        redactor=redactor,
        meta=meta,
        addresses={target.name: target.address for target in targets},
    )
    if on_started is not None:
        on_started(active)
    limit = asyncio.Semaphore(settings.max_parallel_targets)

    async def one(target: Target) -> None:
        async with limit:
            runner = _TargetRunner(active, target, tasks, make_session(target), cancel)
            try:
                await runner.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not lose the other targets' results
                log.exception("target %s failed unexpectedly", target.name)
                active.info(target.name, tasks[0].name, f"internal error: {exc!r}")
                active.target_done(target.name, "failed", f"internal error: {exc!r}")

    try:
        await asyncio.gather(*(one(target) for target in targets))
    except asyncio.CancelledError:
        cancel.set()
        active.finish("cancelled", "cancelled")
        raise
    if cancel.is_set():
        return active.finish("cancelled", "cancelled")
    return active.finish()

"""The asyncssh executor against a real OpenSSH sshd on a loopback address."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from devorch_tui.config import Settings, load_settings
from devorch_tui.services.agent import (
    READ_SIZE,
    CommandCancelled,
    CommandTimedOut,
    ConnectionDropped,
    HostKeyChanged,
    SshConnectError,
    SshOptions,
    SshSession,
    run_tasks,
)
from devorch_tui.services.known_hosts import KnownHosts
from devorch_tui.services.runs import RunStore, StepEvent
from devorch_tui.services.secrets import MASK
from devorch_tui.services.targets import Target
from devorch_tui.services.tasks import parse_task_file
from tests.fakes.sshd import SshServer

pytestmark = pytest.mark.ssh


def target_of(server: SshServer, name: str | None = None) -> Target:
    return Target(name=name or server.url, host=server.host, port=server.port, user=server.user)


def settings_for(server: SshServer, **overrides) -> Settings:
    return load_settings(ssh_key=server.client_key, ssh_user=server.user, **overrides)


def session_for(server: SshServer, settings: Settings) -> SshSession:
    return SshSession(target_of(server), SshOptions.from_settings(settings))


def remote(server: SshServer, command: str) -> str:
    """Run a check on the server with the OpenSSH client (independent of the code under test)."""
    return subprocess.run(server.ssh_argv(command), capture_output=True, text=True, timeout=30).stdout


def tasks(*items: dict, **defaults) -> object:
    return parse_task_file(__import__("json").dumps({"name": "test tasks", "defaults": defaults, "tasks": list(items)}))


class Collected:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, stream: str, line: str) -> None:
        self.lines.append((stream, line))


# ------------------------------------------------------------------------------------- the session


async def test_stdout_and_stderr_keep_their_order(sshd: SshServer, settings: Settings) -> None:
    settings = settings_for(sshd)
    out = Collected()
    script = "echo o1; sleep 0.2; echo e1 >&2; sleep 0.2; echo o2; sleep 0.2; echo e2 >&2; sleep 0.2; echo o3"
    async with session_for(sshd, settings) as ssh:
        assert await ssh.run(script, 30, out) == 0
        assert out.lines == [("stdout", "o1"), ("stderr", "e1"), ("stdout", "o2"), ("stderr", "e2"), ("stdout", "o3")]
        many = Collected()
        assert await ssh.run("for i in $(seq 1 2000); do echo out$i; echo err$i >&2; done", 30, many) == 0
    assert [line for stream, line in many.lines if stream == "stdout"] == [f"out{i}" for i in range(1, 2001)]
    assert [line for stream, line in many.lines if stream == "stderr"] == [f"err{i}" for i in range(1, 2001)]


async def test_exit_codes_cwd_argv_and_empty_stdin(sshd: SshServer, tmp_path: Path) -> None:
    settings = settings_for(sshd)
    folder = tmp_path / "a folder"
    folder.mkdir()
    async with session_for(sshd, settings) as ssh:
        assert await ssh.run("exit 0", 10) == 0
        assert await ssh.run("exit 42", 10) == 42
        assert await ssh.run("kill -9 $$", 10) == -9
        assert await ssh.run(["no-such-program-xyz"], 10) == 127
        out = Collected()
        assert await ssh.run(["printf", "%s|%s\n", "a b", "$HOME;`id`"], 10, out, cwd=str(folder)) == 0
        assert await ssh.run("pwd", 10, out, cwd=str(folder)) == 0
        assert await ssh.run("pwd", 10, out, cwd="~") == 0
        assert await ssh.run("cat; echo stdin-was-empty", 10, out) == 0  # never hangs on, or eats, stdin
    home = remote(sshd, "echo $HOME").strip()
    assert out.lines == [("stdout", "a b|$HOME;`id`"), ("stdout", str(folder)), ("stdout", home), ("stdout", "stdin-was-empty")]


async def test_long_lines_are_cut_not_lost_and_bytes_decoded(sshd: SshServer) -> None:
    settings = settings_for(sshd)
    out = Collected()
    async with session_for(sshd, settings) as ssh:
        assert await ssh.run("head -c 200000 /dev/zero | tr '\\0' x; echo; printf 'caf\\303\\251 \\377 end'", 10, out) == 0
    texts = [line for _, line in out.lines]
    assert "".join(texts[:-1]) == "x" * 200000 and all(len(t) <= 64 * 1024 for t in texts)
    assert texts[-1] == "caf\u00e9 \ufffd end"  # the last line has no newline; invalid UTF-8 is replaced


async def test_env_values_reach_the_task_but_no_process_list(sshd: SshServer) -> None:
    settings = settings_for(sshd)
    secret = "s3cr3t-value-4711"
    out = Collected()
    async with session_for(sshd, settings) as ssh:
        running = asyncio.create_task(
            ssh.run('echo "token is $API_TOKEN"; exec sleep 4711', 30, out, env={"API_TOKEN": secret, "PLAIN": "x y"})
        )
        while not out.lines:
            await asyncio.sleep(0.02)
        listing = remote(sshd, "ps -eo args")
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert out.lines == [("stdout", f"token is {secret}")]
    assert "sleep 4711" in listing and secret not in listing
    assert remote(sshd, "pgrep -f 'sleep 471[1]' || echo gone").strip() == "gone"  # cancelling stopped it
    assert sshd.processes("sleep 4711") == []


async def test_timeout_kills_the_remote_process_group(sshd: SshServer) -> None:
    settings = settings_for(sshd)
    async with session_for(sshd, settings) as ssh:
        with pytest.raises(CommandTimedOut, match="timed out after 1 s"):
            await ssh.run("sleep 3601 & sleep 3602; echo never", 1)
        # the connection stays usable after a timeout
        assert await ssh.run("true", 10) == 0
    assert remote(sshd, "pgrep -f 'sleep 360[12]' || echo gone").strip() == "gone"


async def test_cancel_event_stops_the_remote_process(sshd: SshServer) -> None:
    settings = settings_for(sshd)
    cancel = asyncio.Event()

    def on_line(stream: str, line: str) -> None:
        cancel.set()

    async with session_for(sshd, settings) as ssh:
        with pytest.raises(CommandCancelled):
            await ssh.run("echo started; trap '' TERM; sleep 3603", 30, on_line, cancel=cancel)
    assert remote(sshd, "pgrep -f 'sleep 360[3]' || echo gone").strip() == "gone"  # KILL after TERM was ignored


async def test_connection_refused(sshd: SshServer) -> None:
    settings = settings_for(sshd)
    sshd.stop()
    with pytest.raises(SshConnectError, match=f"connection to {sshd.host}:{sshd.port} refused") as info:
        await session_for(sshd, settings).connect()
    assert "SSH server listens" in (info.value.hint or "")


async def test_auth_failure_names_the_key(sshd: SshServer, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    settings = load_settings(ssh_key=other, ssh_user=sshd.user)
    with pytest.raises(SshConnectError, match="refused the key") as info:
        await session_for(sshd, settings).connect()
    assert str(other) in info.value.message and "authorized_keys" in (info.value.hint or "")


async def test_missing_key_says_how_to_make_one(sshd: SshServer, tmp_path: Path) -> None:
    settings = load_settings(ssh_key=tmp_path / "absent", ssh_user=sshd.user)
    with pytest.raises(SshConnectError, match="no SSH private key") as info:
        await session_for(sshd, settings).connect()
    assert "devorch-tui keygen" in (info.value.hint or "")


async def test_host_key_pinned_on_first_use_and_a_change_refused(sshd: SshServer) -> None:
    settings = settings_for(sshd)
    known = KnownHosts(settings.paths.known_hosts)
    async with session_for(sshd, settings) as ssh:
        assert ssh.pinned_now is not None
    assert [entry.openssh for entry in known.lookup(sshd.host, sshd.port)] == [sshd.host_key_pub]
    assert settings.paths.known_hosts.stat().st_mode & 0o777 == 0o600
    async with session_for(sshd, settings) as ssh:
        assert ssh.pinned_now is None  # second connection: verified, nothing new pinned

    sshd.new_host_key()
    sshd.restart()
    with pytest.raises(HostKeyChanged) as info:
        await session_for(sshd, settings).connect()
    assert f"devorch-tui forget-host {sshd.url}" in (info.value.hint or "")
    assert [entry.openssh for entry in known.lookup(sshd.host, sshd.port)] != [sshd.host_key_pub]  # still the old key

    assert len(known.forget(sshd.host, sshd.port)) == 1
    async with session_for(sshd, settings) as ssh:
        assert await ssh.run("true", 10) == 0
    assert [entry.openssh for entry in known.lookup(sshd.host, sshd.port)] == [sshd.host_key_pub]


async def test_server_killed_mid_stream_fails_with_the_reason(sshd: SshServer) -> None:
    settings = settings_for(sshd)
    seen: list[str] = []

    def on_line(stream: str, line: str) -> None:
        seen.append(line)
        if len(seen) == 100:
            sshd.kill()

    async with session_for(sshd, settings) as ssh:
        with pytest.raises(ConnectionDropped, match="broke") as info:
            await ssh.run("yes streaming", 60, on_line)
        assert not ssh.connected
    assert len(seen) >= 100 and "check that the target is up" in (info.value.hint or "")


# ----------------------------------------------------------------------------------------- task runs


async def test_run_tasks_retries_until_success(sshd: SshServer, tmp_path: Path) -> None:
    settings = settings_for(sshd)
    marker = tmp_path / "attempted"
    store = RunStore(settings.paths.runs_dir)
    task_file = tasks(
        {"name": "flaky", "run": f"test -e '{marker}' || {{ touch '{marker}'; echo first try fails >&2; exit 3; }}", "retries": 2},
        {"name": "always fails", "run": "exit 4", "retries": 1},
    )
    record = await run_tasks(task_file, [target_of(sshd)], store, settings)
    flaky, fails = record.targets[0].steps
    assert (flaky.status, flaky.exit_code, flaky.attempts) == ("ok", 0, 2)
    assert (fails.status, fails.exit_code, fails.attempts, fails.message) == ("failed", 4, 2, "exit status 4")
    assert record.status == "failed"
    log = [event.text for event in store.read_lines(record.id, sshd.url)]
    assert "first try fails" in log and "$ exit 4   (attempt 2 of 2)" in log


async def test_timeout_in_a_task_fails_it_and_stops_the_target(sshd: SshServer) -> None:
    settings = settings_for(sshd)
    store = RunStore(settings.paths.runs_dir)
    task_file = tasks({"name": "slow", "run": "sleep 3604", "timeout": 1}, {"name": "next", "run": "true"})
    record = await run_tasks(task_file, [target_of(sshd)], store, settings)
    slow, after = record.targets[0].steps
    assert slow.status == "failed" and slow.exit_code is None and "timed out after 1 s" in (slow.message or "")
    assert after.status == "skipped"
    assert remote(sshd, "pgrep -f 'sleep 360[4]' || echo gone").strip() == "gone"


async def test_dropped_connection_stops_or_continues_per_policy(sshd: SshServer) -> None:
    settings = settings_for(sshd, ssh_connect_timeout=3)
    store = RunStore(settings.paths.runs_dir)

    def kill_on_first_line(event) -> None:  # noqa: ANN001
        if getattr(event, "text", None) == "tick":
            sshd.kill()

    store.subscribe(kill_on_first_line)
    for continue_on_error, next_status in ((False, "skipped"), (True, "failed")):
        sshd.start()
        task_file = tasks(
            {"name": "stream", "run": "while true; do echo tick; sleep 0.05; done", "continue_on_error": continue_on_error},
            {"name": "next", "run": "echo next"},
        )
        record = await run_tasks(task_file, [target_of(sshd)], store, settings)
        stream, after = record.targets[0].steps
        assert stream.status == "failed" and "broke while the command ran" in (stream.message or "")
        assert after.status == next_status
        if continue_on_error:  # the next task tried to reconnect to the dead server
            assert "refused" in (after.message or "")


async def test_100000_lines_arrive_intact_in_the_log_file(sshd: SshServer) -> None:
    settings = settings_for(sshd)
    store = RunStore(settings.paths.runs_dir)
    record = await run_tasks(tasks({"name": "count", "run": "seq 1 100000"}), [target_of(sshd)], store, settings)
    assert record.status == "ok"
    lines = [event.text for event in store.read_lines(record.id, sshd.url) if event.stream == "stdout"]
    assert lines == [str(i) for i in range(1, 100001)]


async def test_secrets_are_masked_in_logs(sshd: SshServer, workspace: Path) -> None:
    (workspace / ".env").write_text("GIT_NAME=Ada\nGITHUB_TOKEN='ghp_workspace_secret'\n")
    settings = settings_for(sshd)
    store = RunStore(settings.paths.runs_dir)
    shown: list[str] = []
    store.subscribe(lambda event: shown.append(getattr(event, "text", "")))
    task_file = tasks(
        {"name": "leak", "run": "echo $DB_PASSWORD ghp_workspace_secret Ada", "env": {"DB_PASSWORD": "pa55word-x"}},
        {"name": "key", "run": ["cat", str(sshd.client_key)]},
    )
    record = await run_tasks(task_file, [target_of(sshd)], store, settings)
    assert record.status == "ok"
    log_text = (store.run_dir(record.id) / record.targets[0].log_file).read_text()
    for secret in ("pa55word-x", "ghp_workspace_secret", "PRIVATE KEY"):
        assert secret not in log_text
        assert not any(secret in text for text in shown)
    assert f"{MASK} {MASK} Ada" in log_text


async def test_a_secret_split_across_reads_is_still_masked(sshd: SshServer) -> None:
    """The remote flushes half a line, sleeps, then sends the rest: the two halves arrive in separate
    reads. A partial line waits for its newline, so the secret in it is redacted whole; so is a key
    block whose lines straddle reads."""
    settings = settings_for(sshd)
    store = RunStore(settings.paths.runs_dir)
    shown: list[str] = []
    store.subscribe(lambda event: shown.append(getattr(event, "text", "")))
    script = (
        "printf 'x pa55'; sleep 0.3; printf 'word-x y\\n'; "
        "printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\\nb3Bl'; sleep 0.3; "
        "printf 'bnNz\\n-----END OPENSSH PRIVATE KEY-----\\nafter pa55word-x\\n'"
    )
    record = await run_tasks(
        tasks({"name": "split", "run": script, "env": {"DB_PASSWORD": "pa55word-x"}}), [target_of(sshd)], store, settings
    )
    assert record.status == "ok"
    lines = [event.text for event in store.read_lines(record.id, sshd.url) if event.stream == "stdout"]
    assert lines == [f"x {MASK} y", MASK, MASK, MASK, f"after {MASK}"]
    assert not any(part in text for text in shown for part in ("pa55", "b3Bl", "bnNz"))


async def test_socket_reads_are_bounded(sshd: SshServer) -> None:
    """One socket read is at most READ_SIZE bytes (a long read holds the event loop and the UI)."""
    async with session_for(sshd, settings_for(sshd)) as ssh:
        assert ssh._conn._transport.max_size == READ_SIZE


async def test_fan_out_keeps_output_per_target_and_bounds_concurrency(sshd_factory) -> None:  # noqa: ANN001
    servers = [sshd_factory() for _ in range(3)]
    settings = load_settings(ssh_key=servers[0].client_key, ssh_user=servers[0].user, max_parallel_targets=2)
    for server in servers[1:]:  # one client key for all three servers
        server.authorized_keys.write_text(servers[0].authorized_keys.read_text())
    store = RunStore(settings.paths.runs_dir)
    running: set[str] = set()
    most = 0

    def track(event) -> None:  # noqa: ANN001
        nonlocal most
        if isinstance(event, StepEvent):
            if event.status == "running":
                running.add(event.target)
            else:
                running.discard(event.target)
            most = max(most, len(running))

    store.subscribe(track)
    task_file = tasks({"name": "who", "run": "echo I am $SSH_CONNECTION; sleep 0.5"})
    record = await run_tasks(task_file, [target_of(s) for s in servers], store, settings)
    assert record.status == "ok" and most == 2
    for server in servers:
        lines = [e.text for e in store.read_lines(record.id, server.url) if e.stream == "stdout"]
        assert len(lines) == 1 and f" {server.host} {server.port}" in lines[0]


async def test_cancel_a_run(sshd: SshServer) -> None:
    settings = settings_for(sshd)
    store = RunStore(settings.paths.runs_dir)
    cancel = asyncio.Event()
    store.subscribe(lambda event: cancel.set() if getattr(event, "text", None) == "begun" else None)
    task_file = tasks({"name": "long", "run": "echo begun; sleep 3605"}, {"name": "never", "run": "true"})
    record = await run_tasks(task_file, [target_of(sshd)], store, settings, cancel)
    assert record.status == "cancelled"
    assert [s.status for s in record.targets[0].steps] == ["cancelled", "skipped"]
    assert remote(sshd, "pgrep -f 'sleep 360[5]' || echo gone").strip() == "gone"


async def test_unreachable_target_fails_without_stopping_others(sshd_factory) -> None:  # noqa: ANN001
    good = sshd_factory()
    dead = sshd_factory()
    dead.authorized_keys.write_text(good.authorized_keys.read_text())
    dead.stop()
    settings = load_settings(ssh_key=good.client_key, ssh_user=good.user)
    store = RunStore(settings.paths.runs_dir)
    record = await run_tasks(tasks({"name": "hi", "run": "echo hi"}), [target_of(good), target_of(dead)], store, settings)
    assert record.status == "failed"
    assert record.target(good.url).status == "ok"
    assert record.target(dead.url).status == "failed" and "refused" in (record.target(dead.url).message or "")


async def test_agent_forwarding_offers_the_local_agent_only_when_asked(sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "agent_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "in-the-agent", "-f", str(extra)], check=True)
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):  # the socket appears once the agent is listening
            if socket_path.exists():
                break
            await asyncio.sleep(0.01)
        env = {**__import__("os").environ, "SSH_AUTH_SOCK": str(socket_path)}
        subprocess.run(["ssh-add", "-q", str(extra)], check=True, env=env, stderr=subprocess.DEVNULL)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        settings = settings_for(sshd)
        plain, forwarded = Collected(), Collected()
        async with session_for(sshd, settings) as ssh:
            await ssh.run("ssh-add -l || true", 10, plain)
        options = SshOptions.from_settings(settings)
        options.forward_agent = True
        async with SshSession(target_of(sshd), options) as ssh:
            assert await ssh.run("ssh-add -l", 10, forwarded) == 0
    finally:
        agent.terminate()
        agent.wait(5)
    assert not any("in-the-agent" in line for _, line in plain.lines)
    assert any("in-the-agent" in line for _, line in forwarded.lines)


# -------------------------------------------------------------- dropped connections, long lines, exits


def log_of(store: RunStore, record, target: str) -> list[str]:  # noqa: ANN001
    return [event.text for event in store.read_lines(record.id, target)]


async def test_a_dropped_connection_ends_the_old_process_before_the_retry(sshd: SshServer, tmp_path: Path) -> None:
    """The connection goes silent (its sshd frozen, keepalive 1 s) while the task runs: the retry
    reconnects, stops the process group the old connection left running, and only then runs the
    task again, which sees no other copy of itself."""
    settings = settings_for(sshd, ssh_keepalive_interval=1, ssh_connect_timeout=5)
    store = RunStore(settings.paths.runs_dir)
    marker = tmp_path / "first-attempt"
    frozen: list[int] = []

    def freeze_once_started(event) -> None:  # noqa: ANN001
        if getattr(event, "text", None) == "started" and not frozen:
            frozen.extend(sshd.freeze_connections())

    store.subscribe(freeze_once_started)
    # ${S}3: the command lines of the shells do not contain "sleep 4713", only the sleep itself does
    run = (
        f"S=471; if [ -e '{marker}' ]; then echo copies: $(pgrep -f \"sleep ${{S}}3\" | wc -l); exit 0; fi; "
        f"touch '{marker}'; echo started; sleep ${{S}}3"
    )
    record = await run_tasks(tasks({"name": "long", "run": run, "retries": 1}), [target_of(sshd)], store, settings)
    assert frozen, "the connection was never frozen"
    (step,) = record.targets[0].steps
    assert (step.status, step.attempts) == ("ok", 2)
    log = log_of(store, record, sshd.url)
    assert "copies: 0" in log  # the retry ran alone
    assert any("broke while the command ran" in line for line in log)
    assert "fix: check that the target is up (a VM may have been stopped or restarted)" in log
    assert any(line.startswith("stopped process group ") and "dropped connection" in line for line in log), log
    assert sshd.processes("sleep 4713") == []
    assert remote(sshd, "pgrep -f 'sleep 471[3]' || echo gone").strip() == "gone"


async def test_a_dropped_connection_that_cannot_be_reached_again_says_so(sshd: SshServer) -> None:
    settings = settings_for(sshd, ssh_keepalive_interval=1, ssh_connect_timeout=2)
    store = RunStore(settings.paths.runs_dir)
    frozen: list[int] = []

    def freeze_all_once_started(event) -> None:  # noqa: ANN001
        if getattr(event, "text", None) == "started" and not frozen:
            frozen.extend(sshd.freeze_connections())
            os.kill(sshd.process.pid, signal.SIGSTOP)  # the listener too: no new connection gets an answer

    store.subscribe(freeze_all_once_started)
    try:
        record = await run_tasks(
            tasks({"name": "long", "run": "S=471; echo started; sleep ${S}4", "retries": 1}), [target_of(sshd)], store, settings
        )
        assert sshd.processes("sleep 4714") != []  # really still running: nothing could reach it
    finally:
        os.kill(sshd.process.pid, signal.SIGCONT)
    (step,) = record.targets[0].steps
    assert step.status == "failed" and "no answer from" in (step.message or "")
    log = log_of(store, record, sshd.url)
    assert any(line.startswith("could not stop what the dropped connection left running: ") for line in log)
    assert any(line.startswith("process group ") and "may still be running" in line for line in log)


async def test_a_secret_across_the_long_line_cut_is_still_masked(sshd: SshServer) -> None:
    """A line longer than 64 KiB is cut into pieces; the cut moves before a secret value that would
    straddle it, in a complete line and in a partial one whose rest arrives later."""
    settings = settings_for(sshd)
    store = RunStore(settings.paths.runs_dir)
    shown: list[str] = []  # what a view is given of the output
    store.subscribe(lambda event: shown.append(event.text) if getattr(event, "stream", None) == "stdout" else None)
    script = (
        "head -c 65530 /dev/zero | tr '\\0' a; printf 'pa55word-x tail\\n'; "  # the cut at 65536 falls inside
        "head -c 65534 /dev/zero | tr '\\0' b; printf 'pa'; sleep 0.5; printf '55word-x end\\n'"  # half of it arrives first
    )
    record = await run_tasks(
        tasks({"name": "long", "run": script, "env": {"DB_PASSWORD": "pa55word-x"}}), [target_of(sshd)], store, settings
    )
    assert record.status == "ok"
    lines = [event.text for event in store.read_lines(record.id, sshd.url) if event.stream == "stdout"]
    text = "\n".join(lines)
    assert "pa55" not in text and "word-x" not in text
    assert "".join(line for line in lines if line.startswith("a") or line.startswith(MASK + " tail")) == "a" * 65530 + MASK + " tail"
    assert "".join(line for line in lines if line.startswith("b") or line.startswith(MASK + " end")) == "b" * 65534 + MASK + " end"
    assert all(len(line.encode()) <= 64 * 1024 for line in lines)
    assert shown and not any("pa55" in piece or "word-x" in piece for piece in shown)


async def test_a_task_killed_by_a_signal_says_which(sshd: SshServer) -> None:
    settings = settings_for(sshd)
    store = RunStore(settings.paths.runs_dir)
    record = await run_tasks(tasks({"name": "killed", "run": "kill -TERM $$"}), [target_of(sshd)], store, settings)
    (step,) = record.targets[0].steps
    assert (step.status, step.exit_code, step.message) == ("failed", -15, "killed by signal TERM")


async def test_a_retried_task_records_its_whole_duration(sshd: SshServer, tmp_path: Path) -> None:
    settings = settings_for(sshd)
    store = RunStore(settings.paths.runs_dir)
    count = tmp_path / "count"
    run = f"echo x >> '{count}'; [ $(wc -l < '{count}') -ge 3 ]"
    record = await run_tasks(tasks({"name": "third time", "run": run, "retries": 3, "retry_delay": 0.4}), [target_of(sshd)], store, settings)
    (step,) = record.targets[0].steps
    assert (step.status, step.attempts) == ("ok", 3)
    assert step.duration is not None and step.duration >= 0.8  # two retry delays at least, not the last attempt alone
    assert any(line.startswith("ok in ") and "over 3 attempts" in line for line in log_of(store, record, sshd.url))


async def test_cancel_while_connecting_cancels_the_target(sshd: SshServer) -> None:
    settings = settings_for(sshd, ssh_connect_timeout=30)
    store = RunStore(settings.paths.runs_dir)
    cancel = asyncio.Event()
    os.kill(sshd.process.pid, signal.SIGSTOP)  # the connection is accepted but the server never answers
    try:
        loop = asyncio.get_running_loop()
        loop.call_later(0.5, cancel.set)
        started = loop.time()
        record = await run_tasks(tasks({"name": "a", "run": "true"}, {"name": "b", "run": "true"}), [target_of(sshd)], store, settings, cancel)
        assert loop.time() - started < 10  # not the 30 s connect timeout
    finally:
        os.kill(sshd.process.pid, signal.SIGCONT)
    assert record.status == "cancelled"
    target = record.targets[0]
    assert target.status == "cancelled" and [s.status for s in target.steps] == ["cancelled", "skipped"]
    assert "cancelled while connecting" in log_of(store, record, sshd.url)

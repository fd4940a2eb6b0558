"""`devorch-tui run / runs / forget-host` end to end: the real console script against a real sshd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from devorch_tui.cli import main
from tests.fakes.sshd import SshServer

pytestmark = pytest.mark.ssh

DEVORCH = [sys.executable, "-m", "devorch_tui"]


@pytest.fixture
def ssh_env(sshd: SshServer, monkeypatch: pytest.MonkeyPatch) -> SshServer:
    """Settings that log into ``sshd`` (user, key, port) for the CLI subprocesses."""
    monkeypatch.setenv("DEVORCH_SSH_KEY", str(sshd.client_key))
    monkeypatch.setenv("DEVORCH_SSH_USER", sshd.user)
    monkeypatch.setenv("DEVORCH_SSH_PORT", str(sshd.port))
    return sshd


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process."""
    return subprocess.run([*DEVORCH, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):  # noqa: ANN201
    """``cli.main`` in this process (same code path as the console script, without a Python start-up)."""

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)

    return call


def write_tasks(path: Path, *tasks: dict, name: str = "cli tasks") -> Path:
    path.write_text(json.dumps({"name": name, "tasks": list(tasks)}))
    return path


def test_run_prints_prefixed_lines_and_writes_history(run_cli, ssh_env: SshServer, tmp_path: Path, isolated_dirs: dict) -> None:
    task_file = write_tasks(
        tmp_path / "t.json",
        {"name": "greet", "run": "echo hello; echo warning >&2"},
        {"name": "list", "run": ["printf", "%s\n", "one", "two"]},
    )
    junit = tmp_path / "report" / "junit.xml"
    result = cli("run", ssh_env.url, str(task_file), "--junit", str(junit))
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    url = ssh_env.url
    assert f"[{url}] greet | hello" in out
    assert f"[{url}] greet ! warning" in out
    assert out.index(f"[{url}] list | one") < out.index(f"[{url}] list | two")
    assert any(line.startswith(f"[{url}] greet * $ echo hello") for line in out)
    assert any(line.startswith("run ") and " ok: 2/2 tasks ok on 1 target(s)" in line for line in out)

    cases = ElementTree.parse(junit).getroot().findall("./testsuite/testcase")
    assert [case.get("name") for case in cases] == ["greet", "list"]
    assert all(case.find("failure") is None for case in cases)

    listing = json.loads(run_cli("runs", "list", "--json").stdout)
    assert len(listing) == 1 and listing[0]["status"] == "ok" and listing[0]["title"] == "cli tasks"
    run_id = listing[0]["id"]
    shown = run_cli("runs", "show", run_id[:17], "--log")
    assert shown.returncode == 0
    assert f"run {run_id}  tasks  ok  cli tasks" in shown.stdout
    assert f"[{url}] list | two" in shown.stdout
    table = run_cli("runs", "list").stdout
    assert run_id in table and "2/2" in table


def test_failed_task_exits_non_zero_with_json_and_junit(run_cli, ssh_env: SshServer, tmp_path: Path) -> None:
    task_file = write_tasks(tmp_path / "t.json", {"name": "ok", "run": "true"}, {"name": "bad", "run": "echo nope; exit 3"}, {"name": "later", "run": "true"})
    junit = tmp_path / "junit.xml"
    result = run_cli("run", ssh_env.url, str(task_file), "--json", "--junit", str(junit))
    assert result.returncode == 1
    record = json.loads(result.stdout)  # stdout is only the JSON record
    assert record["status"] == "failed"
    assert [(s["name"], s["status"], s["exit_code"]) for s in record["targets"][0]["steps"]] == [
        ("ok", "ok", 0),
        ("bad", "failed", 3),
        ("later", "skipped", None),
    ]
    assert f"[{ssh_env.url}] bad | nope" in result.stderr  # the live lines went to stderr
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")


def test_bad_input_is_a_message_not_a_traceback(run_cli, ssh_env: SshServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "tasks": [{"name": "a", "run": "x"}, {"name": "b", "run": "y", "timeout": "1m"}]}))
    result = run_cli("run", ssh_env.url, str(bad))
    assert result.returncode == 1
    assert "tasks[1].timeout: Input should be a valid number" in result.stderr and "Traceback" not in result.stderr

    good = write_tasks(tmp_path / "t.json", {"name": "a", "run": "true"})
    result = run_cli("run", "ssh://bad host", str(good))
    assert result.returncode == 1 and "error: 'bad host' is not a valid host name or IP address in 'ssh://bad host'" in result.stderr
    result = run_cli("runs", "show", "20990101-000000-beef")
    assert result.returncode == 1 and "no run with id" in result.stderr and "runs list" in result.stderr


def test_vm_target_resolves_through_multipass(run_cli, ssh_env: SshServer, fake_multipass, tmp_path: Path) -> None:  # noqa: ANN001
    fake_multipass.add("dev-py", ipv4=[ssh_env.host])
    fake_multipass.back_with("dev-py", ssh_env)
    fake_multipass.add("dev-off", state="Stopped")
    task_file = write_tasks(tmp_path / "t.json", {"name": "where", "run": "echo on $SSH_CONNECTION"})
    result = run_cli("run", "dev-py", str(task_file))
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("[dev-py] where | on ") and line.endswith(f"{ssh_env.host} {ssh_env.port}") for line in result.stdout.splitlines())

    result = run_cli("run", "dev-off", str(task_file))
    assert result.returncode == 1
    assert "VM 'dev-off' is Stopped, not Running" in result.stderr and "devorch-tui vm start dev-off" in result.stderr
    result = run_cli("run", "dev-nope", str(task_file))
    assert result.returncode == 1 and "there is no VM named 'dev-nope'" in result.stderr

    # the pinned key carries the VM's name, so it can be forgotten by name (even once the VM is gone)
    forgot = run_cli("forget-host", "dev-py")
    assert forgot.returncode == 0 and f"forgot [{ssh_env.host}]:{ssh_env.port} ssh-ed25519 (dev-py)" in forgot.stdout
    assert "nothing to forget" in run_cli("forget-host", "dev-py").stdout


def test_changed_host_key_is_refused_until_forgotten(run_cli, ssh_env: SshServer, tmp_path: Path) -> None:
    task_file = write_tasks(tmp_path / "t.json", {"name": "a", "run": "true"})
    assert run_cli("run", ssh_env.url, str(task_file)).returncode == 0
    ssh_env.new_host_key()
    ssh_env.restart()
    refused = run_cli("run", ssh_env.url, str(task_file))
    assert refused.returncode == 1
    assert "is not the one pinned on first use" in refused.stdout
    assert f"devorch-tui forget-host {ssh_env.url}" in refused.stdout
    assert run_cli("forget-host", ssh_env.url).returncode == 0
    assert run_cli("run", ssh_env.url, str(task_file)).returncode == 0


def test_killed_run_shows_as_interrupted(run_cli, ssh_env: SshServer, tmp_path: Path, isolated_dirs: dict) -> None:
    task_file = write_tasks(tmp_path / "t.json", {"name": "long", "run": "echo started; sleep 3606"})
    proc = subprocess.Popen([*DEVORCH, "run", ssh_env.url, str(task_file)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until the task really runs
            if line.endswith("long | started\n"):
                break
        os.kill(proc.pid, signal.SIGKILL)  # a crash: no chance to finish the record
    finally:
        proc.wait(10)
    (record,) = json.loads(run_cli("runs", "list", "--json").stdout)
    assert record["status"] == "interrupted"
    assert record["targets"][0]["steps"][0]["status"] == "interrupted"
    shown = run_cli("runs", "show", "latest")
    assert "interrupted" in shown.stdout and "the process running it stopped" in shown.stdout
    runs_dir = isolated_dirs["state"] / "runs" / record["id"]
    assert "started" in next(runs_dir.glob("*.log")).read_text()  # the log up to the crash is kept
    ssh_env.kill_connections()


def test_ctrl_c_cancels_the_run_and_the_remote_process(run_cli, ssh_env: SshServer, tmp_path: Path) -> None:
    task_file = write_tasks(tmp_path / "t.json", {"name": "long", "run": "echo started; sleep 3607"}, {"name": "next", "run": "true"})
    proc = subprocess.Popen([*DEVORCH, "run", ssh_env.url, str(task_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.endswith("long | started\n"):
            break
    proc.send_signal(signal.SIGINT)
    rest, _err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    (record,) = json.loads(run_cli("runs", "list", "--json").stdout)
    assert record["status"] == "cancelled"
    assert [s["status"] for s in record["targets"][0]["steps"]] == ["cancelled", "skipped"]
    check = subprocess.run(ssh_env.ssh_argv("pgrep -f 'sleep 360[7]' || echo gone"), capture_output=True, text=True, timeout=30)
    assert check.stdout.strip() == "gone"


def test_forget_host_without_a_pin_says_so(run_cli, tmp_path: Path) -> None:
    result = run_cli("forget-host", "ssh://ubuntu@127.0.0.9:2200")
    assert result.returncode == 0 and "no host key is pinned for ssh://ubuntu@127.0.0.9:2200" in result.stdout
    assert run_cli("runs", "list").stdout.startswith("no runs yet")

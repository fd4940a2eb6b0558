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


def interrupt_once_started(*args: str, lines_on_stderr: bool = False) -> subprocess.CompletedProcess[str]:
    """`devorch-tui ARGS` in a child process, sent SIGINT (ctrl+c) once its task printed "started"."""
    proc = subprocess.Popen([*DEVORCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = proc.stderr if lines_on_stderr else proc.stdout
    assert lines is not None
    seen = []
    for line in lines:
        seen.append(line)
        if line.endswith("long | started\n"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    before = "".join(seen)
    return subprocess.CompletedProcess(list(args), proc.returncode, out if lines_on_stderr else before + out, before + err if lines_on_stderr else err)


def test_ctrl_c_cancels_the_run_and_the_remote_process(run_cli, ssh_env: SshServer, tmp_path: Path) -> None:
    task_file = write_tasks(tmp_path / "t.json", {"name": "long", "run": "echo started; sleep 3607"}, {"name": "next", "run": "true"})
    result = interrupt_once_started("run", ssh_env.url, str(task_file))
    assert result.returncode == 130 and "Traceback" not in result.stderr
    # the summary of the cancelled run, as for any other run
    assert any(line.startswith("run ") and " cancelled: 0/2 tasks ok on 1 target(s)" in line for line in result.stdout.splitlines())
    assert f"  {ssh_env.url}: long cancelled: cancelled" in result.stdout
    (record,) = json.loads(run_cli("runs", "list", "--json").stdout)
    assert record["status"] == "cancelled"
    assert [s["status"] for s in record["targets"][0]["steps"]] == ["cancelled", "skipped"]
    check = subprocess.run(ssh_env.ssh_argv("pgrep -f 'sleep 360[7]' || echo gone"), capture_output=True, text=True, timeout=30)
    assert check.stdout.strip() == "gone"


def test_forget_host_without_a_pin_says_so(run_cli, tmp_path: Path) -> None:
    result = run_cli("forget-host", "ssh://ubuntu@127.0.0.9:2200")
    assert result.returncode == 0 and "no host key is pinned for ssh://ubuntu@127.0.0.9:2200" in result.stdout
    assert run_cli("runs", "list").stdout.startswith("no runs yet")


def test_ctrl_c_still_writes_the_reports_and_the_summary(ssh_env: SshServer, tmp_path: Path) -> None:
    task_file = write_tasks(tmp_path / "t.json", {"name": "long", "run": "echo started; sleep 3608"}, {"name": "next", "run": "true"})
    junit = tmp_path / "junit.xml"
    result = interrupt_once_started("run", ssh_env.url, str(task_file), "--json", "--junit", str(junit), lines_on_stderr=True)
    out, err = result.stdout, result.stderr
    assert result.returncode == 130, err
    record = json.loads(out)  # the record of the cancelled run, on stdout as asked
    assert record["status"] == "cancelled"
    long, after = record["targets"][0]["steps"]
    assert (long["status"], after["status"]) == ("cancelled", "skipped")
    assert long["duration"] is not None and long["duration"] > 0
    assert f"[{ssh_env.url}] long * cancelled; the remote process was stopped" in err
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("errors"), suite.get("skipped")) == ("2", "1", "1")
    case = suite.find("testcase[@name='long']")
    assert float(case.get("time")) > 0 and case.find("error") is not None
    assert "started" in (case.find("error").text or "")  # the output tail
    assert subprocess.run(ssh_env.ssh_argv("pgrep -f 'sleep 360[8]' || echo gone"), capture_output=True, text=True, timeout=30).stdout.strip() == "gone"


def test_junit_says_a_timeout_and_shows_the_output_tail(run_cli, ssh_env: SshServer, tmp_path: Path) -> None:
    task_file = write_tasks(tmp_path / "t.json", {"name": "slow", "run": "for i in $(seq 1 30); do echo step $i; done; sleep 30", "timeout": 1})
    junit = tmp_path / "junit.xml"
    assert run_cli("run", ssh_env.url, str(task_file), "--junit", str(junit)).returncode == 1
    failure = ElementTree.parse(junit).getroot().find("./testsuite/testcase/failure")
    assert failure is not None and failure.get("message", "").startswith("timed out after 1 s")
    text = failure.text or ""
    assert "exit code: None" not in text and text.startswith("timed out after 1 s")
    assert "step 30" in text and "step 11" in text and "step 10\n" not in text  # the last 20 lines


def test_quiet_prints_only_the_summary(run_cli, ssh_env: SshServer, tmp_path: Path) -> None:
    task_file = write_tasks(tmp_path / "t.json", {"name": "a", "run": "echo hello"}, {"name": "b", "run": "echo world"})
    result = run_cli("run", ssh_env.url, str(task_file), "-q")
    assert result.returncode == 0
    lines = [line for line in result.stdout.splitlines() if line]
    assert len(lines) == 2 and lines[0].startswith("run ") and " ok: 2/2 tasks ok" in lines[0] and lines[1].startswith("logs: ")
    assert "hello" not in result.stdout and "[" not in result.stdout


def test_tasks_check_masks_secret_values(run_cli, workspace: Path, tmp_path: Path) -> None:
    (workspace / ".env").write_text("GITHUB_TOKEN='ghp_from_the_env_file'\n")
    task_file = write_tasks(
        tmp_path / "t.json",
        {"name": "push", "run": "git push https://x:ghp_from_the_env_file@example.com/r.git"},
        {"name": "argv", "run": ["curl", "-H", "Authorization: hunter2-token"], "env": {"API_TOKEN": "hunter2-token"}},
    )
    result = run_cli("tasks", "check", str(task_file))
    assert result.returncode == 0
    assert "ghp_from_the_env_file" not in result.stdout and "hunter2-token" not in result.stdout
    assert "https://x:********@example.com/r.git" in result.stdout and "Authorization: ********" in result.stdout


def test_a_password_in_an_ssh_url_is_not_printed(run_cli, tmp_path: Path) -> None:
    good = write_tasks(tmp_path / "t.json", {"name": "a", "run": "true"})
    result = run_cli("run", "ssh://root:s3cret-pw@127.0.44.10:22", str(good))
    assert result.returncode == 1
    assert "s3cret-pw" not in result.stderr and "'ssh://root:********@127.0.44.10:22' contains a password" in result.stderr

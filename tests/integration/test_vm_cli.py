"""`devorch-tui vm ...` headless commands against the multipass double."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devorch_tui.cli import main
from tests.fakes.multipass_fixture import FakeMultipass


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["vm", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_json_sorted_with_required_keys(fake_multipass: FakeMultipass, capsys: pytest.CaptureFixture[str]) -> None:
    fake_multipass.add("zeta", "Stopped", release="24.04")
    fake_multipass.add("alpha", "Running", ipv4=["10.1.1.1"])
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"name": "alpha", "state": "Running", "ipv4": ["10.1.1.1"], "release": "Ubuntu 22.04 LTS"},
        {"name": "zeta", "state": "Stopped", "ipv4": [], "release": "Ubuntu 24.04 LTS"},
    ]


def test_list_table_and_empty(fake_multipass: FakeMultipass, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "list") == (0, "No instances found.\n", "")
    assert run(capsys, "list", "--json") == (0, "[]\n", "")
    fake_multipass.add("dev-1", "Running", ipv4=["10.1.1.1"])
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert out.splitlines() == ["NAME   STATE    IPV4      RELEASE", "dev-1  Running  10.1.1.1  Ubuntu 22.04 LTS"]


def test_whole_lifecycle(fake_multipass: FakeMultipass, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cloud = tmp_path / "cloud-init.yaml"
    cloud.write_text("#cloud-config\n")
    code, out, err = run(
        capsys, "launch", "golden", "--image", "24.04", "--cpus", "2", "--memory", "2G", "--disk", "10G", "--cloud-init", str(cloud)
    )
    assert (code, out) == (0, "Launched: golden\n")
    assert err == "launching golden from 24.04; this can take several minutes...\n"
    assert fake_multipass.calls()[-1][:2] == ["launch", "24.04"]
    assert run(capsys, "stop", "golden")[:2] == (0, "stopped golden\n")
    assert run(capsys, "snapshot", "golden", "--name", "golden-image", "--comment", "base")[:2] == (
        0,
        "snapshot taken: golden.golden-image\n",
    )
    code, out, _ = run(capsys, "snapshots", "golden", "--json")
    assert json.loads(out) == [{"instance": "golden", "name": "golden-image", "parent": "", "comment": "base"}]
    assert run(capsys, "restore", "golden", "golden-image")[:2] == (0, "restored golden to snapshot golden-image\n")
    assert fake_multipass.calls()[-1] == ["restore", "golden.golden-image", "--destructive"]
    code, out, _ = run(capsys, "clone", "golden", "--name", "dev-1")
    assert code == 0 and out.startswith("cloned golden to dev-1")
    assert run(capsys, "start", "dev-1", "golden")[:2] == (0, "started dev-1, golden\n")
    assert run(capsys, "suspend", "dev-1")[:2] == (0, "suspended dev-1\n")
    assert run(capsys, "stop", "--force", "dev-1")[:2] == (0, "stopped dev-1\n")
    assert fake_multipass.calls()[-1] == ["stop", "dev-1", "--force"]
    assert run(capsys, "restart", "golden")[:2] == (0, "restarted golden\n")
    code, out, _ = run(capsys, "info", "golden", "--json")
    (info,) = json.loads(out)
    assert (info["name"], info["state"], info["cpu_count"], info["snapshot_count"]) == ("golden", "Running", 2, 1)
    assert info["address"] == info["ipv4"][0]
    code, out, _ = run(capsys, "info", "golden", "dev-1")
    assert "Name:      golden" in out and "CPUs:      2" in out and "Memory:" in out and "Name:      dev-1" in out
    assert run(capsys, "delete", "dev-1")[:2] == (0, "deleted dev-1\n")
    assert run(capsys, "recover", "dev-1")[:2] == (0, "recovered dev-1\n")
    assert run(capsys, "delete", "dev-1")[0] == 0
    assert run(capsys, "purge")[:2] == (0, "purged deleted VMs\n")
    assert run(capsys, "delete", "--purge", "golden")[0] == 0
    assert fake_multipass.state()["instances"] == {}


def test_images(fake_multipass: FakeMultipass, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "images", "--json")
    assert code == 0 and [image["name"] for image in json.loads(out)] == ["20.04", "22.04", "24.04"]
    code, out, _ = run(capsys, "images")
    assert "noble,lts" in out


@pytest.mark.parametrize(
    ("argv", "code", "message", "fix"),
    [
        (("start", "nope"), 2, "error: multipass start failed: instance(s) missing Instance 'nope' does not exist.", "vm list"),
        (("info", "nope"), 2, 'error: multipass info failed: instance "nope" does not exist', "vm list"),
        (("launch", "bad_name"), 1, "error: VM name: 'bad_name' is not a valid name", "start with a letter"),
        (("launch", "ok", "--memory", "64M"), 1, "error: memory: '64M' is below the minimum of 512M", "512M"),
        (("snapshot", "running"), 2, "error: multipass snapshot failed: Multipass can only take snapshots of stopped instances.", "vm stop"),
        (("clone", "running", "--name", "copy"), 2, "error: multipass clone failed: Multipass can only clone stopped instances.", "stop"),
        (("restore", "running", "nope"), 2, "error: multipass restore failed: Multipass can only restore snapshots", "stop"),
    ],
)
def test_failures_exit_non_zero_with_error_and_fix(
    fake_multipass: FakeMultipass,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    code: int,
    message: str,
    fix: str,
) -> None:
    fake_multipass.add("running", "Running")
    got, out, err = run(capsys, *argv)
    assert got == code
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith(message), err
    assert lines[1].startswith("  fix: ") and fix in lines[1]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--timeout", "nan", "error: --timeout: nan is not a finite number of seconds"),
        ("--timeout", "inf", "error: --timeout: inf is not a finite number of seconds"),
        ("--timeout", "-5", "error: --timeout: -5 is less than 1 second"),
        ("--timeout", "0.5", "error: --timeout: 0.5 is less than 1 second"),
        ("--timeout", "1e30", "error: --timeout: 1e30 is more than multipass accepts"),
        ("--cpus", "²", "error: CPUs: '²' is not a CPU count"),
        ("--cpus", "٣", "error: CPUs: '٣' is not a CPU count"),
        ("--memory", "٤G", "error: memory: '٤G' is not a size"),
        ("--disk", "1X", "error: disk: '1X' is not a size"),
    ],
)
def test_launch_checks_every_value_before_saying_it_launches(
    fake_multipass: FakeMultipass, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    code, out, err = run(capsys, "launch", "ok", option, value)
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0].startswith(message), err
    assert lines[1].startswith("  fix: ")
    assert "launching" not in err and "Traceback" not in err
    assert fake_multipass.calls() == []


def test_info_of_a_snapshot_shows_the_snapshot(fake_multipass: FakeMultipass, capsys: pytest.CaptureFixture[str]) -> None:
    fake_multipass.add("beta", "Stopped", cpus=2, memory="4G", disk="20G", snapshots=[{"name": "base", "comment": "first\nsnap"}])
    code, out, _ = run(capsys, "info", "beta.base")
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == ["Snapshot:  base", "Instance:  beta"]
    assert "Name:      beta" not in out, "no empty instance block"
    assert "CPUs:      2" in lines and "Memory:    4.0GiB" in lines and "Disk:      20.0GiB" in lines
    assert "Comment:   first snap" in lines
    code, out, _ = run(capsys, "info", "beta", "beta.base")
    assert out.startswith("Name:      beta") and "\n\nSnapshot:  base\n" in out


def test_snapshots_of_a_missing_vm_is_not_found(fake_multipass: FakeMultipass, capsys: pytest.CaptureFixture[str]) -> None:
    fake_multipass.add("web", "Stopped")
    code, out, err = run(capsys, "snapshots", "nope")
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == 'error: multipass info failed: instance "nope" does not exist'
    assert "vm list" in err.splitlines()[1]
    assert run(capsys, "snapshots", "web") == (0, "web has no snapshots.\n", "")
    assert run(capsys, "snapshots", "web", "--json") == (0, "[]\n", "")
    assert run(capsys, "snapshots") == (0, "No snapshots found.\n", "")


def test_daemon_down(fake_multipass: FakeMultipass, capsys: pytest.CaptureFixture[str]) -> None:
    fake_multipass.set_daemon("down")
    code, out, err = run(capsys, "list")
    assert code == 2 and out == ""
    assert err.splitlines()[0] == "error: multipass list failed: cannot connect to the multipass socket"
    assert "snap restart multipass" in err


def test_multipass_missing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEVORCH_MULTIPASS_BIN", str(tmp_path / "nowhere" / "multipass"))
    code, out, err = run(capsys, "list", "--json")
    assert code == 1 and out == ""
    assert "multipass is not installed" in err and "snap install multipass" in err


def test_clone_needs_a_name(fake_multipass: FakeMultipass, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["vm", "clone", "golden"])
    assert info.value.code == 1  # bad input (2 is a multipass error)
    assert "--name" in capsys.readouterr().err


def test_shell_execs_multipass_shell(fake_multipass: FakeMultipass, tmp_path: Path) -> None:
    """`vm shell` replaces itself with `multipass shell NAME` (here: the double's shell on a pipe)."""
    fake_multipass.add("dev-1", "Stopped")
    env = dict(os.environ, SHELL="/bin/sh")
    result = subprocess.run(
        [sys.executable, "-m", "devorch_tui", "vm", "shell", "dev-1"],
        input="echo inside-$MULTIPASS_FAKE_INSTANCE\nexit\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "inside-dev-1" in result.stdout
    assert fake_multipass.calls()[-1] == ["shell", "dev-1"]
    assert fake_multipass.shown_state("dev-1") == "Running", "shell starts the instance"


def test_shell_rejects_a_bad_name_before_running_anything(fake_multipass: FakeMultipass, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "shell", "bad_name")
    assert code == 1 and "not a valid name" in err
    assert fake_multipass.calls() == []

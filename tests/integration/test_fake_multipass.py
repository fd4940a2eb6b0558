"""The multipass double speaks the real contract: for the same state its JSON is byte-identical to the
reference outputs of multipass 1.16.3 (and 1.17-dev), and its exit codes and stderr are the
reference ones. Transitions, IP rules and the controller API are checked here too."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.fakes.multipass_fixture import FakeMultipass

REFERENCE = Path(__file__).resolve().parents[1] / "fakes" / "multipass_reference"
DEV = REFERENCE / "dev-1.17"


def BIN() -> str:  # noqa: N802 - the launcher the fixture put in DEVORCH_MULTIPASS_BIN
    return os.environ["DEVORCH_MULTIPASS_BIN"]


def mp(*args: str, input: str | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL if input is None else None,
        input=input,
    )


def ref(name: str, dev: bool = False) -> str:
    return ((DEV if dev else REFERENCE) / name).read_text(encoding="utf-8")


# The instances of the reference outputs (tests/test_output_formatter.cpp in multipass v1.16.3).
def add_foo(fake: FakeMultipass) -> None:
    fake.add(
        "foo",
        "Running",
        ipv4=["10.168.32.2", "200.3.123.29"],
        release="16.04 LTS",
        os_release="Ubuntu 16.04.3 LTS",
        image_hash="1797c5c82016c1e65f4008fcf89deae3a044ef76087a9ec5b907c6d64a3609ac",
        cpus=1,
        memory=1503238554,
        memory_used=60817408,
        disk=5153960756,
        disk_used=1288490188,
        load=[0.45, 0.51, 0.15],
        mounts={
            "foo": {"source_path": "/home/user/foo", "uid_mappings": ["1000:1000"], "gid_mappings": ["1000:1000"]},
            "test_dir": {"source_path": "/home/user/test_dir", "uid_mappings": ["1000:1000"], "gid_mappings": ["1000:1000"]},
        },
    )


def add_bogus_and_bombastic(fake: FakeMultipass) -> None:
    fake.add(
        "bogus-instance",
        "Running",
        ipv4=["10.21.124.56"],
        release="16.04 LTS",
        os_release="Ubuntu 16.04.3 LTS",
        image_hash="1797c5c82016c1e65f4008fcf89deae3a044ef76087a9ec5b907c6d64a3609ac",
        cpus=4,
        memory=1610612736,
        memory_used=38797312,
        disk=6764573492,
        disk_used=1932735284,
        load=[0.03, 0.1, 0.15],
        mounts={"source": {"source_path": "/home/user/source", "uid_mappings": ["1000:501"], "gid_mappings": ["1000:501"]}},
        snapshots=["snapshot1"],
        zone={"name": "zone1", "available": True},
    )
    fake.add(
        "bombastic",
        "Stopped",
        release="18.04 LTS",
        image_hash="ab5191cc172564e7cc0eafd397312a32598823e645279c820f0935393aead509",
        snapshots=["s1", "s2", "s3"],
        zone={"name": "zone2", "available": False},
    )


# --------------------------------------------------------------------------- byte-identical JSON


@pytest.mark.parametrize(("style", "reference"), [("1.16", "list_empty.json"), ("1.17", "dev-1.17/empty_list_reply.json")])
def test_list_empty_is_byte_identical(fake_multipass: FakeMultipass, style: str, reference: str) -> None:
    fake_multipass.set_json_style(style)
    result = mp("list", "--format", "json")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == ref(reference)


def test_list_single_is_byte_identical(fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("foo", "Running", ipv4=["10.168.32.2", "200.3.123.30"], release="16.04 LTS")
    assert mp("list", "--format", "json").stdout == ref("list_single.json")
    fake_multipass.set_json_style("1.17")
    assert mp("list", "--format", "json").stdout == ref("single_instance_list_reply.json", dev=True)


def test_list_multiple_is_byte_identical(fake_multipass: FakeMultipass) -> None:
    add_bogus_and_bombastic(fake_multipass)
    assert mp("list", "--format", "json").stdout == ref("list_multiple.json")
    assert mp("ls", "--format=json").stdout == ref("list_multiple.json")
    fake_multipass.set_json_style("1.17")
    assert mp("list", "--format", "json").stdout == ref("multiple_instances_list_reply.json", dev=True)


def test_info_single_instance_is_byte_identical(fake_multipass: FakeMultipass) -> None:
    add_foo(fake_multipass)
    assert mp("info", "foo", "--format", "json").stdout == ref("info_single_instance.json")


def test_info_multiple_instances_is_byte_identical(fake_multipass: FakeMultipass) -> None:
    add_bogus_and_bombastic(fake_multipass)
    assert mp("info", "--format", "json").stdout == ref("info_multiple_instances.json")
    fake_multipass.set_json_style("1.17")
    assert mp("info", "--format", "json").stdout == ref("multiple_instances_info_reply.json", dev=True)


@pytest.mark.parametrize(("style", "reference"), [("1.16", "info_empty.json"), ("1.17", "dev-1.17/empty_info_reply.json")])
def test_info_empty_is_byte_identical(fake_multipass: FakeMultipass, style: str, reference: str) -> None:
    fake_multipass.set_json_style(style)
    assert mp("info", "--format", "json").stdout == ref(reference)


def test_snapshot_lists_are_byte_identical(fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("foo", "Stopped", snapshots=[{"name": "snapshot1", "comment": "This is a sample comment"}])
    assert mp("list", "--snapshots", "--format", "json").stdout == ref("list_snapshots_single.json")
    fake_multipass.remove("foo")
    fake_multipass.add(
        "hale-roller",
        "Stopped",
        snapshots=[
            {"name": "pristine", "comment": "A first snapshot"},
            {"name": "rocking", "comment": "A very long comment that should be truncated by the table formatter", "parent": "pristine"},
            {"name": "rolling", "comment": "Loaded with stuff", "parent": "pristine"},
        ],
    )
    fake_multipass.add(
        "prosperous-spadefish",
        "Stopped",
        snapshots=[
            {"name": "snapshot2", "comment": "Before restoring snap1\nContains a newline that\r\nshould be truncated"},
            {"name": "snapshot10", "comment": "", "parent": "snapshot2"},
        ],
    )
    assert mp("list", "--snapshots", "--format", "json").stdout == ref("list_snapshots_multiple.json")


def test_snapshot_info_has_the_reference_shape(fake_multipass: FakeMultipass) -> None:
    """Snapshot details are not byte-comparable (the reference mocks sizes and dates) but keys,
    types and layout match: same key order (sorted) and the same nesting as the 1.16 files."""
    fake_multipass.add("bogus-instance", "Stopped", snapshots=["snapshot1", {"name": "snapshot2", "comment": "c"}])
    ours = json.loads(mp("info", "bogus-instance.snapshot2", "--format", "json").stdout)
    theirs = json.loads(ref("info_snapshot_single.json"))

    def shape(value):  # type: ignore[no-untyped-def]
        if isinstance(value, dict):
            return {key: shape(item) for key, item in value.items() if key not in ("Home", "source")}
        return type(value).__name__

    assert shape(ours) == shape(theirs)
    snap = ours["info"]["bogus-instance"]["snapshots"]["snapshot2"]
    assert (snap["parent"], snap["children"], snap["comment"], snap["cpu_count"]) == ("snapshot1", [], "c", "1")
    assert (snap["disk_space"], snap["memory_size"]) == ("5.0GiB", "1.0GiB")
    all_snaps = json.loads(mp("info", "--snapshots", "--format", "json").stdout)
    assert list(all_snaps["info"]["bogus-instance"]["snapshots"]) == ["snapshot1", "snapshot2"]
    assert all_snaps["info"]["bogus-instance"]["snapshots"]["snapshot1"]["children"] == ["snapshot2"]


def test_version_outputs_are_byte_identical(fake_multipass: FakeMultipass) -> None:
    fake_multipass.set_version("Client version", "Daemon version")
    assert mp("version", "--format", "json").stdout == ref("version_client_and_daemon.json")
    fake_multipass.set_version(
        "Client version",
        "Daemon version",
        update={"title": "update title information", "description": "update description information", "url": "http://multipass.web"},
    )
    assert mp("version", "--format", "json").stdout == ref("version_with_update.json")
    fake_multipass.set_json_style("1.17")
    assert mp("version", "--format", "json").stdout == ref("version_daemon_update_reply.json", dev=True)
    fake_multipass.set_json_style("1.16")
    fake_multipass.set_daemon("down")
    result = mp("version", "--format", "json")
    assert result.returncode == 0, "version exits 0 without a daemon"
    assert result.stdout == ref("version_client_only.json")


# --------------------------------------------------------------------------- exit codes and stderr


def test_missing_instance_errors(fake_multipass: FakeMultipass) -> None:
    for command in ("info", "stop", "delete", "recover", "restart", "suspend"):
        result = mp(command, "nope")
        assert (result.returncode, result.stdout) == (2, ""), command
        assert result.stderr == f'{command} failed: The following errors occurred:\ninstance "nope" does not exist\n'
    result = mp("start", "nope")
    assert (result.returncode, result.stderr) == (2, "start failed: instance(s) missing\nInstance 'nope' does not exist.\n\n")
    for command in ("snapshot", "clone"):
        result = mp(command, "nope")
        assert (result.returncode, result.stderr) == (2, f'{command} failed: instance "nope" does not exist\n')
    result = mp("restore", "nope.snap", "--destructive")
    assert (result.returncode, result.stderr) == (2, 'restore failed: instance "nope" does not exist\n')


def test_daemon_down_and_denied(fake_multipass: FakeMultipass) -> None:
    fake_multipass.set_daemon("down")
    result = mp("list", "--format", "json")
    assert (result.returncode, result.stdout, result.stderr) == (2, "", "list failed: cannot connect to the multipass socket\n")
    fake_multipass.set_daemon("denied")
    result = mp("info", "--format", "json")
    assert (result.returncode, result.stderr) == (2, "info failed: multipass socket access denied\n")
    fake_multipass.set_daemon("up")
    assert mp("list", "--format", "json").returncode == 0


def test_name_and_existence_errors_on_launch(fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("vm1")
    result = mp("launch", "--name", "vm1")
    assert (result.returncode, result.stderr) == (2, 'launch failed: instance "vm1" already exists\n')
    result = mp("launch", "--name", "1bad_name")
    assert (result.returncode, result.stderr) == (
        2,
        "launch failed: Invalid arguments supplied\nInvalid instance name supplied: 1bad_name\n",
    )
    result = mp("launch", "--name", "tiny", "--memory", "64M")
    assert (result.returncode, result.stderr) == (
        2,
        "launch failed: Invalid arguments supplied\nInvalid memory size value supplied: 64M.\n",
    )
    result = mp("launch", "--cpus", "x")
    assert (result.returncode, result.stderr) == (1, "Error: invalid CPU count 'x', need a positive integer value.\n")
    result = mp("launch", "--timeout", "0")
    assert (result.returncode, result.stderr) == (1, "error: --timeout value has to be a positive integer\n")
    result = mp("launch", "--snapshot", "golden.golden-image")
    assert (result.returncode, result.stderr) == (1, "Unknown option 'snapshot'.\n")


def test_must_be_stopped_and_not_supported(fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("vm1", "Running", snapshots=["golden"])
    for args, message in [
        (("snapshot", "vm1"), "snapshot failed: Multipass can only take snapshots of stopped instances.\n"),
        (("restore", "vm1.golden", "--destructive"), "restore failed: Multipass can only restore snapshots of stopped instances.\n"),
        (("clone", "vm1"), "clone failed: Multipass can only clone stopped instances.\n"),
    ]:
        result = mp(*args)
        assert (result.returncode, result.stderr) == (2, message)
    fake_multipass.set_driver("lxd")
    fake_multipass.set_state("vm1", "Stopped")
    result = mp("clone", "vm1")
    assert (result.returncode, result.stderr) == (2, "clone failed: The clone feature is not implemented on this backend.\n")
    result = mp("list", "--snapshots", "--format", "json")
    assert (result.returncode, result.stderr) == (2, "list failed: The snapshots feature is not implemented on this backend.\n")
    info = json.loads(mp("info", "vm1", "--format", "json").stdout)
    assert "snapshot_count" not in info["info"]["vm1"], "lxd has no snapshot_count"


def test_clone_is_an_unknown_command_before_1_15(fake_multipass: FakeMultipass) -> None:
    fake_multipass.set_version("1.14.1")
    fake_multipass.add("vm1", "Stopped")
    result = mp("clone", "vm1", "--name", "vm2")
    assert result.returncode == 1 and "Unknown Command 'clone'" in result.stdout + result.stderr


def test_restore_without_destructive_crashes_like_non_tty_multipass(fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("vm1", "Stopped", snapshots=["golden"])
    result = mp("restore", "vm1.golden")
    assert result.returncode == 1 and "Caught an unhandled exception" in result.stderr
    fake_multipass.set_version("1.17.0-dev.1+g0")
    result = mp("restore", "vm1.golden")
    assert (result.returncode, result.stderr) == (2, "restore failed: Cannot get confirmation from client. Aborting...\n")
    fake_multipass.set_version("1.16.3")
    result = mp("delete", "vm1.golden")
    assert result.returncode == 1 and "Snapshots can only be purged" in result.stderr


def test_suspended_instance_needs_force_stop(fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("vm1", "Suspended")
    result = mp("stop", "vm1")
    assert (result.returncode, result.stderr) == (2, "stop failed: Cannot shut down suspended instance vm1.\nUse --force to power it off.\n")
    assert mp("stop", "vm1", "--force").returncode == 0
    assert fake_multipass.shown_state("vm1") == "Stopped"


def test_fail_next_fails_once_then_recovers(fake_multipass: FakeMultipass) -> None:
    fake_multipass.fail_next("list", "list failed: something broke", exit_code=2)
    result = mp("list", "--format", "json")
    assert (result.returncode, result.stdout, result.stderr) == (2, "", "list failed: something broke\n")
    assert mp("list", "--format", "json").returncode == 0


# --------------------------------------------------------------------------- transitions and IPs


def wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def listed(name: str) -> dict:
    rows = json.loads(mp("list", "--format", "json").stdout)["list"]
    return next(row for row in rows if row["name"] == name)


def test_start_shows_starting_without_ip_then_running_with_ip(fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("vm1", "Stopped", ipv4=["10.1.2.3"])
    assert listed("vm1") == {"ipv4": [], "name": "vm1", "release": "Ubuntu 22.04 LTS", "state": "Stopped"}
    fake_multipass.set_delays(start=30)
    proc = subprocess.Popen([BIN(), "start", "vm1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: fake_multipass.instance("vm1")["pending"] is not None)
        row = listed("vm1")
        assert (row["state"], row["ipv4"]) == ("Starting", [])
    finally:
        # end the transition now instead of waiting: the blocked `start` then returns
        fake_multipass.set_state("vm1", "Running")
        proc.kill()
        proc.wait()
    row = listed("vm1")
    assert (row["state"], row["ipv4"]) == ("Running", ["10.1.2.3"])


def test_launch_hides_the_instance_while_its_image_is_prepared(fake_multipass: FakeMultipass) -> None:
    fake_multipass.set_delays(prepare=30, launch=30)
    proc = subprocess.Popen([BIN(), "launch", "--name", "new"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: "new" in fake_multipass.state()["preparing"])
        assert json.loads(mp("list", "--format", "json").stdout) == {"list": []}, "not listed while preparing"
        result = mp("launch", "--name", "new")
        assert (result.returncode, result.stderr) == (2, 'launch failed: instance "new" is being prepared\n')
    finally:
        proc.kill()
        proc.wait()


def test_launch_timeout_exits_5(fake_multipass: FakeMultipass) -> None:
    fake_multipass.set_delays(launch=30)
    result = mp("launch", "--name", "slow", "--timeout", "1")
    assert (result.returncode, result.stderr) == (5, "Timed out waiting for instance launch.\n")
    assert fake_multipass.shown_state("slow") == "Starting"


def test_delete_recover_purge(fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("vm1", "Running")
    fake_multipass.add("vm2", "Stopped")
    assert mp("delete", "vm1").returncode == 0
    assert listed("vm1") == {"ipv4": [], "name": "vm1", "release": "Ubuntu 22.04 LTS", "state": "Deleted"}
    rows = json.loads(mp("list", "--format", "json").stdout)["list"]
    assert [row["name"] for row in rows] == ["vm2", "vm1"], "deleted instances are listed last"
    result = mp("start", "vm1")
    assert result.returncode == 2 and "is deleted. Use 'recover'" in result.stderr
    assert mp("recover", "vm1").returncode == 0
    assert fake_multipass.shown_state("vm1") == "Stopped"
    assert mp("delete", "vm1").returncode == 0 and mp("purge").returncode == 0
    assert "vm1" not in fake_multipass.state()["instances"]
    assert mp("delete", "vm2", "--purge").returncode == 0
    assert fake_multipass.state()["instances"] == {}


def test_lifecycle_stdout_carries_the_spinner(fake_multipass: FakeMultipass) -> None:
    result = mp("launch", "--name", "vm1")
    assert result.returncode == 0
    assert "\x1b[2K\x1b[0A\x1b[0E" in result.stdout and result.stdout.endswith("Launched: vm1\n")


def test_snapshot_restore_clone_round_trip(fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("golden", "Stopped", cpus=2)
    assert mp("snapshot", "golden", "--name", "golden-image", "--comment", "base").stdout.endswith(
        "Snapshot taken: golden.golden-image\n"
    )
    assert mp("snapshot", "golden").stdout.endswith("Snapshot taken: golden.snapshot2\n")
    result = mp("snapshot", "golden", "--name", "golden-image")
    assert (result.returncode, result.stderr) == (2, "snapshot failed: Snapshot already exists: golden.golden-image\n")
    assert mp("restore", "golden.golden-image", "--destructive").stdout.endswith("Snapshot restored: golden.golden-image\n")
    result = mp("restore", "golden.nope", "--destructive")
    assert (result.returncode, result.stderr) == (2, "restore failed: No such snapshot: golden.nope\n")
    assert mp("clone", "golden", "--name", "dev-1").stdout.endswith("Cloned from golden to dev-1.\n")
    assert mp("clone", "golden").stdout.endswith("Cloned from golden to golden-clone1.\n")
    clone = fake_multipass.instance("dev-1")
    assert (clone["state"], clone["snapshots"], clone["cpus"]) == ("Stopped", {}, 2)
    result = mp("clone", "golden", "--name", "bad_name")
    assert (result.returncode, result.stderr) == (2, "clone failed: Invalid destination instance name: bad_name\n")


def test_set_and_get(fake_multipass: FakeMultipass) -> None:
    """Settings errors are the SettingsException text alone (get.cpp / set.cpp print e.what()):
    2 for an instance problem, 1 for an invalid value (InvalidSettingException)."""
    fake_multipass.add("vm1", "Running")
    result = mp("set", "local.vm1.cpus=4")
    assert (result.returncode, result.stderr) == (
        2,
        "Cannot update instance settings; instance: vm1; reason: Instance must be stopped for modification\n",
    )
    fake_multipass.set_state("vm1", "Stopped")
    assert mp("set", "local.vm1.cpus=4").returncode == 0
    assert mp("set", "local.vm1.memory=2G").returncode == 0
    assert mp("get", "local.vm1.cpus").stdout == "4\n"
    assert mp("get", "local.vm1.memory").stdout == "2.0GiB\n"
    assert mp("get", "local.vm1.disk").stdout == "5.0GiB\n"
    result = mp("set", "local.vm1.disk=1G")
    assert (result.returncode, result.stderr) == (1, "Invalid setting 'local.vm1.disk=1G': Disk can only be expanded\n")
    result = mp("set", "local.vm1.cpus=²")
    assert result.returncode == 1 and "Need a positive integer" in result.stderr
    assert mp("get", "local.driver").stdout == "qemu\n"
    assert (mp("get", "local.bridged-network").stdout, mp("get", "--raw", "local.bridged-network").stdout) == ("<empty>\n", "\n")
    result = mp("get", "local.nope.cpus")
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        "Cannot obtain instance settings; instance: nope; reason: No such instance\n",
    )
    result = mp("set", "local.nope.cpus=2")
    assert (result.returncode, result.stderr) == (2, "Cannot update instance settings; instance: nope; reason: No such instance\n")
    result = mp("get")
    assert result.returncode == 1 and "Multiple settings not implemented yet" in result.stderr
    fake_multipass.set_state("vm1", "Deleted")
    assert mp("get", "local.vm1.cpus").stdout == "4\n", "a deleted instance keeps its settings"
    result = mp("set", "local.vm1.cpus=2")
    assert (result.returncode, result.stderr) == (2, "Cannot update instance settings; instance: vm1; reason: Instance is deleted\n")


def test_names_are_anchored_and_digits_ascii(fake_multipass: FakeMultipass) -> None:
    """valid_hostname() and the size regex are anchored and ASCII: no trailing newline, no "٣"."""
    result = mp("launch", "--name", "vm1\n")
    assert (result.returncode, result.stderr) == (2, "launch failed: Invalid arguments supplied\nInvalid instance name supplied: vm1\n\n")
    result = mp("launch", "--name", "vm2", "--memory", "٣G")
    assert result.returncode == 1 and "٣G is not a valid memory size" in result.stderr
    result = mp("launch", "--name", "vm3", "--cpus", "²")
    assert (result.returncode, result.stderr) == (1, "Error: invalid CPU count '²', need a positive integer value.\n")
    result = mp("launch", "--name", "vm4", "--timeout", "٣")
    assert (result.returncode, result.stderr) == (1, "error: --timeout value has to be a positive integer\n")
    fake_multipass.add("vm5", "Stopped")
    result = mp("snapshot", "vm5", "--name", "snap\n")
    assert (result.returncode, result.stderr) == (2, 'snapshot failed: Invalid snapshot name: "snap\n".\n')
    assert fake_multipass.calls()[-1] == ["snapshot", "vm5", "--name", "snap\n"]
    assert fake_multipass.state()["instances"].keys() == {"vm5"}


def test_lifecycle_commands_without_a_name_mean_the_primary_instance(fake_multipass: FakeMultipass) -> None:
    """Reference section 3: no name means `client.primary-name` (start launches it when missing);
    only with the primary instance disabled is a name or --all required."""
    for command in ("stop", "suspend", "restart"):
        result = mp(command)
        assert (result.returncode, result.stderr) == (2, f'{command} failed: The following errors occurred:\ninstance "primary" does not exist\n')
    result = mp("start")
    assert result.returncode == 0 and result.stdout.endswith("Launched: primary\n")
    assert fake_multipass.shown_state("primary") == "Running"
    assert mp("stop").returncode == 0 and fake_multipass.shown_state("primary") == "Stopped"
    assert mp("start").returncode == 0 and fake_multipass.shown_state("primary") == "Running"
    assert mp("suspend").returncode == 0 and fake_multipass.shown_state("primary") == "Suspended"
    assert mp("set", "client.primary-name=").returncode == 0
    assert mp("get", "--raw", "client.primary-name").stdout == "\n"
    for command in ("start", "stop", "suspend", "restart"):
        result = mp(command)
        assert (result.returncode, result.stderr) == (1, "Name argument or --all is required\n"), command
    result = mp("stop", "--all", "primary")
    assert (result.returncode, result.stderr) == (1, "Cannot specify name when --all option set\n")
    result = mp("stop", "--all", "a", "b")
    assert (result.returncode, result.stderr) == (1, "Cannot specify names when --all option set\n")


def test_stop_of_a_deleted_instance_is_the_daemon_selection_error(fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("gone", "Deleted")
    for command in ("stop", "suspend", "restart"):
        result = mp(command, "gone")
        assert (result.returncode, result.stderr) == (2, f'{command} failed: The following errors occurred:\ninstance "gone" is deleted\n')


def test_info_all_is_deprecated(fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("vm1", "Stopped")
    result = mp("info", "--all", "--format", "json")
    assert result.returncode == 0 and "vm1" in json.loads(result.stdout)["info"]
    assert result.stderr == (
        "Warning: the `--all` flag for the `info` command is deprecated. Please use `info` with no positional "
        "arguments for the same effect.\n"
    )
    result = mp("info", "--all", "vm1")
    assert (result.returncode, result.stderr) == (1, "Cannot specify name when --all option set\n")


def test_the_spinner_turns_while_the_command_waits_and_launch_shows_its_steps(fake_multipass: FakeMultipass) -> None:
    fake_multipass.set_delays(prepare=0.5, launch=0.5)
    result = subprocess.run([BIN(), "launch", "--name", "vm1"], capture_output=True, stdin=subprocess.DEVNULL, timeout=20)
    assert result.returncode == 0
    out = result.stdout.decode()  # bytes: text mode would turn the progress line's "\r" into "\n"
    assert "\rRetrieving image: 0%" in out and "\rRetrieving image: 100%" in out
    steps = [out.index(step) for step in ("Retrieving image", "Creating vm1", "Starting vm1", "Waiting for initialization to complete", "Launched: vm1")]
    assert steps == sorted(steps)
    starting = out[out.index("Starting vm1") : out.index("Waiting for initialization")]
    assert starting.count("\b") >= 3, "frames drawn during the 0.5 s wait, not after it"
    fake_multipass.set_delays(stop=0.5)
    result = mp("stop", "vm1")
    assert result.stdout.startswith("\x1b[2K\x1b[0A\x1b[0EStopping vm1  ") and result.stdout.count("\b") >= 3
    assert result.stdout.endswith("\x1b[2K\x1b[0A\x1b[0E")


def test_a_timeout_stops_the_spinner_and_exits_5(fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("vm1", "Stopped")
    fake_multipass.set_delays(start=30)
    started = time.monotonic()
    result = mp("start", "vm1", "--timeout", "1")
    assert (result.returncode, result.stderr) == (5, "Timed out waiting for instance to start.\n")
    assert time.monotonic() - started < 15
    assert result.stdout.endswith("\x1b[2K\x1b[0A\x1b[0E")


def test_shell_returns_the_inner_exit_code_only_from_1_17(fake_multipass: FakeMultipass, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_multipass.add("vm1", "Running")
    monkeypatch.setenv("SHELL", "/bin/false")
    assert mp("shell", "vm1").returncode == 0
    fake_multipass.set_version("1.17.0-dev.1+g0")
    assert mp("shell", "vm1").returncode == 1


def test_exec_without_backing_runs_in_a_scratch_folder(fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("vm1", "Stopped")
    result = mp("exec", "vm1", "--", "sh", "-c", "echo $MULTIPASS_FAKE_INSTANCE; exit 3")
    assert (result.returncode, result.stdout) == (3, "vm1\n")
    assert fake_multipass.shown_state("vm1") == "Running", "exec starts a stopped instance"


def test_calls_are_recorded(fake_multipass: FakeMultipass) -> None:
    mp("list", "--format", "json")
    mp("version")
    assert fake_multipass.calls() == [["list", "--format", "json"], ["version"]]


# --------------------------------------------------------------------------- backing by a real sshd


@pytest.mark.ssh
async def test_backed_instance_runs_exec_and_transfer_over_real_ssh(fake_multipass: FakeMultipass, sshd, tmp_path: Path) -> None:  # noqa: ANN001
    from devorch_tui.services.multipass import MultipassClient

    fake_multipass.add("dev-1", "Stopped")
    fake_multipass.back_with("dev-1", sshd)
    client = MultipassClient(fake_multipass.binary)
    assert (await client.list())[0].ipv4 == [], "no address while stopped"
    result = await client.exec("dev-1", ["sh", "-c", 'echo "$SSH_CONNECTION" | cut -d" " -f3,4; echo "it\'s quoted"; exit 7'])
    assert result.returncode == 7
    assert result.stdout.splitlines() == [f"{sshd.host} {sshd.port}", "it's quoted"]
    (instance,) = await client.list()
    assert (instance.state, instance.address) == ("Running", sshd.host), "exec started it; its address is the sshd"
    source = tmp_path / "payload.txt"
    source.write_text("over scp\n")
    remote = tmp_path / "remote-copy.txt"
    await client.transfer(str(source), f"dev-1:{remote}")
    assert remote.read_text() == "over scp\n"
    fake_multipass.back_with("dev-1", sshd.host, sshd.port, sshd.user, sshd.client_key)
    assert (await client.exec("dev-1", ["true"])).returncode == 0

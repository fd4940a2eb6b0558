"""Every MultipassClient method against the multipass double (the production code path: argv, JSON
parsing, exit codes and stderr), including its failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devorch_tui.config import Settings
from devorch_tui.errors import ValidationError
from devorch_tui.services.multipass import MultipassClient, MultipassError, MultipassErrorKind as K
from tests.fakes.multipass_fixture import FakeMultipass


@pytest.fixture
def client(fake_multipass: FakeMultipass, settings: Settings) -> MultipassClient:
    return MultipassClient.from_settings(settings)


def last_call(fake: FakeMultipass) -> list[str]:
    return fake.calls()[-1]


async def test_from_settings_uses_the_binary_setting(fake_multipass: FakeMultipass, settings: Settings) -> None:
    client = MultipassClient.from_settings(settings)
    assert client.binary == fake_multipass.binary
    assert (client.timeout, client.launch_timeout) == (settings.multipass_timeout, settings.multipass_launch_timeout)


# --------------------------------------------------------------------------- queries


async def test_version(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    version = await client.version()
    assert (version.client, version.daemon, version.client_version) == ("1.16.3", "1.16.3", (1, 16, 3))
    fake_multipass.set_daemon("down")
    version = await client.version()
    assert version.daemon is None and not version.daemon_reachable


async def test_list_sorted_with_ip_only_while_running(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("zeta", "Stopped")
    fake_multipass.add("alpha", "Running", ipv4=["10.9.8.7"], release="24.04")
    fake_multipass.add("mid", "Running", ipv4=["N/A"])
    instances = await client.list()
    assert [(i.name, i.state, i.ipv4, i.release) for i in instances] == [
        ("alpha", "Running", ["10.9.8.7"], "Ubuntu 24.04 LTS"),
        ("mid", "Running", ["N/A"], "Ubuntu 22.04 LTS"),
        ("zeta", "Stopped", [], "Ubuntu 22.04 LTS"),
    ]
    assert [i.address for i in instances] == ["10.9.8.7", None, None]
    assert last_call(fake_multipass) == ["list", "--format", "json"]
    cheap = await client.list(ipv4=False)
    assert [i.ipv4 for i in cheap] == [[], [], []]
    assert last_call(fake_multipass) == ["list", "--format", "json", "--no-ipv4"]


async def test_list_falls_back_to_no_ipv4_when_one_ip_lookup_breaks_it(
    client: MultipassClient, fake_multipass: FakeMultipass
) -> None:
    fake_multipass.add("vm", "Running")
    fake_multipass.fail_next("list", "list failed: IP not available", exit_code=2)
    (vm,) = await client.list()
    assert (vm.name, vm.state, vm.ipv4) == ("vm", "Running", [])
    assert fake_multipass.calls()[-2:] == [["list", "--format", "json"], ["list", "--format", "json", "--no-ipv4"]]
    fake_multipass.set_daemon("down")
    with pytest.raises(MultipassError):
        await client.list()
    assert fake_multipass.calls()[-1] == ["list", "--format", "json"], "no retry when the daemon is down"


async def test_list_snapshots_and_snapshots_of(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("b", "Stopped", snapshots=[{"name": "one", "comment": "first"}, "two"])
    fake_multipass.add("a", "Stopped", snapshots=["x"])
    snaps = await client.list_snapshots()
    assert [(s.instance, s.name, s.parent, s.comment) for s in snaps] == [
        ("a", "x", "", ""),
        ("b", "one", "", "first"),
        ("b", "two", "one", ""),
    ]
    details = await client.snapshots_of("b")
    assert [(s.name, s.parent, s.children, s.cpu_count, s.disk_space) for s in details] == [
        ("one", "", ["two"], 1, "5.0GiB"),
        ("two", "one", [], 1, "5.0GiB"),
    ]
    assert await client.snapshots_of("a") != []


async def test_info_running_stopped_and_snapshot(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("run", "Running", cpus=2, memory="2G", disk="10G", memory_used=300 * 1024**2, disk_used=2 * 1024**3)
    fake_multipass.add("off", "Stopped", snapshots=["s1"])
    info = await client.info("run", "off")
    run, off = info["run"], info["off"]
    assert (run.cpu_count, run.memory_used, run.memory_total, run.disk_used, run.disk_total) == (
        2,
        300 * 1024**2,
        2 * 1024**3,
        2 * 1024**3,
        10 * 1024**3,
    )
    assert run.load and run.address and run.snapshot_count == 0
    assert (off.cpu_count, off.memory_total, off.load, off.snapshot_count) == (None, None, [], 1)
    everything = await client.info()
    assert list(everything) == ["off", "run"]
    snap = await client.info("off.s1")
    assert not snap["off"].has_details and list(snap["off"].snapshots) == ["s1"]
    cheap = await client.info("run", runtime=False)
    assert cheap["run"].cpu_count is None and "--no-runtime-information" in last_call(fake_multipass)


async def test_find(client: MultipassClient) -> None:
    images = await client.find()
    assert [image.name for image in images] == ["20.04", "22.04", "24.04"]
    assert images[2].aliases == ["noble", "lts"]


async def test_supports_clone(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    assert await client.supports_clone() is True
    fake_multipass.set_driver("lxd")
    assert await client.supports_clone() is False
    fake_multipass.set_driver("qemu")
    fake_multipass.set_version("1.14.1")
    assert await client.supports_clone() is False
    fake_multipass.set_version("1.17.0-dev.123+g9b0af2ec")
    assert await client.supports_clone() is True


# --------------------------------------------------------------------------- lifecycle


async def test_launch_passes_every_option_and_timeout(
    client: MultipassClient, fake_multipass: FakeMultipass, tmp_path: Path
) -> None:
    cloud = tmp_path / "cloud-init.yaml"
    cloud.write_text("#cloud-config\npackages: [git]\n")
    output = await client.launch("dev-1", image="24.04", cpus=2, memory="2G", disk="10G", cloud_init=cloud, timeout=600)
    assert output == "Launched: dev-1", "the spinner is stripped"
    assert last_call(fake_multipass) == [
        "launch", "24.04", "--name", "dev-1", "--cpus", "2", "--memory", "2G", "--disk", "10G",
        "--cloud-init", str(cloud), "--timeout", "600",
    ]  # fmt: skip
    record = fake_multipass.instance("dev-1")
    assert (record["state"], record["cpus"], record["image_release"]) == ("Running", 2, "24.04 LTS")
    assert record["cloud_init"]["path"] == str(cloud)
    await client.launch("dev-2")
    assert last_call(fake_multipass) == ["launch", "22.04", "--name", "dev-2", "--timeout", "1800"]


async def test_launch_failures(client: MultipassClient, fake_multipass: FakeMultipass, tmp_path: Path) -> None:
    fake_multipass.add("dev-1")
    with pytest.raises(MultipassError) as info:
        await client.launch("dev-1")
    assert info.value.kind is K.ALREADY_EXISTS and info.value.exit_code == 2
    assert info.value.message == 'multipass launch failed: instance "dev-1" already exists'
    calls_before = len(fake_multipass.calls())
    for bad in [
        dict(name="bad_name"),
        dict(name="ok", memory="64M"),
        dict(name="ok", disk="1X"),
        dict(name="ok", cpus=0),
        dict(name="ok", image="--snapshot"),
        dict(name="ok", cloud_init=tmp_path / "missing.yaml"),
    ]:
        with pytest.raises(ValidationError):
            await client.launch(**bad)  # type: ignore[arg-type]
    assert len(fake_multipass.calls()) == calls_before, "invalid input never reaches multipass"


@pytest.mark.parametrize(
    ("timeout", "problem"),
    [
        (float("nan"), "nan is not a finite number of seconds"),
        (float("inf"), "inf is not a finite number of seconds"),
        ("nan", "nan is not a finite number of seconds"),
        (-5, "-5 is less than 1 second"),
        (0.5, "0.5 is less than 1 second"),
        (0, "0 is less than 1 second"),
        (1e30, "1e+30 is more than multipass accepts (2147483647 s)"),
        ("٣", "'٣' is not a number of seconds"),
        ("soon", "'soon' is not a number of seconds"),
    ],
)
async def test_launch_and_start_refuse_a_timeout_multipass_cannot_take(
    client: MultipassClient, fake_multipass: FakeMultipass, timeout: object, problem: str
) -> None:
    """Before: nan/inf crashed in int(), -5 and 0.5 silently became 1, 1e30 was passed on."""
    fake_multipass.add("vm", "Stopped")
    calls_before = len(fake_multipass.calls())
    for call in (lambda: client.launch("ok", timeout=timeout), lambda: client.start("vm", timeout=timeout)):  # type: ignore[arg-type]
        with pytest.raises(ValidationError) as info:
            await call()
        assert info.value.message == f"--timeout: {problem}"
        assert info.value.hint and "1 or more" in info.value.hint
    assert len(fake_multipass.calls()) == calls_before, "a bad timeout never reaches multipass"


async def test_a_fractional_timeout_rounds_up_to_whole_seconds(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    await client.launch("dev-1", timeout=1.5)
    assert last_call(fake_multipass)[-2:] == ["--timeout", "2"]
    assert client.plan_launch("dev-2", timeout="600").argv[-2:] == ("--timeout", "600")


async def test_a_bad_launch_timeout_setting_is_named(fake_multipass: FakeMultipass) -> None:
    client = MultipassClient(fake_multipass.binary, launch_timeout=0.5)
    with pytest.raises(ValidationError) as info:
        await client.launch("dev-1")
    assert info.value.field == "multipass_launch_timeout"


async def test_resources_of_a_stopped_vm_come_from_get(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("vm", "Stopped", cpus=2, memory="4G", disk="20G")
    resources = await client.resources("vm")
    assert (resources.cpus, resources.memory, resources.disk) == (2, 4 * 1024**3, 20 * 1024**3)
    assert sorted(call for call in fake_multipass.calls() if call[0] == "get") == [
        ["get", "--raw", "local.vm.cpus"],
        ["get", "--raw", "local.vm.disk"],
        ["get", "--raw", "local.vm.memory"],
    ]
    with pytest.raises(MultipassError) as info:
        await client.resources("nope")
    assert info.value.kind is K.NOT_FOUND
    assert await client.get("local.bridged-network") == "", "--raw: an empty value is empty, not <empty>"
    with pytest.raises(ValidationError):
        await client.get("local.driver\n")


def test_run_shell_returns_the_inner_exit_code_and_raises_on_multipass_failures(
    client: MultipassClient, fake_multipass: FakeMultipass, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    fake_multipass.add("vm", "Running")
    fake_multipass.add("gone", "Deleted")
    fake_multipass.set_version("1.17.0-dev.1+g0")  # returns the inner shell's exit code
    monkeypatch.setenv("SHELL", "/bin/false")
    assert client.run_shell("vm") == 1, "the user's own exit code is no failure"
    with pytest.raises(MultipassError) as info:
        client.run_shell("gone")
    assert info.value.kind is K.NOT_FOUND and info.value.exit_code == 2
    assert 'instance "gone" is deleted' in info.value.message
    assert 'shell failed: The following errors occurred:\ninstance "gone" is deleted' in capfd.readouterr().err, (
        "multipass's stderr still reaches the terminal"
    )


async def test_launch_timeout_is_exit_5(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.set_delays(launch=30)
    with pytest.raises(MultipassError) as info:
        await client.launch("slow", timeout=1)
    assert info.value.kind is K.TIMED_OUT and info.value.exit_code == 5
    assert "Timed out waiting for instance launch" in info.value.message
    assert fake_multipass.shown_state("slow") == "Starting"


async def test_call_timeout_kills_a_hanging_multipass(fake_multipass: FakeMultipass) -> None:
    fake_multipass.set_delays(list=30)
    client = MultipassClient(fake_multipass.binary, timeout=0.5)
    with pytest.raises(MultipassError) as info:
        await client.list()
    assert info.value.kind is K.TIMED_OUT
    assert "did not answer within 0.5 s" in info.value.message


async def test_start_stop_suspend_restart(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("a", "Stopped")
    fake_multipass.add("b", "Stopped")
    await client.start("a", "b")
    assert last_call(fake_multipass) == ["start", "a", "b", "--timeout", "1800"]
    assert {i.name: i.state for i in await client.list()} == {"a": "Running", "b": "Running"}
    await client.suspend("a")
    assert fake_multipass.shown_state("a") == "Suspended"
    with pytest.raises(MultipassError) as info:
        await client.stop("a")
    assert info.value.kind is K.OTHER and "--force" in (info.value.hint or "")
    await client.stop("a", force=True)
    assert last_call(fake_multipass) == ["stop", "a", "--force"]
    assert fake_multipass.shown_state("a") == "Stopped"
    await client.restart("b")
    assert last_call(fake_multipass) == ["restart", "b", "--timeout", "1800"]
    await client.stop("b")
    assert fake_multipass.shown_state("b") == "Stopped"


async def test_lifecycle_not_found(client: MultipassClient) -> None:
    for call in (client.start, client.stop, client.suspend, client.restart, client.delete, client.recover):
        with pytest.raises(MultipassError) as info:
            await call("nope")
        assert info.value.kind is K.NOT_FOUND, call.__name__
        assert "nope" in info.value.message


async def test_delete_recover_purge(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("a", "Running")
    fake_multipass.add("b", "Stopped")
    await client.delete("a")
    assert {i.name: (i.state, i.ipv4) for i in await client.list()}["a"] == ("Deleted", [])
    with pytest.raises(MultipassError) as info:
        await client.start("a")
    assert info.value.kind is K.NOT_FOUND and "recover" in (info.value.hint or "")
    await client.recover("a")
    assert fake_multipass.shown_state("a") == "Stopped"
    await client.delete("a", "b")
    await client.purge()
    assert await client.list() == []
    fake_multipass.add("c", "Stopped")
    await client.delete("c", purge=True)
    assert last_call(fake_multipass) == ["delete", "c", "--purge"]
    assert await client.list() == []


async def test_snapshot_restore_clone(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("golden", "Running", cpus=2)
    with pytest.raises(MultipassError) as info:
        await client.snapshot("golden", "golden-image")
    assert info.value.kind is K.MUST_BE_STOPPED
    with pytest.raises(MultipassError) as info:
        await client.clone("golden", "dev-1")
    assert info.value.kind is K.MUST_BE_STOPPED
    await client.stop("golden")
    assert await client.snapshot("golden", "golden-image", comment="base image") == "golden-image"
    assert last_call(fake_multipass) == ["snapshot", "golden", "--name", "golden-image", "--comment", "base image"]
    assert await client.snapshot("golden") == "snapshot2", "multipass picks the name"
    with pytest.raises(MultipassError) as info:
        await client.snapshot("golden", "golden-image")
    assert info.value.kind is K.ALREADY_EXISTS
    await client.restore("golden", "golden-image")
    assert last_call(fake_multipass) == ["restore", "golden.golden-image", "--destructive"]
    with pytest.raises(MultipassError) as info:
        await client.restore("golden", "nope")
    assert info.value.kind is K.NOT_FOUND
    await client.clone("golden", "dev-1")
    assert last_call(fake_multipass) == ["clone", "golden", "--name", "dev-1"]
    assert fake_multipass.shown_state("dev-1") == "Stopped"
    with pytest.raises(MultipassError) as info:
        await client.clone("golden", "dev-1")
    assert info.value.kind is K.ALREADY_EXISTS
    await client.delete_snapshot("golden", "snapshot2")
    assert last_call(fake_multipass) == ["delete", "golden.snapshot2", "--purge"]
    assert [s.name for s in await client.list_snapshots()] == ["golden-image"]


async def test_clone_not_supported_on_lxd_and_old_multipass(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("golden", "Stopped")
    fake_multipass.set_driver("lxd")
    with pytest.raises(MultipassError) as info:
        await client.clone("golden", "dev-1")
    assert info.value.kind is K.NOT_SUPPORTED
    fake_multipass.set_driver("qemu")
    fake_multipass.set_version("1.14.1")
    with pytest.raises(MultipassError) as info:
        await client.clone("golden", "dev-1")
    assert info.value.kind is K.NOT_SUPPORTED


async def test_set_resource(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("vm", "Running")
    with pytest.raises(MultipassError) as info:
        await client.set_resource("vm", "cpus", 4)
    assert info.value.kind is K.MUST_BE_STOPPED
    await client.stop("vm")
    await client.set_resource("vm", "cpus", 4)
    await client.set_resource("vm", "memory", "2G")
    await client.set_resource("vm", "disk", "20G")
    assert last_call(fake_multipass) == ["set", "local.vm.disk=20G"]
    record = fake_multipass.instance("vm")
    assert (record["cpus"], record["memory"], record["disk"]) == (4, 2 * 1024**3, 20 * 1024**3)
    assert await client.get("local.vm.memory") == "2.0GiB"
    with pytest.raises(ValidationError):
        await client.set_resource("vm", "memory", "100M")


async def test_exec_runs_with_c_locale_and_no_tty(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("vm", "Running")
    result = await client.exec("vm", ["sh", "-c", 'echo "$LC_ALL"; if [ -t 0 ]; then echo tty; else echo notty; fi; exit 4'])
    assert result.returncode == 4, "the remote exit code is returned, not raised"
    assert result.stdout == "C\nnotty\n"
    assert last_call(fake_multipass)[:4] == ["exec", "vm", "--no-map-working-directory", "--"]
    with pytest.raises(MultipassError) as info:
        await client.exec("nope", ["true"])
    assert info.value.kind is K.NOT_FOUND


async def test_transfer(client: MultipassClient, fake_multipass: FakeMultipass, tmp_path: Path) -> None:
    fake_multipass.add("vm", "Running")
    source = tmp_path / "hello.txt"
    source.write_text("hi\n")
    await client.transfer(str(source), "vm:/home/ubuntu/hello.txt")
    result = await client.exec("vm", ["cat", "hello.txt"])
    assert result.stdout == "hi\n"
    back = tmp_path / "back.txt"
    await client.transfer("vm:/home/ubuntu/hello.txt", str(back))
    assert back.read_text() == "hi\n"
    with pytest.raises(ValidationError):
        await client.transfer("-rf", "vm:/x")


# --------------------------------------------------------------------------- failures of multipass itself


async def test_daemon_down_and_socket_denied(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.set_daemon("down")
    with pytest.raises(MultipassError) as info:
        await client.list()
    assert info.value.kind is K.DAEMON_UNREACHABLE and info.value.exit_code == 2
    assert "snap restart multipass" in (info.value.hint or "")
    with pytest.raises(MultipassError) as info:
        await client.exec("vm", ["true"])
    assert info.value.kind is K.DAEMON_UNREACHABLE
    fake_multipass.set_daemon("denied")
    with pytest.raises(MultipassError) as info:
        await client.info()
    assert info.value.kind is K.SOCKET_DENIED


async def test_missing_binary(tmp_path: Path) -> None:
    client = MultipassClient(str(tmp_path / "no-multipass"))
    with pytest.raises(MultipassError) as info:
        await client.list()
    assert info.value.kind is K.MISSING
    assert "snap install multipass" in (info.value.hint or "") and "brew" in (info.value.hint or "")


async def test_garbage_output_is_a_clear_error(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.fail_next("list", "", exit_code=0, stdout="Not JSON at all\n")
    with pytest.raises(MultipassError) as info:
        await client.list()
    assert info.value.kind is K.OTHER and "did not print JSON" in info.value.message


async def test_daemon_log_lines_on_stderr_do_not_fail_a_call(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    fake_multipass.add("vm")
    fake_multipass.fail_next(
        "list",
        "*** Warning! The lxd driver is deprecated\n",
        exit_code=0,
        stdout='{\n    "list": [\n    ]\n}\n',
    )
    assert await client.list() == []


# --------------------------------------------------------------------------- serialisation


async def test_mutating_calls_on_one_instance_are_serialised(client: MultipassClient, fake_multipass: FakeMultipass) -> None:
    """A snapshot asked for while a stop is still running waits for the stop (else: MUST_BE_STOPPED)."""
    fake_multipass.add("vm", "Running")
    fake_multipass.add("other", "Running")
    fake_multipass.set_delays(stop=0.6)
    stop = asyncio.create_task(client.stop("vm"))
    stop_other = asyncio.create_task(client.stop("other"))
    await asyncio.sleep(0)
    assert client.is_busy("vm") and client.is_busy("other"), "different instances do not wait for each other"
    snapshot = asyncio.create_task(client.snapshot("vm", "after-stop"))
    assert await snapshot == "after-stop"
    await asyncio.gather(stop, stop_other)
    assert not client.is_busy("vm")
    calls = [call[0] for call in fake_multipass.calls() if call[0] in ("stop", "snapshot")]
    assert calls.index("snapshot") == 2, calls

"""Golden image, provisioning and teardown end to end (the lab of fake VMs: tests/fakes/vm_lab.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess

import pytest

from devorch_tui.config import Settings
from devorch_tui.services import golden, templates
from devorch_tui.services.known_hosts import KnownHosts
from devorch_tui.services.provision import (
    ProvisionError,
    ProvisionRequest,
    StepFailed,
    provision_project,
    run_cleanup,
    teardown_project,
)
from devorch_tui.services.runs import StepEvent
from devorch_tui.services.sshkeys import generate_keypair
from tests.fakes.vm_lab import BASE_VM, GIT_EMAIL, GIT_NAME, Lab, dumb_http_git, log_text, step_states

pytestmark = pytest.mark.ssh


# --------------------------------------------------------------------------------------------- tests


async def test_base_image_then_three_parallel_projects_with_tasks_then_teardown(lab: Lab) -> None:
    built = await lab.build_golden()

    assert not built.reused
    assert step_states(lab.store, built.run_id, BASE_VM) == [
        ("render template", "ok"),
        ("remove old base VM", "skipped"),
        ("launch", "ok"),
        ("wait for cloud-init", "ok"),
        ("verify", "ok"),
        ("stop", "ok"),
        ("snapshot", "ok"),
    ]
    base_log = log_text(lab.store, built.run_id, BASE_VM)
    assert "Cloud-init v. 23.4.4 running 'modules:final'" in base_log  # the cloud-init log was streamed
    for check in ("git --version", "podman --version", "git user.name", "git user.email", "ssh login", "podman rootless", "ready marker"):
        assert f"ok   {check}:" in base_log
    sha = templates.render(lab.settings.workspace_paths, write=False).sha256
    base = lab.fake.instance(BASE_VM)
    assert base["state"] == "Stopped"
    assert base["snapshots"]["golden-image"]["comment"] == f"template=python sha256={sha}"
    assert base["cloud_init"]["sha256"] == sha  # launched with the rendered cloud-init
    status = await golden.golden_status(lab.settings, lab.client)
    assert status.ready and not status.stale and status.template == "python"

    again = await lab.build_golden()
    assert again.reused and again.run_id is None

    names = ["alpha", "beta", "gamma"]
    for name in names:
        lab.make_guest(f"dev-{name}")
    lab.fake.set_delays(start=5.0)  # a cloned VM takes its time to boot: the three boots must overlap
    tasks_file = lab.tmp / "setup.json"
    tasks_file.write_text(json.dumps({"name": "setup", "tasks": [{"name": "readme", "run": "cat ~/demo/README.md && git -C ~/demo log --format=%s"}]}))
    results = await asyncio.gather(
        *(
            provision_project(
                ProvisionRequest(name, f"file://{lab.repo}", branch="main", tasks_file=tasks_file, memory="1G" if name == "beta" else None),
                lab.settings,
                lab.client,
                lab.store,
            )
            for name in names
        )
    )

    for name, result in zip(names, results):
        vm = f"dev-{name}"
        assert result.vm_name == vm and result.cloned_from_golden
        assert (lab.guests[vm].home / "demo" / "README.md").read_text() == "demo project\n"
        states = dict(step_states(lab.store, result.run_id, vm))
        assert states["clone golden"] == "ok" and states["start"] == "ok" and states["clone repository"] == "ok"
        assert states["resize"] == ("ok" if name == "beta" else "skipped")
        tasks = lab.store.load(result.tasks_run_id)
        assert tasks.kind == "tasks" and tasks.status == "ok"
        assert "demo project" in log_text(lab.store, result.tasks_run_id, vm)
        assert lab.fake.instance(vm)["cloned_from"] == BASE_VM
    assert lab.fake.instance("dev-beta")["memory"] == 1024**3
    calls = lab.fake.calls()
    assert sum(1 for argv in calls if argv[:1] == ["clone"]) == 3
    # restored before every clone: multipass cannot tell whether the stopped golden VM was booted since
    assert sum(1 for argv in calls if argv[:1] == ["restore"]) == 3
    # the provisions ran side by side: the three boots (5 s each) overlap in time
    boots = []
    for name, result in zip(names, results):
        (start,) = [step for step in lab.store.load(result.run_id).target(f"dev-{name}").steps if step.name == "start"]
        boots.append((start.started.timestamp(), start.started.timestamp() + start.duration))
    assert all(duration >= 5.0 for duration in (end - begin for begin, end in boots))
    assert max(begin for begin, _ in boots) < min(end for _, end in boots), boots
    assert all(KnownHosts.from_settings(lab.settings).lookup(lab.guests[f"dev-{n}"].server.host, lab.port) for n in names)

    for name, result in zip(names, results):
        removed = await teardown_project(name, lab.settings, lab.client)
        assert removed.vm_name == f"dev-{name}" and removed.forgotten_keys >= 1
        assert f"dev-{name}" not in lab.fake.state()["instances"]
        assert not KnownHosts.from_settings(lab.settings).lookup(lab.guests[f"dev-{name}"].server.host, lab.port)
        assert lab.store.load(result.run_id).status == "ok"  # run logs are kept
    assert ["delete", "dev-alpha", "--purge"] in lab.fake.calls()


async def test_golden_restored_before_clone_when_it_changed(lab: Lab) -> None:
    lab.seed_golden()
    lab.fake.set_state(BASE_VM, "Running")  # someone started the golden VM since
    lab.make_guest("dev-one")
    result = await provision_project(ProvisionRequest("one", str(lab.repo)), lab.settings, lab.client, lab.store)
    assert dict(step_states(lab.store, result.run_id, "dev-one"))["restore golden"] == "ok"
    calls = lab.fake.calls()
    assert ["stop", BASE_VM] in calls
    assert ["restore", f"{BASE_VM}.golden-image", "--destructive"] in calls
    assert calls.index(["restore", f"{BASE_VM}.golden-image", "--destructive"]) < calls.index(["clone", BASE_VM, "--name", "dev-one"])


async def test_golden_started_and_stopped_outside_the_dashboard_is_restored_before_the_clone(lab: Lab) -> None:
    """`devorch-tui vm start golden; vm stop golden` (or plain multipass) between two looks of the
    dashboard: the VM is Stopped again and may have a changed disk. The clone must still be the image
    as built, so the golden VM is restored before every clone."""
    import os
    import sys

    lab.seed_golden()
    lab.make_guest("dev-after")
    for action in ("start", "stop"):
        done = subprocess.run([sys.executable, "-m", "devorch_tui", "vm", action, BASE_VM], env=dict(os.environ), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    assert lab.fake.shown_state(BASE_VM) == "Stopped"
    result = await provision_project(ProvisionRequest("after", f"file://{lab.repo}"), lab.settings, lab.client, lab.store)
    calls = lab.fake.calls()
    restore = ["restore", f"{BASE_VM}.golden-image", "--destructive"]
    assert calls.index(["stop", BASE_VM]) < calls.index(restore) < calls.index(["clone", BASE_VM, "--name", "dev-after"])
    assert lab.fake.instance(BASE_VM)["restored_from"] == "golden-image"
    assert "before every clone" in log_text(lab.store, result.run_id, "dev-after")


async def test_provision_started_during_the_golden_build_waits_for_it(lab: Lab) -> None:
    lab.make_guest("dev-early")
    lab.fake.set_delays(launch=3.0)
    events: list[StepEvent] = []
    lab.store.subscribe(lambda event: events.append(event) if isinstance(event, StepEvent) else None)
    build = asyncio.create_task(lab.build_golden())
    for _ in range(500):  # until the build holds the golden lock and is launching
        if any(event.step == "launch" and event.status == "running" for event in events):
            break
        await asyncio.sleep(0.02)
    result = await provision_project(ProvisionRequest("early", f"file://{lab.repo}"), lab.settings, lab.client, lab.store)
    built = await build
    assert not built.reused and built.status.ready
    states = dict(step_states(lab.store, result.run_id, "dev-early"))
    assert states["check"] == "ok" and states["clone golden"] == "ok" and states["clone repository"] == "ok"
    waiting = [event for event in events if event.target == "dev-early" and event.step == "check" and event.status == "running" and event.message]
    assert [event.message for event in waiting] == ["waiting for the golden image build"]
    assert "waiting for the golden image build" in log_text(lab.store, result.run_id, "dev-early")
    calls = lab.fake.calls()
    assert calls.index(next(argv for argv in calls if argv[:1] == ["snapshot"])) < calls.index(["clone", BASE_VM, "--name", "dev-early"])


async def test_cloud_init_error_fails_the_build_and_offers_cleanup(lab: Lab) -> None:
    (lab.golden_root / "fail-cloud-init").touch()
    with pytest.raises(StepFailed) as caught:
        await lab.build_golden()
    failure = caught.value
    assert failure.step == "wait for cloud-init"
    assert "cloud-init reported status 'error'" in failure.message
    assert "Failed to run module scripts_user" in failure.message
    assert [action.command for action in failure.cleanup] == [f"multipass delete --purge {BASE_VM}"]
    log = log_text(lab.store, failure.run_id, BASE_VM)
    assert "Failed running /var/lib/cloud/instance/scripts/runcmd" in log  # streamed from the guest's log
    assert dict(step_states(lab.store, failure.run_id, BASE_VM))["snapshot"] == "skipped"
    assert BASE_VM in lab.fake.state()["instances"]  # nothing deleted behind the user's back

    await run_cleanup(failure.cleanup)
    assert BASE_VM not in lab.fake.state()["instances"]


async def test_clone_unsupported_falls_back_to_launch_with_cloud_init(lab: Lab) -> None:
    lab.fake.set_version("1.14.1")
    lab.make_guest("dev-old")
    result = await provision_project(ProvisionRequest("old", f"file://{lab.repo}"), lab.settings, lab.client, lab.store)
    assert not result.cloned_from_golden
    assert any("Multipass client 1.14.1 cannot clone VMs (clone needs 1.15 or newer)" in note for note in result.workflow.notes)
    states = step_states(lab.store, result.run_id, "dev-old")
    assert [name for name, _ in states] == [
        "check",
        "render template",
        "launch with cloud-init",
        "wait for cloud-init",
        "wait for ssh",
        "clone repository",
        "setup tasks",
    ]
    assert "launching dev-old from cloud-init instead" in log_text(lab.store, result.run_id, "dev-old")
    instance = lab.fake.instance("dev-old")
    assert instance["cloud_init"]["sha256"] == templates.render(lab.settings.workspace_paths, write=False).sha256
    assert instance["cpus"] == 2 and instance["memory"] == 2 * 1024**3  # sizes from .env
    assert not any(argv[:1] == ["clone"] for argv in lab.fake.calls())
    assert (lab.guests["dev-old"].home / "demo" / "README.md").exists()


async def test_missing_local_repository_is_refused_before_a_vm_is_made(lab: Lab) -> None:
    lab.seed_golden()
    with pytest.raises(StepFailed) as caught:
        await provision_project(ProvisionRequest("bad", f"file://{lab.tmp}/missing.git"), lab.settings, lab.client, lab.store)
    failure = caught.value
    assert failure.step == "check"
    assert f"there is no folder {lab.tmp}/missing.git on this machine" in failure.message
    assert failure.cleanup == []
    assert not any(argv[:1] == ["clone"] for argv in lab.fake.calls())
    (lab.tmp / "plain").mkdir()
    with pytest.raises(StepFailed, match="is not a git repository"):
        await provision_project(ProvisionRequest("bad", str(lab.tmp / "plain")), lab.settings, lab.client, lab.store)
    with pytest.raises(StepFailed) as caught:
        await provision_project(ProvisionRequest("bad", str(lab.repo), branch="nope"), lab.settings, lab.client, lab.store)
    assert "has no branch or tag 'nope'" in caught.value.message and "its branches: main" in caught.value.hint
    assert not any(argv[:1] == ["clone"] for argv in lab.fake.calls())


async def test_local_repository_is_sent_into_the_vm_as_a_bundle(lab: Lab) -> None:
    """A checkout on this machine: the VM cannot see this machine's files (the lab's guests can, so
    the test checks that the clone came from the uploaded bundle, not from the host path)."""
    lab.seed_golden()
    guest = lab.make_guest("dev-local")
    checkout = lab.tmp / "my checkout"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(lab.tmp), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(["git", "clone", "-q", str(lab.repo), str(checkout)], check=True, env=env)
    subprocess.run(["git", "-C", str(checkout), "remote", "set-url", "origin", "https://bob:s3cret@git.example.org/team/demo.git"], check=True, env=env)
    subprocess.run(["git", "-C", str(checkout), "checkout", "-q", "-b", "feature"], check=True, env=env)
    (checkout / "feature.txt").write_text("feature work\n")
    subprocess.run(["git", "-C", str(checkout), "add", "feature.txt"], check=True, env=env)
    subprocess.run(["git", "-C", str(checkout), "commit", "-q", "-m", "feature"], check=True, env=env)
    (checkout / "README.md").write_text("edited, not committed\n")

    result = await provision_project(ProvisionRequest("local", str(checkout), branch="feature"), lab.settings, lab.client, lab.store)

    clone = guest.home / "project"  # "my checkout" is no directory name for the VM
    assert (clone / "feature.txt").read_text() == "feature work\n"
    assert (clone / "README.md").read_text() == "demo project\n"  # commits only
    origin = subprocess.run(["git", "-C", str(clone), "remote", "get-url", "origin"], capture_output=True, text=True, env=env)
    assert origin.stdout.strip() == "https://bob@git.example.org/team/demo.git"  # the checkout's origin, no password
    assert not list(guest.root.glob(".devorch-*.bundle"))  # the uploaded bundle was removed after the clone
    log = log_text(lab.store, result.run_id, "dev-local")
    assert "packed" in log and "git bundle" in log and "copying it into the VM over SSH" in log
    assert "has uncommitted changes: the VM gets its commits only" in log
    assert any("uncommitted changes" in note for note in result.workflow.notes)
    assert "s3cret" not in log


async def test_repository_over_http_is_cloned_in_the_vm(lab: Lab) -> None:
    """A URL clone for real: git's dumb HTTP protocol from a plain web server on a loopback address."""
    lab.seed_golden()
    guest = lab.make_guest("dev-web")
    with dumb_http_git(lab.repo, lab.tmp / "http", host="127.0.0.9") as url:
        with pytest.raises(StepFailed) as caught:  # a branch the server does not have: refused before a VM is made
            await provision_project(ProvisionRequest("web", url, branch="nope"), lab.settings, lab.client, lab.store)
        assert caught.value.step == "check" and f"{url} has no branch or tag 'nope'" in caught.value.message
        assert not any(argv[:1] == ["clone"] for argv in lab.fake.calls())

        result = await provision_project(ProvisionRequest("web", url, branch="main"), lab.settings, lab.client, lab.store)
        assert (guest.home / "demo" / "README.md").read_text() == "demo project\n"
        origin = subprocess.run(["git", "-C", str(guest.home / "demo"), "remote", "get-url", "origin"], capture_output=True, text=True)
        assert origin.stdout.strip() == url
        assert f"git clone {url} into ~/demo (branch main)" in log_text(lab.store, result.run_id, "dev-web")

        lab.make_guest("dev-gone")
        with pytest.raises(StepFailed) as caught:  # the server answers 404: a warning first, then git fails in the VM
            await provision_project(ProvisionRequest("gone", url.replace("demo.git", "gone.git")), lab.settings, lab.client, lab.store)
    failure = caught.value
    assert failure.step == "clone repository"
    assert "failed (exit 128): fatal: " in failure.message
    log = log_text(lab.store, failure.run_id, "dev-gone")
    assert "could not reach" in log and "from this machine" in log and "the VM tries anyway" in log
    (step,) = [step for step in lab.store.load(failure.run_id).target("dev-gone").steps if step.name == "clone repository"]
    assert step.exit_code == 128  # shown in the Exit column
    assert [action.command for action in failure.cleanup] == ["devorch-tui teardown gone --yes"]
    await run_cleanup(failure.cleanup)
    assert "dev-gone" not in lab.fake.state()["instances"]


async def test_a_disk_smaller_than_the_golden_image_is_refused_before_cloning(lab: Lab) -> None:
    lab.seed_golden()  # 10G
    with pytest.raises(StepFailed) as caught:
        await provision_project(ProvisionRequest("small", str(lab.repo), disk="5G"), lab.settings, lab.client, lab.store)
    assert caught.value.step == "check"
    assert "the disk size 5G is smaller than the golden image's disk (10.0GiB)" in caught.value.message
    assert "10.0GiB or more" in caught.value.hint
    assert not any(argv[:1] == ["clone"] for argv in lab.fake.calls())

    lab.make_guest("dev-same")
    result = await provision_project(ProvisionRequest("same", str(lab.repo), disk="10G"), lab.settings, lab.client, lab.store)
    assert dict(step_states(lab.store, result.run_id, "dev-same"))["resize"] == "skipped"  # 10G is the size already


async def test_name_taken_fails_before_anything_is_made(lab: Lab) -> None:
    lab.seed_golden()
    lab.fake.add("dev-taken", "Stopped")
    with pytest.raises(StepFailed) as caught:
        await provision_project(ProvisionRequest("taken", str(lab.repo)), lab.settings, lab.client, lab.store)
    failure = caught.value
    assert failure.step == "check"
    assert "a VM named dev-taken already exists (Stopped)" in failure.message
    assert failure.cleanup == []  # never offer to delete someone else's VM
    assert "teardown taken" in failure.hint
    assert not any(argv[:1] == ["clone"] for argv in lab.fake.calls())


async def test_same_name_twice_at_once_never_offers_to_delete_the_winner(lab: Lab) -> None:
    lab.seed_golden()
    lab.make_guest("dev-twin")
    outcomes = await asyncio.gather(
        *(provision_project(ProvisionRequest("twin", str(lab.repo)), lab.settings, lab.client, lab.store) for _ in range(2)),
        return_exceptions=True,
    )
    failures = [outcome for outcome in outcomes if isinstance(outcome, StepFailed)]
    assert len(failures) == 1 and len(outcomes) == 2
    assert "already exists" in failures[0].message
    assert failures[0].cleanup == []
    assert lab.fake.instance("dev-twin")


async def test_ssh_never_comes_up_times_out(lab: Lab) -> None:
    lab.seed_golden()
    lab.make_guest("dev-mute", start=False)  # the VM boots but its sshd never listens
    with pytest.raises(StepFailed) as caught:
        await provision_project(ProvisionRequest("mute", str(lab.repo), ssh_timeout=2.5), lab.settings, lab.client, lab.store)
    failure = caught.value
    assert failure.step == "wait for ssh"
    assert "SSH in dev-mute did not answer within 2.5 s" in failure.message
    assert "refused" in failure.message
    assert [action.command for action in failure.cleanup] == ["devorch-tui teardown mute --yes"]


async def test_provision_without_golden_image_says_how_to_build_it(lab: Lab) -> None:
    with pytest.raises(StepFailed) as caught:
        await provision_project(ProvisionRequest("x", str(lab.repo)), lab.settings, lab.client, lab.store)
    assert f"VM {BASE_VM} does not exist" in caught.value.message
    assert "base-image create" in caught.value.hint


async def test_stale_golden_image_is_flagged(lab: Lab) -> None:
    lab.seed_golden()
    env = lab.settings.workspace_paths.env_file
    env.write_text(env.read_text().replace(GIT_NAME, "Grace Hopper"))
    status = await golden.golden_status(lab.settings, lab.client)
    assert status.ready and status.stale
    assert "STALE" in status.summary


async def test_verify_alone_leaves_the_golden_vm_as_built(lab: Lab) -> None:
    lab.seed_golden()
    result = await golden.verify_base_image(lab.settings, lab.client, lab.store)
    assert step_states(lab.store, result.run_id, BASE_VM) == [
        ("start", "ok"),
        ("verify", "ok"),
        ("stop", "ok"),
        ("restore golden-image", "ok"),
    ]
    assert lab.fake.shown_state(BASE_VM) == "Stopped"
    assert lab.fake.calls()[-1] == ["restore", f"{BASE_VM}.golden-image", "--destructive"]


async def test_failed_check_is_named_and_the_golden_vm_put_back(lab: Lab) -> None:
    lab.seed_golden()
    (lab.guests[BASE_VM].home / ".gitconfig").write_text("[user]\n\tname = Someone Else\n\temail = ada@example.com\n")
    with pytest.raises(StepFailed) as caught:
        await golden.verify_base_image(lab.settings, lab.client, lab.store)
    failure = caught.value
    assert failure.step == "verify"
    assert "1 check(s) failed: git user.name" in failure.message
    log = log_text(lab.store, failure.run_id, BASE_VM)
    assert "FAIL git user.name: expected 'Ada Lovelace', found 'Someone Else'" in log
    assert "ok   ssh login:" in log
    assert f"putting {BASE_VM} back as it was (stop, restore golden-image)" in log
    assert lab.fake.shown_state(BASE_VM) == "Stopped"
    assert ["restore", f"{BASE_VM}.golden-image", "--destructive"] in lab.fake.calls()


async def test_no_golden_image_on_a_backend_without_snapshots(lab: Lab) -> None:
    lab.fake.set_driver("lxd")
    with pytest.raises(golden.GoldenImageError, match="no snapshots") as caught:
        await lab.build_golden()
    assert "launches each project VM from the rendered cloud-init" in caught.value.hint
    assert not any(argv[:1] == ["launch"] for argv in lab.fake.calls())

    lab.fake.add(BASE_VM, "Stopped")  # e.g. launched by hand: still no golden image on this backend
    status = await golden.golden_status(lab.settings, lab.client)
    assert not status.snapshots_supported and not status.ready
    assert "has no snapshots, so it keeps no golden image" in status.summary
    assert "launches each project VM from the rendered cloud-init" in status.summary
    assert "the build did not finish" not in status.summary

    lab.make_guest("dev-lxd")
    result = await provision_project(ProvisionRequest("lxd", f"file://{lab.repo}"), lab.settings, lab.client, lab.store)
    assert not result.cloned_from_golden
    assert any("the lxd backend of Multipass cannot clone VMs" in note for note in result.workflow.notes)


async def test_teardown_refuses_the_golden_vm_and_unknown_names(lab: Lab) -> None:
    lab.seed_golden()
    with pytest.raises(ProvisionError, match="golden base VM"):
        await teardown_project(BASE_VM, lab.settings, lab.client)
    with pytest.raises(ProvisionError, match="there is no project VM dev-nope"):
        await teardown_project("nope", lab.settings, lab.client)
    # A project name never falls back to a plain VM of that name: `teardown primary` must not purge `primary`.
    lab.fake.add("primary", "Running")
    with pytest.raises(ProvisionError, match="there is no project VM dev-primary") as refused:
        await teardown_project("primary", lab.settings, lab.client)
    assert "primary is not a project VM" in refused.value.hint and "vm delete --purge primary" in refused.value.hint
    assert "primary" in lab.fake.state()["instances"]
    # The dashboard's `T` names the selected VM itself (and asked for it by name): that one goes.
    removed = await teardown_project("primary", lab.settings, lab.client, exact=True)
    assert removed.vm_name == "primary" and "primary" not in lab.fake.state()["instances"]


def test_settings_point_at_the_shared_port(lab: Lab) -> None:
    assert isinstance(lab.settings, Settings) and lab.settings.ssh_port == lab.port


# ---------------------------------------------------------------------------------- headless CLI

UNREACHABLE_REPO = "http://127.0.0.1:9/r.git"  # loopback, nothing listens: the check from this machine only warns


@pytest.fixture
def cli_workspace(fake_multipass, settings: Settings):  # noqa: ANN001, ANN201
    """A rendered workspace (VM_NAME=golden-test) and the double; no sshd needed for these commands."""
    key = asyncio.run(generate_keypair(settings.paths.dedicated_key))
    workspace = settings.workspace_paths
    templates.init_workspace(workspace, "python")
    workspace.env_file.write_text(
        f'GIT_NAME="{GIT_NAME}"\nGIT_EMAIL={GIT_EMAIL}\nSSH_PUBLIC_KEY="{key.public_text.strip()}"\nVM_NAME={BASE_VM}\n'
    )
    return fake_multipass


def seed_cli_golden(fake, settings: Settings) -> str:  # noqa: ANN001
    rendered = templates.render(settings.workspace_paths, write=True)
    fake.add(BASE_VM, "Stopped", snapshots=[{"name": "golden-image", "comment": golden.golden_comment("python", rendered.sha256)}])
    return rendered.sha256


def test_cli_base_image_status(cli_workspace, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from devorch_tui.cli import main

    assert main(["base-image", "status"]) == 1
    assert f"no base image: VM {BASE_VM} does not exist" in capsys.readouterr().out

    sha = seed_cli_golden(cli_workspace, settings)
    assert main(["base-image", "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ready"] is True and data["stale"] is False
    assert data["sha256"] == data["current_sha256"] == sha and data["template"] == "python"

    env = settings.workspace_paths.env_file
    env.write_text(env.read_text().replace(GIT_NAME, "Grace Hopper"))
    assert main(["base-image", "status"]) == 0
    assert "is STALE" in capsys.readouterr().out


def test_cli_base_image_create_reuses_an_existing_image(cli_workspace, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from devorch_tui.cli import main

    seed_cli_golden(cli_workspace, settings)
    assert main(["base-image", "create"]) == 0
    out = capsys.readouterr().out
    assert "golden image reused" in out and "--rebuild" in out
    assert not any(argv[:1] == ["launch"] for argv in cli_workspace.calls())


def test_cli_teardown(cli_workspace, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from devorch_tui.cli import main

    cli_workspace.add("dev-web", "Running")
    assert main(["teardown", "web"]) == 1  # stdin is not a terminal: needs --yes
    err = capsys.readouterr().err
    assert "error: teardown deletes the VM of project web" in err and "devorch-tui teardown web --yes" in err
    assert "dev-web" in cli_workspace.state()["instances"]

    assert main(["teardown", "web", "--yes"]) == 0
    assert "dev-web deleted and purged" in capsys.readouterr().out
    assert "dev-web" not in cli_workspace.state()["instances"]

    assert main(["teardown", "web", "--yes"]) == 1
    assert "there is no project VM dev-web" in capsys.readouterr().err


def test_cli_provision_refuses_bad_input_before_making_anything(cli_workspace, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from devorch_tui.cli import main

    assert main(["provision", "demo", "git@github.com:org/demo.git"]) == 1
    err = capsys.readouterr().err
    assert "is cloned over SSH" in err and "--forward-agent" in err
    assert main(["provision", "demo", UNREACHABLE_REPO, "--disk", "lots"]) == 1
    assert "--disk" in capsys.readouterr().err
    assert cli_workspace.calls() == []


def test_cli_provision_name_taken_prints_the_failed_step(cli_workspace, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from devorch_tui.cli import main

    seed_cli_golden(cli_workspace, settings)
    cli_workspace.add("dev-taken", "Stopped")
    assert main(["provision", "taken", UNREACHABLE_REPO]) == 1
    captured = capsys.readouterr()
    assert "[dev-taken] check" in captured.out and "FAILED" in captured.out
    assert "[dev-taken] clone golden" in captured.out and "skipped" in captured.out
    assert "error: dev-taken: step 'check' failed: a VM named dev-taken already exists (Stopped)" in captured.err
    assert "dev-taken" in cli_workspace.state()["instances"]


def test_cli_ctrl_c_cancels_the_running_step_and_lists_cleanup(cli_workspace, settings: Settings) -> None:  # noqa: ANN001
    import os
    import signal
    import sys

    seed_cli_golden(cli_workspace, settings)
    cli_workspace.set_delays(start=120)  # the VM never finishes starting on its own
    proc = subprocess.Popen(
        [sys.executable, "-m", "devorch_tui", "provision", "slow", UNREACHABLE_REPO],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ),
    )
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("[dev-slow] start ") and line.rstrip().endswith(" running"):  # printed while the step runs
                break
        assert any("clone golden" in line and " ok " in line for line in seen), seen
        assert any("could not reach http://127.0.0.1:9/r.git from this machine" in line for line in seen), seen
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "[dev-slow] start" in out and "cancelled" in out
    assert "error: dev-slow: cancelled during step 'start'" in err
    assert "devorch-tui teardown slow --yes" in err
    assert "Traceback" not in err
    assert cli_workspace.instance("dev-slow")  # half made, listed, not deleted behind the user's back


async def test_ssh_repository_is_cloned_with_the_forwarded_agent_only_when_asked(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ssh:// repository the VM can reach only with the user's agent: the clone works over the
    forwarded agent; the guest itself holds no private key."""
    lab.seed_golden()
    guest = lab.make_guest("dev-priv")
    # The guest's ssh client keeps its known_hosts in the guest (never this machine's ~/.ssh).
    wrapper = guest.root / "bin" / "ssh"
    wrapper.write_text('#!/bin/sh\nexec /usr/bin/ssh -F /dev/null -o UserKnownHostsFile="$GUEST_ROOT/known_hosts" -o GlobalKnownHostsFile=/dev/null "$@"\n')
    wrapper.chmod(0o755)
    server = guest.server
    url = f"ssh://{server.user}@{server.host}:{server.port}{lab.repo}"  # the git server is the VM's own sshd

    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(ProvisionError, match="is cloned over SSH"):
        await provision_project(ProvisionRequest("priv", url), lab.settings, lab.client, lab.store)
    with pytest.raises(StepFailed) as caught:  # asked for, but there is no agent to forward
        await provision_project(ProvisionRequest("priv", url, forward_agent=True), lab.settings, lab.client, lab.store)
    assert caught.value.step == "clone repository" and "no ssh-agent is running" in caught.value.message
    await run_cleanup(caught.value.cleanup)

    socket_path = lab.tmp / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if socket_path.exists():
                break
            await asyncio.sleep(0.01)
        env = {"SSH_AUTH_SOCK": str(socket_path), "PATH": "/usr/bin:/bin"}
        subprocess.run(["ssh-add", "-q", str(lab.settings.paths.dedicated_key)], check=True, env=env, stderr=subprocess.DEVNULL)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        result = await provision_project(ProvisionRequest("priv", url, forward_agent=True), lab.settings, lab.client, lab.store)
    finally:
        agent.terminate()
        agent.wait(5)
    assert (guest.home / "demo" / "README.md").read_text() == "demo project\n"
    assert "SSH agent forwarding is on for this clone" in log_text(lab.store, result.run_id, "dev-priv")
    assert not list(guest.root.rglob("id_*"))  # no private key was copied into the VM


# ------------------------------------------------------------------------- questions on a terminal


def _in_a_terminal(argv: list[str], answer_with: bytes, until: bytes, timeout: float = 60.0) -> tuple[int, str, float]:
    """Run the CLI on a pseudo-terminal; once ``until`` is printed, type ``answer_with``. Returns
    the exit code, everything printed, and the seconds from typing to the exit."""
    import os
    import pty
    import select
    import sys
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI with the pty as its terminal
        os.execvpe(sys.executable, [sys.executable, "-m", "devorch_tui", *argv], dict(os.environ))
    output = b""
    typed_at: float | None = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if typed_at is None and until in output:
                typed_at = time.monotonic()
                os.write(fd, answer_with)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    assert typed_at is not None, output.decode(errors="replace")
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace"), time.monotonic() - typed_at


def test_ctrl_c_at_the_teardown_question_answers_no_at_once(cli_workspace, settings: Settings) -> None:  # noqa: ANN001
    cli_workspace.add("dev-web", "Running")
    code, out, took = _in_a_terminal(["teardown", "web"], b"\x03", b"[y/N] ")
    assert code == 130, out
    assert "nothing deleted" in out and took < 10
    assert "Traceback" not in out
    assert "dev-web" in cli_workspace.state()["instances"]


START_FAILS = "start failed: The following errors occurred:\ndev-mute: timed out waiting for response\n"


def test_ctrl_c_at_the_cleanup_question_answers_no_at_once(cli_workspace, settings: Settings) -> None:  # noqa: ANN001
    seed_cli_golden(cli_workspace, settings)
    cli_workspace.fail_next("start", START_FAILS)  # the clone exists, then its start fails: cleanup is offered
    code, out, took = _in_a_terminal(["provision", "mute", UNREACHABLE_REPO], b"\x03", b"Clean up now? [y/N] ")
    assert code == 130, out
    assert took < 10
    assert "step 'start' failed" in out and "devorch-tui teardown mute --yes" in out  # the cleanup is still listed
    assert "Traceback" not in out
    assert cli_workspace.instance("dev-mute")  # answered no: nothing deleted


def test_yes_at_the_cleanup_question_cleans_up(cli_workspace, settings: Settings) -> None:  # noqa: ANN001
    seed_cli_golden(cli_workspace, settings)
    cli_workspace.fail_next("start", START_FAILS)
    code, out, _ = _in_a_terminal(["provision", "mute", UNREACHABLE_REPO], b"y\n", b"Clean up now? [y/N] ")
    assert code == 2, out  # multipass's error
    assert "cleanup: delete the half-made VM dev-mute: done" in out
    assert "dev-mute" not in cli_workspace.state()["instances"]


def test_cli_rebuild_says_the_old_image_is_deleted_first(cli_workspace, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from devorch_tui.cli import main

    seed_cli_golden(cli_workspace, settings)
    cli_workspace.fail_next("launch", "launch failed: Remote \"\" is unknown or unreachable.\n", exit_code=2)
    assert main(["base-image", "create", "--rebuild"]) == 2
    out = capsys.readouterr().out
    warning = out.index(f"[{BASE_VM}] warning: --rebuild deletes the current base VM {BASE_VM} before building the new one")
    assert "there is no golden image until a build succeeds" in out
    assert warning < out.index(f"[{BASE_VM}] remove old base VM       ok")


def test_cli_base_image_status_on_a_backend_without_snapshots(cli_workspace, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from devorch_tui.cli import main

    cli_workspace.set_driver("lxd")
    cli_workspace.add(BASE_VM, "Stopped")
    assert main(["base-image", "status"]) == 1
    out = capsys.readouterr().out
    assert "this Multipass backend has no snapshots, so it keeps no golden image" in out
    assert "did not finish" not in out

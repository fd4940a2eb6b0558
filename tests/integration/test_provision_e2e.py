"""Golden image, provisioning and teardown end to end.

Multipass is the test double (``fake_multipass``); every VM is backed by a real OpenSSH sshd on its
own loopback address, all on one port (the ``ssh_port`` setting), so `multipass exec`, the SSH wait,
`git clone` and the task runs go over real SSH. What a VM's own operating system would do is played
by a small *guest* folder per VM: a home folder (HOME), a ``bin`` with stand-ins for ``cloud-init``
(writes its output log, answers ``status --wait``/``--long``) and ``podman``, and the files cloud-init
would have written (.gitconfig, the readiness marker). sshd puts each login in its guest through an
``authorized_keys`` forced command. A VM gets its backing the moment the step that creates it ends
(a run-event subscriber), as a booting VM's network comes up.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devorch_tui.config import Settings, load_settings
from devorch_tui.services import golden, templates
from devorch_tui.services.known_hosts import KnownHosts
from devorch_tui.services.multipass import MultipassClient
from devorch_tui.services.provision import (
    ProvisionError,
    ProvisionRequest,
    StepFailed,
    provision_project,
    run_cleanup,
    teardown_project,
)
from devorch_tui.services.runs import RunStore, StepEvent
from devorch_tui.services.sshkeys import generate_keypair

pytestmark = pytest.mark.ssh

GIT_NAME = "Ada Lovelace"
GIT_EMAIL = "ada@example.com"
BASE_VM = "golden-test"
CREATING_STEPS = ("launch", "clone golden", "launch with cloud-init")
# The cloud-init log as seen from inside a guest (a login's working folder is the guest's root).
GUEST_CLOUD_INIT_LOG = "var/log/cloud-init-output.log"

CLOUD_INIT_STUB = r"""#!/bin/sh
# Stand-in for cloud-init inside a guest: writes its output log, then reports the outcome.
log="$GUEST_ROOT/var/log/cloud-init-output.log"
mkdir -p "$GUEST_ROOT/var/log"
case "$*" in
  "status --wait")
    for step in "init-local" "init" "modules:config" "modules:final"; do
      echo "Cloud-init v. 23.4.4 running '$step'" >> "$log"
    done
    if [ -f "$GUEST_ROOT/fail-cloud-init" ]; then
      echo "2026-11-25 09:00:03 - util.py[WARNING]: Failed running /var/lib/cloud/instance/scripts/runcmd" >> "$log"
      echo "status: error"; exit 1
    fi
    mkdir -p "$GUEST_ROOT/var/lib/devorch"; touch "$GUEST_ROOT/var/lib/devorch/ready"
    echo "Cloud-init v. 23.4.4 finished. Datasource DataSourceNoCloud." >> "$log"
    echo "status: done"; exit 0 ;;
  "status --long")
    if [ -f "$GUEST_ROOT/fail-cloud-init" ]; then
      printf 'status: error\nextended_status: error - done\nerrors:\n\t- (scripts_user) Failed to run module scripts_user\n'; exit 1
    fi
    printf 'status: done\n'; exit 0 ;;
  *) echo "cloud-init stand-in: unsupported: $*" >&2; exit 2 ;;
esac
"""

PODMAN_STUB = r"""#!/bin/sh
# Stand-in for rootless podman inside a guest.
case "$1" in
  --version) echo "podman version 4.9.3" ;;
  info) echo "true" ;;
  *) echo "podman stand-in: unsupported: $*" >&2; exit 125 ;;
esac
"""


@dataclass
class Guest:
    vm: str
    root: Path
    server: object  # tests.fakes.sshd.SshServer

    @property
    def home(self) -> Path:
        return self.root / "home" / "ubuntu"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]


class Lab:
    """A workspace, a dedicated key, the double and one guest (sshd + folder) per VM name."""

    def __init__(self, tmp_path: Path, fake_multipass, make_server: Callable[[str], Any], setenv: Callable[[str, str], None]) -> None:  # noqa: ANN001
        self.tmp = tmp_path
        self.fake = fake_multipass
        self.make_server = make_server  # host -> SshServer, not started
        self.setenv = setenv
        self.port = _free_port()
        self.guests: dict[str, Guest] = {}
        self._next_host = 2
        setenv("DEVORCH_SSH_PORT", str(self.port))
        self.settings = load_settings()
        self.golden_root = tmp_path / "guests" / BASE_VM
        workspace = self.settings.workspace_paths
        templates.init_workspace(workspace, "python")
        manifest = workspace.templates_dir / "template.toml"
        text = manifest.read_text()
        start = text.index("verify = [")
        end = text.index("]", start) + 1
        text = text[:start] + 'verify = ["git --version", "podman --version"]' + text[end:]
        text = text.replace('ready_marker = "/var/lib/devorch/ready"', f'ready_marker = "{self.golden_root}/var/lib/devorch/ready"')
        manifest.write_text(text)

    async def setup(self) -> Lab:
        self.key = await generate_keypair(self.settings.paths.dedicated_key)
        workspace = self.settings.workspace_paths
        user = self.make_guest(BASE_VM).server.user
        self.setenv("DEVORCH_SSH_USER", user)
        self.settings = load_settings()
        workspace.env_file.write_text(
            f'GIT_NAME="{GIT_NAME}"\nGIT_EMAIL={GIT_EMAIL}\nSSH_PUBLIC_KEY="{self.key.public_text.strip()}"\n'
            f"VM_NAME={BASE_VM}\nVM_CPUS=2\nVM_MEMORY=2G\nVM_DISK=10G\nPYTHON_VERSION=3.12\n"
        )
        self.client = MultipassClient.from_settings(self.settings)
        self.store = RunStore.from_settings(self.settings)
        self.store.subscribe(self._on_event)
        self.repo = self._make_repo()
        return self

    def make_guest(self, vm: str, *, start: bool = True) -> Guest:
        root = self.tmp / "guests" / vm
        (root / "bin").mkdir(parents=True, exist_ok=True)
        home = root / "home" / "ubuntu"
        home.mkdir(parents=True, exist_ok=True)
        for name, body in (("cloud-init", CLOUD_INIT_STUB), ("podman", PODMAN_STUB)):
            stub = root / "bin" / name
            stub.write_text(body)
            stub.chmod(0o755)
        (home / ".profile").write_text(f'export PATH="{root}/bin:$PATH"\n')
        # What the template's runcmd writes for user ubuntu (a clone inherits it from the golden disk).
        (home / ".gitconfig").write_text(f"[user]\n\tname = {GIT_NAME}\n\temail = {GIT_EMAIL}\n")
        host = f"127.77.{len(self.guests) + 1}.{self._next_host}"
        server = self.make_server(host)
        server.port = self.port
        server._write_known_hosts()
        forced = (
            f'command="export GUEST_ROOT={root} HOME={home} PATH={root}/bin:$PATH; cd {root}; '
            'eval \\"${SSH_ORIGINAL_COMMAND:-exec sh}\\"" '
        )
        keys = [Path(f"{server.client_key}.pub").read_text().strip(), self.key.public_text.strip()]
        server.authorized_keys.write_text("".join(f"{forced}{key}\n" for key in keys))
        if start:
            server.start()
        guest = Guest(vm, root, server)
        self.guests[vm] = guest
        return guest

    def _on_event(self, event: object) -> None:
        if isinstance(event, StepEvent) and event.status == "ok" and event.step in CREATING_STEPS:
            guest = self.guests.get(event.target)
            if guest is not None:
                self.fake.back_with(event.target, guest.server)

    def _make_repo(self) -> Path:
        src = self.tmp / "repo-src"
        bare = self.tmp / "demo.git"
        src.mkdir()
        (src / "README.md").write_text("demo project\n")
        env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin", "HOME": str(self.tmp)}
        for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "README.md"], ["git", "commit", "-q", "-m", "init"]):
            subprocess.run(argv, cwd=src, check=True, env=env)
        subprocess.run(["git", "clone", "-q", "--bare", str(src), str(bare)], check=True, env=env)
        return bare

    async def build_golden(self) -> golden.BaseImageResult:
        return await golden.create_base_image(self.settings, self.client, self.store)

    def seed_golden(self) -> None:
        """A golden image as a finished build leaves it (for tests about what comes after)."""
        rendered = templates.render(self.settings.workspace_paths, write=True)
        comment = golden.golden_comment(rendered.template.name, rendered.sha256)
        self.fake.add(BASE_VM, "Stopped", cpus=2, memory="2G", disk="10G", snapshots=[{"name": golden.GOLDEN_SNAPSHOT, "comment": comment}])
        self.fake.back_with(BASE_VM, self.guests[BASE_VM].server)
        golden.mark_pristine(self.settings, BASE_VM, True)
        marker = self.golden_root / "var" / "lib" / "devorch" / "ready"  # cloud-init's last step wrote it
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()


@pytest.fixture
async def lab(tmp_path: Path, fake_multipass, sshd_factory, monkeypatch: pytest.MonkeyPatch) -> Lab:  # noqa: ANN001
    monkeypatch.setattr(golden, "CLOUD_INIT_LOG", GUEST_CLOUD_INIT_LOG)
    return await Lab(tmp_path, fake_multipass, lambda host: sshd_factory(host, start=False), monkeypatch.setenv).setup()


def log_text(store: RunStore, run_id: str, target: str) -> str:
    return "\n".join(store.read_log(run_id, target))


def step_states(store: RunStore, run_id: str, target: str) -> list[tuple[str, str]]:
    return [(step.name, step.status) for step in store.load(run_id).target(target).steps]


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
    assert sum(1 for argv in calls if argv[:1] == ["restore"]) == 0  # the golden VM never changed
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
    assert ["restore", f"{BASE_VM}.golden-image", "--destructive"] in calls
    assert calls.index(["restore", f"{BASE_VM}.golden-image", "--destructive"]) < calls.index(["clone", BASE_VM, "--name", "dev-one"])
    assert golden.is_pristine(lab.settings, BASE_VM)


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
    assert any("clone is not supported" in note for note in result.workflow.notes)
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
    assert "clone is not supported" in log_text(lab.store, result.run_id, "dev-old")
    instance = lab.fake.instance("dev-old")
    assert instance["cloud_init"]["sha256"] == templates.render(lab.settings.workspace_paths, write=False).sha256
    assert instance["cpus"] == 2 and instance["memory"] == 2 * 1024**3  # sizes from .env
    assert not any(argv[:1] == ["clone"] for argv in lab.fake.calls())
    assert (lab.guests["dev-old"].home / "demo" / "README.md").exists()


async def test_bad_repository_url_fails_the_clone_step(lab: Lab) -> None:
    lab.seed_golden()
    lab.make_guest("dev-bad")
    with pytest.raises(StepFailed) as caught:
        await provision_project(ProvisionRequest("bad", f"file://{lab.tmp}/missing.git"), lab.settings, lab.client, lab.store)
    failure = caught.value
    assert failure.step == "clone repository"
    assert "git clone of file://" in failure.message and "failed (exit 128): fatal: " in failure.message
    assert "does not appear to be a git repository" in failure.message
    assert [action.command for action in failure.cleanup] == ["devorch-tui teardown bad --yes"]
    assert "Please make sure you have the correct access rights" in log_text(lab.store, failure.run_id, "dev-bad")
    await run_cleanup(failure.cleanup)
    assert "dev-bad" not in lab.fake.state()["instances"]


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
    assert golden.is_pristine(lab.settings, BASE_VM)


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
    assert lab.fake.shown_state(BASE_VM) == "Stopped"
    assert golden.is_pristine(lab.settings, BASE_VM)


async def test_no_golden_image_on_a_backend_without_snapshots(lab: Lab) -> None:
    lab.fake.set_driver("lxd")
    with pytest.raises(golden.GoldenImageError, match="no snapshots") as caught:
        await lab.build_golden()
    assert "launches each project VM from the rendered cloud-init" in caught.value.hint
    assert not any(argv[:1] == ["launch"] for argv in lab.fake.calls())


async def test_teardown_refuses_the_golden_vm_and_unknown_names(lab: Lab) -> None:
    lab.seed_golden()
    with pytest.raises(ProvisionError, match="golden base VM"):
        await teardown_project(BASE_VM, lab.settings, lab.client)
    with pytest.raises(ProvisionError, match="there is no project VM dev-nope"):
        await teardown_project("nope", lab.settings, lab.client)


def test_settings_point_at_the_shared_port(lab: Lab) -> None:
    assert isinstance(lab.settings, Settings) and lab.settings.ssh_port == lab.port


# ---------------------------------------------------------------------------------- headless CLI


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
    assert main(["provision", "demo", "https://example.org/r.git", "--disk", "lots"]) == 1
    assert "--disk" in capsys.readouterr().err
    assert cli_workspace.calls() == []


def test_cli_provision_name_taken_prints_the_failed_step(cli_workspace, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from devorch_tui.cli import main

    seed_cli_golden(cli_workspace, settings)
    cli_workspace.add("dev-taken", "Stopped")
    assert main(["provision", "taken", "https://example.org/r.git"]) == 1
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
        [sys.executable, "-m", "devorch_tui", "provision", "slow", "https://example.org/r.git"],
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
            if line.startswith("[dev-slow] clone golden") and " ok " in line:
                break
        assert any("clone golden" in line for line in seen), seen
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


async def test_a_golden_vm_seen_running_is_no_longer_pristine(lab: Lab) -> None:
    lab.seed_golden()
    assert golden.is_pristine(lab.settings, BASE_VM)
    lab.fake.set_state(BASE_VM, "Running")
    await golden.golden_status(lab.settings, lab.client)
    lab.fake.set_state(BASE_VM, "Stopped")  # stopped again by hand: its disk may have changed
    assert not golden.is_pristine(lab.settings, BASE_VM)

"""A lab of fake VMs for golden image and provisioning tests (shared by the e2e and the pilot tests).

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

import contextlib
import functools
import http.server
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devorch_tui.config import load_settings
from devorch_tui.services import golden, templates
from devorch_tui.services.multipass import MultipassClient
from devorch_tui.services.runs import RunStore, StepEvent
from devorch_tui.services.sshkeys import generate_keypair

GIT_NAME = "Ada Lovelace"
GIT_EMAIL = "ada@example.com"
BASE_VM = "golden-test"
CREATING_STEPS = ("launch", "clone golden", "launch with cloud-init")
# The cloud-init log as seen from inside a guest (a login's working folder is the guest's root).
GUEST_CLOUD_INIT_LOG = "var/log/cloud-init-output.log"
SFTP_SERVER = next((path for path in ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/libexec/sftp-server") if Path(path).exists()), "/usr/lib/openssh/sftp-server")

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
        sock.bind(("127.0.0.1", 0))
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
        # sshd's SFTP subsystem (internal-sftp) arrives here as a forced command: serve it with the
        # sftp-server program, as an Ubuntu VM's sshd does.
        forced = (
            f'command="export GUEST_ROOT={root} HOME={home} PATH={root}/bin:$PATH; cd {root}; '
            f'[ \\"$SSH_ORIGINAL_COMMAND\\" = internal-sftp ] && exec {SFTP_SERVER}; '
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


@contextlib.contextmanager
def dumb_http_git(bare: Path, folder: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve a copy of the bare repository ``bare`` with git's dumb HTTP protocol (a plain static
    web server after `git update-server-info`) from ``folder`` on ``host``; yields its URL."""
    served = folder / bare.name
    shutil.copytree(bare, served)
    subprocess.run(["git", "-C", str(served), "update-server-info"], check=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}/{bare.name}"
    finally:
        server.shutdown()
        server.server_close()

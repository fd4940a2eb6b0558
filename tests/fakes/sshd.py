"""A real OpenSSH sshd on a loopback address, for SSH tests (fixtures ``sshd`` and ``sshd_factory``).

Each server gets a throwaway ed25519 host key, an authorized ed25519 client key, a random address in
127.0.0.0/8 and a free port, and runs ``sshd -D -e -f CONFIG`` as the current user (root on the CI
box) with UsePAM no and StrictModes no. Logins are for the current user with the client key only::

    async def test_x(sshd):
        settings = load_settings(ssh_key=sshd.client_key, ssh_user=sshd.user)
        target = Target(name=sshd.url, host=sshd.host, port=sshd.port, user=sshd.user)

``stop()`` ends the server gracefully; ``kill()`` SIGKILLs sshd and every process it started
(connections die mid-stream); ``start()`` starts it again on the same address, port and host key;
``new_host_key()`` replaces the host key (restart needed) to test host key changes;
``freeze_connections()`` SIGSTOPs the per-connection sshd processes (a peer gone silent, as when a VM
is paused or the network drops: keepalives go unanswered, while the commands they started keep running);
``processes(pattern)`` lists what runs on the server, read from /proc (independent of any SSH client).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
START_TIMEOUT = 10.0


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    path.chmod(0o600)


def _suppress_gone() -> contextlib.AbstractContextManager[None]:
    return contextlib.suppress(ProcessLookupError)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (read from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class SshServer:
    """One sshd process and its keys. ``host``/``port``/``user``/``client_key`` are what clients need."""

    def __init__(self, folder: Path, host: str | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.host = host or f"127.0.{random.randint(0, 254)}.{random.randint(2, 254)}"
        self.port = _free_port(self.host)
        self.user = getpass.getuser()
        self.host_key = folder / "ssh_host_ed25519_key"
        self.client_key = folder / "client_ed25519"
        self.authorized_keys = folder / "authorized_keys"
        self.config = folder / "sshd_config"
        self.log_path = folder / "sshd.log"
        self.known_hosts = folder / "known_hosts"  # the host key, for OpenSSH clients (`ssh -o UserKnownHostsFile=`)
        _keygen(self.host_key, "devorch-test-host")
        _keygen(self.client_key, "devorch-test-client")
        self.authorized_keys.write_text(Path(f"{self.client_key}.pub").read_text())
        self.authorized_keys.chmod(0o600)
        self._write_known_hosts()
        self.process: subprocess.Popen[bytes] | None = None
        self._log_handle = None

    # -- facts

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"

    @property
    def host_key_pub(self) -> str:
        """``ssh-ed25519 AAAA...`` (no comment)."""
        return " ".join(Path(f"{self.host_key}.pub").read_text().split()[:2])

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ssh_argv(self, *command: str) -> list[str]:
        """An OpenSSH client command line that logs into this server (for baselines and checks)."""
        return [
            "ssh", "-q", "-i", str(self.client_key), "-p", str(self.port),
            "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-F", "/dev/null",
            f"{self.user}@{self.host}", *command,
        ]  # fmt: skip

    def _write_known_hosts(self) -> None:
        self.known_hosts.write_text(f"[{self.host}]:{self.port} {self.host_key_pub}\n")

    def _write_config(self) -> None:
        self.config.write_text(
            "\n".join(
                [
                    f"ListenAddress {self.host}:{self.port}",
                    f"HostKey {self.host_key}",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin prohibit-password",
                    f"PidFile {self.folder / 'sshd.pid'}",
                    "LogLevel ERROR",
                    "MaxSessions 1000",
                    "MaxStartups 200",
                    "ClientAliveInterval 0",
                    # Debian's bash sources ~/.bashrc for `ssh host cmd` when SHLVL < 2; this box's root
                    # .bashrc runs `pyenv init` (~0.4 s) with no non-interactive guard. Real VM users'
                    # .bashrc returns early when non-interactive; SHLVL=1 gives the same here.
                    # DEVORCH_TEST_SSHD marks every process a login starts, so stop()/kill() can end
                    # the ones that outlived their connection (sshd orphans them to init).
                    f"SetEnv SHLVL=1 DEVORCH_TEST_SSHD={self.folder}",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )

    # -- lifecycle

    def start(self) -> SshServer:
        if self.running:
            return self
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation folder (Debian)
        self._write_config()
        self._log_handle = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=self._log_handle,
            start_new_session=True,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.process.returncode}: {self.log_path.read_text(errors='replace')}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"sshd did not answer on {self.host}:{self.port}: {self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        """Stop listening (SIGTERM) and end open connections."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL sshd and everything it started: open connections drop mid-stream."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                os.kill(pid, sig)
                os.kill(pid, signal.SIGCONT)  # a frozen process acts on the signal only once resumed
            except ProcessLookupError:
                pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.kill_orphans()
        self.process = None
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def kill_connections(self) -> None:
        """SIGKILL the per-connection sshd processes (and their commands); the listener stays up."""
        if self.process is None:
            return
        for pid in _children(self.process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.kill_orphans()

    def freeze_connections(self) -> list[int]:
        """SIGSTOP the sshd process of every open connection (not the commands it runs, not the
        listener); returns their pids. ``kill()`` ends them, ``thaw(pids)`` resumes them."""
        frozen: list[int] = []
        if self.process is None:
            return frozen
        for pid in _children(self.process.pid):
            try:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if name.startswith("sshd"):
                with _suppress_gone():
                    os.kill(pid, signal.SIGSTOP)
                    frozen.append(pid)
        return frozen

    def thaw(self, pids: list[int]) -> None:
        for pid in pids:
            with _suppress_gone():
                os.kill(pid, signal.SIGCONT)

    def processes(self, pattern: str) -> list[str]:
        """Command lines of the processes started by logins to this server that contain ``pattern``."""
        marker = f"DEVORCH_TEST_SSHD={self.folder}".encode()
        found: list[str] = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            if marker in environ.split(b"\0") and pattern in cmdline:
                found.append(cmdline)
        return found

    def kill_orphans(self) -> None:
        """SIGKILL every process started by a login to this server, even those left behind by a
        dropped connection (found by the DEVORCH_TEST_SSHD variable in their environment)."""
        marker = f"DEVORCH_TEST_SSHD={self.folder}".encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def new_host_key(self) -> None:
        """Replace the host key (takes effect on the next start)."""
        for path in (self.host_key, Path(f"{self.host_key}.pub")):
            path.unlink(missing_ok=True)
        _keygen(self.host_key, "devorch-test-host-2")
        self._write_known_hosts()

    def restart(self) -> SshServer:
        self.stop()
        return self.start()


@pytest.fixture
def sshd_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """``sshd_factory()`` starts another server (each with its own address, port and keys)."""
    servers: list[SshServer] = []

    def make(host: str | None = None, *, start: bool = True) -> SshServer:
        server = SshServer(tmp_path_factory.mktemp("sshd"), host)
        servers.append(server)
        return server.start() if start else server

    yield make
    for server in servers:
        server.kill()


@pytest.fixture
def sshd(sshd_factory) -> SshServer:  # noqa: ANN001
    """One running sshd on a loopback address."""
    return sshd_factory()

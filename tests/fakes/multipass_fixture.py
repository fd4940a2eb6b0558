"""The `fake_multipass` pytest fixture and its controller.

The fixture points DEVORCH_MULTIPASS_BIN at the executable double ``tests/fakes/multipass`` and
FAKE_MULTIPASS_STATE at a fresh state file, so the app and the CLI run their production code path
against it. The controller seeds and inspects the state::

    def test_x(fake_multipass):
        fake_multipass.add("dev-1", state="Running", release="24.04")
        fake_multipass.set_delays(start=0.5)
        fake_multipass.fail_next("list", 'list failed: cannot connect to the multipass socket', exit_code=2)
        assert fake_multipass.state()["instances"]["dev-1"]["state"] == "Running"

``FakeMultipass`` works without pytest too (the screenshot script uses it): build one with a state
path and pass ``fm.env`` to the process you start.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_multipass_state import (
    STATE_ENV,
    StateStore,
    add_snapshot,
    current_ipv4,
    new_instance,
    shown_state,
)

DOUBLE = Path(__file__).resolve().with_name("multipass")
DELAY_KEYS = ("prepare", "launch", "start", "stop", "suspend", "restart", "delete")


class FakeMultipass:
    """Controller of the multipass double's state file."""

    def __init__(self, state_path: str | os.PathLike[str]) -> None:
        self.state_path = Path(state_path)
        self.store = StateStore(self.state_path)
        self.binary = str(self._write_launcher())
        with self.store.locked():
            pass  # create the state file (and its folder) with defaults

    # -------------------------------------------------------------- environment

    def _write_launcher(self) -> Path:
        """A ``multipass`` launcher that runs the double with this interpreter and ``-S``.

        Same program, same argv; it only skips `env python3` (a pyenv shim costs ~150 ms a call)
        and site-packages (the double is stdlib only), so a call takes ~40 ms instead of ~270 ms.
        """
        executable = sys.executable
        if not executable or " " in executable or len(executable) > 120:
            return DOUBLE
        launcher = self.state_path.parent / "bin" / "multipass"
        launcher.parent.mkdir(parents=True, exist_ok=True)
        launcher.write_text(
            f"#!{executable} -S\n"
            "import runpy, sys\n"
            f"sys.argv[0] = {str(DOUBLE)!r}\n"
            "runpy.run_path(sys.argv[0], run_name='__main__')\n",
            encoding="utf-8",
        )
        launcher.chmod(0o755)
        return launcher

    @property
    def env(self) -> dict[str, str]:
        """Variables a child process needs to use the double (for subprocesses, tmux, scripts)."""
        return {"DEVORCH_MULTIPASS_BIN": self.binary, STATE_ENV: str(self.state_path)}

    # -------------------------------------------------------------- instances

    def add(
        self,
        name: str,
        state: str = "Running",
        *,
        ipv4: list[str] | None = None,
        release: str = "22.04",
        cpus: int = 1,
        memory: int | str = "1G",
        disk: int | str = "5G",
        snapshots: Any = (),
        load: list[float] | None = None,
        memory_used: int | None = None,
        disk_used: int | None = None,
        mounts: dict[str, Any] | None = None,
        image_hash: str | None = None,
        os_release: str | None = None,
        zone: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add (or replace) an instance. ``ipv4`` is shown only while it runs (default: a 10.x address).

        ``release`` is an image alias (``22.04``, ``noble``) or a title (``16.04 LTS``);
        ``snapshots`` is a list of names or dicts ``{"name", "comment", "parent"}``; ``os_release``
        is the guest's PRETTY_NAME `info` shows while running; ``zone`` ({"name", "available"}) is
        printed in 1.17 style only.
        """
        record = new_instance(
            name,
            state=state,
            release=release,
            cpus=cpus,
            memory=memory,
            disk=disk,
            snapshots=snapshots,
            ipv4=ipv4,
            load=load,
            memory_used=memory_used,
            disk_used=disk_used,
            mounts=mounts,
            image_hash=image_hash,
            os_release=os_release,
            zone=zone,
        )
        with self.store.locked() as data:
            data["instances"][name] = record
        return record

    def remove(self, name: str) -> None:
        with self.store.locked() as data:
            data["instances"].pop(name, None)

    def set_state(self, name: str, state: str) -> None:
        """Put an instance in a state at once (cancels a pending transition)."""
        with self.store.locked() as data:
            record = data["instances"][name]
            record["state"] = state
            record["pending"] = None

    def add_snapshot(self, name: str, snapshot: str | None = None, *, comment: str = "", parent: str | None = None) -> str:
        with self.store.locked() as data:
            return add_snapshot(data["instances"][name], snapshot, comment=comment, parent=parent)

    def back_with(
        self,
        name: str,
        host: Any,
        port: int | None = None,
        user: str | None = None,
        key_path: str | os.PathLike[str] | None = None,
        *,
        known_hosts: str | os.PathLike[str] | None = None,
    ) -> None:
        """Back an instance with a real sshd: its IPv4 becomes ``host`` and `exec`/`shell`/`transfer`
        run over OpenSSH to ``user@host:port`` with ``key_path``.

        ``host`` may also be an sshd fixture server object (``.host``, ``.port``, ``.user``,
        ``.client_key``); the other arguments then default to its values.
        """
        if not isinstance(host, str):
            server = host
            host = server.host
            port = port if port is not None else server.port
            user = user if user is not None else server.user
            key_path = key_path if key_path is not None else server.client_key
            known_hosts = known_hosts if known_hosts is not None else getattr(server, "known_hosts", None)
        with self.store.locked() as data:
            data["instances"][name]["backing"] = {
                "ipv4": str(host),
                "port": int(port or 22),
                "user": user or "ubuntu",
                "key": str(key_path) if key_path else None,
                "known_hosts": str(known_hosts) if known_hosts else None,
            }

    # -------------------------------------------------------------- daemon behaviour

    def set_daemon(self, status: str) -> None:
        """``up``, ``down`` (cannot connect to the socket) or ``denied`` (socket access denied)."""
        if status not in ("up", "down", "denied"):
            raise ValueError("daemon status is 'up', 'down' or 'denied'")
        with self.store.locked() as data:
            data["daemon"] = status

    def set_delays(self, **delays: float) -> None:
        """Seconds a transition takes: launch, start, stop, suspend, restart, delete; ``prepare``
        is how long a launched instance stays unlisted first (its image being fetched; a second
        launch of the name then fails with "is being prepared").

        During the delay other calls see the intermediate state (Starting, Suspending, Restarting;
        a stopping instance keeps showing Running, as multipass has no "Stopping" state) and the
        mutating call blocks until it is done. Any other command name (``list=5``) makes that
        command answer so many seconds late, to test timeouts.
        """
        with self.store.locked() as data:
            data["delays"].update({key: float(value) for key, value in delays.items()})

    def fail_next(self, command: str, stderr: str, exit_code: int = 2, *, times: int = 1, stdout: str = "") -> None:
        """Make the next ``times`` calls of ``command`` fail with this stderr and exit code (-1 times = always)."""
        if stderr and not stderr.endswith("\n"):
            stderr += "\n"
        with self.store.locked() as data:
            data["failures"].append(
                {"command": command, "stderr": stderr, "stdout": stdout, "exit_code": exit_code, "times": times}
            )

    def clear_failures(self) -> None:
        with self.store.locked() as data:
            data["failures"] = []

    def set_version(self, client: str, daemon: str | None = None, *, update: dict[str, str] | None = None) -> None:
        """Client/daemon version strings (``1.17.0-dev`` switches to 1.17 JSON; < 1.15 has no clone)."""
        with self.store.locked() as data:
            data["version"] = client
            data["daemon_version"] = daemon or client
            data["update"] = update

    def set_json_style(self, style: str | None) -> None:
        """Force ``"1.16"`` (sorted keys) or ``"1.17"`` (insertion order + zone) JSON; None = from the version."""
        with self.store.locked() as data:
            data["json_style"] = style

    def set_driver(self, driver: str) -> None:
        """``qemu`` (default) or ``lxd`` / ``libvirt`` (no snapshots, no clone)."""
        with self.store.locked() as data:
            data["driver"] = driver

    # -------------------------------------------------------------- inspection

    def state(self) -> dict[str, Any]:
        """The whole state (transitions whose delay has passed are settled)."""
        return self.store.read()

    def instance(self, name: str) -> dict[str, Any]:
        return self.state()["instances"][name]

    def shown_state(self, name: str) -> str:
        """The state string `multipass list` prints for ``name`` right now."""
        return shown_state(self.instance(name))

    def ipv4(self, name: str) -> list[str]:
        return current_ipv4(name, self.instance(name))

    def calls(self) -> list[list[str]]:
        """Every argv the double was called with, oldest first."""
        return self.store.calls()

    def dump(self) -> str:
        return json.dumps(self.state(), indent=2, sort_keys=True)


@pytest.fixture
def fake_multipass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeMultipass:
    """A fresh multipass double (daemon up, no instances) that the app and CLI use via DEVORCH_MULTIPASS_BIN."""
    fake = FakeMultipass(tmp_path / "fake-multipass" / "state.json")
    for key, value in fake.env.items():
        monkeypatch.setenv(key, value)
    return fake

"""The Host pane driven through the real app: checks on start, re-check, install confirm, key."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from devorch_tui.config import Settings
from devorch_tui.services import host
from devorch_tui.services.host import GiB, HostFacts, MultipassFacts
from devorch_tui.ui.app import DevorchApp
from devorch_tui.ui.screens.confirm import ConfirmScreen
from tests.pilot.waiting import wait_until

MISSING_MULTIPASS = HostFacts(
    system="Linux",
    release="6.8.0",
    machine="x86_64",
    user="dev",
    multipass=MultipassFacts(),
    kvm_present=True,
    kvm_accessible=True,
    memory_bytes=32 * GiB,
    disk_path=Path("/home/dev/.local/share/devorch-tui"),
    disk_free_bytes=200 * GiB,
    ssh_path="/usr/bin/ssh",
    ssh_keygen_path="/usr/bin/ssh-keygen",
    key_path=Path("/home/dev/.local/share/devorch-tui/ssh/id_ed25519"),
    snap_path="/usr/bin/snap",
)
READY = replace(
    MISSING_MULTIPASS,
    multipass=MultipassFacts(path="/snap/bin/multipass", client_version="1.16.3", daemon_version="1.16.3"),
)


class Probe:
    """A host probe that returns the given facts in turn (the last one forever) and counts calls."""

    def __init__(self, *facts: HostFacts) -> None:
        self.facts = list(facts)
        self.calls = 0

    async def __call__(self, settings: Settings) -> HostFacts:
        self.calls += 1
        return self.facts[min(self.calls, len(self.facts)) - 1]


async def settle(pilot: Pilot) -> None:
    """Wait for the Host pane's own workers (checks, key) and the screen update that follows."""
    pane = pilot.app.query_one("#host")
    await pilot.app.workers.wait_for_complete([worker for worker in pilot.app.workers if worker.node is pane])
    await pilot.pause()


def status_of(app: DevorchApp, check_id: str) -> str:
    cell = app.query_one("#host-checks", DataTable).get_cell(check_id, "status")
    assert isinstance(cell, Text)
    return cell.plain


def summary(app: DevorchApp) -> str:
    return str(app.query_one("#host-summary", Static).render())


@pytest.fixture
def no_terminal_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    runs: list[tuple[str, ...]] = []

    def record(argv: tuple[str, ...]) -> int:
        runs.append(tuple(argv))
        return 0

    monkeypatch.setattr(host, "run_in_terminal", record)
    return runs


async def test_checks_run_on_start_and_show_status_detail_and_fix(settings: Settings) -> None:
    probe = Probe(MISSING_MULTIPASS)
    app = DevorchApp(settings, host_probe=probe)
    async with app.run_test(size=(150, 40)) as pilot:
        await settle(pilot)
        table = app.query_one("#host-checks", DataTable)
        assert probe.calls == 1
        assert [key.value for key in table.rows] == [item.id for item in host.judge(MISSING_MULTIPASS)]
        assert status_of(app, "multipass") == "✖ FAIL"
        assert status_of(app, "os") == "✔ ok"
        # The pane names its own key for the fix it can run; the command is shown with it.
        assert table.get_cell("multipass", "fix").plain == "press i: sudo snap install multipass"
        assert "2 requirements not met" in summary(app)
        assert "i installs multipass" in summary(app)
        # The panel under the table shows the highlighted check in full.
        table.focus()
        await pilot.press("down")
        await pilot.pause()
        panel = str(app.query_one("#host-fix", Static).render())
        assert "Multipass installed: multipass is not on PATH" in panel
        assert "Fix: press i: sudo snap install multipass" in panel


async def test_r_rechecks_and_updates_rows_in_place(settings: Settings) -> None:
    probe = Probe(MISSING_MULTIPASS, READY)
    app = DevorchApp(settings, host_probe=probe)
    async with app.run_test(size=(150, 40)) as pilot:
        await settle(pilot)
        table = app.query_one("#host-checks", DataTable)
        table.focus()
        first_keys = list(table.rows)
        await pilot.press("r")
        await settle(pilot)
        assert probe.calls == 2
        assert list(table.rows) == first_keys  # same rows, updated cells
        assert status_of(app, "multipass") == "✔ ok"
        assert status_of(app, "daemon") == "✔ ok"
        assert table.get_cell("multipass", "fix").plain == ""
        assert "Ready: every requirement is met" in summary(app)


async def test_install_confirm_cancel_runs_nothing(settings: Settings, no_terminal_runs: list[tuple[str, ...]]) -> None:
    app = DevorchApp(settings, host_probe=Probe(MISSING_MULTIPASS))
    async with app.run_test(size=(150, 40)) as pilot:
        await settle(pilot)
        app.query_one("#host-checks", DataTable).focus()
        await pilot.press("i")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "sudo snap install multipass" in str(app.screen.query_one("#confirm-message", Static).render())
        await pilot.press("enter")  # Cancel has the focus
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert no_terminal_runs == []
        assert any("Nothing was installed" in n.message for n in app._notifications)


async def test_install_confirmed_without_a_real_terminal_explains_setup(
    settings: Settings, no_terminal_runs: list[tuple[str, ...]]
) -> None:
    app = DevorchApp(settings, host_probe=Probe(MISSING_MULTIPASS))
    async with app.run_test(size=(150, 40)) as pilot:
        await settle(pilot)
        app.query_one("#host-checks", DataTable).focus()
        await pilot.press("i")
        await pilot.pause()
        await pilot.click("#confirm")
        await pilot.pause()
        # The headless test driver cannot hand the terminal over: a clear message, nothing run.
        assert no_terminal_runs == []
        messages = [n.message for n in app._notifications]
        assert any("devorch-tui setup" in message for message in messages)


@pytest.mark.parametrize(
    ("after", "expected", "severity"),
    [
        (READY, "multipass 1.16.3 is installed and its daemon answers", "information"),
        (replace(READY, multipass=replace(READY.multipass, daemon_version=None, daemon_problem="down")), "still not ready", "warning"),
    ],
)
async def test_install_reports_what_the_recheck_found_not_the_installers_exit_code(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, after: HostFacts, expected: str, severity: str
) -> None:
    import contextlib

    from devorch_tui.ui.panes import host as host_pane

    ran: list[str] = []
    monkeypatch.setattr(host_pane, "_run_visibly", lambda plan: ran.append(plan.command) or 0)
    probe = Probe(MISSING_MULTIPASS, after)
    app = DevorchApp(settings, host_probe=probe)
    async with app.run_test(size=(150, 40)) as pilot:
        monkeypatch.setattr(app, "suspend", contextlib.nullcontext)
        await settle(pilot)
        app.query_one("#host-checks", DataTable).focus()
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the install question")
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: probe.calls == 2 and any(expected in n.message for n in app._notifications), "the re-check report")
        assert ran == ["sudo snap install multipass"]
        report = next(n for n in app._notifications if expected in n.message)
        assert report.severity == severity
        assert not any("multipass is installed;" in n.message for n in app._notifications)


async def test_k_with_a_damaged_public_key_names_the_file_and_the_fix(settings: Settings) -> None:
    private = settings.paths.dedicated_key
    private.parent.mkdir(parents=True)
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n")
    private.chmod(0o600)
    Path(f"{private}.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n")
    app = DevorchApp(settings, host_probe=Probe(READY))
    async with app.run_test(size=(150, 40)) as pilot:
        await settle(pilot)
        app.query_one("#host-checks", DataTable).focus()
        await pilot.press("k")
        await wait_until(pilot, lambda: any(f"{private}.pub" in n.message for n in app._notifications), "the key error")
        message = next(n.message for n in app._notifications if f"{private}.pub" in n.message)
        assert "only the key type" in message and "ssh-keygen -y -f" in message
        assert app.is_running


async def test_install_when_multipass_is_installed_asks_nothing(settings: Settings) -> None:
    app = DevorchApp(settings, host_probe=Probe(READY))
    async with app.run_test(size=(150, 40)) as pilot:
        await settle(pilot)
        await app.run_pane_action("host", "install")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("already installed" in n.message for n in app._notifications)


async def test_k_creates_the_dedicated_key_and_rechecks(settings: Settings) -> None:
    probe = Probe(READY)
    app = DevorchApp(settings, host_probe=probe)
    private = settings.paths.dedicated_key
    async with app.run_test(size=(150, 40)) as pilot:
        await settle(pilot)
        app.query_one("#host-checks", DataTable).focus()
        await pilot.press("k")
        await settle(pilot)
        assert private.is_file()
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        assert Path(f"{private}.pub").read_text().startswith("ssh-ed25519 ")
        assert probe.calls == 2
        assert any(f"{private}.pub" in n.message for n in app._notifications)


async def test_a_failing_probe_keeps_the_app_running(settings: Settings) -> None:
    async def broken(settings: Settings) -> HostFacts:
        raise RuntimeError("boom")

    app = DevorchApp(settings, host_probe=broken)
    async with app.run_test(size=(150, 40)) as pilot:
        await settle(pilot)
        assert "could not run" in summary(app)
        assert any("boom" in n.message for n in app._notifications)
        assert app.is_running


async def test_app_opens_with_the_real_probe_when_multipass_is_missing(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVORCH_MULTIPASS_BIN", str(tmp_path / "no-multipass"))
    app = DevorchApp(Settings())
    async with app.run_test(size=(150, 40)) as pilot:
        await settle(pilot)
        assert status_of(app, "multipass") == "✖ FAIL"
        assert status_of(app, "daemon") == "✖ FAIL"
        assert status_of(app, "ssh_key") == "✖ FAIL"
        assert app.query_one("#host-checks", DataTable).get_cell("ssh_key", "fix").plain == "press k to create it"


async def test_palette_lists_the_host_actions(settings: Settings) -> None:
    app = DevorchApp(settings, host_probe=Probe(READY))
    async with app.run_test(size=(150, 40)) as pilot:
        await settle(pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Host: Re-check", "Host: Install multipass", "Host: Create SSH key"} <= titles


async def test_columns_fit_the_pane_and_follow_resizes(settings: Settings) -> None:
    long_fix = replace(MISSING_MULTIPASS, snap_path=None)  # the "install snapd first" note is long
    app = DevorchApp(settings, host_probe=Probe(long_fix))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        table = app.query_one("#host-checks", DataTable)
        table.focus()
        await pilot.press("down", "down")
        narrow = table.get_cell("multipass", "fix").plain
        assert narrow.endswith("…")
        assert table.virtual_size.width <= app.query_one("#host").size.width
        await pilot.resize_terminal(160, 30)
        await pilot.pause()
        wide = table.get_cell("multipass", "fix").plain
        assert len(wide) > len(narrow)
        assert table.virtual_size.width <= app.query_one("#host").size.width
        assert table.cursor_row == 2  # the cursor stays on the same check
        panel = str(app.query_one("#host-fix", Static).render())
        assert "Multipass daemon" in panel

"""The VMs pane driven with the Pilot against the multipass double (the production code path)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, TabbedContent

from devorch_tui.config import load_settings
from devorch_tui.ui.app import DevorchApp
from devorch_tui.ui.panes.vms import VMsPane
from devorch_tui.ui.screens.clone_form import CloneForm, suggest_clone_name
from devorch_tui.ui.screens.confirm import ConfirmScreen
from devorch_tui.ui.screens.launch_form import LaunchForm
from devorch_tui.ui.screens.restore_picker import RestorePicker
from devorch_tui.ui.screens.snapshot_form import SnapshotForm
from devorch_tui.ui.vm_poller import Backoff, Poll
from devorch_tui.ui.widgets.vm_table import VMRow, VMTable, human_bytes
from tests.fakes.multipass_fixture import FakeMultipass
from tests.pilot.waiting import click_again, wait_until

SIZE = (160, 45)
DAEMON_DOWN = "list failed: cannot connect to the multipass socket"


def make_app(**overrides: Any) -> DevorchApp:
    """Settings are read after the fixture set DEVORCH_MULTIPASS_BIN."""
    # Slow timers: the tests trigger polls themselves (actions re-poll at once; `i` polls now).
    overrides.setdefault("poll_interval", 5.0)
    overrides.setdefault("info_interval", 60.0)
    return DevorchApp(load_settings(**overrides))


@contextlib.asynccontextmanager
async def running(app: DevorchApp) -> AsyncIterator[Pilot]:
    """``app.run_test`` that lets in-flight multipass calls finish before the loop closes."""
    async with app.run_test(size=SIZE) as pilot:
        try:
            yield pilot
        finally:
            for pane in app.query(VMsPane):
                pane.list_poll.stop()
                pane.info_poll.stop()
            await app.workers.wait_for_complete()


def pane_of(app: DevorchApp) -> VMsPane:
    return app.query_one(VMsPane)


def table_of(app: DevorchApp) -> VMTable:
    return app.query_one(VMTable)


def cell(app: DevorchApp, name: str, column: str) -> str:
    return table_of(app).get_cell(name, column).plain


def messages(app: DevorchApp) -> list[str]:
    return [notification.message for notification in app._notifications]


def has_message(app: DevorchApp, text: str) -> bool:
    return any(text in message for message in messages(app))


async def open_pane(pilot: Pilot, rows: int) -> None:
    await pilot.press("3")
    app = pilot.app
    await wait_until(pilot, lambda: table_of(app).row_count == rows, f"{rows} rows")


async def select(pilot: Pilot, name: str) -> None:
    table = table_of(pilot.app)
    table.move_cursor(row=table.get_row_index(name))
    await wait_until(pilot, lambda: pilot.app.selected_vm == name, f"{name} selected")


async def settle(pilot: Pilot, fake: FakeMultipass, name: str, state: str) -> None:
    """Wait until the double and the table agree that ``name`` is in ``state``."""
    app = pilot.app
    await wait_until(
        pilot,
        lambda: name in table_of(app).rows_by_name and cell(app, name, "state") == state and name not in pane_of(app)._busy,
        f"{name} {state} in the table",
    )
    assert fake.shown_state(name) == state


@pytest.fixture
def fleet(fake_multipass: FakeMultipass) -> FakeMultipass:
    fake_multipass.add("dev-1", "Running", release="24.04", cpus=2, memory="4G", disk="20G", ipv4=["10.0.0.11"], snapshots=["clean"])
    fake_multipass.add("golden", "Stopped", release="24.04", snapshots=[{"name": "golden-image", "comment": "base tools"}])
    fake_multipass.add("web", "Stopped", release="22.04")
    return fake_multipass


# ---------------------------------------------------------------------------------------- list


async def test_lists_every_vm_with_resources_and_selects_the_first(fleet: FakeMultipass) -> None:
    fleet.add("zz-evil", "Stopped", release="[bold red]evil[/]")
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 4)
        assert table_of(app).visible_names == ["dev-1", "golden", "web", "zz-evil"]
        release = table_of(app).get_cell("zz-evil", "release")  # untrusted text is never markup
        assert "[bold red]evil[/]" in release.plain and release.spans == []
        await wait_until(pilot, lambda: cell(app, "dev-1", "cpus") == "2", "info for dev-1")
        assert cell(app, "dev-1", "state") == "Running"
        assert cell(app, "dev-1", "ipv4") == "10.0.0.11"
        assert cell(app, "dev-1", "release") == "Ubuntu 24.04 LTS"
        assert cell(app, "dev-1", "memory").endswith("/4.0G")
        assert cell(app, "dev-1", "disk").endswith("/20G")
        assert cell(app, "dev-1", "load") == "0.08 0.03 0.01"
        assert cell(app, "dev-1", "snapshots") == "1"
        assert cell(app, "golden", "ipv4") == ""  # stopped VMs have no address
        assert str(table_of(app).get_cell("dev-1", "state").style) == "bold green"
        assert app.selected_vm == "dev-1"
        # The list poll is the cheap one: no SSH into every VM for addresses.
        assert ["list", "--format", "json", "--no-ipv4"] in fleet.calls()


async def test_poll_diff_keeps_cursor_and_scroll_and_never_clears(fake_multipass: FakeMultipass) -> None:
    for number in range(40):
        fake_multipass.add(f"vm-{number:02d}", "Stopped")
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 40)
        table = table_of(app)
        clears: list[Any] = []
        table.clear = lambda *args, **kwargs: clears.append(args)  # type: ignore[method-assign]
        await select(pilot, "vm-30")
        await pilot.pause()
        scroll_before = table.scroll_y
        assert scroll_before > 0
        # Between two polls: one VM appears above the cursor, one disappears, one changes state.
        fake_multipass.add("vm-00a", "Running")
        fake_multipass.remove("vm-05")
        fake_multipass.set_state("vm-31", "Running")
        pane_of(app).list_poll.poll_now()
        await wait_until(pilot, lambda: "vm-00a" in table.rows_by_name and "vm-05" not in table.rows_by_name, "the diff")
        await wait_until(pilot, lambda: cell(app, "vm-31", "state") == "Running", "vm-31 running")
        assert clears == []
        assert table.row_count == 40
        assert table.selected_name == "vm-30"
        assert app.selected_vm == "vm-30"
        assert table.scroll_y == scroll_before
        assert table.visible_names[:2] == ["vm-00", "vm-00a"]


async def test_filter_and_sort(fleet: FakeMultipass) -> None:
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        await pilot.press("slash")
        box = app.query_one("#vms-filter", Input)
        assert box.display and box.has_focus
        await pilot.press(*"stopped")
        await pilot.pause()
        assert table_of(app).visible_names == ["golden", "web"]
        assert app.selected_vm == "golden"
        await pilot.press("enter")  # keeps the filter, back to the table
        assert table_of(app).has_focus
        await pilot.press("slash", *"24.04")  # the old text is selected and replaced; releases match too
        await pilot.pause()
        assert box.value == "24.04" and table_of(app).visible_names == ["dev-1", "golden"]
        await pilot.press("escape")
        await pilot.pause()
        assert table_of(app).visible_names == ["dev-1", "golden", "web"]
        assert not box.display
        fleet.add("alpha", "Suspended", release="22.04")
        await pilot.press("i")
        await wait_until(pilot, lambda: table_of(app).row_count == 4, "alpha")
        await select(pilot, "web")
        await pilot.press("s")  # sort by state
        await pilot.pause()
        table = table_of(app)
        assert table.sort_column == "state"
        assert table.visible_names == ["dev-1", "golden", "web", "alpha"]  # Running, Stopped, Stopped, Suspended
        assert table.selected_name == "web"
        assert "sorted by State" in str(app.query_one("#vms-status").render())


# ---------------------------------------------------------------------------------------- daemon


async def test_daemon_down_shows_a_banner_backs_off_and_recovers(fleet: FakeMultipass) -> None:
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        pane = pane_of(app)
        fleet.set_daemon("down")
        pane.list_poll.poll_now()
        await wait_until(pilot, lambda: pane.problem is not None, "the banner")
        banner = app.query_one("#vms-banner")
        assert banner.display
        assert "cannot connect to the multipass socket" in pane.problem
        assert "Fix: start the Multipass daemon" in pane.problem
        assert "Retrying in 2 s" in pane.problem
        assert table_of(app).row_count == 3  # the last known list stays, dimmed
        assert table_of(app).has_class("-stale")
        pane.list_poll.poll_now()
        await wait_until(pilot, lambda: "Retrying in 4 s" in (pane.problem or ""), "the second back-off step")
        # The rest of the app keeps working.
        await pilot.press("1")
        assert app.query_one("#panes", TabbedContent).active == "tab-host"
        await pilot.press("3")
        fleet.set_daemon("up")
        await pilot.press("i")
        await wait_until(pilot, lambda: pane.problem is None, "recovery")
        assert not banner.display
        assert not table_of(app).has_class("-stale")
        assert pane.list_poll.backoff.failures == 0
        assert has_message(app, "Multipass answers again")


async def test_missing_multipass_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVORCH_MULTIPASS_BIN", str(tmp_path / "no-such-multipass"))
    app = make_app()
    async with running(app) as pilot:
        await pilot.press("3")
        pane = pane_of(app)
        await wait_until(pilot, lambda: pane.problem is not None, "the banner")
        assert "multipass is not installed" in pane.problem
        assert "snap install multipass" in pane.problem
        assert "No VM list yet." in str(app.query_one("#vms-status").render())


async def test_a_multipass_without_list_no_ipv4_falls_back_to_plain_list(fleet: FakeMultipass) -> None:
    fleet.fail_next("list", "Unknown option 'no-ipv4'.", exit_code=1)
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        assert pane_of(app).problem is None
        assert ["list", "--format", "json"] in fleet.calls()
        assert cell(app, "dev-1", "ipv4") == "10.0.0.11"


def test_backoff_doubles_up_to_thirty_seconds() -> None:
    backoff = Backoff(first=2.0, maximum=30.0)
    assert [backoff.next_delay() for _ in range(7)] == [2, 4, 8, 16, 30, 30, 30]
    backoff.reset()
    assert backoff.next_delay() == 2


async def test_polls_never_overlap(fleet: FakeMultipass) -> None:
    app = make_app()
    async with running(app) as pilot:
        active = 0
        most = 0
        gate = asyncio.Event()

        async def work() -> int:
            nonlocal active, most
            active += 1
            most = max(most, active)
            await gate.wait()
            active -= 1
            return 1

        results: list[int] = []
        poll: Poll[int] = Poll(app.screen, "test", work, interval=0.01, on_result=results.append, on_error=lambda exc, delay: None)
        poll.start()
        await wait_until(pilot, lambda: poll.in_flight, "the first poll")
        for _ in range(5):
            poll.poll_now()  # asked while one runs: only one more run right after it
        await pilot.pause(0.1)
        assert active == 1
        gate.set()
        await wait_until(pilot, lambda: poll.runs >= 3, "three polls")
        poll.stop()
        assert most == 1
        assert len(results) == poll.runs


# ---------------------------------------------------------------------------------------- actions


async def test_start_marks_the_row_busy_then_notifies(fleet: FakeMultipass) -> None:
    fleet.set_delays(start=1.0)
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        await select(pilot, "golden")
        await pilot.press("u")
        await pilot.pause()
        assert cell(app, "golden", "state") == "⟳ starting"
        await pilot.press("x")  # a busy VM refuses a second action
        await pilot.pause()
        assert has_message(app, "golden is busy (starting)")
        await settle(pilot, fleet, "golden", "Running")
        assert not any(call[:1] == ["stop"] for call in fleet.calls())
        assert has_message(app, "golden is running.")
        await wait_until(pilot, lambda: cell(app, "golden", "ipv4") != "", "golden's address from info")


async def test_stop_suspend_restart(fleet: FakeMultipass) -> None:
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        await select(pilot, "dev-1")
        await pilot.press("x")
        await settle(pilot, fleet, "dev-1", "Stopped")
        assert has_message(app, "dev-1 stopped.")
        await pilot.press("u")
        await settle(pilot, fleet, "dev-1", "Running")
        await pilot.press("r")
        await wait_until(pilot, lambda: has_message(app, "dev-1 restarted."), "restart")
        await settle(pilot, fleet, "dev-1", "Running")
        await pilot.press("z")
        await settle(pilot, fleet, "dev-1", "Suspended")
        assert has_message(app, "dev-1 is suspended.")


async def test_stop_of_a_suspended_vm_fails_with_the_fix_then_force_stop_asks_first(fleet: FakeMultipass) -> None:
    fleet.set_state("dev-1", "Suspended")
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        await select(pilot, "dev-1")
        await pilot.press("x")
        await wait_until(pilot, lambda: has_message(app, "Cannot shut down suspended instance dev-1"), "the failure")
        assert has_message(app, "use force stop")
        assert "dev-1" not in pane_of(app)._busy
        assert cell(app, "dev-1", "state") == "Suspended"
        await pilot.press("X")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.focused is not None and app.screen.focused.id == "cancel"
        await pilot.press("enter")  # Cancel is the default
        await pilot.pause()
        assert fleet.shown_state("dev-1") == "Suspended"
        assert not any(call[:1] == ["stop"] and "--force" in call for call in fleet.calls())
        await pilot.press("X")
        await pilot.pause()
        await pilot.click("#confirm")
        await settle(pilot, fleet, "dev-1", "Stopped")
        assert has_message(app, "dev-1 was powered off.")
        assert ["stop", "dev-1", "--force"] in fleet.calls()


async def test_start_suspend_restart_and_recover_failures_are_told_with_the_fix(fleet: FakeMultipass) -> None:
    """Each failure ends in an error notification with the fix (naming the pane's keys), the busy mark
    goes away and the VM keeps its state."""
    fleet.add("stuck", "Unknown")
    fleet.add("gone", "Deleted")
    app = make_app(multipass_launch_timeout=1)
    async with running(app) as pilot:
        await open_pane(pilot, 5)
        pane = pane_of(app)

        async def fails(name: str, key: str, title: str, text: str, fix: str, state: str) -> None:
            app._notifications.clear()
            await select(pilot, name)
            await pilot.press(key)
            await wait_until(pilot, lambda: has_message(app, text), f"{title} failure", timeout=30)
            assert has_message(app, f"Fix: {fix}"), messages(app)
            assert any(n.title == title and n.severity == "error" for n in app._notifications)
            await wait_until(pilot, lambda: name not in pane._busy and cell(app, name, "state") == state, f"{name} back to {state}", timeout=30)
            assert fleet.shown_state(name) == state

        await fails("stuck", "u", "Start stuck failed", "already running, but in an unknown state",
                    "force stop it (X), then start it again (u)", "Unknown")
        await fails("gone", "z", "Suspend gone failed", 'instance "gone" is deleted', "recover it (U) or purge it (P)", "Deleted")
        fleet.fail_next("recover", 'recover failed: The following errors occurred:\ninstance "gone" does not exist', exit_code=2)
        await fails("gone", "U", "Recover gone failed", 'instance "gone" does not exist', "check the name in the VM list (i refreshes it)", "Deleted")
        fleet.set_delays(restart=30)
        await fails("dev-1", "r", "Restart dev-1 failed", "Timed out waiting for instance to restart",
                    "the instance may still be busy: check it in the VM list", "Restarting")


async def test_recover_refuses_a_vm_that_is_not_deleted(fleet: FakeMultipass) -> None:
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        await select(pilot, "dev-1")
        await pilot.press("U")
        await pilot.pause()
        assert has_message(app, "dev-1 is not deleted (it is Running): only deleted VMs can be recovered.")
        assert not has_message(app, "dev-1 recovered; it is stopped.")
        assert not any(call[:1] == ["recover"] for call in fleet.calls())
        assert "dev-1" not in pane_of(app)._busy


async def test_delete_recover_and_purge_including_a_failed_purge(fleet: FakeMultipass) -> None:
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        await select(pilot, "web")
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert fleet.shown_state("web") == "Stopped"
        await pilot.press("d")
        await pilot.pause()
        await pilot.click("#confirm")
        await settle(pilot, fleet, "web", "Deleted")
        assert has_message(app, "web deleted.")
        await pilot.press("U")
        await settle(pilot, fleet, "web", "Stopped")
        assert has_message(app, "web recovered")
        await pilot.press("P")
        await pilot.pause()
        assert has_message(app, "There are no deleted VMs to purge.")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("d")
        await pilot.pause()
        await pilot.click("#confirm")
        await settle(pilot, fleet, "web", "Deleted")
        fleet.fail_next("purge", "purge failed: something broke in the daemon", exit_code=2)
        await pilot.press("P")
        await pilot.pause()
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: has_message(app, "something broke in the daemon"), "the purge failure")
        await wait_until(pilot, lambda: cell(app, "web", "state") == "Deleted", "busy mark cleared")
        assert "web" in fleet.state()["instances"]
        await pilot.press("P")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "web" in _text(app.screen.query_one("#confirm-message"))
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: "web" not in table_of(app).rows_by_name, "web purged from the table")
        assert "web" not in fleet.state()["instances"]
        assert has_message(app, "Purged for good: web.")
        assert app.selected_vm in {"dev-1", "golden"}


async def test_snapshot_restore_and_clone_refuse_a_vm_that_is_not_stopped_up_front(fleet: FakeMultipass) -> None:
    """No form and no confirmation for a VM multipass would refuse: say what to do first (with the key)."""
    fleet.add("paused", "Suspended")
    fleet.add("gone", "Deleted", snapshots=["old"])
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 5)
        calls_before = len(fleet.calls())
        for name, expected in [
            ("dev-1", "Stop dev-1 first (x): multipass can only "),
            ("paused", "Stop paused first: it is suspended, so force stop it (X)."),
            ("gone", "gone is deleted: recover it first (U)."),
        ]:
            await select(pilot, name)
            for key, doing in (("S", "take snapshots of"), ("b", "restore"), ("c", "clone")):
                app._notifications.clear()
                await pilot.press(key)
                await pilot.pause()
                assert not isinstance(app.screen, (SnapshotForm, RestorePicker, CloneForm, ConfirmScreen)), (name, key)
                assert has_message(app, expected), (name, key, messages(app))
                if name == "dev-1":
                    assert has_message(app, f"can only {doing} a stopped VM")
        assert not [call for call in fleet.calls()[calls_before:] if call[0] in ("snapshot", "restore", "clone")]


async def test_refusals_name_the_users_own_keys(fleet: FakeMultipass) -> None:
    app = make_app(keymap={"vms.stop": "o", "vms.recover": "ctrl+r"})
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        await select(pilot, "dev-1")
        await pilot.press("S")
        await pilot.pause()
        assert has_message(app, "Stop dev-1 first (o)")
        fleet.set_state("web", "Deleted")
        await pilot.press("i")
        await wait_until(pilot, lambda: cell(app, "web", "state") == "Deleted", "web deleted", timeout=30)
        await select(pilot, "web")
        await pilot.press("c")
        await pilot.pause()
        assert has_message(app, "web is deleted: recover it first (^r).")


async def test_snapshot_of_a_stopped_vm_with_the_rule_and_failures_naming_keys(fleet: FakeMultipass) -> None:
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        await select(pilot, "golden")
        await pilot.press("S")
        await pilot.pause()
        assert isinstance(app.screen, SnapshotForm)
        await pilot.press(*"bad_name", "enter")
        await pilot.pause()
        assert isinstance(app.screen, SnapshotForm)  # invalid: the form stays with the rule
        error = app.screen.query_one("#snapshot-name-error")
        assert "letters, digits and hyphens" in str(error.render())
        await pilot.press(*["backspace"] * 8, *"v2", "tab", *"after tools", "enter")
        await wait_until(pilot, lambda: has_message(app, "Took snapshot v2 of golden."), "the snapshot", timeout=30)
        assert "v2" in fleet.instance("golden")["snapshots"]
        await wait_until(pilot, lambda: cell(app, "golden", "snapshots") == "2", "the new count", timeout=30)
        # The VM started behind our back (another terminal): multipass refuses; the fix names the key.
        fleet.fail_next("snapshot", "snapshot failed: Multipass can only take snapshots of stopped instances.", exit_code=2)
        await pilot.press("S")
        await pilot.pause()
        await pilot.press(*"v3", "enter")
        await wait_until(pilot, lambda: has_message(app, "can only take snapshots of stopped instances"), "the failure", timeout=30)
        assert has_message(app, "Fix: stop the instance first (x), then retry")
        fleet.fail_next("snapshot", "snapshot failed: Snapshot already exists: golden.v4", exit_code=2)
        await pilot.press("S")
        await pilot.pause()
        await pilot.press(*"v4", "enter")
        await wait_until(pilot, lambda: has_message(app, "Snapshot already exists"), "the second failure", timeout=30)
        assert has_message(app, "Fix: pick another snapshot name (the detail panel below the list lists the ones taken)")
        assert not any("devorch-tui vm" in message for message in messages(app)), "no CLI commands in the dashboard's fixes"


async def test_restore_picks_a_snapshot_and_asks_first(fleet: FakeMultipass) -> None:
    fleet.add_snapshot("golden", "second", comment="later")
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        await select(pilot, "web")
        await pilot.press("b")
        await wait_until(pilot, lambda: has_message(app, "web has no snapshots. Press S to take one."), "the no-snapshot notice", timeout=30)
        await select(pilot, "golden")
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, RestorePicker), "the picker", timeout=30)
        options = app.screen.query_one(OptionList)
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == ["golden-image", "second"]
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.focused is not None and app.screen.focused.id == "cancel"
        assert "golden-image" in _text(app.screen.query_one("#confirm-message"))
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: has_message(app, "golden is back at snapshot golden-image."), "the restore", timeout=30)
        assert ["restore", "golden.golden-image", "--destructive"] in fleet.calls()
        fleet.fail_next("restore", "restore failed: No such snapshot: golden.second", exit_code=2)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, RestorePicker), "the picker again", timeout=30)
        await pilot.press("down", "enter")
        await pilot.pause()
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: has_message(app, "No such snapshot: golden.second"), "the failure", timeout=30)
        assert has_message(app, "Fix: check the snapshot name: the detail panel below the list lists them")


async def test_clone_with_suggested_name_and_failure(fleet: FakeMultipass) -> None:
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        await select(pilot, "golden")
        fleet.fail_next("clone", "clone failed: The clone feature is not implemented on this backend.", exit_code=2)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, CloneForm)
        assert app.screen.query_one("#clone-name", Input).value == "golden-clone1"
        await pilot.press("enter")
        await wait_until(pilot, lambda: has_message(app, "The clone feature is not implemented"), "the failure", timeout=30)
        await wait_until(pilot, lambda: "golden-clone1" not in table_of(app).rows_by_name, "no half-made row", timeout=30)
        assert "golden" not in pane_of(app)._busy
        await pilot.press("c")
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: has_message(app, "Cloned golden to golden-clone1"), "the clone", timeout=30)
        await settle(pilot, fleet, "golden-clone1", "Stopped")


async def test_launch_form_validates_then_launches_with_the_rendered_cloud_init(fake_multipass: FakeMultipass, workspace: Path) -> None:
    (workspace / "cloud-init.yaml").write_text("#cloud-config\npackages: [git]\n")
    (workspace / ".env").write_text("VM_NAME=proj-1\nVM_CPUS=2\nVM_MEMORY=2G\nVM_DISK=10G\n")
    fake_multipass.set_delays(launch=1.0)
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 0)
        assert "No VMs yet. Press n to launch one" in str(app.query_one("#vms-status").render())
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, LaunchForm)
        values = {key: form.query_one(f"#launch-{key}", Input).value for key in ("name", "image", "cpus", "memory", "disk", "cloud_init")}
        assert values == {
            "name": "proj-1",
            "image": "22.04",
            "cpus": "2",
            "memory": "2G",
            "disk": "10G",
            "cloud_init": str(workspace / "cloud-init.yaml"),
        }
        form.query_one("#launch-memory", Input).value = "128M"
        form.query_one("#launch-name", Input).value = "1bad_name"
        await pilot.click("#launch")
        await pilot.pause()
        assert app.screen is form
        assert "below the minimum of 512M" in str(form.query_one("#launch-memory-error").render())
        assert "not a valid name" in str(form.query_one("#launch-name-error").render())
        form.query_one("#launch-memory", Input).value = "2G"
        form.query_one("#launch-name", Input).value = "proj-1"
        await click_again(pilot, "#launch")
        await wait_until(pilot, lambda: table_of(app).row_count == 1, "the launching row")
        assert cell(app, "proj-1", "state") == "⟳ launching"
        await settle(pilot, fake_multipass, "proj-1", "Running")
        assert has_message(app, "Launched proj-1.")
        launch = next(call for call in fake_multipass.calls() if call[:1] == ["launch"])
        assert launch[:7] == ["launch", "22.04", "--name", "proj-1", "--cpus", "2", "--memory"]
        assert "--cloud-init" in launch and str(workspace / "cloud-init.yaml") in launch
        assert fake_multipass.instance("proj-1")["cpus"] == 2


async def test_launch_failure_is_reported_and_the_row_goes_away(fake_multipass: FakeMultipass) -> None:
    fake_multipass.fail_next("launch", "launch failed: The following errors occurred:\nproj-2: timed out waiting for response", exit_code=2)
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 0)
        await pilot.press("n")
        await pilot.pause()
        app.screen.query_one("#launch-name", Input).value = "proj-2"
        await pilot.click("#launch")
        await wait_until(pilot, lambda: has_message(app, "timed out waiting for response"), "the failure")
        assert has_message(app, "check it in the VM list (i refreshes it); if it stays Unknown, force stop it (X) and start it again (u)")
        await wait_until(pilot, lambda: table_of(app).row_count == 0, "the launching row removed")


async def test_no_vm_actions_say_so_and_launch_cancel_launches_nothing(fake_multipass: FakeMultipass) -> None:
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 0)
        await pilot.press("x")
        await pilot.pause()
        assert has_message(app, "No VM selected. Launch one with n.")
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, LaunchForm)
        assert not any(call[:1] == ["launch"] for call in fake_multipass.calls())


@contextlib.contextmanager
def _fake_suspend(entered: list[bool], resumed: list[bool] | None = None) -> Iterator[None]:
    """Like App.suspend(): the app only resumes when the block ends normally (no try/finally there)."""
    entered.append(True)
    yield
    if resumed is not None:
        resumed.append(True)


async def test_shell_suspends_the_app_and_runs_multipass_shell(fleet: FakeMultipass, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/bin/true")  # the double's shell exits at once
    app = make_app()
    entered: list[bool] = []
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        await select(pilot, "web")
        await pilot.press("e")  # headless: App.suspend is not supported
        await pilot.pause()
        assert has_message(app, "A shell needs a real terminal")
        assert has_message(app, "shell web")
        monkeypatch.setattr(app, "suspend", lambda: _fake_suspend(entered))
        await pilot.press("e")
        await pilot.pause()
        assert entered == [True]
        assert ["shell", "web"] in fleet.calls()
        await wait_until(pilot, lambda: fleet.shown_state("web") == "Running", "shell auto-started web")


async def test_shell_refuses_a_deleted_vm_and_reports_multipass_failures(fleet: FakeMultipass, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet.add("gone", "Deleted")
    app = make_app()
    entered: list[bool] = []
    resumed: list[bool] = []
    async with running(app) as pilot:
        await open_pane(pilot, 4)
        monkeypatch.setattr(app, "suspend", lambda: _fake_suspend(entered, resumed))
        await select(pilot, "gone")
        await pilot.press("e")
        await pilot.pause()
        assert has_message(app, "No shell in gone: it is deleted; recover it first (U).")
        assert entered == [] and not any(call[:1] == ["shell"] for call in fleet.calls())
        # multipass itself fails (its message went to the terminal, which the app hides again): told here
        await select(pilot, "web")
        fleet.fail_next("shell", "shell failed: ssh failed to authenticate: 'Access denied'\n", exit_code=2)
        await pilot.press("e")
        await wait_until(pilot, lambda: has_message(app, "ssh failed to authenticate"), "the shell failure", timeout=30)
        assert entered == resumed == [True], "the app came back from the failed shell"
        assert any(n.title == "Shell in web failed" and n.severity == "error" for n in app._notifications)
        # the user's own exit code (1.17 passes the inner shell's on) is not a failure
        app._notifications.clear()
        fleet.set_version("1.17.0-dev.1+g0")
        monkeypatch.setenv("SHELL", "/bin/false")
        await pilot.press("e")
        await wait_until(pilot, lambda: len(resumed) == 2, "the second shell", timeout=30)
        await pilot.pause(0.2)
        assert not any(n.severity == "error" for n in app._notifications), messages(app)


async def test_name_column_shrinks_when_the_longest_name_goes(fleet: FakeMultipass) -> None:
    from textual.widgets.data_table import ColumnKey

    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        table = table_of(app)
        await pilot.pause()
        narrow = table.columns[ColumnKey("name")].content_width
        width = table.virtual_size.width
        long_name = "a" + "b" * 61 + "c"
        fleet.add(long_name, "Stopped")
        await pilot.press("i")
        await wait_until(pilot, lambda: table.columns[ColumnKey("name")].content_width == 63, "the wide column", timeout=30)
        assert table.virtual_size.width > SIZE[0], "the Snaps column is pushed off screen meanwhile"
        fleet.remove(long_name)
        await pilot.press("i")
        await wait_until(pilot, lambda: long_name not in table.rows_by_name, "the long name gone", timeout=30)
        await pilot.pause()
        assert table.columns[ColumnKey("name")].content_width == narrow
        assert table.virtual_size.width == width <= SIZE[0]


async def test_quit_names_the_lifecycle_action_running(fleet: FakeMultipass) -> None:
    from devorch_tui.ui.app import QuitScreen

    fleet.set_delays(stop=3)
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        pane = pane_of(app)
        assert pane.unfinished_work() is None
        await select(pilot, "dev-1")
        await pilot.press("x")
        await pilot.pause()
        assert pane.unfinished_work() == "stopping dev-1"
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, QuitScreen)
        assert "stopping dev-1" in _text(app.screen.query_one("#confirm-message"))
        assert app.screen.focused is not None and app.screen.focused.id == "cancel"
        await pilot.press("escape")
        await settle(pilot, fleet, "dev-1", "Stopped")
        assert pane.unfinished_work() is None


async def test_every_destructive_modal_has_cancel_focused(fleet: FakeMultipass) -> None:
    fleet.set_state("web", "Deleted")
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)

        async def asks_with_cancel_focused(vm: str, *keys: str) -> None:
            await select(pilot, vm)
            for key in keys:
                await pilot.press(key)
                if key == "b":  # the snapshot picker comes first (after the snapshots are listed)
                    await wait_until(pilot, lambda: isinstance(app.screen, RestorePicker), "the picker", timeout=30)
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), f"the question after {keys}", timeout=30)
            assert app.screen.focused is not None and app.screen.focused.id == "cancel", keys
            await pilot.press("enter")  # Enter on the focused Cancel: nothing happens
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)

        await asks_with_cancel_focused("dev-1", "d")  # delete
        # The arrows move between the buttons: right then left is back on Cancel, and Enter cancels.
        await select(pilot, "dev-1")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("right")
        assert app.screen.focused is not None and app.screen.focused.id == "confirm"
        await pilot.press("left")
        assert app.screen.focused is not None and app.screen.focused.id == "cancel"
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        await asks_with_cancel_focused("dev-1", "X")  # force stop
        await asks_with_cancel_focused("dev-1", "T")  # tear down
        await asks_with_cancel_focused("web", "P")  # purge
        await asks_with_cancel_focused("golden", "b", "enter")  # restore (after the picker)
        assert not [call for call in fleet.calls() if call[0] in ("delete", "stop", "purge", "restore")]
        assert fleet.shown_state("dev-1") == "Running" and fleet.shown_state("web") == "Deleted"


async def test_launch_form_refuses_non_ascii_digits(fake_multipass: FakeMultipass) -> None:
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 0)
        for field, value, error in [
            ("cpus", "²", "'²' is not a CPU count"),
            ("cpus", "٣", "'٣' is not a CPU count"),
            ("memory", "٤G", "'٤G' is not a size"),
            ("disk", "٢٠G", "'٢٠G' is not a size"),
        ]:
            await pilot.press("n")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, LaunchForm)
            form.query_one("#launch-name", Input).value = "proj-1"
            form.query_one(f"#launch-{field}", Input).value = value
            await pilot.click("#launch")
            await pilot.pause()
            assert app.screen is form, "the form stays open with the message"
            assert error in str(form.query_one(f"#launch-{field}-error").render())
            await pilot.press("escape")
            await pilot.pause()
        assert not any(call[:1] == ["launch"] for call in fake_multipass.calls())


async def test_palette_runs_vm_actions_and_t_opens_a_task_run(fleet: FakeMultipass) -> None:
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for expected in ("VMs: Launch", "VMs: Force stop", "VMs: Purge deleted", "VMs: Restore", "VMs: Shell", "VMs: Run tasks"):
            assert expected in titles
        await select(pilot, "dev-1")
        await app.run_pane_action("vms", "stop")
        await settle(pilot, fleet, "dev-1", "Stopped")
        await select(pilot, "golden")
        await pilot.press("t")  # a task run on the selected VM, in the Logs pane
        await pilot.pause()
        assert app.query_one("#panes", TabbedContent).active == "tab-logs"
        assert type(app.screen).__name__ == "NewRunScreen"
        assert app.selected_vm == "golden"


async def test_stopped_vms_show_what_they_are_given_and_a_deleted_vm_says_so(fleet: FakeMultipass) -> None:
    """`info` has no runtime data for a stopped VM: CPUs and the memory/disk totals come from `get`."""
    fleet.add("gone", "Deleted")
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 4)
        await wait_until(pilot, lambda: cell(app, "web", "cpus") == "1", "web's CPUs from get", timeout=30)
        assert cell(app, "web", "memory") == "-/1.0G" and cell(app, "web", "disk") == "-/5.0G"
        assert ["get", "--raw", "local.web.cpus"] in fleet.calls()
        assert not any(call[:1] == ["get"] and "local.gone.cpus" in call for call in fleet.calls()), "not for a deleted VM"
        assert not any(call[:1] == ["get"] and "local.dev-1.cpus" in call for call in fleet.calls()), "info tells for a running VM"
        await select(pilot, "web")
        info = app.query_one("#vm-detail-info")
        await wait_until(pilot, lambda: "-/5.0G" in _text(info), "web's detail", timeout=30)
        assert re.search(r"CPUs\s+1\b", _text(info)) and re.search(r"Memory\s+-/1\.0G", _text(info))
        snapshots = app.query_one("#vm-detail-snapshots")
        await wait_until(pilot, lambda: "None yet. Press S to take one." in _text(snapshots), "web's snapshots", timeout=30)
        await select(pilot, "dev-1")
        await wait_until(pilot, lambda: "Snapshots (1)" in _text(snapshots), "dev-1's snapshots", timeout=30)
        await select(pilot, "gone")
        await wait_until(pilot, lambda: "recover it (U) first" in _text(snapshots), "gone's snapshots", timeout=30)
        assert "Stop the VM" not in _text(snapshots)
        # resized while stopped (in another terminal): selecting the VM fetches what it is given again
        with fleet.store.locked() as data:
            data["instances"]["web"]["cpus"] = 3
        await select(pilot, "web")
        await wait_until(pilot, lambda: cell(app, "web", "cpus") == "3", "web's new CPU count", timeout=30)


async def test_detail_panel_shows_info_and_snapshots(fleet: FakeMultipass) -> None:
    fleet.add_snapshot("golden", "v2", comment="two\r\nlines", parent="golden-image")
    app = make_app()
    async with running(app) as pilot:
        await open_pane(pilot, 3)
        await select(pilot, "golden")
        snapshots = app.query_one("#vm-detail-snapshots")
        await wait_until(pilot, lambda: "Snapshots (2)" in _text(snapshots), "golden's snapshots")
        assert "two lines" in _text(snapshots)  # comments shown on one line
        info = app.query_one("#vm-detail-info")
        assert "golden" in _text(info)
        await select(pilot, "dev-1")
        await wait_until(pilot, lambda: "10.0.0.11" in _text(info), "dev-1's info")
        assert "Snapshots (1)" in _text(snapshots)


def _text(widget: Any) -> str:
    """The text a Static shows (its content may be a rich renderable)."""
    from rich.console import Console

    content = widget.content
    if isinstance(content, str):
        return content
    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(content)
    return console.export_text()


# ---------------------------------------------------------------------------------------- units


def test_suggested_clone_name_skips_taken_names() -> None:
    assert suggest_clone_name("dev", {"dev-clone1", "dev-clone2"}) == "dev-clone3"


def test_human_bytes() -> None:
    assert human_bytes(None) == "-"
    assert human_bytes(512 * 1024**2) == "512M"
    assert human_bytes(int(1.5 * 1024**3)) == "1.5G"
    assert human_bytes(20 * 1024**3) == "20G"


def test_a_stopped_vm_shows_what_it_is_given_a_running_one_what_info_measured() -> None:
    from devorch_tui.services.multipass_models import Instance, InstanceInfo, InstanceResources
    from devorch_tui.ui.widgets.vm_table import vm_row

    resources = InstanceResources(cpus=2, memory=4 * 1024**3, disk=20 * 1024**3)
    stopped = vm_row(Instance(name="a", state="Stopped"), InstanceInfo(name="a", state="Stopped"), None, resources)
    assert (stopped.cpus, stopped.memory_used, stopped.memory_total, stopped.disk_total) == (2, None, 4 * 1024**3, 20 * 1024**3)
    measured = InstanceInfo(name="b", state="Running", cpu_count=4, memory_used=1, memory_total=3 * 1024**3, disk_used=1, disk_total=9)
    running = vm_row(Instance(name="b", state="Running"), measured, None, resources)
    assert (running.cpus, running.memory_total, running.disk_total) == (4, 3 * 1024**3, 9)
    assert vm_row(Instance(name="c", state="Stopped")).cells()["memory"].plain == "-"


def test_rows_sort_missing_values_last() -> None:
    rows = [VMRow("b", "Stopped"), VMRow("a", "Running", load=(0.5,)), VMRow("c", "Running", load=(0.1,))]
    assert [row.name for row in sorted(rows, key=lambda row: row.sort_value("load"))] == ["c", "a", "b"]


async def test_batched_diff_matches_the_public_datatable_api() -> None:
    """VMTable batches update_cell/remove_row through DataTable internals; the result must equal the public way."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from devorch_tui.ui.widgets.vm_table import COLUMN_KEYS, COLUMNS

    def fleet_at(generation: int) -> list[VMRow]:
        rows = []
        for number in range(60):
            if (number + generation) % 7 == 0:
                continue  # some VMs come and go between generations
            state = ("Running", "Stopped", "Suspended")[(number * generation) % 3]
            rows.append(VMRow(f"vm-{number:02d}", state, load=(0.01 * generation,) if state == "Running" else (), cpus=number % 4 + 1))
        return rows

    class Both(App[None]):
        def compose(self) -> ComposeResult:
            yield VMTable(id="diffed")
            yield DataTable(id="public")

    app = Both()
    async with app.run_test(size=SIZE) as pilot:
        diffed = app.query_one("#diffed", VMTable)
        diffed.sort_column = "state"
        for generation in range(6):
            diffed.apply(fleet_at(generation))
            await pilot.pause()
        public = app.query_one("#public", DataTable)
        for column in COLUMNS:
            public.add_column(column.label, key=column.key, width=column.width)
        for row in sorted(fleet_at(5), key=lambda item: item.sort_value("state")):
            cells = row.cells()
            public.add_row(*(cells[key] for key in COLUMN_KEYS), key=row.name)
        await pilot.pause()

        def snapshot(table: DataTable) -> list[tuple[str | None, list[tuple[str, str]]]]:
            return [
                (table.ordered_rows[index].key.value, [(cell.plain, str(cell.style)) for cell in table.get_row_at(index)])
                for index in range(table.row_count)
            ]

        assert diffed.row_count == public.row_count == len(fleet_at(5))
        assert snapshot(diffed) == snapshot(public)
        assert diffed.virtual_size == public.virtual_size


async def test_vm_table_paints_what_datatable_paints() -> None:
    """VMTable renders its lines itself (cached across updates); every line must be the segments
    DataTable makes for the same cells: cursor, hover, focus, zebra stripes, scrolling, after diffs."""
    from textual.app import App, ComposeResult
    from textual.coordinate import Coordinate
    from textual.geometry import Region
    from textual.widgets import DataTable, Input

    from devorch_tui.ui.widgets.vm_table import COLUMNS

    def fleet_at(generation: int) -> list[VMRow]:
        rows = []
        for number in range(40):
            if (number + generation) % 5 == 0:
                continue
            state = ("Running", "Stopped", "Suspended")[(number + generation) % 3]
            busy = "stopping" if number == 7 and generation % 2 else None
            name = f"vm-{number:02d}" + ("-long-name" if number == 33 and generation < 2 else "")
            rows.append(VMRow(name, state, ipv4=("10.0.0.%d" % number,) if state == "Running" else (), busy=busy, release="[b]24.04[/b]"))
        return rows

    class Reference(DataTable[Any]):
        DEFAULT_CSS = "Reference { height: 14; }"

    class Both(App[None]):
        CSS = "VMTable { height: 14; }"

        def compose(self) -> ComposeResult:
            yield VMTable(id="diffed")
            yield Reference(id="public", cursor_type="row", zebra_stripes=True)
            yield Input(id="elsewhere")

    app = Both()
    async with app.run_test(size=(140, 40)) as pilot:
        diffed = app.query_one("#diffed", VMTable)
        public = app.query_one("#public", Reference)
        for column in COLUMNS:
            public.add_column(column.label, key=column.key, width=column.width)

        def mirror() -> None:
            """The reference shows the same cell objects, rows in the same order, same cursor/scroll."""
            public.clear()
            for column in public.columns.values():
                column.content_width = diffed.columns[column.key].content_width
            for row in diffed.ordered_rows:
                public.add_row(*diffed.get_row(row.key), key=row.key.value)

        def lines(table: DataTable[Any]) -> list[list[Any]]:
            table.refresh()
            return [list(strip) for strip in table.render_lines(Region(0, 0, table.size.width, table.size.height))]

        async def same(what: str, *, focused: bool = False) -> None:
            await wait_until(pilot, lambda: public.virtual_size == diffed.virtual_size, f"the tables' sizes ({what})")
            got: dict[str, list[list[Any]]] = {}
            for table in (diffed, public):
                target = table if focused else app.query_one("#elsewhere")
                target.focus()
                await wait_until(pilot, lambda: app.focused is target, f"focus ({what})")
                await pilot.pause()  # the focus styles apply
                got[str(table.id)] = lines(table)
            assert got["diffed"] == got["public"], what

        for generation in range(4):
            diffed.apply(fleet_at(generation))
            await pilot.pause()
            mirror()
            for table in (diffed, public):
                table.move_cursor(row=3 + generation, scroll=False)
            await pilot.pause()
            await same(f"generation {generation}")
            await same(f"generation {generation}, focused", focused=True)
        for table in (diffed, public):
            table.scroll_to(y=12, animate=False)
            table.move_cursor(row=15, scroll=False)
            table._show_hover_cursor = True
            table.hover_coordinate = Coordinate(17, 2)
        await pilot.pause()
        await same("scrolled, hovered", focused=True)
        diffed.apply(fleet_at(4))  # a diff while scrolled: cached lines must not survive it
        await pilot.pause()
        mirror()
        for table in (diffed, public):
            table.scroll_to(y=12, animate=False)
            table.move_cursor(row=15, scroll=False)
            table.hover_coordinate = Coordinate(16, 0)  # clear() put the reference's at (0, 0)
        await pilot.pause()
        await same("after a diff, scrolled", focused=True)


async def test_vm_table_repaints_every_line_a_diff_changes() -> None:
    """A diff repaints only the lines it changed: what stays on screen from before must be what a
    full repaint draws (rows coming and going above and below, cells changing, cursor moving)."""
    from textual.app import App, ComposeResult
    from textual.geometry import Region

    def fleet_at(generation: int) -> list[VMRow]:
        rows = []
        for number in range(80):
            if (number < 3 and generation % 2) or (number >= 77 and generation % 3 == 0):
                continue  # rows come and go above the visible ones and below them
            state = ("Running", "Stopped")[(number * (generation + 1)) % 7 == 0]
            rows.append(VMRow(f"vm-{number:02d}", state, cpus=2 if number % 5 else None))
        if generation == 4:
            rows.append(VMRow("vm-20a", "Running"))  # one more row in the middle of the screen
        return rows

    class One(App[None]):
        CSS = "VMTable { height: 20; }"

        def compose(self) -> ComposeResult:
            yield VMTable()

    app = One()
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(VMTable)
        table.apply(fleet_at(0))
        await pilot.pause()
        table.scroll_to(y=15, animate=False)
        table.move_cursor(row=22, scroll=False)
        await wait_until(pilot, lambda: table.scroll_y == 15, "the scroll")
        region = Region(0, 0, table.size.width, table.size.height)
        for generation in range(1, 7):
            stats = table.apply(fleet_at(generation))
            assert stats.changed
            await pilot.pause()
            on_screen = [list(strip) for strip in table.render_lines(region)]  # what stayed, what was repainted
            table.refresh()
            assert on_screen == [list(strip) for strip in table.render_lines(region)], f"generation {generation}"
        assert table.selected_name == "vm-22" or table.selected_name in table.rows_by_name

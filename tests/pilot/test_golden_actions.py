"""Golden image, provisioning and teardown from the VMs pane, end to end.

The lab (tests/fakes/vm_lab.py) gives the multipass double and real loopback sshd servers standing
in for the VMs; the dashboard drives the same services as the CLI, and the run shows in the Logs pane.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Static
from textual.worker import WorkerCancelled

from devorch_tui.config import load_settings
from devorch_tui.services.provision import ProvisionRequest
from devorch_tui.ui.app import DevorchApp
from devorch_tui.ui.panes.vms import VMsPane
from devorch_tui.ui.screens.confirm import ConfirmScreen
from devorch_tui.ui.screens.provision_form import ProvisionForm
from tests.fakes.vm_lab import BASE_VM, Lab, dumb_http_git
from tests.pilot.waiting import wait_until

pytestmark = pytest.mark.ssh

SIZE = (160, 45)
WORK = 90.0
"""Seconds to wait for a build or a provision: ~14 s on a loaded 2-core box, far less when idle."""


@contextlib.asynccontextmanager
async def dashboard(lab: Lab) -> AsyncIterator[tuple[DevorchApp, Pilot]]:
    app = DevorchApp(load_settings(poll_interval=5.0, info_interval=60.0))
    app.run_store = lab.store  # the lab backs each VM with its sshd when the step creating it ends
    async with app.run_test(size=SIZE) as pilot:
        try:
            await pilot.press("3")
            yield app, pilot
        finally:
            pane = app.query_one(VMsPane)
            pane.list_poll.stop()
            pane.info_poll.stop()
            app.workers.cancel_all()  # a failed wait must not leave a worker hanging the test
            with contextlib.suppress(WorkerCancelled):
                await app.workers.wait_for_complete()


def notices(app: DevorchApp) -> str:
    return "\n".join(str(notification.message) for notification in app._notifications)


def shown_run(app: DevorchApp) -> str | None:
    return app.pane("logs").run_id  # type: ignore[attr-defined]


async def test_build_golden_image_shows_its_steps_in_the_logs_pane(lab: Lab) -> None:
    async with dashboard(lab) as (app, pilot):
        await pilot.press("g")
        await wait_until(pilot, lambda: "Golden image built" in notices(app), "the build to finish", timeout=WORK)
        runs = lab.store.list()
        assert [run.kind for run in runs] == ["base-image"] and runs[0].status == "ok"
        assert shown_run(app) == runs[0].id  # the Logs pane followed it live
        assert app.query_one("#panes").active == "tab-logs"
        logs = app.pane("logs")
        assert [step.name for step in logs.record.target(BASE_VM).steps][-2:] == ["stop", "snapshot"]  # type: ignore[attr-defined]
        assert lab.fake.instance(BASE_VM)["snapshots"]["golden-image"]["comment"].startswith("template=python sha256=")

        await pilot.press("3")
        vms = app.query_one(VMsPane)
        vms.action_refresh()
        await wait_until(pilot, lambda: "up to date" in str(app.query_one("#vms-status", Static).content), "the golden status", timeout=30)

        await pilot.press("g")  # an up-to-date image is reused, not rebuilt
        await wait_until(pilot, lambda: "is up to date" in notices(app), "the reuse notice", timeout=30)
        assert len(lab.store.list()) == 1


async def test_provision_from_the_form_clones_the_repository(lab: Lab) -> None:
    lab.seed_golden()
    lab.make_guest("dev-alpha")
    async with dashboard(lab) as (app, pilot):
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, ProvisionForm), "the form")
        await pilot.press("enter")  # empty form: an error, no provisioning
        assert "a project name is required" in str(app.screen.query_one("#provision-error", Static).content)
        app.screen.query_one("#provision-name", Input).value = "alpha"
        app.screen.query_one("#provision-repo", Input).value = f"file://{lab.repo}"
        app.screen.query_one("#provision-branch", Input).value = "main"
        await pilot.click("#provision")
        await wait_until(pilot, lambda: "dev-alpha is ready" in notices(app), "the provision to finish", timeout=WORK)
        assert (lab.guests["dev-alpha"].home / "demo" / "README.md").read_text() == "demo project\n"
        run = lab.store.list()[0]
        assert run.kind == "provision" and run.status == "ok" and shown_run(app) == run.id
        steps = {step.name: step for step in run.target("dev-alpha").steps}
        assert steps["clone golden"].status == "ok" and steps["clone repository"].duration is not None


async def test_failed_provision_offers_cleanup_of_the_half_made_vm(lab: Lab) -> None:
    lab.seed_golden()
    lab.make_guest("dev-broken")
    with dumb_http_git(lab.repo, lab.tmp / "http", host="127.0.0.9") as url:
        async with dashboard(lab) as (app, pilot):
            await pilot.press("p")
            await wait_until(pilot, lambda: isinstance(app.screen, ProvisionForm), "the form")
            app.screen.query_one("#provision-name", Input).value = "broken"
            app.screen.query_one("#provision-repo", Input).value = url.replace("demo.git", "no-such-repo.git")  # the server answers 404
            await pilot.click("#provision")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the cleanup question", timeout=WORK)
            message = str(app.screen.query_one("#confirm-message", Static).content)
            assert "dev-broken" in message
            await wait_until(pilot, lambda: "clone repository" in notices(app), "the error notification")  # the failed step is named
            assert "--forward-agent, or the box in the dashboard's form" in notices(app)
            tasks = app.pane("logs").task_list  # type: ignore[attr-defined]
            await wait_until(pilot, lambda: str(tasks.get_cell("clone repository", "exit")) == "128", "git's exit code in the Exit column")
            await wait_until(pilot, lambda: isinstance(app.focused, Button), "the dialog to take focus")
            assert app.focused.id == "cancel"  # a destructive answer is never the default
            await pilot.click("#confirm")
            await wait_until(pilot, lambda: "Cleaned up" in notices(app), "the cleanup", timeout=30)
            assert "dev-broken" not in lab.fake.state()["instances"]


async def test_teardown_asks_then_purges_and_keeps_run_logs(lab: Lab) -> None:
    lab.seed_golden()
    lab.fake.add("dev-old", "Running")
    async with dashboard(lab) as (app, pilot):
        vms = app.query_one(VMsPane)
        await wait_until(pilot, lambda: "dev-old" in vms.table.rows, "the VM list")  # type: ignore[operator]
        vms.table.move_cursor(row=vms.table.get_row_index("dev-old"))
        await pilot.pause()
        await pilot.press("T")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("enter")  # Cancel has the focus: nothing happens
        await pilot.pause()
        assert "dev-old" in lab.fake.state()["instances"]
        await pilot.press("T")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: "deleted and purged" in notices(app), "the teardown", timeout=30)
        assert "dev-old" not in lab.fake.state()["instances"]
        assert "no host key was pinned for it" in notices(app)  # never "forgotten" when there was none
        assert "host key forgotten" not in notices(app)


async def test_golden_key_on_a_stale_image_asks_to_rebuild_it(lab: Lab) -> None:
    lab.seed_golden()
    env = lab.settings.workspace_paths.env_file
    env.write_text(env.read_text().replace("GIT_NAME=", "GIT_NAME=x", 1))  # today's render differs
    async with dashboard(lab) as (app, pilot):
        vms = app.query_one(VMsPane)
        await wait_until(pilot, lambda: "STALE" in str(app.query_one("#vms-status", Static).content), "the stale flag", timeout=30)
        await pilot.press("g")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the rebuild question")
        message = str(app.screen.query_one("#confirm-message", Static).content)
        assert "is STALE" in message and f"Delete {BASE_VM}" in message
        assert "if the build fails, there is no golden image until a build succeeds" in message
        await wait_until(pilot, lambda: isinstance(app.focused, Button), "the dialog to take focus")
        assert app.focused.id == "cancel"
        await pilot.press("enter")  # Cancel: nothing is rebuilt
        await wait_until(pilot, lambda: app.screen is vms.screen, "the dialog to close")
        assert lab.store.list() == []
        assert lab.fake.instance(BASE_VM)["snapshots"]["golden-image"]


async def test_cancel_from_the_logs_pane_stops_a_provision_and_offers_cleanup(lab: Lab) -> None:
    lab.seed_golden()
    lab.make_guest("dev-slow")
    lab.fake.set_delays(start=30)  # the new VM takes its time to boot
    async with dashboard(lab) as (app, pilot):
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, ProvisionForm), "the form")
        app.screen.query_one("#provision-name", Input).value = "slow"
        app.screen.query_one("#provision-repo", Input).value = f"file://{lab.repo}"
        await pilot.click("#provision")
        logs = app.pane("logs")

        def step_status(name: str) -> str | None:
            record = logs.record  # type: ignore[attr-defined]
            if record is None or not record.targets:
                return None
            return next((step.status for step in record.target("dev-slow").steps if step.name == name), None)

        await wait_until(pilot, lambda: step_status("start") == "running", "the start step", timeout=WORK)
        assert app.query_one("#panes").active == "tab-logs"
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the cancel question")
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and "cancelled" in str(app.screen.query_one("#confirm-title", Static).content), "the cleanup question", timeout=WORK)
        run = lab.store.list()[0]
        assert run.status == "cancelled" and step_status("start") == "cancelled"
        assert step_status("clone repository") == "skipped"
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: "Cleaned up" in notices(app), "the cleanup", timeout=30)
        assert "dev-slow" not in lab.fake.state()["instances"]


async def test_a_second_golden_action_during_a_build_is_refused_not_cancelling_it(lab: Lab) -> None:
    lab.fake.set_delays(launch=3.0)  # the build is still running when the second request comes
    async with dashboard(lab) as (app, pilot):
        vms = app.query_one(VMsPane)
        await pilot.press("g")
        await wait_until(pilot, lambda: bool(lab.store.list()) and lab.store.list()[0].status == "running", "the build to start", timeout=30)
        await wait_until(pilot, lambda: shown_run(app) is not None and app.query_one("#panes").active == "tab-logs", "the Logs pane", timeout=30)
        vms.action_golden_verify()  # as the palette's "Verify golden image" does
        vms.action_golden_rebuild()
        await pilot.pause(0.2)
        await pilot.press("3")  # (the build switched to the Logs pane)
        await wait_until(pilot, lambda: app.query_one("#panes").active == "tab-vms" and vms.table.has_focus, "the VMs pane")
        await pilot.press("g")
        await wait_until(pilot, lambda: notices(app).count("The golden image build is running already") == 3, "the refusals")
        assert "Watch it in the Logs pane (4); cancel it there with c." in notices(app)
        assert not isinstance(app.screen, ConfirmScreen)  # no rebuild question either
        assert "the golden image build" in (vms.golden.golden_work_running() or "")
        assert "the golden image build" in (app.pane("logs").unfinished_work() or "")  # the quit question lists it
        vms.action_refresh()
        await wait_until(pilot, lambda: "the golden image build is running (Logs pane)" in str(app.query_one("#vms-status", Static).content), "the status line")
        await wait_until(pilot, lambda: "Golden image built" in notices(app), "the build to finish", timeout=WORK)
        runs = lab.store.list()
        assert [(run.kind, run.status) for run in runs] == [("base-image", "ok")]  # never cancelled, nothing else ran
        assert vms.golden.golden_work_running() is None


async def test_the_same_provision_twice_is_refused_and_the_first_keeps_running(lab: Lab) -> None:
    lab.seed_golden()
    lab.make_guest("dev-twice")
    lab.fake.set_delays(start=5.0)
    async with dashboard(lab) as (app, pilot):
        vms = app.query_one(VMsPane)
        for attempt in (1, 2):
            await pilot.press("p")
            await wait_until(pilot, lambda: isinstance(app.screen, ProvisionForm), "the form")
            app.screen.query_one("#provision-name", Input).value = "twice"
            app.screen.query_one("#provision-repo", Input).value = f"file://{lab.repo}"
            await pilot.click("#provision")
            if attempt == 1:  # the run shows in the Logs pane; back to the VMs pane for the second try
                await wait_until(pilot, lambda: shown_run(app) is not None and app.query_one("#panes").active == "tab-logs", "the Logs pane", timeout=30)
                await pilot.pause(0.2)
                await pilot.press("3")
                await wait_until(pilot, lambda: app.query_one("#panes").active == "tab-vms" and vms.table.has_focus, "the VMs pane")
        error = str(app.screen.query_one("#provision-error", Static).content)
        assert "Provisioning dev-twice is running already. Watch it in the Logs pane (4)" in error
        await pilot.press("escape")
        assert "provisioning dev-twice" in (vms.golden.golden_work_running() or "")
        assert "the provisioning of dev-twice is running" in (app.pane("logs").unfinished_work() or "")  # the quit question
        vms.golden._provision(ProvisionRequest("twice", f"file://{lab.repo}"))  # past the form (a race): refused too
        await wait_until(pilot, lambda: "Provisioning dev-twice is running already" in notices(app), "the refusal")
        await wait_until(pilot, lambda: "dev-twice is ready" in notices(app), "the provision to finish", timeout=WORK)
        assert [(run.kind, run.status) for run in lab.store.list()] == [("provision", "ok")]
        assert (lab.guests["dev-twice"].home / "demo" / "README.md").is_file()


async def test_golden_key_on_a_half_built_image_offers_the_rebuild(lab: Lab) -> None:
    lab.fake.add(BASE_VM, "Stopped")  # a build that never reached its snapshot
    async with dashboard(lab) as (app, pilot):
        await wait_until(pilot, lambda: app.query_one(VMsPane).golden.status is not None, "the golden status", timeout=30)
        await pilot.press("g")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the rebuild question")
        message = str(app.screen.query_one("#confirm-message", Static).content)
        assert "has no golden-image snapshot: an earlier build did not finish" in message and f"Delete {BASE_VM}" in message
        assert "devorch-tui base-image create" not in message  # a question, not a command line to type
        await wait_until(pilot, lambda: isinstance(app.focused, Button), "the dialog to take focus")
        assert app.focused.id == "cancel"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "the dialog to close")
        assert lab.store.list() == [] and lab.fake.instance(BASE_VM)


async def test_teardown_of_the_golden_vm_is_refused_before_asking(lab: Lab) -> None:
    lab.seed_golden()
    async with dashboard(lab) as (app, pilot):
        vms = app.query_one(VMsPane)
        await wait_until(pilot, lambda: BASE_VM in vms.table.rows and vms.golden.status is not None, "the VM list", timeout=30)  # type: ignore[operator]
        vms.table.move_cursor(row=vms.table.get_row_index(BASE_VM))
        await pilot.pause()
        await pilot.press("T")
        await wait_until(pilot, lambda: "is the golden base VM, not a project VM" in notices(app), "the refusal")
        assert not isinstance(app.screen, ConfirmScreen)
        assert lab.fake.instance(BASE_VM)


async def test_golden_key_on_a_backend_without_snapshots_says_what_to_do(lab: Lab) -> None:
    lab.fake.set_driver("lxd")
    lab.fake.add("other", "Running")
    async with dashboard(lab) as (app, pilot):
        vms = app.query_one(VMsPane)
        await wait_until(pilot, lambda: "no golden image on this backend" in str(app.query_one("#vms-status", Static).content), "the status line", timeout=30)
        await pilot.press("g")
        await wait_until(pilot, lambda: "has no snapshots, so it keeps no golden image" in notices(app), "the notice")
        assert "Press p to provision" in notices(app)
        assert vms.golden.golden_work_running() is None and lab.store.list() == []

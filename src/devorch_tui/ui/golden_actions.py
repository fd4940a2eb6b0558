"""Golden image, provisioning and teardown from the dashboard.

The VMs pane owns one ``GoldenActions``: it starts the workflows of ``services.golden`` and
``services.provision`` in workers, shows each run live in the Logs pane (its steps with state and
duration in the task list, the output beside it), lets `c` in the Logs pane cancel it, and when a
step fails offers to clean up what was half made. It also keeps the golden image's status (missing,
up to date, STALE against today's render) for the VMs pane's status line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from devorch_tui.errors import DevorchError
from devorch_tui.ui.jobs import run_job
from devorch_tui.ui.screens.confirm import ConfirmScreen

if TYPE_CHECKING:
    from devorch_tui.services.golden import GoldenStatus
    from devorch_tui.services.provision import CleanupAction, ProvisionRequest
    from devorch_tui.services.runs import ActiveRun
    from devorch_tui.ui.panes.base import Pane

log = logging.getLogger("devorch_tui")


class GoldenActions:
    def __init__(self, pane: Pane, on_status: Callable[[GoldenStatus | None], None]) -> None:
        self.pane = pane
        self.app = pane.devorch
        self.status: GoldenStatus | None = None
        self._on_status = on_status

    # ------------------------------------------------------------------ status

    def refresh_status(self, instances: list[Any] | None = None) -> None:
        """Work out the golden image's status in a worker (renders the template without writing)."""
        from devorch_tui.services import golden

        settings, client = self.app.settings, self.app.multipass

        async def work() -> GoldenStatus | None:
            try:
                return await golden.golden_status(settings, client, instances=instances)
            except DevorchError as exc:  # no VM_NAME yet, daemon down...: nothing to show
                log.info("golden status unavailable: %s", exc)
                return None

        def done(status: GoldenStatus | None) -> None:
            self.status = status
            self._on_status(status)

        run_job(self.pane, work, title="Golden image status", on_done=done, group="golden-status", exclusive=True)

    # ------------------------------------------------------------------ runs

    def _follow(self, cancel: asyncio.Event) -> Callable[[ActiveRun], None]:
        """``on_started`` for a workflow: show it in the Logs pane and let `c` there cancel it."""

        def started(active: ActiveRun) -> None:
            async def follow() -> None:
                logs: Any = await self.app.load_pane("logs")  # mounted after the first frame
                logs.register_canceller(active.id, cancel.set)
                logs.follow_run(active.id)
                self.app.action_show_pane("logs")

            self.pane.run_worker(follow(), group="follow-run")

        return started

    def _failed(self, title: str) -> Callable[[BaseException], None]:
        """After the error notification: offer to undo what a failed workflow made."""

        def handler(exc: BaseException) -> None:
            cleanup: list[CleanupAction] = list(getattr(exc, "cleanup", []) or [])
            if cleanup:
                from devorch_tui.services.provision import StepsCancelled

                self.offer_cleanup(title, cleanup, cancelled=isinstance(exc, StepsCancelled))
            self.refresh_status()

        return handler

    def offer_cleanup(self, title: str, cleanup: list[CleanupAction], *, cancelled: bool = False) -> None:
        from devorch_tui.services.provision import run_cleanup

        listed = "\n".join(f"• {action}" for action in reversed(cleanup))

        def answered(yes: bool | None) -> None:
            if not yes:
                self.app.notify("Left as it is. " + "; ".join(action.command or action.description for action in cleanup), title=title, markup=False)
                return

            async def work() -> list[str]:
                results = await run_cleanup(cleanup)
                return [f"{action.description}: {error.message}" for action, error in results if error is not None]

            def done(problems: list[str]) -> None:
                if problems:
                    self.app.notify("Cleanup incomplete:\n" + "\n".join(problems), title=title, severity="error", timeout=15, markup=False)
                else:
                    self.app.notify("Cleaned up what was half made.", title=title)
                self.refresh_status()

            run_job(self.pane, work, title=f"{title}: cleanup", on_done=done)

        self.app.push_screen(
            ConfirmScreen(f"{title} {'cancelled' if cancelled else 'failed'}", f"Clean up what was half made?\n{listed}", confirm_label="Clean up", destructive=True),
            answered,
        )

    # ------------------------------------------------------------------ golden image

    def build(self, *, rebuild: bool = False) -> None:
        """Build the golden image (reused when it exists and `rebuild` is not asked)."""
        from devorch_tui.services import golden

        status = self.status
        if not rebuild and status is not None and status.ready:
            if not status.stale:
                self.app.notify(f"{status.summary}: reused, not rebuilt.", title="Golden image", markup=False, timeout=8)
                return
            rebuild = True  # a stale image: offer to rebuild it (the question below says why)
        settings, client, store = self.app.settings, self.app.multipass, self.app.run_store
        cancel = asyncio.Event()

        async def work() -> Any:
            return await golden.create_base_image(settings, client, store, rebuild=rebuild, cancel=cancel, on_started=self._follow(cancel))

        def done(result: Any) -> None:
            verb = "reused" if result.reused else "built"
            self.app.notify(f"Golden image {verb}: {result.status.summary}", title="Golden image", markup=False, timeout=8)
            self.status = result.status
            self._on_status(result.status)

        def start() -> None:
            run_job(self.pane, work, title="Golden image", on_done=done, on_error=self._failed("Golden image"), group="golden-build", exclusive=True)

        if rebuild:
            name = status.vm_name if status else "the golden VM"
            self.app.push_screen(
                ConfirmScreen(
                    "Rebuild golden image",
                    (f"{status.summary}.\n" if status and status.stale else "")
                    + f"Delete {name} and build it again from today's template?\nProject VMs already cloned from it are not touched.",
                    confirm_label="Rebuild",
                    destructive=True,
                ),
                lambda yes: start() if yes else None,
            )
        else:
            start()

    def verify(self) -> None:
        from devorch_tui.services import golden

        settings, client, store = self.app.settings, self.app.multipass, self.app.run_store
        cancel = asyncio.Event()

        async def work() -> Any:
            return await golden.verify_base_image(settings, client, store, cancel=cancel, on_started=self._follow(cancel))

        def done(_result: Any) -> None:
            self.app.notify("The golden image passed every check.", title="Verify golden image")

        run_job(self.pane, work, title="Verify golden image", on_done=done, on_error=self._failed("Verify golden image"), group="golden-build", exclusive=True)

    # ------------------------------------------------------------------ projects

    def provision(self, existing: set[str]) -> None:
        from devorch_tui.ui.screens.provision_form import ProvisionForm

        self.app.push_screen(ProvisionForm(existing), self._provision)

    def _provision(self, request: ProvisionRequest | None) -> None:
        if request is None:
            return
        from devorch_tui.services.provision import provision_project

        settings, client, store = self.app.settings, self.app.multipass, self.app.run_store
        cancel = asyncio.Event()
        title = f"Provision {request.vm_name}"

        async def work() -> Any:
            return await provision_project(request, settings, client, store, cancel=cancel, on_started=self._follow(cancel))

        def done(result: Any) -> None:
            notes = "\n".join(result.workflow.notes)
            self.app.notify(
                f"{result.vm_name} is ready: repository in {result.repo_dir}." + (f"\n{notes}" if notes else ""),
                title=title,
                markup=False,
                timeout=10,
            )

        # Provisions of different projects run side by side (one worker group each).
        run_job(self.pane, work, title=title, on_done=done, on_error=self._failed(title), group=f"provision-{request.vm_name}", exclusive=True)

    def teardown(self, name: str | None) -> None:
        from devorch_tui.services.provision import teardown_project

        if not name:
            self.app.notify("Select a VM first.", title="Tear down", severity="warning")
            return
        settings, client = self.app.settings, self.app.multipass

        async def work() -> Any:
            return await teardown_project(name, settings, client)

        def done(_result: Any) -> None:
            self.app.notify(f"{name} deleted and purged; its host key forgotten; its run logs kept.", title="Tear down", markup=False)

        def answered(yes: bool | None) -> None:
            if yes:
                run_job(self.pane, work, title=f"Tear down {name}", on_done=done, on_error=lambda exc: None)

        self.app.push_screen(
            ConfirmScreen(
                "Tear down",
                f"Delete and purge {name} for good?\nIts host key is forgotten; its run logs stay on disk.",
                confirm_label="Tear down",
                destructive=True,
            ),
            answered,
        )


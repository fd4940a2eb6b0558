"""Golden image, provisioning and teardown from the dashboard.

The VMs pane owns one ``GoldenActions``: it starts the workflows of ``services.golden`` and
``services.provision`` in workers, shows each run live in the Logs pane (its steps with state and
duration in the task list, the output beside it), lets `c` in the Logs pane cancel it, and when a
step fails offers to clean up what was half made. It also keeps the golden image's status (missing,
up to date, STALE against today's render) for the VMs pane's status line.

One golden image job (build, rebuild or verify) runs at a time, and one provision per VM name: a
second request while one runs is refused with a notification saying what runs and where to watch or
cancel it; it never cancels the running one. :meth:`GoldenActions.golden_work_running` says what
runs (the quit question names these jobs through the Logs pane, as runs).
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
    from textual.worker import Worker

    from devorch_tui.services.golden import GoldenStatus
    from devorch_tui.services.provision import CleanupAction, ProvisionRequest
    from devorch_tui.services.runs import ActiveRun
    from devorch_tui.ui.panes.base import Pane

log = logging.getLogger("devorch_tui")

GOLDEN_JOB = "golden"
WATCH_HINT = "Watch it in the Logs pane (4); cancel it there with c."


class GoldenActions:
    def __init__(self, pane: Pane, on_status: Callable[[GoldenStatus | None], None]) -> None:
        self.pane = pane
        self.app = pane.devorch
        self.status: GoldenStatus | None = None
        self._on_status = on_status
        self._jobs: dict[str, tuple[str, Worker[None]]] = {}
        """Running jobs by key (GOLDEN_JOB, "provision:VM", ...): what each does, and its worker."""

    # ------------------------------------------------------------------ jobs

    def _running(self, key: str) -> str | None:
        """What the job ``key`` does while it runs, else None."""
        entry = self._jobs.get(key)
        if entry is None:
            return None
        if entry[1].is_finished:
            del self._jobs[key]
            return None
        return entry[0]

    def _start(self, key: str, doing: str, work: Callable[[], Any], **options: Any) -> None:
        self._jobs[key] = (doing, run_job(self.pane, work, exclusive=False, **options))

    def _refusal(self, key: str) -> str | None:
        """Why a second job ``key`` is refused (the first runs still), else None."""
        doing = self._running(key)
        return f"{doing[0].upper()}{doing[1:]} is running already. {WATCH_HINT}" if doing else None

    def _refused(self, key: str, title: str) -> bool:
        """True (after saying so) when the job ``key`` runs already: a second one never replaces it."""
        refusal = self._refusal(key)
        if refusal is not None:
            self.app.notify(refusal, title=title, severity="warning", markup=False, timeout=8)
        return refusal is not None

    def golden_work_running(self) -> str | None:
        """What the golden image and provisioning jobs started here are doing (e.g. "the golden image
        build, provisioning dev-a"); None when none runs."""
        doing = [text for key in list(self._jobs) if (text := self._running(key))]
        return ", ".join(doing) or None

    def golden_job(self) -> str | None:
        """The golden image job running now ("the golden image build", ...), else None."""
        return self._running(GOLDEN_JOB)

    def provision_refusal(self, vm: str) -> str | None:
        """Why ``vm`` cannot be provisioned now (its provision runs already), else None."""
        return self._refusal(f"provision:{vm}")

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

            self._start(f"cleanup:{title}", f"the cleanup after {title[0].lower()}{title[1:]}", work, title=f"{title}: cleanup", on_done=done)

        self.app.push_screen(
            ConfirmScreen(f"{title} {'cancelled' if cancelled else 'failed'}", f"Clean up what was half made?\n{listed}", confirm_label="Clean up", destructive=True),
            answered,
        )

    # ------------------------------------------------------------------ golden image

    def build(self, *, rebuild: bool = False) -> None:
        """Build the golden image (reused when it exists and `rebuild` is not asked)."""
        from devorch_tui.services import golden

        title = "Rebuild golden image" if rebuild else "Golden image"
        if self._refused(GOLDEN_JOB, title):
            return
        status = self.status
        if status is not None and not status.snapshots_supported:
            self.app.notify(f"{status.summary[0].upper()}{status.summary[1:]}. Press p to provision a project VM.", title=title, markup=False, timeout=10)
            return
        reason = ""
        if not rebuild and status is not None and status.ready:
            if not status.stale:
                self.app.notify(f"{status.summary}: reused, not rebuilt.", title="Golden image", markup=False, timeout=8)
                return
            rebuild, reason = True, f"{status.summary}.\n"  # a stale image: offer to rebuild it
        elif not rebuild and status is not None and status.exists and not status.has_snapshot:
            rebuild = True  # a half-built image: offer to build it again
            reason = (
                f"{status.vm_name} exists ({status.state}) but has no {golden.GOLDEN_SNAPSHOT} snapshot: an earlier build "
                "did not finish (or the name is used by another VM; then Cancel and set another VM_NAME in .env).\n"
            )
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
            if not self._refused(GOLDEN_JOB, title):  # (one may have started while the question was open)
                doing = "the golden image rebuild" if rebuild else "the golden image build"
                self._start(GOLDEN_JOB, doing, work, title="Golden image", on_done=done, on_error=self._failed("Golden image"))

        if rebuild:
            name = status.vm_name if status else "the golden VM"
            self.app.push_screen(
                ConfirmScreen(
                    "Rebuild golden image",
                    reason
                    + f"Delete {name} and build it again from today's template?\n"
                    + f"{name} is deleted first: if the build fails, there is no golden image until a build succeeds.\n"
                    + "Project VMs already cloned from it are not touched.",
                    confirm_label="Rebuild",
                    destructive=True,
                ),
                lambda yes: start() if yes else None,
            )
        else:
            start()

    def verify(self) -> None:
        from devorch_tui.services import golden

        title = "Verify golden image"
        if self._refused(GOLDEN_JOB, title):
            return
        settings, client, store = self.app.settings, self.app.multipass, self.app.run_store
        cancel = asyncio.Event()

        async def work() -> Any:
            return await golden.verify_base_image(settings, client, store, cancel=cancel, on_started=self._follow(cancel))

        def done(_result: Any) -> None:
            self.app.notify("The golden image passed every check.", title=title)

        self._start(GOLDEN_JOB, "the golden image check (verify)", work, title=title, on_done=done, on_error=self._failed(title))

    # ------------------------------------------------------------------ projects

    def provision(self, existing: set[str]) -> None:
        from devorch_tui.ui.screens.provision_form import ProvisionForm

        self.app.push_screen(ProvisionForm(existing, refuse=self.provision_refusal), self._provision)

    def _provision(self, request: ProvisionRequest | None) -> None:
        if request is None:
            return
        from devorch_tui.services.provision import provision_project

        title = f"Provision {request.vm_name}"
        key = f"provision:{request.vm_name}"
        if self._refused(key, title):
            return
        settings, client, store = self.app.settings, self.app.multipass, self.app.run_store
        cancel = asyncio.Event()

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

        # Provisions of different projects run side by side; the same one twice is refused above.
        self._start(key, f"provisioning {request.vm_name}", work, title=title, on_done=done, on_error=self._failed(title), group=key)

    def teardown(self, name: str | None) -> None:
        from devorch_tui.services.provision import teardown_project

        title = "Tear down"
        if not name:
            self.app.notify("Select a VM first.", title=title, severity="warning")
            return
        if self.status is not None and name == self.status.vm_name:  # refuse before asking, not after
            self.app.notify(
                f"{name} is the golden base VM, not a project VM. Rebuild it from the palette (Rebuild golden image), "
                "or delete it with d.",
                title=title,
                severity="warning",
                markup=False,
                timeout=8,
            )
            return
        if doing := self._running(f"provision:{name}"):
            self.app.notify(f"{doing[0].upper()}{doing[1:]} is running. Cancel it in the Logs pane (4) with c first: the cleanup offered then deletes it.", title=title, severity="warning", markup=False, timeout=8)
            return
        settings, client = self.app.settings, self.app.multipass

        async def work() -> Any:
            return await teardown_project(name, settings, client, exact=True)  # the VM selected, confirmed by name

        def done(result: Any) -> None:
            keys = "its host key forgotten" if result.forgotten_keys else "no host key was pinned for it"
            self.app.notify(f"{result.vm_name} deleted and purged; {keys}; its run logs kept.", title=title, markup=False)

        def answered(yes: bool | None) -> None:
            if yes and not self._refused(f"teardown:{name}", title):
                self._start(f"teardown:{name}", f"tearing down {name}", work, title=f"Tear down {name}", on_done=done, on_error=lambda exc: None)

        self.app.push_screen(
            ConfirmScreen(
                title,
                f"Delete and purge {name} for good?\nIts host key is forgotten; its run logs stay on disk.",
                confirm_label="Tear down",
                destructive=True,
            ),
            answered,
        )

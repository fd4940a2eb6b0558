"""Host pane: is this machine ready? One row per check, its status, what was found and the fix.

Checks run in a worker when the app starts (the app opens even when multipass is missing), again
on `r`. `i` installs multipass in the user's own terminal after a confirmation (the app is suspended
while the installer runs), `k` creates the dedicated SSH key for VMs.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.widgets import DataTable, Static
from textual.widgets.data_table import RowKey

from devorch_tui.errors import DevorchError
from devorch_tui.services import host, sshkeys
from devorch_tui.services.host import CheckResult, HostFacts
from devorch_tui.ui.jobs import report_error, run_job
from devorch_tui.ui.panes.base import Pane
from devorch_tui.ui.screens.confirm import ConfirmScreen

STATUS_TEXT = {
    "ok": Text("✔ ok", style="bold green"),
    "warn": Text("▲ warn", style="bold yellow"),
    "fail": Text("✖ FAIL", style="bold red"),
}
COLUMNS = (("status", "Status"), ("check", "Check"), ("detail", "Detail"), ("fix", "Fix"))
STATUS_WIDTH = 6
CHECK_WIDTH = 19
FIXED_WIDTH = STATUS_WIDTH + CHECK_WIDTH + 2 * len(COLUMNS)  # plus one cell of padding each side of each column
MIN_TEXT_WIDTH = 16


class HostPane(Pane):
    PANE_ID = "host"
    PANE_TITLE = "Host"
    PANE_KEY = "1"

    BINDINGS = [
        Binding("r", "recheck", "Re-check", id="host.recheck", tooltip="Run the host checks again"),
        Binding("i", "install", "Install multipass", id="host.install", tooltip="Install multipass in this terminal (asks first)"),
        Binding("k", "keygen", "Create SSH key", id="host.keygen", tooltip="Create the dedicated ed25519 SSH key for VMs"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.facts: HostFacts | None = None
        self.results: list[CheckResult] = []
        self.checking = False
        self.after_install = False
        """The next results are the re-check after an install: say whether multipass works now."""
        self._widths: tuple[int, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static("Checking the host…", id="host-summary")
        yield DataTable(id="host-checks", cursor_type="row", zebra_stripes=True)
        yield Static("", id="host-fix")

    def on_mount(self) -> None:
        self.recheck()

    def on_pane_shown(self) -> None:
        self.query_one("#host-checks", DataTable).focus()

    # ------------------------------------------------------------------ checks

    def recheck(self) -> None:
        """Gather facts in a worker and show the judged results (a newer check replaces a running one)."""
        self.checking = True
        self._set_summary()
        app = self.devorch

        async def check() -> HostFacts:
            return await app.host_probe(await app.settings_ready())

        run_job(
            self,
            check,
            title="Host checks",
            on_done=self.show_facts,
            on_error=self._check_failed,
            group="host-check",
            exclusive=True,
        )

    def show_facts(self, facts: HostFacts) -> None:
        self.facts = facts
        self.results = host.judge(facts)
        self.checking = False
        self._update_table(self.results)
        self._set_summary()
        self._show_fix()
        if self.after_install:
            self.after_install = False
            self._report_install()

    def _report_install(self) -> None:
        """After the installer: the re-check, not the installer's exit code, says whether multipass works."""
        broken = [result for result in host.failed(self.results) if result.id in {"multipass", "daemon"}]
        if not broken:
            mp = self.facts.multipass if self.facts else None
            version = f" {mp.client_version}" if mp and mp.client_version else ""
            self.notify(f"multipass{version} is installed and its daemon answers.", title="Install multipass", markup=False)
            return
        listed = "\n".join(f"{result.title}: {result.detail}\nFix: {self.fix_text(result)}" for result in broken)
        self.notify(f"multipass is still not ready:\n{listed}", title="Install multipass", severity="warning", timeout=15, markup=False)

    def fix_text(self, result: CheckResult) -> str:
        """The fix as this pane says it: its own key where one does the job, else the service's command."""
        if result.status == "ok":
            return ""
        if result.id == "ssh_key" and result.fix == "devorch-tui keygen":
            return "press k to create it"
        if result.id == "multipass" and self.facts is not None and not self.facts.multipass.installed:
            plan = host.install_plan(self.facts)
            if plan.runnable:
                return f"press i: {plan.command}"
        return result.fix

    def _check_failed(self, exc: BaseException) -> None:
        self.checking = False
        self.query_one("#host-summary", Static).update(Text("The host checks could not run (see the notification); press r to retry.", style="red"))

    def _text_widths(self, width: int | None = None) -> tuple[int, int]:
        """Widths for the detail and fix columns so the table fits the pane (the panel shows them in full)."""
        width = width or self.size.width or self.app.size.width
        free = max(width - FIXED_WIDTH - 2, 2 * MIN_TEXT_WIDTH)
        detail = max(free * 11 // 20, MIN_TEXT_WIDTH)
        return detail, max(free - detail, MIN_TEXT_WIDTH)

    def _update_table(self, results: list[CheckResult], width: int | None = None) -> None:
        """Show ``results``: cells are diffed by check id; the columns are rebuilt only when their widths change.

        Columns have fixed widths that fit the pane (long details and fixes are clipped here and shown in
        full in the panel below), so updating a cell never changes the table's geometry.
        """
        table: DataTable[Text] = self.query_one("#host-checks", DataTable)
        detail_width, fix_width = self._text_widths(width)
        widths = (STATUS_WIDTH, CHECK_WIDTH, detail_width, fix_width)
        if widths != self._widths:
            cursor_row = table.cursor_row
            table.clear(columns=True)
            for (key, label), column_width in zip(COLUMNS, widths):
                table.add_column(label, key=key, width=column_width)
            self._widths = widths
            for result in results:
                table.add_row(*self._cells(result).values(), key=result.id)
            table.move_cursor(row=min(cursor_row, max(len(results) - 1, 0)), animate=False)
            return
        wanted = {result.id for result in results}
        for row_key in list(table.rows):
            if row_key.value not in wanted:
                table.remove_row(row_key)
        for result in results:
            cells = self._cells(result)
            if result.id in table.rows:
                for column, value in cells.items():
                    if table.get_cell(result.id, column) != value:
                        table.update_cell(result.id, column, value)
            else:
                table.add_row(*cells.values(), key=result.id)

    def _cells(self, result: CheckResult) -> dict[str, Text]:
        _, _, detail_width, fix_width = self._widths
        return {
            "status": STATUS_TEXT[result.status],
            "check": _clipped(result.title, CHECK_WIDTH),
            "detail": _clipped(result.detail, detail_width),
            "fix": _clipped(self.fix_text(result), fix_width),
        }

    def on_resize(self, event: events.Resize) -> None:
        if self.results:
            self._update_table(self.results, event.size.width)

    def _set_summary(self) -> None:
        summary = self.query_one("#host-summary", Static)
        if not self.results:
            summary.update("Checking the host…")
            return
        failures = host.failed(self.results)
        warnings = [result for result in self.results if result.status == "warn"]
        text = Text()
        if failures:
            text.append(f"✖ {len(failures)} requirement{'s' if len(failures) != 1 else ''} not met", style="bold red")
        else:
            text.append("✔ Ready: every requirement is met", style="bold green")
        if warnings:
            text.append(f"  ▲ {len(warnings)} warning{'s' if len(warnings) != 1 else ''}", style="bold yellow")
        hints = []
        ids = {result.id for result in failures}
        if "multipass" in ids:
            hints.append("i installs multipass")
        if "ssh_key" in ids and self.facts is not None and self.facts.key_is_dedicated:
            hints.append("k creates the SSH key")
        hints.append("r re-checks")
        text.append("   " + " · ".join(hints), style="dim")
        if self.checking:
            text.append("   (re-checking…)", style="italic")
        summary.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_fix(event.row_key)

    def _show_fix(self, row_key: RowKey | None = None) -> None:
        panel = self.query_one("#host-fix", Static)
        table = self.query_one("#host-checks", DataTable)
        if row_key is None:
            if not table.row_count:
                panel.update("")
                return
            row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        result = next((result for result in self.results if result.id == row_key.value), None)
        if result is None:
            panel.update("")
            return
        text = Text()
        text.append(f"{result.title}: ", style="bold")
        text.append(result.detail)
        if self.fix_text(result):
            text.append("\nFix: ", style="bold")
            text.append(self.fix_text(result))
        panel.update(text)

    # ------------------------------------------------------------------ actions

    def action_recheck(self) -> None:
        self.recheck()

    def action_install(self) -> None:
        facts = self.facts
        if facts is None:
            self.notify("The host checks are still running; try again in a moment.", title="Install multipass")
            return
        mp = facts.multipass
        if mp.installed and not mp.error:
            self.notify(f"multipass {mp.client_version} is already installed at {mp.path}.", title="Install multipass", markup=False)
            return
        plan = host.install_plan(facts)
        if not plan.runnable:
            self.notify(plan.note, title="Install multipass by hand", severity="warning", timeout=15, markup=False)
            return
        message = (
            "devorch-tui will hand this terminal over to:\n\n"
            f"    {plan.command}\n\n"
            "It may ask for your password. The dashboard comes back when it finishes, "
            "and the host is checked again."
        )
        self.app.push_screen(
            ConfirmScreen("Install multipass", message, confirm_label="Install", destructive=False),
            lambda confirmed: self._install(plan, bool(confirmed)),
        )

    def _install(self, plan: host.InstallPlan, confirmed: bool) -> None:
        if not confirmed:
            self.notify("Nothing was installed.", title="Install multipass")
            return
        try:
            with self.app.suspend():
                code = _run_visibly(plan)
        except SuspendNotSupported:
            report_error(
                self,
                "Install multipass",
                DevorchError(
                    "this terminal cannot be handed over to the installer",
                    hint=f"quit and run `devorch-tui setup` (it runs `{plan.command}`)",
                ),
            )
            return
        except DevorchError as exc:
            report_error(self, "Install multipass", exc)
            return
        if code == 0:
            self.notify("The installer finished; checking the host again.", title="Install multipass")
            self.after_install = True
        else:
            report_error(
                self,
                "Install multipass",
                DevorchError(f"`{plan.command}` failed with exit code {code}", hint=f"see {host.INSTALL_URL}"),
            )
        self.recheck()

    async def action_keygen(self) -> None:
        private = (await self.devorch.settings_ready()).paths.dedicated_key

        async def make() -> tuple[bool, sshkeys.KeyPair]:
            existed = private.exists()  # a damaged pair is generate_keypair's error, shown with its fix
            return existed, await sshkeys.generate_keypair(private)

        def done(outcome: tuple[bool, sshkeys.KeyPair]) -> None:
            existed, pair = outcome
            what = "The SSH key already exists" if existed else "Created the SSH key for VMs"
            self.notify(f"{what}:\n{pair.public}", title="SSH key", markup=False)
            self.recheck()

        run_job(self, make, title="SSH key", on_done=done, group="host-keygen", exclusive=True)


def _clipped(text: str, width: int) -> Text:
    clipped = Text(text, no_wrap=True, overflow="ellipsis")
    clipped.truncate(width, overflow="ellipsis")
    return clipped


def _run_visibly(plan: host.InstallPlan) -> int:
    """Inside App.suspend(): say what runs, run it, and let the user read the result before returning."""
    print(f"\ndevorch-tui: running `{plan.command}`\n", flush=True)
    code = host.run_in_terminal(plan.argv)
    verdict = "finished" if code == 0 else f"failed with exit code {code}"
    try:
        input(f"\ndevorch-tui: `{plan.command}` {verdict}. Press Enter to return to the dashboard. ")
    except EOFError:
        pass
    return code


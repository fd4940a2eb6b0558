"""Pick a run and target to show in the Logs pane: one row per target of every run, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from devorch_tui.services.runs import RunRecord
from devorch_tui.ui.widgets.run_tasks import format_duration

SEP = "\t"


def row_key(run_id: str, target: str) -> str:
    return f"{run_id}{SEP}{target}"


def local_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


class RunPickerScreen(ModalScreen[tuple[str, str] | None]):
    """Dismisses with ``(run_id, target)`` for the chosen row, or None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="run_picker.cancel"),
    ]

    def __init__(self, records: Sequence[RunRecord], *, current: tuple[str, str] | None = None) -> None:
        super().__init__()
        self._records = list(records)
        self._current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="run-picker-dialog", classes="dialog"):
            yield Label("Switch run / target", classes="dialog-title")
            if not self._records:
                yield Static("No runs yet: press n in the Logs pane to run a task file.", id="run-picker-empty")
            yield DataTable(id="run-picker-table", cursor_type="row", zebra_stripes=True)
            yield Static("Enter shows the run · Esc closes", classes="dialog-hint")

    def on_mount(self) -> None:
        table = self.query_one("#run-picker-table", DataTable)
        for key, label in (
            ("run", "Run"),
            ("kind", "Kind"),
            ("title", "Title"),
            ("target", "Target"),
            ("status", "Status"),
            ("started", "Started"),
            ("time", "Time"),
        ):
            table.add_column(label, key=key)
        cursor = 0
        for record in self._records:
            for target in record.targets:
                key = row_key(record.id, target.name)
                if self._current == (record.id, target.name):
                    cursor = table.row_count
                status = record.status if len(record.targets) == 1 else f"{record.status} ({target.status})"
                table.add_row(
                    Text(record.id),
                    Text(record.kind),
                    Text(record.title, overflow="ellipsis", no_wrap=True),
                    Text(target.name),
                    Text(status),
                    Text(local_time(record.started)),
                    Text(format_duration(record.duration), justify="right"),
                    key=key,
                )
        if table.row_count:
            table.move_cursor(row=cursor)
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value or ""
        run_id, _, target = key.partition(SEP)
        self.dismiss((run_id, target))

    def action_cancel(self) -> None:
        self.dismiss(None)

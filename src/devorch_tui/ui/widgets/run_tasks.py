"""The tasks (or steps) of one target of a run: status, exit code and duration, updated by key."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.geometry import Region
from textual.timer import Timer
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from devorch_tui.ui.widgets.frame_style import FrameStyle, sized_by_content

STATUS_STYLES: dict[str, tuple[str, str]] = {
    "pending": ("·", "dim"),
    "running": ("▶", "bold $accent"),
    "retrying": ("↻", "bold $warning"),
    "ok": ("✓", "$success"),
    "failed": ("✗", "bold $error"),
    "timeout": ("⏱", "bold $error"),
    "cancelled": ("⊘", "$warning"),
    "interrupted": ("!", "$warning"),
    "skipped": ("-", "dim"),
}
"""Glyph and style per status; an unknown status shows as its name with no glyph."""

COLUMNS = (("icon", " "), ("task", "Task"), ("status", "Status"), ("exit", "Exit"), ("time", "Time"))
FIXED_WIDTHS = {"icon": 1, "status": len("interrupted"), "exit": 4, "time": len("59m59s")}
"""Every column but the task name has a fixed width; the name takes what is left (with an ellipsis)."""
MIN_TASK_WIDTH = 8


@dataclass(frozen=True)
class TaskRow:
    """What the list shows for one task of one target."""

    name: str
    status: str = "pending"
    exit_code: int | None = None
    started: float | None = None
    """Epoch seconds when the task started (for the live duration of a running task)."""
    duration: float | None = None


def to_epoch(value: Any) -> float | None:
    """Accept epoch seconds, a datetime or an ISO 8601 string (run records may use any)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def format_duration(seconds: float | None) -> str:
    """``0.4s``, ``12.3s``, ``4m05s``, ``2h03m``; empty when unknown."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class RunTasks(FrameStyle, DataTable[Text]):
    """A row per task keyed by its name; rows are updated in place, never rebuilt.

    Cheaper to draw than a plain ``DataTable`` where it matters, as a run starts (the moment a key
    press must not wait) and while it runs: new rows change its virtual size without asking for a
    layout pass of the screen (its own size never depends on its rows); a new row, a task's new
    status and its ticking time repaint that row's line, not every line of the table; and a frame
    works out the widget's style once instead of once per line (a walk up the DOM each time). What
    it shows is unchanged.
    """

    _row_refresh_only = False
    """True while rows change (cells updated, rows added): the whole-table repaints this asks for
    are left out, and only the rows that changed are repainted."""

    DEFAULT_CSS = """
    RunTasks {
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None, clock: Any = time.time) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False, show_cursor=True)
        self._rows: dict[str, TaskRow] = {}
        self._clock = clock
        self._ticker: Timer | None = None

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key, width=FIXED_WIDTHS.get(key, MIN_TASK_WIDTH))
        self._fit_task_column()

    def on_resize(self) -> None:
        self._fit_task_column()

    def _fit_task_column(self) -> None:
        """Give the task name column the width the others leave, so nothing scrolls sideways."""
        column = self.columns.get(ColumnKey("task"))
        if column is None or not self.size.width:
            return
        padding = 2 * self.cell_padding * len(COLUMNS)
        width = max(MIN_TASK_WIDTH, self.scrollable_content_region.width - sum(FIXED_WIDTHS.values()) - padding)
        if column.width != width:
            column.width = width
            self._require_update_dimensions = True  # DataTable has no public API to resize a column
            self._clear_caches()
            self.refresh()

    # --- cheaper frames ----------------------------------------------------------------------

    def _update_dimensions(self, new_rows: Any) -> None:
        # DataTable sets ``virtual_size`` here, a reactive that asks for a layout pass of the whole
        # screen (a reflow and a repaint of everything around: 15-30 ms, exactly as a run starts and
        # its rows arrive) and a repaint of every line of the table. This widget's size comes from
        # the stylesheet (a fixed width, 1fr high), never from its rows, so only its scrollbars and
        # scroll limits follow the new virtual size. Rows are only ever added at the end (a new
        # order is a ``clear``, which repaints everything) and every column has a fixed width, so
        # the lines that change are the new rows' own: only they are repainted.
        new_rows = list(new_rows)
        layout_pending = self._layout_required
        self._row_refresh_only = True
        try:
            super()._update_dimensions(new_rows)
        finally:
            self._row_refresh_only = False
        if self._layout_required and not layout_pending and not sized_by_content(self):
            self._layout_required = False
            self._scroll_update(self.virtual_size)  # scrollbars shown or hidden: a layout only then
        for row_key in new_rows:
            index = self._row_locations.get(row_key)
            if index is not None:
                self.refresh_row(index)

    def _update_row(self, name: str, cells: list[tuple[str, Text]]) -> None:
        """Change cells of one row and repaint only that row (``update_cell`` repaints the whole
        table, every line of it: a task's status or its ticking time changed only one line)."""
        self._row_refresh_only = True
        try:
            for key, cell in cells:
                self.update_cell(name, key, cell)
        finally:
            self._row_refresh_only = False
        self.refresh_row(self.get_row_index(name))

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False) -> RunTasks:
        if self._row_refresh_only and not regions and not recompose:
            if not layout:
                return self  # the rows that changed are repainted on their own
            repaint = False  # (a layout, if still needed once the rows are in, is decided after)
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    @property
    def rows_by_name(self) -> dict[str, TaskRow]:
        """The rows shown, by task name, in display order."""
        return dict(self._rows)

    def _cells(self, row: TaskRow) -> list[Text]:
        glyph, style = STATUS_STYLES.get(row.status, ("", ""))
        style = self._resolve(style)
        if row.duration is None and row.status in ("running", "retrying") and row.started is not None:
            elapsed: float | None = self._clock() - row.started
        else:
            elapsed = row.duration
        return [
            Text(glyph, style=style),
            Text(row.name, no_wrap=True, overflow="ellipsis"),
            Text(row.status, style=style),
            Text("" if row.exit_code is None else str(row.exit_code), justify="right"),
            Text(format_duration(elapsed), justify="right"),
        ]

    def _resolve(self, style: str) -> str:
        """Turn ``$variable`` colours into real ones from the app theme (Text styles need real colours)."""
        if "$" not in style:
            return style
        try:
            variables = self.app.theme_variables
        except Exception:  # noqa: BLE001 - not mounted: no theme yet
            return ""
        words = []
        for word in style.split():
            if word.startswith("$"):
                value = variables.get(word[1:])
                if value:
                    words.append(value)
            else:
                words.append(word)
        return " ".join(words)

    def set_rows(self, rows: list[TaskRow]) -> None:
        """Show exactly ``rows``: update the ones that stay, add new ones, remove the rest."""
        wanted = {row.name: row for row in rows}
        for name in list(self._rows):
            if name not in wanted:
                self.remove_row(name)
                del self._rows[name]
        if list(self._rows) != [name for name in wanted if name in self._rows]:
            # Order changed: rare (a different task file); rebuilding is the honest way.
            self.clear()
            self._rows.clear()
        for row in rows:
            self.upsert(row)
        self._update_ticker()

    def upsert(self, row: TaskRow) -> None:
        """Add or update one task's row."""
        cells = self._cells(row)
        if row.name in self._rows:
            if self._rows[row.name] != row:
                self._update_row(row.name, [(key, cell) for (key, _label), cell in zip(COLUMNS, cells, strict=True)])
        else:
            self.add_row(*cells, key=row.name)
        self._rows[row.name] = row
        self._update_ticker()

    def update_task(self, name: str, **changes: Any) -> TaskRow:
        """Change some fields of a task (added as pending first if new); returns the new row."""
        if "started" in changes:
            changes["started"] = to_epoch(changes["started"])
        current = self._rows.get(name, TaskRow(name))
        row = replace(current, **changes)
        self.upsert(row)
        return row

    def reset(self) -> None:
        self.clear()
        self._rows.clear()
        self._update_ticker()

    # --- live durations ---------------------------------------------------------------------

    def _update_ticker(self) -> None:
        running = any(row.status in ("running", "retrying") and row.duration is None for row in self._rows.values())
        if running and self._ticker is None and self.is_mounted:
            self._ticker = self.set_interval(1.0, self._tick, name="run-tasks-tick")
        elif not running and self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def _tick(self) -> None:
        for row in self._rows.values():
            if row.status in ("running", "retrying") and row.duration is None and row.started is not None:
                self._update_row(row.name, [("time", self._cells(row)[4])])

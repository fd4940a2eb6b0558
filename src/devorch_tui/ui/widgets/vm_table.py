"""The VM list: a DataTable whose rows are diffed by key (the VM name), never cleared.

``VMTable.apply(rows)`` takes the whole fleet as ``VMRow`` values and touches only what changed:
``update_cell`` for changed cells, ``add_row(key=name)`` for new VMs, ``remove_row`` for gone ones
(batched: one re-index and one repaint per poll). Sorting and filtering work on the same keyed
rows, and the cursor stays on the VM it was on (by key), without scrolling. Every cell is a
``rich.text.Text`` so names and releases coming from multipass are never parsed as markup.

A poll repaints only the lines it changed, and the table renders its lines itself with caches that
survive updates (DataTable drops all its render caches on any change and renders every visible cell
through Rich again): see "rendering" in ``VMTable``.
"""

from __future__ import annotations

import operator
from bisect import insort
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.render import measure
from textual.widgets._data_table import _EMPTY_TEXT, Row, default_cell_formatter
from textual.widgets.data_table import CellDoesNotExist, CellKey, ColumnKey, DuplicateKey, RowDoesNotExist, RowKey

if TYPE_CHECKING:
    from devorch_tui.services.multipass_models import Instance, InstanceInfo, InstanceResources

BUSY_MARK = "⟳"
MISSING = "-"

STATE_STYLES: dict[str, str] = {
    "Running": "bold green",
    "Stopped": "bright_black",
    "Suspended": "yellow",
    "Suspending": "yellow",
    "Starting": "cyan",
    "Restarting": "cyan",
    "Delayed Shutdown": "cyan",
    "Deleted": "red",
    "Unknown": "bold red",
    "Unavailable": "bold red",
}
BUSY_STYLE = "bold magenta"


class Column(NamedTuple):
    key: str
    label: str
    width: int | None  # None: sized to the content


COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", None),
    Column("state", "State", 16),
    Column("ipv4", "IPv4", 18),
    Column("release", "Release", None),
    Column("cpus", "CPUs", 4),
    Column("memory", "Memory", 11),
    Column("disk", "Disk", 11),
    Column("load", "Load", 14),
    Column("snapshots", "Snaps", 5),
)
COLUMN_KEYS: tuple[str, ...] = tuple(column.key for column in COLUMNS)
SORTABLE: tuple[str, ...] = COLUMN_KEYS
_AUTO_WIDTH = frozenset(column.key for column in COLUMNS if column.width is None)
COLUMN_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "state": ("state", "busy"),
    "ipv4": ("ipv4",),
    "release": ("release",),
    "cpus": ("cpus",),
    "memory": ("memory_used", "memory_total"),
    "disk": ("disk_used", "disk_total"),
    "load": ("load",),
    "snapshots": ("snapshot_count",),
}
"""The VMRow fields each column shows: a cell is rebuilt only when one of them changed."""
_KEYS = {column.key: ColumnKey(column.key) for column in COLUMNS}
_COLUMN_GETTERS = tuple((column, operator.attrgetter(*fields)) for column, fields in COLUMN_FIELDS.items())


def human_bytes(count: int | None) -> str:
    """Bytes as multipass users read them: ``512M``, ``1.5G``, ``20G``."""
    if count is None:
        return MISSING
    units = (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024))
    for suffix, size in units:
        if count >= size:
            value = count / size
            return f"{value:.1f}{suffix}" if value < 10 else f"{value:.0f}{suffix}"
    return f"{count}B"


def used_of_total(used: int | None, total: int | None) -> str:
    if used is None and total is None:
        return MISSING
    return f"{human_bytes(used)}/{human_bytes(total)}"


def _bounded(cache: dict[Any, Any], size: int) -> dict[Any, Any]:
    """``cache``, emptied first if it holds ``size`` entries (a render cache: all can be remade)."""
    if len(cache) >= size:
        cache.clear()
    return cache


class _Frame(NamedTuple):
    """What every line of one frame of the table shares (read once per frame)."""

    frame_id: int
    base_style: Style
    header_style: Style
    even_style: Style
    odd_style: Style
    column_keys: tuple[ColumnKey, ...]
    cells_of: Callable[[dict[ColumnKey, Any]], tuple[Any, ...]]
    """A row's cells in column order."""
    widths: tuple[int, ...]
    table_width: int
    width: int
    scroll_x: int
    scroll_y: int
    header_height: int
    y_offsets: list[tuple[RowKey, int]]
    cursor_row: int
    hover_row: int
    show_cursor: bool
    show_hover_cursor: bool


@dataclass(frozen=True)
class VMRow:
    """What the table shows about one VM (plain values; the table renders them)."""

    name: str
    state: str
    ipv4: tuple[str, ...] = ()
    release: str = ""
    cpus: int | None = None
    memory_used: int | None = None
    memory_total: int | None = None
    disk_used: int | None = None
    disk_total: int | None = None
    load: tuple[float, ...] = ()
    snapshot_count: int | None = None
    busy: str | None = None
    """A running action, e.g. "stopping": shown as "⟳ stopping" in the state cell."""

    def cells(self) -> dict[str, Text]:
        return {key: self.cell(key) for key in COLUMN_KEYS}

    def cell(self, column: str) -> Text:
        """The cell of one column (a Text: never parsed as markup)."""
        if column == "name":
            return Text(self.name, style="bold")
        if column == "state":
            if self.busy:
                return Text(f"{BUSY_MARK} {self.busy}", style=BUSY_STYLE)
            return Text(self.state, style=STATE_STYLES.get(self.state, ""))
        if column == "ipv4":
            addresses = [address for address in self.ipv4 if address]
            text = addresses[0] if addresses else ""
            if len(addresses) > 1:
                text = f"{text} +{len(addresses) - 1}"
            return Text(text)
        if column == "release":
            return Text(self.release)
        if column == "cpus":
            return Text(MISSING if self.cpus is None else str(self.cpus), justify="right")
        if column == "memory":
            return Text(used_of_total(self.memory_used, self.memory_total), justify="right")
        if column == "disk":
            return Text(used_of_total(self.disk_used, self.disk_total), justify="right")
        if column == "load":
            return Text(" ".join(f"{value:.2f}" for value in self.load[:3]) if self.load else MISSING)
        if column == "snapshots":
            return Text(MISSING if self.snapshot_count is None else str(self.snapshot_count), justify="right")
        raise KeyError(column)

    def changed_columns(self, old: VMRow) -> list[str]:
        """The columns whose cell differs between ``old`` and this row (by the fields they show)."""
        return [column for column, shown in _COLUMN_GETTERS if shown(self) != shown(old)]

    def sort_value(self, column: str) -> tuple[Any, ...]:
        """A key that sorts missing values last and breaks ties by name (no two rows tie)."""
        value: Any
        if column == "name":
            return (0, self.name.lower(), self.name)
        if column == "state":
            value = self.busy or self.state
        elif column == "ipv4":
            value = tuple(int(part) if part.isdigit() else 0 for part in self.ipv4[0].split(".")) if self.ipv4 else None
        elif column == "memory":
            value = self.memory_used
        elif column == "disk":
            value = self.disk_used
        elif column == "load":
            value = self.load[0] if self.load else None
        elif column == "snapshots":
            value = self.snapshot_count
        elif column == "cpus":
            value = self.cpus
        else:
            value = getattr(self, column)
        if value is None or value == "":
            return (1, 0, self.name.lower(), self.name)
        return (0, value, self.name.lower(), self.name)

    def matches(self, needle: str) -> bool:
        """Case-insensitive match on name, state, busy label, addresses and release."""
        if not needle:
            return True
        haystack = " ".join((self.name, self.state, self.busy or "", *self.ipv4, self.release)).lower()
        return needle.lower() in haystack


@dataclass
class DiffStats:
    """What one ``apply`` changed (tests and the benchmark read it)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    updated_cells: int = 0
    resorted: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.updated_cells)


class VMTable(DataTable[Text]):
    """The fleet as a keyed DataTable (row key = VM name)."""

    DEFAULT_CSS = """
    VMTable {
        height: 1fr;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        # Render caches that outlive DataTable's (see "rendering" below): the row and line caches
        # keep the cell objects they were made from and serve only while the table holds those
        # very objects; cells are keyed by their text. (Plain dicts, emptied when full: textual's
        # LRUCache keeps the first value set for a key, and a dict is faster.)
        self._cell_cache: dict[tuple[Any, ...], tuple[object, list[Segment]]] = {}
        """A cell rendered by Rich (padded, not styled), by its text (and style...) and width."""
        self._styled_cell_cache: dict[tuple[Any, ...], list[Segment]] = {}
        """A cell's text with a row style and cursor/hover styles, by text key and styles."""
        self._styled_row_cache: dict[tuple[Any, ...], tuple[tuple[object, ...], list[list[Segment]]]] = {}
        """A row's cells with the row style and cursor/hover styles, not yet their places (meta)."""
        self._line_cache_by_content: dict[tuple[Any, ...], tuple[tuple[object, ...], Strip]] = {}
        """A finished line, by row, position, highlight and frame (widths, styles, focus...)."""
        self._meta_styles: dict[tuple[int, int, bool], Style] = {}
        self._frame_ids: dict[tuple[Any, ...], int] = {}
        """Everything all lines of a frame share, numbered (part of the line and row cache keys)."""
        self._frame: _Frame | None = None
        self._tall_rows = False
        self.datatable_render = False
        """Render through DataTable's own path instead (bench/poll.py compares the two)."""
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._all: dict[str, VMRow] = {}
        """Every VM from the last poll, whether the filter shows it or not."""
        self._shown_rows: dict[str, VMRow] = {}
        """The VMRow each on-screen row was last rendered from, by key (the diff compares against it)."""
        self._widths: dict[str, Counter[int]] = {column: Counter() for column in _AUTO_WIDTH}
        """Cells shown per width, for each auto-width column: its widest cell without measuring all."""
        self.sort_column: str = "name"
        self.filter_text: str = ""

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.add_column(column.label, key=column.key, width=column.width)

    # -- reading ---------------------------------------------------------------------------------

    @property
    def rows_by_name(self) -> dict[str, VMRow]:
        return self._all

    @property
    def visible_names(self) -> list[str]:
        """Names in on-screen order."""
        return [row.key.value for row in self.ordered_rows if row.key.value is not None]

    @property
    def selected_name(self) -> str | None:
        """The VM under the cursor, or None on an empty table."""
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - a cursor outside the rows means "nothing selected"
            return None

    def row(self, name: str) -> VMRow | None:
        return self._all.get(name)

    # -- writing ---------------------------------------------------------------------------------

    def apply(self, rows: Iterable[VMRow]) -> DiffStats:
        """Make the table show ``rows`` (the whole fleet) by touching only what changed."""
        self._all = {row.name: row for row in rows}
        return self._sync()

    def set_filter(self, text: str) -> DiffStats:
        self.filter_text = text.strip()
        return self._sync()

    def set_sort(self, column: str) -> None:
        if column not in SORTABLE:
            raise ValueError(f"unknown column {column!r}")
        self.sort_column = column
        selected = self.selected_name
        self._resort()
        self._keep_cursor_on(selected)

    def cycle_sort(self) -> str:
        """Sort by the next column; returns its key."""
        index = SORTABLE.index(self.sort_column)
        self.set_sort(SORTABLE[(index + 1) % len(SORTABLE)])
        return self.sort_column

    def _sync(self) -> DiffStats:
        stats = DiffStats()
        selected = self.selected_name
        shown = self._shown_rows
        wanted = self._all if not self.filter_text else {name: row for name, row in self._all.items() if row.matches(self.filter_text)}
        gone = [name for name in shown if name not in wanted]
        moved: list[str] = []
        added: list[VMRow] = []
        updates: list[tuple[str, str, Text]] = []
        sort_column = self.sort_column
        for name, row in wanted.items():
            previous = shown.get(name)
            if previous is row or previous == row:
                continue
            shown[name] = row
            if previous is None:
                added.append(row)
                continue
            for column in row.changed_columns(previous):
                updates.append((name, column, row.cell(column)))
                if column == sort_column:
                    moved.append(name)
        if not (gone or added or updates):
            return stats
        before = self._on_screen()
        if gone:
            self._remove_rows(gone)
            for name in gone:
                del shown[name]
            stats.removed.extend(gone)
        first_rows = added and not self.rows
        if added:
            self._add_rows(added)
            stats.added.extend(row.name for row in added)
        if updates:
            self._update_cells(updates)
            stats.updated_cells = len(updates)
        if gone or added or moved:
            self._reindex(self._placed(gone, moved, [row.name for row in added]), repaint=False)
            stats.resorted = bool(added or moved)
        self._update_count += 1
        self._require_update_dimensions = True  # the virtual size, on idle
        self.check_idle()
        if first_rows and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # what add_row posts when the first row arrives
        self._keep_cursor_on(selected)
        self._repaint_changed(before)
        return stats

    # DataTable.add_row, update_cell and remove_row each repaint, bump the update counter (which
    # drops every render cache) and, for remove_row, re-index all rows: ~0.1 ms per cell and ~5 ms
    # per removed row at 500 rows, and add_row's widths are measured again on idle for every cell.
    # These methods do the same bookkeeping once per poll and re-index once. They use DataTable
    # internals of Textual 8.x (pinned <9 in pyproject); a pilot test checks the result against
    # the public API.

    def _on_screen(self) -> tuple[tuple[int, ...], dict[int, tuple[Any, ...]]] | None:
        """The column widths and what each visible line of rows shows (row, position, highlight and
        the cell objects), by line on screen; None before the table is laid out."""
        size = self.size
        if not size or not self.is_mounted:
            return None
        header = self.header_height if self.show_header else 0
        scroll_y = self.scroll_offset.y
        offsets = self._y_offsets
        locations, data = self._row_locations, self._data
        cursor, hover = self.cursor_row, self.hover_coordinate.row
        lines: dict[int, tuple[Any, ...]] = {}
        for y in range(scroll_y, min(scroll_y + size.height - header, len(offsets))):
            key = offsets[y][0]
            index = locations.get(key)
            lines[y - scroll_y + header] = (key, index, index == cursor, index == hover, *data[key].values())
        return tuple(column.get_render_width(self) for column in self.ordered_columns), lines

    def _repaint_changed(self, before: tuple[tuple[int, ...], dict[int, tuple[Any, ...]]] | None) -> None:
        """Repaint the lines whose row, position, highlight or cells changed (all of them when the
        widths changed). No layout: a layout re-arranges and repaints the whole screen (when the
        table's size changes, setting its virtual size on idle lays it out)."""
        after = self._on_screen()
        if before is None or after is None or before[0] != after[0]:
            self.refresh()
            return
        width, old, new = self.size.width, before[1], after[1]
        changed = [
            y for y in old.keys() | new.keys()
            if (a := old.get(y)) is None or (b := new.get(y)) is None or len(a) != len(b) or not all(map(operator.is_, a, b))
        ]
        if changed:
            self.refresh(*(Region(0, y, width, 1) for y in changed))

    def _add_rows(self, rows: list[VMRow]) -> None:
        """``add_row(key=name)`` for many rows (placed by the re-index that follows)."""
        console = self.app.console
        for row in rows:
            row_key = RowKey(row.name)
            if row_key in self.rows:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            cells = row.cells()
            self._data[row_key] = {_KEYS[key]: cells[key] for key in COLUMN_KEYS}
            self.rows[row_key] = Row(row_key, 1)
            for column, widths in self._widths.items():
                cell = cells[column]
                widths[cell.cell_len] += 1
                # What DataTable measures on idle for a new row, for the columns sized to content
                # (never wider than its cell length).
                width = self.columns[_KEYS[column]]
                if cell.cell_len > width.content_width:
                    width.content_width = max(width.content_width, measure(console, cell, 1))

    def _update_cells(self, updates: list[tuple[str, str, Text]]) -> None:
        """``update_cell`` for many cells."""
        for name, column, value in updates:
            row_key, column_key = RowKey(name), _KEYS[column]
            if row_key not in self._data or column_key not in self.columns:
                raise CellDoesNotExist(f"No cell exists for row_key={row_key!r}, column_key={column_key!r}.")
            if column in _AUTO_WIDTH:
                self._count_width(column, self._data[row_key][column_key], -1)
                self._count_width(column, value, +1)
                self._updated_cells.add(CellKey(row_key, column_key))
            self._data[row_key][column_key] = value

    def _remove_rows(self, names: list[str]) -> None:
        """``remove_row`` for many rows (the re-index that follows closes the gaps)."""
        doomed = [RowKey(name) for name in names]
        missing = [key for key in doomed if key not in self.rows]
        if missing:
            raise RowDoesNotExist(f"Row key {missing[0]!r} is not valid.")
        for row_key in doomed:
            for column_key in self._data.get(row_key, {}):
                self._updated_cells.discard(CellKey(row_key, column_key))
            for column in _AUTO_WIDTH:
                self._count_width(column, self._data[row_key][ColumnKey(column)], -1)
            del self.rows[row_key]
            del self._data[row_key]
        self._fit_auto_columns()

    def _placed(self, gone: list[str], moved: list[str], added: list[str]) -> list[RowKey]:
        """The row order once ``gone`` rows left and ``moved`` (sort value changed) and ``added``
        rows are put in their places: in order by the sort column, as the rest already is."""
        by_index = self._row_locations._reverse
        leaving = {*gone, *moved}
        order = [key for key in map(by_index.__getitem__, range(len(by_index))) if key.value not in leaving]
        coming = [RowKey(name) for name in (*moved, *added)]
        column, rows = self.sort_column, self._shown_rows

        def sort_value(key: RowKey) -> tuple[Any, ...]:
            return rows[key.value].sort_value(column)  # type: ignore[index]

        if len(coming) * 8 > len(order):  # many (the first poll): sort them all
            return sorted([*order, *coming], key=sort_value)
        for key in coming:
            insort(order, key, key=sort_value)  # sort values are unique (ties broken by name)
        return order

    def _reindex(self, order: list[RowKey], *, repaint: bool = True) -> None:
        """Show the rows in ``order`` (every shown row once); keep the cursor and hover in range."""
        self._row_locations = type(self._row_locations)({key: index for index, key in enumerate(order)})
        self._update_count += 1
        if self.cursor_row >= self.row_count:
            self.cursor_coordinate = self.cursor_coordinate  # clamped by its validator
        if self.hover_coordinate.row >= self.row_count:  # only clamp: repainting it costs O(rows)
            self.hover_coordinate = self.hover_coordinate._replace(row=max(0, self.row_count - 1))
        if repaint:
            self.refresh()

    def _count_width(self, column: str, cell: Text, change: int) -> None:
        widths = self._widths[column]
        widths[cell.cell_len] += change
        if widths[cell.cell_len] <= 0:
            del widths[cell.cell_len]

    def _fit_auto_columns(self) -> None:
        """DataTable only ever widens an auto-width column (to its widest cell so far): once the
        widest cells are gone, make it as wide as its label or widest remaining cell again."""
        narrowed = False
        for column, widths in self._widths.items():
            key = ColumnKey(column)
            fit = max(self.columns[key].label.cell_len, max(widths, default=0))
            if self.columns[key].content_width > fit:
                self.columns[key].content_width = fit
                narrowed = True
        if narrowed:
            self._clear_caches()  # rendered rows have the old width

    def _resort(self) -> None:
        """Order the rows by the sort column (what DataTable.sort does, without its per-row cell lookups)."""
        column = self.sort_column
        keys = {name: row.sort_value(column) for name, row in self._shown_rows.items()}
        self._reindex([RowKey(name) for name in sorted(keys, key=keys.__getitem__)])

    # -- rendering -------------------------------------------------------------------------------
    # DataTable keys all its render caches (cells, rows, lines) on ``_update_count``, which every
    # update_cell / add_row / remove_row / sort bumps: one changed cell re-renders every visible
    # cell through Rich (~0.25 ms each, 270 on a 45-line screen) and every line re-reads the CSS
    # component styles (~1 ms a line). Here a line is built again only when something it shows
    # changed (its row, that row's position, cells, highlight, widths); a cell is rendered by Rich
    # once per value, a row is styled once per row style and highlight, then only given its place
    # (DataTable's row/column meta, what a mouse click reads); the CSS styles are read once per
    # frame. The segments are the ones DataTable makes for this table (row cursor, no fixed rows
    # or columns, no row labels, one-line rows; anything else takes DataTable's own path); a pilot
    # test compares the two.

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._clear_own_caches()

    def notify_style_update(self) -> None:
        self._clear_own_caches()
        super().notify_style_update()

    def _clear_own_caches(self) -> None:
        self._cell_cache.clear()
        self._styled_cell_cache.clear()
        self._styled_row_cache.clear()
        self._line_cache_by_content.clear()
        self._meta_styles.clear()
        self._frame = None

    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame = None  # read again (once) for each frame
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def _frame_context(self) -> _Frame | None:
        """What every line of this frame needs (None: DataTable renders it its own way)."""
        if self._frame is not None:
            return self._frame
        if self.datatable_render or self._tall_rows:
            return None
        if self.cursor_type != "row" or self.fixed_rows or self.fixed_columns or self._should_render_row_labels:
            return None
        columns = self.ordered_columns
        component = self.get_component_styles
        base_style = self.rich_style
        row_styles = tuple(component(name).rich_style for name in ("datatable--header", "datatable--even-row", "datatable--odd-row"))
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        column_keys = tuple(column.key for column in columns)
        widths = tuple(column.get_render_width(self) for column in columns)
        show_cursor, show_hover_cursor = self.show_cursor, self._show_hover_cursor
        together = (
            base_style, row_styles, column_keys, widths, width, scroll_x, show_cursor, show_hover_cursor, self._pseudo_class_state,
            self.cursor_foreground_priority, self.cursor_background_priority, self.cell_padding, self.zebra_stripes,
        )
        frame_id = self._frame_ids.get(together)
        if frame_id is None:
            if len(self._frame_ids) > 1000:
                self._frame_ids.clear()
                self._line_cache_by_content.clear()
                self._styled_row_cache.clear()
            frame_id = self._frame_ids[together] = len(self._frame_ids)
        self._frame = _Frame(
            frame_id=frame_id,
            base_style=base_style,
            header_style=row_styles[0],
            even_style=row_styles[1],
            odd_style=row_styles[2],
            column_keys=column_keys,
            cells_of=operator.itemgetter(*column_keys) if len(column_keys) > 1 else lambda cells: (cells[column_keys[0]],),
            widths=widths,
            table_width=sum(widths),
            width=width,
            scroll_x=scroll_x,
            scroll_y=scroll_y,
            header_height=self.header_height if self.show_header else 0,
            y_offsets=self._y_offsets,
            cursor_row=self.cursor_coordinate.row,
            hover_row=self.hover_coordinate.row,
            show_cursor=show_cursor,
            show_hover_cursor=show_hover_cursor,
        )
        return self._frame

    @property
    def _y_offsets(self) -> list[tuple[RowKey, int]]:
        """DataTable's (row key, line in row) for each line, built without Row lookups (one-line rows)."""
        if self._tall_rows:
            return DataTable._y_offsets.fget(self)  # type: ignore[attr-defined]
        offsets = self._offset_cache.get(self._update_count)
        if offsets is None:
            by_index = self._row_locations._reverse
            offsets = [(by_index[index], 0) for index in range(len(by_index))]
            self._offset_cache[self._update_count] = offsets
        return offsets

    def add_row(self, *cells: Text, height: int | None = 1, key: str | None = None, label: Any = None) -> RowKey:
        if height != 1:
            self._tall_rows = True  # DataTable renders rows of other heights (this table adds none)
        return super().add_row(*cells, height=height, key=key, label=label)

    def _meta_style(self, row_index: int, column_index: int, out_of_bounds: bool = False) -> Style:
        """DataTable's meta for a place (what a mouse click reads), one Style object per place."""
        key = (row_index, column_index, out_of_bounds)
        style = self._meta_styles.get(key)
        if style is None:
            meta: dict[str, Any] = {"row": row_index, "column": column_index}
            if out_of_bounds:
                meta["out_of_bounds"] = True
            style = _bounded(self._meta_styles, 10_000)[key] = Style.from_meta(meta)
        return style

    def render_line(self, y: int) -> Strip:
        frame = self._frame_context()
        if frame is None:
            return super().render_line(y)
        if y >= frame.header_height:
            y += frame.scroll_y
        return self._line(frame, y)

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        frame = self._frame_context()
        if frame is None or (x1, x2, base_style) != (frame.scroll_x, frame.scroll_x + frame.width, frame.base_style):
            return super()._render_line(y, x1, x2, base_style)
        return self._line(frame, y)

    def _line(self, frame: _Frame, y: int) -> Strip:
        """Line ``y`` of the table (header first, then rows; scrolled down, not across)."""
        if y < frame.header_height:
            row_key, row_index = self._header_row_key, -1
        else:
            try:
                row_key, _ = frame.y_offsets[y - frame.header_height]
            except IndexError:
                return Strip.blank(frame.width, frame.base_style)
            row_index = self._row_locations.get(row_key)
        header = row_index == -1
        cells = tuple(self.columns[key].label for key in frame.column_keys) if header else frame.cells_of(self._data[row_key])
        cursor = frame.cursor_row == row_index
        hover = frame.hover_row == row_index
        key = (row_key, row_index, cursor, hover, frame.frame_id)
        cached = self._line_cache_by_content.get(key)
        if cached is not None and len(cached[0]) == len(cells) and all(map(operator.is_, cached[0], cells)):
            return cached[1]

        if header:
            row_style = frame.header_style
        elif self.zebra_stripes:
            row_style = frame.odd_style if row_index % 2 else frame.even_style
        else:
            row_style = frame.base_style
        styled = self._styled_row(frame, row_key, header, cells, row_style, cursor, hover)
        segments: list[Segment] = []
        add = segments.append
        meta_style = self._meta_style
        for column_index, cell_segments in enumerate(styled):
            meta = meta_style(row_index, column_index)
            for text, style, control in cell_segments:
                add(Segment(text, meta if style is None else style + meta, control))
        # DataTable extends the row's style to the widget's edge (meta: out of bounds).
        extend_style, _ = self._get_styles_to_render_cell(
            header, False, False, hover, cursor, frame.show_cursor, frame.show_hover_cursor, False, False
        )
        width = frame.width
        add(Segment(" " * max(0, width - frame.table_width), row_style + extend_style + meta_style(row_index, 0, True)))
        if frame.scroll_x == 0 and frame.table_width <= width and segments[0].text:
            # What line_crop, adjust_cell_length and simplify make of a line that fits: one Strip.
            strip = Strip(list(Segment.simplify(segments)), width)
        else:
            x1 = frame.scroll_x
            strip = Strip(line_crop(segments, x1, x1 + width, width)).adjust_cell_length(width, frame.base_style).simplify()
        _bounded(self._line_cache_by_content, 1000)[key] = (cells, strip)
        return strip

    def _styled_row(
        self, frame: _Frame, row_key: RowKey, header: bool, cells: tuple[object, ...], row_style: Style, cursor: bool, hover: bool
    ) -> list[list[Segment]]:
        """The row's cells styled as DataTable styles them, without their places' meta. DataTable
        renders each ``Styled(Padding(cell), pre_style=row style + meta + component style,
        post_style)``; no other style has meta, so adding it last changes nothing."""
        key = (row_key, row_style, cursor, hover, frame.frame_id)
        cached = self._styled_row_cache.get(key)
        if cached is not None and all(map(operator.is_, cached[0], cells)):
            return cached[1]
        component_style, post_style = self._get_styles_to_render_cell(
            header,
            False,
            False,
            hover,
            cursor,
            frame.show_cursor,
            frame.show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        pre_style = row_style + component_style
        styled = []
        for column_key, value, width in zip(frame.column_keys, cells, frame.widths):
            text_key, segments = self._cell_line(row_key, column_key, value, width, header)
            # A styled cell is shared by every row that shows the same text with the same styles.
            styled_key = None if text_key is None else (text_key, pre_style, post_style)
            cell = None if styled_key is None else self._styled_cell_cache.get(styled_key)
            if cell is None:
                # Simplified once styled: a cell without styles of its own is one segment (the
                # line is simplified in the end anyway), so it takes its place's meta once.
                cell = list(Segment.simplify(Segment.apply_style(segments, pre_style, post_style)))
                if styled_key is not None:
                    _bounded(self._styled_cell_cache, 10_000)[styled_key] = cell
            styled.append(cell)
        _bounded(self._styled_row_cache, 1000)[key] = (cells, styled)
        return styled

    def _cell_line(
        self, row_key: RowKey, column_key: ColumnKey, value: object, width: int, header: bool
    ) -> tuple[tuple[Any, ...] | None, list[Segment]]:
        """A one-line cell rendered by Rich (padded, not styled), once per text and width: a Text
        renders the same wherever it is, so every "Running" cell shares one rendering. Returns the
        text's key too (None for other renderables, which are kept while the table holds them)."""
        cell: Any
        if header:
            cell = value
        else:
            cell = _EMPTY_TEXT if value is None else (default_cell_formatter(value, wrap=False, height=1) or _EMPTY_TEXT)
        text_key: tuple[Any, ...] | None
        if type(cell) is Text:
            key = text_key = (
                cell.plain, cell.style, cell.justify, cell.overflow, cell.no_wrap, cell.end, cell.tab_size, tuple(cell.spans), width, self.cell_padding,
            )
            rendered = self._cell_cache.get(key)
            if rendered is not None:
                return text_key, rendered[1]
        else:
            text_key, key = None, (row_key, column_key, width, self.cell_padding)
            rendered = self._cell_cache.get(key)
            if rendered is not None and rendered[0] is value:
                return None, rendered[1]
        options = self.app.console_options.update_dimensions(width, 1).update(no_wrap=True)
        lines = self.app.console.render_lines(Padding(cell, (0, self.cell_padding)), options)
        rendered = (value, list(Segment.simplify(lines[0])))
        _bounded(self._cell_cache, 10_000)[key] = rendered
        return text_key, rendered[1]

    def _keep_cursor_on(self, name: str | None) -> None:
        """Put the cursor back on ``name`` if it is still shown, without scrolling."""
        if name is None or name not in self._shown_rows:
            return
        try:
            index = self.get_row_index(name)
        except RowDoesNotExist:
            return
        if index != self.cursor_row:
            # What move_cursor(row=index, scroll=False) does, without repainting the old and new
            # cursor rows here (finding their regions costs O(rows)): _sync repaints every line
            # whose cursor flag changed, set_sort the whole table.
            self.set_reactive(DataTable.cursor_coordinate, Coordinate(index, self.cursor_column))
            self.post_message(DataTable.RowHighlighted(self, index, RowKey(name)))
            if self._require_update_dimensions:
                self.call_after_refresh(self._scroll_cursor_into_view)
            else:
                self._scroll_cursor_into_view()


def given(
    info: InstanceInfo | None, resources: InstanceResources | None, *, running: bool
) -> tuple[int | None, int | None, int | None]:
    """CPUs, memory total and disk total of a VM: what `info` measured while it runs, else what it is
    given (``resources``, `multipass get`): `info` has no runtime data for a stopped VM."""
    measured = (info.cpu_count, info.memory_total, info.disk_total) if info is not None else (None, None, None)
    if running or resources is None:
        return measured
    fallback = (resources.cpus, resources.memory, resources.disk)
    return tuple(value if value is not None else other for value, other in zip(measured, fallback))  # type: ignore[return-value]


def vm_row(
    instance: Instance,
    info: InstanceInfo | None = None,
    busy: str | None = None,
    resources: InstanceResources | None = None,
) -> VMRow:
    """The row for one instance of `multipass list`, with resources and addresses from its last
    `info`, and what a stopped VM is given (``resources``, `multipass get`) where `info` has none."""
    use_info = info is not None
    ipv4 = instance.ipv4
    if not ipv4 and info is not None and instance.is_running:
        ipv4 = info.ipv4  # the poll runs `list --no-ipv4` (no SSH per VM); addresses come from `info`
    cpus, memory_total, disk_total = given(info, resources, running=instance.is_running)
    return VMRow(
        name=instance.name,
        state=instance.state,
        ipv4=tuple(address for address in ipv4 if address != "N/A"),
        release=instance.release,
        cpus=cpus,
        memory_used=info.memory_used if use_info else None,
        memory_total=memory_total,
        disk_used=info.disk_used if use_info else None,
        disk_total=disk_total,
        load=tuple(info.load) if use_info and instance.is_running else (),
        snapshot_count=info.snapshot_count if use_info else None,
        busy=busy,
    )

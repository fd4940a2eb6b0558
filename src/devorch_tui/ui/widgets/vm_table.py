"""The VM list: a DataTable whose rows are diffed by key (the VM name), never cleared.

``VMTable.apply(rows)`` takes the whole fleet as ``VMRow`` values and touches only what changed:
``update_cell`` for changed cells, ``add_row(key=name)`` for new VMs, ``remove_row`` for gone ones.
Sorting and filtering work on the same keyed rows, and the cursor stays on the VM it was on (by
key), without scrolling. Every cell is a ``rich.text.Text`` so names and releases coming from
multipass are never parsed as markup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, CellKey, ColumnKey, RowDoesNotExist, RowKey

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
        return [
            column
            for column, fields in COLUMN_FIELDS.items()
            if any(getattr(self, name) != getattr(old, name) for name in fields)
        ]

    def sort_value(self, column: str) -> tuple[Any, ...]:
        """A key that sorts missing values last and breaks ties by name."""
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
            return (1, 0, self.name.lower())
        return (0, value, self.name.lower())

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
        wanted = {name: row for name, row in self._all.items() if row.matches(self.filter_text)}
        gone = [name for name in self._shown_rows if name not in wanted]
        if gone:
            self._remove_rows(gone)
            for name in gone:
                del self._shown_rows[name]
            stats.removed.extend(gone)
        sort_touched = False
        updates: list[tuple[str, str, Text]] = []
        for name, row in wanted.items():
            previous = self._shown_rows.get(name)
            if previous == row:
                continue
            self._shown_rows[name] = row
            if previous is None:
                cells = row.cells()
                self.add_row(*(cells[key] for key in COLUMN_KEYS), key=name)
                for column, widths in self._widths.items():
                    widths[cells[column].cell_len] += 1
                stats.added.append(name)
                continue
            for column in row.changed_columns(previous):
                updates.append((name, column, row.cell(column)))
                if column == self.sort_column:
                    sort_touched = True
        if updates:
            self._update_cells(updates)
            stats.updated_cells = len(updates)
        if stats.added or sort_touched:
            self._resort()
            stats.resorted = True
        if stats.changed:
            self._keep_cursor_on(selected)
        return stats

    # DataTable.update_cell and remove_row repaint (and remove_row re-indexes every row and
    # repaints the hover cell) once per call: ~0.1 ms per cell and ~5 ms per removed row at 500
    # rows. These methods (and _resort) do the same bookkeeping once per poll. They use DataTable
    # internals of Textual 8.x (pinned <9 in pyproject); a pilot test checks the result against
    # the public API.

    def _update_cells(self, updates: list[tuple[str, str, Text]]) -> None:
        """``update_cell`` for many cells with one repaint."""
        for name, column, value in updates:
            row_key, column_key = RowKey(name), ColumnKey(column)
            if row_key not in self._row_locations or column_key not in self._column_locations:
                raise CellDoesNotExist(f"No cell exists for row_key={row_key!r}, column_key={column_key!r}.")
            if column in _AUTO_WIDTH:
                self._count_width(column, self._data[row_key][column_key], -1)
                self._count_width(column, value, +1)
                self._updated_cells.add(CellKey(row_key, column_key))
                self._require_update_dimensions = True
            self._data[row_key][column_key] = value
        self._update_count += 1
        self.refresh()

    def _remove_rows(self, names: list[str]) -> None:
        """``remove_row`` for many rows with one re-index and one repaint."""
        doomed = {RowKey(name) for name in names}
        missing = [key for key in doomed if key not in self._row_locations]
        if missing:
            raise RowDoesNotExist(f"Row key {missing[0]!r} is not valid.")
        kept = sorted((self._row_locations.get(key), key) for key in self._row_locations if key not in doomed)
        self._row_locations = type(self._row_locations)({key: index for index, (_, key) in enumerate(kept)})
        for row_key in doomed:
            for column_key in self._data.get(row_key, {}):
                self._updated_cells.discard(CellKey(row_key, column_key))
            for column in _AUTO_WIDTH:
                self._count_width(column, self._data[row_key][ColumnKey(column)], -1)
            del self.rows[row_key]
            del self._data[row_key]
        self._fit_auto_columns()
        self._require_update_dimensions = True
        self._update_count += 1
        self.check_idle()
        self.cursor_coordinate = self.cursor_coordinate  # clamped by its validator
        if self.hover_coordinate.row >= self.row_count:  # only clamp: repainting it costs O(rows)
            self.hover_coordinate = self.hover_coordinate._replace(row=max(0, self.row_count - 1))
        self.refresh(layout=True)

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
        order = sorted(keys, key=keys.__getitem__)
        self._row_locations = type(self._row_locations)({RowKey(name): index for index, name in enumerate(order)})
        self._update_count += 1
        self.refresh()

    def _keep_cursor_on(self, name: str | None) -> None:
        """Put the cursor back on ``name`` if it is still shown, without scrolling."""
        if name is None or name not in self._shown_rows:
            return
        try:
            index = self.get_row_index(name)
        except RowDoesNotExist:
            return
        if index != self.cursor_row:
            self.move_cursor(row=index, scroll=False)


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

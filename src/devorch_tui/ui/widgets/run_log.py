"""A log view that takes lines at any rate: buffered, flushed in batches, ANSI stripped, bounded.

Writing one line at a time to a Textual ``Log`` costs a refresh per line and holds the view to a few
thousand lines a second. ``RunLog.push``/``push_text`` only queue (cheap enough to call from an event
callback, whole blocks of lines as one string); a timer flushes the queue with one write at most every
``FLUSH_INTERVAL`` (``FLUSH_INTERVAL * FLOOD_SLOWDOWN`` while output floods faster than the view can
show it), building only the lines the view keeps.

Follow: while the view is at its end it follows new lines. Scrolling up (keys, wheel, scrollbar)
stops following, so what the user reads stays put even as lines arrive and old ones are dropped
past ``max_lines``; scrolling back to the end (``End``) resumes.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from math import ceil
from pathlib import Path

from rich.cells import cell_len
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive, var
from textual.scrollbar import ScrollBar
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Log

from devorch_tui.ui.widgets.frame_style import FrameStyle, sized_by_content

FLUSH_INTERVAL = 0.05
"""Seconds between two writes to the view while lines arrive."""

FLOOD_LINES = 20_000
"""Most lines one flush writes. Output faster than this per flush (400,000 lines/s) cannot be read
live anyway: the view shows the newest lines after a marker saying how many it skipped (every line
is in the log file; the filter and save read that)."""


FLOOD_SLOWDOWN = 2
"""While output floods (more than FLOOD_LINES a flush), flushes come this many times less often."""


def skipped_marker(count: int) -> str:
    # Short enough (under 100 columns up to 9,999,999 lines) to fit the view of a 160-column terminal:
    # a longer one gave every flood a horizontal scrollbar (a layout pass, then one more bar each frame).
    return f"┄┄ {count:,} lines arrived faster than shown: skipped, all in the log file (/ filters, w saves) ┄┄"


_ANSI = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]           # CSI: colours, cursor moves, erase
    | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?  # OSC: titles, hyperlinks
    | \x1b[PX^_][^\x1b]*(?:\x1b\\)?   # DCS / SOS / PM / APC strings
    | \x1b[@-Z\\-_]                   # other two-byte escapes
    | \x9b[0-?]*[ -/]*[@-~]           # 8-bit CSI
    """,
    re.VERBOSE,
)


def strip_ansi(text: str) -> str:
    """Remove terminal escape sequences; keep what follows the last carriage return (progress bars)."""
    if "\x1b" in text or "\x9b" in text:
        text = _ANSI.sub("", text)
    if "\r" in text:
        text = text.rstrip("\r")
        text = text[text.rfind("\r") + 1 :]
    return text


class StatusLine(Widget):
    """One line of text that repaints without a layout pass (``Static.update`` re-lays out the screen,
    which costs tens of milliseconds in a busy dashboard; a status line changes several times a second).

    ``update(text, end=...)``: ``end`` always shows whole, after ``text``; ``text`` gets the room left
    and ends in an ellipsis when it does not fit (a long ssh:// target must not hide the follow state)."""

    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        width: 1fr;
    }
    """

    text: reactive[str] = reactive("", layout=False)
    end_text: reactive[str] = reactive("", layout=False)

    def __init__(self, text: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.set_reactive(StatusLine.text, text)

    def update(self, text: str, end: str = "") -> None:
        self.text = text
        self.end_text = end

    def render(self) -> Text:
        if not self.end_text:
            return Text(self.text, no_wrap=True, overflow="ellipsis", end="")
        separator = " · " if self.text else ""
        room = max(0, self.size.width - cell_len(self.end_text) - len(separator))
        head = Text(self.text, no_wrap=True, overflow="ellipsis", end="")
        if cell_len(self.text) > room:
            head.truncate(room, overflow="ellipsis")
        return Text.assemble(head, separator, self.end_text, no_wrap=True, end="")


class RunLog(FrameStyle, Log):
    """A ``Log`` fed through ``push()``: batched writes, ANSI stripped, follow that yields to the user."""

    following: var[bool] = var(True)
    """True while the view sticks to the last line."""

    class FollowChanged(Message):
        """Posted when following starts or stops (the pane shows it)."""

        def __init__(self, run_log: RunLog, following: bool) -> None:
            super().__init__()
            self.run_log = run_log
            self.following = following

        @property
        def control(self) -> RunLog:
            return self.run_log

    def __init__(
        self,
        *,
        max_lines: int = 200_000,
        flush_interval: float = FLUSH_INTERVAL,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(highlight=False, max_lines=max_lines, auto_scroll=False, name=name, id=id, classes=classes)
        self._pending: list[tuple[str, Sequence[str] | str, int]] = []
        """Queued chunks: (prefix, texts, count); texts is a sequence of lines or one string of lines
        joined by newlines; each line becomes ``prefix + line``."""
        self._pending_count = 0
        self._flush_interval = flush_interval
        self._flooded = False
        """The last flush had more lines than the view shows (FLOOD_LINES): the next one waits longer."""
        self._flush_timer: Timer | None = None
        self._scrolling_programmatically = False
        self.needle: str | None = None
        """Lower-case text a line must contain to be shown (None: every line)."""
        self.total_pushed = 0
        """Lines accepted since the last ``clear`` (after the filter; shown lines may be fewer: ``max_lines``)."""

    # --- feeding -------------------------------------------------------------------------------

    def push(self, line: str) -> None:
        """Queue one line; it shows within ``flush_interval``."""
        self.push_chunk("", (line,))

    def push_many(self, lines: Sequence[str]) -> None:
        """Queue many lines at once."""
        self.push_chunk("", lines)

    def push_chunk(self, prefix: str, texts: Sequence[str]) -> None:
        """Queue ``prefix + text`` for every text. O(1): lines are built when flushed, and only the
        ones the view can hold (``max_lines``) are built at all."""
        if not texts:
            return
        self._queue(prefix, texts, len(texts))

    def push_text(self, prefix: str, text: str, count: int | None = None) -> None:
        """Queue ``prefix + line`` for every line of ``text`` (lines joined by newlines, no trailing
        newline; ``count`` is their number if known). O(1) as well: the block is cut into lines only
        at flush time, and only its part the view shows."""
        self._queue(prefix, text, text.count("\n") + 1 if count is None else count)

    def write_loaded(self, lines: Sequence[str]) -> None:
        """Show lines read from disk (already formatted and filtered) at once, before anything queued.

        Unlike a live flood, a log opened from disk is not capped at FLOOD_LINES: the view fills up to
        ``max_lines`` (its oldest lines beyond that are left out, as ever)."""
        if not lines:
            return
        queued, self._pending, self._pending_count = (self._pending, self._pending_count), [], 0
        limit = self.max_lines or len(lines)
        kept = list(lines[-limit:])
        self.total_pushed += len(lines)
        self._show(kept)
        self._pending, self._pending_count = queued
        if self._pending and self._flush_timer is None:
            self._schedule_flush()

    def _queue(self, prefix: str, texts: Sequence[str] | str, count: int) -> None:
        self._pending.append((prefix, texts, count))
        self._pending_count += count
        if self._flush_timer is None:
            self._schedule_flush()

    @property
    def pending_count(self) -> int:
        return self._pending_count

    def _schedule_flush(self) -> None:
        if not self.is_mounted:
            return  # flushed on mount
        # A flood cannot be read anyway: repainting it half as often leaves the event loop (and so
        # the SSH reads and key presses) twice the time between frames.
        interval = self._flush_interval * (FLOOD_SLOWDOWN if self._flooded else 1)
        self._flush_timer = self.set_timer(interval, self._flush_from_timer, name="run-log-flush")

    def _flush_from_timer(self) -> None:
        self._flush_timer = None
        self.flush()

    def _on_mount(self) -> None:
        # (ScrollView.on_mount runs too: Textual dispatches handlers along the MRO.)
        if self._pending and self._flush_timer is None:
            self._schedule_flush()

    def _take_pending(self) -> tuple[list[str], int]:
        """Build the lines of the queued chunks; returns the newest ``max_lines`` of them (after the
        filter) and how many lines were accepted in all (the rest are older than the view holds)."""
        chunks, queued = self._pending, self._pending_count
        self._pending, self._pending_count = [], 0
        limit = self.max_lines or queued
        needle = self.needle
        if needle is None and queued > FLOOD_LINES:
            limit = min(limit, FLOOD_LINES)
        picked: list[list[str]] = []
        taken = 0
        for prefix, texts, count in reversed(chunks):
            if needle is None:
                if taken >= limit:
                    break  # older than what the view can hold: they are on disk
                if taken + count > limit:
                    want = limit - taken
                    if isinstance(texts, str):
                        texts = texts[len(texts.rsplit("\n", want)[0]) + 1 :]  # its last `want` lines
                    else:
                        texts = texts[count - want :]
            if isinstance(texts, str):
                # A block: checked for escapes as a whole, cut and prefixed without a Python loop.
                if "\x1b" in texts or "\r" in texts or "\x9b" in texts:
                    texts = texts.split("\n")  # rare: strip line by line below
                else:
                    lines = (prefix + texts.replace("\n", "\n" + prefix) if prefix else texts).split("\n")
                    if needle is not None:
                        lines = [line for line in lines if needle in line.lower()]
                    picked.append(lines)
                    taken += len(lines)
                    continue
            lines = [
                prefix + (strip_ansi(text) if ("\x1b" in text or "\r" in text or "\x9b" in text) else text)
                for text in texts
            ]
            if needle is not None:
                lines = [line for line in lines if needle in line.lower()]
            picked.append(lines)
            taken += len(lines)
        accepted = queued if needle is None else taken
        out: list[str] = []
        if needle is None and queued > limit:
            out.append(skipped_marker(queued - limit))
        for lines in reversed(picked):
            out.extend(lines)
        if len(out) > (self.max_lines or len(out)):
            del out[: len(out) - (self.max_lines or len(out))]
        return out, accepted

    def flush(self) -> int:
        """Write every queued line to the view now (one update); returns how many lines were accepted."""
        if not self._pending:
            self._flooded = False
            return 0
        self._flooded = self._pending_count > FLOOD_LINES and self.needle is None
        lines, accepted = self._take_pending()
        self.total_pushed += accepted
        if lines:
            self._show(lines)
        return accepted

    def _show(self, lines: list[str]) -> None:
        """Append lines and scroll: to the end while following, else so the lines the user is
        reading stay in place while old ones fall off the top."""
        dropped = self._append(lines)
        if self.following:
            self._scroll_quietly_to(None)
        elif dropped > 0:
            self._scroll_quietly_to(max(0, round(self.scroll_y) - dropped))

    def _append(self, lines: list[str]) -> int:
        """Add lines (each a single line) in one go; returns how many old lines fell off the top.

        Leaner than ``Log.write_lines``: no per-line split, width from the longest line, one refresh.
        """
        self._lines.extend(lines)
        dropped = 0
        if self.max_lines is not None and len(self._lines) > self.max_lines:
            dropped = len(self._lines) - self.max_lines
            del self._lines[:dropped]
        self._render_line_cache.clear()
        longest = max(lines, key=len)
        width = cell_len(self._process_line(longest))
        if width > self._width:
            self._width = width
        size = Size(self._width, len(self._lines))
        if size != self.virtual_size:
            if sized_by_content(self):
                self.virtual_size = size
            else:
                # The view's own size comes from the layout, not from its lines: skip the layout pass
                # that setting ``virtual_size`` asks for (it re-lays out and repaints the whole screen,
                # tens of ms at every flush while streaming); only the scrollbars and limits change.
                self.set_reactive(Widget.virtual_size, size)
                self._update_scrollbars(size)
        self.refresh()
        return dropped

    def _update_scrollbars(self, size: Size) -> None:
        """``Widget._scroll_update`` without its unconditional repaint of both scrollbars (their
        reactives repaint them when what they show changes; once the view holds ``max_lines`` that
        is rarely)."""
        self._refresh_scrollbars()  # shows or hides them: a layout pass only when that changes
        width, height = self.container_size
        if self.show_vertical_scrollbar and self.styles.scrollbar_size_vertical:
            _set_bar(self.vertical_scrollbar, size.height, height - self.scrollbar_size_horizontal)
        if self.show_horizontal_scrollbar and self.styles.scrollbar_size_horizontal:
            _set_bar(self.horizontal_scrollbar, size.width, width - self.scrollbar_size_vertical)
        self.scroll_x = self.validate_scroll_x(self.scroll_x)
        self.scroll_y = self.validate_scroll_y(self.scroll_y)

    # --- rendering -----------------------------------------------------------------------------
    # ``Log`` works out the widget's style (a walk up the DOM) and builds a rich ``Text`` for every
    # line of every frame: ~0.3 ms a line, 10-20 ms a frame while output streams and the view
    # follows it. The lines here are plain text (no highlighting), so one segment per line, with the
    # style worked out once per frame (FrameStyle), renders the same.

    def _render_line(self, y: int, scroll_x: int, width: int) -> Strip:
        rich_style = self.rich_style
        if y >= len(self._lines):
            return Strip.blank(width, rich_style)
        if not self.highlight and self.text_selection is None:
            text = self._lines[y]
            if text.isascii() and text.isprintable():  # one cell per character, nothing to replace
                return _plain_strip(text, scroll_x, width, y, rich_style)
        line = self._render_line_strip(y, rich_style)
        return line.crop_extend(scroll_x, scroll_x + width, rich_style).apply_offsets(scroll_x, y)

    def _render_line_strip(self, y: int, rich_style: Style) -> Strip:
        if self.highlight or self.text_selection is not None:
            return super()._render_line_strip(y, rich_style)
        text = self._process_line(self._lines[y])
        return Strip([Segment(text, rich_style)] if text else [], cell_len(text))

    def clear(self) -> RunLog:
        """Drop every line (shown and queued) and follow again."""
        self._pending.clear()
        self._pending_count = 0
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        super().clear()
        self.total_pushed = 0
        self._flooded = False
        self._scrolling_programmatically = True
        try:
            self.scroll_to(0, 0, animate=False, immediate=True)
        finally:
            self._scrolling_programmatically = False
        self.following = True
        return self

    # --- follow --------------------------------------------------------------------------------

    def _scroll_quietly_to(self, y: int | None) -> None:
        """Scroll without it counting as the user leaving or reaching the end."""
        self._scrolling_programmatically = True
        try:
            if y is None:
                self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
            else:
                self.scroll_to(y=y, animate=False, immediate=True)
        finally:
            self._scrolling_programmatically = False

    def watch_scroll_x(self, old_value: float, new_value: float) -> None:
        # ScrollView's, with the scrollbar repainted only when its thumb moves on screen.
        if self.show_horizontal_scrollbar:
            _set_bar(self.horizontal_scrollbar, position=new_value)
        if round(old_value) != round(new_value):
            self.refresh(self.size.region)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        # ScrollView's, with the scrollbar repainted only when its thumb moves on screen (following
        # a view that grows by thousands of lines a flush moves it by less than a cell: ~3 ms a frame).
        if self.show_vertical_scrollbar:
            _set_bar(self.vertical_scrollbar, position=new_value)
        if round(old_value) != round(new_value):
            self.refresh(self.size.region)
        if self._scrolling_programmatically:
            return
        if round(new_value) >= self.max_scroll_y:
            self.following = True
        elif new_value < old_value:
            self.following = False

    def watch_following(self, following: bool) -> None:
        self.post_message(self.FollowChanged(self, following))

    def action_follow(self) -> None:
        """Jump to the last line and follow new ones."""
        if self.following and self._flush_timer is not None and round(self.scroll_y) >= self.max_scroll_y:
            return  # already there: the queued lines show at the flush already scheduled
        self.flush()
        self._scroll_quietly_to(None)
        self.following = True

    def action_scroll_end(self) -> None:
        """End jumps to the last line at once and follows (an animated scroll would chase a moving end)."""
        self.action_follow()

    def unfollow(self) -> None:
        """Stop following (as if the user scrolled up) without moving."""
        self.following = False


_SHAPE_BACK = Color.parse("#000000")
_SHAPE_BAR = Color.parse("#ffffff")


def _bar_shape(bar: ScrollBar) -> list[Segment]:
    """What the scrollbar draws (glyphs and where; in fixed colours), as ``ScrollBar.render`` works it out."""
    window_size = bar.window_size if bar.window_size < bar.window_virtual_size else 0
    return list(
        bar.renderer.render_bar(
            size=bar.size.height if bar.vertical else bar.size.width,
            virtual_size=ceil(bar.window_virtual_size),
            window_size=ceil(window_size),
            position=bar.position,
            thickness=bar.thickness,
            vertical=bar.vertical,
            back_color=_SHAPE_BACK,
            bar_color=_SHAPE_BAR,
        ).segments
    )


def _set_bar(bar: ScrollBar, virtual_size: float | None = None, window_size: float | None = None, *, position: float | None = None) -> None:
    """Set a scrollbar's sizes and position; repaint it only when that changes what it draws (its
    reactives repaint it on any change, and a 2x40 bar costs as much to draw as the log's lines)."""
    before = _bar_shape(bar)
    if virtual_size is not None:
        bar.set_reactive(ScrollBar.window_virtual_size, virtual_size)
    if window_size is not None:
        bar.set_reactive(ScrollBar.window_size, window_size)
    if position is not None:
        bar.set_reactive(ScrollBar.position, bar.validate_position(position))
    if _bar_shape(bar) != before:
        bar.refresh()


def _plain_strip(text: str, scroll_x: int, width: int, y: int, style: Style) -> Strip:
    """What ``Strip([Segment(text, style)]).crop_extend(scroll_x, scroll_x + width, style)
    .apply_offsets(scroll_x, y)`` gives for printable ASCII text (the same segments and styles),
    built at once instead of through two intermediate strips (each strip sets up seven caches)."""
    end = scroll_x + width
    size = len(text)
    if size >= end:
        parts = [text[scroll_x:end]]
    elif scroll_x < size:
        parts = [text[scroll_x:], " " * (end - size)]
    else:
        parts = [" " * width]
    segments = []
    x = scroll_x
    for part in parts:
        offset = Style.from_meta({"offset": (x, y)})
        segments.append(Segment(part, style + offset if style else offset))
        x += len(part)
    return Strip(segments, width)


# --- what a run log line looks like in the view ------------------------------------------------

STREAM_MARKS = {"stdout": " ", "stderr": "!", "info": "»"}
"""One character between time and task: blank for stdout, ``!`` for stderr, ``»`` for devorch's own lines."""


class LineFormatter:
    """Turns run log lines (live events or the on-disk ``TS<TAB>STREAM<TAB>STEP<TAB>TEXT``) into view lines.

    A view line is ``HH:MM:SS M [step] text`` in local time, M being the stream mark. Prefixes are
    cached, so formatting costs one string join per line.
    """

    def __init__(self) -> None:
        self._prefixes: dict[tuple[object, str, str], str] = {}

    def prefix(self, ts: float, stream: str, step: str) -> str:
        key = (int(ts), stream, step)
        found = self._prefixes.get(key)
        if found is None:
            if len(self._prefixes) > 4096:
                self._prefixes.clear()
            found = self._prefixes[key] = self._make(time.strftime("%H:%M:%S", time.localtime(int(ts))), stream, step)
        return found

    def prefix_from_disk(self, ts_text: str, stream: str, step: str) -> str:
        key = (ts_text[:19], stream, step)
        found = self._prefixes.get(key)
        if found is None:
            if len(self._prefixes) > 4096:
                self._prefixes.clear()
            try:
                moment = datetime.strptime(ts_text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
                clock = moment.astimezone().strftime("%H:%M:%S")
            except ValueError:
                clock = "??:??:??"
            found = self._prefixes[key] = self._make(clock, stream, step)
        return found

    @staticmethod
    def _make(clock: str, stream: str, step: str) -> str:
        return f"{clock} {STREAM_MARKS.get(stream, '?')} [{step}] "

    def disk_line(self, raw: str) -> str:
        """A line of a ``<target>.log`` file as the view shows it (odd lines are shown as they are)."""
        parts = raw.split("\t", 3)
        if len(parts) != 4:
            return strip_ansi(raw)
        text = parts[3]
        if "\x1b" in text or "\r" in text or "\x9b" in text:
            text = strip_ansi(text)
        return self.prefix_from_disk(parts[0], parts[1], parts[2]) + text


@dataclass
class LogSlice:
    """Lines read from a log file for a view: the last ``max_lines`` that match, and how many matched."""

    lines: list[str]
    matched: int
    read_bytes: int

    @property
    def hidden(self) -> int:
        """Matching lines older than the ones kept (beyond ``max_lines``)."""
        return self.matched - len(self.lines)


def read_log_slice(path: Path, *, upto: int | None, needle: str | None, max_lines: int, start: int = 0) -> LogSlice:
    """Read ``path`` from byte ``start`` up to byte ``upto`` (what was on disk when the view switched;
    later lines come live), keeping the last ``max_lines`` lines that contain ``needle``
    (case-insensitive). ``read_bytes`` counts from ``start``; a partial last line is left for later."""
    formatter = LineFormatter()
    kept: deque[str] = deque(maxlen=max_lines)
    matched = 0
    read = 0
    needle = needle.lower() if needle else None
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return LogSlice([], 0, 0)
    with handle:
        if start:
            handle.seek(start)
        for raw in handle:
            if upto is not None and start + read + len(raw) > upto:
                break
            if not raw.endswith(b"\n") and upto is not None:
                break  # a partial last line (still being written) comes live instead
            read += len(raw)
            line = formatter.disk_line(raw.decode("utf-8", errors="replace").rstrip("\n"))
            if needle is not None and needle not in line.lower():
                continue
            matched += 1
            kept.append(line)
    return LogSlice(list(kept), matched, read)


def save_log_view(source: Path, dest: Path, *, needle: str | None) -> int:
    """Write the whole log ``source`` as the view shows it (only lines with ``needle``, if given) to
    ``dest``, atomically; returns the number of lines written."""
    formatter = LineFormatter()
    needle = needle.lower() if needle else None
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    count = 0
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a log is as private as the run's own (0600)
        os.fchmod(fd, 0o600)  # (a leftover temporary file keeps its mode through O_CREAT)
        with open(fd, "w", encoding="utf-8") as out:
            try:
                handle = open(source, "rb")
            except FileNotFoundError:
                handle = None
            if handle is not None:
                with handle:
                    for raw in handle:
                        line = formatter.disk_line(raw.decode("utf-8", errors="replace").rstrip("\n"))
                        if needle is not None and needle not in line.lower():
                            continue
                        out.write(line)
                        out.write("\n")
                        count += 1
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count

"""What the live widgets (RunLog, RunTasks) share to draw a frame cheaply."""

from __future__ import annotations

from typing import Any

from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


class FrameStyle:
    """``rich_style`` worked out once per frame instead of once per line (each time a walk up the
    DOM; Log and DataTable ask for it on every line). It cannot change within a frame. A mixin: list
    it before the widget class (``class RunLog(FrameStyle, Log)``)."""

    _frame_style: Style | None = None
    """The widget's style while a frame renders (None otherwise)."""

    def render_lines(self, crop: Region) -> list[Strip]:
        parent: Any = super()
        self._frame_style = parent.rich_style
        try:
            return parent.render_lines(crop)  # type: ignore[no-any-return]
        finally:
            self._frame_style = None

    @property
    def rich_style(self) -> Style:
        if self._frame_style is not None:
            return self._frame_style
        parent: Any = super()
        return parent.rich_style  # type: ignore[no-any-return]


def sized_by_content(widget: Widget) -> bool:
    """True when the widget's width or height is ``auto`` (its content decides its size)."""
    styles = widget.styles
    return any(scalar is not None and scalar.is_auto for scalar in (styles.width, styles.height))

"""The key bar at the bottom of the dashboard: Textual's ``Footer``, restyled in place when it can be.

Textual's ``Footer`` rebuilds itself (removes every key, mounts new ones, then a layout pass of the
screen) whenever the bindings may have changed: every focus move and every ``refresh_bindings``, even
when the keys it shows stay the same. In the dashboard that costs the event loop 25-50 ms, and it
lands exactly when something starts (a run: its keys become live), which is when a key press must
not wait. ``KeysFooter`` works out which keys ``Footer.compose`` would show: when they are the same
keys as now, only their state is changed in place (a key dimmed or live again is restyled, a tooltip
replaced; nothing at all when nothing changed). When the keys themselves change (another pane, a key
that appears or goes) it rebuilds exactly as ``Footer`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Footer
from textual.widgets._footer import FooterKey

if TYPE_CHECKING:
    from textual.screen import Screen

KeySpec = tuple[tuple[str, str, str, str, frozenset[str]], bool, str | None]
"""((key, key display, description, action, classes), disabled, tooltip) of one key of the footer."""

_STATE_CLASSES = frozenset({"-disabled", "-compact"})
"""Classes a key gets from its state (dimmed, compact), not from what it is."""


class KeysFooter(Footer):
    """A ``Footer`` that restyles its keys in place instead of rebuilding itself when it can."""

    _sync_pending = False

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._sync_pending:
            self._sync_pending = True  # several changes before the next frame: one update
            if not self.call_after_refresh(self._sync_keys):
                self._sync_pending = False  # closing

    def _wanted_keys(self) -> list[KeySpec] | None:
        """The keys ``Footer.compose`` would show now, in order; None when binding groups are in
        play (grouped keys sit in containers: left to ``Footer``)."""
        app = self.app
        active = self.screen.active_bindings
        by_action: dict[str, tuple[object, bool, str]] = {}
        for _node, binding, enabled, tooltip in active.values():
            if binding.show:
                if binding.group is not None:
                    return None
                by_action.setdefault(binding.action, (binding, enabled, tooltip))  # the first one shows
        keys: list[KeySpec] = []
        for binding, enabled, tooltip in by_action.values():
            identity = (binding.key, app.get_key_display(binding), binding.description, binding.action, frozenset())  # type: ignore[attr-defined]
            keys.append((identity, not enabled, tooltip or None))
        if self.show_command_palette and app.ENABLE_COMMAND_PALETTE:
            found = active.get(app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, binding, enabled, _tooltip = found
                identity = (binding.key, app.get_key_display(binding), binding.description, binding.action, frozenset({"-command-palette"}))
                keys.append((identity, not enabled, binding.tooltip or binding.description or None))
        return keys

    async def _sync_keys(self) -> None:
        self._sync_pending = False
        if not self.is_attached or getattr(self, "_pruning", False):
            return
        wanted = self._wanted_keys()
        shown = list(self.children)
        if (
            wanted is None
            or len(wanted) != len(shown)
            or any(type(child) is not FooterKey for child in shown)
            or [identity for identity, _disabled, _tooltip in wanted] != [_identity(child) for child in shown]  # type: ignore[arg-type]
        ):
            await self.recompose()  # other keys: Footer's own way
            return
        for child, (_identity_, disabled, tooltip) in zip(shown, wanted, strict=True):
            key: FooterKey = child  # type: ignore[assignment]
            if key._disabled != disabled:  # what FooterKey(disabled=...) sets up, changed in place
                key._disabled = disabled
                key.set_class(disabled, "-disabled")
            if key.tooltip != tooltip:
                key.tooltip = tooltip


def _identity(key: FooterKey) -> tuple[str, str, str, str, frozenset[str]]:
    return (key.key, key.key_display, key.description, key.action, frozenset(key.classes - _STATE_CLASSES))

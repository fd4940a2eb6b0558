"""Run service coroutines in workers and turn their failures into notifications.

The one place that decides how an error reaches the user in the TUI: a DevorchError becomes its
message and fix; anything unexpected becomes a short notification and a traceback in the app log
file (state dir), never a crash.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from textual.dom import DOMNode
from textual.worker import Worker

from devorch_tui.errors import DevorchError

T = TypeVar("T")
log = logging.getLogger("devorch_tui")


def report_error(node: DOMNode, title: str, exc: BaseException) -> None:
    """Show ``exc`` to the user as a notification (and log unexpected ones with their traceback)."""
    if isinstance(exc, DevorchError):
        node.notify(exc.describe(), title=title, severity="error", timeout=10, markup=False)
        return
    log.error("%s: %s", title, "".join(traceback.format_exception(exc)))
    node.notify(
        f"Unexpected {type(exc).__name__}: {exc}\n(details in the app log, see `devorch-tui paths`)",
        title=title,
        severity="error",
        timeout=15,
        markup=False,
    )


def run_job(
    node: DOMNode,
    work: Callable[[], Awaitable[T]],
    *,
    title: str,
    on_done: Callable[[T], Any] | None = None,
    on_error: Callable[[BaseException], Any] | None = None,
    group: str = "default",
    exclusive: bool = False,
) -> Worker[None]:
    """Run ``work()`` in an async worker owned by ``node``.

    ``on_done(result)`` runs on success; on failure the error is reported as a notification titled
    ``title`` and ``on_error(exc)`` (if given) runs so the caller can restore its state.
    """

    async def runner() -> None:
        try:
            result = await work()
        except Exception as exc:  # noqa: BLE001 - every failure must end as a message
            report_error(node, title, exc)
            if on_error is not None:
                on_error(exc)
            return
        if on_done is not None:
            on_done(result)

    return node.run_worker(runner, name=title, group=group, exclusive=exclusive, exit_on_error=False)

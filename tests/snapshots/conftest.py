"""Snapshot tests build the real app with a fixed sub-title so SVGs do not depend on tmp paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devorch_tui.config import Settings
from devorch_tui.ui.app import DevorchApp


@pytest.fixture
def make_app(settings: Settings) -> Callable[..., DevorchApp]:
    def factory(**kwargs: Any) -> DevorchApp:
        app = DevorchApp(settings, **kwargs)
        app.sub_title = "~/my-workspace"
        return app

    return factory

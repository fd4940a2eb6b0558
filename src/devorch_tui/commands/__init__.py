"""Headless subcommands, one module per area; each exposes ``register(subparsers, common)``.

A handler takes ``(args, settings)`` and returns an exit code (or a coroutine that does). Handlers
print results to stdout (``--json`` where offered) and let DevorchError propagate: cli.main turns it
into ``error:``/``fix:`` lines and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from devorch_tui.config import Settings

Handler = Callable[[argparse.Namespace, Settings], "int | None | Awaitable[int | None]"]


def add_group(
    subparsers: argparse._SubParsersAction, name: str, help: str, common: argparse.ArgumentParser
) -> argparse._SubParsersAction:
    """A command with its own subcommands (`templates list`); alone it prints its help."""
    group = subparsers.add_parser(name, help=help, description=help, parents=[common])
    group.set_defaults(command_parser=group)
    return group.add_subparsers(title=f"{name} commands", metavar="COMMAND")


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=_json_default)
    sys.stdout.write("\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")

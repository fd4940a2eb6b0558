"""`devorch-tui paths` (and, with the templates work, `init`)."""

from __future__ import annotations

import argparse

from devorch_tui.commands import print_json
from devorch_tui.config import Settings


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    paths = subparsers.add_parser(
        "paths", help="print where settings, keys, run history and the workspace live", parents=[common]
    )
    paths.add_argument("--json", action="store_true", help="print as JSON")
    paths.set_defaults(handler=cmd_paths)


def cmd_paths(args: argparse.Namespace, settings: Settings) -> int:
    entries = {**settings.paths.as_dict(), **settings.workspace_paths.as_dict()}
    if args.json:
        print_json(entries)
    else:
        width = max(len(name) for name in entries)
        for name, path in entries.items():
            print(f"{name:<{width}}  {path}")
    return 0

"""Command line entry point.

``devorch-tui`` with no subcommand opens the dashboard; every subcommand runs the same services
headless, for scripts and CI. Each area registers its subcommands from its own module in
``devorch_tui.commands`` (see COMMAND_MODULES). Errors a user can cause end as ``error: ...`` and
``  fix: ...`` on stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys
from collections.abc import Sequence

from devorch_tui import __version__
from devorch_tui.commands import Handler
from devorch_tui.config import Settings, load_settings
from devorch_tui.errors import DevorchError

COMMAND_MODULES = ("workspace", "host", "templates", "vm", "agent", "provision")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-w",
        "--workspace",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="workspace folder holding templates/, .env and cloud-init.yaml (default: the current folder)",
    )
    parser = argparse.ArgumentParser(
        prog="devorch-tui",
        description="Reproducible developer VMs on Canonical Multipass. Without a command, opens the dashboard.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"devorch-tui {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"devorch_tui.commands.{name}")
        module.register(subparsers, common)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    return load_settings(workspace=getattr(args, "workspace", None))


def run_handler(handler: Handler, args: argparse.Namespace, settings: Settings) -> int:
    result = handler(args, settings)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return int(result or 0)


def open_dashboard(settings: Settings) -> int:
    from devorch_tui.ui.app import DevorchApp  # textual is imported only for the dashboard

    DevorchApp(settings).run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        handler: Handler | None = getattr(args, "handler", None)
        if handler is None:
            if getattr(args, "command_parser", None) is not None:  # a group like `templates` given alone
                args.command_parser.print_help()
                return 2
            return open_dashboard(settings)
        return run_handler(handler, args, settings)
    except DevorchError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `devorch-tui vm list | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

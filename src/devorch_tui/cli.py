"""Command line entry point.

``devorch-tui`` with no subcommand opens the dashboard; every subcommand runs the same services
headless, for scripts and CI. Each area registers its subcommands from its own module in
``devorch_tui.commands``; COMMANDS lists them with the line ``--help`` shows, so that only the module
of the command being run is imported (the dashboard imports none). Errors a user can cause end as
``error: ...`` and ``  fix: ...`` on stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from devorch_tui import __version__
from devorch_tui.errors import DevorchError

if TYPE_CHECKING:
    from devorch_tui.commands import Handler
    from devorch_tui.config import Settings

# Top-level command -> (module in devorch_tui.commands that registers it, its line in `--help`).
# tests/unit/test_cli.py checks that this matches what the modules register.
COMMANDS: dict[str, tuple[str, str]] = {
    "paths": ("workspace", "print where settings, keys, run history and the workspace live"),
    "init": ("workspace", "create a workspace: DIR/templates from an example template and DIR/.env from its .env.example"),
    "check": ("host", "check this machine (OS, multipass and its daemon, virtualization, RAM, disk, ssh, SSH key)"),
    "setup": ("host", "install multipass (snap on Linux, brew on macOS) after a confirmation, then re-check"),
    "keygen": ("host", "create the dedicated ed25519 SSH key for VMs and print its public key path"),
    "templates": ("templates", "list, copy, render and inspect cloud-init templates"),
    "vm": ("vm", "list and control Multipass VMs"),
    "run": ("agent", "run a task file on one or more VMs or SSH hosts, streaming their output"),
    "runs": ("agent", "past and current runs (task files, base image builds, provisioning)"),
    "forget-host": ("agent", "forget the pinned SSH host key of a VM or host (after the VM was recreated)"),
    "tasks": ("agent", "task files: JSON schema and validation"),
    "base-image": ("provision", "build, verify and inspect the golden base image"),
    "provision": ("provision", "make a project VM dev-NAME from the golden image with a git repository cloned inside"),
    "teardown": ("provision", "delete and purge project VM dev-NAME and forget its host key (run logs are kept)"),
}
COMMAND_MODULES = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's error style: ``error:`` and ``  fix:`` lines and exit code 1 (bad input,
    as multipass exits on a client error), instead of argparse's exit code 2 (which means a multipass
    daemon error here)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        print(f"  fix: see `{self.prog} --help`", file=sys.stderr)
        raise SystemExit(1)


class LazyCommands(argparse._SubParsersAction):
    """Sub-commands listed up front (for `--help` and choices) whose parsers are built on first use.

    When argparse picks a command, its module is imported and registers its parsers (``register``
    calls ``add_parser`` on this action, which fills the listed entry in place). Nothing else is imported.
    """

    def __init__(self, *args: Any, common: argparse.ArgumentParser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.common = common
        self._unbuilt: dict[str, str] = {}  # listed command -> module that registers it

    def add_lazy(self, name: str, module: str, help: str) -> None:
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), help))
        self._name_parser_map[name] = None  # a known choice; the parser comes with its module
        self._unbuilt[name] = module

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if self._unbuilt.pop(name, None) is None:
            return super().add_parser(name, **kwargs)
        kwargs.pop("help", None)  # listed already
        kwargs.setdefault("prog", f"{self._prog_prefix} {name}")
        parser = self._parser_class(**kwargs)
        self._name_parser_map[name] = parser  # same key: the order of the choices is kept
        return parser

    def load(self, name: str) -> None:
        """Import the module of command ``name`` (once) so its parsers exist."""
        module = self._unbuilt.get(name)
        if module is not None:
            importlib.import_module(f"devorch_tui.commands.{module}").register(self, self.common)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        self.load(values[0])
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-w",
        "--workspace",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="workspace folder holding templates/, .env and cloud-init.yaml (default: the current folder)",
    )
    parser = Parser(
        prog="devorch-tui",
        description="Reproducible developer VMs on Canonical Multipass. Without a command, opens the dashboard.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"devorch-tui {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", action=LazyCommands, common=common)
    for name, (module, help) in COMMANDS.items():
        subparsers.add_lazy(name, module, help)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    from devorch_tui.config import load_settings  # pydantic-settings: not needed for --help and --version

    return load_settings(workspace=getattr(args, "workspace", None))


def run_handler(handler: Handler, args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import inspect

    result = handler(args, settings)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return int(result or 0)


def open_dashboard(args: argparse.Namespace) -> int:
    """Open the dashboard. It loads the settings itself, after its first frame is on screen; a settings
    error closes it and is reported here like any other error."""
    from functools import partial

    from devorch_tui.ui.app import DevorchApp  # textual is imported only for the dashboard

    app = DevorchApp(partial(settings_from_args, args), own_process=True)
    app.run()
    if app.startup_error is not None:
        raise app.startup_error
    return app.return_code or 0  # 1 when the app stopped on an unexpected error


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        handler: Handler | None = getattr(args, "handler", None)
        if handler is None:
            if getattr(args, "command_parser", None) is not None:  # a group like `templates` given alone
                args.command_parser.print_help(sys.stderr)
                return 1
            return open_dashboard(args)
        return run_handler(handler, args, settings_from_args(args))
    except DevorchError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `devorch-tui vm list | head`: the reader left before the end
        import os

        # Nothing more can be written (and Python's final flush must not complain about it either).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        # What a program killed by SIGPIPE reports (128 + 13): the command's own result is unknown,
        # so never 0 (`check --json | head` must not pass when the check failed).
        return 141


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

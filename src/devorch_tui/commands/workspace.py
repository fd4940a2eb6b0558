"""`devorch-tui paths` and `devorch-tui init DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path

from devorch_tui.commands import print_json
from devorch_tui.config import Settings, Workspace


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    paths = subparsers.add_parser(
        "paths", help="print where settings, keys, run history and the workspace live", parents=[common]
    )
    paths.add_argument("--json", action="store_true", help="print as JSON")
    paths.set_defaults(handler=cmd_paths)

    init = subparsers.add_parser(
        "init",
        help="create a workspace: DIR/templates from an example template and DIR/.env from its .env.example",
        description="Create a workspace in DIR (made if missing). An existing .env is kept.",
        parents=[common],
    )
    init.add_argument("dir", metavar="DIR", help="the workspace folder to create")
    init.add_argument("--template", default="python", metavar="NAME", help="example template to start from (default: python)")
    init.add_argument("--force", action="store_true", help="replace a non-empty templates/ (its files are backed up)")
    init.set_defaults(handler=cmd_init)


def cmd_paths(args: argparse.Namespace, settings: Settings) -> int:
    entries = {**settings.paths.as_dict(), **settings.workspace_paths.as_dict()}
    if args.json:
        print_json(entries)
    else:
        width = max(len(name) for name in entries)
        for name, path in entries.items():
            print(f"{name:<{width}}  {path}")
    return 0


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from devorch_tui.services import templates  # jinja2 is only needed here

    workspace = Workspace(Path(args.dir).expanduser().resolve())
    result = templates.init_workspace(workspace, args.template, force=args.force)
    print(f"workspace {workspace.root} ready with template {result.template.name!r}")
    print(f"  template  {workspace.template_file}")
    if result.backup:
        print(f"  backup    {result.backup} (the previous templates/ files)")
    env_state = "created from .env.example, mode 0600" if result.env_created else "kept as it was"
    print(f"  .env      {workspace.env_file} ({env_state})")
    print(f"next: fill in GIT_NAME, GIT_EMAIL and SSH_PUBLIC_KEY (`devorch-tui keygen` makes a key), then")
    print(f"      `devorch-tui -w {workspace.root} templates render`")
    return 0

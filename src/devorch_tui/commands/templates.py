"""Headless `templates` commands: list, copy, render, show."""

from __future__ import annotations

import argparse

from devorch_tui.commands import add_group, print_json
from devorch_tui.config import Settings
from devorch_tui.services import templates


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = add_group(subparsers, "templates", "list, copy, render and inspect cloud-init templates", common)

    listing = group.add_parser("list", help="list the example templates with their descriptions", parents=[common])
    listing.add_argument("--json", action="store_true", help="print as JSON")
    listing.set_defaults(handler=cmd_list)

    copy = group.add_parser(
        "copy",
        help="copy an example template into the workspace's templates/",
        description="Copy example NAME into templates/. Edited files are only replaced with --force, after a backup.",
        parents=[common],
    )
    copy.add_argument("name", metavar="NAME", help="template name (see `templates list`)")
    copy.add_argument("--force", action="store_true", help="replace edited files (they are backed up first)")
    copy.set_defaults(handler=cmd_copy)

    render = group.add_parser(
        "render",
        help="render templates/cloud-init.j2 with .env into cloud-init.yaml (mode 0600)",
        description="Check the .env values, render the template and write cloud-init.yaml atomically.",
        parents=[common],
    )
    render.add_argument("--check", action="store_true", help="only check that it renders; write nothing")
    render.set_defaults(handler=cmd_render)

    show = group.add_parser(
        "show",
        help="show the active template and every variable it uses, with its value (secrets masked)",
        parents=[common],
    )
    show.add_argument("--json", action="store_true", help="print as JSON")
    show.set_defaults(handler=cmd_show)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    workspace = settings.workspace_paths
    active = templates.active_template(workspace)
    entries = []
    for template in templates.catalog():
        entries.append({**template.as_dict(), "active": active.source == template.name, "modified": active.source == template.name and active.modified})
    if args.json:
        print_json(entries)
        return 0
    width = max((len(entry["name"]) for entry in entries), default=4)
    for entry in entries:
        mark = "*" if entry["active"] else " "
        print(f"{mark} {entry['name']:<{width}}  {entry['description']}")
    if active.template is None:
        print(f"\nno active template in {workspace.templates_dir}: `devorch-tui templates copy NAME`")
    elif active.source is None:
        print(f"\nactive in {workspace.templates_dir}: {active.template.name!r}, a custom template (none of the above)")
    else:
        state = ", edited" if active.modified else ""
        print(f"\n* = active in {workspace.templates_dir} ({active.source}{state})")
    return 0


def cmd_copy(args: argparse.Namespace, settings: Settings) -> int:
    result = templates.copy_template(args.name, settings.workspace_paths, force=args.force)
    if result.unchanged:
        print(f"{settings.workspace_paths.templates_dir} already holds template {args.name!r}; nothing to do")
        return 0
    for path in result.written:
        print(f"wrote {path}")
    if result.backup:
        print(f"previous files kept in {result.backup}")
    if not settings.workspace_paths.env_file.exists():
        print(f"next: copy {settings.workspace_paths.env_example} to {settings.workspace_paths.env_file} and fill it in")
    return 0


def cmd_render(args: argparse.Namespace, settings: Settings) -> int:
    workspace = settings.workspace_paths
    result = templates.render(workspace, write=not args.check)
    if args.check:
        state = "up to date" if not result.changed else ("stale" if workspace.rendered.exists() else "not written yet")
        print(f"ok: templates/cloud-init.j2 renders to valid cloud-config (sha256 {result.sha256}); {workspace.rendered} is {state}")
    else:
        state = "unchanged" if not result.changed else "updated"
        print(f"wrote {result.path} ({state}, sha256 {result.sha256})")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    workspace = settings.workspace_paths
    active = templates.active_template(workspace)
    variables = templates.variables(workspace)
    values = {variable.name: variable.value for variable in variables if variable.value is not None}
    problems = {
        error.field: error
        for error in templates.check_values(values, active.template, names=[v.name for v in variables if v.value and v.value.strip()])
    }
    if args.json:
        print_json(
            {
                "template": active.template.as_dict() if active.template else None,
                "source": active.source,
                "modified": active.modified,
                "env_file": workspace.env_file,
                "rendered": workspace.rendered,
                "variables": [
                    {**variable.as_dict(), "problem": str(problems[variable.name]) if variable.name in problems else None}
                    for variable in variables
                ],
                "missing": [variable.name for variable in variables if variable.missing],
            }
        )
        return 1 if problems or any(variable.missing for variable in variables) else 0  # as without --json
    assert active.template is not None  # variables() raised otherwise
    origin = f"from example {active.source!r}{' (edited)' if active.modified else ''}" if active.source else "custom"
    print(f"template  {active.template.name} ({origin}) in {workspace.templates_dir}")
    print(f"env       {workspace.env_file}{'' if workspace.env_file.exists() else ' (missing: defaults from .env.example)'}")
    print()
    width = max(len(variable.name) for variable in variables)
    for variable in variables:
        if variable.missing:
            status = "MISSING"
        elif variable.name in problems:
            status = "INVALID"
        else:
            status = "ok"
        value = variable.display_value if variable.value is not None else "(unset)"
        if len(value) > 60:
            value = value[:57] + "..."
        used = f"line {', '.join(map(str, variable.lines))}" if variable.used else "not in template"
        source = variable.source or "-"
        print(f"{status:<7}  {variable.name:<{width}}  {value:<60}  {source:<12}  {used}")
        if variable.name in problems:
            error = problems[variable.name]
            print(f"{'':<7}  {'':<{width}}  {error.reason}{f' (fix: {error.hint})' if error.hint else ''}")
    missing = [variable.name for variable in variables if variable.missing]
    if missing:
        print(f"\nmissing: {', '.join(missing)}: set them in {workspace.env_file}")
    return 1 if missing or problems else 0

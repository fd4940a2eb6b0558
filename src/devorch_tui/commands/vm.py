"""Headless `vm` commands: list, info, snapshots, images and the whole instance lifecycle.

Each command is one call of :class:`MultipassClient` (the same code the dashboard runs). Failures
are MultipassError / ValidationError, printed by cli.main as ``error:`` / ``  fix:`` with a non-zero
exit code (multipass's own code where it gave one: 2 daemon error, 5 timeout).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from devorch_tui.commands import add_group, print_json
from devorch_tui.config import Settings
from devorch_tui.services.multipass import (
    Instance,
    InstanceInfo,
    MultipassClient,
    MultipassError,
    MultipassErrorKind,
    SnapshotInfo,
)

GiB = 1024**3
MiB = 1024**2


def _client(settings: Settings) -> MultipassClient:
    return MultipassClient.from_settings(settings)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)


def human_bytes(value: int | None) -> str:
    if value is None:
        return "--"
    if value >= GiB:
        return f"{value / GiB:.1f}GiB"
    if value >= MiB:
        return f"{value / MiB:.1f}MiB"
    return f"{value}B"


def instance_json(instance: Instance) -> dict[str, Any]:
    return {"name": instance.name, "state": instance.state, "ipv4": list(instance.ipv4), "release": instance.release}


def info_json(info: InstanceInfo) -> dict[str, Any]:
    data = info.model_dump(mode="json")
    data["address"] = info.address
    return data


# --------------------------------------------------------------------------- queries


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    instances = await _client(settings).list()
    if args.json:
        print_json([instance_json(instance) for instance in instances])
        return 0
    if not instances:
        print("No instances found.")
        return 0
    rows = [["NAME", "STATE", "IPV4", "RELEASE"]]
    rows += [[i.name, i.state, ", ".join(i.ipv4) or "--", i.release or "--"] for i in instances]
    print(_table(rows))
    return 0


async def cmd_info(args: argparse.Namespace, settings: Settings) -> int:
    info = await _client(settings).info(*args.names)
    if args.json:
        print_json([info_json(entry) for entry in info.values()])
        return 0
    blocks = []
    for entry in info.values():
        if entry.has_details:  # `vm info NAME.SNAP` asks for a snapshot only: no instance block
            blocks.append(_block(_instance_lines(entry)))
        blocks += [_block(_snapshot_lines(snap)) for snap in entry.snapshots.values()]
    print("\n\n".join(blocks))
    return 0


def _block(lines: list[tuple[str, str]]) -> str:
    return "\n".join(f"{key + ':':<11}{value}" for key, value in lines)


def _instance_lines(entry: InstanceInfo) -> list[tuple[str, str]]:
    return [
        ("Name", entry.name),
        ("State", entry.state),
        ("IPv4", ", ".join(entry.ipv4) or "--"),
        ("Release", entry.release or "--"),
        ("Image", f"{entry.image_release} ({entry.image_hash[:12]})" if entry.image_hash else "--"),
        ("CPUs", str(entry.cpu_count) if entry.cpu_count is not None else "--"),
        ("Load", " ".join(f"{value:g}" for value in entry.load) or "--"),
        ("Memory", f"{human_bytes(entry.memory_used)} of {human_bytes(entry.memory_total)}"),
        ("Disk", f"{human_bytes(entry.disk_used)} of {human_bytes(entry.disk_total)}"),
        ("Snapshots", str(entry.snapshot_count) if entry.snapshot_count is not None else "--"),
        ("Mounts", ", ".join(f"{m.source_path} => {t}" for t, m in entry.mounts.items()) or "--"),
    ]


def _snapshot_lines(snap: SnapshotInfo) -> list[tuple[str, str]]:
    return [
        ("Snapshot", snap.name),
        ("Instance", snap.instance),
        ("Created", snap.created or "--"),
        ("Parent", snap.parent or "--"),
        ("Children", ", ".join(snap.children) or "--"),
        ("CPUs", str(snap.cpu_count) if snap.cpu_count is not None else "--"),
        ("Memory", snap.memory_size or "--"),
        ("Disk", snap.disk_space or "--"),
        ("Mounts", ", ".join(f"{source} => {target}" for target, source in snap.mounts.items()) or "--"),
        ("Comment", " ".join(snap.comment.split()) or "--"),
    ]


async def cmd_snapshots(args: argparse.Namespace, settings: Settings) -> int:
    client = _client(settings)
    snapshots = await client.list_snapshots()
    if args.name:
        snapshots = [snap for snap in snapshots if snap.instance == args.name]
        if not snapshots:
            # `list --snapshots` leaves out VMs without snapshots: make sure this one exists (cheap
            # info, no SSH); a missing VM fails here with multipass's own not-found error.
            await client.info(args.name, runtime=False)
    if args.json:
        print_json([snap.model_dump(mode="json") for snap in snapshots])
        return 0
    if not snapshots:
        print(f"{args.name} has no snapshots." if args.name else "No snapshots found.")
        return 0
    rows = [["INSTANCE", "SNAPSHOT", "PARENT", "COMMENT"]]
    rows += [[s.instance, s.name, s.parent or "--", (s.comment.splitlines() or ["--"])[0]] for s in snapshots]
    print(_table(rows))
    return 0


async def cmd_images(args: argparse.Namespace, settings: Settings) -> int:
    images = await _client(settings).find()
    if args.json:
        print_json([image.model_dump(mode="json") for image in images])
        return 0
    rows = [["IMAGE", "ALIASES", "VERSION", "DESCRIPTION"]]
    rows += [[i.name, ",".join(i.aliases) or "--", i.version, i.label] for i in images]
    print(_table(rows))
    return 0


# --------------------------------------------------------------------------- lifecycle


def _each(verb: str, call: Callable[[MultipassClient, argparse.Namespace], Awaitable[Any]]):
    async def handler(args: argparse.Namespace, settings: Settings) -> int:
        await call(_client(settings), args)
        names = getattr(args, "names", None)
        print(f"{verb} {', '.join(names)}" if names else verb)
        return 0

    return handler


async def cmd_launch(args: argparse.Namespace, settings: Settings) -> int:
    client = _client(settings)
    plan = client.plan_launch(  # every argument is checked before anything is said or run
        args.name,
        image=args.image,
        cpus=args.cpus,
        memory=args.memory,
        disk=args.disk,
        cloud_init=Path(args.cloud_init) if args.cloud_init else None,
        timeout=args.timeout,
    )
    print(f"launching {plan.name} from {args.image}; this can take several minutes...", file=sys.stderr, flush=True)
    output = await client.run_launch(plan)
    print(output or f"Launched: {plan.name}")
    return 0


async def cmd_snapshot(args: argparse.Namespace, settings: Settings) -> int:
    snapshot = await _client(settings).snapshot(args.name, snapshot_name=args.snapshot_name, comment=args.comment)
    print(f"snapshot taken: {args.name}.{snapshot}")
    return 0


async def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    await _client(settings).restore(args.name, args.snapshot)
    print(f"restored {args.name} to snapshot {args.snapshot}")
    return 0


async def cmd_clone(args: argparse.Namespace, settings: Settings) -> int:
    await _client(settings).clone(args.source, args.new_name)
    print(f"cloned {args.source} to {args.new_name} (Stopped; start it with `devorch-tui vm start {args.new_name}`)")
    return 0


def cmd_shell(args: argparse.Namespace, settings: Settings) -> int:
    argv = _client(settings).shell_argv(args.name)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        raise MultipassError(
            f"multipass is not installed (looked for {argv[0]!r})", kind=MultipassErrorKind.MISSING, command="shell"
        ) from None
    return 1  # pragma: no cover - execvp does not return


# --------------------------------------------------------------------------- registration


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    vm = add_group(subparsers, "vm", "list and control Multipass VMs", common)

    def add(name: str, help: str, handler: Any) -> argparse.ArgumentParser:
        parser = vm.add_parser(name, help=help, description=help, parents=[common])
        parser.set_defaults(handler=handler)
        return parser

    parser = add("list", "list every VM, sorted by name", cmd_list)
    parser.add_argument("--json", action="store_true", help="print a JSON list of {name, state, ipv4, release}")

    parser = add("info", "show details of VMs (CPUs, load, memory, disk, snapshots)", cmd_info)
    parser.add_argument("names", nargs="+", metavar="NAME")
    parser.add_argument("--json", action="store_true", help="print JSON")

    parser = add("snapshots", "list snapshots (of one VM, or of all)", cmd_snapshots)
    parser.add_argument("name", nargs="?", metavar="NAME")
    parser.add_argument("--json", action="store_true", help="print JSON")

    parser = add("images", "list the images VMs can be launched from", cmd_images)
    parser.add_argument("--json", action="store_true", help="print JSON")

    parser = add("launch", "create and start a VM", cmd_launch)
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--image", default="22.04", help="release, codename or image URL (default 22.04)")
    parser.add_argument("--cpus", help="number of CPUs (default: multipass's, 1)")
    parser.add_argument("--memory", help="memory, e.g. 4G (at least 512M)")
    parser.add_argument("--disk", help="disk, e.g. 20G (at least 1G)")
    parser.add_argument("--cloud-init", metavar="FILE", help="cloud-init file, e.g. the rendered cloud-init.yaml")
    parser.add_argument("--timeout", metavar="SECONDS", help="seconds to wait, 1 or more (default: the launch timeout setting)")

    simple = [
        ("start", "start VMs", "started", lambda c, a: c.start(*a.names)),
        ("suspend", "suspend running VMs", "suspended", lambda c, a: c.suspend(*a.names)),
        ("restart", "restart VMs", "restarted", lambda c, a: c.restart(*a.names)),
        ("recover", "bring deleted VMs back (as Stopped)", "recovered", lambda c, a: c.recover(*a.names)),
    ]
    for name, help, verb, call in simple:
        parser = add(name, help, _each(verb, call))
        parser.add_argument("names", nargs="+", metavar="NAME")

    parser = add("stop", "stop VMs", _each("stopped", lambda c, a: c.stop(*a.names, force=a.force)))
    parser.add_argument("names", nargs="+", metavar="NAME")
    parser.add_argument("--force", action="store_true", help="power off at once (also works on suspended VMs)")

    parser = add(
        "delete",
        "delete VMs (recoverable until purged)",
        _each("deleted", lambda c, a: c.delete(*a.names, purge=a.purge)),
    )
    parser.add_argument("names", nargs="+", metavar="NAME")
    parser.add_argument("--purge", action="store_true", help="delete for good (cannot be recovered)")

    add("purge", "permanently remove every deleted VM", _each("purged deleted VMs", lambda c, a: c.purge()))

    parser = add("snapshot", "take a snapshot of a stopped VM", cmd_snapshot)
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--name", dest="snapshot_name", metavar="SNAPSHOT", help="snapshot name (default: snapshotN)")
    parser.add_argument("--comment", help="a comment stored with the snapshot")

    parser = add("restore", "restore a stopped VM to a snapshot (its current state is discarded)", cmd_restore)
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("snapshot", metavar="SNAPSHOT")

    parser = add("clone", "clone a stopped VM (multipass 1.15+, not on lxd)", cmd_clone)
    parser.add_argument("source", metavar="SOURCE")
    parser.add_argument("--name", dest="new_name", required=True, metavar="NEW", help="name of the clone")

    parser = add("shell", "open a shell in a VM (starts it if needed)", cmd_shell)
    parser.add_argument("name", metavar="NAME")

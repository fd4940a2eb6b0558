"""Headless host commands: `check`, `setup`, `keygen`."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from devorch_tui.commands import print_json
from devorch_tui.config import Settings
from devorch_tui.services import host, sshkeys

STATUS_LABEL = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    check = subparsers.add_parser(
        "check",
        help="check this machine (OS, multipass and its daemon, virtualization, RAM, disk, ssh, SSH key)",
        description="Check this machine. Exits 1 when a requirement fails (warnings do not fail).",
        parents=[common],
    )
    check.add_argument("--json", action="store_true", help="print the results as JSON")
    check.set_defaults(handler=cmd_check)

    setup = subparsers.add_parser(
        "setup",
        help="install multipass (snap on Linux, brew on macOS) after a confirmation, then re-check",
        description=(
            "Show the multipass install command for this machine, ask before running it in this terminal, "
            "then check the host again."
        ),
        parents=[common],
    )
    setup.add_argument("-y", "--yes", action="store_true", help="run the install command without asking")
    setup.set_defaults(handler=cmd_setup)

    keygen = subparsers.add_parser(
        "keygen",
        help="create the dedicated ed25519 SSH key for VMs and print its public key path",
        parents=[common],
    )
    keygen.add_argument("--force", action="store_true", help="replace an existing key (VMs that trust the old one lose access)")
    keygen.set_defaults(handler=cmd_keygen)


def print_results(results: list[host.CheckResult], out=None) -> None:
    out = out or sys.stdout
    width = max(len(result.title) for result in results)
    for result in results:
        print(f"{STATUS_LABEL[result.status]:<4}  {result.title:<{width}}  {result.detail}", file=out)
        if result.fix and result.status != "ok":
            print(f"{'':<4}  {'':<{width}}  fix: {result.fix}", file=out)
    failures = host.failed(results)
    warnings = [result for result in results if result.status == "warn"]
    if failures:
        summary = f"{len(failures)} requirement(s) not met"
    else:
        summary = "ready"
    if warnings:
        summary += f", {len(warnings)} warning(s)"
    print(f"\n{summary}", file=out)


async def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    facts = await host.gather_facts(settings)
    results = host.judge(facts)
    ok = not host.failed(results)
    if args.json:
        print_json({"ok": ok, "checks": [dataclasses.asdict(result) for result in results]})
    else:
        print_results(results)
    return 0 if ok else 1


async def cmd_setup(args: argparse.Namespace, settings: Settings) -> int:
    facts = await host.gather_facts(settings)
    mp = facts.multipass
    if mp.installed and not mp.error:
        print(f"multipass {mp.client_version} is already installed at {mp.path}; nothing to install.\n")
        results = host.judge(facts)
        print_results(results)
        return 0 if not _multipass_failures(results) else 1
    plan = host.require_install_plan(facts)
    print("Multipass is needed to run VMs. This command installs it:\n")
    print(f"    {plan.command}\n")
    if not args.yes:
        if not sys.stdin.isatty():
            print("error: not asking for confirmation without a terminal", file=sys.stderr)
            print("  fix: run `devorch-tui setup --yes` to install without asking", file=sys.stderr)
            return 2
        try:
            answer = input("Run it now in this terminal? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in {"y", "yes"}:
            print("Nothing was installed.")
            return 1
    code = host.run_in_terminal(plan.argv)
    if code != 0:
        raise host.SetupError(
            f"`{plan.command}` failed with exit code {code}",
            hint=f"read its output above; the manual steps are at {host.INSTALL_URL}",
        )
    print("\nInstalled. Checking the host again (the daemon may need a few seconds to start)...\n")
    await host.wait_for_daemon(settings.multipass_bin, timeout=30.0)
    results = host.judge(await host.gather_facts(settings))
    print_results(results)
    return 0 if not _multipass_failures(results) else 1


def _multipass_failures(results: list[host.CheckResult]) -> list[host.CheckResult]:
    return [result for result in host.failed(results) if result.id in {"multipass", "daemon"}]


async def cmd_keygen(args: argparse.Namespace, settings: Settings) -> int:
    private = settings.paths.dedicated_key
    existed = not args.force and sshkeys.read_keypair(private) is not None  # a damaged .pub is an error naming it
    pair = await sshkeys.generate_keypair(private, overwrite=args.force)
    if existed and not args.force:
        print(f"kept the existing key {pair.private} (use --force to replace it)", file=sys.stderr)
    else:
        print(f"created ed25519 key pair {pair.private} (private, mode 600)", file=sys.stderr)
    if settings.ssh_key and settings.ssh_private_key != private:
        print(f"note: DEVORCH_SSH_KEY / ssh_key points to {settings.ssh_private_key}; VMs use that key, not this one", file=sys.stderr)
    print(pair.public)
    return 0

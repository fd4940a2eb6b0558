"""Headless `base-image`, `provision` and `teardown` commands.

Progress is printed one line when a step starts (``running``, again when it says what it waits
for) and one when it ends (state and duration), from the same run events the Logs pane shows;
``-v`` also prints every log line. Ctrl-C cancels the running step; a failure or a cancel lists what
was half made and how to clean it up (``--cleanup`` does it at once, on a terminal you are asked;
Ctrl-C at a question answers no at once).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from devorch_tui.commands import add_group, print_json
from devorch_tui.config import Settings
from devorch_tui.errors import DevorchError
from devorch_tui.services import golden
from devorch_tui.services.multipass import MultipassClient
from devorch_tui.services.provision import (
    DEFAULT_SSH_WAIT,
    ProvisionRequest,
    StepFailed,
    StepsCancelled,
    format_duration,
    provision_project,
    run_cleanup,
    teardown_project,
)
from devorch_tui.services.runs import LineEvent, RunEvent, RunFinished, RunStarted, RunStore, StepEvent

T = TypeVar("T")

STATE_WORDS = {
    "running": "running",  # printed without a duration
    "ok": "ok",
    "skipped": "skipped",
    "failed": "FAILED",
    "cancelled": "cancelled",
    "interrupted": "interrupted",
}
SHOWN_INFO = ("note: ", "warning: ")
"""Log lines from devorch-tui itself printed without -v (e.g. the clone fallback, what --rebuild deletes)."""


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", help="also print every line of the run log")

    group = add_group(subparsers, "base-image", "build, verify and inspect the golden base image", common)

    create = group.add_parser(
        "create",
        parents=[common, verbose],
        help="build the golden base VM from the rendered template and snapshot it as golden-image",
        description="Render the template, launch VM_NAME with cloud-init, wait for cloud-init, verify the "
        "environment, stop it and snapshot it as golden-image. An existing golden image is reused unless --rebuild.",
    )
    create.add_argument(
        "--rebuild",
        action="store_true",
        help="delete the existing base VM first, then build it again (if the build fails there is no golden image until one succeeds)",
    )
    create.add_argument("--image", default=golden.DEFAULT_IMAGE, help="Ubuntu image to launch (default: %(default)s)")
    create.add_argument("--timeout", type=_positive_float, metavar="SECONDS", help="limit for launch and for cloud-init (default: the multipass_launch_timeout setting)")
    create.set_defaults(handler=_base_image_create)

    verify = group.add_parser(
        "verify",
        parents=[common, verbose],
        help="run the environment checks in the golden base VM",
        description="Start the base VM, check the template's tools, git identity, SSH key login and rootless "
        "podman, then stop it and restore golden-image so it stays as built.",
    )
    verify.set_defaults(handler=_base_image_verify)

    status = group.add_parser(
        "status",
        parents=[common],
        help="show whether the golden image exists and whether it is stale",
        description="Exit code 0 when a golden image exists (stale or not), 1 when there is none.",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_base_image_status)

    provision = subparsers.add_parser(
        "provision",
        parents=[common, verbose],
        help="make a project VM dev-NAME from the golden image with a git repository cloned inside",
        description="Check the name, the repository (from this machine) and the golden image, restore the golden "
        "image to its snapshot, clone it to dev-NAME, resize it if asked, start it, wait for SSH, git clone REPO_URL "
        "into ~/REPO, then run the setup tasks. A repository on this machine (a path or file:// URL) is sent into the "
        "VM as a git bundle. Without clone support (multipass < 1.15, lxd) it launches dev-NAME from cloud-init instead.",
    )
    provision.add_argument("name", metavar="NAME", help="project name; the VM is dev-NAME")
    provision.add_argument("repo_url", metavar="REPO_URL", help="https URL, ssh URL (with --forward-agent), or the path of a git repository on this machine")
    provision.add_argument("--branch", metavar="B", help="branch or tag to check out")
    provision.add_argument("--cpus", metavar="N", help="CPUs of the VM (default: the golden image's)")
    provision.add_argument("--memory", metavar="SIZE", help="memory, e.g. 4G (default: the golden image's)")
    provision.add_argument("--disk", metavar="SIZE", help="disk, e.g. 30G; can only grow (default: the golden image's)")
    provision.add_argument("--tasks", metavar="FILE", type=Path, help="task file (JSON) to run in the VM once the repository is cloned")
    provision.add_argument("--forward-agent", action="store_true", help="forward your SSH agent for the clone (needed for ssh URLs)")
    provision.add_argument("--ssh-timeout", type=_positive_float, default=DEFAULT_SSH_WAIT, metavar="SECONDS", help="how long to wait for SSH in the new VM (default: %(default)g)")
    provision.add_argument("--cleanup", action="store_true", help="on failure, delete what was half made without asking")
    provision.set_defaults(handler=_provision)

    teardown = subparsers.add_parser(
        "teardown",
        parents=[common],
        help="delete and purge project VM dev-NAME and forget its host key (run logs are kept)",
    )
    teardown.add_argument("name", metavar="NAME", help="project name (or the VM name dev-NAME)")
    teardown.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    teardown.set_defaults(handler=_teardown)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


# ------------------------------------------------------------------------------------ progress


class ProgressPrinter:
    """Prints a line when a step starts and when it ends (and every log line with ``verbose``) from run events."""

    def __init__(self, verbose: bool = False, out: Any = None) -> None:
        self.verbose = verbose
        self.out = out or sys.stdout
        self.run_ids: list[str] = []

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            self.run_ids.append(event.run.id)
            self._print(f"run {event.run.id}: {event.run.title}")
        elif isinstance(event, StepEvent):
            if event.status in STATE_WORDS:
                message = f"  {event.message}" if event.message else ""
                if event.status == "running":
                    self._print(f"[{event.target}] {event.step:<24} running{message}")
                else:
                    self._print(f"[{event.target}] {event.step:<24} {STATE_WORDS[event.status]:<9} {format_duration(event.duration):>7}{message}")
        elif isinstance(event, LineEvent):
            if self.verbose:
                self._print(f"[{event.target}] {event.step}: {event.text}")
            elif event.stream == "info" and event.text.startswith(SHOWN_INFO):
                self._print(f"[{event.target}] {event.text}")
            elif event.stream == "info" and event.text.startswith("FAIL "):  # a failed environment check
                self._print(f"[{event.target}] {event.step}: {event.text}")
        elif isinstance(event, RunFinished):
            self._print(f"run {event.run.id} {event.run.status} in {format_duration(event.run.duration)}")

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


async def _with_progress(
    settings: Settings, verbose: bool, work: Callable[[RunStore, asyncio.Event], Coroutine[Any, Any, T]]
) -> T:
    """Run ``work(store, cancel)`` with progress lines; Ctrl-C sets ``cancel`` (the step stops, cleanup is listed)."""
    store = RunStore.from_settings(settings)
    unsubscribe = store.subscribe(ProgressPrinter(verbose))
    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_interrupt() -> None:
        if not cancel.is_set():
            print("cancelling (Ctrl-C again to stop at once)...", file=sys.stderr, flush=True)
            cancel.set()
        else:
            raise KeyboardInterrupt

    try:
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
        installed = True
    except (NotImplementedError, RuntimeError):  # not the main thread (tests) or no signals here
        installed = False
    try:
        return await work(store, cancel)
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)
        unsubscribe()


async def ask_yes(question: str) -> bool:
    """Ask on the terminal; True only for y/yes. End of input is no; Ctrl-C raises KeyboardInterrupt
    at once (the answer is read in the event loop, not in a thread that would block until Enter)."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()
    fd = sys.stdin.fileno()

    def readable() -> None:
        if not answer.done():
            answer.set_result(sys.stdin.readline())

    def interrupted() -> None:
        if not answer.done():
            answer.set_exception(KeyboardInterrupt())

    loop.add_reader(fd, readable)
    try:
        loop.add_signal_handler(signal.SIGINT, interrupted)
        handled = True
    except (NotImplementedError, RuntimeError):  # not the main thread: Ctrl-C raises where it lands
        handled = False
    try:
        print(question, end="", flush=True)  # only now: a Ctrl-C right after the question is ours
        text = await answer
    except KeyboardInterrupt:
        print(flush=True)  # end the question's line
        raise
    finally:
        loop.remove_reader(fd)
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
    if not text:
        print(flush=True)
    return text.strip().lower() in ("y", "yes")


async def _offer_cleanup(exc: StepFailed | StepsCancelled, always: bool) -> None:
    if not exc.cleanup:
        return
    if not always:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            return  # the error's fix line lists the cleanup commands
        print("half made: " + "; ".join(action.description for action in exc.cleanup))
        try:
            if not await ask_yes("Clean up now? [y/N] "):
                return
        except KeyboardInterrupt:
            exc.exit_code = 130  # answered no with Ctrl-C; the error's fix line lists the cleanup commands
            return
    for action, error in await run_cleanup(exc.cleanup):
        print(f"cleanup: {action.description}: {'FAILED: ' + error.message if error else 'done'}")
    exc.hint = "the half-made parts were cleaned up" + ("" if isinstance(exc, StepsCancelled) else "; fix the cause and run the command again")


# ------------------------------------------------------------------------------------- handlers


async def _base_image_create(args: argparse.Namespace, settings: Settings) -> int:
    client = MultipassClient.from_settings(settings)

    async def work(store: RunStore, cancel: asyncio.Event) -> golden.BaseImageResult:
        return await golden.create_base_image(
            settings, client, store, rebuild=args.rebuild, image=args.image, timeout=args.timeout, cancel=cancel
        )

    try:
        result = await _with_progress(settings, args.verbose, work)
    except (StepFailed, StepsCancelled) as exc:
        await _offer_cleanup(exc, always=False)
        raise
    if result.reused:
        print(f"golden image reused: {result.status.summary}")
        print("  (use `devorch-tui base-image create --rebuild` to build it again)")
    else:
        print(f"golden image ready: {result.status.summary}")
    if result.status.stale and result.reused:
        print("warning: the golden image is stale; rebuild it with `devorch-tui base-image create --rebuild`")
    return 0


async def _base_image_verify(args: argparse.Namespace, settings: Settings) -> int:
    client = MultipassClient.from_settings(settings)

    async def work(store: RunStore, cancel: asyncio.Event) -> Any:
        return await golden.verify_base_image(settings, client, store, cancel=cancel)

    result = await _with_progress(settings, args.verbose, work)
    print(f"base image {result.target} verified")
    return 0


async def _base_image_status(args: argparse.Namespace, settings: Settings) -> int:
    client = MultipassClient.from_settings(settings)
    status = await golden.golden_status(settings, client)
    if args.json:
        print_json(status.as_dict())
    else:
        print(f"golden VM:  {status.vm_name} ({status.state or 'absent'})")
        print(f"snapshot:   {status.vm_name + '.' + golden.GOLDEN_SNAPSHOT if status.has_snapshot else 'none'}")
        if status.has_snapshot:
            print(f"built from: template {status.template or '?'}, sha256 {status.sha256 or '?'}")
        if status.current_sha256:
            print(f"today:      template {status.current_template}, sha256 {status.current_sha256}")
        elif status.render_problem:
            print(f"today:      cannot render the template: {status.render_problem}")
        print(f"status:     {status.summary}")
    return 0 if status.ready else 1


async def _provision(args: argparse.Namespace, settings: Settings) -> int:
    client = MultipassClient.from_settings(settings)
    request = ProvisionRequest(
        name=args.name,
        repo_url=args.repo_url,
        branch=args.branch,
        cpus=args.cpus,
        memory=args.memory,
        disk=args.disk,
        tasks_file=args.tasks,
        forward_agent=args.forward_agent,
        ssh_timeout=args.ssh_timeout,
    )

    async def work(store: RunStore, cancel: asyncio.Event) -> Any:
        return await provision_project(request, settings, client, store, cancel=cancel)

    try:
        result = await _with_progress(settings, args.verbose, work)
    except (StepFailed, StepsCancelled) as exc:
        await _offer_cleanup(exc, always=args.cleanup)
        raise
    how = "cloned from the golden image" if result.cloned_from_golden else "launched with cloud-init (clone unsupported)"
    print(f"{result.vm_name} ready ({how}); repository in {result.repo_dir}")
    if result.tasks_run_id:
        print(f"setup tasks: run {result.tasks_run_id}")
    print(f"open a shell: multipass shell {result.vm_name}")
    return 0


async def _teardown(args: argparse.Namespace, settings: Settings) -> int:
    client = MultipassClient.from_settings(settings)
    if not args.yes:
        if not sys.stdin.isatty():
            raise DevorchError(
                f"teardown deletes the VM of project {args.name} and its disk for good",
                hint=f"add --yes to confirm: `devorch-tui teardown {args.name} --yes`",
            )
        try:
            confirmed = await ask_yes(f"Delete the VM of project {args.name} and its disk for good? Run logs are kept. [y/N] ")
        except KeyboardInterrupt:
            print("nothing deleted")
            return 130
        if not confirmed:
            print("nothing deleted")
            return 1
    result = await teardown_project(args.name, settings, client)
    keys = f"; forgot {result.forgotten_keys} host key(s)" if result.forgotten_keys else ""
    print(f"{result.vm_name} deleted and purged{keys}; its run logs are kept (`devorch-tui runs list`)")
    return 0

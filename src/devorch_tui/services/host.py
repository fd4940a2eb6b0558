"""Host checks: is this machine ready to run developer VMs with Multipass?

Two halves, kept apart so each can be tested on its own:

* ``gather_facts(settings)`` looks at the machine (OS, the multipass client and its daemon,
  virtualization, RAM, free disk, ssh tools, the SSH key for VMs) and returns a plain ``HostFacts``.
  It never raises for a missing or broken tool: that is a fact like any other.
* ``judge(facts)`` turns facts into ``CheckResult`` rows (ok / warn / fail) with the exact command that
  fixes each problem. It is pure: no I/O.

``install_plan(facts)`` builds the multipass install command (snap on Linux, brew on macOS) that
``devorch-tui setup`` and the Host pane run in the user's own terminal after a confirmation.
"""

from __future__ import annotations

import asyncio
import getpass
import grp
import json
import os
import platform
import shlex
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from devorch_tui.errors import DevorchError
from devorch_tui.services import procs
from devorch_tui.services.sshkeys import key_problems

if TYPE_CHECKING:
    from devorch_tui.config import Settings

GiB = 1024**3
GB = 1000**3
# RAM is sold in GiB ("16 GB" is 16 GiB): judged and shown in GiB. Disks are sold in GB: judged and shown in GB.
MIN_RAM_GB = 8
RECOMMENDED_RAM_GB = 16
MIN_DISK_GB = 50
RECOMMENDED_DISK_GB = 100
CLONE_VERSION = (1, 15)  # `multipass clone`, which the golden-image flow needs

INSTALL_URL = "https://canonical.com/multipass/install"
LINUX_SOCKET = Path("/var/snap/multipass/common/multipass_socket")
MACOS_SOCKET = Path("/var/run/multipass_socket")
# Where multipassd keeps images and VM disks: the free space that matters.
MULTIPASS_STORAGE = {
    "Linux": Path("/var/snap/multipass/common"),
    "Darwin": Path("/var/root/Library/Application Support/multipassd"),
}

Status = Literal["ok", "warn", "fail"]
DaemonProblem = Literal["down", "denied", "unauthenticated"]


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class MultipassFacts:
    """What `multipass version --format json` (and, when the daemon is silent, `list`) told us."""

    path: str | None = None
    """The resolved executable, None when it is not installed."""
    client_version: str | None = None
    daemon_version: str | None = None
    """Present only when the daemon answered (the `multipassd` key)."""
    daemon_problem: DaemonProblem | None = None
    daemon_message: str = ""
    """The daemon error as multipass printed it (first line of stderr)."""
    error: str | None = None
    """The client itself failed (timeout, crash, unreadable output)."""
    socket_group: str | None = None
    """Group owning the daemon socket (for the 'access denied' fix)."""

    @property
    def installed(self) -> bool:
        return self.path is not None

    @property
    def daemon_reachable(self) -> bool:
        return self.daemon_version is not None


@dataclass(frozen=True)
class HostFacts:
    """Everything the checks judge. Built by ``gather_facts`` (or by hand in tests and screenshots)."""

    system: str
    """``platform.system()``: "Linux", "Darwin", ..."""
    release: str = ""
    machine: str = ""
    user: str = "user"
    multipass: MultipassFacts = field(default_factory=MultipassFacts)
    kvm_present: bool | None = None
    """Linux: /dev/kvm exists. None when not applicable or unknown."""
    kvm_accessible: bool | None = None
    cpu_virt_flags: bool | None = None
    """Linux: the CPU advertises vmx/svm in /proc/cpuinfo."""
    hv_support: bool | None = None
    """macOS: `sysctl -n kern.hv_support` is 1."""
    memory_bytes: int | None = None
    disk_path: Path | None = None
    """Where free space was measured: multipass's storage folder, else the app's data folder."""
    disk_is_multipass: bool = False
    disk_free_bytes: int | None = None
    ssh_path: str | None = None
    ssh_keygen_path: str | None = None
    key_path: Path | None = None
    key_is_dedicated: bool = True
    key_problems: tuple[str, ...] = ()
    snap_path: str | None = None
    brew_path: str | None = None
    is_root: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    status: Status
    detail: str
    fix: str = ""
    """The exact thing to run or do; empty when the check is ok."""

    @property
    def failed(self) -> bool:
        return self.status == "fail"


HostProbe = Callable[["Settings"], Awaitable[HostFacts]]


async def gather_facts(settings: Settings) -> HostFacts:
    """Look at this machine. Never raises for missing tools or a silent daemon."""
    system = platform.system()
    key_path = settings.ssh_private_key
    mp_task = gather_multipass(settings.multipass_bin, timeout=min(settings.multipass_timeout, 15.0), system=system)
    virt_task = _virtualization(system)
    memory_task = _memory_bytes(system)
    multipass, virt, memory = await asyncio.gather(mp_task, virt_task, memory_task)
    disk_path, disk_is_multipass = disk_target(system, settings.paths.data_dir)
    disk_free = _disk_free(disk_path)
    try:
        problems = tuple(key_problems(key_path))
    except OSError as exc:
        problems = (f"cannot read {key_path}: {exc.strerror}",)
    return HostFacts(
        system=system,
        release=platform.release(),
        machine=platform.machine(),
        user=_user(),
        multipass=multipass,
        kvm_present=virt.get("kvm_present"),
        kvm_accessible=virt.get("kvm_accessible"),
        cpu_virt_flags=virt.get("cpu_virt_flags"),
        hv_support=virt.get("hv_support"),
        memory_bytes=memory,
        disk_path=disk_path,
        disk_is_multipass=disk_is_multipass,
        disk_free_bytes=disk_free,
        ssh_path=shutil.which("ssh"),
        ssh_keygen_path=shutil.which("ssh-keygen"),
        key_path=key_path,
        key_is_dedicated=key_path == settings.paths.dedicated_key,
        key_problems=problems,
        snap_path=shutil.which("snap"),
        brew_path=shutil.which("brew"),
        is_root=hasattr(os, "geteuid") and os.geteuid() == 0,
    )


async def gather_multipass(binary: str, *, timeout: float, system: str | None = None) -> MultipassFacts:
    """Find multipass and ask it for its version; ask why when the daemon does not answer."""
    path = shutil.which(binary)
    if path is None:
        return MultipassFacts()
    try:
        result = await procs.run([path, "version", "--format", "json"], timeout=timeout)
    except procs.CommandNotFound:
        return MultipassFacts()
    except DevorchError as exc:  # timeout, not executable
        return MultipassFacts(path=path, error=exc.message)
    if not result.ok:
        return MultipassFacts(path=path, error=_first_line(result.stderr) or f"exit code {result.returncode}")
    try:
        data = json.loads(result.stdout)
        client = str(data["multipass"])
    except (ValueError, KeyError, TypeError):
        return MultipassFacts(path=path, error=f"unreadable `version --format json` output: {result.stdout[:80]!r}")
    daemon = data.get("multipassd")
    if daemon:
        return MultipassFacts(path=path, client_version=client, daemon_version=str(daemon))
    # `version` exits 0 without `multipassd` whatever the reason; a daemon call tells which reason.
    problem, message = await _daemon_problem(path, timeout)
    return MultipassFacts(
        path=path,
        client_version=client,
        daemon_problem=problem,
        daemon_message=message,
        socket_group=_socket_group(system or platform.system()),
    )


async def _daemon_problem(path: str, timeout: float) -> tuple[DaemonProblem, str]:
    try:
        result = await procs.run([path, "list", "--format", "json", "--no-ipv4"], timeout=timeout)
    except DevorchError as exc:
        return "down", exc.message
    message = _first_line(result.stderr)
    text = result.stderr.lower()
    if "access denied" in text:
        return "denied", message
    if "not authenticated" in text:
        return "unauthenticated", message
    return "down", message or "the daemon did not answer"


def _socket_group(system: str) -> str | None:
    socket = MACOS_SOCKET if system == "Darwin" else LINUX_SOCKET
    try:
        return grp.getgrgid(socket.stat().st_gid).gr_name
    except (OSError, KeyError):
        return None


async def _virtualization(system: str) -> dict[str, bool | None]:
    if system == "Linux":
        kvm = Path("/dev/kvm")
        present = kvm.exists()
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
            flags = any(
                line.startswith("flags") and ({"vmx", "svm"} & set(line.split(":", 1)[-1].split()))
                for line in cpuinfo.splitlines()
            )
        except OSError:
            flags = None
        return {
            "kvm_present": present,
            "kvm_accessible": present and os.access(kvm, os.R_OK | os.W_OK),
            "cpu_virt_flags": flags,
        }
    if system == "Darwin":
        value = await _sysctl("kern.hv_support")
        return {"hv_support": None if value is None else value.strip() == "1"}
    return {}


async def _memory_bytes(system: str) -> int | None:
    if system == "Linux":
        try:
            for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None
    if system == "Darwin":
        value = await _sysctl("hw.memsize")
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None
    return None


async def _sysctl(name: str) -> str | None:
    try:
        result = await procs.run(["sysctl", "-n", name], timeout=5)
    except DevorchError:
        return None
    return result.stdout.strip() if result.ok else None


def disk_target(system: str, data_dir: Path, storage: Path | None = None) -> tuple[Path, bool]:
    """The folder whose disk to measure, and whether it is multipass's storage (else the data folder)."""
    storage = storage if storage is not None else MULTIPASS_STORAGE.get(system)
    if storage is not None:
        try:
            if storage.exists():
                return storage, True
        except PermissionError:  # macOS: /var/root is closed to users; _disk_free measures its volume
            return storage, True
    return data_dir, False


def _disk_free(folder: Path) -> int | None:
    """Free bytes on the filesystem that holds ``folder`` (or its nearest parent that can be measured)."""
    probe = folder.expanduser()
    while True:
        try:
            return shutil.disk_usage(probe).free
        except OSError:
            if probe.parent == probe:
                return None
            probe = probe.parent


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return os.environ.get("USER", "user")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


# --------------------------------------------------------------------------- judging


def judge(facts: HostFacts) -> list[CheckResult]:
    """Turn facts into check results, in display order. Pure."""
    return [
        check_os(facts),
        check_multipass(facts),
        check_daemon(facts),
        check_virtualization(facts),
        check_memory(facts),
        check_disk(facts),
        check_tool(facts, "ssh", facts.ssh_path),
        check_tool(facts, "ssh-keygen", facts.ssh_keygen_path),
        check_key(facts),
    ]


def failed(results: Sequence[CheckResult]) -> list[CheckResult]:
    return [result for result in results if result.failed]


def check_os(facts: HostFacts) -> CheckResult:
    name = {"Linux": "Linux", "Darwin": "macOS"}.get(facts.system)
    detail = f"{name or facts.system or 'unknown'} {facts.release} {facts.machine}".strip()
    if name:
        return CheckResult("os", "Operating system", "ok", detail)
    return CheckResult(
        "os", "Operating system", "fail", f"{detail}: devorch-tui supports macOS and Linux",
        "run devorch-tui on a macOS or Linux machine",
    )


def install_command(facts: HostFacts) -> str:
    plan = install_plan(facts)
    return plan.command if plan.argv else plan.note


def check_multipass(facts: HostFacts) -> CheckResult:
    mp = facts.multipass
    title = "Multipass installed"
    if not mp.installed:
        return CheckResult("multipass", title, "fail", "multipass is not on PATH", install_command(facts))
    if mp.error:
        return CheckResult(
            "multipass", title, "fail", f"{mp.path} does not work: {mp.error}",
            f"run `{shlex.quote(mp.path or 'multipass')} version` to see the error; reinstall multipass if it persists",
        )
    detail = f"{mp.client_version} at {mp.path}"
    if _version_tuple(mp.client_version) < CLONE_VERSION and _version_tuple(mp.client_version) != (0,):
        return CheckResult(
            "multipass", title, "warn",
            f"{detail}: golden-image cloning needs multipass 1.15 or newer (falls back to launch + cloud-init)",
            _upgrade_command(facts),
        )
    return CheckResult("multipass", title, "ok", detail)


def check_daemon(facts: HostFacts) -> CheckResult:
    mp = facts.multipass
    title = "Multipass daemon"
    if not mp.installed:
        return CheckResult("daemon", title, "fail", "not checked: multipass is not installed", "install multipass first (see above)")
    if mp.error:
        return CheckResult("daemon", title, "fail", "not checked: the multipass client does not work", "fix the check above first")
    if mp.daemon_reachable:
        return CheckResult("daemon", title, "ok", f"multipassd {mp.daemon_version} is answering")
    message = mp.daemon_message or "multipassd did not answer"
    if mp.daemon_problem == "denied":
        group = mp.socket_group or ("admin" if facts.system == "Darwin" else "sudo")
        if facts.system == "Darwin":
            fix = f"sudo dseditgroup -o edit -a {facts.user} -t user {group}  (then log out and back in)"
        else:
            fix = f"sudo usermod -aG {group} {facts.user}  (then log out and back in)"
        return CheckResult("daemon", title, "fail", f"{message}: your user may not use the multipass socket", fix)
    if mp.daemon_problem == "unauthenticated":
        return CheckResult("daemon", title, "fail", message, "multipass authenticate")
    if facts.system == "Darwin":
        fix = "sudo launchctl kickstart -k system/com.canonical.multipassd"
    else:
        fix = "sudo snap restart multipass"
    return CheckResult("daemon", title, "fail", f"{message} (the daemon is not running or still starting)", fix)


def check_virtualization(facts: HostFacts) -> CheckResult:
    title = "Virtualization"
    if facts.system == "Linux":
        if facts.kvm_present and facts.kvm_accessible:
            return CheckResult("virtualization", title, "ok", "/dev/kvm is present and usable")
        if facts.kvm_present:
            return CheckResult(
                "virtualization", title, "warn",
                "/dev/kvm is present but your user cannot open it (multipassd runs as root, so VMs may still work)",
                f"sudo usermod -aG kvm {facts.user}  (then log out and back in)",
            )
        if facts.cpu_virt_flags is False:
            return CheckResult(
                "virtualization", title, "fail", "/dev/kvm is missing and the CPU shows no vmx/svm flag",
                "enable Intel VT-x / AMD-V in the firmware (BIOS/UEFI) settings; in a VM, enable nested virtualization",
            )
        return CheckResult(
            "virtualization", title, "fail", "/dev/kvm is missing",
            "sudo modprobe kvm_intel  (or kvm_amd on AMD CPUs); if that fails, enable VT-x / AMD-V in the firmware",
        )
    if facts.system == "Darwin":
        if facts.hv_support:
            return CheckResult("virtualization", title, "ok", "kern.hv_support = 1 (Hypervisor.framework available)")
        if facts.hv_support is None:
            return CheckResult(
                "virtualization", title, "warn", "could not read `sysctl -n kern.hv_support`",
                "run `sysctl -n kern.hv_support`: it must print 1",
            )
        return CheckResult(
            "virtualization", title, "fail", "kern.hv_support = 0: this Mac cannot run the Hypervisor.framework",
            "use a Mac with hardware virtualization; in a VM, enable nested virtualization",
        )
    return CheckResult("virtualization", title, "fail", "unknown on this operating system", "use macOS or Linux")


def check_memory(facts: HostFacts) -> CheckResult:
    title = "Memory"
    if facts.memory_bytes is None:
        return CheckResult("memory", title, "warn", "could not read the amount of RAM", f"make sure the machine has at least {MIN_RAM_GB} GiB")
    # Kernels report a little less than the installed RAM (firmware reservations): judge whole GiB.
    total = facts.memory_bytes / GiB
    size = round(total)
    detail = f"{total:.1f} GiB RAM"
    if size < MIN_RAM_GB:
        return CheckResult(
            "memory", title, "fail", f"{detail}; at least {MIN_RAM_GB} GiB is needed",
            f"use a machine with {MIN_RAM_GB} GiB or more ({RECOMMENDED_RAM_GB} GiB recommended), or give VMs less with VM_MEMORY",
        )
    if size < RECOMMENDED_RAM_GB:
        return CheckResult(
            "memory", title, "warn", f"{detail}; {RECOMMENDED_RAM_GB} GiB is recommended",
            "keep VM_MEMORY small (e.g. 2G) and run few VMs at once",
        )
    return CheckResult("memory", title, "ok", detail)


def check_disk(facts: HostFacts) -> CheckResult:
    title = "Free disk"
    where = display_path(facts.disk_path) if facts.disk_path else "the data folder"
    if facts.disk_is_multipass:
        where = f"{where} (multipass's VM storage)"
    elif facts.disk_path:
        where = f"{where} (the app's data folder; multipass's storage folder was not found)"
    if facts.disk_free_bytes is None:
        path = shlex.quote(str(facts.disk_path)) if facts.disk_path else "."
        return CheckResult("disk", title, "warn", f"could not read free space for {where}", f"run `df -h {path}`")
    free = facts.disk_free_bytes / GB
    detail = f"{free:.0f} GB free on the disk of {where}"
    if free < MIN_DISK_GB:
        return CheckResult(
            "disk", title, "fail", f"{detail}; at least {MIN_DISK_GB} GB is needed",
            f"free up space (`multipass purge` removes deleted VMs) to reach {MIN_DISK_GB} GB",
        )
    if free < RECOMMENDED_DISK_GB:
        return CheckResult(
            "disk", title, "warn", f"{detail}; {RECOMMENDED_DISK_GB} GB is recommended",
            "keep VM_DISK small and purge VMs you no longer need (`multipass purge`)",
        )
    return CheckResult("disk", title, "ok", detail)


def check_tool(facts: HostFacts, tool: str, path: str | None) -> CheckResult:
    check_id = tool.replace("-", "_")
    if path:
        return CheckResult(check_id, f"{tool} command", "ok", path)
    if facts.system == "Darwin":
        fix = "xcode-select --install  (or `brew install openssh`)"
    else:
        fix = "sudo apt install openssh-client  (Fedora: sudo dnf install openssh-clients)"
    return CheckResult(check_id, f"{tool} command", "fail", f"{tool} is not on PATH", fix)


def check_key(facts: HostFacts) -> CheckResult:
    title = "SSH key for VMs"
    key = facts.key_path
    if key is None:
        return CheckResult("ssh_key", title, "fail", "no key path configured", "devorch-tui keygen")
    if not facts.key_problems:
        return CheckResult("ssh_key", title, "ok", display_path(key))
    first = facts.key_problems[0]
    if first.startswith("no private key"):
        detail = f"no key at {display_path(key)}"
    else:
        detail = "; ".join(problem.replace(str(key), display_path(key)) for problem in facts.key_problems)
    if first.startswith("no private key"):
        fix = "devorch-tui keygen" if facts.key_is_dedicated else f"create {key}, or unset DEVORCH_SSH_KEY to use the dedicated key"
    elif "public key" in first:
        fix = f"ssh-keygen -y -f {shlex.quote(str(key))} > {shlex.quote(str(key))}.pub"
    elif "mode" in first:
        fix = f"chmod 600 {shlex.quote(str(key))}"
    else:
        fix = "devorch-tui keygen --force" if facts.key_is_dedicated else f"check {key}"
    return CheckResult("ssh_key", title, "fail", detail, fix)


def display_path(path: Path) -> str:
    """``path`` with the home folder shown as ``~`` (shorter in tables; fixes keep full paths)."""
    home = Path.home()
    try:
        return f"~/{path.relative_to(home)}" if path != home else "~"
    except ValueError:
        return str(path)


def _version_tuple(text: str | None) -> tuple[int, ...]:
    core = (text or "").split("+", 1)[0].split("-", 1)[0]
    parts = []
    for piece in core.split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts) or (0,)


def _upgrade_command(facts: HostFacts) -> str:
    if facts.system == "Darwin":
        return "brew upgrade --cask multipass"
    return "sudo snap refresh multipass"


# --------------------------------------------------------------------------- setup


class SetupError(DevorchError):
    """Multipass cannot be installed automatically here."""


@dataclass(frozen=True)
class InstallPlan:
    """How to install multipass on this machine: ``argv`` to run, or a note saying what to do by hand."""

    argv: tuple[str, ...] = ()
    note: str = ""

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    @property
    def runnable(self) -> bool:
        return bool(self.argv)


def install_plan(facts: HostFacts) -> InstallPlan:
    """The multipass install command for this OS (snap on Linux, brew on macOS)."""
    if facts.system == "Linux":
        sudo = () if facts.is_root else ("sudo",)
        argv = (*sudo, "snap", "install", "multipass")
        if facts.snap_path:
            return InstallPlan(argv)
        snapd = shlex.join((*sudo, "apt", "install", "snapd"))
        return InstallPlan(
            note=f"snap is not installed: install snapd (`{snapd}` on Debian/Ubuntu), then `{shlex.join(argv)}`; see {INSTALL_URL}"
        )
    if facts.system == "Darwin":
        argv = ("brew", "install", "--cask", "multipass")
        if facts.brew_path:
            return InstallPlan(argv)
        return InstallPlan(note=f"Homebrew is not installed: install it from https://brew.sh, then `{shlex.join(argv)}`; or use the installer from {INSTALL_URL}")
    return InstallPlan(note=f"devorch-tui supports macOS and Linux; see {INSTALL_URL}")


def require_install_plan(facts: HostFacts) -> InstallPlan:
    plan = install_plan(facts)
    if not plan.runnable:
        raise SetupError("multipass cannot be installed automatically on this machine", hint=plan.note)
    return plan


def run_in_terminal(argv: Sequence[str]) -> int:
    """Run ``argv`` attached to the user's terminal (stdin/stdout/stderr inherited) and wait for it.

    For installers that may ask for a password (sudo) or a confirmation: nothing is captured and the
    child stays in our session and environment, so prompts work as if the user typed the command.
    It blocks on purpose: the CLI has nothing else to do, and the dashboard calls it inside
    ``App.suspend()`` where nothing else may write to the terminal.
    """
    if isinstance(argv, str):
        raise TypeError("run_in_terminal() takes an argv list, not a string")
    try:
        return subprocess.run(list(argv), check=False).returncode
    except FileNotFoundError:
        raise procs.CommandNotFound(argv[0]) from None


async def wait_for_daemon(binary: str, *, timeout: float, interval: float = 1.0) -> MultipassFacts:
    """After an install the daemon needs a few seconds: ask again until it answers or ``timeout`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        facts = await gather_multipass(binary, timeout=min(timeout, 15.0))
        if facts.daemon_reachable or not facts.installed or loop.time() + interval > deadline:
            return facts
        await asyncio.sleep(interval)

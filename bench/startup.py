"""Start-up benchmark: time to the first frame of devorch-tui against a bare Textual app.

Both apps run in fresh Python processes (so imports count), headless, at the same size, and
signal their first frame from Textual's ``Ready`` event ("the DOM is ready and the first frame has
been displayed"). The bare app has the same widget kinds as the dashboard (Header, TabbedContent with
one tab per pane, DataTable, Input, Footer) and nothing else. devorch-tui starts through its real
entry point (argument parser with every command module, settings) with fake app folders in a temp
dir and a fixed host probe, so the machine's multipass does not change the result. Runs alternate
between the two apps; the script prints the medians and their ratio (target: <= 1.3x), and checks
that asyncssh is not imported before the first frame.

The dashboard loads its settings and its other three panes after the first frame, so the script
also times, in a third kind of run, devorch-tui until every pane is mounted ("whole dashboard"):
there is no baseline for that (the bare app has nothing to load), it says what the first frame
does not.

    python bench/startup.py [--runs 9] [--profile]

``--profile`` adds the slowest imports of devorch-tui's start-up (python -X importtime).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE = (160, 45)
TARGET = 1.3
HERE = Path(__file__).resolve()


# --------------------------------------------------------------------------- children


def child_bare() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Footer, Header, Input, TabbedContent, TabPane

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Header()
            with TabbedContent():
                with TabPane("1 Host"):
                    table: DataTable[str] = DataTable()
                    table.add_columns("Status", "Check", "Detail", "Fix")
                    for index in range(9):
                        table.add_row("ok", f"check {index}", "detail", "")
                    yield table
                with TabPane("2 Templates"):
                    yield DataTable()
                    for name in ("GIT_NAME", "GIT_EMAIL", "SSH_PUBLIC_KEY", "VM_NAME", "VM_CPUS", "VM_MEMORY", "VM_DISK"):
                        yield Input(placeholder=name)
                with TabPane("3 VMs"):
                    yield DataTable()
                with TabPane("4 Logs"):
                    yield DataTable()
            yield Footer()

        def on_ready(self) -> None:
            report_ready()
            self.exit()

    Bare().run(headless=True, size=SIZE)


def child_devorch(until_loaded: bool = False) -> None:
    """The dashboard until its first frame, or (``until_loaded``) until every pane is mounted too."""
    from functools import partial
    from pathlib import Path

    from devorch_tui import cli
    from devorch_tui.services.host import GiB, HostFacts, MultipassFacts
    from devorch_tui.ui.app import DevorchApp

    facts = HostFacts(
        system="Linux",
        release="6.8.0",
        machine="x86_64",
        multipass=MultipassFacts(path="/snap/bin/multipass", client_version="1.16.3", daemon_version="1.16.3"),
        kvm_present=True,
        kvm_accessible=True,
        memory_bytes=16 * GiB,
        disk_path=Path("/tmp"),
        disk_free_bytes=200 * GiB,
        ssh_path="/usr/bin/ssh",
        ssh_keygen_path="/usr/bin/ssh-keygen",
        key_path=Path("/tmp/id_ed25519"),
    )

    async def probe(settings: object) -> HostFacts:
        return facts

    class Timed(DevorchApp):
        def on_ready(self) -> None:
            report_ready()
            if until_loaded:
                super().on_ready()  # settings, then the other panes
            else:
                self.exit()

        def freeze_long_lived(self) -> None:  # called once every pane is mounted
            report_ready()
            self.exit()

    # The same path as `devorch-tui` with no arguments (cli.main -> open_dashboard): the app gets the
    # settings loader, which it runs after its first frame.
    args = cli.build_parser().parse_args([])
    Timed(partial(cli.settings_from_args, args), host_probe=probe).run(headless=True, size=SIZE)


def report_ready() -> None:
    heavy = [name for name in ("asyncssh", "jinja2", "yaml", "pydantic") if name in sys.modules]
    sys.stdout.write(f"ready {','.join(heavy) or '-'}\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- parent


def fake_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("config", "data", "state", "workspace"):
        (root / name).mkdir(exist_ok=True)
        env[f"DEVORCH_{name.upper()}_DIR" if name != "workspace" else "DEVORCH_WORKSPACE"] = str(root / name)
    env["DEVORCH_MULTIPASS_BIN"] = str(root / "no-multipass")  # VM polls fail fast and the same way each run
    env.pop("TEXTUAL", None)
    return env


def time_once(kind: str, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time from spawn to the first frame (for devorch-loaded: to every pane mounted), CPU time of
    the whole child, heavy modules it had loaded at its first frame."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(HERE), "--child", kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if kind == "devorch-loaded" and line.startswith("ready"):
        proc.stdout.readline()  # the second report: every pane is mounted
    elapsed = time.perf_counter() - started
    _, stderr = proc.communicate(timeout=60)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if not line.startswith("ready"):
        raise SystemExit(f"{kind} did not start (exit {proc.returncode}):\n{stderr}")
    return elapsed, cpu, line.split()[1]


def profile_imports(env: dict[str, str], top: int = 15) -> list[tuple[float, str]]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(HERE), "--child", "devorch"],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=60,
    )
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative_us, name = line[len("import time:"):].split("|", 2)
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        if depth <= 1:  # what the entry point imports, and what those import directly
            rows.append((int(cumulative_us) / 1e6, f"{'  ' * depth}{name.strip()}"))
    return sorted(rows, reverse=True)[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="repetitions of each app (default 9)")
    parser.add_argument("--profile", action="store_true", help="also list the slowest imports of devorch-tui")
    parser.add_argument("--child", choices=("bare", "devorch", "devorch-loaded"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "bare":
        child_bare()
        return 0
    if args.child in ("devorch", "devorch-loaded"):
        child_devorch(until_loaded=args.child == "devorch-loaded")
        return 0

    with tempfile.TemporaryDirectory(prefix="devorch-bench-") as tmp:
        env = fake_env(Path(tmp))
        time_once("bare", env)  # warm the OS file cache for both before measuring
        time_once("devorch", env)
        wall: dict[str, list[float]] = {"bare": [], "devorch": [], "devorch-loaded": []}
        cpu: dict[str, list[float]] = {"bare": [], "devorch": [], "devorch-loaded": []}
        heavy_seen: set[str] = set()
        for _ in range(args.runs):
            for kind in ("bare", "devorch", "devorch-loaded"):
                elapsed, used, heavy = time_once(kind, env)
                wall[kind].append(elapsed)
                cpu[kind].append(used)
                if kind == "devorch" and heavy != "-":
                    heavy_seen.update(heavy.split(","))
        ratio = statistics.median(wall["devorch"]) / statistics.median(wall["bare"])
        cpu_ratio = statistics.median(cpu["devorch"]) / statistics.median(cpu["bare"])
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.runs} runs each, headless {SIZE[0]}x{SIZE[1]}")
        print("                   time to first frame (wall)           CPU time of the process")
        for kind, label in (("bare", "bare Textual app"), ("devorch", "devorch-tui")):
            w, c = wall[kind], cpu[kind]
            print(
                f"{label:<18} median {statistics.median(w) * 1000:6.0f} ms (min {min(w) * 1000:4.0f}, max {max(w) * 1000:4.0f})"
                f"   median {statistics.median(c) * 1000:6.0f} ms"
            )
        print(f"ratio              {ratio:.2f}x  (target <= {TARGET}x: {'met' if ratio <= TARGET else 'MISSED'})"
              f"          CPU ratio {cpu_ratio:.2f}x")
        loaded = wall["devorch-loaded"]
        print(f"whole dashboard    median {statistics.median(loaded) * 1000:6.0f} ms (min {min(loaded) * 1000:4.0f}, max {max(loaded) * 1000:4.0f})"
              "   settings and every pane loaded (no baseline)")
        print(f"heavy modules imported before the first frame: {', '.join(sorted(heavy_seen)) or 'none'}"
              f" (asyncssh {'IMPORTED' if 'asyncssh' in heavy_seen else 'not imported'})")
        if args.profile:
            print("\nslowest imports of devorch-tui start-up (cumulative):")
            for seconds, name in profile_imports(env):
                print(f"  {seconds * 1000:7.1f} ms  {name}")
        return 0 if ratio <= TARGET and "asyncssh" not in heavy_seen else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Poll benchmark: the VMs pane's idle CPU cost and the time to apply one poll's diff.

1. Idle CPU. devorch-tui runs headless (160x45) on the VMs pane against the multipass double with
   50 instances, `list` polled every 1 s (settings.poll_interval=1, info every 10 s, the defaults
   otherwise). After the first list is shown, the app's own CPU time (process time: user + system of
   the app process; the double's processes are reported apart as "children") is measured over
   --seconds of wall time (default 30). The baseline, measured in the same run and the same way, is
   a bare Textual app showing a DataTable with the same 50 rows and columns and no polling.
   Target: devorch-tui under 3% of one core.

2. Diff time. A VMTable with 500 rows gets the next poll's rows (10% of VMs change state or load,
   5 disappear, 5 appear) through ``VMTable.apply``; the median of --repeats applications is
   compared with clear-and-rebuild of the same table (DataTable.clear + 500 add_row), the approach
   the diff replaces. Target: under 20 ms per diff.

    python bench/poll.py [--seconds 30] [--repeats 41]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
SIZE = (160, 45)
INSTANCES = 50
CPU_TARGET = 3.0  # percent of one core
DIFF_TARGET = 20.0  # ms

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


# --------------------------------------------------------------------------- idle CPU children


def seed_fleet(state_file: Path) -> dict[str, str]:
    from tests.fakes.multipass_fixture import FakeMultipass

    fake = FakeMultipass(state_file)
    states = ("Running", "Running", "Stopped", "Suspended", "Stopped")
    for number in range(INSTANCES):
        fake.add(f"vm-{number:02d}", states[number % len(states)], release=("22.04", "24.04")[number % 2], snapshots=["s1"] if number % 3 == 0 else [])
    return fake.env


async def measure(app, ready, seconds: float, polls) -> dict[str, float]:  # type: ignore[no-untyped-def]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        deadline = time.monotonic() + 30
        while not ready():
            if time.monotonic() > deadline:
                raise SystemExit("the app never showed the fleet")
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # let the first info refresh land
        polls_before = polls()
        cpu_before = time.process_time()
        children_before = os.times()
        wall_before = time.monotonic()
        await asyncio.sleep(seconds)
        wall = time.monotonic() - wall_before
        cpu = time.process_time() - cpu_before
        children_after = os.times()
        polls_done = polls() - polls_before
    children = (children_after.children_user - children_before.children_user) + (
        children_after.children_system - children_before.children_system
    )
    return {"cpu": cpu, "wall": wall, "polls": polls_done, "children": children}


def child_devorch(seconds: float, *, pane_only: bool = False) -> dict[str, float]:
    from textual.app import ComposeResult
    from textual.widgets import Footer, Header

    from devorch_tui.config import load_settings
    from devorch_tui.ui.app import DevorchApp
    from devorch_tui.ui.panes.vms import VMsPane

    class OnlyVMs(DevorchApp):
        """The real app class with the VMs pane as its only pane (to tell its cost from the others')."""

        def compose(self) -> ComposeResult:
            yield Header()
            yield VMsPane(id="vms")
            yield Footer()

        def on_mount(self) -> None:
            self.query_one(VMsPane).on_pane_shown()

        def action_show_pane(self, pane_id: str) -> None:
            """There are no tabs to switch."""

    kwargs = {}
    try:
        from devorch_tui.services.host import GiB, HostFacts, MultipassFacts

        facts = HostFacts(
            system="Linux", release="6.8.0", machine="x86_64",
            multipass=MultipassFacts(path="/snap/bin/multipass", client_version="1.16.3", daemon_version="1.16.3"),
            kvm_present=True, kvm_accessible=True, memory_bytes=16 * GiB, disk_path=Path("/tmp"),
            disk_free_bytes=200 * GiB, ssh_path="/usr/bin/ssh", ssh_keygen_path="/usr/bin/ssh-keygen",
            key_path=Path("/tmp/id_ed25519"),
        )

        async def probe(settings: object) -> HostFacts:
            return facts

        kwargs["host_probe"] = probe
    except (ImportError, TypeError):
        pass
    app = (OnlyVMs if pane_only else DevorchApp)(load_settings(poll_interval=1.0), **kwargs)

    def pane() -> VMsPane:
        return app.query_one(VMsPane)

    return asyncio.run(
        measure(app, lambda: pane().table.row_count == INSTANCES, seconds, lambda: pane().list_poll.runs)
    )


def child_baseline(seconds: float) -> dict[str, float]:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Footer, Header

    from devorch_tui.ui.widgets.vm_table import COLUMNS, VMRow

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Header()
            yield DataTable(cursor_type="row", zebra_stripes=True)
            yield Footer()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            for column in COLUMNS:
                table.add_column(column.label, key=column.key, width=column.width)
            for number in range(INSTANCES):
                cells = VMRow(f"vm-{number:02d}", "Running", ipv4=("10.0.0.1",), release="Ubuntu 24.04 LTS").cells()
                table.add_row(*cells.values(), key=f"vm-{number:02d}")

    app = Bare()
    return asyncio.run(measure(app, lambda: app.query_one(DataTable).row_count == INSTANCES, seconds, lambda: 0))


# --------------------------------------------------------------------------- diff timing


def fleet_rows(count: int, generation: int, rng: random.Random):  # type: ignore[no-untyped-def]
    from devorch_tui.ui.widgets.vm_table import VMRow

    rows = []
    states = ("Running", "Stopped", "Suspended")
    for number in range(count + 5):
        # Generation g drops 5 VMs and adds 5 others; 10% change state or load.
        if (generation % 2 == 0 and number >= count) or (generation % 2 == 1 and number < 5):
            continue
        changed = rng.random() < 0.10
        state = states[(number + (generation if changed else 0)) % 3]
        running = state == "Running"
        rows.append(
            VMRow(
                name=f"vm-{number:03d}",
                state=state,
                ipv4=(f"10.1.{number // 250}.{number % 250}",) if running else (),
                release="Ubuntu 24.04 LTS",
                cpus=2,
                memory_used=(300 + (generation if changed else 0)) * 1024**2 if running else None,
                memory_total=4 * 1024**3,
                disk_used=2 * 1024**3 if running else None,
                disk_total=20 * 1024**3,
                load=(0.1 * generation if changed else 0.05, 0.03, 0.01) if running else (),
                snapshot_count=number % 4,
            )
        )
    return rows


def diff_timing(repeats: int) -> dict[str, list[float]]:
    from textual.app import App, ComposeResult

    from devorch_tui.ui.widgets.vm_table import COLUMN_KEYS, VMTable

    rng = random.Random(7)
    generations = [fleet_rows(500, generation, rng) for generation in range(repeats + 1)]
    results: dict[str, list[float]] = {"diff": [], "rebuild": [], "changed_cells": []}

    class Bench(App[None]):
        def compose(self) -> ComposeResult:
            yield VMTable(id="diff")
            yield VMTable(id="rebuild")

    async def run() -> None:
        app = Bench()
        async with app.run_test(size=SIZE) as pilot:
            diff = app.query_one("#diff", VMTable)
            rebuild = app.query_one("#rebuild", VMTable)
            diff.apply(generations[0])
            await pilot.pause()
            for rows in generations[1:]:
                started = time.perf_counter()
                stats = diff.apply(rows)
                results["diff"].append((time.perf_counter() - started) * 1000)
                results["changed_cells"].append(stats.updated_cells + 9 * (len(stats.added) + len(stats.removed)))
                started = time.perf_counter()
                rebuild.clear()
                for row in sorted(rows, key=lambda item: item.name):
                    cells = row.cells()
                    rebuild.add_row(*(cells[key] for key in COLUMN_KEYS), key=row.name)
                results["rebuild"].append((time.perf_counter() - started) * 1000)
                await pilot.pause()  # render between polls, like the app does

    asyncio.run(run())
    return results


# --------------------------------------------------------------------------- parent


def run_child(kind: str, seconds: float, env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, str(HERE), "--child", kind, "--seconds", str(seconds)],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=seconds + 120,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{kind} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(lines[-1])


def print_diff(timing: dict[str, list[float]]) -> None:
    diff_ms = statistics.median(timing["diff"])
    rebuild_ms = statistics.median(timing["rebuild"])
    print(f"one poll's diff on a 500-row table ({len(timing['diff'])} polls, median {statistics.median(timing['changed_cells']):.0f} cells touched):")
    print(f"  VMTable.apply (keyed diff)   median {diff_ms:6.2f} ms  (max {max(timing['diff']):.2f})")
    print(f"  clear + rebuild (baseline)   median {rebuild_ms:6.2f} ms  (max {max(timing['rebuild']):.2f})")
    print(f"  ratio {diff_ms / rebuild_ms:.2f}x of rebuild; target < {DIFF_TARGET} ms: {'met' if diff_ms < DIFF_TARGET else 'MISSED'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="idle measurement window (default 30)")
    parser.add_argument("--repeats", type=int, default=41, help="diffs applied to the 500-row table (default 41)")
    parser.add_argument("--diff-only", action="store_true", help="only the 500-row diff timing")
    parser.add_argument("--child", choices=("devorch", "pane", "baseline"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "baseline":
            result = child_baseline(args.seconds)
        else:
            result = child_devorch(args.seconds, pane_only=args.child == "pane")
        print(json.dumps(result))
        return 0

    if args.diff_only:
        timing = diff_timing(args.repeats)
        print_diff(timing)
        return 0 if statistics.median(timing["diff"]) < DIFF_TARGET else 1

    with tempfile.TemporaryDirectory(prefix="devorch-bench-poll-") as tmp:
        root = Path(tmp)
        env = dict(os.environ)
        for name in ("config", "data", "state", "workspace"):
            (root / name).mkdir()
            env["DEVORCH_WORKSPACE" if name == "workspace" else f"DEVORCH_{name.upper()}_DIR"] = str(root / name)
        env.update(seed_fleet(root / "fake" / "state.json"))
        env.pop("TEXTUAL", None)
        baseline = run_child("baseline", args.seconds, env)
        devorch = run_child("devorch", args.seconds, env)
        pane = run_child("pane", args.seconds, env)

    timing = diff_timing(args.repeats)

    def pct(result: dict[str, float]) -> float:
        return 100.0 * result["cpu"] / result["wall"]

    app_pct, base_pct, pane_pct = pct(devorch), pct(baseline), pct(pane)
    diff_ms = statistics.median(timing["diff"])
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, headless {SIZE[0]}x{SIZE[1]}")
    print(f"idle CPU over {devorch['wall']:.0f} s, {INSTANCES} instances, list polled every 1 s ({devorch['polls']:.0f} polls):")
    print(f"  bare Textual app + DataTable  {base_pct:5.2f}% of one core  ({baseline['cpu']:.2f} s CPU)")
    print(f"  devorch-tui, VMs tab shown    {app_pct:5.2f}% of one core  ({devorch['cpu']:.2f} s CPU)"
          f"  [multipass double children: {devorch['children']:.2f} s, not counted]")
    print(f"  VMs pane alone (no other pane) {pane_pct:5.2f}% of one core  ({pane['cpu']:.2f} s CPU, {pane['polls']:.0f} polls)")
    ratio = f"{app_pct / base_pct:.2f}x" if base_pct >= 0.05 else "n/a (the bare app uses ~no CPU when idle)"
    print(f"  ratio {ratio}; extra over baseline {app_pct - base_pct:.2f} points;"
          f" target < {CPU_TARGET}% of one core: {'met' if app_pct < CPU_TARGET else 'MISSED'}")
    print_diff(timing)
    return 0 if app_pct < CPU_TARGET and diff_ms < DIFF_TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())

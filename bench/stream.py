"""Stream benchmark: `seq 1 2000000` through the executor into the Logs pane, against raw OpenSSH.

Both sides talk to the same real sshd (tests/fakes/sshd.py) on a loopback address, in the same run:

* baseline: ``ssh -i KEY -p PORT user@127.0.0.x seq 1 2000000 > /dev/null`` (OpenSSH client, output
  thrown away), timed from spawn to exit;
* devorch-tui: the real app (headless, ``App.run_test``) with the Logs pane shown; the run is started
  through the pane (``LogsPane.start_run``: resolve target, asyncssh executor, RunStore writing every
  line to disk, subscriber, batched ``RunLog`` writes), timed from start until the run is finished
  and its last line has been written to the view.

Meanwhile a key (``f``, the pane's Follow binding) is posted to the app every 50 ms, from the moment
the pane shows the run (``f`` is disabled before), the way the terminal driver posts keys, and the
time until the pane's action runs is recorded (target: the slowest < 100 ms; the first press, as the
run starts, is also reported apart). Peak RSS of the process (VmHWM) is read at the end (target: < 150 MB).

    python bench/stream.py [--lines 2000000] [--baseline-runs 3]

Prints lines/s for both, their ratio (target >= 0.5) and the checks, and exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.fakes.sshd
sys.path.insert(0, str(REPO / "src"))

RATIO_TARGET = 0.5
KEY_TARGET = 0.100
RSS_TARGET_MB = 150.0
PROBE_EVERY = 0.05
KEY_GIVE_UP = 10.0


def rss_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def baseline(server, lines: int) -> float:  # noqa: ANN001
    """Seconds for raw OpenSSH to run `seq 1 LINES` with stdout to /dev/null."""
    argv = server.ssh_argv("seq", "1", str(lines))
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


async def through_the_pane(server, lines: int, state: Path) -> dict[str, float]:  # noqa: ANN001
    from textual import events

    from devorch_tui.config import load_settings
    from devorch_tui.services.tasks import TaskFile
    from devorch_tui.ui.app import DevorchApp

    settings = load_settings(
        ssh_key=server.client_key, ssh_user=server.user, state_dir=state / "state", data_dir=state / "data",
        config_dir=state / "config", workspace=state,
    )  # fmt: skip
    app = DevorchApp(settings, host_probe=_no_probe, own_process=True)  # as the CLI runs it (gc tuning)
    task_file = TaskFile.model_validate({"name": "stream", "tasks": [{"name": "seq", "run": f"seq 1 {lines}"}]})
    async with app.run_test(size=(160, 45)) as pilot:
        # A user starts a run once the dashboard is up: every pane mounted (they load right after the
        # first frame) and the start-up settled, as in `devorch-tui` opened, then `4`, then `n`.
        from devorch_tui.ui.panes import PANE_SPECS, Pane

        while len(app.query(Pane)) < len(PANE_SPECS):
            await pilot.pause(0.05)
        await pilot.pause(0.5)
        await pilot.press("4")
        await pilot.pause()
        pane = app.query_one("#logs")
        pane.log_view.focus()
        await pilot.pause()

        answered: list[float] = []
        original = pane.action_follow

        def follow_probe() -> None:
            answered.append(time.perf_counter())
            original()

        pane.action_follow = follow_probe  # the `f` binding now also stamps the time it ran
        latencies: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            # `f` is live once the pane shows the run (before that the binding is disabled and the
            # key would be dropped, leaving the probe waiting forever).
            while pane.record is None and not done.is_set():
                await asyncio.sleep(0.001)
            while not done.is_set():
                count = len(answered)
                sent = time.perf_counter()
                app.post_message(events.Key("f", "f"))
                while len(answered) == count:
                    if time.perf_counter() - sent > KEY_GIVE_UP:
                        raise SystemExit(f"a key press was not answered within {KEY_GIVE_UP:g} s")
                    await asyncio.sleep(0.001)
                latencies.append(answered[-1] - sent)
                if os.environ.get("BENCH_TRACE"):
                    print(f"  key at {sent - start:6.3f}s answered in {(answered[-1] - sent) * 1000:6.1f} ms", file=sys.stderr)
                await asyncio.sleep(PROBE_EVERY)

        rss_before = rss_now_mb()
        start = time.perf_counter()
        prober = asyncio.create_task(probe())
        pane.start_run([server.url], task_file)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 600
        view = pane.log_view
        while True:
            record = pane.record
            finished = record is not None and record.status != "running"
            if finished and view.pending_count == 0:
                break
            if finished and record.status != "ok":
                raise SystemExit(f"the run ended {record.status}: {record.message}")
            if loop.time() > deadline:
                raise SystemExit("the run did not finish in 600 s")
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
        if not any(line.endswith(f"] {lines}") for line in view.lines[-10:]):
            raise SystemExit(f"the last line `{lines}` is not in the view: {view.lines[-10:]}")
        done.set()
        await prober
        shown = view.total_pushed
        log_file = settings.paths.runs_dir / record.id / record.targets[0].log_file
        on_disk = sum(1 for _ in open(log_file, "rb"))
    return {
        "seconds": elapsed,
        "shown": shown,
        "on_disk": on_disk,
        "key_max": max(latencies),
        "key_p95": statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 20 else max(latencies),
        "key_count": len(latencies),
        "key_first": latencies[0],
        "key_rest_max": max(latencies[1:], default=0.0),
        "rss_before": rss_before,
    }


async def _no_probe(settings):  # noqa: ANN001, ANN202 - the Host pane's checks are not measured here
    from devorch_tui.services.host import gather_facts

    return await gather_facts(settings)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--baseline-runs", type=int, default=3)
    args = parser.parse_args()

    from tests.fakes.sshd import SshServer

    # A bench stopped with SIGTERM/SIGHUP (a timeout, a closed terminal) still kills its sshd and
    # removes its folder: the signal becomes SystemExit, which runs the `finally` and `with` below.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    with tempfile.TemporaryDirectory(prefix="devorch-bench-") as tmp:
        root = Path(tmp)
        for name in ("CONFIG", "DATA", "STATE"):
            os.environ[f"DEVORCH_{name}_DIR"] = str(root / name.lower())
        server = SshServer(root / "sshd").start()
        try:
            raw = [baseline(server, args.lines)]
            result = asyncio.run(through_the_pane(server, args.lines, root))
            raw += [baseline(server, args.lines) for _ in range(max(0, args.baseline_runs - 1))]
        finally:
            server.kill()

    raw_s = statistics.median(raw)
    raw_rate = args.lines / raw_s
    ours_rate = args.lines / result["seconds"]
    ratio = ours_rate / raw_rate
    rss = rss_peak_mb()
    print(f"lines: {args.lines:,} (seq 1 {args.lines})")
    print(f"raw ssh > /dev/null : {raw_s:7.3f} s  {raw_rate:12,.0f} lines/s  (median of {len(raw)}: {', '.join(f'{s:.3f}' for s in raw)})")
    print(f"executor -> Logs pane: {result['seconds']:7.3f} s  {ours_rate:12,.0f} lines/s")
    print(f"ratio (pane / raw)   : {ratio:.2f}  (target >= {RATIO_TARGET})")
    print(f"lines in view buffer : {result['shown']:,} pushed; {result['on_disk']:,} lines in the log file")
    print(f"key (f) answered     : max {result['key_max'] * 1000:.1f} ms, p95 {result['key_p95'] * 1000:.1f} ms over {result['key_count']} presses (target max < {KEY_TARGET * 1000:.0f} ms)")
    print(f"                       first press (as the run starts) {result['key_first'] * 1000:.1f} ms, the others max {result['key_rest_max'] * 1000:.1f} ms")
    print(f"peak RSS             : {rss:.1f} MB (before the run {result['rss_before']:.1f} MB; target < {RSS_TARGET_MB:.0f} MB)")
    ok = ratio >= RATIO_TARGET and result["key_max"] < KEY_TARGET and rss < RSS_TARGET_MB
    print("result               :", "all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

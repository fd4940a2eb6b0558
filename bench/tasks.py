"""Tasks benchmark: 200 tasks of `true` through one executor connection, against 200 `ssh HOST true`.

Both sides talk to the same real sshd (tests/fakes/sshd.py) on a loopback address, in the same run:

* baseline: the OpenSSH client started 200 times (``ssh -i KEY -p PORT user@127.0.0.x true``), one
  after the other -- what a shell script looping over tasks does;
* devorch-tui: ``agent.run_tasks`` with a task file of 200 ``true`` tasks on that target: one
  asyncssh connection (pinned host key), one channel per task, every task's status, exit code,
  duration and info lines written to the run record and log on disk.

The two sides alternate ``--rounds`` times; the ratio uses the medians. Target: devorch-tui at least
10x faster.

    python bench/tasks.py [--tasks 200] [--rounds 3]

Exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.fakes.sshd
sys.path.insert(0, str(REPO / "src"))

TARGET = 10.0


def baseline(server, count: int) -> float:  # noqa: ANN001
    argv = server.ssh_argv("true")
    started = time.perf_counter()
    for _ in range(count):
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


async def executor(server, count: int, state: Path) -> float:  # noqa: ANN001
    from devorch_tui.config import load_settings
    from devorch_tui.services.agent import run_tasks
    from devorch_tui.services.runs import RunStore
    from devorch_tui.services.targets import Target
    from devorch_tui.services.tasks import parse_task_file

    settings = load_settings(ssh_key=server.client_key, ssh_user=server.user, state_dir=state)
    task_file = parse_task_file(json.dumps({"name": "bench", "tasks": [{"name": f"t{i}", "run": "true"} for i in range(count)]}))
    target = Target(name=server.url, host=server.host, port=server.port, user=server.user)
    started = time.perf_counter()
    record = await run_tasks(task_file, [target], RunStore(settings.paths.runs_dir), settings)
    elapsed = time.perf_counter() - started
    if record.status != "ok" or record.counts().get("ok") != count:
        raise SystemExit(f"the run did not pass: {record.status} {record.counts()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from tests.fakes.sshd import SshServer

    with tempfile.TemporaryDirectory(prefix="devorch-bench-") as folder:
        root = Path(folder)
        os.environ["DEVORCH_CONFIG_DIR"] = str(root / "config")  # no user settings.toml
        server = SshServer(root / "sshd").start()
        try:
            raw: list[float] = []
            ours: list[float] = []
            for round_no in range(args.rounds):
                raw.append(baseline(server, args.tasks))
                ours.append(asyncio.run(executor(server, args.tasks, root / f"state{round_no}")))
                print(f"round {round_no + 1}: ssh x{args.tasks} {raw[-1]:.2f} s   executor {ours[-1]:.2f} s", flush=True)
        finally:
            server.kill()
    raw_median, ours_median = statistics.median(raw), statistics.median(ours)
    ratio = raw_median / ours_median
    print(
        f"{args.tasks} tasks of `true`: {args.tasks} x `ssh HOST true` {raw_median:.2f} s "
        f"({args.tasks / raw_median:.0f} tasks/s), executor over one connection {ours_median:.2f} s "
        f"({args.tasks / ours_median:.0f} tasks/s): {ratio:.1f}x faster (target >= {TARGET:g}x) "
        f"[{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}]"
    )
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())

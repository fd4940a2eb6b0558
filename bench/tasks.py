"""Tasks benchmark: 200 tasks of `true` through one executor connection, against 200 `ssh HOST true`.

Both sides talk to the same real sshd (tests/fakes/sshd.py) on a loopback address, in the same run:

* baseline: 200 OpenSSH client processes one after the other, ``ssh -i KEY -p PORT user@127.0.0.x true``
  (a new connection, key exchange and login each time: what a shell loop around ssh does);
* devorch-tui: one task file with 200 tasks ``true`` run by ``agent.run_tasks`` on that server: one
  asyncssh connection, one channel per task, every task recorded (status, exit code, duration) in
  the run history on disk, as the headless ``devorch-tui run`` does.

    python bench/tasks.py [--tasks 200] [--rounds 1]

With ``--rounds N`` the two sides alternate N times and the medians are compared. Prints both
times, tasks/s and the speed-up (target >= 10x); exits 1 if the target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
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
    start = time.perf_counter()
    for _ in range(count):
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


async def executor(server, count: int, root: Path) -> tuple[float, str, int]:  # noqa: ANN001
    import asyncssh  # noqa: F401 - imported before the clock starts, as in a running dashboard

    from devorch_tui.config import load_settings
    from devorch_tui.services.agent import run_tasks
    from devorch_tui.services.runs import RunStore
    from devorch_tui.services.targets import resolve_targets
    from devorch_tui.services.tasks import TaskFile

    root.mkdir(parents=True, exist_ok=True)
    settings = load_settings(ssh_key=server.client_key, ssh_user=server.user, workspace=root, state_dir=root / "state")
    store = RunStore(settings.paths.runs_dir)
    task_file = TaskFile.model_validate({"name": "trues", "tasks": [{"name": f"t{i:03d}", "run": "true"} for i in range(count)]})
    start = time.perf_counter()
    targets = await resolve_targets([server.url], None)
    record = await run_tasks(task_file, targets, store, settings)
    elapsed = time.perf_counter() - start
    ok = sum(1 for step in record.targets[0].steps if step.status == "ok" and step.exit_code == 0)
    return elapsed, record.status, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1, help="alternate both sides N times, compare medians")
    args = parser.parse_args()

    from tests.fakes.sshd import SshServer

    with tempfile.TemporaryDirectory(prefix="devorch-bench-") as tmp:
        root = Path(tmp)
        for name in ("CONFIG", "DATA", "STATE"):
            os.environ[f"DEVORCH_{name}_DIR"] = str(root / name.lower())
        server = SshServer(root / "sshd").start()
        raws: list[float] = []
        ourss: list[float] = []
        status, ok = "ok", args.tasks
        try:
            for round_no in range(max(1, args.rounds)):
                raws.append(baseline(server, args.tasks))
                seconds, round_status, round_ok = asyncio.run(executor(server, args.tasks, root / f"round{round_no}"))
                ourss.append(seconds)
                if round_status != "ok" or round_ok != args.tasks:
                    status, ok = round_status, round_ok
        finally:
            server.kill()
    raw, ours = statistics.median(raws), statistics.median(ourss)

    speedup = raw / ours
    print(f"tasks: {args.tasks} x `true`, {len(raws)} round(s), medians")
    print(f"{args.tasks} x ssh HOST true      : {raw:7.3f} s  {args.tasks / raw:8.1f} tasks/s")
    print(f"executor, one connection : {ours:7.3f} s  {args.tasks / ours:8.1f} tasks/s  (run {status}, {ok}/{args.tasks} tasks ok with exit 0)")
    print(f"speed-up                 : {speedup:.1f}x  (target >= {TARGET:.0f}x)")
    good = speedup >= TARGET and status == "ok" and ok == args.tasks
    print("result                   :", "target met" if good else "TARGET MISSED")
    return 0 if good else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Provision benchmark: five project VMs provisioned in parallel against five in sequence.

Same machine, same run, same code path: ``services.provision.provision_project`` against the
multipass double with its lifecycle delays on (``start`` takes --start-delay seconds, default 5; a
real cloned VM boots in 15-30 s), every VM backed by a real OpenSSH sshd on a loopback address and a
local bare git repository sent into each VM as a git bundle over SSH and cloned there. The golden
image is seeded as a finished build leaves it. The baseline is the same five provisions one after the
other; the measurement is five at once (asyncio.gather), where golden-image operations (the golden
check, restore and clone, under the golden lock) are serialised and the rest overlaps. Target: parallel wall time under 0.4 of the sequential one (median of the rounds'
ratios; each round measures both in the same conditions).

    python bench/provision.py [--start-delay 5] [--rounds 3] [--detail]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
TARGET = 0.4
PROJECTS = 5

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


async def one_round(tmp: Path, start_delay: float, stop_delay: float, detail: bool = False) -> tuple[float, float]:
    from devorch_tui.services import golden
    from devorch_tui.services.provision import ProvisionRequest, provision_project, teardown_project
    from tests.fakes.multipass_fixture import FakeMultipass
    from tests.fakes.sshd import SshServer
    from tests.fakes.vm_lab import GUEST_CLOUD_INIT_LOG, Lab

    for variable, name in (("CONFIG_DIR", "config"), ("DATA_DIR", "data"), ("STATE_DIR", "state"), ("WORKSPACE", "workspace")):
        (tmp / name).mkdir()
        os.environ[f"DEVORCH_{variable}"] = str(tmp / name)
    fake = FakeMultipass(tmp / "fake-multipass" / "state.json")
    os.environ.update(fake.env)
    golden.CLOUD_INIT_LOG = GUEST_CLOUD_INIT_LOG
    servers: list[SshServer] = []

    def make_server(host: str) -> SshServer:
        server = SshServer(tmp / "sshd" / host, host)
        servers.append(server)
        return server

    try:
        lab = await Lab(tmp, fake, make_server, os.environ.__setitem__).setup()
        lab.seed_golden()
        seq_names = [f"seq{n}" for n in range(PROJECTS)]
        par_names = [f"par{n}" for n in range(PROJECTS)]
        for name in seq_names + par_names:
            lab.make_guest(f"dev-{name}")
        fake.set_delays(start=start_delay, stop=stop_delay)

        def request(name: str) -> ProvisionRequest:
            return ProvisionRequest(name, f"file://{lab.repo}")

        started = time.perf_counter()
        seq_runs = [await provision_project(request(name), lab.settings, lab.client, lab.store) for name in seq_names]
        sequential = time.perf_counter() - started

        started = time.perf_counter()
        par_runs = await asyncio.gather(*(provision_project(request(name), lab.settings, lab.client, lab.store) for name in par_names))
        parallel = time.perf_counter() - started
        if detail:
            for label, runs in (("sequential", seq_runs), ("parallel", par_runs)):
                steps: dict[str, list[float]] = {}
                for result in runs:
                    for outcome in result.workflow.outcomes:
                        steps.setdefault(outcome.name, []).append(outcome.duration or 0.0)
                print(f"  {label}: mean step durations: " + ", ".join(f"{name} {statistics.mean(values):.2f}s" for name, values in steps.items()))

        for name in seq_names + par_names:
            assert (lab.guests[f"dev-{name}"].home / "demo" / "README.md").is_file(), name
            await teardown_project(name, lab.settings, lab.client)
        return sequential, parallel
    finally:
        for server in servers:
            server.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start-delay", type=float, default=5.0, help="seconds `multipass start` takes in the double (a real cloned VM boots in 15-30 s)")
    parser.add_argument("--stop-delay", type=float, default=1.0, help="seconds `multipass stop` takes in the double")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--detail", action="store_true", help="print the mean duration of every step")
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = []
    for number in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="devorch-bench-provision-") as folder:
            sequential, parallel = asyncio.run(one_round(Path(folder), args.start_delay, args.stop_delay, args.detail))
        results.append((sequential, parallel))
        print(f"round {number + 1}: sequential {sequential:.2f} s, parallel {parallel:.2f} s, ratio {parallel / sequential:.3f}")
    sequential = statistics.median(r[0] for r in results)
    parallel = statistics.median(r[1] for r in results)
    ratio = statistics.median(r[1] / r[0] for r in results)  # per-round ratios: both sides share a round's load
    print(f"{PROJECTS} provisions (start delay {args.start_delay:g} s, real sshd + git clone each), median of {args.rounds} round(s):")
    print(f"  baseline, in sequence: {sequential:.2f} s")
    print(f"  devorch-tui, in parallel: {parallel:.2f} s")
    print(f"  ratio parallel/sequential (median of the rounds' ratios): {ratio:.3f} (target < {TARGET}) -> {'PASS' if ratio < TARGET else 'FAIL'}")
    print(f"  cores: {os.cpu_count()}, load average before: {', '.join(f'{x:.2f}' for x in load_before)}")
    return 0 if ratio < TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())

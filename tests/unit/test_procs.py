from __future__ import annotations

import asyncio
import sys

import pytest

from devorch_tui.services import procs


async def test_run_captures_output_and_exit_code() -> None:
    result = await procs.run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"], timeout=10)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok


async def test_run_uses_c_locale_and_no_stdin() -> None:
    code = "import os, sys; print(os.environ['LC_ALL'], sys.stdin.read() == '')"
    result = await procs.run([sys.executable, "-c", code], timeout=10)
    assert result.stdout.split() == ["C", "True"]


async def test_run_passes_input() -> None:
    result = await procs.run([sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"], timeout=10, input=b"abc")
    assert result.stdout.strip() == "ABC"


async def test_missing_program_is_a_clear_error() -> None:
    with pytest.raises(procs.CommandNotFound) as info:
        await procs.run(["/nonexistent/multipass", "version"], timeout=5)
    assert "was not found" in info.value.message


async def test_run_rejects_a_shell_string() -> None:
    with pytest.raises(TypeError):
        await procs.run("echo hi", timeout=5)  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    """True while ``pid`` runs. A killed orphan may stay a zombie (state Z) when PID 1 does not reap."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_timeout_kills_the_whole_process_group(tmp_path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    # The child starts a grandchild that would outlive a plain kill of the child.
    script = f"sleep 300 & echo $! > {pid_file}; wait"
    with pytest.raises(procs.CommandTimeout) as info:
        await procs.run(["sh", "-c", script], timeout=0.5)
    assert "did not finish within 0.5 s" in info.value.message
    grandchild = int(pid_file.read_text())
    for _ in range(50):
        if not alive(grandchild):
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the grandchild survived the timeout")

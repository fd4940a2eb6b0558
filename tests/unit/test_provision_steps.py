"""The step engine of services.provision, with small in-test steps and a real RunStore on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devorch_tui.errors import DevorchError
from devorch_tui.services.provision import (
    SkipStep,
    Step,
    StepContext,
    StepFailed,
    StepsCancelled,
    execute,
    format_duration,
    run_cleanup,
)
from devorch_tui.services.runs import RunStore, StepEvent


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def recorder(store: RunStore) -> list[StepEvent]:
    events: list[StepEvent] = []
    store.subscribe(lambda event: events.append(event) if isinstance(event, StepEvent) else None)
    return events


async def test_steps_run_in_order_and_report_state_and_duration(store: RunStore) -> None:
    order: list[str] = []

    async def first(ctx: StepContext) -> str:
        order.append("first")
        ctx.info("making the thing")
        ctx.data["made"] = 42
        return "made 42"

    async def second(ctx: StepContext) -> None:
        order.append(f"second saw {ctx.data['made']}")

    async def third(ctx: StepContext) -> None:
        raise SkipStep("nothing to do")

    events = recorder(store)
    result = await execute(
        store, "provision", "demo", "dev-a", [Step("first", first), Step("second", second), Step("third", third)]
    )

    assert order == ["first", "second saw 42"]
    assert [(o.name, o.status) for o in result.outcomes] == [("first", "ok"), ("second", "ok"), ("third", "skipped")]
    assert result.outcomes[0].message == "made 42"
    assert all(o.duration is not None and o.duration >= 0 for o in result.outcomes)
    assert [(e.step, e.status) for e in events] == [
        ("first", "running"),
        ("first", "ok"),
        ("second", "running"),
        ("second", "ok"),
        ("third", "running"),
        ("third", "skipped"),
    ]
    record = store.load(result.run_id)
    assert record.kind == "provision" and record.status == "ok"
    assert [(s.name, s.status) for s in record.target("dev-a").steps] == [
        ("first", "ok"),
        ("second", "ok"),
        ("third", "skipped"),
    ]
    assert record.target("dev-a").steps[2].message == "nothing to do"
    log = "\n".join(store.read_log(result.run_id, "dev-a"))
    assert "first\tmaking the thing" in log


async def test_steps_are_listed_pending_before_they_run(store: RunStore) -> None:
    seen: list[list[tuple[str, str]]] = []

    async def look(ctx: StepContext) -> None:
        record = store.load(ctx.run.id)
        seen.append([(s.name, s.status) for s in record.target("vm").steps])

    await execute(store, "base-image", "t", "vm", [Step("look", look), Step("later", look)])
    assert seen[0] == [("look", "running"), ("later", "pending")]


async def test_failure_names_step_cause_and_cleanup(store: RunStore) -> None:
    undone: list[str] = []

    async def make(ctx: StepContext) -> None:
        async def undo() -> None:
            undone.append("vm")

        ctx.add_cleanup("delete VM dev-a", undo, "devorch-tui teardown a --yes")

    async def boom(ctx: StepContext) -> None:
        raise DevorchError("the repository does not exist", hint="check the URL")

    async def never(ctx: StepContext) -> None:
        raise AssertionError("must not run after a failure")

    with pytest.raises(StepFailed) as caught:
        await execute(store, "provision", "t", "dev-a", [Step("make", make), Step("clone repo", boom), Step("after", never)])

    failure = caught.value
    assert failure.step == "clone repo"
    assert failure.message == "dev-a: step 'clone repo' failed: the repository does not exist"
    assert "check the URL" in failure.hint and "devorch-tui teardown a --yes" in failure.hint
    assert [c.description for c in failure.cleanup] == ["delete VM dev-a"]
    record = store.load(failure.run_id)
    assert record.status == "failed"
    assert [(s.name, s.status) for s in record.target("dev-a").steps] == [
        ("make", "ok"),
        ("clone repo", "failed"),
        ("after", "skipped"),
    ]
    assert record.target("dev-a").steps[1].message == "the repository does not exist"
    log = "\n".join(store.read_log(failure.run_id, "dev-a"))
    assert "failed: the repository does not exist" in log and "fix: check the URL" in log

    assert undone == []  # nothing is cleaned up until asked
    results = await run_cleanup(failure.cleanup)
    assert undone == ["vm"] and results[0][1] is None


async def test_unexpected_exception_is_reported_with_its_type(store: RunStore) -> None:
    async def broken(ctx: StepContext) -> None:
        raise FileNotFoundError(2, "No such file or directory", "/nope/tasks.json")

    with pytest.raises(StepFailed) as caught:
        await execute(store, "provision", "t", "x", [Step("read tasks", broken)])
    assert "No such file or directory: /nope/tasks.json" in caught.value.message
    assert isinstance(caught.value.cause, FileNotFoundError)


async def test_cancel_event_stops_the_running_step(store: RunStore) -> None:
    cancel = asyncio.Event()
    started = asyncio.Event()
    stopped: list[str] = []

    async def slow(ctx: StepContext) -> None:
        async def undo() -> None:
            pass

        ctx.add_cleanup("delete half-made VM", undo)
        started.set()
        try:
            await asyncio.Event().wait()  # forever, until cancelled
        except asyncio.CancelledError:
            stopped.append("slow")
            raise

    async def after(ctx: StepContext) -> None:
        raise AssertionError("must not run after cancel")

    job = asyncio.create_task(execute(store, "provision", "t", "dev-b", [Step("slow", slow), Step("after", after)], cancel=cancel))
    await started.wait()
    cancel.set()
    with pytest.raises(StepsCancelled) as caught:
        await job
    assert stopped == ["slow"]
    assert caught.value.step == "slow"
    assert [c.description for c in caught.value.cleanup] == ["delete half-made VM"]
    record = store.load(caught.value.run_id)
    assert record.status == "cancelled"
    assert [(s.name, s.status) for s in record.target("dev-b").steps] == [("slow", "cancelled"), ("after", "skipped")]


async def test_task_cancellation_is_recorded_and_propagates(store: RunStore) -> None:
    started = asyncio.Event()

    async def slow(ctx: StepContext) -> None:
        started.set()
        await asyncio.Event().wait()

    job = asyncio.create_task(execute(store, "base-image", "t", "golden", [Step("slow", slow)]))
    await started.wait()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    (record,) = store.list()
    assert record.status == "cancelled"
    assert record.target("golden").steps[0].status == "cancelled"


async def test_locks_held_across_steps_are_released_on_failure(store: RunStore) -> None:
    lock = asyncio.Lock()

    async def take(ctx: StepContext) -> None:
        await ctx.acquire(lock)

    async def check_and_fail(ctx: StepContext) -> None:
        assert lock.locked()
        raise DevorchError("nope")

    with pytest.raises(StepFailed):
        await execute(store, "provision", "t", "x", [Step("take", take), Step("fail", check_and_fail)])
    assert not lock.locked()


async def test_lock_released_by_a_later_step(store: RunStore) -> None:
    lock = asyncio.Lock()
    states: list[bool] = []

    async def take(ctx: StepContext) -> None:
        await ctx.acquire(lock)

    async def give_back(ctx: StepContext) -> None:
        ctx.release(lock)
        states.append(lock.locked())

    await execute(store, "provision", "t", "x", [Step("take", take), Step("give back", give_back)])
    assert states == [False] and not lock.locked()


async def test_cleanup_failures_are_returned_not_raised() -> None:
    from devorch_tui.services.provision import CleanupAction

    async def bad() -> None:
        raise DevorchError("already gone")

    async def good() -> None:
        return None

    results = await run_cleanup([CleanupAction("first", good), CleanupAction("second", bad)])
    assert [(a.description, str(e) if e else None) for a, e in results] == [("second", "already gone"), ("first", None)]


def test_format_duration() -> None:
    assert format_duration(None) == "-"
    assert format_duration(1.234) == "1.2s"
    assert format_duration(125) == "2m05s"


# ------------------------------------------------------------------ project request checks (no VM needed)

from devorch_tui.services.golden import golden_comment, parse_golden_comment  # noqa: E402
from devorch_tui.services.provision import ProvisionRequest, project_vm_name  # noqa: E402
from devorch_tui.services.repos import (  # noqa: E402
    RepoError,
    bundle_clone_command,
    clone_command,
    parse_repo_url,
    validate_branch,
)


@pytest.mark.parametrize(
    ("url", "uses_ssh", "directory"),
    [
        ("https://github.com/org/demo.git", False, "demo"),
        ("https://github.com/org/demo", False, "demo"),
        ("http://git.local/x/tool.git/", False, "tool"),
        ("ssh://git@github.com/org/demo.git", True, "demo"),
        ("git@github.com:org/demo.git", True, "demo"),
        ("file:///srv/git/demo.git", False, "demo"),
        ("/srv/git/demo.git", False, "demo"),
        ("git://example.org/proj.git", False, "proj"),
    ],
)
def test_repository_urls_accepted(url: str, uses_ssh: bool, directory: str) -> None:
    repo = parse_repo_url(url)
    assert (repo.uses_ssh, repo.directory, repo.shown) == (uses_ssh, directory, url)


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("https://github.com/org/demo.git", None),
        ("git@github.com:org/demo.git", None),
        ("file:///srv/git/demo.git", "/srv/git/demo.git"),
        ("file://localhost/srv/my%20repo", "/srv/my repo"),
        ("/srv/git/demo.git", "/srv/git/demo.git"),
    ],
)
def test_repositories_on_this_machine_are_recognised(url: str, local: str | None) -> None:
    """A path or file:// URL names a folder here, which the VM cannot see: it is sent as a bundle."""
    assert parse_repo_url(url).local == (Path(local) if local else None)


def test_relative_and_home_paths_are_made_absolute_here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parse_repo_url("./demo").local == tmp_path / "demo"
    assert parse_repo_url("~/src/demo.git").local == tmp_path / "home" / "src" / "demo.git"


def test_file_url_of_another_host_is_refused() -> None:
    with pytest.raises(RepoError, match="names a folder on the host 'server'") as caught:
        parse_repo_url("file://server/srv/demo.git")
    assert "file:///path/to/repo" in caught.value.hint


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty"),
        ("--upload-pack=evil", "starts with '-'"),
        ("https://github.com/org/my repo", "contains spaces"),
        ("ftp://example.org/x.git", "unsupported scheme 'ftp'"),
        ("https:///nohost", "no host name"),
        ("just-words", "is not a repository URL"),
    ],
)
def test_repository_urls_refused_with_a_reason(url: str, problem: str) -> None:
    with pytest.raises(RepoError) as caught:
        parse_repo_url(url)
    assert problem in caught.value.message
    assert "https://github.com/org/repo.git" in caught.value.hint


def test_credentials_in_a_url_are_masked_for_display() -> None:
    repo = parse_repo_url("https://bob:s3cr3t-token@git.example.org/team/app.git")
    assert repo.secret == "s3cr3t-token"
    assert "s3cr3t-token" not in repo.shown and "bob:********@git.example.org" in repo.shown
    assert repo.url.startswith("https://bob:s3cr3t-token@")  # git still gets the real URL


def test_ssh_url_needs_agent_forwarding() -> None:
    with pytest.raises(DevorchError) as caught:
        ProvisionRequest("demo", "git@github.com:org/demo.git").checked()
    assert "--forward-agent" in caught.value.hint
    assert "the box in the dashboard's form" in caught.value.hint  # the same message serves the TUI form


def test_request_checks_sizes_and_names_before_anything_runs() -> None:
    with pytest.raises(DevorchError, match="--memory"):
        ProvisionRequest("demo", "https://github.com/o/r.git", memory="12X").checked()
    with pytest.raises(DevorchError, match="project VM name"):
        ProvisionRequest("bad_name", "https://github.com/o/r.git").checked()
    with pytest.raises(DevorchError, match="tasks.json"):
        ProvisionRequest("demo", "https://github.com/o/r.git", tasks_file=Path("/nonexistent/tasks.json")).checked()


def test_branch_names() -> None:
    assert validate_branch("release/1.2") == "release/1.2"
    for bad in ("-x", "a b", "a..b", "x.lock", "/x", "x/"):
        with pytest.raises(RepoError):
            validate_branch(bad)


def test_clone_command_quotes_every_value() -> None:
    repo = parse_repo_url("https://example.org/o/r.git")
    command = clone_command(repo, "feature/x")
    assert command.endswith("git clone --branch feature/x -- https://example.org/o/r.git \"$HOME\"/r")
    assert "GIT_TERMINAL_PROMPT=0" in command
    hostile = parse_repo_url("git://example.org/it's;touch$IFS/tmp/x`id`.git")
    assert clone_command(hostile, None).endswith(
        "git clone -- 'git://example.org/it'\"'\"'s;touch$IFS/tmp/x`id`.git' \"$HOME\"/project"
    )


def test_bundle_clone_command_quotes_every_value_and_runs_for_real(tmp_path: Path) -> None:
    """The command that clones an uploaded bundle, run with real git and sh: it clones the branch,
    deletes the bundle, and points origin at the given URL (or removes it)."""
    import os
    import subprocess

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home"), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    src = tmp_path / "it's $src"
    for argv in (["git", "init", "-q", "-b", "main", str(src)], ["git", "-C", str(src), "commit", "-q", "--allow-empty", "-m", "one"], ["git", "-C", str(src), "branch", "feature/x"]):
        subprocess.run(argv, check=True, env=env)
    (tmp_path / "home").mkdir()
    repo = parse_repo_url(str(src))
    for origin, expected in (("https://example.org/o/r.git", "https://example.org/o/r.git\n"), (None, "")):
        bundle = tmp_path / "home" / "a;b $(id).bundle"
        subprocess.run(["git", "-C", str(src), "bundle", "create", str(bundle), "--all"], check=True, env=env, capture_output=True)
        command = bundle_clone_command(repo, "feature/x", str(bundle), origin)
        assert "'" in command and "$(id)" not in command.replace("'" + str(bundle) + "'", "")  # only ever quoted
        done = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True)
        clone = tmp_path / "home" / "project"
        assert done.returncode == 0, done.stderr
        assert not bundle.exists()
        head = subprocess.run(["git", "-C", str(clone), "branch", "--show-current"], env=env, capture_output=True, text=True)
        assert head.stdout.strip() == "feature/x"
        remotes = subprocess.run(["git", "-C", str(clone), "remote", "get-url", "origin"], env=env, capture_output=True, text=True)
        assert remotes.stdout == expected
        subprocess.run(["rm", "-rf", str(clone)], check=True)


def test_project_vm_names() -> None:
    assert project_vm_name("api") == "dev-api"
    assert project_vm_name("dev-api") == "dev-api"


def test_golden_comment_round_trip() -> None:
    sha = "a" * 64
    assert golden_comment("python", sha) == f"template=python sha256={sha}"
    assert parse_golden_comment(golden_comment("python", sha)) == ("python", sha)
    assert parse_golden_comment("made by hand") is None


@pytest.mark.parametrize(
    "name",
    ["my python", "python ", " x", 'say "hi"', "back\\slash", "line\nbreak", "tab\there", "ünïcödé ☃", "a=b sha256=c", "", "x\"", "\""],
)
def test_golden_comment_round_trip_with_odd_template_names(name: str) -> None:
    sha = "0123456789abcdef" * 4
    comment = golden_comment(name, sha)
    assert "\n" not in comment
    assert parse_golden_comment(comment) == (name, sha)


def test_golden_comments_written_before_stay_readable() -> None:
    sha = "b" * 64
    assert parse_golden_comment(f"template=nodejs sha256={sha}") == ("nodejs", sha)
    assert parse_golden_comment(f"built by hand; template=py-3.12 sha256={sha} (ok)") == ("py-3.12", sha)


# ------------------------------------------------------------------------------------ golden lock


async def test_golden_lock_serialises_in_process(settings) -> None:  # noqa: ANN001
    from devorch_tui.services.golden import golden_lock

    events: list[str] = []

    async def operation(name: str) -> None:
        async with golden_lock(settings, "golden"):
            events.append(f"{name} in")
            await asyncio.sleep(0)  # let the other one try to enter
            events.append(f"{name} out")

    await asyncio.gather(operation("a"), operation("b"))
    assert events == ["a in", "a out", "b in", "b out"]


async def test_golden_lock_says_what_its_holder_does(settings) -> None:  # noqa: ANN001
    from devorch_tui.services.golden import golden_lock

    lock = golden_lock(settings, "golden")
    waits: list[str] = []
    async with lock.held("the golden image build"):
        assert lock.holder() == "the golden image build"
        assert lock.path.read_text() == "the golden image build"  # for waiters in other processes
        waiter = asyncio.create_task(lock.acquire("provisioning dev-a", on_wait=waits.append))
        await asyncio.sleep(0.05)
        assert not waiter.done()
    await waiter
    assert waits == ["the golden image build"]
    assert lock.holder() == "provisioning dev-a"
    lock.release()
    assert lock.holder() is None and lock.path.read_text() == ""
    assert golden_lock(settings, "golden") is golden_lock(settings, "golden")
    assert golden_lock(settings, "golden") is not golden_lock(settings, "other")


async def test_golden_lock_waits_for_another_process(settings) -> None:  # noqa: ANN001
    import sys

    from devorch_tui.services.golden import golden_lock

    lock = golden_lock(settings, "golden")
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); "
        "print('held', flush=True); sys.stdin.read()",
        str(lock.path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert await holder.stdout.readline() == b"held\n"
    lock.path.write_text("the golden image build")  # what the holder (another devorch-tui) wrote
    waits: list[str] = []
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(lock.acquire(on_wait=waits.append), 0.5)
    assert not lock.locked()  # a cancelled wait leaves nothing held
    assert waits == ["the golden image build in another devorch-tui process"]
    holder.stdin.close()
    await holder.wait()
    await lock.acquire()
    assert lock.locked()
    lock.release()
    assert not lock.locked()


def test_a_url_password_reaches_git_through_the_environment_not_the_command(tmp_path: Path) -> None:
    """Run the real clone command with real git against a loopback HTTP server that asks for Basic auth."""
    import base64
    import http.server
    import os
    import subprocess
    import threading

    from devorch_tui.services.repos import clone_env

    seen: list[str] = []

    class AskForPassword(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            auth = self.headers.get("Authorization")
            sent = base64.b64decode(auth.split()[1]).decode() if auth else ""
            if not sent.partition(":")[2]:  # no password yet (curl may send the URL's user alone)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.end_headers()
                return
            seen.append(sent)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), AskForPassword)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        repo = parse_repo_url(f"http://bob:s3cr3t-pw@127.0.0.1:{server.server_port}/team/app.git")
        command = clone_command(repo, None)
        assert "s3cr3t-pw" not in command
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **clone_env(repo)}
        result = subprocess.run(["bash", "-c", command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
    assert result.returncode != 0  # the server has no repository; what matters is what git sent
    assert seen and seen[0] == "bob:s3cr3t-pw", result.stderr
    assert "s3cr3t-pw" not in result.stderr

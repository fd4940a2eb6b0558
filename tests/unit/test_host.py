"""Host checks: judging facts (pure), gathering them from a multipass stand-in, and the CLI commands."""

from __future__ import annotations

import io
import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from devorch_tui import cli
from devorch_tui.config import Settings
from devorch_tui.services import host
from devorch_tui.services.host import GB, GiB, HostFacts, MultipassFacts

REFERENCE = Path("/work/shared/reference/multipass-json")
# `multipass version --format json` as multipass 1.16.3 prints it (4-space indent, sorted keys).
VERSION_UP = '{\n    "multipass": "1.16.3",\n    "multipassd": "1.16.3"\n}\n'
VERSION_CLIENT_ONLY = '{\n    "multipass": "1.16.3"\n}\n'


def healthy(**changes: object) -> HostFacts:
    facts = HostFacts(
        system="Linux",
        release="6.8.0",
        machine="x86_64",
        user="dev",
        multipass=MultipassFacts(path="/snap/bin/multipass", client_version="1.16.3", daemon_version="1.16.3"),
        kvm_present=True,
        kvm_accessible=True,
        cpu_virt_flags=True,
        memory_bytes=32 * GiB,
        disk_path=Path("/home/dev/.local/share/devorch-tui"),
        disk_free_bytes=200 * GiB,
        ssh_path="/usr/bin/ssh",
        ssh_keygen_path="/usr/bin/ssh-keygen",
        key_path=Path("/home/dev/.local/share/devorch-tui/ssh/id_ed25519"),
        snap_path="/usr/bin/snap",
    )
    return replace(facts, **changes)


def result(facts: HostFacts, check_id: str) -> host.CheckResult:
    return next(item for item in host.judge(facts) if item.id == check_id)


# --------------------------------------------------------------------------- judging


def test_healthy_host_passes_every_check() -> None:
    results = host.judge(healthy())
    assert [item.id for item in results] == [
        "os", "multipass", "daemon", "virtualization", "memory", "disk", "ssh", "ssh_keygen", "ssh_key",
    ]
    assert {item.status for item in results} == {"ok"}
    assert host.failed(results) == []
    assert all(item.fix == "" for item in results)


def test_unsupported_os_fails() -> None:
    check = result(healthy(system="Windows", release="11"), "os")
    assert check.status == "fail"
    assert "macOS and Linux" in check.detail


def test_macos_is_supported() -> None:
    assert result(healthy(system="Darwin", hv_support=True), "os").status == "ok"


def test_missing_multipass_on_linux_gives_the_snap_command() -> None:
    facts = healthy(multipass=MultipassFacts())
    check = result(facts, "multipass")
    assert (check.status, check.fix) == ("fail", "sudo snap install multipass")
    daemon = result(facts, "daemon")
    assert daemon.status == "fail" and "not installed" in daemon.detail


def test_missing_multipass_as_root_drops_sudo() -> None:
    assert result(healthy(multipass=MultipassFacts(), is_root=True), "multipass").fix == "snap install multipass"


def test_missing_multipass_on_macos_gives_the_brew_command() -> None:
    facts = healthy(system="Darwin", hv_support=True, multipass=MultipassFacts(), brew_path="/opt/homebrew/bin/brew")
    assert result(facts, "multipass").fix == "brew install --cask multipass"


def test_missing_multipass_without_snap_says_how_to_get_snap() -> None:
    check = result(healthy(multipass=MultipassFacts(), snap_path=None), "multipass")
    assert check.status == "fail"
    assert "install snapd" in check.fix and "snap install multipass" in check.fix


def test_broken_multipass_client_fails_both_checks() -> None:
    facts = healthy(multipass=MultipassFacts(path="/usr/bin/multipass", error="exit code 139"))
    check = result(facts, "multipass")
    assert check.status == "fail" and "exit code 139" in check.detail
    assert "multipass version" in check.fix
    assert result(facts, "daemon").status == "fail"


def test_old_multipass_warns_with_the_upgrade_command() -> None:
    facts = healthy(multipass=MultipassFacts(path="/snap/bin/multipass", client_version="1.14.1", daemon_version="1.14.1"))
    check = result(facts, "multipass")
    assert (check.status, check.fix) == ("warn", "sudo snap refresh multipass")
    assert host.failed(host.judge(facts)) == []


def test_daemon_down_on_linux_gives_snap_restart() -> None:
    mp = MultipassFacts(
        path="/snap/bin/multipass", client_version="1.16.3", daemon_problem="down",
        daemon_message="list failed: cannot connect to the multipass socket",
    )
    check = result(healthy(multipass=mp), "daemon")
    assert check.status == "fail"
    assert "cannot connect to the multipass socket" in check.detail
    assert check.fix == "sudo snap restart multipass"


def test_daemon_down_on_macos_gives_launchctl() -> None:
    mp = MultipassFacts(path="/usr/local/bin/multipass", client_version="1.16.3+mac", daemon_problem="down")
    check = result(healthy(system="Darwin", hv_support=True, multipass=mp), "daemon")
    assert check.fix == "sudo launchctl kickstart -k system/com.canonical.multipassd"


def test_socket_denied_says_which_group_to_join() -> None:
    mp = MultipassFacts(
        path="/snap/bin/multipass", client_version="1.16.3", daemon_problem="denied",
        daemon_message="list failed: multipass socket access denied", socket_group="sudo",
    )
    check = result(healthy(multipass=mp, user="alice"), "daemon")
    assert check.status == "fail"
    assert check.fix.startswith("sudo usermod -aG sudo alice")


def test_unauthenticated_client_gives_multipass_authenticate() -> None:
    mp = MultipassFacts(path="/snap/bin/multipass", client_version="1.16.3", daemon_problem="unauthenticated")
    assert result(healthy(multipass=mp), "daemon").fix == "multipass authenticate"


def test_missing_kvm_fails() -> None:
    check = result(healthy(kvm_present=False, kvm_accessible=False), "virtualization")
    assert check.status == "fail" and "modprobe kvm" in check.fix


def test_missing_kvm_without_cpu_flags_points_to_the_firmware() -> None:
    check = result(healthy(kvm_present=False, kvm_accessible=False, cpu_virt_flags=False), "virtualization")
    assert check.status == "fail" and "VT-x" in check.fix


def test_kvm_not_accessible_is_a_warning_with_the_group_fix() -> None:
    check = result(healthy(kvm_accessible=False, user="alice"), "virtualization")
    assert check.status == "warn"
    assert check.fix.startswith("sudo usermod -aG kvm alice")


def test_macos_without_hypervisor_fails() -> None:
    assert result(healthy(system="Darwin", hv_support=False), "virtualization").status == "fail"
    assert result(healthy(system="Darwin", hv_support=None), "virtualization").status == "warn"


@pytest.mark.parametrize(
    ("gib", "status"),
    [(4, "fail"), (7.2, "fail"), (7.6, "warn"), (12, "warn"), (15.6, "ok"), (64, "ok")],
)
def test_memory_thresholds(gib: float, status: str) -> None:
    # Kernels report a bit less than the installed RAM: a "8 GB machine" shows ~7.6 GiB and passes.
    check = result(healthy(memory_bytes=int(gib * GiB)), "memory")
    assert check.status == status
    if status != "ok":
        assert check.fix


def test_unknown_memory_is_a_warning() -> None:
    assert result(healthy(memory_bytes=None), "memory").status == "warn"


@pytest.mark.parametrize(("gb", "status"), [(10, "fail"), (49.5, "fail"), (50, "warn"), (99, "warn"), (100, "ok")])
def test_disk_thresholds_and_detail_use_one_unit(gb: float, status: str) -> None:
    check = result(healthy(disk_free_bytes=int(gb * GB)), "disk")
    assert check.status == status
    assert "/home/dev/.local/share/devorch-tui" in check.detail and "data folder" in check.detail
    assert "GiB" not in check.detail and f"{gb:.0f} GB free" in check.detail
    if status == "fail":
        assert "multipass purge" in check.fix and "50 GB is needed" in check.detail


def test_disk_is_measured_where_multipass_keeps_its_vms(tmp_path: Path) -> None:
    storage, data = tmp_path / "multipassd", tmp_path / "data"
    assert host.disk_target("Linux", data, storage) == (data, False)  # no multipass storage: the data folder
    storage.mkdir()
    assert host.disk_target("Linux", data, storage) == (storage, True)
    assert host.MULTIPASS_STORAGE["Linux"] == Path("/var/snap/multipass/common")
    assert host.MULTIPASS_STORAGE["Darwin"] == Path("/var/root/Library/Application Support/multipassd")
    check = result(healthy(disk_path=storage, disk_is_multipass=True, disk_free_bytes=120 * GB), "disk")
    assert check.status == "ok" and str(storage) in check.detail and "multipass's VM storage" in check.detail


def test_disk_storage_folder_closed_to_the_user_is_measured_on_its_volume(tmp_path: Path) -> None:
    """macOS: /var/root is not readable by users, so stat() of its multipassd folder fails with EACCES."""

    class Closed(type(tmp_path)):  # type: ignore[misc]
        def exists(self, *args: object, **kwargs: object) -> bool:
            raise PermissionError(13, "Permission denied")

    storage = Closed(tmp_path / "root" / "Library" / "multipassd")
    assert host.disk_target("Darwin", tmp_path / "data", storage) == (storage, True)
    # Not there (or not readable): the nearest parent that can be measured is, on the same volume.
    assert host._disk_free(tmp_path / "root" / "Library" / "multipassd") is not None


def test_missing_ssh_tools_fail_with_the_package_to_install() -> None:
    facts = healthy(ssh_path=None, ssh_keygen_path=None)
    for check_id in ("ssh", "ssh_keygen"):
        check = result(facts, check_id)
        assert check.status == "fail"
        assert "openssh-client" in check.fix
    assert "xcode-select" in result(healthy(system="Darwin", hv_support=True, ssh_path=None), "ssh").fix


def test_missing_key_gives_keygen() -> None:
    key = Path("/home/dev/.local/share/devorch-tui/ssh/id_ed25519")
    check = result(healthy(key_problems=(f"no private key at {key}",)), "ssh_key")
    assert (check.status, check.fix) == ("fail", "devorch-tui keygen")


def test_missing_custom_key_does_not_offer_keygen() -> None:
    check = result(healthy(key_is_dedicated=False, key_problems=("no private key at /k",)), "ssh_key")
    assert check.status == "fail" and "DEVORCH_SSH_KEY" in check.fix


def test_loose_key_permissions_give_chmod() -> None:
    key = Path("/home/dev/.local/share/devorch-tui/ssh/id_ed25519")
    check = result(healthy(key_problems=(f"private key {key} has mode 644; it must be 600",)), "ssh_key")
    assert check.fix == f"chmod 600 {key}"


def test_missing_public_half_gives_ssh_keygen_y() -> None:
    key = Path("/home/dev/.local/share/devorch-tui/ssh/id_ed25519")
    check = result(healthy(key_problems=(f"public key {key}.pub is missing",)), "ssh_key")
    assert check.fix == f"ssh-keygen -y -f {key} > {key}.pub"


def test_warnings_do_not_count_as_failures() -> None:
    results = host.judge(healthy(memory_bytes=12 * GiB, disk_free_bytes=60 * GiB))
    assert [item.status for item in results].count("warn") == 2
    assert host.failed(results) == []


# --------------------------------------------------------------------------- install plan


def test_install_plans() -> None:
    assert host.install_plan(healthy()).argv == ("sudo", "snap", "install", "multipass")
    assert host.install_plan(healthy(is_root=True)).argv == ("snap", "install", "multipass")
    mac = healthy(system="Darwin", brew_path="/opt/homebrew/bin/brew")
    assert host.install_plan(mac).argv == ("brew", "install", "--cask", "multipass")
    no_brew = host.install_plan(replace(mac, brew_path=None))
    assert not no_brew.runnable and "brew.sh" in no_brew.note
    with pytest.raises(host.SetupError) as info:
        host.require_install_plan(healthy(system="Windows"))
    assert "macOS and Linux" in (info.value.hint or "")


def test_run_in_terminal_returns_the_exit_code_and_refuses_strings(tmp_path: Path) -> None:
    assert host.run_in_terminal(["sh", "-c", "exit 3"]) == 3
    with pytest.raises(TypeError):
        host.run_in_terminal("echo hi")  # type: ignore[arg-type]
    with pytest.raises(host.procs.CommandNotFound):
        host.run_in_terminal([str(tmp_path / "nope")])


# --------------------------------------------------------------------------- gathering


def write_multipass(folder: Path, *, version_out: str, version_code: int = 0, list_err: str = "",
                    list_code: int = 0, sleep: float = 0) -> Path:
    """A tiny multipass stand-in: `version --format json` and `list --format json --no-ipv4`, real bytes and codes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "version.out").write_text(version_out)
    (folder / "list.err").write_text(list_err)
    script = folder / "multipass"
    script.write_text(
        "#!/bin/sh\n"
        f"sleep {sleep}\n"
        f'here="{folder}"\n'
        'echo "$*" >> "$here/calls"\n'
        'case "$*" in\n'
        f'  "version --format json") cat "$here/version.out"; exit {version_code} ;;\n'
        '  "list --format json --no-ipv4")\n'
        f'    if [ {list_code} -ne 0 ]; then cat "$here/list.err" >&2; exit {list_code}; fi\n'
        '    printf \'{\\n    "list": [\\n    ]\\n}\\n\'; exit 0 ;;\n'
        '  *) echo "unexpected: $*" >&2; exit 1 ;;\n'
        "esac\n"
    )
    script.chmod(0o755)
    return script


async def test_gather_multipass_with_the_daemon_up(tmp_path: Path) -> None:
    binary = write_multipass(tmp_path, version_out=VERSION_UP)
    facts = await host.gather_multipass(str(binary), timeout=10)
    assert facts == MultipassFacts(path=str(binary), client_version="1.16.3", daemon_version="1.16.3")
    assert (tmp_path / "calls").read_text() == "version --format json\n"  # no second call when the daemon answers


async def test_gather_multipass_reads_the_reference_outputs(tmp_path: Path) -> None:
    if not REFERENCE.is_dir():
        pytest.skip("shared reference fixtures are not available")
    binary = write_multipass(tmp_path, version_out=(REFERENCE / "version_with_update.json").read_text())
    facts = await host.gather_multipass(str(binary), timeout=10)
    assert (facts.client_version, facts.daemon_version) == ("Client version", "Daemon version")


async def test_gather_multipass_with_the_daemon_down(tmp_path: Path) -> None:
    binary = write_multipass(
        tmp_path, version_out=VERSION_CLIENT_ONLY,
        list_err="list failed: cannot connect to the multipass socket\n", list_code=2,
    )
    facts = await host.gather_multipass(str(binary), timeout=10)
    assert facts.client_version == "1.16.3"
    assert not facts.daemon_reachable
    assert facts.daemon_problem == "down"
    assert facts.daemon_message == "list failed: cannot connect to the multipass socket"
    check = result(healthy(multipass=facts), "daemon")
    assert check.status == "fail" and check.fix == "sudo snap restart multipass"


async def test_gather_multipass_with_the_socket_denied(tmp_path: Path) -> None:
    binary = write_multipass(
        tmp_path, version_out=VERSION_CLIENT_ONLY, list_err="list failed: multipass socket access denied\n", list_code=2
    )
    facts = await host.gather_multipass(str(binary), timeout=10)
    assert facts.daemon_problem == "denied"
    assert "usermod -aG" in result(healthy(multipass=facts), "daemon").fix


async def test_gather_multipass_when_it_is_missing(tmp_path: Path) -> None:
    facts = await host.gather_multipass(str(tmp_path / "multipass"), timeout=10)
    assert facts == MultipassFacts()
    assert not facts.installed


async def test_gather_multipass_when_the_client_crashes(tmp_path: Path) -> None:
    binary = write_multipass(tmp_path, version_out="", version_code=1)
    facts = await host.gather_multipass(str(binary), timeout=10)
    assert facts.installed and facts.error == "exit code 1"


async def test_gather_multipass_with_unreadable_output(tmp_path: Path) -> None:
    binary = write_multipass(tmp_path, version_out="multipass   1.16.3\n")
    facts = await host.gather_multipass(str(binary), timeout=10)
    assert facts.error and "unreadable" in facts.error


async def test_gather_multipass_that_hangs_is_a_failed_check(tmp_path: Path) -> None:
    binary = write_multipass(tmp_path, version_out=VERSION_UP, sleep=30)
    facts = await host.gather_multipass(str(binary), timeout=0.3)
    assert facts.error and "did not finish within 0.3 s" in facts.error
    assert result(healthy(multipass=facts), "multipass").status == "fail"


async def test_gather_facts_uses_the_multipass_setting_and_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_dirs: dict[str, Path]
) -> None:
    binary = write_multipass(tmp_path / "bin", version_out=VERSION_UP)
    monkeypatch.setenv("DEVORCH_MULTIPASS_BIN", str(binary))
    settings = Settings()
    facts = await host.gather_facts(settings)
    assert facts.multipass.daemon_version == "1.16.3"
    assert facts.multipass.path == str(binary)
    assert facts.system == os.uname().sysname
    assert facts.key_path == settings.paths.dedicated_key and facts.key_is_dedicated
    assert facts.key_problems and facts.key_problems[0].startswith("no private key")
    assert facts.disk_path == settings.paths.data_dir and facts.disk_free_bytes and facts.disk_free_bytes > 0
    if facts.system == "Linux":
        assert facts.memory_bytes and facts.memory_bytes > GiB
        assert facts.kvm_present == Path("/dev/kvm").exists()


# --------------------------------------------------------------------------- CLI


def fixed_facts(monkeypatch: pytest.MonkeyPatch, facts: HostFacts) -> None:
    async def probe(settings: Settings) -> HostFacts:
        return facts

    monkeypatch.setattr(host, "gather_facts", probe)


def test_check_exits_zero_when_only_warnings(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fixed_facts(monkeypatch, healthy(disk_free_bytes=60 * GiB))
    assert cli.main(["check"]) == 0
    out = capsys.readouterr().out
    assert "WARN  Free disk" in out
    assert "ready, 1 warning(s)" in out


def test_check_exits_one_and_prints_fixes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fixed_facts(monkeypatch, healthy(multipass=MultipassFacts()))
    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  Multipass installed" in out
    assert "fix: sudo snap install multipass" in out
    assert "2 requirement(s) not met" in out


def test_check_json_on_this_machine_without_multipass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEVORCH_MULTIPASS_BIN", str(tmp_path / "no-multipass"))
    assert cli.main(["check", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    checks = {item["id"]: item for item in data["checks"]}
    assert checks["multipass"]["status"] == "fail" and checks["multipass"]["fix"]
    assert checks["ssh_key"]["fix"] == "devorch-tui keygen"
    assert set(checks["os"]) == {"id", "title", "status", "detail", "fix"}


def test_keygen_creates_the_key_and_keeps_it(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    private = settings.paths.dedicated_key
    assert cli.main(["keygen"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{private}.pub"
    assert "created" in err
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    first = Path(f"{private}.pub").read_text()
    assert first.startswith("ssh-ed25519 ")

    assert cli.main(["keygen"]) == 0
    assert "kept the existing key" in capsys.readouterr().err
    assert Path(f"{private}.pub").read_text() == first

    assert cli.main(["keygen", "--force"]) == 0
    assert Path(f"{private}.pub").read_text() != first


def install_stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A `snap` on PATH whose `install multipass` drops a working multipass stand-in in place."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    target = bindir / "multipass"
    source = write_multipass(tmp_path / "mp-src", version_out=VERSION_UP)
    snap = bindir / "snap"
    snap.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{tmp_path}/snap-calls"\n'
        f'cp "{source}" "{target}"\n'
        'echo "multipass 1.16.3 from Canonical installed"\n'
    )
    snap.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DEVORCH_MULTIPASS_BIN", str(target))
    real = host.gather_facts

    async def probe(settings: Settings) -> HostFacts:
        facts = await real(settings)
        return replace(facts, system="Linux", snap_path=str(snap), is_root=True)

    monkeypatch.setattr(host, "gather_facts", probe)
    return tmp_path / "snap-calls", target


def test_setup_yes_runs_the_install_and_rechecks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    calls, target = install_stand_in(tmp_path, monkeypatch)
    assert cli.main(["setup", "--yes"]) == 0
    out = capfd.readouterr().out
    assert "    snap install multipass\n" in out
    assert calls.read_text() == "install multipass\n"
    assert target.exists()
    assert "ok    Multipass installed  1.16.3" in out
    assert "ok    Multipass daemon" in out


def test_setup_asks_and_does_nothing_on_no(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    calls, target = install_stand_in(tmp_path, monkeypatch)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    assert cli.main(["setup"]) == 1
    out = capfd.readouterr().out
    assert "Run it now in this terminal? [y/N]" in out
    assert "Nothing was installed." in out
    assert not calls.exists() and not target.exists()


def test_setup_without_a_terminal_needs_yes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    calls, _ = install_stand_in(tmp_path, monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cli.main(["setup"]) == 2
    assert "devorch-tui setup --yes" in capfd.readouterr().err
    assert not calls.exists()


def test_setup_when_multipass_is_installed_installs_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fixed_facts(monkeypatch, healthy())
    assert cli.main(["setup", "--yes"]) == 0
    assert "already installed" in capsys.readouterr().out


def test_setup_failed_install_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    install_stand_in(tmp_path, monkeypatch)
    (tmp_path / "bin" / "snap").write_text("#!/bin/sh\necho 'error: cannot communicate with server' >&2\nexit 1\n")
    assert cli.main(["setup", "--yes"]) == 1
    err = capfd.readouterr().err
    assert "error: `snap install multipass` failed with exit code 1" in err
    assert "fix:" in err


# --------------------------------------------------------------------------- start-up


def test_dashboard_reaches_its_first_frame_without_asyncssh(isolated_dirs: dict[str, Path], tmp_path: Path) -> None:
    """asyncssh costs ~0.2 s of start-up: it must be imported lazily (the bench child reports what is loaded)."""
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[2] / "bench" / "startup.py"
    env = {**os.environ, "DEVORCH_MULTIPASS_BIN": str(tmp_path / "no-multipass")}
    proc = subprocess.run(
        [sys.executable, str(bench), "--child", "devorch"],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("ready ")
    assert "asyncssh" not in first.split()[1].split(",")

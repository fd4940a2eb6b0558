"""Target parsing and resolution, pinned host keys file handling, remote script quoting."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from devorch_tui.services.agent import build_script, remote_path
from devorch_tui.services.known_hosts import KnownHosts, host_pattern
from devorch_tui.services.targets import Target, TargetError, parse_ssh_url, resolve_targets


@dataclass
class FakeInstance:
    """What resolve_targets reads from multipass instances (the real model has the same attributes)."""

    name: str
    state: str
    address: str | None

    @property
    def is_running(self) -> bool:
        return self.state == "Running"


class Lister:
    def __init__(self, *instances: FakeInstance) -> None:
        self.instances = list(instances)
        self.calls = 0

    async def list(self) -> list[FakeInstance]:
        self.calls += 1
        return self.instances


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ssh://ubuntu@10.0.0.5:2222", Target("ssh://ubuntu@10.0.0.5:2222", "10.0.0.5", 2222, "ubuntu")),
        ("ssh://10.0.0.5", Target("ssh://10.0.0.5", "10.0.0.5", 22, "dev")),
        ("ssh://deploy@build.example.com", Target("ssh://deploy@build.example.com", "build.example.com", 22, "deploy")),
        ("ssh://u@[::1]:2200", Target("ssh://u@[::1]:2200", "::1", 2200, "u")),
    ],
)
def test_parse_ssh_url(spec: str, expected: Target) -> None:
    assert parse_ssh_url(spec, default_user="dev") == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ssh://u:pw@h", "contains a password"),
        ("ssh://u@h:99999", "not a valid SSH address"),
        ("ssh://u@h/path", "not a valid SSH address"),
        ("ssh://u@bad_host!", "not a valid host name"),
        ("ssh://-oProxyCommand=x@h", "not a valid user name"),
    ],
)
def test_bad_ssh_urls(spec: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        parse_ssh_url(spec, default_user="dev")


async def test_resolve_vm_names_with_one_list_call() -> None:
    lister = Lister(FakeInstance("dev-a", "Running", "10.1.0.2"), FakeInstance("dev-b", "Running", "10.1.0.3"))
    targets = await resolve_targets(["dev-a", "ssh://x@127.0.0.2:2022", "dev-b"], lister, user="ubuntu", port=22)
    assert [(t.name, t.host, t.port, t.user, t.vm) for t in targets] == [
        ("dev-a", "10.1.0.2", 22, "ubuntu", "dev-a"),
        ("ssh://x@127.0.0.2:2022", "127.0.0.2", 2022, "x", None),
        ("dev-b", "10.1.0.3", 22, "ubuntu", "dev-b"),
    ]
    assert lister.calls == 1


async def test_resolve_errors_say_what_to_do() -> None:
    lister = Lister(FakeInstance("off", "Stopped", None), FakeInstance("booting", "Running", None))
    with pytest.raises(TargetError, match="no VM named 'nope'") as info:
        await resolve_targets(["nope"], lister)
    assert "vm list" in (info.value.hint or "")
    with pytest.raises(TargetError, match="is Stopped, not Running") as info:
        await resolve_targets(["off"], lister)
    assert info.value.hint == "start it with `devorch-tui vm start off`"
    with pytest.raises(TargetError, match="has no IPv4 address yet"):
        await resolve_targets(["booting"], lister)
    with pytest.raises(TargetError, match="neither a VM name nor an ssh:// address"):
        await resolve_targets(["not_a_vm"], lister)
    with pytest.raises(TargetError, match="given twice"):
        await resolve_targets(["off", "off"], lister)


async def test_an_injected_resolver_replaces_multipass() -> None:
    async def resolver(name: str) -> str:
        return {"dev-x": "127.0.0.7"}[name]

    (target,) = await resolve_targets(["dev-x"], None, resolver=resolver, user="me", port=2200)
    assert (target.host, target.port, target.user, target.vm) == ("127.0.0.7", 2200, "me", "dev-x")


def test_known_hosts_pin_lookup_forget(tmp_path: Path) -> None:
    known = KnownHosts(tmp_path / "state" / "known_hosts")
    assert known.lookup("10.0.0.5", 22) == []
    known.pin("10.0.0.5", 22, "ssh-ed25519 AAAAkey1 comment", label="dev-a")
    known.pin("10.0.0.5", 2222, "ssh-ed25519 AAAAkey2")
    known.pin("10.0.0.5", 22, "ssh-ed25519 AAAAkey1")  # pinning twice keeps one line
    assert (tmp_path / "state" / "known_hosts").read_text() == "10.0.0.5 ssh-ed25519 AAAAkey1 dev-a\n[10.0.0.5]:2222 ssh-ed25519 AAAAkey2\n"
    assert (tmp_path / "state" / "known_hosts").stat().st_mode & 0o777 == 0o600
    assert [e.openssh for e in known.lookup("10.0.0.5", 2222)] == ["ssh-ed25519 AAAAkey2"]
    assert [e.pattern for e in known.forget("dev-a")] == ["10.0.0.5"]  # by the VM's label
    assert [e.pattern for e in known.forget("10.0.0.5")] == ["[10.0.0.5]:2222"]  # every port of a host
    assert known.entries() == []
    assert host_pattern("h", 22) == "h" and host_pattern("h", 2) == "[h]:2"


def test_known_hosts_file_is_readable_by_openssh(tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    known = KnownHosts(tmp_path / "known_hosts")
    known.pin("127.0.0.9", 2022, Path(f"{key}.pub").read_text(), label="dev-a")
    found = subprocess.run(["ssh-keygen", "-F", "[127.0.0.9]:2022", "-f", str(known.path)], capture_output=True, text=True)
    assert found.returncode == 0 and "ssh-ed25519" in found.stdout


def test_remote_script_quotes_everything() -> None:
    script = build_script(["printf", "%s", "a b", "$(reboot)"], cwd="~/my project", env={"TOKEN": "it's $secret"}, shell="bash")
    lines = script.splitlines()
    assert lines[0] == "printf '\\036devorch-pid=%s\\n' \"$$\""
    assert lines[1] == "export TOKEN=" + shlex.quote("it's $secret")
    assert lines[2] == "cd -- \"$HOME\"/'my project' || exit 1"
    assert lines[3] == "exec printf %s 'a b' '$(reboot)'"
    assert build_script("make test && echo ok").splitlines()[-1] == "exec bash -c 'make test && echo ok'"
    assert remote_path("~") == '"$HOME"' and remote_path("/srv/x y") == "'/srv/x y'"


def test_long_lines_are_cut_on_utf8_boundaries() -> None:
    from devorch_tui.services.agent import MAX_LINE, _split_long, _utf8_cut

    text = "é" * 40000  # 80,000 bytes of two-byte characters
    pieces = _split_long(text.encode())
    assert "".join(pieces) == text and all(len(piece.encode()) <= MAX_LINE for piece in pieces)
    assert _utf8_cut(b"x" * MAX_LINE, MAX_LINE) == MAX_LINE and _utf8_cut(b"ab", MAX_LINE) == 2


def test_long_lines_are_never_cut_inside_a_secret() -> None:
    from devorch_tui.services.agent import MAX_LINE, _safe_cut, _split_long

    secret = b"pa55word-x"
    line = b"a" * (MAX_LINE - 4) + secret + b" tail"  # the plain cut falls inside the secret
    pieces = _split_long(line, [secret])
    assert pieces[0] == "a" * (MAX_LINE - 4) and pieces[1] == "pa55word-x tail"
    assert _safe_cut(b"x" * 10 + b"pa", 12, [secret]) == 10  # its beginning ends the data: the rest may follow
    assert _safe_cut(b"x" * 10 + b"py", 12, [secret]) == 12
    assert _safe_cut(b"x" * 20, 12, [secret]) == 12
    assert _safe_cut(secret + b"x" * 20, 4, [secret]) == 4  # cannot move before the start: cut as asked


def test_a_password_in_an_ssh_url_is_masked_in_errors() -> None:
    from devorch_tui.services.targets import parse_ssh_url, without_password

    for spec in ("ssh://root:hunter2pw@127.0.44.10:22", "ssh://root:hunter2pw@127.0.44.10:port", "ssh://root:hun@ter2pw@127.0.44.10"):
        with pytest.raises(TargetError) as info:
            parse_ssh_url(spec, default_user="ubuntu")
        assert "hunter2pw" not in info.value.message and "ter2pw" not in info.value.message
        assert "root:********@127.0.44.10" in info.value.message
    assert without_password("ssh://ubuntu@10.0.0.5:22") == "ssh://ubuntu@10.0.0.5:22"

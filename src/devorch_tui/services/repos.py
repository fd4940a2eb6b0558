"""Git repositories for project VMs: which URLs are accepted, the clone command run inside the VM,
a check from this machine before any VM is made, and the bundle that carries a local repository in.

A path (``/``, ``./``, ``../``, ``~/``) or a ``file://`` URL names a repository on *this* machine,
which the VM cannot see. It is packed here with ``git bundle create --all``, the bundle is copied
into the VM over the provisioning SSH connection (SFTP), cloned there and deleted; the clone's
``origin`` is then set to the local repository's own ``origin`` when that is a network URL (so
``git pull`` / ``git push`` work from the VM, with the VM's credentials), else removed.

Every git command here is an argv list; the one run inside the VM is a string with every value
quoted with shlex. A password in an https URL is never part of a command line: git gets it from
the environment through a one-shot credential helper (:func:`clone_env`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from devorch_tui.errors import DevorchError
from devorch_tui.services import procs
from devorch_tui.services.secrets import MASK

HOST_CHECK_TIMEOUT = 15.0
"""Seconds the check from this machine (``git ls-remote``) may take before it is given up (a warning)."""

PASSWORD_VARIABLE = "DEVORCH_GIT_PASSWORD"
# A one-shot git credential helper that answers with the password from the environment, so the
# password is never part of a command line (inside the VM `ps` shows argv, not environments).
_CREDENTIAL_HELPER = f'!f() {{ test "$1" = get && printf "password=%s\\n" "${PASSWORD_VARIABLE}"; }}; f'
_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9_.-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/\\].*|/.*)$")
_BRANCH_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|^-|^/|/$|\.lock$|^\.|/\.")
_URL_HINT = (
    "give an https URL (https://github.com/org/repo.git), an ssh URL (git@github.com:org/repo.git) "
    "or the path of a git repository on this machine"
)


class RepoError(DevorchError):
    """A repository URL, path or branch that cannot be cloned as given."""


@dataclass(frozen=True)
class RepoUrl:
    """A repository to clone: the URL as given, how to show it, and whether it needs SSH."""

    url: str
    shown: str
    uses_ssh: bool
    secret: str | None
    directory: str
    local: Path | None = None
    """A repository on this machine (a path or file:// URL): it is sent into the VM as a bundle."""


def parse_repo_url(url: str) -> RepoUrl:
    """Check a repository URL (https, http, ssh, git, file, scp-like ``git@host:path`` or a path).

    Credentials in an https URL are allowed but never shown: ``shown`` masks them and ``secret``
    is handed to the run's redactor.
    """
    url = (url or "").strip()
    if not url:
        raise RepoError("the repository URL is empty", hint=_URL_HINT)
    is_path = url.startswith(("/", "./", "../", "~/"))  # a folder's name may hold spaces; a URL may not
    if url.startswith("-") or any((ch.isspace() and not (is_path and ch == " ")) or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise RepoError(f"{url!r} is not a repository URL (it starts with '-' or contains spaces or control characters)", hint=_URL_HINT)
    secret: str | None = None
    shown = url
    local: Path | None = None
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http", "ssh", "git", "file"):
            raise RepoError(f"{url!r} uses the unsupported scheme {scheme!r}", hint=_URL_HINT)
        if scheme != "file" and not parts.hostname:
            raise RepoError(f"{url!r} has no host name", hint=_URL_HINT)
        if scheme == "file":
            if not parts.path:
                raise RepoError(f"{url!r} names no folder", hint=_URL_HINT)
            if parts.netloc not in ("", "localhost"):
                raise RepoError(
                    f"{url!r} names a folder on the host {parts.netloc!r}",
                    hint="file:// URLs name a folder on this machine: write file:///path/to/repo (three slashes)",
                )
            local = Path(unquote(parts.path))
        if parts.password:
            secret = parts.password
            shown = url.replace(f":{parts.password}@", f":{MASK}@", 1)
        uses_ssh = scheme == "ssh"
        path = parts.path
    elif _SCP_LIKE.match(url) and not url.startswith(("/", ".", "~")):
        uses_ssh = True
        path = _SCP_LIKE.match(url).group("path")  # type: ignore[union-attr]
    elif is_path:
        uses_ssh = False
        path = url
        local = Path(url).expanduser().absolute()
    else:
        raise RepoError(f"{url!r} is not a repository URL", hint=_URL_HINT)
    stem = path.rstrip("/").rsplit("/", 1)[-1]
    stem = stem[:-4] if stem.endswith(".git") else stem
    directory = stem if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", stem or "") else "project"
    return RepoUrl(url=url, shown=shown, uses_ssh=uses_ssh, secret=secret, directory=directory, local=local)


def validate_branch(branch: str) -> str:
    if not branch or _BRANCH_BAD.search(branch):
        raise RepoError(
            f"{branch!r} is not a valid branch name",
            hint="use a git branch or tag name such as main or release/1.2 (no spaces, no leading '-')",
        )
    return branch


def without_password(url: str) -> str:
    """``url`` with the password of its user part removed (the user stays)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def _git_url_options(repo: RepoUrl) -> tuple[list[str], str]:
    """The ``git -c`` options and the URL to give git: a password goes through the credential helper."""
    if not repo.secret:
        return [], repo.url
    return ["-c", "credential.helper=", "-c", f"credential.helper={_CREDENTIAL_HELPER}"], without_password(repo.url)


def clone_env(repo: RepoUrl) -> dict[str, str]:
    """Environment for :func:`clone_command` (sent inside the SSH session's script, never as argv)."""
    return {PASSWORD_VARIABLE: repo.secret} if repo.secret else {}


_REMOTE_GIT_ENV = "GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND='ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new'"


def _destination(repo: RepoUrl) -> str:
    return f'"$HOME"/{shlex.quote(repo.directory)}'


def clone_command(repo: RepoUrl, branch: str | None) -> str:
    """The remote command cloning a network ``repo`` into ``~/DIR`` (every value quoted with shlex).

    A password in the URL is not in the command: it goes in the environment (:func:`clone_env`) and
    reaches git through a credential helper.
    """
    options, url = _git_url_options(repo)
    argv = ["git", *options, "clone", *(["--branch", branch] if branch else []), "--", url]
    return f"{_REMOTE_GIT_ENV} {shlex.join(argv)} {_destination(repo)}"


def bundle_clone_command(repo: RepoUrl, branch: str | None, bundle: str, origin: str | None) -> str:
    """The remote command cloning an uploaded bundle into ``~/DIR``, deleting the bundle, and then
    pointing ``origin`` at ``origin`` (or removing it: the bundle's path means nothing later)."""
    argv = ["git", "clone", *(["--branch", branch] if branch else []), "--", bundle]
    then = shlex.join(["git", "remote", "set-url", "origin", origin]) if origin else "git remote remove origin"
    return (
        f"GIT_TERMINAL_PROMPT=0 {shlex.join(argv)} {_destination(repo)}; code=$?; rm -f -- {shlex.quote(bundle)}; "
        f'[ "$code" -eq 0 ] || exit "$code"; cd {_destination(repo)} && {then}'
    )


# ------------------------------------------------------------------------------ on this machine


def _git_missing(what: str) -> RepoError:
    return RepoError(f"git is not installed on this machine, which {what}", hint="install git (e.g. `sudo apt install git`)")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (fatal or lines or [""])[0][:300]


async def _git_local(repo: RepoUrl, *args: str, timeout: float = HOST_CHECK_TIMEOUT) -> procs.ProcResult:
    try:
        return await procs.run(["git", "-C", str(repo.local), *args], timeout=timeout)
    except procs.CommandNotFound:
        raise _git_missing(f"is needed to send the local repository {repo.shown} into the VM") from None


async def check_local(repo: RepoUrl, branch: str | None) -> list[str]:
    """A local repository: it exists, is a git repository with commits, has ``branch``. Raises
    RepoError when not; returns warnings (uncommitted changes are not sent)."""
    assert repo.local is not None
    if not repo.local.is_dir():
        raise RepoError(
            f"{repo.shown}: there is no folder {repo.local} on this machine",
            hint="give the path of a git repository here (a checkout or a bare repository), or a URL",
        )
    found = await _git_local(repo, "rev-parse", "--git-dir")
    if not found.ok:
        raise RepoError(
            f"{repo.local} is not a git repository ({_first_line(found.stderr)})",
            hint="give the path of a checkout or a bare repository (`git init` makes one)",
        )
    refs = await _git_local(repo, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/tags")
    names = refs.stdout.split()
    if not names:
        raise RepoError(f"{repo.local} has no commits yet", hint="commit something first: the VM gets the repository's commits")
    if branch and f"refs/heads/{branch}" not in names and f"refs/tags/{branch}" not in names:
        raise RepoError(f"{repo.local} has no branch or tag {branch!r}", hint=_refs_hint(names))
    warnings = []
    dirty = await _git_local(repo, "status", "--porcelain", "--untracked-files=no")
    if dirty.ok and dirty.stdout.strip():  # (fails in a bare repository: nothing to warn about)
        warnings.append(f"{repo.local} has uncommitted changes: the VM gets its commits only")
    return warnings


def _refs_hint(refs: list[str]) -> str:
    branches = sorted(name.removeprefix("refs/heads/") for name in refs if name.startswith("refs/heads/"))
    listed = ", ".join(branches[:10]) + (", ..." if len(branches) > 10 else "")
    return f"its branches: {listed or 'none'}; or leave the branch empty for the default one"


async def check_remote(repo: RepoUrl, branch: str | None, *, timeout: float = HOST_CHECK_TIMEOUT) -> list[str]:
    """``git ls-remote`` from this machine. A missing branch (the server answered) raises RepoError;
    not reaching the server is only a warning: the VM may have network access or credentials this
    machine lacks. Nothing here prompts or writes this machine's known_hosts."""
    options, url = _git_url_options(repo)
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10",
        **clone_env(repo),
    }
    try:
        result = await procs.run(["git", *options, "ls-remote", "--refs", "--", url], timeout=timeout, env=env)
    except procs.CommandTimeout:
        return [f"could not check {repo.shown} from this machine within {timeout:g} s; the VM tries anyway"]
    except procs.CommandNotFound:
        return [f"git is not installed on this machine, so {repo.shown} was not checked before making the VM"]
    if not result.ok:
        reason = _first_line(result.stderr) or f"exit {result.returncode}"
        return [f"could not reach {repo.shown} from this machine ({reason}); the VM tries anyway (it may have access this machine lacks)"]
    names = [line.split("\t", 1)[1] for line in result.stdout.splitlines() if "\t" in line]
    if branch and f"refs/heads/{branch}" not in names and f"refs/tags/{branch}" not in names:
        raise RepoError(f"{repo.shown} has no branch or tag {branch!r}", hint=_refs_hint(names))
    return []


async def check(repo: RepoUrl, branch: str | None) -> list[str]:
    """Everything that can be known about the repository before a VM is made (see above)."""
    return await (check_local(repo, branch) if repo.local is not None else check_remote(repo, branch))


async def make_bundle(repo: RepoUrl, folder: Path, *, timeout: float) -> Path:
    """Pack every branch and tag of the local ``repo`` into ``folder/DIR.bundle`` (mode 0600)."""
    path = folder / f"{repo.directory}.bundle"
    result = await _git_local(repo, "bundle", "create", str(path), "--all", timeout=timeout)
    if not result.ok:
        raise RepoError(
            f"could not pack {repo.local} into a git bundle: {_first_line(result.stderr) or f'exit {result.returncode}'}",
            hint="check the repository with `git fsck`; it needs at least one commit",
        )
    path.chmod(0o600)
    return path


async def local_origin(repo: RepoUrl) -> str | None:
    """The local repository's ``origin`` when it is a network URL (without a password), else None."""
    result = await _git_local(repo, "remote", "get-url", "origin")
    if not result.ok or not result.stdout.strip():
        return None
    try:
        origin = parse_repo_url(result.stdout.strip())
    except RepoError:
        return None
    if origin.local is not None:
        return None
    return without_password(origin.url) if origin.secret else origin.url

"""Typed multipass failures, derived from the exit code and stderr of the real CLI.

The messages matched here are the ones in shared/reference/multipass-cli.md (section 4), matched by
stable substrings so extra lines (daemon log lines, 1.17 hints) do not break the match.
"""

from __future__ import annotations

import enum
import re

from devorch_tui.errors import DevorchError


class MultipassErrorKind(str, enum.Enum):
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    INVALID_NAME = "invalid_name"
    DAEMON_UNREACHABLE = "daemon_unreachable"
    SOCKET_DENIED = "socket_denied"
    TIMED_OUT = "timed_out"
    MUST_BE_STOPPED = "must_be_stopped"
    NOT_SUPPORTED = "not_supported"
    MISSING = "missing"
    OTHER = "other"


INSTALL_HINT = (
    "install Multipass (Linux: `sudo snap install multipass`; macOS: `brew install --cask multipass` "
    "or the installer from https://canonical.com/multipass/install), or point DEVORCH_MULTIPASS_BIN at it"
)
DAEMON_HINT = (
    "start the Multipass daemon (Linux: `sudo snap restart multipass`; macOS: "
    "`sudo launchctl kickstart -k system/com.canonical.multipassd`), wait a few seconds, then retry"
)
SOCKET_HINT = (
    "your user may not use the multipass socket: add it to the group that owns the socket "
    "(Linux snap: `sudo usermod -aG sudo $USER`, then log in again) or run `multipass authenticate`"
)

_HINTS: dict[MultipassErrorKind, str] = {
    MultipassErrorKind.NOT_FOUND: "check the name with `devorch-tui vm list`",
    MultipassErrorKind.ALREADY_EXISTS: "pick another name, or delete and purge the existing instance first",
    MultipassErrorKind.INVALID_NAME: (
        "names use letters, digits and hyphens only, start with a letter and end with a letter or digit"
    ),
    MultipassErrorKind.DAEMON_UNREACHABLE: DAEMON_HINT,
    MultipassErrorKind.SOCKET_DENIED: SOCKET_HINT,
    MultipassErrorKind.TIMED_OUT: (
        "the instance may still be busy: check it with `devorch-tui vm list`; if it stays Unknown, "
        "force stop it and start it again, or raise the timeout in settings"
    ),
    MultipassErrorKind.MUST_BE_STOPPED: "stop the instance first (`devorch-tui vm stop NAME`), then retry",
    MultipassErrorKind.NOT_SUPPORTED: (
        "this needs Multipass 1.15 or newer with the qemu, hyperv or virtualbox driver "
        "(`multipass set local.driver=qemu`); otherwise launch with cloud-init instead"
    ),
    MultipassErrorKind.MISSING: INSTALL_HINT,
}

# (kind, pattern) in priority order; first match wins. Patterns are searched in stderr (and stdout,
# where the client prints some usage errors).
_RULES: tuple[tuple[MultipassErrorKind, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        (MultipassErrorKind.DAEMON_UNREACHABLE, r"cannot connect to the multipass socket"),
        (MultipassErrorKind.SOCKET_DENIED, r"multipass socket access denied"),
        (MultipassErrorKind.NOT_SUPPORTED, r"not implemented on this backend|Unknown Command '(clone|snapshot|restore)'"),
        (MultipassErrorKind.TIMED_OUT, r"timed out waiting"),
        (MultipassErrorKind.MUST_BE_STOPPED, r"can only (take snapshots of|restore snapshots of|clone) stopped"),
        (MultipassErrorKind.MUST_BE_STOPPED, r"must be stopped for modification"),
        (MultipassErrorKind.INVALID_NAME, r"Invalid (instance|destination instance|snapshot) name"),
        (MultipassErrorKind.ALREADY_EXISTS, r"already exists|is being prepared"),
        (MultipassErrorKind.NOT_FOUND, r"does not exist|No such snapshot|No such instance|instance\(s\) missing|is deleted"),
    )
)

_FAILED_PREFIX = re.compile(r"^[a-z-]+ failed: ", re.IGNORECASE)
_FOLLOWING = "The following errors occurred:"


def clean_detail(stderr: str) -> str:
    """The message without the ``<command> failed:`` prefix and the "following errors" header."""
    lines = [line.strip() for line in stderr.strip().splitlines()]
    lines = [line for line in lines if line]
    if lines:
        lines[0] = _FAILED_PREFIX.sub("", lines[0])
    lines = [line for line in lines if line and line != _FOLLOWING]
    if lines and lines[0].startswith(_FOLLOWING):
        lines[0] = lines[0][len(_FOLLOWING) :].strip()
    return " ".join(line for line in lines if line)


def classify(exit_code: int | None, stderr: str, stdout: str = "") -> MultipassErrorKind:
    """The kind of a failed multipass call from its exit code and output."""
    text = f"{stderr}\n{stdout}"
    for kind, pattern in _RULES:
        if pattern.search(text):
            return kind
    if exit_code == 5:  # client-side --timeout expired
        return MultipassErrorKind.TIMED_OUT
    return MultipassErrorKind.OTHER


class MultipassError(DevorchError):
    """A multipass call failed. ``kind`` says why; ``stderr`` keeps the raw message."""

    def __init__(
        self,
        message: str,
        *,
        kind: MultipassErrorKind = MultipassErrorKind.OTHER,
        stderr: str = "",
        exit_code: int | None = None,
        command: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint if hint is not None else _HINTS.get(kind))
        self.kind = kind
        self.stderr = stderr
        self.command = command
        # The CLI exits with this; multipass's own code when there is one.
        self.exit_code = exit_code if exit_code else 1

    @classmethod
    def from_result(cls, command: str, exit_code: int, stderr: str, stdout: str = "") -> MultipassError:
        """Build the error for a failed ``multipass <command>`` call."""
        kind = classify(exit_code, stderr, stdout)
        detail = clean_detail(stderr) or clean_detail(stdout) or f"exit code {exit_code}"
        hint = None
        lowered = detail.lower()
        if "cannot shut down suspended instance" in lowered:
            hint = "use force stop (`devorch-tui vm stop --force NAME`) to power it off"
        elif "unknown state" in lowered:
            hint = "force stop it (`devorch-tui vm stop --force NAME`), then start it again"
        elif "is deleted" in lowered:
            hint = "recover it (`devorch-tui vm recover NAME`) or purge it (`devorch-tui vm purge`)"
        elif "valid memory size" in lowered or "size value supplied" in lowered:
            hint = "write sizes like 512M, 4G or 1.5G (memory at least 512M, disk at least 1G)"
        return cls(
            f"multipass {command} failed: {detail}",
            kind=kind,
            stderr=stderr,
            exit_code=exit_code,
            command=command,
            hint=hint,
        )

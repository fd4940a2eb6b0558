"""Typed multipass failures, derived from the exit code and stderr of the real CLI.

The messages matched here are the ones in shared/reference/multipass-cli.md (section 4), matched by
stable substrings so extra lines (daemon log lines, 1.17 hints) do not break the match.
"""

from __future__ import annotations

import enum
import re
from collections import ChainMap
from collections.abc import Mapping

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

# The fixes quote actions as {placeholders}: the CLI names its command (CLI_ACTIONS), the dashboard
# its key (MultipassError.hint_for). One text per fix; only the way to reach the action differs.
CLI_ACTIONS: dict[str, str] = {
    "list": "`devorch-tui vm list`",
    "start": "`devorch-tui vm start NAME`",
    "stop": "`devorch-tui vm stop NAME`",
    "force_stop": "`devorch-tui vm stop --force NAME`",
    "recover": "`devorch-tui vm recover NAME`",
    "purge": "`devorch-tui vm purge`",
    "snapshots": "`devorch-tui vm snapshots NAME`",
    "images": "`devorch-tui vm images`",
}

_HINTS: dict[MultipassErrorKind, str] = {
    MultipassErrorKind.NOT_FOUND: "check the name in {list}",
    MultipassErrorKind.ALREADY_EXISTS: "pick another name, or delete and purge the existing instance first",
    MultipassErrorKind.INVALID_NAME: (
        "names use letters, digits and hyphens only, start with a letter and end with a letter or digit"
    ),
    MultipassErrorKind.DAEMON_UNREACHABLE: DAEMON_HINT,
    MultipassErrorKind.SOCKET_DENIED: SOCKET_HINT,
    MultipassErrorKind.TIMED_OUT: (
        "the instance may still be busy: check it in {list}; if it stays Unknown, "
        "force stop it ({force_stop}) and start it again ({start}), or raise the timeout in settings"
    ),
    MultipassErrorKind.MUST_BE_STOPPED: "stop the instance first ({stop}), then retry",
    MultipassErrorKind.NOT_SUPPORTED: (
        "this needs Multipass 1.15 or newer with the qemu, hyperv or virtualbox driver "
        "(`multipass set local.driver=qemu`); otherwise launch with cloud-init instead"
    ),
    MultipassErrorKind.MISSING: INSTALL_HINT,
}

# Fixes for particular messages (searched in multipass's own words, first match wins); they take
# precedence over the fix of the kind.
_DETAIL_HINTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), hint)
    for pattern, hint in (
        (r"cannot shut down suspended instance", "use force stop ({force_stop}) to power it off"),
        (r"unknown state", "force stop it ({force_stop}), then start it again ({start})"),
        (r"is deleted", "recover it ({recover}) or purge it ({purge})"),
        (r"Snapshot already exists", "pick another snapshot name ({snapshots} lists the ones taken)"),
        (r"No such snapshot", "check the snapshot name: {snapshots} lists them"),
        (r"Unable to find an image matching", "pick one of the images {images} lists, e.g. 22.04 or 24.04"),
        (r"valid memory size|size value supplied", "write sizes like 512M, 4G or 1.5G (memory at least 512M, disk at least 1G)"),
    )
)


def render_hint(template: str, actions: Mapping[str, str] | None = None) -> str:
    """A fix with its {action} placeholders filled (by ``actions``, else by the CLI commands)."""
    return template.format_map(ChainMap(dict(actions or {}), CLI_ACTIONS))


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
        (
            MultipassErrorKind.NOT_FOUND,
            r"does not exist|No such snapshot|No such instance|instance\(s\) missing|is deleted|Unable to find an image",
        ),
    )
)

_CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")
_OTHER_ESCAPE = re.compile(r"\x1b[^\[]")


def clean_output(text: str) -> str:
    """Lifecycle stdout without the spinner: replays ``\\b``, ``\\r`` and erase-line like a terminal.

    multipass writes ``msg |\\b/\\b-\\b\\\\\\b\\x1b[2K\\x1b[0A\\x1b[0E`` even when stdout is a pipe; the
    erase-line drops the spinner message, as on a real terminal. Returns the remaining lines joined
    by newlines, without trailing blanks.
    """
    lines: list[str] = []
    current: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "\x1b":
            match = _CSI.match(text, pos)
            if match:
                params, final = match.groups()
                if final == "K" and params in ("2", "1", ""):  # erase line (whole / to start / to end)
                    current = [] if params in ("2", "1") else current
                pos = match.end()
                continue
            other = _OTHER_ESCAPE.match(text, pos)
            pos = other.end() if other else pos + 1
            continue
        if char == "\b":
            if current:
                current.pop()
        elif char == "\r":
            if text[pos + 1 : pos + 2] != "\n":
                current = []
        elif char == "\n":
            lines.append("".join(current).rstrip())
            current = []
        elif char >= " " or char == "\t":
            current.append(char)
        pos += 1
    if current:
        lines.append("".join(current).rstrip())
    return "\n".join(line for line in lines if line.strip())


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
    """A multipass call failed. ``kind`` says why; ``stderr`` keeps the raw message.

    The fix (``hint``) names the CLI command of the action it suggests; ``hint_for`` gives the same
    fix with other words for the actions (the dashboard's keys).
    """

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
        self.hint_template = _hint_template(kind, message) if hint is None else None
        """The fix with {action} placeholders (None when the fix was given explicitly)."""
        if hint is None and self.hint_template is not None:
            hint = render_hint(self.hint_template)
        super().__init__(message, hint=hint)
        self.kind = kind
        self.stderr = stderr
        self.command = command
        # The CLI exits with this; multipass's own code when there is one.
        self.exit_code = exit_code if exit_code else 1

    def hint_for(self, actions: Mapping[str, str] | None = None) -> str | None:
        """The fix with its actions written as ``actions`` says (e.g. ``{"stop": "x"}``); the CLI
        command for the others. A fix given explicitly is returned as it is."""
        if self.hint_template is None or self.hint != render_hint(self.hint_template):
            return self.hint  # given explicitly, or replaced since
        return render_hint(self.hint_template, actions)

    @classmethod
    def from_result(cls, command: str, exit_code: int, stderr: str, stdout: str = "") -> MultipassError:
        """Build the error for a failed ``multipass <command>`` call."""
        kind = classify(exit_code, stderr, stdout)
        # Without the spinner's escapes (stdout carries them; a message shown must not).
        detail = clean_detail(clean_output(stderr)) or clean_detail(clean_output(stdout)) or f"exit code {exit_code}"
        return cls(f"multipass {command} failed: {detail}", kind=kind, stderr=stderr, exit_code=exit_code, command=command)


def _hint_template(kind: MultipassErrorKind, message: str) -> str | None:
    for pattern, hint in _DETAIL_HINTS:
        if pattern.search(message):
            return hint
    return _HINTS.get(kind)

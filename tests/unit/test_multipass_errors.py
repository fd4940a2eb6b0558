"""Every error message in shared/reference/multipass-cli.md maps to the right MultipassErrorKind,
with a plain-words message and a fix."""

from __future__ import annotations

import pytest

from devorch_tui.errors import DevorchError
from devorch_tui.services.multipass_errors import MultipassError, MultipassErrorKind as K, classify, clean_detail, clean_output

# (command, exit code, stderr exactly as multipass prints it, expected kind) -- section 4.3 and 3.
REFERENCE_ERRORS = [
    ("info", 2, 'info failed: The following errors occurred:\ninstance "nope" does not exist\n', K.NOT_FOUND),
    ("stop", 2, 'stop failed: The following errors occurred:\ninstance "nope" does not exist\n', K.NOT_FOUND),
    ("start", 2, "start failed: instance(s) missing\nInstance 'nope' does not exist.\n\n", K.NOT_FOUND),
    (
        "start",
        2,
        "start failed: instance(s) missing\nInstance 'x' is deleted. Use 'recover' to recover it or 'purge' to "
        "permanently delete it.\n\n",
        K.NOT_FOUND,
    ),
    ("snapshot", 2, 'snapshot failed: instance "nope" does not exist\n', K.NOT_FOUND),
    ("restore", 2, "restore failed: No such snapshot: vm1.snap9\n", K.NOT_FOUND),
    ("launch", 2, 'launch failed: instance "vm1" already exists\n', K.ALREADY_EXISTS),
    ("launch", 2, 'launch failed: instance "vm1" is being prepared\n', K.ALREADY_EXISTS),
    ("clone", 2, 'clone failed: instance "vm1" already exists\n', K.ALREADY_EXISTS),
    ("snapshot", 2, "snapshot failed: Snapshot already exists: vm1.golden\n", K.ALREADY_EXISTS),
    (
        "launch",
        2,
        "launch failed: Invalid arguments supplied\nInvalid instance name supplied: 1bad_name\n",
        K.INVALID_NAME,
    ),
    ("clone", 2, "clone failed: Invalid destination instance name: bad_name\n", K.INVALID_NAME),
    ("snapshot", 2, 'snapshot failed: Invalid snapshot name: "bad_snap".\n', K.INVALID_NAME),
    ("list", 2, "list failed: cannot connect to the multipass socket\n", K.DAEMON_UNREACHABLE),
    (
        "list",
        2,
        "list failed: cannot connect to the multipass socket\nPlease ensure multipassd is running and "
        "'/var/snap/multipass/common/multipass_socket' is accessible\n",
        K.DAEMON_UNREACHABLE,
    ),
    ("list", 2, "list failed: multipass socket access denied\n", K.SOCKET_DENIED),
    ("launch", 5, "Timed out waiting for instance launch.\n", K.TIMED_OUT),
    ("start", 5, "Timed out waiting for instance to start.\n", K.TIMED_OUT),
    ("restart", 5, "Timed out waiting for instance to restart.\n", K.TIMED_OUT),
    ("launch", 2, "launch failed: The following errors occurred:\nvm1: timed out waiting for response\n", K.TIMED_OUT),
    (
        "launch",
        2,
        "launch failed: The following errors occurred:\ntimed out waiting for initialization to complete\n",
        K.TIMED_OUT,
    ),
    (
        "snapshot",
        2,
        "snapshot failed: Multipass can only take snapshots of stopped instances.\n",
        K.MUST_BE_STOPPED,
    ),
    ("restore", 2, "restore failed: Multipass can only restore snapshots of stopped instances.\n", K.MUST_BE_STOPPED),
    ("clone", 2, "clone failed: Multipass can only clone stopped instances.\n", K.MUST_BE_STOPPED),
    (
        "set",
        2,
        "Cannot update instance settings; instance: vm1; reason: Instance must be stopped for modification\n",
        K.MUST_BE_STOPPED,
    ),
    ("get", 2, "Cannot obtain instance settings; instance: nope; reason: No such instance\n", K.NOT_FOUND),
    ("launch", 2, 'launch failed: Unable to find an image matching "nope" in remote "".\n', K.NOT_FOUND),
    ("list", 2, "list failed: The snapshots feature is not implemented on this backend.\n", K.NOT_SUPPORTED),
    ("clone", 2, "clone failed: The clone feature is not implemented on this backend.\n", K.NOT_SUPPORTED),
    (
        "start",
        2,
        "start failed: The following errors occurred:\nInstance 'x' is already running, but in an unknown state.\n"
        "Try to stop it first.\n",
        K.OTHER,
    ),
    ("stop", 2, "stop failed: Cannot shut down suspended instance x.\nUse --force to power it off.\n", K.OTHER),
    ("launch", 2, "launch failed: Invalid arguments supplied\nInvalid memory size value supplied: 64M.\n", K.OTHER),
    ("set", 1, "Invalid setting 'local.vm1.disk=1G': Disk can only be expanded\n", K.OTHER),
    ("launch", 2, "launch failed: Missing bridges\nInvalid network options supplied\n", K.OTHER),
    ("launch", 1, "Could not load cloud-init configuration: bad file\n", K.OTHER),
    ("list", 1, "IP addresses are not applicable in conjunction with listing snapshots\n", K.OTHER),
    ("list", 1, "Invalid format type given.\n", K.OTHER),
    ("info", 2, "info failed: ssh failed to authenticate: 'Access denied'\n", K.OTHER),
]


@pytest.mark.parametrize(("command", "code", "stderr", "kind"), REFERENCE_ERRORS)
def test_reference_errors_map_to_their_kind(command: str, code: int, stderr: str, kind: K) -> None:
    error = MultipassError.from_result(command, code, stderr)
    assert error.kind is kind
    assert classify(code, stderr) is kind
    assert isinstance(error, DevorchError)
    assert error.exit_code == code and error.stderr == stderr and error.command == command
    assert error.message.startswith(f"multipass {command} failed: ")
    assert "\n" not in error.message
    assert "failed: " not in error.message[len(f"multipass {command} failed: ") :], "prefix must not repeat"
    if kind is not K.OTHER:
        assert error.hint, "every known kind carries a fix"


def test_fixes_name_the_right_command() -> None:
    exists = MultipassError.from_result("snapshot", 2, "snapshot failed: Snapshot already exists: vm1.golden\n")
    assert exists.hint == "pick another snapshot name (`devorch-tui vm snapshots NAME` lists the ones taken)"
    missing = MultipassError.from_result("restore", 2, "restore failed: No such snapshot: vm1.snap9\n")
    assert missing.hint == "check the snapshot name: `devorch-tui vm snapshots NAME` lists them"
    image = MultipassError.from_result("launch", 2, 'launch failed: Unable to find an image matching "nope" in remote "".\n')
    assert image.kind is K.NOT_FOUND and "`devorch-tui vm images`" in (image.hint or "")
    assert "instance" not in (image.hint or "")


def test_hint_for_names_actions_another_way_and_keeps_one_text() -> None:
    """The dashboard writes the same fix with its keys (one text per fix, two ways to say the action)."""
    error = MultipassError.from_result("snapshot", 2, "snapshot failed: Multipass can only take snapshots of stopped instances.\n")
    assert error.hint == "stop the instance first (`devorch-tui vm stop NAME`), then retry"
    assert error.hint_for({"stop": "x"}) == "stop the instance first (x), then retry"
    suspended = MultipassError.from_result("stop", 2, "stop failed: Cannot shut down suspended instance x.\nUse --force to power it off.\n")
    assert suspended.hint_for({"force_stop": "X"}) == "use force stop (X) to power it off"
    assert suspended.hint_for({}) == suspended.hint
    explicit = MultipassError("boom", hint="do {this} by hand")
    assert explicit.hint_for({"this": "x"}) == "do {this} by hand", "an explicit fix is kept as it is"
    replaced = MultipassError.from_result("snapshot", 2, "snapshot failed: Multipass can only take snapshots of stopped instances.\n")
    replaced.hint = "something else"
    assert replaced.hint_for({"stop": "x"}) == "something else"


def test_not_found_message_keeps_the_instance_name() -> None:
    error = MultipassError.from_result("stop", 2, 'stop failed: The following errors occurred:\ninstance "nope" does not exist\n')
    assert error.message == 'multipass stop failed: instance "nope" does not exist'
    assert "vm list" in (error.hint or "")


def test_daemon_unreachable_has_the_start_daemon_fix() -> None:
    error = MultipassError.from_result("list", 2, "list failed: cannot connect to the multipass socket\n")
    assert "snap restart multipass" in (error.hint or "") and "launchctl" in (error.hint or "")


def test_specific_hints_for_suspended_unknown_and_deleted() -> None:
    suspended = MultipassError.from_result("stop", 2, "stop failed: Cannot shut down suspended instance x.\nUse --force to power it off.\n")
    assert "--force" in (suspended.hint or "")
    unknown = MultipassError.from_result(
        "start", 2, "start failed: The following errors occurred:\nInstance 'x' is already running, but in an unknown state.\nTry to stop it first.\n"
    )
    assert "force stop" in (unknown.hint or "")
    deleted = MultipassError.from_result("start", 2, "start failed: instance(s) missing\nInstance 'x' is deleted. Use 'recover'...\n")
    assert "recover" in (deleted.hint or "")


def test_unknown_command_on_old_multipass_is_not_supported() -> None:
    # <= 1.14 has no clone: the client answers with a usage error (exit 1).
    error = MultipassError.from_result("clone", 1, "", "Error: Unknown Command 'clone' (try \"multipass help\")\n")
    assert error.kind is K.NOT_SUPPORTED
    assert "Unknown Command" in error.message


def test_unrecognised_failure_keeps_the_raw_message() -> None:
    error = MultipassError.from_result("exec", 2, "exec failed: something new happened\nwith details\n")
    assert error.kind is K.OTHER
    assert error.message == "multipass exec failed: something new happened with details"


def test_empty_output_still_says_something() -> None:
    error = MultipassError.from_result("list", 3, "")
    assert error.kind is K.OTHER and "exit code 3" in error.message


def test_clean_detail_drops_prefix_and_header() -> None:
    assert clean_detail("info failed: The following errors occurred:\ninstance \"a\" does not exist\n") == 'instance "a" does not exist'


def test_spinner_is_stripped_like_a_terminal_would() -> None:
    raw = "Launching dev-1 |\b/\b-\b\\\b\x1b[2K\x1b[0A\x1b[0ELaunched: dev-1\n"
    assert clean_output(raw) == "Launched: dev-1"
    raw = "Retrieving image: 45%\rRetrieving image: 100%\x1b[2K\x1b[0A\x1b[0EStarting dev-1 |\b/\b\x1b[2K\x1b[0A\x1b[0E"
    assert clean_output(raw) == ""
    assert clean_output("Snapshot taken: a.b\r\n") == "Snapshot taken: a.b"
    assert clean_output("\x1b[1mbold\x1b[0m text\n\n") == "bold text"


def test_an_error_read_from_stdout_carries_no_spinner_escapes() -> None:
    """With nothing on stderr the message comes from stdout, which has the spinner: it is cleaned."""
    raw = "Starting dev-1 |\b/\b-\b\x1b[2K\x1b[0A\x1b[0Estart failed: timed out waiting for response\n"
    error = MultipassError.from_result("start", 2, "", raw)
    assert "\x1b" not in error.message and "\b" not in error.message
    assert error.message == "multipass start failed: timed out waiting for response"

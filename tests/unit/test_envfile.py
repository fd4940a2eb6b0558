"""The .env parser/editor: round trips, edits that keep everything else, errors with line numbers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from devorch_tui.errors import WorkspaceError
from devorch_tui.services.envfile import EnvFile, EnvFileError, atomic_write_text, effective_values, format_value, save_values

SAMPLE = """\
# Workspace settings
# --- Git ---
# Your name.
GIT_NAME="Ada Lovelace"
export GIT_EMAIL=ada@example.com   # inline comment

SINGLE='literal $HOME \\n'
ESCAPES="tab\\there \\"quoted\\" back\\\\slash"
EMPTY=
EMPTY_COMMENTED= # nothing yet
UNKNOWN_KEY=kept
  INDENTED=yes
"""


def test_parse_values_quotes_export_and_comments() -> None:
    env = EnvFile.parse(SAMPLE)
    assert env.as_dict() == {
        "GIT_NAME": "Ada Lovelace",
        "GIT_EMAIL": "ada@example.com",
        "SINGLE": "literal $HOME \\n",
        "ESCAPES": 'tab\there "quoted" back\\slash',
        "EMPTY": "",
        "EMPTY_COMMENTED": "",
        "UNKNOWN_KEY": "kept",
        "INDENTED": "yes",
    }
    assert env.keys()[:2] == ["GIT_NAME", "GIT_EMAIL"]
    assert env.get("MISSING") is None
    assert env.get("MISSING", "d") == "d"
    assert "UNKNOWN_KEY" in env


def test_unchanged_file_round_trips_byte_for_byte() -> None:
    assert EnvFile.parse(SAMPLE).render() == SAMPLE
    no_newline = "A=1\n# c"
    assert EnvFile.parse(no_newline).render() == no_newline


def test_set_rewrites_only_the_edited_line_and_keeps_export_quotes_and_inline_comment() -> None:
    env = EnvFile.parse(SAMPLE)
    env.set("GIT_EMAIL", "grace@example.com")
    env.set("SINGLE", "still literal")
    env.set("EMPTY_COMMENTED", "now set")
    env.set("NEW_KEY", "value with spaces")
    lines = env.render().splitlines()
    assert lines[4] == "export GIT_EMAIL=grace@example.com   # inline comment"
    assert lines[6] == "SINGLE='still literal'"
    assert lines[9] == 'EMPTY_COMMENTED="now set" # nothing yet'
    assert lines[-1] == 'NEW_KEY="value with spaces"'
    original = SAMPLE.splitlines()
    for index in (0, 1, 2, 3, 5, 7, 8, 10, 11):
        assert lines[index] == original[index]
    assert EnvFile.parse(env.render()).as_dict() == {**EnvFile.parse(SAMPLE).as_dict(), "GIT_EMAIL": "grace@example.com",
                                                     "SINGLE": "still literal", "EMPTY_COMMENTED": "now set", "NEW_KEY": "value with spaces"}


@pytest.mark.parametrize(
    "value",
    ["plain", "", "with space", 'quote " inside', "single ' inside", "hash # inside", "$HOME and `cmd`", "back\\slash", "line\nbreak", "tab\t", "José"],
)
def test_any_value_reads_back_the_same(value: str) -> None:
    env = EnvFile.parse("KEY=old # note\n")
    env.set("KEY", value)
    assert EnvFile.parse(env.render()).get("KEY") == value


def test_format_value_is_bare_only_when_safe() -> None:
    assert format_value("4G") == "4G"
    assert format_value("a b") == '"a b"'
    assert format_value("x", "'") == "'x'"
    assert format_value("it's", "'") == '"it\'s"'


def test_duplicate_keys_last_wins_and_set_edits_the_last() -> None:
    env = EnvFile.parse("A=1\nA=2\n")
    assert env.get("A") == "2"
    env.set("A", "3")
    assert env.render() == "A=1\nA=3\n"


def test_describe_reads_the_comment_block_above_a_key() -> None:
    env = EnvFile.parse(SAMPLE)
    assert env.describe("GIT_NAME") == "Your name."
    assert env.describe("UNKNOWN_KEY") == ""


def test_malformed_lines_are_reported_with_line_numbers() -> None:
    text = "GOOD=1\nthis is not an assignment\n1BAD=x\nOPEN=\"never closed\nTRAIL='x' junk\n"
    with pytest.raises(EnvFileError) as info:
        EnvFile.parse(text, path=Path("/w/.env"))
    problems = info.value.problems
    assert [problem.lineno for problem in problems] == [2, 3, 4, 5]
    assert "expected KEY=value" in problems[0].message
    assert "not a valid variable name" in problems[1].message
    assert "never closed" in problems[2].message
    assert "after the closing quote" in problems[3].message
    assert "/w/.env:2" in info.value.message
    assert info.value.hint


def test_lenient_parse_keeps_malformed_lines_verbatim_on_save(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# top\nbroken line here\nA=1\n")
    env = EnvFile.load(path, strict=False)
    assert [problem.lineno for problem in env.problems] == [2]
    env.set("A", "2")
    env.save()
    assert path.read_text() == "# top\nbroken line here\nA=2\n"


def test_set_rejects_bad_names_and_nul() -> None:
    env = EnvFile()
    with pytest.raises(EnvFileError, match="not a valid variable name"):
        env.set("1X", "v")
    with pytest.raises(EnvFileError, match="NUL"):
        env.set("X", "a\0b")


def test_save_is_0600_and_atomic(tmp_path: Path) -> None:
    tmp_path = tmp_path / "ws"
    tmp_path.mkdir()
    path = tmp_path / ".env"
    path.write_text("A=1\n")
    os.chmod(path, 0o644)
    env = EnvFile.load(path)
    env.set("A", "2")
    env.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "A=2\n"
    assert [p.name for p in tmp_path.iterdir()] == [".env"]  # no temporary file left behind


def test_atomic_write_failure_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path = tmp_path / "ws"
    tmp_path.mkdir()
    path = tmp_path / ".env"
    path.write_text("A=old\n")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(WorkspaceError, match="No space left"):
        atomic_write_text(path, "A=new\n")
    assert path.read_text() == "A=old\n"
    assert [p.name for p in tmp_path.iterdir()] == [".env"]


def test_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/devorch-cannot-write/.env")  # even root cannot create folders in /proc
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / ".env"
    with pytest.raises(WorkspaceError) as info:
        atomic_write_text(target, "A=1\n")
    assert "cannot write" in info.value.message and info.value.hint


def test_load_reports_missing_and_non_utf8(tmp_path: Path) -> None:
    assert EnvFile.load(tmp_path / "nope").as_dict() == {}
    with pytest.raises(EnvFileError, match="does not exist"):
        EnvFile.load(tmp_path / "nope", missing_ok=False)
    binary = tmp_path / "bin.env"
    binary.write_bytes(b"A=\xff\xfe\n")
    with pytest.raises(EnvFileError, match="not UTF-8"):
        EnvFile.load(binary)


def test_effective_values_env_over_example(tmp_path: Path) -> None:
    example = tmp_path / ".env.example"
    example.write_text("VM_CPUS=2\nVM_MEMORY=4G\nGIT_NAME=\n")
    env = tmp_path / ".env"
    env.write_text("VM_CPUS=4\nEXTRA=x\n")
    assert effective_values(env, example) == {"VM_CPUS": "4", "VM_MEMORY": "4G", "GIT_NAME": "", "EXTRA": "x"}
    assert effective_values(tmp_path / "missing", example)["VM_CPUS"] == "2"


def test_save_values_creates_env_from_example_with_its_comments(tmp_path: Path) -> None:
    example = tmp_path / ".env.example"
    example.write_text("# Your name.\nGIT_NAME=\n# CPUs.\nVM_CPUS=2\n")
    env_path = tmp_path / ".env"
    save_values(env_path, {"GIT_NAME": "Ada", "VM_CPUS": "2", "NOT_IN_EXAMPLE": ""}, example_file=example)
    assert env_path.read_text() == "# Your name.\nGIT_NAME=Ada\n# CPUs.\nVM_CPUS=2\n"
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600


def test_save_values_adds_only_keys_that_differ_from_the_defaults(tmp_path: Path) -> None:
    example = tmp_path / ".env.example"
    example.write_text("VM_CPUS=2\nVM_DISK=20G\n")
    env_path = tmp_path / ".env"
    env_path.write_text("# mine\nCUSTOM=1\n")
    save_values(env_path, {"VM_CPUS": "2", "VM_DISK": "40G", "CUSTOM": "1"}, example_file=example)
    assert env_path.read_text() == "# mine\nCUSTOM=1\nVM_DISK=40G\n"

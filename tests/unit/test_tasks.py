"""Task files: the pydantic model, field-path errors, the schema command and the shipped examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devorch_tui.cli import main
from devorch_tui.services.tasks import TaskFileError, load_task_file, parse_task_file, task_file_schema

REPO = Path(__file__).resolve().parents[2]


def task_json(**top) -> str:
    data = {"name": "demo", "tasks": [{"name": "a", "run": "true"}]}
    data.update(top)
    return json.dumps(data)


def problems(text: str) -> list[str]:
    with pytest.raises(TaskFileError) as info:
        parse_task_file(text)
    return info.value.problems


def test_defaults_apply_and_task_values_override() -> None:
    task_file = parse_task_file(
        json.dumps(
            {
                "name": "demo",
                "defaults": {"cwd": "~/p", "env": {"A": "1", "B": "2"}, "timeout": 30, "shell": "sh"},
                "tasks": [
                    {"name": "one", "run": "make"},
                    {"name": "two", "run": ["uv", "run", "pytest"], "cwd": "/srv", "env": {"B": "3"}, "timeout": 5,
                     "retries": 2, "retry_delay": 0.5, "continue_on_error": True},
                ],
            }
        )
    )  # fmt: skip
    one, two = task_file.resolved_tasks()
    assert (one.cwd, one.env, one.timeout, one.shell, one.retries, one.continue_on_error) == ("~/p", {"A": "1", "B": "2"}, 30, "sh", 0, False)
    assert (two.run, two.cwd, two.env, two.timeout) == (["uv", "run", "pytest"], "/srv", {"A": "1", "B": "3"}, 5)
    assert (two.retries, two.retry_delay, two.continue_on_error) == (2, 0.5, True)


def test_defaults_when_absent() -> None:
    (task,) = parse_task_file(task_json()).resolved_tasks()
    assert task.cwd is None and task.env == {} and task.timeout == 3600 and task.shell == "bash"


def test_bad_field_is_named_with_its_path() -> None:
    text = json.dumps(
        {"name": "x", "tasks": [{"name": "a", "run": "ls"}, {"name": "b", "run": "ls"}, {"name": "c", "run": "ls", "timeout": -1}]}
    )
    assert problems(text) == ["tasks[2].timeout: Input should be greater than 0"]


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        ([{"name": "a", "run": 5}], 'tasks[0].run: must be a command string ("make test") or a list of strings (["make", "test"])'),
        ([{"name": "a", "run": []}], "tasks[0].run: the argv list is empty"),
        ([{"name": "a", "run": "  "}], "tasks[0].run: the command is empty"),
        ([{"name": "a", "run": "x", "retries": -1}], "tasks[0].retries: Input should be greater than or equal to 0"),
        ([{"name": "a", "run": "x", "retrys": 1}], "tasks[0].retrys: unknown field (check the spelling; `devorch-tui tasks schema` lists the fields)"),
        ([{"name": "a", "run": "x", "env": {"1BAD": "v"}}], "tasks[0].env: '1BAD' is not a valid variable name (letters, digits and _, not starting with a digit)"),
        ([{"name": "a\tb", "run": "x"}], "tasks[0].name: use printable characters (no tabs or newlines)"),
        ([{"run": "x"}], "tasks[0].name: Field required"),
        (["x"], "tasks[0]: must be a JSON object ({...})"),
        ([], "tasks: List should have at least 1 item after validation, not 0"),
        ([{"name": "a", "run": "x"}, {"name": "a", "run": "y"}], "tasks: two tasks are named 'a'; task names must be unique"),
        # strict types: a string, a float or Infinity where a number or a boolean belongs is a mistake
        ([{"name": "a", "run": "x", "retries": "3"}], "tasks[0].retries: Input should be a valid integer (a whole JSON number such as 3, without quotes)"),
        ([{"name": "a", "run": "x", "retries": 1.5}], "tasks[0].retries: Input should be a valid integer (a whole JSON number such as 3, without quotes)"),
        ([{"name": "a", "run": "x", "continue_on_error": "yes"}], "tasks[0].continue_on_error: Input should be a valid boolean (true or false, without quotes)"),
        ([{"name": "a", "run": "x", "continue_on_error": 1}], "tasks[0].continue_on_error: Input should be a valid boolean (true or false, without quotes)"),
        ([{"name": "a", "run": "x", "timeout": "300"}], "tasks[0].timeout: Input should be a valid number (a JSON number of seconds such as 300, without quotes)"),
        ([{"name": "a", "run": "x", "retry_delay": "5"}], "tasks[0].retry_delay: Input should be a valid number (a JSON number of seconds such as 300, without quotes)"),
    ],
)
def test_task_problems(tasks: list, expected: str) -> None:
    assert expected in problems(json.dumps({"name": "x", "tasks": tasks}))


def test_defaults_problems() -> None:
    text = json.dumps({"name": "x", "defaults": {"shell": "bash -e", "timeout": 0}, "tasks": [{"name": "a", "run": "x"}]})
    assert problems(text) == [
        "defaults.timeout: Input should be greater than 0",
        "defaults.shell: give one program, such as bash or sh, without arguments",
    ]


def test_invalid_json_names_line_and_column() -> None:
    with pytest.raises(TaskFileError) as info:
        parse_task_file('{\n  "name": "x",\n  "tasks": [,]\n}', source="t.json")
    assert info.value.message == "t.json is not valid JSON: Expecting value at line 3, column 13"


def test_load_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match="does not exist"):
        load_task_file(tmp_path / "nope.json")
    with pytest.raises(TaskFileError, match="is a folder"):
        load_task_file(tmp_path)


def test_schema_describes_every_task_field() -> None:
    schema = task_file_schema()
    task = schema["$defs"]["Task"]["properties"]
    assert set(task) == {"name", "run", "cwd", "env", "timeout", "retries", "retry_delay", "continue_on_error"}
    assert set(schema["$defs"]["Defaults"]["properties"]) == {"cwd", "env", "timeout", "shell"}
    assert schema["required"] == ["name", "tasks"]
    assert "$schema" in schema["properties"]  # editors may point a task file at the schema


def test_schema_key_is_accepted_in_a_task_file() -> None:
    assert parse_task_file(task_json(**{"$schema": "./task-file.schema.json"})).schema_ref == "./task-file.schema.json"


@pytest.mark.parametrize("name", ["python-tasks.json", "nodejs-tasks.json"])
def test_shipped_examples_are_valid(name: str) -> None:
    task_file = load_task_file(REPO / "examples" / name)
    assert len(task_file.tasks) >= 5
    assert any(task.continue_on_error for task in task_file.tasks)
    assert any(task.retries for task in task_file.tasks)


def test_cli_tasks_schema_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tasks", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == task_file_schema()


def test_cli_tasks_check_reports_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "tasks": [{"name": "a", "run": "x", "timeout": "soon"}]}))
    assert main(["tasks", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "tasks[0].timeout: Input should be a valid number" in err
    assert "fix:" in err and "Traceback" not in err


@pytest.mark.parametrize("where", ["defaults", "task"])
@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN"])
def test_timeouts_must_be_finite(where: str, literal: str) -> None:
    """Python's json reads Infinity and NaN; a timeout must still be a finite number of seconds."""
    task = '{"name": "a", "run": "x"' + (f', "timeout": {literal}' if where == "task" else "") + "}"
    defaults = f'"defaults": {{"timeout": {literal}}}, ' if where == "defaults" else ""
    found = problems('{"name": "x", ' + defaults + '"tasks": [' + task + "]}")
    field = "defaults.timeout" if where == "defaults" else "tasks[0].timeout"
    assert len(found) == 1 and found[0].startswith(f"{field}: Input should be")


def test_whole_numbers_are_accepted_as_seconds() -> None:
    (task,) = parse_task_file(task_json(tasks=[{"name": "a", "run": "x", "timeout": 30, "retry_delay": 2, "retries": 0}])).resolved_tasks()
    assert (task.timeout, task.retry_delay, task.retries) == (30.0, 2.0, 0)


@pytest.mark.parametrize(("name", "template"), [("python-tasks.json", "python"), ("nodejs-tasks.json", "nodejs")])
def test_shipped_examples_call_what_their_template_verifies(name: str, template: str) -> None:
    import re
    import tomllib

    verify = tomllib.loads((REPO / "template-examples" / template / "template.toml").read_text())["verify"]
    verified = {command.split()[0] for command in verify}
    versions = load_task_file(REPO / "examples" / name).tasks[0]
    assert versions.name == "versions" and isinstance(versions.run, str)
    called = set(re.findall(r"([\w.-]+) --version", versions.run))
    assert called and called <= verified, called - verified


def test_the_python_example_uses_the_python_the_template_installs() -> None:
    """Ubuntu 22.04's python3 is 3.10 without ensurepip (its venv fails); the python template links
    the Python it installs as /usr/local/bin/python. Tasks run in a non-login `sh -s`, which reads no
    /etc/profile.d, so the example names that Python to uv itself."""
    import re

    template = (REPO / "template-examples" / "python" / "cloud-init.j2").read_text()
    assert re.search(r"\[ln, -sf, .*, /usr/local/bin/python\]", template)  # what the example relies on
    task_file = load_task_file(REPO / "examples" / "python-tasks.json")
    runs = [task.run if isinstance(task.run, str) else " ".join(task.run) for task in task_file.tasks]
    assert not any(re.search(r"\bpython3\b", run) for run in runs)
    assert any("python -m venv" in run for run in runs)
    assert task_file.defaults.env["UV_PYTHON"] == "/usr/local/bin/python"
    assert task_file.defaults.env["UV_PYTHON_DOWNLOADS"] == "never"  # never a Python the template did not install

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

"""Task files: the JSON a user writes to run commands inside VMs.

::

    {
      "name": "python checks",
      "defaults": {"cwd": "~/project", "env": {"PYTHONUNBUFFERED": "1"}, "timeout": 600, "shell": "bash"},
      "tasks": [
        {"name": "sync", "run": "uv sync"},
        {"name": "tests", "run": ["uv", "run", "pytest", "-q"], "timeout": 900, "retries": 1},
        {"name": "lint", "run": "uv run ruff check .", "continue_on_error": true}
      ]
    }

``run`` is a shell string (run by ``defaults.shell -c``) or an argv list (quoted with shlex, no shell
expansion). A task's ``cwd``/``env``/``timeout`` override the defaults (``env`` is merged). A bad file
is reported with the path of the field: ``tasks[2].timeout: Input should be greater than 0``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError as PydanticValidationError, field_validator, model_validator

from devorch_tui.errors import DevorchError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DEFAULT_TIMEOUT = 3600.0


class TaskFileError(DevorchError):
    """A task file is missing, not JSON, or does not fit the schema."""

    def __init__(self, message: str, *, hint: str | None = None, problems: list[str] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems or []


def _check_env(env: dict[str, str]) -> dict[str, str]:
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid variable name (letters, digits and _, not starting with a digit)")
        if "\x00" in value:
            raise ValueError(f"the value of {name} contains a NUL byte")
    return env


class Defaults(BaseModel):
    """Values every task gets unless it sets its own."""

    model_config = ConfigDict(extra="forbid")

    cwd: str | None = Field(None, description="Folder the tasks run in (a path inside the target; ~ is the home folder)")
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables for every task")
    timeout: float = Field(
        DEFAULT_TIMEOUT, gt=0, strict=True, allow_inf_nan=False, description="Seconds a task may run before it is stopped"
    )
    shell: str = Field("bash", min_length=1, description="Shell that runs string commands (`SHELL -c RUN`)")

    _env = field_validator("env")(classmethod(lambda cls, value: _check_env(value)))

    @field_validator("shell")
    @classmethod
    def _shell_is_one_word(cls, value: str) -> str:
        if any(ch.isspace() for ch in value) or _CONTROL.search(value):
            raise ValueError("give one program, such as bash or sh, without arguments")
        return value


class Task(BaseModel):
    """One command to run on every target."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120, description="Shown in logs and results; unique in the file")
    run: str | list[str] = Field(description="A shell command string, or an argv list run without a shell")
    cwd: str | None = Field(None, description="Overrides defaults.cwd")
    env: dict[str, str] = Field(default_factory=dict, description="Merged over defaults.env")
    # strict: "3", "yes", 1.0 or Infinity are mistakes to report, not values to guess at
    timeout: float | None = Field(None, gt=0, strict=True, allow_inf_nan=False, description="Overrides defaults.timeout (seconds)")
    retries: int = Field(0, ge=0, le=100, strict=True, description="Extra attempts after a failure")
    retry_delay: float = Field(0.0, ge=0, le=3600, strict=True, allow_inf_nan=False, description="Seconds between attempts")
    continue_on_error: bool = Field(False, strict=True, description="Run the next tasks even if this one fails")

    _env = field_validator("env")(classmethod(lambda cls, value: _check_env(value)))

    @field_validator("name")
    @classmethod
    def _name_is_printable(cls, value: str) -> str:
        if _CONTROL.search(value) or not value.strip():
            raise ValueError("use printable characters (no tabs or newlines)")
        return value.strip()

    @field_validator("run")
    @classmethod
    def _run_not_empty(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("the command is empty")
        else:
            if not value:
                raise ValueError("the argv list is empty")
            if not value[0]:
                raise ValueError("the program (first item) is empty")
        for part in [value] if isinstance(value, str) else value:
            if "\x00" in part:
                raise ValueError("the command contains a NUL byte")
        return value


class TaskFile(BaseModel):
    """A task file: a name, defaults and the tasks, run in order on each target."""

    model_config = ConfigDict(
        extra="forbid",
        title="devorch-tui task file",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    schema_ref: str | None = Field(
        None, alias="$schema", description="Optional: path or URL of this schema, for editors (ignored when running)"
    )
    name: str = Field(min_length=1, max_length=200, description="What this task file does")
    defaults: Defaults = Field(default_factory=Defaults)
    tasks: list[Task] = Field(min_length=1, description="Run in order; a failure stops the rest unless continue_on_error")

    @model_validator(mode="after")
    def _unique_names(self) -> TaskFile:
        seen: set[str] = set()
        for task in self.tasks:
            if task.name in seen:
                raise ValueError(f"two tasks are named {task.name!r}; task names must be unique")
            seen.add(task.name)
        return self

    def resolved(self, task: Task) -> ResolvedTask:
        """A task with the defaults applied."""
        return ResolvedTask(
            name=task.name,
            run=task.run,
            cwd=task.cwd if task.cwd is not None else self.defaults.cwd,
            env={**self.defaults.env, **task.env},
            timeout=task.timeout if task.timeout is not None else self.defaults.timeout,
            shell=self.defaults.shell,
            retries=task.retries,
            retry_delay=task.retry_delay,
            continue_on_error=task.continue_on_error,
        )

    def resolved_tasks(self) -> list[ResolvedTask]:
        return [self.resolved(task) for task in self.tasks]


class ResolvedTask(BaseModel):
    """A task with every value decided (what the executor runs)."""

    name: str
    run: str | list[str]
    cwd: str | None
    env: dict[str, str]
    timeout: float
    shell: str
    retries: int
    retry_delay: float
    continue_on_error: bool


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[str]", "function-after[_run_not_empty(), union[str,list[str]]]"):
            continue  # union branch names add nothing for a user
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


_TYPE_HINTS = {
    "int_type": "a whole JSON number such as 3, without quotes",
    "bool_type": "true or false, without quotes",
    "float_type": "a JSON number of seconds such as 300, without quotes",
    "finite_number": "Infinity and NaN are not numbers of seconds",
}


def problems_of(exc: PydanticValidationError) -> list[str]:
    """Pydantic errors as ``tasks[2].timeout: Input should be greater than 0`` lines (one per field)."""
    problems: dict[str, str] = {}
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and ("[" in part or part in ("str", "list[str]"))))
        where = _location(loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; `devorch-tui tasks schema` lists the fields)"
        elif error["type"] in ("model_type", "dict_type", "model_attributes_type"):
            message = "must be a JSON object ({...})"
        elif where.endswith(".run") and error["type"] in ("string_type", "list_type"):
            message = 'must be a command string ("make test") or a list of strings (["make", "test"])'
        elif error["type"] in _TYPE_HINTS:
            message = f"{message} ({_TYPE_HINTS[error['type']]})"
        elif where == "(top level)" and "task names must be unique" in message:
            where = "tasks"
        problems.setdefault(where, message)
    return [f"{where}: {message}" for where, message in problems.items()]


def parse_task_file(text: str, source: str = "task file") -> TaskFile:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskFileError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            hint="fix the JSON syntax at that place (a missing comma or quote is the usual cause)",
        ) from None
    try:
        return TaskFile.model_validate(data)
    except PydanticValidationError as exc:
        problems = problems_of(exc)
        raise TaskFileError(
            f"{source} is not a valid task file:\n  " + "\n  ".join(problems),
            hint="correct the fields named above; `devorch-tui tasks schema` prints the full schema",
            problems=problems,
        ) from None


def load_task_file(path: str | Path) -> TaskFile:
    """Read and validate a task file; every problem is a :class:`TaskFileError` naming the field."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaskFileError(f"task file {path} does not exist", hint="check the path (examples: examples/python-tasks.json)") from None
    except IsADirectoryError:
        raise TaskFileError(f"{path} is a folder, not a task file", hint="give the path of a .json task file") from None
    except UnicodeDecodeError:
        raise TaskFileError(f"task file {path} is not UTF-8 text", hint="save it as UTF-8 JSON") from None
    except OSError as exc:
        raise TaskFileError(f"cannot read task file {path}: {exc.strerror}", hint="check its permissions") from None
    return parse_task_file(text, source=str(path))


def task_file_schema() -> dict[str, Any]:
    """The JSON Schema of task files (for editors: ``"$schema"`` or a settings mapping)."""
    return TaskFile.model_json_schema()

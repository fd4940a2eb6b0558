"""The one .env parser: read, edit and write ``KEY=value`` files without losing anything.

Comments, blank lines, order, unknown keys, an ``export`` prefix and the quoting style of every line
are kept; only the lines whose value changes are rewritten. Malformed lines are reported with their
line number (:class:`EnvFileError`); in lenient mode they are kept verbatim so an editor can still
save the file without destroying what it could not understand. Writes are atomic (temporary file,
fsync, rename) and leave the file with mode 0600: a .env holds an email address and keys.

Syntax (the common subset of python-dotenv, docker compose and POSIX shells)::

    # comment
    KEY=value               # inline comment (needs a space before '#')
    export KEY="double quoted: \\" \\\\ \\n escapes"
    KEY='single quoted, taken literally'
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devorch_tui.errors import DevorchError, WorkspaceError

KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN_RE = re.compile(r"^(?P<indent>\s*)(?P<export>export\s+)?(?P<key>[^=\s]+)\s*=\s*(?P<rest>.*)$")
_PLAIN_SAFE_RE = re.compile(r"^[A-Za-z0-9_./:@+,%^~-]*$")
_DOUBLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$", "`": "`"}
ENV_FILE_MODE = 0o600


class EnvFileError(DevorchError):
    """A .env file has lines that cannot be read, or cannot be read/written at all."""

    def __init__(self, message: str, *, hint: str | None = None, problems: list[EnvProblem] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems or []


@dataclass(frozen=True)
class EnvProblem:
    """One malformed line: where it is and what is wrong."""

    lineno: int
    message: str
    text: str

    def __str__(self) -> str:
        return f"line {self.lineno}: {self.message}"


@dataclass
class EnvLine:
    """One physical line. ``raw`` is written back unchanged unless the value was edited."""

    lineno: int
    raw: str
    kind: str  # "blank" | "comment" | "assign" | "invalid"
    key: str | None = None
    value: str = ""
    export: bool = False
    quote: str = ""  # "", '"' or "'"
    inline_comment: str = ""  # the text from the '#' on, with its leading spaces
    dirty: bool = False

    def render(self) -> str:
        if not self.dirty or self.kind != "assign":
            return self.raw
        prefix = "export " if self.export else ""
        comment = self.inline_comment
        if comment and not comment[0].isspace():
            comment = " " + comment  # a bare value would swallow a '#' glued to it
        return f"{prefix}{self.key}={format_value(self.value, self.quote)}{comment}"


@dataclass
class EnvFile:
    """A parsed .env file. Keys repeat in some files: the last assignment wins, as in a shell."""

    lines: list[EnvLine] = field(default_factory=list)
    path: Path | None = None
    problems: list[EnvProblem] = field(default_factory=list)
    trailing_newline: bool = True

    # ----- reading -------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, *, path: Path | None = None, strict: bool = True) -> EnvFile:
        """Parse ``text``. Malformed lines raise EnvFileError (all of them at once) unless not ``strict``."""
        env = cls(path=path, trailing_newline=text.endswith("\n") or not text)
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line, problem = _parse_line(lineno, raw)
            env.lines.append(line)
            if problem:
                env.problems.append(problem)
        if strict and env.problems:
            raise _problems_error(env.problems, path)
        return env

    @classmethod
    def load(cls, path: Path, *, strict: bool = True, missing_ok: bool = True) -> EnvFile:
        """Read ``path``; a missing file is an empty EnvFile when ``missing_ok``."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if missing_ok:
                return cls(path=path)
            raise EnvFileError(f"{path} does not exist", hint="run `devorch-tui init DIR` or copy templates/.env.example to .env") from None
        except UnicodeDecodeError:
            raise EnvFileError(f"{path} is not UTF-8 text", hint="save it as UTF-8 plain text") from None
        except OSError as exc:
            raise EnvFileError(f"cannot read {path}: {exc.strerror}", hint="check the file's permissions") from None
        return cls.parse(text, path=path, strict=strict)

    def _assignments(self) -> Iterator[EnvLine]:
        return (line for line in self.lines if line.kind == "assign")

    def keys(self) -> list[str]:
        """Keys in file order, each once."""
        return list(dict.fromkeys(line.key for line in self._assignments() if line.key))

    def get(self, key: str, default: str | None = None) -> str | None:
        value = default
        for line in self._assignments():
            if line.key == key:
                value = line.value
        return value

    def __contains__(self, key: object) -> bool:
        return any(line.key == key for line in self._assignments())

    def as_dict(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for line in self._assignments():
            assert line.key is not None
            values[line.key] = line.value
        return values

    def describe(self, key: str) -> str:
        """The comment block right above ``key`` (the documentation in a .env.example), as plain text."""
        for index, line in enumerate(self.lines):
            if line.kind == "assign" and line.key == key:
                block: list[str] = []
                for above in reversed(self.lines[:index]):
                    text = above.raw.strip().lstrip("#").strip()
                    # A blank line or a "--- section ---" heading ends the variable's own description.
                    if above.kind != "comment" or text.startswith("---"):
                        break
                    block.append(text)
                block.reverse()
                return " ".join(text for text in block if text)
        return ""

    # ----- editing -------------------------------------------------------------------------------
    def set(self, key: str, value: str) -> None:
        """Set ``key``: edits its last assignment in place, or appends a new line at the end."""
        if not KEY_RE.fullmatch(key):
            raise EnvFileError(f"{key!r} is not a valid variable name", hint="use letters, digits and _, not starting with a digit")
        if "\0" in value:
            raise EnvFileError(f"the value of {key} contains a NUL character", hint="remove it")
        target = None
        for line in self._assignments():
            if line.key == key:
                target = line
        if target is None:
            self.lines.append(EnvLine(lineno=0, raw="", kind="assign", key=key, value=value, dirty=True))
            return
        if target.value != value:
            target.value = value
            target.dirty = True

    def update(self, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            self.set(key, value)

    # ----- writing -------------------------------------------------------------------------------
    def render(self) -> str:
        text = "\n".join(line.render() for line in self.lines)
        return text + "\n" if text and self.trailing_newline else text

    def save(self, path: Path | None = None) -> Path:
        """Write atomically with mode 0600 (comments, order and unknown keys kept)."""
        target = path or self.path
        if target is None:
            raise EnvFileError("no file to save to", hint="pass a path")
        atomic_write_text(target, self.render(), mode=ENV_FILE_MODE)
        self.path = target
        for line in self.lines:
            if line.dirty:
                line.raw = line.render()
                line.dirty = False
        return target


def _parse_line(lineno: int, raw: str) -> tuple[EnvLine, EnvProblem | None]:
    stripped = raw.strip()
    if not stripped:
        return EnvLine(lineno, raw, "blank"), None
    if stripped.startswith("#"):
        return EnvLine(lineno, raw, "comment"), None

    def invalid(message: str) -> tuple[EnvLine, EnvProblem]:
        return EnvLine(lineno, raw, "invalid"), EnvProblem(lineno, message, raw)

    match = _ASSIGN_RE.match(raw)
    if not match:
        return invalid("expected KEY=value")
    key = match.group("key")
    if not KEY_RE.fullmatch(key):
        return invalid(f"{key[:40]!r} is not a valid variable name (letters, digits and _, not starting with a digit)")
    rest = match.group("rest")
    try:
        value, quote, comment = _parse_value(rest)
    except ValueError as exc:
        return invalid(f"{key}: {exc}")
    return (
        EnvLine(lineno, raw, "assign", key=key, value=value, export=bool(match.group("export")), quote=quote, inline_comment=comment),
        None,
    )


def _parse_value(rest: str) -> tuple[str, str, str]:
    """Split what follows ``=`` into (value, quote char, inline comment with its leading spaces)."""
    if rest.startswith('"'):
        chars: list[str] = []
        index = 1
        while index < len(rest):
            char = rest[index]
            if char == "\\" and index + 1 < len(rest):
                nxt = rest[index + 1]
                chars.append(_DOUBLE_ESCAPES.get(nxt, "\\" + nxt))
                index += 2
                continue
            if char == '"':
                return "".join(chars), '"', _trailing_comment(rest[index + 1 :])
            chars.append(char)
            index += 1
        raise ValueError('the double quote is never closed (values span one line; write a newline as \\n)')
    if rest.startswith("'"):
        end = rest.find("'", 1)
        if end < 0:
            raise ValueError("the single quote is never closed")
        return rest[1:end], "'", _trailing_comment(rest[end + 1 :])
    comment_at = re.search(r"\s+#", rest)
    if comment_at:
        value, comment = rest[: comment_at.start()], rest[comment_at.start() :]
    elif rest.startswith("#"):
        value, comment = "", rest
    else:
        value, comment = rest, ""
    return value.rstrip(), "", comment


def _trailing_comment(after: str) -> str:
    if not after.strip():
        return ""
    if after.lstrip().startswith("#") and (after[:1].isspace() or after.startswith("#")):
        return after
    raise ValueError(f"unexpected text after the closing quote: {after.strip()[:40]!r}")


def format_value(value: str, quote: str = "") -> str:
    """``value`` as it is written after ``KEY=``: bare when safe, else quoted so it reads back the same."""
    if quote == "'" and "'" not in value and "\n" not in value:
        return f"'{value}'"
    if quote != '"' and _PLAIN_SAFE_RE.match(value):
        return value
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
        .replace("\t", "\\t").replace("$", "\\$").replace("`", "\\`")
    )
    return f'"{escaped}"'


def _problems_error(problems: list[EnvProblem], path: Path | None) -> EnvFileError:
    where = str(path) if path else ".env"
    listed = "; ".join(f"{where}:{problem.lineno}: {problem.message}" for problem in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return EnvFileError(
        f"{where} has {len(problems)} malformed line{'s' if len(problems) != 1 else ''}: {listed}{more}",
        hint="write each line as KEY=value (quote values with spaces or '#'), or start it with '#' to make it a comment",
        problems=problems,
    )


def effective_values(env_file: Path, example_file: Path | None = None) -> dict[str, str]:
    """The values in force: ``.env`` over the defaults of ``.env.example`` (both strictly parsed)."""
    values: dict[str, str] = {}
    if example_file is not None:
        values.update(EnvFile.load(example_file).as_dict())
    values.update(EnvFile.load(env_file).as_dict())
    return values


def save_values(env_file: Path, values: Mapping[str, str], *, example_file: Path | None = None) -> EnvFile:
    """Write ``values`` into ``env_file`` (atomic, 0600), keeping everything else in it.

    A missing .env starts as a copy of ``example_file`` (so its documentation comes along). Malformed
    lines are kept verbatim. A key that the .env lacks is only added when its value differs from the
    example's default, so defaults keep flowing from .env.example.
    """
    example = EnvFile.load(example_file, strict=False) if example_file is not None else EnvFile()
    if env_file.exists():
        env = EnvFile.load(env_file, strict=False)
    else:
        env = EnvFile.parse(example.render(), path=env_file, strict=False)
    defaults = example.as_dict()
    for key, value in values.items():
        if key in env or defaults.get(key, "") != value:
            env.set(key, value)
    env.save(env_file)
    return env


def atomic_write_text(path: Path, text: str, *, mode: int = ENV_FILE_MODE) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new file, never half of one.

    The temporary file is created with ``mode`` from the start, so the content is never readable
    by others even for an instant; the folder is fsynced after the rename.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise WorkspaceError(
            f"cannot write {path}: {exc.strerror or exc}", hint=f"check that {folder} exists and is writable by you"
        ) from None
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WorkspaceError(f"cannot write {path}: {exc.strerror or exc}", hint=f"check free space and permissions of {folder}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)

"""cloud-init templates: the catalog of examples, copying one into a workspace, checking .env values,
and rendering ``templates/cloud-init.j2`` with ``.env`` into ``cloud-init.yaml``.

A template is a folder with ``cloud-init.j2`` (Jinja2), ``.env.example`` (every variable, documented,
with defaults) and ``template.toml`` (name, description, the commands that verify a built VM, the
readiness marker, rules for template-specific variables). The examples ship in ``template-examples/``;
the active one is the workspace's ``templates/`` folder.

Rendering is sandboxed (``jinja_sandbox.LimitedSandbox``: no Python internals, bounded work and size)
with ``StrictUndefined``: a variable without a value is an error naming the variable and the line using
it. A template is one file: ``{% include %}``, ``{% import %}`` and ``{% extends %}`` are refused with
their line. The result must start with ``#cloud-config`` and parse as a YAML mapping; it is written
atomically with mode 0600 (it holds the email and key). No error message carries the value of a
secret-looking variable.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import shlex
import shutil
import tomllib
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import jinja2
import yaml
from jinja2 import meta, nodes

from devorch_tui import resources
from devorch_tui.config import Workspace
from devorch_tui.errors import DevorchError, ValidationError, WorkspaceError
from devorch_tui.services import jinja_sandbox, validation
from devorch_tui.services.envfile import ENV_FILE_MODE, EnvFile, atomic_write_text
from devorch_tui.services.secrets import Redactor, is_secret_name, mask_value

TEMPLATE_FILE = "cloud-init.j2"
ENV_EXAMPLE_FILE = ".env.example"
MANIFEST_FILE = "template.toml"
TEMPLATE_FILES = (TEMPLATE_FILE, ENV_EXAMPLE_FILE, MANIFEST_FILE)
CLOUD_CONFIG_HEADER = "#cloud-config"
DEFAULT_READY_MARKER = "/var/lib/devorch/ready"
RENDERED_MODE = 0o600
BACKUPS_DIR = ".devorch-backups"

# The variables every template's .env documents; the VM_ ones are for `multipass launch`, not the template.
LAUNCH_VARIABLES = ("VM_NAME", "VM_CPUS", "VM_MEMORY", "VM_DISK")
CORE_VARIABLES = ("GIT_NAME", "GIT_EMAIL", "SSH_PUBLIC_KEY", *LAUNCH_VARIABLES)


class TemplateError(DevorchError):
    """A template cannot be found, copied, parsed or rendered. ``path``/``line`` say where, when known."""

    def __init__(self, message: str, *, hint: str | None = None, path: Path | None = None, line: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.line = line


class EnvValuesError(DevorchError):
    """Some .env values are invalid; ``errors`` holds one ValidationError per variable."""

    def __init__(self, errors: list[ValidationError], env_path: Path | None = None) -> None:
        where = str(env_path) if env_path else ".env"
        lines = "; ".join(str(error) for error in errors)
        hints = "; ".join(f"{error.field}: {error.hint}" for error in errors if error.hint)
        super().__init__(
            f"{where} has {len(errors)} invalid value{'s' if len(errors) != 1 else ''}: {lines}",
            hint=f"edit {where} in the Templates pane or any editor" + (f" ({hints})" if hints else ""),
        )
        self.errors = errors


# ----- the manifest ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariableRule:
    """A template-specific variable's rule from template.toml: the value must fully match ``pattern``."""

    name: str
    pattern: str
    message: str

    def check(self, value: str) -> None:
        if not re.fullmatch(self.pattern, value.strip()):
            shown = validation.shown_value(self.name, value.strip())
            raise ValidationError(self.name, f"{shown} {self.message}", hint=f"{self.name} must match {self.pattern}")


@dataclass(frozen=True)
class Template:
    """A template folder and its manifest."""

    name: str
    description: str
    path: Path
    verify: tuple[str, ...] = ()
    ready_marker: str = DEFAULT_READY_MARKER
    rules: Mapping[str, VariableRule] = field(default_factory=dict)

    @property
    def template_file(self) -> Path:
        return self.path / TEMPLATE_FILE

    @property
    def env_example(self) -> Path:
        return self.path / ENV_EXAMPLE_FILE

    @property
    def manifest_file(self) -> Path:
        return self.path / MANIFEST_FILE

    @property
    def verify_commands(self) -> list[list[str]]:
        """The commands (argv lists) that must exit 0 inside a VM built from this template."""
        return [shlex.split(command) for command in self.verify]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "path": str(self.path),
            "verify": list(self.verify),
            "ready_marker": self.ready_marker,
        }


def load_template(folder: Path, *, default_name: str | None = None) -> Template:
    """Read the template in ``folder``; a missing template.toml gives a template with no verify commands."""
    manifest_path = folder / MANIFEST_FILE
    data: dict[str, Any] = {}
    if manifest_path.is_file():
        try:
            data = tomllib.loads(manifest_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise TemplateError(
                f"{manifest_path} is not valid TOML: {exc}", hint="fix the line named above", path=manifest_path, line=_toml_line(exc)
            ) from None
        except OSError as exc:
            raise TemplateError(f"cannot read {manifest_path}: {exc.strerror}", path=manifest_path) from None
    try:
        verify = data.get("verify", [])
        if not isinstance(verify, list) or not all(isinstance(item, str) and item.strip() for item in verify):
            raise ValueError("verify must be a list of commands (strings)")
        for command in verify:
            shlex.split(command)
        rules = {}
        for name, rule in dict(data.get("variables", {})).items():
            pattern = str(rule["pattern"])
            re.compile(pattern)
            rules[name] = VariableRule(name, pattern, str(rule.get("message", f"must match {pattern}")))
    except (ValueError, TypeError, KeyError, re.error) as exc:
        raise TemplateError(f"{manifest_path} is invalid: {exc}", hint="see template-examples/python/template.toml for the format", path=manifest_path) from None
    return Template(
        name=str(data.get("name") or default_name or folder.name),
        description=str(data.get("description", "")),
        path=folder,
        verify=tuple(verify),
        ready_marker=str(data.get("ready_marker", DEFAULT_READY_MARKER)),
        rules=rules,
    )


def _toml_line(exc: tomllib.TOMLDecodeError) -> int | None:
    match = re.search(r"line (\d+)", str(exc))
    return int(match.group(1)) if match else None


# ----- catalog, active template, copy ----------------------------------------------------------------


def catalog(examples_dir: Path | None = None) -> list[Template]:
    """Every example template (folders holding a cloud-init.j2), sorted by name."""
    root = examples_dir or resources.template_examples_dir()
    folders = sorted(path for path in root.iterdir() if (path / TEMPLATE_FILE).is_file())
    return sorted((load_template(folder) for folder in folders), key=lambda template: template.name)


def get_template(name: str, examples_dir: Path | None = None) -> Template:
    templates = catalog(examples_dir)
    for template in templates:
        if template.name == name:
            return template
    names = ", ".join(template.name for template in templates)
    raise TemplateError(f"there is no template named {name!r}", hint=f"pick one of: {names} (`devorch-tui templates list`)")


@dataclass(frozen=True)
class ActiveTemplate:
    """What the workspace's templates/ holds."""

    template: Template | None  # None when there is no templates/cloud-init.j2
    source: str | None  # the example it was copied from (template.toml name), if known
    modified: bool  # the files differ from that example


def require_workspace(workspace: Workspace) -> None:
    """Raise a TemplateError when the workspace folder itself is missing (a mistyped ``-w``): the
    message says so, instead of a missing template, and nothing is created there."""
    if not workspace.root.is_dir():
        raise TemplateError(
            f"the workspace {workspace.root} does not exist" + (" (it is a file)" if workspace.root.exists() else ""),
            hint=f"check the folder given with -w/--workspace, or create a workspace there with `devorch-tui init {workspace.root}`",
            path=workspace.root,
        )


def template_display_name(workspace: Workspace) -> str:
    """How messages name the active template file (``templates/cloud-init.j2``): the same everywhere."""
    return f"{workspace.templates_dir.name}/{TEMPLATE_FILE}"


def workspace_template(workspace: Workspace) -> Template:
    """The active template of ``workspace`` (templates/), for rendering and base-image verification."""
    require_workspace(workspace)
    if not workspace.template_file.is_file():
        raise TemplateError(
            f"no template in {workspace.templates_dir}",
            hint="copy one with `devorch-tui templates copy python` (or `devorch-tui init DIR`)",
            path=workspace.template_file,
        )
    return load_template(workspace.templates_dir, default_name="custom")


def active_template(workspace: Workspace, examples_dir: Path | None = None) -> ActiveTemplate:
    if not workspace.template_file.is_file():
        return ActiveTemplate(None, None, False)
    template = workspace_template(workspace)
    try:
        example = get_template(template.name, examples_dir)
    except TemplateError:
        return ActiveTemplate(template, None, True)
    modified = any(_differs(example.path / name, workspace.templates_dir / name) for name in TEMPLATE_FILES)
    return ActiveTemplate(template, example.name, modified)


def _differs(source: Path, dest: Path) -> bool:
    if not dest.exists():
        return source.exists()
    if not source.exists():
        return True
    return source.read_bytes() != dest.read_bytes()


@dataclass(frozen=True)
class CopyResult:
    template: Template
    written: list[Path]
    backup: Path | None
    unchanged: bool  # templates/ already held exactly this template


def copy_template(name: str, workspace: Workspace, *, force: bool = False, examples_dir: Path | None = None) -> CopyResult:
    """Copy example ``name`` into ``workspace.templates_dir``.

    Files the user edited (they differ from the example they were copied from, or their origin is
    unknown) are never replaced without ``force``: a TemplateError names them. Whatever is replaced is
    first saved in a timestamped folder under ``.devorch-backups/``.
    """
    template = get_template(name, examples_dir)
    require_workspace(workspace)
    dest = workspace.templates_dir
    plan = copy_plan(name, workspace, examples_dir=examples_dir)
    changed, replaced, edited = plan.changed, plan.replaced, plan.edited
    if not changed:
        return CopyResult(load_template(dest), [], None, True)
    if edited and not force:
        raise TemplateError(
            f"{dest} holds edited files ({', '.join(edited)}) that copying {name!r} would replace",
            hint=f"use --force (the Copy action asks) to replace them; they are first kept in {workspace.root / BACKUPS_DIR}",
        )
    backup = _backup(dest, replaced, workspace.root) if replaced else None
    written = []
    for file in changed:
        atomic_write_text(dest / file, (template.path / file).read_text(encoding="utf-8"), mode=0o644)
        written.append(dest / file)
    return CopyResult(load_template(dest), written, backup, False)


@dataclass(frozen=True)
class CopyPlan:
    """What copying a template would do: files to write, existing files replaced, edited ones among them."""

    changed: list[str]
    replaced: list[str]
    edited: list[str]


def copy_plan(name: str, workspace: Workspace, *, examples_dir: Path | None = None) -> CopyPlan:
    template = get_template(name, examples_dir)
    dest = workspace.templates_dir
    if dest.exists() and not dest.is_dir():
        raise WorkspaceError(f"{dest} is a file, not a folder", hint=f"rename or move that file away: {dest.name}/ must be a folder for the template")
    changed = [file for file in TEMPLATE_FILES if _differs(template.path / file, dest / file)]
    replaced = [file for file in changed if (dest / file).exists()]
    return CopyPlan(changed, replaced, _edited_files(workspace, replaced, examples_dir))


def _edited_files(workspace: Workspace, files: list[str], examples_dir: Path | None) -> list[str]:
    """Which of ``files`` in templates/ differ from the example they came from (all, if unknown)."""
    try:
        origin_name = load_template(workspace.templates_dir).name if (workspace.templates_dir / MANIFEST_FILE).is_file() else None
        origin = get_template(origin_name, examples_dir) if origin_name else None
    except TemplateError:
        origin = None
    if origin is None:
        return files
    return [file for file in files if _differs(origin.path / file, workspace.templates_dir / file)]


def _backup(folder: Path, files: list[str], root: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    backup = root / BACKUPS_DIR / f"templates-{stamp}"
    try:
        backup.mkdir(parents=True)
        for file in files:
            shutil.copy2(folder / file, backup / file)
    except OSError as exc:
        raise WorkspaceError(f"cannot back up {folder} to {backup}: {exc.strerror}", hint=f"check that {root} is writable") from None
    return backup


# ----- values ----------------------------------------------------------------------------------------

_VALIDATORS: dict[str, Callable[..., Any]] = {
    "VM_NAME": validation.validate_vm_name,
    "VM_CPUS": validation.validate_cpus,
    "VM_MEMORY": validation.validate_memory,
    "VM_DISK": validation.validate_disk,
    "GIT_EMAIL": validation.validate_email,
    "SSH_PUBLIC_KEY": validation.validate_ssh_public_key,
}


def check_value(name: str, value: str, template: Template | None = None) -> ValidationError | None:
    """The problem with ``value`` for variable ``name`` (None when fine or when nothing checks it).

    The single rule book for .env values: the editor's inline messages and render use it. An empty
    value is never *wrong*, only possibly missing: ``needed_for`` says when that matters. Messages
    never hold the value of a secret-looking variable.
    """
    if not value.strip():
        return None
    try:
        if name in _VALIDATORS:
            _VALIDATORS[name](value, field=name)
        elif template is not None and name in template.rules:
            template.rules[name].check(value)
        elif "\n" in value:
            raise ValidationError(name, "spans several lines", hint="keep it on one line")
    except ValidationError as exc:
        return exc
    return None


def needed_for(name: str, used: bool) -> str | None:
    """What an empty ``name`` would stop (None when it may stay empty): the one rule for "missing"."""
    if used:
        return "needed to render"
    if name == "VM_NAME":
        return "needed to build the golden image"
    return None


def check_values(values: Mapping[str, str], template: Template | None = None, *, names: list[str] | None = None) -> list[ValidationError]:
    """Problems of every checked variable in ``values`` (``names`` limits which)."""
    errors = []
    for name in names if names is not None else list(values):
        if name in values:
            error = check_value(name, values[name], template)
            if error is not None:
                errors.append(error)
    return errors


@dataclass(frozen=True)
class Variable:
    """A variable of the workspace: used by the template and/or set in .env / .env.example."""

    name: str
    value: str | None  # effective value (.env over .env.example), None when unset
    source: str | None  # ".env", ".env.example" or None
    used: bool  # the template refers to it (or, when usage_known is false, probably does)
    lines: tuple[int, ...]  # template lines using it
    secret: bool
    description: str
    usage_known: bool = True  # False when the template could not be read: used/lines come from a fallback

    @property
    def needed_for(self) -> str | None:
        return needed_for(self.name, self.used)

    @property
    def missing(self) -> bool:
        """Needed (``needed_for``) but without a (non-empty) value."""
        return self.needed_for is not None and not (self.value or "").strip()

    @property
    def display_value(self) -> str:
        return mask_value(self.name, self.value or "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.display_value if self.value is not None else None,
            "source": self.source,
            "used": self.used,
            "lines": list(self.lines),
            "secret": self.secret,
            "missing": self.missing,
            "description": self.description,
        }


_UNSUPPORTED_TAGS = {nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "from ... import", nodes.Extends: "extends"}


def template_variables(source: str, filename: str = TEMPLATE_FILE) -> dict[str, tuple[int, ...]]:
    """Every variable ``source`` takes from outside (jinja2.meta), with the lines using it, in order of first use.

    A template is one file: a tag that would read another (include, import, extends) is an error with its line.
    """
    env = _environment()
    try:
        ast = env.parse(source, name=filename)
        for node in ast.find_all(tuple(_UNSUPPORTED_TAGS)):
            tag = _UNSUPPORTED_TAGS[type(node)]
            raise TemplateError(
                f"{filename}:{node.lineno}: {{% {tag} %}} is not supported: a template is the one file {TEMPLATE_FILE}",
                hint=f"put the shared text in {TEMPLATE_FILE} itself (a {{% macro %}} defined there can be used many times)",
                path=Path(filename),
                line=node.lineno,
            )
        undeclared = meta.find_undeclared_variables(ast)  # compiles: unknown filters fail here
    except jinja2.TemplateSyntaxError as exc:
        raise _syntax_error(exc, filename) from None
    lines: dict[str, list[int]] = {}
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load" and node.name in undeclared:
            lines.setdefault(node.name, []).append(node.lineno)
    first_use = sorted(lines, key=lambda name: min(lines[name]))
    return {name: tuple(sorted(set(lines[name]))) for name in first_use}


def variables(workspace: Workspace, *, strict: bool = True, fallback_used: Mapping[str, tuple[int, ...]] | None = None) -> list[Variable]:
    """Every variable: template order first, then the core ones, the rest of .env.example, the rest of .env.

    ``strict=False`` (the editor) tolerates a workspace without a template, a template that cannot be
    read and malformed .env lines. When the template has an error, which variables it uses is unknown:
    ``fallback_used`` (the last good read) stands in, else every variable of .env.example counts as
    used; those Variables have ``usage_known`` false.
    """
    used: dict[str, tuple[int, ...]] = {}
    usage_known = True
    try:
        template = workspace_template(workspace)
        used = template_variables(_read_template(template.template_file), template_display_name(workspace))
    except TemplateError:
        if strict:
            raise
        usage_known = not workspace.template_file.exists()  # no template at all: nothing is used, for sure
    example = EnvFile.load(workspace.env_example, strict=strict)
    env = EnvFile.load(workspace.env_file, strict=strict)
    if not usage_known:
        guess = {name: () for name in example.keys() if name not in LAUNCH_VARIABLES}
        used = dict(fallback_used) if fallback_used is not None else guess
    example_values, env_values = example.as_dict(), env.as_dict()
    names = list(dict.fromkeys([*used, *CORE_VARIABLES, *example.keys(), *env.keys()]))
    result = []
    for name in names:
        if name in env_values:
            value, source = env_values[name], ".env"
        elif name in example_values:
            value, source = example_values[name], ".env.example"
        else:
            value, source = None, None
        result.append(
            Variable(
                name=name,
                value=value,
                source=source,
                used=name in used,
                lines=used.get(name, ()),
                secret=is_secret_name(name),
                description=example.describe(name) or env.describe(name),
                usage_known=usage_known,
            )
        )
    return result


# ----- rendering -------------------------------------------------------------------------------------


def yaml_quote(value: Any) -> str:
    """``value`` as a double-quoted YAML scalar (JSON strings are valid YAML; non-ASCII is escaped)."""
    return json.dumps("" if value is None else str(value), ensure_ascii=True)


def _environment() -> jinja_sandbox.LimitedSandbox:
    env = jinja_sandbox.LimitedSandbox(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        loader=jinja2.DictLoader({}),  # nothing to include: template_variables refuses the tags that would
    )
    env.filters["yaml_quote"] = yaml_quote
    env.filters["shell_quote"] = lambda value: shlex.quote(str(value))
    return env


def _syntax_error(exc: jinja2.TemplateSyntaxError, filename: str) -> TemplateError:
    name = filename if not exc.filename or exc.filename.startswith("<") else exc.filename
    return TemplateError(
        f"template syntax error at {name}:{exc.lineno}: {exc.message}",
        hint=f"fix line {exc.lineno} of {name}",
        path=Path(name),
        line=exc.lineno,
    )


def _read_template(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"{path} does not exist", hint="copy a template with `devorch-tui templates copy python`", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}", path=path) from None


def render_text(source: str, values: Mapping[str, str], *, filename: str = TEMPLATE_FILE) -> str:
    """Render ``source`` with ``values`` and check the result is cloud-config YAML.

    Empty values count as missing. Raises TemplateError naming the file and line of the problem, for
    whatever goes wrong (never another exception); its text never holds a secret-looking value.
    """
    used = template_variables(source, filename)
    context = {name: value for name, value in values.items() if value.strip()}
    missing = [name for name in used if name not in context]
    if missing:
        described = ", ".join(f"{name} (line {', '.join(map(str, used[name]))})" for name in missing)
        raise TemplateError(
            f"undefined variable{'s' if len(missing) > 1 else ''} in {filename}: {described}",
            hint=f"set {', '.join(missing)} in .env (every variable is documented in templates/.env.example)",
            line=used[missing[0]][0],
        )
    try:
        text = _render_checked(source, context, filename)
    except TemplateError as exc:
        redactor = Redactor.from_env(context)
        redacted = TemplateError(redactor.redact(exc.message), hint=exc.hint and redactor.redact(exc.hint), path=exc.path, line=exc.line)
        raise redacted from None
    return text


def _render_checked(source: str, context: Mapping[str, str], filename: str) -> str:
    def error(what: str, exc: BaseException, hint: str, detail: str | None = None) -> TemplateError:
        line = _template_line(exc)
        return TemplateError(f"{what} at {filename}{f':{line}' if line else ''}: {detail or exc}", hint=hint, line=line)

    try:
        text = jinja_sandbox.render(_environment().from_string(source), context)
    except jinja2.TemplateSyntaxError as exc:
        raise _syntax_error(exc, filename) from None
    except jinja2.UndefinedError as exc:
        raise error("undefined value", exc, "set the variable in .env or fix the template") from None
    except jinja_sandbox.LimitError as exc:
        hint = "look for a loop, a recursive macro or a huge number on that line; a cloud-config is a few kilobytes"
        raise error("the template does too much", exc, hint) from None
    except jinja2.sandbox.SecurityError as exc:
        raise error("unsafe operation", exc, "templates may only format values") from None
    except jinja2.TemplateError as exc:
        raise error("cannot render", exc, "fix the expression on that line") from None
    except RecursionError as exc:
        raise error("endless recursion", exc, "give the recursive macro a condition that stops it", "a macro keeps calling itself") from None
    except Exception as exc:  # noqa: BLE001 - whatever a template expression raises is the template's error
        raise error("cannot render", exc, "fix the expression on that line", f"{type(exc).__name__}: {exc}") from None
    check_cloud_config(text)
    return text


def _template_line(exc: BaseException) -> int | None:
    """The template line where a render error happened (jinja2 rewrites tracebacks to template lines)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<template>" or frame.filename.endswith(".j2"):
            line = frame.lineno
    return line


def check_cloud_config(text: str) -> dict[str, Any]:
    """``text`` must start with #cloud-config and be a YAML mapping; returns it parsed."""
    first = text.split("\n", 1)[0].rstrip()
    if first != CLOUD_CONFIG_HEADER:
        raise TemplateError(
            f"the rendered file must start with {CLOUD_CONFIG_HEADER!r}, not {first[:40]!r}",
            hint=f"make {CLOUD_CONFIG_HEADER} the very first line of templates/{TEMPLATE_FILE}",
            line=1,
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise TemplateError(
            f"the rendered cloud-init is not valid YAML{f' at line {line}' if line else ''}: {problem}",
            hint="pass values through `| yaml_quote` and check the indentation around that line",
            line=line,
        ) from None
    if not isinstance(data, dict):
        raise TemplateError("the rendered cloud-init is not a YAML mapping", hint="cloud-config is `key: value` lines at the top level")
    return data


def rendered_hash(text: str) -> str:
    """sha256 of the rendered cloud-init (the golden image records it to know when it is stale)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def workspace_values(workspace: Workspace) -> dict[str, str]:
    """Effective values: .env over templates/.env.example (strictly parsed)."""
    values = EnvFile.load(workspace.env_example).as_dict()
    values.update(EnvFile.load(workspace.env_file).as_dict())
    return values


@dataclass(frozen=True)
class RenderResult:
    text: str
    sha256: str
    path: Path | None  # None when only checked
    template: Template
    diff: list[str]  # unified diff against the previous cloud-init.yaml (secrets not masked: do not log)

    @property
    def changed(self) -> bool:
        return bool(self.diff)


def render(workspace: Workspace, *, write: bool = True) -> RenderResult:
    """Validate .env, render templates/cloud-init.j2 and (unless ``write`` is false) write cloud-init.yaml."""
    template = workspace_template(workspace)
    source = _read_template(template.template_file)
    values = workspace_values(workspace)
    filename = template_display_name(workspace)
    template_variables(source, filename)  # a broken template is reported before the values
    # Every value that is set is checked; an empty one the template needs is reported by render_text.
    errors = check_values(values, template)
    if errors:
        raise EnvValuesError(errors, workspace.env_file)
    text = render_text(source, values, filename=filename)
    previous = workspace.rendered.read_text(encoding="utf-8") if workspace.rendered.is_file() else ""
    diff = list(difflib.unified_diff(previous.splitlines(), text.splitlines(), "cloud-init.yaml (before)", "cloud-init.yaml", lineterm=""))
    if write:
        atomic_write_text(workspace.rendered, text, mode=RENDERED_MODE)
    return RenderResult(text, rendered_hash(text), workspace.rendered if write else None, template, diff)


# ----- workspace init ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InitResult:
    workspace: Workspace
    template: Template
    env_created: bool
    backup: Path | None


def init_workspace(workspace: Workspace, template_name: str = "python", *, force: bool = False, examples_dir: Path | None = None) -> InitResult:
    """Make ``workspace.root`` a workspace: templates/ from example ``template_name``, .env from its .env.example.

    A templates/ folder with files in it is refused without ``force`` (then its files are backed up).
    An existing .env is never replaced.
    """
    template = get_template(template_name, examples_dir)
    root = workspace.root
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root} is a file, not a folder", hint="give a folder path: an existing folder, or a new one to create")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(f"cannot create {root}: {exc.strerror}", hint="pick a folder you can write to") from None
    probe = root / ".devorch-write-test"
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise WorkspaceError(f"cannot write in {root}: {exc.strerror}", hint="pick a folder you own, or fix its permissions") from None
    templates_dir = workspace.templates_dir
    if templates_dir.is_dir() and any(templates_dir.iterdir()) and not force:
        raise WorkspaceError(
            f"{templates_dir} is not empty",
            hint=f"use --force to replace its template (the current files are backed up in {root / BACKUPS_DIR})",
        )
    copied = copy_template(template.name, workspace, force=True, examples_dir=examples_dir)
    env_created = False
    if not workspace.env_file.exists():
        atomic_write_text(workspace.env_file, template.env_example.read_text(encoding="utf-8"), mode=ENV_FILE_MODE)
        env_created = True
    return InitResult(workspace, copied.template, env_created, copied.backup)

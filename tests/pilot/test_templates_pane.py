"""The Templates pane driven through the real app: edit, validate, save, keygen, copy, render."""

from __future__ import annotations

import stat
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static

from devorch_tui.config import Settings, Workspace
from devorch_tui.services import templates
from devorch_tui.services.envfile import EnvFile
from devorch_tui.ui.app import DevorchApp
from devorch_tui.ui.panes.templates import TemplatesPane
from devorch_tui.ui.screens.confirm import ConfirmScreen
from devorch_tui.ui.screens.template_render import RenderedScreen
from devorch_tui.ui.app import QuitScreen
from tests.pilot.waiting import wait_until

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH8fmxB3hyKmJ36jbvsFCMJrPEz6nq8Y8bk6qGW7PBRm dev@host"
SIZE = (150, 50)


async def settle(pilot: Pilot) -> None:
    """Let workers finish and the messages they post be handled."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def open_pane(pilot: Pilot) -> TemplatesPane:
    await settle(pilot)
    await pilot.press("2")
    await settle(pilot)
    pane = pilot.app.query_one(TemplatesPane)
    assert pane.state is not None
    return pane


def field_input(app: DevorchApp, name: str) -> Input:
    return app.query_one(f"#env-{name}-input", Input)


def field_error(app: DevorchApp, name: str) -> str:
    return str(app.query_one(f"#env-{name} .env-error", Static).render())


async def type_into(pilot: Pilot, name: str, text: str, *, keys: bool = False) -> None:
    """Put ``text`` in a field: as key presses when ``keys``, else as an edit (same Changed path)."""
    widget = field_input(pilot.app, name)
    widget.focus()
    widget.value = ""
    if keys:
        await pilot.pause()
        await pilot.press(*text)
    else:
        widget.value = text
    await pilot.pause()


def init(settings: Settings, template: str = "python") -> Workspace:
    ws = settings.workspace_paths
    templates.init_workspace(ws, template)
    return ws


async def test_fields_show_every_variable_with_docs_and_missing_values(settings: Settings) -> None:
    init(settings)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot)
        names = [field.variable.name for field in pane.editor.fields()]
        for name in ("PYTHON_VERSION", "SSH_PUBLIC_KEY", "GIT_NAME", "GIT_EMAIL", "VM_NAME", "VM_CPUS", "VM_MEMORY", "VM_DISK"):
            assert name in names
        assert field_input(app, "VM_CPUS").value == "2"
        assert "missing" in field_error(app, "GIT_EMAIL")
        options = app.query_one("#template-list", OptionList)
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == ["nodejs", "python"]
        assert "active" in str(options.get_option("python").prompt)
        assert "Active: python" in str(app.query_one("#template-status", Static).render())


async def test_invalid_value_shows_an_inline_message_and_typing_keys_are_not_actions(settings: Settings) -> None:
    ws = init(settings)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot)
        await type_into(pilot, "GIT_EMAIL", "bad@", keys=True)
        assert "is not an email address" in field_error(app, "GIT_EMAIL")
        assert field_input(app, "GIT_EMAIL").has_class("-invalid")
        await type_into(pilot, "VM_MEMORY", "256M")
        assert "below the minimum of 512M" in field_error(app, "VM_MEMORY")
        await type_into(pilot, "VM_NAME", "bad_name")
        assert "not a valid name" in field_error(app, "VM_NAME")
        # Letters bound to pane actions (r, g, c) and number keys are typed, not run.
        await type_into(pilot, "GIT_NAME", "gcr2", keys=True)
        assert field_input(app, "GIT_NAME").value == "gcr2"
        assert app.query_one("#panes").active == "tab-templates"
        assert not ws.rendered.exists()
        await type_into(pilot, "VM_MEMORY", "4G")
        assert field_error(app, "VM_MEMORY") == ""
        assert not field_input(app, "VM_MEMORY").has_class("-invalid")
        # Save refuses invalid values and leaves .env alone.
        before = ws.env_file.read_text()
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert ws.env_file.read_text() == before
        assert pane.editor.dirty


async def test_save_keeps_comments_order_and_unknown_keys_and_is_0600(settings: Settings) -> None:
    ws = init(settings)
    ws.env_file.write_text(ws.env_file.read_text() + "\n# my own notes\nMY_TOOL=keep me\n")
    original = ws.env_file.read_text().splitlines()
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot)
        assert field_input(app, "MY_TOOL").value == "keep me"
        await type_into(pilot, "GIT_NAME", "Ada Lovelace")
        await type_into(pilot, "GIT_EMAIL", "ada@example.com")
        assert pane.editor.dirty
        assert "unsaved" in str(app.query_one("#env-header", Static).render())
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert not pane.editor.dirty
    saved = ws.env_file.read_text().splitlines()
    assert stat.S_IMODE(ws.env_file.stat().st_mode) == 0o600
    assert len(saved) == len(original)
    changed = [index for index, (a, b) in enumerate(zip(original, saved)) if a != b]
    assert [saved[index] for index in changed] == ['GIT_NAME="Ada Lovelace"', "GIT_EMAIL=ada@example.com"]
    assert saved[-2:] == ["# my own notes", "MY_TOOL=keep me"]


async def test_keygen_fills_the_public_key_and_creates_a_0600_private_key(settings: Settings) -> None:
    ws = init(settings)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_pane(pilot)
        app.query_one("#template-list", OptionList).focus()
        await pilot.press("g")
        await settle(pilot)
        private = settings.paths.dedicated_key
        public_text = Path(f"{private}.pub").read_text().strip()
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        assert field_input(app, "SSH_PUBLIC_KEY").value == public_text
        assert field_error(app, "SSH_PUBLIC_KEY") == ""
        await pilot.press("ctrl+s")
        await settle(pilot)
    assert EnvFile.load(ws.env_file).get("SSH_PUBLIC_KEY") == public_text
    assert "PRIVATE" not in ws.env_file.read_text()


async def test_secret_looking_variables_are_password_fields(settings: Settings) -> None:
    ws = init(settings)
    ws.env_file.write_text(ws.env_file.read_text() + "GITHUB_TOKEN=ghp_supersecretvalue\n")
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_pane(pilot)
        assert field_input(app, "GITHUB_TOKEN").password
        assert not field_input(app, "SSH_PUBLIC_KEY").password
        field_input(app, "GITHUB_TOKEN").scroll_visible()
        await pilot.pause()
        assert "ghp_supersecretvalue" not in app.export_screenshot()


async def test_render_writes_cloud_init_and_shows_errors_with_their_line(settings: Settings) -> None:
    ws = init(settings)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot)
        app.query_one("#template-list", OptionList).focus()
        await pilot.press("r")
        await settle(pilot)
        result = str(app.query_one("#render-result", Static).render())
        assert "Render failed" in result and "SSH_PUBLIC_KEY" in result and "line 11" in result
        assert not ws.rendered.exists()
        # Unsaved edits are saved first, then rendered.
        await type_into(pilot, "GIT_NAME", "Ada")
        await type_into(pilot, "GIT_EMAIL", "ada@example.com")
        field_input(app, "SSH_PUBLIC_KEY").value = KEY
        await pilot.press("escape")  # leave the field: letter keys are actions again
        await pilot.press("r")
        await settle(pilot)
        assert "Rendered" in str(app.query_one("#render-result", Static).render())
        assert not pane.editor.dirty
        assert ws.rendered.read_text().startswith("#cloud-config")
        assert stat.S_IMODE(ws.rendered.stat().st_mode) == 0o600
        status = str(app.query_one("#template-status", Static).render())
        assert "Rendered: cloud-init.yaml" in status and "up to date" in status
        await pilot.press("v")
        await settle(pilot)
        assert isinstance(app.screen, RenderedScreen)
        assert KEY in app.screen.query_one("#rendered-text").text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, RenderedScreen)


async def test_copy_asks_before_replacing_and_keeps_unsaved_edits(settings: Settings) -> None:
    ws = init(settings)
    ws.template_file.write_text(ws.template_file.read_text() + "# my edit\n")
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot)
        await type_into(pilot, "GIT_NAME", "Unsaved Name")
        options = app.query_one("#template-list", OptionList)
        options.focus()
        options.highlighted = options.get_option_index("nodejs")
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "cloud-init.j2" in str(app.screen.query_one("#confirm-message", Static).render())
        await pilot.press("enter")  # Cancel has the focus
        await settle(pilot)
        assert "# my edit" in ws.template_file.read_text()
        await pilot.press("c")
        await settle(pilot)
        await pilot.click("#confirm")
        await settle(pilot)
        assert templates.active_template(ws).source == "nodejs"
        assert list((ws.root / templates.BACKUPS_DIR).iterdir())
        assert "nodejs  ● active" in str(options.get_option("nodejs").prompt)
        names = [field.variable.name for field in pane.editor.fields()]
        assert "NODE_MAJOR" in names
        assert field_input(app, "GIT_NAME").value == "Unsaved Name"  # carried over, still unsaved
        assert pane.editor.dirty


async def test_empty_workspace_says_how_to_start_and_copy_creates_the_template(settings: Settings) -> None:
    ws = settings.workspace_paths
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot)
        assert "No template" in str(app.query_one("#template-status", Static).render())
        assert "not created yet" in str(app.query_one("#env-header", Static).render())
        options = app.query_one("#template-list", OptionList)
        options.focus()
        options.highlighted = options.get_option_index("python")
        await pilot.press("enter")
        await settle(pilot)
        assert ws.template_file.is_file()
        assert "PYTHON_VERSION" in [field.variable.name for field in pane.editor.fields()]
        await type_into(pilot, "GIT_NAME", "Ada")
        await pilot.press("ctrl+s")
        await settle(pilot)
    text = ws.env_file.read_text()
    assert text.startswith("# devorch-tui workspace settings")  # created from .env.example, comments included
    assert "GIT_NAME=Ada" in text
    assert stat.S_IMODE(ws.env_file.stat().st_mode) == 0o600


async def test_malformed_env_lines_are_shown_and_kept(settings: Settings) -> None:
    ws = init(settings)
    ws.env_file.write_text(ws.env_file.read_text() + "this line is broken\n")
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_pane(pilot)
        problems = str(app.query_one("#env-problems", Static).render())
        assert "line" in problems and "expected KEY=value" in problems
        await type_into(pilot, "GIT_NAME", "Ada")
        await pilot.press("ctrl+s")
        await settle(pilot)
    assert "this line is broken" in ws.env_file.read_text()
    assert "GIT_NAME=Ada" in ws.env_file.read_text()


async def test_palette_offers_the_pane_actions(settings: Settings) -> None:
    commands = {command.title: command for command in TemplatesPane.palette_commands()}
    assert {"Templates: Copy", "Templates: Render", "Templates: Save .env", "Templates: SSH key", "Templates: View yaml", "Templates: Reload .env"} <= set(commands)
    assert "ed25519" in commands["Templates: SSH key"].help  # the short footer label keeps a full description


async def test_status_says_when_cloud_init_yaml_is_stale(settings: Settings) -> None:
    ws = init(settings)
    env = EnvFile.load(ws.env_file)
    env.update({"GIT_NAME": "Ada", "GIT_EMAIL": "ada@example.com", "SSH_PUBLIC_KEY": KEY})
    env.save()
    templates.render(ws)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot)
        assert "up to date" in str(app.query_one("#template-status", Static).render())
        env.set("GIT_NAME", "Grace")
        env.save()
        pane.reload()
        await settle(pilot)
        status = str(app.query_one("#template-status", Static).render())
        assert "stale" in status and "up to date" not in status


async def test_view_masks_secret_values_a_template_embeds(settings: Settings) -> None:
    ws = init(settings)
    ws.template_file.write_text(ws.template_file.read_text() + "# token: {{ API_TOKEN }}\n")
    env = EnvFile.load(ws.env_file)
    env.update({"GIT_NAME": "Ada", "GIT_EMAIL": "ada@example.com", "SSH_PUBLIC_KEY": KEY, "API_TOKEN": "tok-very-secret"})
    env.save()
    templates.render(ws)
    assert "tok-very-secret" in ws.rendered.read_text()
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_pane(pilot)
        assert field_input(app, "API_TOKEN").password
        await pilot.press("v")
        await settle(pilot)
        assert isinstance(app.screen, RenderedScreen)
        shown = app.screen.query_one("#rendered-text").text
        assert "tok-very-secret" not in shown and "# token: ********" in shown


def fill_env(ws: Workspace, **values: str) -> None:
    """.env with the values a render needs (and ``values``)."""
    env = EnvFile.load(ws.env_file)
    env.update({"GIT_NAME": "Ada", "GIT_EMAIL": "ada@example.com", "SSH_PUBLIC_KEY": KEY, **values})
    env.save()


def status(app: DevorchApp) -> str:
    return str(app.query_one("#template-status", Static).render())


def notices(app: DevorchApp) -> list[str]:
    return [notification.message for notification in app._notifications]


async def test_a_secret_rejected_by_a_template_rule_never_shows(settings: Settings) -> None:
    """The audit's repro: a template.toml rule on DB_PASSWORD rejects the value; no screen shows it."""
    ws = init(settings)
    manifest = ws.templates_dir / "template.toml"
    manifest.write_text(manifest.read_text() + '\n[variables.DB_PASSWORD]\npattern = "[a-z]{4,}"\n')
    ws.template_file.write_text(ws.template_file.read_text() + "# db: {{ DB_PASSWORD }}\n")
    fill_env(ws, DB_PASSWORD="Hunter2-SECRET")
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_pane(pilot)
        assert "must match" in field_error(app, "DB_PASSWORD") or "[a-z]{4,}" in field_error(app, "DB_PASSWORD")
        app.query_one("#template-list", OptionList).focus()
        await pilot.press("r")
        await settle(pilot)
        result = str(app.query_one("#render-result", Static).render())
        assert "Render failed" in result and "DB_PASSWORD" in result
        field_input(app, "DB_PASSWORD").scroll_visible()
        await pilot.pause()
        shown = [field_error(app, "DB_PASSWORD"), result, *notices(app), app.export_screenshot()]
        assert not any("Hunter2" in text for text in shown)


async def test_include_is_refused_with_its_line_and_replaces_the_old_state(settings: Settings) -> None:
    ws = init(settings)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot)
        assert "✖" not in status(app)
        line = len(ws.template_file.read_text().splitlines()) + 1
        ws.template_file.write_text(ws.template_file.read_text() + "{% include 'extra.j2' %}\n")
        pane.reload()
        await wait_until(pilot, lambda: "include" in status(app), "the include error in the status")
        assert "is not supported" in status(app) and f"cloud-init.j2:{line}" in status(app)
        assert not any("Unexpected" in message for message in notices(app))
        app.query_one("#template-list", OptionList).focus()
        await pilot.press("r")
        await settle(pilot)
        result = str(app.query_one("#render-result", Static).render())
        assert "Render failed" in result and "include" in result and "Unexpected" not in result


async def test_a_runaway_template_is_a_message_not_a_hang(settings: Settings) -> None:
    ws = init(settings)
    line = len(ws.template_file.read_text().splitlines()) + 1
    ws.template_file.write_text(ws.template_file.read_text() + "# {{ 'a' * 10**10 }}{{ range(10**9)|list }}\n")
    fill_env(ws)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_pane(pilot)
        app.query_one("#template-list", OptionList).focus()
        await pilot.press("r")
        await wait_until(pilot, lambda: "Render failed" in str(app.query_one("#render-result", Static).render()), "the render error", timeout=30)
        result = str(app.query_one("#render-result", Static).render())
        assert "does too much" in result and f"cloud-init.j2:{line}" in result


async def test_a_syntax_error_keeps_the_fields_and_their_missing_marks(settings: Settings) -> None:
    ws = init(settings)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot)
        good_fields = [field.variable.name for field in pane.editor.fields()]
        ws.template_file.write_text(ws.template_file.read_text() + "{{ broken\n")
        pane.reload()
        await wait_until(pilot, lambda: "syntax error" in status(app), "the syntax error in the status")
        assert "templates/cloud-init.j2:" in status(app)
        assert [field.variable.name for field in pane.editor.fields()] == good_fields
        assert "missing" in field_error(app, "GIT_EMAIL")  # still known to be needed (last good read)
        labels = " ".join(str(label.render()) for label in app.query(".env-name"))
        assert "not used by the template" not in labels
        assert "template has an error" in str(app.query_one("#env-problems", Static).render())


async def test_a_syntax_error_on_the_first_read_falls_back_to_env_example(settings: Settings) -> None:
    ws = init(settings)
    ws.template_file.write_text("#cloud-config\n{% if %}\n")
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_pane(pilot)
        assert "syntax error" in status(app) and ":2" in status(app)
        assert "missing" in field_error(app, "GIT_NAME")
        assert "missing" not in field_error(app, "VM_CPUS")
        labels = " ".join(str(label.render()) for label in app.query(".env-name"))
        assert "not used by the template" not in labels


async def test_empty_values_are_missing_not_wrong_and_a_draft_saves(settings: Settings) -> None:
    ws = init(settings)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot)
        await type_into(pilot, "VM_DISK", "")
        assert "not a size" not in field_error(app, "VM_DISK") and "default" in field_error(app, "VM_DISK")
        assert not field_input(app, "VM_DISK").has_class("-invalid")
        assert "missing: needed to render" in field_error(app, "GIT_EMAIL")
        assert field_input(app, "GIT_EMAIL").has_class("-missing") and not field_input(app, "GIT_EMAIL").has_class("-invalid")
        await type_into(pilot, "VM_NAME", "")
        assert "missing: needed to build the golden image" in field_error(app, "VM_NAME")
        await type_into(pilot, "GIT_NAME", "Ada")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not pane.editor.dirty, "the draft is saved")
        saved = next(message for message in notices(app) if message.startswith("Saved"))
        assert "Still missing: GIT_EMAIL (needed to render)" in saved and "VM_NAME" in saved and "VM_DISK" not in saved
        values = EnvFile.load(ws.env_file).as_dict()
        assert values["GIT_NAME"] == "Ada" and values["VM_DISK"] == ""
        # A wrong (non-empty) value still blocks saving.
        await type_into(pilot, "VM_DISK", "lots")
        assert "not a size" in field_error(app, "VM_DISK")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any(message.startswith("Not saved") for message in notices(app)), "the refusal")
        assert EnvFile.load(ws.env_file).get("VM_DISK") == ""


async def test_ctrl_s_in_an_empty_folder_writes_no_empty_env(settings: Settings) -> None:
    ws = settings.workspace_paths
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_pane(pilot)
        header = str(app.query_one("#env-header", Static).render())
        assert "not created yet: copy a template first (c)" in header and "saved" not in header
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any("Nothing to save" in message for message in notices(app)), "the warning")
        assert not ws.env_file.exists()


async def test_quit_asks_when_env_edits_are_unsaved(settings: Settings) -> None:
    init(settings)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot)
        assert pane.unfinished_work() is None
        await type_into(pilot, "GIT_NAME", "Unsaved Name")
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit question")
        assert "unsaved .env edits (GIT_NAME)" in str(app.screen.query_one("#confirm-message", Static).render())
        await pilot.press("enter")  # Cancel has the focus
        await wait_until(pilot, lambda: not isinstance(app.screen, QuitScreen), "the question closes")
        assert app.is_running and field_input(app, "GIT_NAME").value == "Unsaved Name" and pane.editor.dirty
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit question again")
        await pilot.click("#confirm")  # Quit anyway
        await wait_until(pilot, lambda: not app.is_running, "the app quits")


async def test_copying_another_template_clears_the_old_render_result(settings: Settings) -> None:
    ws = init(settings)
    fill_env(ws)
    app = DevorchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_pane(pilot)
        options = app.query_one("#template-list", OptionList)
        options.focus()
        await pilot.press("r")
        await wait_until(pilot, lambda: "Rendered" in str(app.query_one("#render-result", Static).render()), "the render")
        options.highlighted = options.get_option_index("nodejs")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the copy question")
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: "stale" in status(app), "the stale status")
        assert "Rendered" not in str(app.query_one("#render-result", Static).render())


async def test_usable_at_80x24(settings: Settings) -> None:
    """The smallest common terminal: the editor's fields are wide enough, the status is readable."""
    init(settings)
    app = DevorchApp(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await open_pane(pilot)
        assert pane.has_class("-narrow")
        assert field_input(app, "GIT_NAME").region.width >= 44
        left = app.query_one("#templates-left")
        assert 26 <= left.region.width <= 30
        status_widget = app.query_one("#template-status", Static)
        assert "Active: python" in status(app) and "Rendered: not yet" in status(app)
        # Fully on screen, above the footer, not cut by the list above it.
        assert status_widget.region.height >= 3 and status_widget.region.bottom <= app.size.height - 1
        assert app.query_one("#templates-info").region.contains_region(status_widget.region)
        footer = " ".join(str(item.render()) for item in app.screen.query("FooterKey"))
        for label in ("Copy", "Render", "Save .env", "SSH key", "View yaml"):
            assert label in footer
    async with DevorchApp(settings).run_test(size=(160, 45)) as pilot:
        pane = await open_pane(pilot)
        assert not pane.has_class("-narrow") and pilot.app.query_one("#templates-left").region.width == 44

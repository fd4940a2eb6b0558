"""Templates & .env pane: pick an example template, copy it into templates/, edit .env, render.

Left: the example templates (which one is active, whether it was edited), the state of the
workspace and the outcome of the last render (or its error, with the line). Right: the .env editor,
one field per variable with inline validation. Every file operation runs in a worker through the
services (``services.templates``, ``services.envfile``, ``services.sshkeys``); nothing unsaved is
dropped when the form reloads.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from devorch_tui.config import Workspace
from devorch_tui.errors import DevorchError
from devorch_tui.services import envfile, sshkeys, templates
from devorch_tui.services.envfile import EnvProblem
from devorch_tui.services.secrets import Redactor
from devorch_tui.services.templates import ActiveTemplate, RenderResult, Template, TemplateError, Variable
from devorch_tui.ui.jobs import report_error, run_job
from devorch_tui.ui.panes.base import Pane, PaneCommand
from devorch_tui.ui.screens.confirm import ConfirmScreen
from devorch_tui.ui.screens.template_render import RenderedScreen
from devorch_tui.ui.widgets.env_editor import EnvEditor


NARROW_WIDTH = 110  # below this the template descriptions take one line each


@dataclass
class WorkspaceState:
    """Everything the pane shows, read from disk in one worker."""

    catalog: list[Template]
    active: ActiveTemplate
    variables: list[Variable]
    env_exists: bool
    env_problems: list[EnvProblem] = field(default_factory=list)
    template_error: TemplateError | None = None
    used: dict[str, tuple[int, ...]] | None = None  # the template's variables; None when it could not be read
    rendered_at: datetime | None = None
    rendered_current: bool | None = None  # cloud-init.yaml matches what templates/ and .env render now


def gather(workspace: Workspace, last_used: dict[str, tuple[int, ...]] | None = None) -> WorkspaceState:
    """Read the workspace (blocking; run it in a thread). A broken template is part of the state, not a
    failure: its error is kept and the variables come from ``last_used`` (the last good read)."""
    catalog = templates.catalog()
    template_error = None
    try:
        active = templates.active_template(workspace)
    except TemplateError as exc:  # templates/template.toml cannot be read
        template_error = exc
        active = ActiveTemplate(Template(name="custom", description="", path=workspace.templates_dir), None, True)
    used = None
    if active.template is not None and template_error is None:
        try:
            source = workspace.template_file.read_text(encoding="utf-8")
            used = templates.template_variables(source, f"templates/{templates.TEMPLATE_FILE}")
        except TemplateError as exc:
            template_error = exc
        except (OSError, UnicodeDecodeError) as exc:
            template_error = TemplateError(f"cannot read {workspace.template_file}: {exc}", path=workspace.template_file)
    env = envfile.EnvFile.load(workspace.env_file, strict=False)
    rendered_at = datetime.fromtimestamp(workspace.rendered.stat().st_mtime) if workspace.rendered.is_file() else None
    rendered_current = None
    if rendered_at is not None:
        try:
            fresh = templates.render(workspace, write=False)
            rendered_current = fresh.sha256 == templates.rendered_hash(workspace.rendered.read_text(encoding="utf-8"))
        except Exception:  # noqa: BLE001 - whatever stops a render today makes the file on disk stale
            rendered_current = False
    return WorkspaceState(
        catalog=catalog,
        active=active,
        variables=templates.variables(workspace, strict=False, fallback_used=last_used),
        env_exists=workspace.env_file.is_file(),
        env_problems=env.problems,
        template_error=template_error,
        used=used,
        rendered_at=rendered_at,
        rendered_current=rendered_current,
    )


class TemplatesPane(Pane):
    PANE_ID = "templates"
    PANE_TITLE = "Templates"
    PANE_KEY = "2"

    BINDINGS = [
        Binding("c", "copy", "Copy", id="templates.copy", tooltip="Copy the highlighted example into templates/ (asks before replacing)"),
        Binding("r", "render", "Render", id="templates.render", tooltip="Save .env edits and render templates/cloud-init.j2 into cloud-init.yaml"),
        Binding("ctrl+s", "save", "Save .env", id="templates.save", tooltip="Write .env atomically (0600), keeping comments and order"),
        Binding("g", "keygen", "SSH key", id="templates.keygen", tooltip="Create the dedicated ed25519 key for VMs and fill SSH_PUBLIC_KEY"),
        Binding("v", "view", "View yaml", id="templates.view", tooltip="Show the rendered cloud-init.yaml (secrets masked)"),
        Binding("escape", "focus_list", "Template list", id="templates.focus_list", show=False),
    ]
    EXTRA_COMMANDS = (PaneCommand("Templates: Reload .env", "Read templates/ and .env from disk again (asks when there are unsaved edits)", "reload"),)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state: WorkspaceState | None = None
        self.last_render: RenderResult | None = None
        self.last_error: DevorchError | None = None
        self.last_used: dict[str, tuple[int, ...]] | None = None
        """The template's variables at the last good read: the fields while the template has an error."""

    @property
    def workspace(self) -> Workspace:
        return self.devorch.workspace

    @property
    def editor(self) -> EnvEditor:
        return self.query_one("#env-editor", EnvEditor)

    def compose(self) -> ComposeResult:
        with Horizontal(id="templates-body"):
            with Vertical(id="templates-left"):
                yield Label("Example templates", classes="templates-heading")
                yield OptionList(id="template-list")
                with VerticalScroll(id="templates-info"):  # a long render error scrolls, the list stays
                    yield Static("", id="template-status")
                    yield Static("", id="render-result")
            with Vertical(id="env-side"):
                yield Static("", id="env-header")
                yield Static("", id="env-problems")
                yield EnvEditor(id="env-editor")

    def on_mount(self) -> None:
        self.reload()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW_WIDTH, "-narrow")

    def on_pane_shown(self) -> None:
        if self.state is not None and not self.editor.dirty:
            self.reload()
        self.query_one("#template-list", OptionList).focus()

    # ------------------------------------------------------------------ loading

    def reload(self, keep_edits: bool = True) -> None:
        """Read templates/ and .env again; unsaved values typed in the form are carried over."""
        edits = self.editor.changed_values() if keep_edits and self.state is not None else {}
        workspace, last_used = self.workspace, self.last_used

        async def done(state: WorkspaceState) -> None:
            await self.show_state(state, edits)

        def failed(exc: BaseException) -> None:
            # What is shown is no longer what is on disk: say so instead of leaving it as if current.
            text = Text("✖ Could not read the workspace\n", style="bold red")
            text.append(exc.describe() if isinstance(exc, DevorchError) else f"{type(exc).__name__}: {exc}", style="red")
            text.append("\nThe form shows the last read; fix the problem, then Reload .env (ctrl+p).", style="dim")
            self.query_one("#template-status", Static).update(text)
            self.query_one("#render-result", Static).update("")

        run_job(
            self,
            lambda: asyncio.to_thread(gather, workspace, last_used),
            title="Templates",
            on_done=lambda state: self.call_next(done, state),
            on_error=failed,
            group="templates-load",
            exclusive=True,
        )

    async def show_state(self, state: WorkspaceState, edits: dict[str, str] | None = None) -> None:
        self.state = state
        if state.used is not None or state.active.template is None:
            self.last_used = state.used
        if state.rendered_current is not True and self.last_render is not None:
            # A success shown from before no longer describes cloud-init.yaml: the status says stale.
            self.last_render = None
            self.query_one("#render-result", Static).update("")
        self._fill_list(state)
        await self.editor.load(state.variables, state.active.template)
        for name, value in (edits or {}).items():
            if name in self.editor.saved:
                self.editor.set_value(name, value)
        self._show_status()
        self._show_header()
        self._show_problems()

    def _fill_list(self, state: WorkspaceState) -> None:
        option_list = self.query_one("#template-list", OptionList)
        highlighted = option_list.highlighted_option.id if option_list.highlighted_option else None
        options = []
        for template in state.catalog:
            prompt = Text(template.name, style="bold")
            if state.active.source == template.name:
                prompt.append("  ● active" + (" (edited)" if state.active.modified else ""), style="green")
            prompt.append("\n")
            prompt.append(template.description, style="dim")
            options.append(Option(prompt, id=template.name))
        option_list.set_options(options)
        wanted = highlighted or state.active.source or (state.catalog[0].name if state.catalog else None)
        if wanted is not None:
            try:
                option_list.highlighted = option_list.get_option_index(wanted)
            except Exception:  # noqa: BLE001 - the option vanished: keep the default highlight
                pass

    def _show_status(self) -> None:
        state = self.state
        if state is None:
            return
        text = Text()
        active = state.active
        if active.template is None:
            text.append("No template in templates/.\n", style="bold yellow")
            text.append("Highlight one above and press c to copy it.", style="yellow")
        else:
            text.append("Active: ", style="bold")
            text.append(active.template.name)
            if active.source is None:
                text.append(" (custom)", style="dim")
            elif active.source != active.template.name:
                text.append(f" (from {active.source})", style="dim")
            if active.modified:
                text.append(" edited", style="yellow")
            text.append("\nRendered: ", style="bold")
            if state.rendered_at is None:
                text.append("not yet (press r)", style="yellow")
            else:
                text.append(f"cloud-init.yaml, {state.rendered_at:%Y-%m-%d %H:%M}")
                if state.rendered_current:
                    text.append(" ✔ up to date", style="green")
                else:
                    text.append("\n▲ stale: templates/ or .env changed since (press r)", style="yellow")
        if state.template_error is not None:
            text.append(f"\n✖ {state.template_error.message}", style="bold red")
            if state.template_error.hint:
                text.append(f"\nFix: {state.template_error.hint}", style="red")
        self.query_one("#template-status", Static).update(text)

    def _show_header(self) -> None:
        state = self.state
        text = Text(".env", style="bold")
        if state is not None and not state.env_exists:
            if state.active.template is not None:
                text.append("  not created yet: ctrl+s creates it from .env.example", style="yellow")
            else:
                text.append("  not created yet: copy a template first (c)", style="yellow")
        if self.editor.dirty:
            text.append("  ● unsaved (ctrl+s)", style="bold yellow")
        elif state is not None and state.env_exists:
            text.append("  saved", style="dim")
        text.append("  · g SSH key · r render", style="dim")
        self.query_one("#env-header", Static).update(text)

    def _show_problems(self) -> None:
        widget = self.query_one("#env-problems", Static)
        state = self.state
        text = Text()
        if state is not None and state.template_error is not None and state.active.template is not None:
            source = "the last good read of the template" if self.last_used is not None else ".env.example"
            text.append(f"▲ The template has an error (see the left): the fields follow {source}.\n", style="yellow")
        for problem in state.env_problems if state else []:
            text.append(f"▲ .env line {problem.lineno}: {problem.message} (kept as it is when saving)\n", style="yellow")
        widget.update(text)
        widget.display = bool(text)

    def on_env_editor_changed(self, event: EnvEditor.Changed) -> None:
        event.stop()
        self._show_header()

    # ------------------------------------------------------------------ actions

    def _highlighted_template(self) -> str | None:
        option = self.query_one("#template-list", OptionList).highlighted_option
        return option.id if option is not None else None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_copy()

    def action_copy(self) -> None:
        name = self._highlighted_template()
        if name is None:
            self.notify("There is no template to copy.", title="Copy template", severity="warning")
            return
        workspace = self.workspace

        def planned(plan: templates.CopyPlan) -> None:
            if not plan.changed:
                self.notify(f"templates/ already holds {name!r}.", title="Copy template")
                return
            if not plan.replaced:
                self._copy_template(name, force=False)
                return
            if plan.edited:
                message = (
                    f"templates/ has edits in {', '.join(plan.edited)}.\n\n"
                    f"Copying {name!r} replaces them. The current files are first saved in "
                    f"{templates.BACKUPS_DIR}/ in the workspace."
                )
            else:
                message = (
                    f"Copying {name!r} replaces {', '.join(plan.replaced)} in templates/ "
                    f"(unedited; a backup goes to {templates.BACKUPS_DIR}/). Your .env is kept."
                )
            self.app.push_screen(
                ConfirmScreen(f"Copy template {name!r}", message, confirm_label="Replace", destructive=bool(plan.edited)),
                lambda confirmed: self._copy_template(name, force=True) if confirmed else self.notify("Nothing was copied.", title="Copy template"),
            )

        run_job(self, lambda: asyncio.to_thread(templates.copy_plan, name, workspace), title="Copy template", on_done=planned)

    def _copy_template(self, name: str, *, force: bool) -> None:
        workspace = self.workspace

        def done(result: templates.CopyResult) -> None:
            note = f"\nPrevious files kept in {result.backup}" if result.backup else ""
            self.notify(f"templates/ now holds {name!r}.{note}", title="Copy template", markup=False)
            self.last_render, self.last_error, self.last_used = None, None, None  # they were about the other template
            self.query_one("#render-result", Static).update("")
            self.reload()

        run_job(self, lambda: asyncio.to_thread(templates.copy_template, name, workspace, force=force), title="Copy template", on_done=done)

    def action_save(self, then_render: bool = False) -> None:
        """Save the form: wrong values block it; missing ones are allowed (a draft) and listed."""
        editor = self.editor
        if self.state is None:
            return
        errors = editor.errors()
        if errors:
            listed = "\n".join(f"{error.field}: {error.reason}" for error in errors)
            self.notify(f"Not saved; fix these first:\n{listed}", title="Save .env", severity="error", timeout=10, markup=False)
            return
        workspace = self.workspace
        if not editor.dirty:
            if self.state.env_exists:
                if then_render:
                    self._render_template()
                else:
                    self.notify(".env has no unsaved changes.", title="Save .env")
                return
            if self.state.active.template is None:
                self.notify(
                    "Nothing to save yet: .env would be empty. Copy a template first (c), or type a value.",
                    title="Save .env",
                    severity="warning",
                )
                return
        values = editor.values()
        created = not self.state.env_exists
        origin = " from templates/.env.example" if self.state.active.template is not None else ""

        def done(_: object) -> None:
            editor.mark_saved()
            if self.state is not None:
                self.state.env_exists = True
            self._show_header()
            missing = editor.missing()
            what = f"Created {workspace.env_file.name}{origin}" if created else f"Saved {workspace.env_file.name}"
            note = "".join(f"\nStill missing: {name} ({why})" for name, why in missing.items())
            self.notify(f"{what} (mode 0600).{note}", title="Save .env", severity="warning" if missing else "information", markup=False)
            if then_render:
                self._render_template()

        run_job(
            self,
            lambda: asyncio.to_thread(envfile.save_values, workspace.env_file, values, example_file=workspace.env_example),
            title="Save .env",
            on_done=done,
            group="templates-save",
            exclusive=True,
        )

    def action_render(self) -> None:
        """Render what the form shows: unsaved edits are saved first."""
        if self.editor.dirty:
            self.action_save(then_render=True)
        else:
            self._render_template()

    def _render_template(self) -> None:
        if self.state is not None and self.state.active.template is None:
            self.notify("There is no template to render yet: highlight one on the left and press c to copy it.", title="Render", severity="warning")
            return
        workspace = self.workspace

        def done(result: RenderResult) -> None:
            self.last_render, self.last_error = result, None
            text = Text("✔ Rendered ", style="bold green")
            text.append(f"cloud-init.yaml ({'updated' if result.changed else 'unchanged'}, {len(result.text.splitlines())} lines)\n")
            text.append(f"sha256 {result.sha256[:16]}…  v shows it", style="dim")
            self.query_one("#render-result", Static).update(text)
            self.notify("cloud-init.yaml is written (mode 0600).", title="Render")
            self.reload()

        def failed(exc: BaseException) -> None:
            self.last_render = None
            self.last_error = exc if isinstance(exc, DevorchError) else None
            text = Text("✖ Render failed\n", style="bold red")
            text.append(exc.message if isinstance(exc, DevorchError) else str(exc), style="red")
            if isinstance(exc, TemplateError) and exc.line:
                text.append(f"\n(line {exc.line})", style="bold red")
            if isinstance(exc, DevorchError) and exc.hint:
                text.append(f"\nFix: {exc.hint}")
            self.query_one("#render-result", Static).update(text)

        run_job(self, lambda: asyncio.to_thread(templates.render, workspace), title="Render", on_done=done, on_error=failed, group="templates-render", exclusive=True)

    def action_view(self) -> None:
        rendered = self.workspace.rendered

        workspace = self.workspace

        def read() -> str:
            try:
                text = rendered.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise DevorchError("cloud-init.yaml is not rendered yet", hint="press r to render it") from None
            # Secret-looking .env values a template may embed (tokens, passwords) are masked on screen.
            values = envfile.EnvFile.load(workspace.env_example, strict=False).as_dict()
            values.update(envfile.EnvFile.load(workspace.env_file, strict=False).as_dict())
            return Redactor.from_env(values).redact(text)

        def show(text: str) -> None:
            summary = f"{rendered}  ·  holds your email and key: kept 0600"
            self.app.push_screen(RenderedScreen("cloud-init.yaml", summary, text))

        run_job(self, lambda: asyncio.to_thread(read), title="View cloud-init.yaml", on_done=show)

    def action_keygen(self) -> None:
        private = self.devorch.settings.paths.dedicated_key
        existed = private.exists()

        def done(pair: sshkeys.KeyPair) -> None:
            try:
                self.editor.set_value("SSH_PUBLIC_KEY", pair.public_text)
            except Exception:  # noqa: BLE001 - no such field (no template and no .env yet)
                report_error(self, "SSH key", DevorchError("there is no SSH_PUBLIC_KEY field to fill", hint="copy a template first (c)"))
                return
            what = "Using the existing" if existed else "Created the"
            self.notify(f"{what} dedicated key {pair.public}; SSH_PUBLIC_KEY is filled in (ctrl+s saves).", title="SSH key", markup=False)

        run_job(self, lambda: sshkeys.generate_keypair(private), title="SSH key", on_done=done, group="templates-keygen", exclusive=True)

    def unfinished_work(self) -> str | None:
        if self.state is None:
            return None
        changed = list(self.editor.changed_values())
        if not changed:
            return None
        shown = ", ".join(changed[:3]) + (", …" if len(changed) > 3 else "")
        return f"unsaved .env edits ({shown})"

    def action_focus_list(self) -> None:
        self.query_one("#template-list", OptionList).focus()

    def action_reload(self) -> None:
        if not self.editor.dirty:
            self.reload(keep_edits=False)
            return
        self.app.push_screen(
            ConfirmScreen("Reload .env", "Drop the unsaved edits in the form and read .env from disk again?", confirm_label="Reload"),
            lambda confirmed: self.reload(keep_edits=False) if confirmed else None,
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a field moves to the next one (Tab works too)."""
        event.stop()
        self.screen.focus_next()

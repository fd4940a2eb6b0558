"""The .env editor: one Input per variable with its documentation and an inline validation message.

The widget only edits values in memory; loading and saving are the Templates pane's job (services do
the file work). Rules come from ``services.templates`` (the one rule book): ``check_value`` says when a
value is wrong (red, blocks saving), ``needed_for`` when an empty one is missing (yellow, a draft may be
saved with it). Secret-looking variables are password Inputs, so their values never show on screen.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Static

from devorch_tui.errors import ValidationError
from devorch_tui.services import templates
from devorch_tui.services.templates import Template, Variable


def field_id(name: str) -> str:
    return f"env-{name}"


class EnvField(Vertical):
    """A variable: name (and where it is used), its description, the Input, the validation message."""

    DEFAULT_CLASSES = "env-field"

    def __init__(self, variable: Variable, template: Template | None) -> None:
        super().__init__(id=field_id(variable.name))
        self.variable = variable
        self.template = template
        self.error: ValidationError | None = None
        self.missing: str | None = None
        """What the empty value is needed for (None when it has a value or may stay empty)."""

    def compose(self) -> ComposeResult:
        variable = self.variable
        title = Text(variable.name, style="bold")
        if variable.used and variable.lines:
            shown = ", ".join(map(str, variable.lines[:4])) + (" …" if len(variable.lines) > 4 else "")
            title.append(f"  used at line{'s' if len(variable.lines) > 1 else ''} {shown}", style="dim")
        elif variable.name in templates.LAUNCH_VARIABLES:
            title.append("  for multipass launch", style="dim")
        elif self.template is not None and variable.usage_known and not variable.used:
            title.append("  not used by the template", style="dim italic")
        if variable.source == ".env.example":
            title.append("  (default from .env.example)", style="dim")
        yield Label(title, classes="env-name")
        if variable.description:
            yield Static(Text(variable.description), classes="env-help")
        yield Input(
            value=variable.value or "",
            password=variable.secret,
            placeholder="(empty)",
            id=f"{field_id(variable.name)}-input",
            classes="env-input",
            select_on_focus=False,
            compact=True,
        )
        yield Static("", classes="env-error")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def value(self) -> str:
        return self.input.value

    def on_mount(self) -> None:
        self.check()

    def check(self) -> ValidationError | None:
        """Validate the current value and show the outcome: a wrong value in red (returned), a missing
        one in yellow (``self.missing`` says what it is needed for), nothing for a fine one."""
        value = self.input.value
        self.error = templates.check_value(self.variable.name, value, self.template)
        self.missing = self.variable.needed_for if not value.strip() else None
        message = self.query_one(".env-error", Static)
        text = Text()
        if self.error is not None:
            text.append(f"✖ {self.error.reason}", style="bold red")
            if self.error.hint:
                text.append(f"  {self.error.hint}", style="red")
        elif self.missing is not None:
            text.append(f"▲ missing: {self.missing}", style="bold yellow")
            if self.variable.name == "SSH_PUBLIC_KEY":
                text.append(" (g makes one)", style="yellow")
        elif not value.strip() and self.variable.name in templates.LAUNCH_VARIABLES:
            text.append("empty: multipass's default", style="dim")
        message.update(text)
        message.display = bool(text)
        self.input.set_class(self.error is not None, "-invalid")
        self.input.set_class(self.missing is not None, "-missing")
        self.set_class(self.error is not None, "-has-error")
        return self.error


class EnvEditor(VerticalScroll):
    """Every variable of the workspace as an EnvField; posts Changed when a value is edited."""

    can_focus = False  # Tab goes from field to field; a focused field scrolls itself into view

    class Changed(Message):
        def __init__(self, editor: EnvEditor, variable: str) -> None:
            super().__init__()
            self.editor = editor
            self.variable = variable

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.saved: dict[str, str] = {}
        """The values as last loaded or saved; ``dirty`` compares against them."""
        self.template: Template | None = None

    async def load(self, variables: list[Variable], template: Template | None) -> None:
        """Replace the fields with ``variables`` (values as loaded count as saved)."""
        self.template = template
        self.saved = {variable.name: variable.value or "" for variable in variables}
        with self.app.batch_update():
            await self.remove_children()
            await self.mount_all(EnvField(variable, template) for variable in variables)

    def fields(self) -> list[EnvField]:
        return list(self.query(EnvField))

    def field(self, name: str) -> EnvField:
        return self.query_one(f"#{field_id(name)}", EnvField)

    def values(self) -> dict[str, str]:
        return {field.variable.name: field.value for field in self.fields()}

    def changed_values(self) -> dict[str, str]:
        return {name: value for name, value in self.values().items() if self.saved.get(name, "") != value}

    @property
    def dirty(self) -> bool:
        return bool(self.changed_values())

    def set_value(self, name: str, value: str) -> None:
        self.field(name).input.value = value

    def mark_saved(self) -> None:
        self.saved = self.values()

    def errors(self) -> list[ValidationError]:
        """Wrong values of the fields as they are now (each field re-checked); missing ones are not errors."""
        return [error for field in self.fields() if (error := field.check()) is not None]

    def missing(self) -> dict[str, str]:
        """Empty fields that are needed, with what for (as last checked)."""
        return {field.variable.name: field.missing for field in self.fields() if field.missing is not None}

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        for field in self.fields():
            if field.input is event.input:
                field.check()
                self.post_message(self.Changed(self, field.variable.name))
                break

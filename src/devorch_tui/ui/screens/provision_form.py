"""The provision form: project name, repository, branch, sizes, setup tasks; validated before anything is made."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, Static

from devorch_tui.errors import DevorchError, ValidationError
from devorch_tui.services.provision import ProvisionRequest, project_vm_name
from devorch_tui.ui.screens.form import FormScreen


class ProvisionForm(FormScreen[ProvisionRequest]):
    """Dismisses with a checked ProvisionRequest, or None on Cancel / Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="provision_form.cancel")]
    SUBMIT_BUTTON = "provision"

    FIELDS: tuple[tuple[str, str, str], ...] = (
        ("name", "Project", "my-project (the VM is dev-my-project)"),
        ("repo", "Repository", "https://github.com/you/project.git"),
        ("branch", "Branch", "empty for the default branch"),
        ("cpus", "CPUs", "empty: as the golden image"),
        ("memory", "Memory", "e.g. 8G; empty: as the golden image"),
        ("disk", "Disk", "e.g. 40G; empty: as the golden image"),
        ("tasks", "Setup tasks", "path to a tasks JSON file, empty for none"),
    )

    def __init__(self, existing: set[str] | None = None, *, refuse: Callable[[str], str | None] | None = None) -> None:
        """``existing``: VM names taken; ``refuse(vm)``: why ``vm`` cannot be provisioned now (e.g. its
        provision runs already), or None."""
        super().__init__()
        self._existing = existing or set()
        self._refuse = refuse or (lambda _vm: None)

    def compose(self) -> ComposeResult:
        with Vertical(id="provision-dialog", classes="dialog form-dialog"):
            yield Label("Provision a project VM from the golden image", classes="dialog-title")
            for key, label, placeholder in self.FIELDS:
                with Horizontal(classes="form-row"):
                    yield Label(label, classes="form-label")
                    yield Input(placeholder=placeholder, id=f"provision-{key}", classes="form-input")
            yield Checkbox("Forward my SSH agent (needed for git@ / ssh:// repositories)", id="provision-forward-agent")
            yield Static("", id="provision-error", classes="field-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Provision", id="provision", variant="success")

    def on_mount(self) -> None:
        self.query_one("#provision-name", Input).focus()

    def _value(self, key: str) -> str:
        return self.query_one(f"#provision-{key}", Input).value.strip()

    def request(self) -> ProvisionRequest:
        """The request the fields describe, checked by the same code as `devorch-tui provision`."""
        name = self._value("name")
        if not name:
            raise ValidationError("project", "a project name is required", hint="e.g. my-project: the VM will be dev-my-project")
        if refusal := self._refuse(project_vm_name(name)):
            raise ValidationError("project", refusal)
        if project_vm_name(name) in self._existing:
            raise ValidationError(
                "project", f"a VM named {project_vm_name(name)} already exists", hint="pick another name, or tear that one down first"
            )
        if not self._value("repo"):
            raise ValidationError("repository", "a repository URL is required", hint="e.g. https://github.com/you/project.git")
        tasks = self._value("tasks")
        request = ProvisionRequest(
            name=name,
            repo_url=self._value("repo"),
            branch=self._value("branch") or None,
            cpus=self._value("cpus") or None,
            memory=self._value("memory") or None,
            disk=self._value("disk") or None,
            tasks_file=Path(tasks).expanduser() if tasks else None,
            forward_agent=self.query_one("#provision-forward-agent", Checkbox).value,
        )
        request.checked()
        return request

    def submit(self) -> None:
        error = self.query_one("#provision-error", Static)
        try:
            request = self.request()
        except DevorchError as exc:
            error.update(exc.describe())
            error.add_class("visible")
            return
        self.dismiss(request)

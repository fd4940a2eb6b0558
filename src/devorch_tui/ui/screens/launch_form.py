"""The launch form: name, image, CPUs, memory, disk and a cloud-init file, validated before launch."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from devorch_tui.errors import ValidationError
from devorch_tui.services.validation import validate_cpus, validate_disk, validate_memory, validate_vm_name
from devorch_tui.ui.screens.form import FormScreen


@dataclass(frozen=True)
class LaunchRequest:
    name: str
    image: str
    cpus: int
    memory: str
    disk: str
    cloud_init: Path | None


@dataclass(frozen=True)
class LaunchDefaults:
    name: str = ""
    image: str = "22.04"
    cpus: str = "2"
    memory: str = "4G"
    disk: str = "20G"
    cloud_init: str = ""


def _check_image(value: str) -> str:
    value = value.strip()
    if not value or any(char.isspace() for char in value):
        raise ValidationError("image", f"{value!r} is not an image name", hint="use a release like 22.04 or 24.04, or a codename like noble")
    return value


def _check_cloud_init(value: str) -> Path | None:
    value = value.strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValidationError(
            "cloud-init file",
            f"{path} does not exist",
            hint="render it in the Templates pane (or `devorch-tui templates render`), or clear the field to launch without it",
        )
    return path


class LaunchForm(FormScreen[LaunchRequest]):
    """Dismisses with a validated LaunchRequest, or None on Cancel / Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="launch_form.cancel")]
    SUBMIT_BUTTON = "launch"

    FIELDS: tuple[tuple[str, str, str], ...] = (
        ("name", "Name", "letters, digits, hyphens; e.g. dev-1"),
        ("image", "Image", "22.04, 24.04, noble, ..."),
        ("cpus", "CPUs", "2"),
        ("memory", "Memory", "4G (at least 512M)"),
        ("disk", "Disk", "20G (at least 1G)"),
        ("cloud_init", "Cloud-init file", "path to cloud-init.yaml, empty for none"),
    )

    def __init__(self, defaults: LaunchDefaults, existing: Collection[str] = ()) -> None:
        super().__init__()
        self._defaults = defaults
        self._existing = set(existing)

    def compose(self) -> ComposeResult:
        with Vertical(id="launch-dialog", classes="dialog form-dialog"):
            yield Label("Launch a VM", classes="dialog-title")
            for key, label, placeholder in self.FIELDS:
                with Horizontal(classes="form-row"):
                    yield Label(label, classes="form-label")
                    yield Input(str(getattr(self._defaults, key)), placeholder=placeholder, id=f"launch-{key}", classes="form-input")
                yield Static("", id=f"launch-{key}-error", classes="field-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Launch", id="launch", variant="success")

    def on_mount(self) -> None:
        self.query_one("#launch-name", Input).focus()

    def _value(self, key: str) -> str:
        return self.query_one(f"#launch-{key}", Input).value

    def _validated(self) -> LaunchRequest | None:
        checks: dict[str, Callable[[str], object]] = {
            "name": self._check_name,
            "image": _check_image,
            "cpus": lambda value: validate_cpus(value, field="CPUs"),
            "memory": lambda value: validate_memory(value, field="memory"),
            "disk": lambda value: validate_disk(value, field="disk"),
            "cloud_init": _check_cloud_init,
        }
        values: dict[str, object] = {}
        first_bad: str | None = None
        for key, check in checks.items():
            error = self.query_one(f"#launch-{key}-error", Static)
            try:
                values[key] = check(self._value(key))
            except ValidationError as exc:
                error.update(exc.describe())
                error.add_class("visible")
                first_bad = first_bad or key
            else:
                error.update("")
                error.remove_class("visible")
        if first_bad is not None:
            self.query_one(f"#launch-{first_bad}", Input).focus()
            return None
        return LaunchRequest(**values)  # type: ignore[arg-type]

    def _check_name(self, value: str) -> str:
        name = validate_vm_name(value, field="name")
        if name in self._existing:
            raise ValidationError("name", f"a VM named {name} already exists", hint="pick another name, or delete and purge the old VM first")
        return name

    def submit(self) -> None:
        request = self._validated()
        if request is not None:
            self.dismiss(request)

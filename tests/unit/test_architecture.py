"""The layering rules of DESIGN.md, checked."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import devorch_tui

PACKAGE = Path(devorch_tui.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_services_never_import_textual() -> None:
    service_files = sorted((PACKAGE / "services").rglob("*.py"))
    assert len(service_files) >= 5, "the services package was not found"
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(name for name in imported_modules(path) if name.split(".")[0] in {"textual", "devorch_tui.ui"} or name.startswith("devorch_tui.ui"))
        for path in service_files
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_importing_every_service_loads_no_textual() -> None:
    modules = sorted(f"devorch_tui.services.{path.stem}" for path in (PACKAGE / "services").glob("*.py") if path.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_headless_commands_do_not_import_textual_or_asyncssh() -> None:
    """`devorch-tui check` etc. must start fast: the CLI parser loads neither the UI nor asyncssh."""
    code = (
        "import sys\n"
        "from devorch_tui.cli import build_parser\n"
        "build_parser()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'asyncssh'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

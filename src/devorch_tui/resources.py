"""Find data shipped with the package (styles/, template-examples/).

In a wheel they live in ``devorch_tui/_data/`` (see ``force-include`` in pyproject.toml); in a source
checkout or an editable install they are the top-level folders of the repository.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def resource_dir(name: str) -> Path:
    """Return the folder holding shipped resource ``name`` ("styles" or "template-examples")."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parents[1] / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"devorch-tui resource folder {name!r} is missing from the installation")


def styles_dir() -> Path:
    return resource_dir("styles")


def template_examples_dir() -> Path:
    return resource_dir("template-examples")

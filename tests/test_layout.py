"""The layering of ARCHITECTURE.md, checked: imports point one way, and our packages are ours."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.conftest import REPO

LAYERS = ["store", "ops", "tools", "agent", "ui", "server"]  # each may import only those before it


def _project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_point_down(layer: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(layer) + 1])
    offenders = {
        str(path.relative_to(REPO)): sorted(_project_imports(path) - allowed)
        for path in (REPO / layer).rglob("*.py")
        if _project_imports(path) - allowed
    }
    assert offenders == {}, f"{layer}/ may import only {sorted(allowed)}"


@pytest.mark.parametrize("layer", LAYERS)
def test_packages_resolve_to_this_repo(layer: str) -> None:
    # Generic names like `tools` could be shadowed by another distribution's top-level package.
    module = importlib.import_module(layer)
    assert Path(module.__file__).resolve().parent == REPO / layer

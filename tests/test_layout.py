"""The package's layout: layers import only downward, and only through faces.

``docs/design.md`` (section 0, the map) gives the layers. Each is a private
subpackage; what a layer may use of another is what that layer's
``__init__`` exports. These tests read the source (``ast``), so they pin the
imports that run and those that only the type checker sees.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "proctree"

LAYERS = (
    "_core",
    "_compose",
    "_schedule",
    "_supervision",
    "_leaves",
    "_ops",
    "_testing",
)
"""Bottom first: a layer may import only the layers before it."""

MAX_LINES = 600


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _dotted(path: Path) -> list[str]:
    parts = ["proctree", *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(absolute module, names imported from it, line) for every import."""
    here = _dotted(path)
    package = here if path.name == "__init__.py" else here[:-1]
    found: list[tuple[str, list[str], int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, [], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((module, [a.name for a in node.names], node.lineno))
    return found


def _layer(dotted: list[str]) -> str | None:
    return dotted[1] if len(dotted) > 1 and dotted[1] in LAYERS else None


def _cases() -> list[tuple[str, str, list[str], int]]:
    cases = []
    for path in _modules():
        for module, names, line in _imports(path):
            if module == "proctree" or module.startswith("proctree."):
                where = str(path.relative_to(PACKAGE))
                cases.append((where, module, names, line))
    return cases


def test_the_layers_are_the_subpackages() -> None:
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert subpackages == set(LAYERS)


def test_no_layer_imports_a_layer_above_it() -> None:
    wrong = []
    for where, module, _, line in _cases():
        mine = _layer(_dotted(PACKAGE / where))
        theirs = _layer(module.split("."))
        if mine is None or theirs is None:
            continue
        if LAYERS.index(theirs) > LAYERS.index(mine):
            wrong.append(f"{where}:{line} ({mine}) imports {module} ({theirs})")
    assert wrong == []


def test_another_layer_is_imported_only_through_its_face() -> None:
    wrong = []
    for where, module, names, line in _cases():
        mine = _layer(_dotted(PACKAGE / where))
        parts = module.split(".")
        theirs = _layer(parts)
        if theirs is None or theirs == mine:
            continue
        if len(parts) > 2:
            wrong.append(f"{where}:{line} imports {module}, not proctree.{theirs}")
        elif any(name not in _face(theirs) for name in names):
            missing = [n for n in names if n not in _face(theirs)]
            wrong.append(f"{where}:{line}: {missing} not exported by {theirs}")
    assert wrong == []


def _face(layer: str) -> set[str]:
    tree = ast.parse((PACKAGE / layer / "__init__.py").read_text())
    return {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_no_module_imports_a_private_name_of_another() -> None:
    wrong = [
        f"{where}:{line} imports {name} from {module}"
        for where, module, names, line in _cases()
        for name in names
        if name.startswith("_")
    ]
    assert wrong == []


def test_the_public_face_reexports_layer_faces_only() -> None:
    wrong = []
    for path in PACKAGE.glob("*.py"):
        for module, _, line in _imports(path):
            parts = module.split(".")
            if _layer(parts) is not None and len(parts) > 2:
                wrong.append(f"{path.name}:{line} imports {module}")
    assert wrong == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_600_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines: split it by concept"

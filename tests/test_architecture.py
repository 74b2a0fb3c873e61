"""The package graph of docs/architecture.md holds: packages import each other bottom-up only.

Every import counts, those inside functions too (a lazy import still makes one package
depend on another); only imports under ``if TYPE_CHECKING:`` are left out, as they never run.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edgenas"
#: the layers, bottom-up; a package may import its own layer's leaves and anything below
LAYERS = (
    {"errors", "jsonio", "locking", "progress"},
    {"space"},
    {"cost", "data", "device"},
    {"nn", "profile"},
    {"train"},
    {"estimate", "export"},
    {"search"},   # the surrogate-assisted search fits estimate's predictor
    {"deploy", "assess", "report"},
    {"pipeline"},
    {"commands"},
    {"cli", "__main__", "__init__"},  # __init__: the public names, re-exported
)


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "edgenas" else None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).with_suffix("")
        if relative.parts[0] == "device" and "agent" in relative.parts:
            continue  # runs on the target with numpy and a runtime only; imports nothing of ours
        source = relative.parts[0]
        for module in _imports(path):
            target = _package(module)
            if target and target != source:
                graph[source].add(target)
    return graph


def _layer(package: str) -> int:
    for index, layer in enumerate(LAYERS):
        if package in layer:
            return index
    raise AssertionError(f"package {package!r} is not placed in LAYERS (docs/architecture.md)")


def test_packages_import_bottom_up_only() -> None:
    upward = sorted(f"{source} -> {target}" for source, targets in package_graph().items()
                    for target in targets if _layer(target) >= _layer(source)
                    and not (_layer(target) == 0 and _layer(source) == 0))
    assert upward == [], "imports against the layering of docs/architecture.md"


@pytest.mark.parametrize("package", ["space"])
def test_no_cycle_between_modules_of(package: str) -> None:
    modules = {p.stem: _imports(p) for p in (PACKAGE / package).glob("*.py")}
    graph = {name: {m.rsplit(".", 1)[1] for m in imports
                    if m.startswith(f"edgenas.{package}.")} for name, imports in modules.items()}
    seen: dict[str, int] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        if seen.get(node) == 1:
            raise AssertionError(f"import cycle: {' -> '.join(path + (node,))}")
        if seen.get(node) == 2:
            return
        seen[node] = 1
        for nxt in graph.get(node, ()):
            visit(nxt, path + (node,))
        seen[node] = 2

    for name in graph:
        visit(name, ())

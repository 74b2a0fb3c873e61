"""The package graph of docs/architecture.md holds: packages import each other bottom-up only,
and no module imports itself round a cycle.

Every import counts, those inside functions too (a lazy import still makes one package
depend on another); only imports under ``if TYPE_CHECKING:`` are left out, as they never run.
The graph is built once, by tests/import_graph.py (``python tests/import_graph.py``). Nothing
here imports the benchmarks: the package and its tests stand without them.
"""

from __future__ import annotations

from collections import defaultdict

from import_graph import PACKAGE, ROOT, cycles, module_graph, module_imports

#: the layers, bottom-up; a package may import its own layer's leaves and anything below
LAYERS = (
    {"errors", "jsonio", "locking", "progress", "resources"},
    {"space"},
    {"cost", "data", "device"},
    {"export"},  # the formats a device runs, which the profiler times too
    {"nn", "profile"},
    {"train"},
    {"estimate"},
    {"search"},   # the surrogate-assisted search fits estimate's predictor
    {"deploy", "assess", "report", "export_arch"},  # export_arch: an orchestrator
    {"stage_results"},  # what the main job's stages hand on
    {"pipeline"},
    {"commands"},
    {"cli", "__main__", "__init__"},  # __init__: the public names, re-exported
)


def package_graph() -> dict[str, set[str]]:
    """Each package (or top-level module) of edgenas -> those it imports, from the module graph."""
    graph: dict[str, set[str]] = defaultdict(set)
    for source, targets in module_graph().items():
        for target in targets:
            if _package(target) != _package(source):
                graph[_package(source)].add(_package(target))
    return graph


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


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


def test_no_import_cycle_between_modules() -> None:
    assert cycles(module_graph()) == [], "modules that import each other, round a cycle"


def test_neither_the_package_nor_its_tests_import_the_benchmarks() -> None:
    """benchmarks/ measures edgenas; edgenas and tests/ must run from a checkout without it
    (its own tests, in benchmarks/tests/, are the only code that imports it)."""
    sources = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "tests").rglob("*.py"))
    importers = sorted(str(path.relative_to(ROOT)) for path in sources
                       if any(name.split(".")[0] == "benchmarks" for name in module_imports(path)))
    assert importers == []

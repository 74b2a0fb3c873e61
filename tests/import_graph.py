"""The module import graph of edgenas (modules, edges, cycles) and the path one Arch travels.

Usage: .venv/bin/python tests/import_graph.py [--dot | --list] [--arch-path]

Every import counts, those inside functions too (a lazy import still makes one module depend
on another); only imports under ``if TYPE_CHECKING:`` are left out, as they never run.
``edgenas/device/agent`` runs on the target and imports nothing of ours: it is left out.
tests/test_architecture.py checks the package with `module_graph` and `cycles` from here.

``--arch-path`` runs ``edgenas export`` (an untrained cifar-space arch, ONNX only, digits)
and ``edgenas deploy`` (host-cpu, one round) in a temporary folder and records, in call
order, the edgenas modules whose functions receive an ``Arch``: how many modules the value
passes through and how many times it comes back to a module it had left.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edgenas"


def module_imports(path: Path) -> set[str]:
    """The absolute names a module's import statements name (``from a import b`` gives
    ``a.b``, a module or a name in ``a``); imports under ``if TYPE_CHECKING:`` are left out."""
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
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """The dotted name of the module at ``path`` (a package's ``__init__`` is the package)."""
    parts = (package.name,) + path.relative_to(package).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of ``package`` (dotted name) -> the modules of ``package`` it imports."""
    paths = {module_name(p, package): p for p in sorted(package.rglob("*.py"))
             if not {"agent", "__pycache__"} & set(p.relative_to(package).parts)}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets = {_module_of(imported, paths) for imported in module_imports(path)}
        graph[name] = {target for target in targets if target and target != name}
    return graph


def _module_of(imported: str, modules: dict[str, Path]) -> str | None:
    """The module an imported name lives in: itself, or the longest module prefix of it."""
    parts = imported.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle per strongly connected group of modules (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(_shortest_cycle(graph, group) for group in groups)


def _shortest_cycle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    start = min(group)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node] & group):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return path[::-1] + [start]
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")


def to_dot(graph: dict[str, set[str]]) -> str:
    """The graph in Graphviz DOT, one cluster per package."""
    lines = ["digraph edgenas {", "  rankdir=LR; node [shape=box, fontsize=10];"]
    packages: dict[str, list[str]] = {}
    for name in sorted(graph):
        packages.setdefault(".".join(name.split(".")[:2]), []).append(name)
    for package, members in packages.items():
        lines.append(f'  subgraph "cluster_{package}" {{ label="{package}";')
        lines.extend(f'    "{member}";' for member in members)
        lines.append("  }")
    lines.extend(f'  "{source}" -> "{target}";'
                 for source in sorted(graph) for target in sorted(graph[source]))
    lines.append("}")
    return "\n".join(lines)


def to_list(graph: dict[str, set[str]]) -> str:
    """One line per module: ``module -> imported, ...`` (names without the ``edgenas.``)."""
    def short(name: str) -> str:
        return name.removeprefix("edgenas.")
    return "\n".join(f"{short(source)} -> {', '.join(short(t) for t in sorted(targets))}"
                     for source, targets in sorted(graph.items()) if targets)


def arch_path(workdir: Path) -> list[str]:
    """The edgenas modules, in call order (repeats collapsed), whose functions receive an
    Arch while `edgenas export` and `edgenas deploy` run on a small case in ``workdir``."""
    from edgenas.cli import main
    from edgenas.space import Arch, get_space

    arch_file = workdir / "arch.json"
    arch_file.write_text(get_space("cifar").sample(7).to_json(indent=2), encoding="utf-8")
    bundle = workdir / "bundle"
    sequence: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event != "call":
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("edgenas."):
            return
        code = frame.f_code
        count = code.co_argcount + code.co_kwonlyargcount
        if any(isinstance(frame.f_locals.get(name), Arch) for name in code.co_varnames[:count]):
            if not sequence or sequence[-1] != module:
                sequence.append(module)

    sys.setprofile(profile)
    try:
        codes = [main(["export", str(arch_file), "--formats", "onnx", "--out", str(bundle),
                       "--profiles-dir", str(ROOT / "profiles")]),
                 main(["deploy", str(bundle), "--device", "host-cpu", "--rounds", "1"])]
    finally:
        sys.setprofile(None)
    if codes != [0, 0]:
        raise RuntimeError(f"export / deploy exited with {codes}")
    return sequence


def returns(sequence: list[str]) -> int:
    """How many times a path comes back to a module it has left."""
    return len(sequence) - len(set(sequence))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--dot", action="store_true", help="print the graph as Graphviz DOT")
    shape.add_argument("--list", action="store_true", help="print each module's imports")
    parser.add_argument("--arch-path", action="store_true",
                        help="trace an Arch through `edgenas export` and `edgenas deploy`")
    args = parser.parse_args(argv)
    graph = module_graph()
    if args.dot:
        print(to_dot(graph))
    elif args.list:
        print(to_list(graph))
    found = cycles(graph)
    print(f"modules {len(graph)}, edges {sum(len(t) for t in graph.values())}, "
          f"cyclic groups {len(found)}")
    for cycle in found:
        print("  cycle: " + " -> ".join(cycle))
    if args.arch_path:
        with tempfile.TemporaryDirectory() as workdir:
            sequence = arch_path(Path(workdir))
        hops = set(zip(sequence, sequence[1:]))
        print(f"Arch path (export, deploy): {len(set(sequence))} modules, {len(sequence)} "
              f"module entries, {returns(sequence)} returns to a module it had left, "
              f"{len(hops)} distinct hops")
        print("  " + " -> ".join(m.removeprefix("edgenas.") for m in sequence))


if __name__ == "__main__":
    main()

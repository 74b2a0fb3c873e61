"""``python -m benchmarks``: the benchmarks and what each measures; ``python -m benchmarks
NAME [ARGS]`` runs one (``NAME --help``: its flags).

The one entry point of the package: every benchmark is a module with a ``main(argv)``.
The list is read from the modules' docstrings without importing them (most import torch).
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

from benchmarks.harness import summary

#: modules of the package that are not benchmarks
LIBRARIES = frozenset({"__init__", "__main__", "harness", "strategies", "mutation_order"})


def benchmarks() -> dict[str, str]:
    """Each benchmark's name -> what it measures."""
    folder = Path(__file__).resolve().parent
    return {path.stem: summary(ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))))
            for path in sorted(folder.glob("*.py")) if path.stem not in LIBRARIES}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    known = benchmarks()
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.split("\n\n")[0].replace("``", "") + "\n")
        width = max(map(len, known))
        for name, what in known.items():
            print(f"  {name:<{width}}  {what}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in known:
        print(f"python -m benchmarks: no benchmark {name!r}; one of: {', '.join(known)}",
              file=sys.stderr)
        return 2
    status = importlib.import_module(f"benchmarks.{name}").main(rest)
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())

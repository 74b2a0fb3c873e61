"""A pytest plugin for benchmarks/mutation.py: run a mutant's quickest tests first.

mutmut stops a mutant's run at the first failing test, so a mutant that a unit test kills
should not wait behind the tests that profile a whole scripted device. Test files are
ordered by the time their selected tests took when mutmut timed them (kept together, so
that a file's module-scoped fixtures are set up once), and within a file the quickest
tests go first. Without mutmut's timings (the first, timing run) the order is pytest's.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any


def pytest_collection_modifyitems(items: list[Any]) -> None:
    stats = Path("mutmut-stats.json")  # mutmut runs the tests in its mutants/ folder
    try:
        durations: dict[str, float] = json.loads(stats.read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return
    per_file: dict[str, float] = defaultdict(float)
    for item in items:
        per_file[item.location[0]] += durations.get(item.nodeid, 0.0)
    items.sort(key=lambda item: (per_file[item.location[0]], item.location[0],
                                 durations.get(item.nodeid, 0.0)))

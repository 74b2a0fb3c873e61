"""Plain `edgenas search` (no training) run again in the same folder: a study started with
other settings is refused, naming what differs, before any trial; the same settings resume
it (a seed or a trial count may differ: workers explore apart, a resumed run may ask for
more)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgenas.cli import main

#: A search of seconds: MACs as the accuracy estimate, 6 trials of a population of 4.
SEARCH = ["search", "--objectives", "accuracy,memory", "--estimator", "macs", "--trials", "6",
          "--population", "4"]


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> Path:
    """One search, for the refusals (which leave it as it was)."""
    out = tmp_path_factory.mktemp("refused") / "search"
    assert main([*SEARCH, "--out", str(out)]) == 0
    return out


def _trials(out: Path) -> int:
    return json.loads((out / "front.json").read_text())["trials"]


@pytest.mark.parametrize("changed, named", [
    (["--population", "6"], "population: 4 vs 6"),
    (["--objectives", "accuracy,params"], "objectives: ['accuracy', 'memory'] vs "
                                          "['accuracy', 'params']"),
    (["--max-memory-mb", "5"], "budgets:"),
], ids=["population", "objectives", "budget"])
def test_a_plain_search_refuses_its_study_run_again_with_other_settings(
        searched: Path, capsys, changed: list[str], named: str) -> None:
    capsys.readouterr()
    assert main([*SEARCH, *changed, "--out", str(searched)]) == 2
    err = capsys.readouterr().err
    assert "study 'edgenas' was started with other settings" in err and named in err
    assert "use another --out, --storage or --study-name" in err
    assert _trials(searched) == 6  # nothing was added to it


def test_a_plain_search_resumes_its_study_with_the_same_settings(tmp_path: Path) -> None:
    """Another seed and more trials are the same study: it goes on to 8 trials."""
    out = tmp_path / "search"
    assert main([*SEARCH, "--out", str(out)]) == 0
    assert main([*SEARCH[:-4], "--trials", "8", "--population", "4", "--seed", "3",
                 "--out", str(out)]) == 0
    assert _trials(out) == 8

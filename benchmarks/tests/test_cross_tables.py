"""benchmarks/cross_tables: every table judged on every table's held-out networks, with the
same numbers a table's own validation report gives on its own."""

from __future__ import annotations

import json
from copy import deepcopy
from pathlib import Path

import pytest

from benchmarks.cross_tables import judge, main
from edgenas.profile.lut import SEARCH_BIASED, load_lut, save_lut
from edgenas.profile.profiler import validation_report

COMMITTED = Path(__file__).resolve().parents[2] / "profiles" / "host-cpu" / "cifar.json"


def test_each_table_is_judged_on_each_set_as_its_own_report_would() -> None:
    table = load_lut(COMMITTED)
    table.networks[SEARCH_BIASED] = table.networks["validation"][:10]  # stands in for one
    off = deepcopy(table)
    off.correction = {"form": "scale", "intercept_ms": 0.0, "scale": 2.0, "per_unit_ms": 0.0,
                      "networks": 60}  # twice the unit sum: nothing within 10 %
    result = judge({"kept": table, "off": off})
    assert set(result["sets"]) == {"random(kept)", "search-biased(kept)", "random(off)",
                                   "search-biased(off)"}
    own = validation_report(table, len(table.networks["validation"]))
    assert result["tables"]["kept"]["on"]["random(kept)"]["within_10pct"] == own["within_10pct"]
    assert result["tables"]["off"]["on"]["random(kept)"]["median_bias_pct"] > 50
    assert result["sets"]["random(kept)"]["noise_floor"] == own["noise_floor"]
    assert result["sets"]["search-biased(off)"]["n"] == 10


def test_it_reads_named_tables_and_writes_its_record(tmp_path: Path, capsys) -> None:
    path = tmp_path / "t.json"
    save_lut(load_lut(COMMITTED), path)
    main([f"mine={path}", "--json", str(tmp_path / "r.json")])
    record = json.loads((tmp_path / "r.json").read_text())
    assert "random(mine)" in record["tables"]["mine"]["on"]
    assert "| mine |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(path)])  # no NAME=
    with pytest.raises(SystemExit):
        main([f"mine={path}", f"mine={path}"])  # one name, twice

"""The decisions inside benchmarks/hypotheses.py (the runs themselves are benchmarks, not tests)."""

from __future__ import annotations

import pytest

from benchmarks import hypotheses as hypotheses_tool


@pytest.fixture(scope="module")
def hypotheses():
    return hypotheses_tool


def trial(hypotheses, macs: float, accuracy: float, feasible: bool = True):
    return hypotheses._Trial({"arch": f"{macs}-{accuracy}", "macs": macs, "accuracy": accuracy,
                              "latency": 1.0, "memory": 1.0, "feasible": feasible})


def test_matched_macs_takes_the_best_estimate_within_tolerance(hypotheses) -> None:
    trials = [trial(hypotheses, 38, 0.50), trial(hypotheses, 44, 0.60),
              trial(hypotheses, 20, 0.90), trial(hypotheses, 41, 0.99, feasible=False)]
    assert hypotheses.matched(trials, 40.8).user_attrs["metrics"]["macs"] == 44
    # nothing within 25 %: the closest in MACs, whatever its estimate
    assert hypotheses.matched(trials, 100).user_attrs["metrics"]["macs"] == 44
    assert hypotheses.matched(trials, 10).user_attrs["metrics"]["macs"] == 20


def test_verdict_does_not_claim_differences_inside_the_spread(hypotheses) -> None:
    assert hypotheses.verdict([10.0, 12.0], [11.0, 11.5]).startswith("not shown")
    assert hypotheses.verdict([20.0, 20.5], [10.0, 10.5]).startswith("supported")
    assert hypotheses.verdict([10.0, 10.5], [20.0, 20.5]).startswith("contradicted")


# H3 at matched measured latency: the matching and the verdict, on injected latencies.

def searched(arch: str, accuracy: float, memory_mb: float = 1.0, round_: int = 1) -> dict:
    return {"arch": arch, "accuracy": accuracy, "memory": memory_mb, "round": round_}


BASELINE = {"name": "Base", "arch": "base", "accuracy": 0.30, "memory_bytes": 2_000_000,
            "accuracy_seeds": [0]}


def test_an_arch_slower_than_the_baseline_is_never_matched(hypotheses) -> None:
    runs = {0: [searched("fast", 0.32), searched("slow-but-best", 0.50)]}
    latency = {"base": 1.0, "fast": 0.9, "slow-but-best": 1.01}
    at = hypotheses.compare_measured(runs, [BASELINE], latency, 0.01)[0]["at_latency_ms"]
    seed = at["seeds"][0]
    assert seed["matched"]["arch"] == "fast"
    assert seed["gap_pts"] == pytest.approx(2.0)
    assert at["verdict"].startswith("searched better")


def test_no_arch_within_the_baseline_is_reported_as_none(hypotheses) -> None:
    runs = {0: [searched("a", 0.40, memory_mb=3.0)], 1: [searched("b", 0.35, memory_mb=1.5)]}
    latency = {"base": 1.0, "a": 2.0, "b": 4.0}
    pair = hypotheses.compare_measured(runs, [BASELINE], latency, 0.01)[0]
    at = pair["at_latency_ms"]
    assert [s["matched"] for s in at["seeds"]] == [None, None]
    assert at["gap_mean_pts"] is None and at["verdict"].startswith("none")
    # the reverse view still answers: the fastest arch at least as accurate, and its speed-up
    assert at["seeds"][0]["as_accurate"]["arch"] == "a"
    assert at["seeds"][0]["saving"] == pytest.approx(0.5)
    # by peak memory (records in MB, the baseline in bytes) seed 1's arch fits, seed 0's not
    memory = pair["at_memory_bytes"]
    assert [s["matched"] and s["matched"]["arch"] for s in memory["seeds"]] == [None, "b"]
    assert "1 of 2 seeds have no arch within it" in memory["verdict"]


def test_the_verdict_is_on_the_mean_over_seeds_against_the_seed_std(hypotheses) -> None:
    runs = {0: [searched("a", 0.33)], 1: [searched("b", 0.29)], 2: [searched("c", 0.31)]}
    latency = {"base": 1.0, "a": 0.5, "b": 0.5, "c": 0.5}
    at = hypotheses.compare_measured(runs, [BASELINE], latency, 0.025)[0]["at_latency_ms"]
    assert at["gap_mean_pts"] == pytest.approx(1.0)
    assert at["gap_std_pts"] == pytest.approx(2.0)
    assert at["verdict"].startswith("not shown")
    worse = hypotheses.compare_measured(runs, [{**BASELINE, "accuracy": 0.40}], latency,
                                        0.025)[0]["at_latency_ms"]
    assert worse["verdict"].startswith("baseline better")
    assert all(s["as_accurate"] is None for s in worse["seeds"])


def test_the_match_is_taken_from_the_accuracy_latency_front(hypotheses) -> None:
    trained = [searched("dominated", 0.30), searched("front-fast", 0.31), searched("front", 0.35)]
    latency = {"dominated": 0.8, "front-fast": 0.5, "front": 0.9}
    rows = [{**t, "latency_ms": latency[t["arch"]]} for t in trained]
    assert {t["arch"] for t in hypotheses.accuracy_front(rows, "latency_ms")} == {"front-fast",
                                                                                   "front"}


def test_the_stage_runs_from_records_alone_and_renders(hypotheses, tmp_path) -> None:
    from edgenas.device.descriptor import get_device
    from edgenas.estimate.groundtruth import GroundTruth
    from edgenas.estimate.estimators import DEFAULT_TABLE

    records = tmp_path / "runs.jsonl"
    known = hypotheses.RECORDED.read_text().splitlines()
    records.write_text("\n".join(line for line in known if '"strategy": "nsga2",' in line) + "\n")
    gt = GroundTruth.load(DEFAULT_TABLE)

    def fake_timer(device, archs, rounds):  # slower with MACs, 5 % apart between rounds
        from edgenas.cost.count import count
        return {name: [count(a).macs / 1e8 * (1 + 0.05 * (r % 2)) for r in range(rounds)]
                for name, a in archs.items()}

    result = hypotheses.measured_h3(get_device("host-cpu"), gt, records, [0, 1, 2], 4, 0.025,
                                    timer=fake_timer)
    assert {p["baseline"] for p in result["pairs"]} == {"ResNet-20", "ResNet-56",
                                                        "MobileNetV2 (in space)"}
    assert result["timing_noise"]["median_range_pct"] == pytest.approx(100 * 0.05 / 1.025)
    assert result["timing_noise"]["median_spread_pct"] == pytest.approx(100 * 0.05 / 1.025)
    for pair in result["pairs"]:
        for seed in pair["at_latency_ms"]["seeds"]:
            if seed["matched"] is not None:
                assert seed["matched"]["latency_ms"] <= pair["baseline_latency_ms"]
                assert seed["matched"]["no_slower_in_rounds"] == 1.0
    table = hypotheses.render_measured_h3(result)
    assert "not latency" in table and "ResNet-20" in table
    with pytest.raises(hypotheses.EdgenasError, match="seed"):
        hypotheses.measured_h3(get_device("host-cpu"), gt, records, [7], 3, 0.025,
                               timer=fake_timer)


def test_one_burst_round_moves_the_range_not_the_median_or_spread(hypotheses) -> None:
    summary = hypotheses.timing_summary({"net": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0]})
    net = summary["networks"]["net"]
    assert net["median_ms"] == 1.0 and net["spread_pct"] == 0.0
    assert net["range_pct"] == pytest.approx(100.0)


def _comparison(strategies: dict[str, list[float]]) -> dict:
    runs = [{"strategy": name, "seed": seed, "surrogate": {"proposals": {"kendall_tau": 0.3}}}
            for name, values in strategies.items() for seed in range(len(values))]
    return {"train_budget": 20, "initial": 10, "seeds": [0, 1], "runs": runs,
            "strategies": {name: {"hypervolume": values, "gain_over_warm_start": values}
                           for name, values in strategies.items()}}


def test_a_comparison_without_plain_nsga2_renders_the_rows_it_has(hypotheses) -> None:
    # the prior against random alone: no H1 against weighted sum, no H2, no H3 (the tool
    # crashed here once, asking for plain nsga2's hypervolume)
    comparison = _comparison({"nsga2+prior": [30.0, 80.0], "random": [14.0, 30.0]})
    hv = {name: row["hypervolume"] for name, row in comparison["strategies"].items()}
    table = hypotheses.render(comparison, hv, None, None)
    assert "H1 with nsga2+prior" in table and "vs random" in table
    assert "H2" not in table and "weighted sum" not in table and "H3" not in table
    alone = _comparison({"nsga2+prior": [30.0, 80.0]})
    table = hypotheses.render(alone, {"nsga2+prior": [30.0, 80.0]}, None, None)
    assert "H1 with nsga2+prior" in table and "vs random" not in table


def test_the_full_comparison_still_renders_h1_and_h2(hypotheses) -> None:
    values = {"nsga2": [30.0, 40.0], "nsga2-flat": [20.0, 25.0], "weighted-sum": [10.0, 12.0],
              "random": [5.0, 6.0]}
    comparison = _comparison(values)
    h3 = {"pairs": [], "data": "cifar10", "config": {"epochs": 2, "batch_size": 64, "lr": 0.1,
                                                     "limit": 4000, "val_fraction": 0.3}}
    table = hypotheses.render(comparison, values, h3, None)
    assert "vs weighted sum: supported" in table and "vs random: supported" in table
    assert "| H2 hierarchical vs flat" in table and "won 0 of 0 H3 pairs" in table


def test_a_tagged_strategy_names_the_objectives_it_searched_on(hypotheses) -> None:
    assert hypotheses.searched_objectives("nsga2+prior@latency-memory") == [
        "accuracy", "latency", "memory"]
    assert hypotheses.searched_objectives("nsga2") == list(hypotheses.OBJECTIVES)


def test_runs_on_other_objectives_are_compared_under_their_untagged_names(hypotheses) -> None:
    comparison = _comparison({"nsga2+prior@latency-memory": [30.0, 80.0],
                              "random@latency-memory": [14.0, 30.0]})
    hv = {name: row["hypervolume"] for name, row in comparison["strategies"].items()}
    table = hypotheses.render(comparison, hv, None, None)
    assert "H1 with nsga2+prior" in table and "vs random" in table
    assert "objectives accuracy, latency, memory" in table and "0.30, 0.30" in table

"""The paper's hypotheses, measured with the surrogate-assisted search on the CIFAR-10
recipe of the committed ground truth (CPU hours: run it in the background; it resumes).

    EDGENAS_CIFAR10=../shared/data/cifar10-jpeg nohup .venv/bin/python -m tools.hypotheses \
        --out runs/hypotheses > runs/hypotheses.log 2>&1 &

H1  multi-objective (NSGA-II on the surrogate) vs single-objective (weighted sum, TPE on
    the surrogate) vs random candidates: hypervolume of the trained archs at an equal
    training budget, over several seeds.
H2  hierarchical vs flat variation (Optuna's plain NSGA-II) in the same loop.
H3  searched vs hand-designed networks at matched MACs: the NSGA-II runs' trained arch
    with the best accuracy within +-25 % of the baseline's MACs (else the closest), against
    ResNet-20/56 and MobileNetV2-in-space, all trained with the ground truth's recipe.
H4  transfer: the NSGA-II front, timed on this device and on another (--transfer-device;
    default: the same host with 2 ONNX Runtime threads instead of 1).

Every run of a seed starts from the same ten ground-truth archs (their accuracies are the
ground truth's seed-0 runs, the recipe is the ground truth's), so strategies differ only
in the candidates they train; an arch two runs propose is trained once. Objectives are
accuracy, MACs and peak memory (exact, host-independent, so a resumed comparison proposes
what an uninterrupted one would). Each hypothesis writes `<out>/h<N>.json` when done; the
table goes to `<out>/hypotheses.md` and `<out>/hypotheses.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna

from edgenas.assess import predict_latency
from edgenas.cost.count import count
from edgenas.device.descriptor import get_device
from edgenas.errors import EdgenasError
from edgenas.estimate.estimators import DEFAULT_TABLE
from edgenas.estimate.groundtruth import GroundTruth
from edgenas.jsonio import write_json_atomic
from edgenas.profile.latency import kendall_tau
from edgenas.profile.lut import open_lut
from edgenas.profile.measure import measure_latency
from edgenas.search.engine import front
from edgenas.search.pareto import non_dominated
from edgenas.search.surrogate import SurrogateConfig, trained_evaluator
from edgenas.space import Arch, get_space
from edgenas.train.loop import TrainConfig
from edgenas.train.rundata import prepare_data
from edgenas.train.standalone import recipe_trainer
from tools.strategies import compare_trained, jsonable

#: Runs finished so far, committed: a comparison continues from them anywhere.
RECORDED = Path(__file__).resolve().parent / "results" / "hypotheses-runs.jsonl"
#: H1/H2's objectives: exact and host-independent (a resumed run proposes the same archs)
OBJECTIVES = ("accuracy", "macs", "memory")
#: where the CIFAR-10 ImageFolder tree is, when not given: the environment, never a fixed path
CIFAR_TREE = os.environ.get("EDGENAS_CIFAR10", "digits")


def say(message: str) -> None:
    print(f"[hypotheses] {message}", file=sys.stderr, flush=True)


def stage(out: Path, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one hypothesis unless its result file exists (resumable)."""
    path = out / f"{name}.json"
    if path.exists():
        say(f"{name}: done before, reading {path}")
        return json.loads(path.read_text())
    result = compute()
    write_json_atomic(result, path)
    return result


def log_run(path: Path, run: dict[str, Any]) -> None:
    """One finished (strategy, seed) run as a line of JSON: partial results to keep."""
    say(f"  {run['strategy']} seed {run['seed']}: {run['seconds']:.0f} s")
    record = {"strategy": run["strategy"], "seed": run["seed"], "seconds": run["seconds"],
              "surrogate": run["surrogate"],
              "trained": [{"arch": t.user_attrs["arch"], "round": t.user_attrs.get("round"),
                           "predicted_accuracy": t.user_attrs.get("predicted_accuracy"),
                           **t.user_attrs["metrics"]} for t in run["trials"]]}
    if path.exists() and any(
            (old["strategy"], old["seed"], len(old["trained"]))
            == (record["strategy"], record["seed"], len(record["trained"]))
            for old in map(json.loads, path.read_text(encoding="utf-8").splitlines())):
        return  # recorded by an earlier call (a resumed comparison passes finished runs)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def recorded_accuracies(path: Path) -> dict[str, float]:
    """Accuracies of archs earlier comparisons trained with this recipe (``--known``)."""
    known: dict[str, float] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            for record in json.loads(line)["trained"] if line.strip() else []:
                known[record["arch"]] = record["accuracy"]
    return known


def ground_truth_trainer(gt: GroundTruth, data: str, out: Path, recipe: TrainConfig,
                         recorded: dict[str, float]) -> Callable[[Arch], dict[str, Any]]:
    """Trains with the ground truth's recipe; an arch the ground truth trained (seed 0) or
    an earlier comparison recorded is looked up instead, and every training is kept in
    ``out`` (trained once, resumable)."""
    known = {**recorded, **{e.arch.to_json(): e.accuracy[0] for e in gt.finished
                            if 0 in e.accuracy}}
    train = recipe_trainer(data, out / "trained", recipe, cache_dir=out / "cache")

    def trainer(arch: Arch) -> dict[str, Any]:
        key = arch.to_json()
        if key in known:
            return {"accuracy": known[key], "run_dir": None}
        say(f"  training {count(arch).macs / 1e6:.1f} M MACs")
        return train(arch)

    return trainer


def matched(trials: list[Any], macs: float, tolerance: float = 0.25) -> Any:
    """The searched arch with the best accuracy estimate within ``tolerance`` of ``macs``
    (millions); the arch closest in MACs when none is that close."""
    feasible = [t for t in trials if t.user_attrs["feasible"]]
    near = [t for t in feasible if abs(t.user_attrs["metrics"]["macs"] - macs) <= tolerance * macs]
    if not near:
        return min(feasible, key=lambda t: abs(t.user_attrs["metrics"]["macs"] - macs))
    return max(near, key=lambda t: (t.user_attrs["metrics"]["accuracy"],
                                    -t.user_attrs["metrics"]["macs"]))


def verdict(better: list[float], other: list[float]) -> str:
    """Plain words for a difference of means against its spread over seeds."""
    diff = float(np.mean(better) - np.mean(other))
    spread = float(np.sqrt((np.var(better, ddof=1) + np.var(other, ddof=1)) / 2)) \
        if len(better) > 1 else 0.0
    if diff == 0:
        return "no difference"
    if spread and abs(diff) < spread:
        return f"not shown (difference {diff:+.3g} is within one std {spread:.3g})"
    return ("supported" if diff > 0 else "contradicted") + f" (difference {diff:+.3g}, std {spread:.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/hypotheses")
    parser.add_argument("--space", default="cifar")
    parser.add_argument("--device", default="host-cpu")
    parser.add_argument("--profiles-dir", default="profiles")
    parser.add_argument("--groundtruth", default=str(DEFAULT_TABLE),
                        help="ground truth whose recipe, archs and accuracies are reused")
    parser.add_argument("--data", default=f"cifar10:{CIFAR_TREE}" if CIFAR_TREE != "digits"
                        else None, help="the ground truth's images (default: "
                                        "cifar10:$EDGENAS_CIFAR10)")
    parser.add_argument("--known", default=str(RECORDED),
                        help="finished runs, one JSON line each (appended to as runs finish; "
                             "their archs are not trained again, so a comparison resumes on "
                             "another machine from this committed file)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+",
                        default=["nsga2", "nsga2-flat", "weighted-sum", "random"])
    parser.add_argument("--train-budget", type=int, default=20)
    parser.add_argument("--initial", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=2)
    parser.add_argument("--inner-trials", type=int, default=300)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--transfer-device",
                        help="H4's second device (a descriptor); default: --device with "
                             "--transfer-threads ONNX Runtime threads")
    parser.add_argument("--transfer-threads", type=int, default=2)
    parser.add_argument("--transfer-random", type=int, default=20,
                        help="random archs added to the front for H4's rank correlation")
    parser.add_argument("--skip-h4", action="store_true",
                        help="leave out H4 (it times networks: needs a quiet host)")
    args = parser.parse_args()
    if not args.data:
        parser.error("--data: give the ground truth's images (or set EDGENAS_CIFAR10)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space = get_space(args.space)
    gt = GroundTruth.load(args.groundtruth)
    recipe = TrainConfig.from_dict({**gt.recipe, "seed": 0}, args.groundtruth)
    samples = [e for e in gt.finished if e.stratum != "baseline" and 0 in e.accuracy]
    config = SurrogateConfig(args.train_budget, args.initial, args.per_round, "nsga2",
                             args.inner_trials, args.population)
    evaluator = trained_evaluator(OBJECTIVES)
    split = prepare_data(args.data, space.num_classes, recipe.val_fraction, recipe.data_seed,
                         recipe.limit, cache_dir=out / "cache").split.to_dict()
    if split["hash"] != gt.data["split"]["hash"]:  # its accuracies would not be comparable
        parser.error(f"--data {args.data}: its validation split ({split['hash']}) is not the "
                     f"ground truth's ({gt.data['split']['hash']}); give the same images")
    known = Path(args.known)
    trainer = ground_truth_trainer(gt, args.data, out, recipe, recorded_accuracies(known))

    def warm_start(seed: int) -> list[Arch]:
        order = np.random.default_rng(seed).permutation(len(samples))[:args.initial]
        return [samples[i].arch for i in sorted(order)]

    def h12() -> dict[str, Any]:
        say(f"H1/H2: {len(args.strategies)} strategies x {len(args.seeds)} seeds, "
            f"{args.train_budget} trained archs each ({args.initial} from the ground truth)")
        (out / "studies").mkdir(exist_ok=True)
        summary = compare_trained(
            space, evaluator, args.strategies, args.seeds, config, trainer, recipe.to_dict(),
            out / "studies", warm_start,
            on_run=lambda r: log_run(known, r))
        write_json_atomic([{"arch": t.user_attrs["arch"], **t.user_attrs["metrics"],
                            "feasible": t.user_attrs["feasible"], "seed": run["seed"]}
                           for run in summary["runs"] if run["strategy"] == "nsga2"
                           for t in run["trials"]], out / "nsga2_trials.json")
        return jsonable(summary)

    comparison = stage(out, "h12", h12)
    hv = {s: row["hypervolume"] for s, row in comparison["strategies"].items()}

    def searched() -> list[dict[str, Any]]:
        return json.loads((out / "nsga2_trials.json").read_text())

    def h3() -> dict[str, Any]:
        trials = [_Trial(r) for r in searched()]
        baselines = {e.name: e for e in gt.finished if e.stratum == "baseline" and 0 in e.accuracy}
        pairs = []
        for name, entry in baselines.items():
            counts = count(entry.arch)
            trial = matched(trials, counts.macs / 1e6)
            metrics = trial.user_attrs["metrics"]
            pairs.append({"baseline": name, "baseline_macs": counts.macs,
                          "baseline_accuracy": entry.accuracy[0],
                          "baseline_memory_bytes": counts.memory_bytes("fp32"),
                          "searched_arch": trial.user_attrs["arch"],
                          "searched_macs": metrics["macs"] * 1e6,
                          "searched_accuracy": metrics["accuracy"],
                          "searched_memory_bytes": metrics["memory"] * 1e6})
        return {"data": args.data, "config": recipe.to_dict(), "pairs": pairs}

    matched_result = stage(out, "h3", h3)
    transfer = None if args.skip_h4 else stage(out, "h4", lambda: h4(args, space, out))
    noise = seed_noise(gt)
    table = render(comparison, hv, matched_result, transfer, noise)
    print(table)
    (out / "hypotheses.md").write_text(table + "\n")
    write_json_atomic({"h12": comparison, "h3": {**matched_result, "seed_to_seed_std": noise},
                       "h4": transfer},
                      out / "hypotheses.json")


def h4(args: argparse.Namespace, space: Any, out: Path) -> dict[str, Any]:
    """The NSGA-II front (trained archs) timed on this device and on another."""
    objectives = OBJECTIVES
    device = get_device(args.device)
    lut = open_lut(device, space, args.profiles_dir)
    trials = [_Trial(r) for r in json.loads((out / "nsga2_trials.json").read_text())]
    on_front = front(trials, objectives)
    archs = {t.user_attrs["arch"]: Arch.from_json(t.user_attrs["arch"]) for t in on_front}
    front_keys = list(archs)
    for i in range(args.transfer_random):
        arch = space.sample(10_000 + i)
        archs.setdefault(arch.to_json(), arch)
    if args.transfer_device:
        other = get_device(args.transfer_device)
    else:
        other = replace(device, name=f"{device.name}-{args.transfer_threads}threads",
                        runtime=replace(device.runtime, threads=args.transfer_threads))
    try:  # the other device's own table, when it has one, is compared too
        other_lut = open_lut(other, space, args.profiles_dir)
    except EdgenasError as err:
        say(f"H4: no usable table for {other.name} ({err}); comparing with measurements only")
        other_lut = None
    say(f"H4: {len(archs)} archs ({len(front_keys)} on the NSGA-II front) timed on "
        f"{device.name} and on {other.name}")
    names = {key: f"a{i}" for i, key in enumerate(archs)}
    by_name = {names[k]: a for k, a in archs.items()}
    here = measure_latency(device, by_name)
    there = measure_latency(other, by_name)
    keys = list(archs)
    predicted = [predict_latency(lut, archs[k]) for k in keys]
    a_meas = [here[names[k]] for k in keys]
    b_meas = [there[names[k]] for k in keys]
    there_predicted = [predict_latency(other_lut, archs[k]) for k in keys]
    metrics = {t.user_attrs["arch"]: t.user_attrs["metrics"] for t in on_front}
    points = np.array([[1 - metrics[k]["accuracy"], there[names[k]], metrics[k]["memory"]]
                       for k in front_keys])
    kept = int(non_dominated(points).sum()) if len(points) else 0
    return {"device": device.name, "other": other.name, "other_runtime": other.runtime_settings(),
            "archs": len(keys), "front": len(front_keys),
            "tau_predicted_vs_measured_here": kendall_tau(predicted, a_meas),
            "tau_predicted_here_vs_measured_there": kendall_tau(predicted, b_meas),
            "tau_measured_here_vs_there": kendall_tau(a_meas, b_meas),
            "tau_table_there_vs_measured_there": (kendall_tau(there_predicted, b_meas)
                                                  if other_lut is not None else None),
            "front_kept": kept, "speedup_median": float(np.median(np.array(a_meas)
                                                                  / np.array(b_meas))),
            "measurements": [{"arch": k, "predicted_ms": p, "measured_ms": a,
                              f"measured_ms_{args.transfer_threads}threads": b}
                             for k, p, a, b in zip(keys, predicted, a_meas, b_meas)]}


class _Trial:
    """A stored trial record with the attributes `front` and `matched` read."""

    def __init__(self, record: dict[str, Any]) -> None:
        metrics = {k: v for k, v in record.items() if k not in ("arch", "feasible")}
        self.user_attrs = {"arch": record["arch"], "metrics": metrics,
                           "feasible": record["feasible"]}


def seed_noise(gt: GroundTruth) -> float | None:
    """The std of the accuracy difference between two trainings of one arch with two seeds:
    how far apart two single-run accuracies fall by chance under this recipe."""
    diffs = [e.accuracy[0] - e.accuracy[1] for e in gt.finished if {0, 1} <= set(e.accuracy)]
    return float(np.std(diffs, ddof=1)) if len(diffs) > 2 else None


def _winner(searched: float, baseline: float, noise: float | None) -> str:
    diff = searched - baseline
    if noise and abs(diff) < noise:
        return (f"not shown ({100 * diff:+.1f} pts is within the seed-to-seed std "
                f"{100 * noise:.1f} pts)")
    if diff == 0:
        return "tie"
    who = "searched better" if diff > 0 else "baseline better"
    return who + (f" ({100 * diff:+.1f} pts, seed-to-seed std {100 * noise:.1f} pts)"
                  if noise else "")


def render(comparison: dict[str, Any], hv: dict[str, list[float]], h3: dict[str, Any],
           h4: dict[str, Any] | None, noise: float | None = None) -> str:
    def mean_std(values: list[float]) -> str:
        return f"{np.mean(values):.4g} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.2g}"

    rows = comparison["strategies"]

    def gain(strategy: str) -> str:
        return mean_std(rows[strategy]["gain_over_warm_start"])

    n, seeds = comparison["train_budget"], len(comparison["seeds"])
    setting = (f"hypervolume of {n} trained archs ({comparison['initial']} shared warm start, "
               f"{n - comparison['initial']} chosen), {seeds} seeds")
    lines = ["| hypothesis | measured | result |", "| --- | --- | --- |",
             f"| H1 multi- vs single-objective | {setting}: NSGA-II {mean_std(hv['nsga2'])} "
             f"(gain over the warm start {gain('nsga2')}), weighted sum "
             f"{mean_std(hv['weighted-sum'])} (gain {gain('weighted-sum')}), random "
             f"{mean_std(hv['random'])} (gain {gain('random')}) | NSGA-II vs weighted sum: "
             f"{verdict(hv['nsga2'], hv['weighted-sum'])}; vs random: "
             f"{verdict(hv['nsga2'], hv['random'])} |",
             f"| H2 hierarchical vs flat | {setting}: hierarchical {mean_std(hv['nsga2'])} "
             f"(gain {gain('nsga2')}), flat {mean_std(hv['nsga2-flat'])} (gain "
             f"{gain('nsga2-flat')}) | {verdict(hv['nsga2'], hv['nsga2-flat'])} |"]
    wins = 0
    for pair in h3["pairs"]:
        wins += pair["searched_accuracy"] - pair["baseline_accuracy"] > (noise or 0.0)
        lines.append(
            f"| H3 {pair['baseline']} vs searched | {pair['baseline_macs'] / 1e6:.1f} vs "
            f"{pair['searched_macs'] / 1e6:.1f} M MACs; accuracy "
            f"{100 * pair['baseline_accuracy']:.1f} % vs {100 * pair['searched_accuracy']:.1f} %; "
            f"peak memory {pair['baseline_memory_bytes'] / 1e6:.2f} vs "
            f"{pair['searched_memory_bytes'] / 1e6:.2f} MB | "
            f"{_winner(pair['searched_accuracy'], pair['baseline_accuracy'], noise)} |")
    if h4 is not None:
        lines.append(
            f"| H4 transfer {h4['device']} -> {h4['other']} | {h4['archs']} archs "
            f"({h4['front']} on the front): Kendall tau of the table's prediction with "
            f"measurements there {h4['tau_predicted_here_vs_measured_there']:.3f} (here "
            f"{h4['tau_predicted_vs_measured_here']:.3f}); measured here vs there "
            f"{h4['tau_measured_here_vs_there']:.3f}; median speed-up "
            f"{h4['speedup_median']:.2f}x | {h4['front_kept']} of {h4['front']} front archs "
            f"stay Pareto-optimal |")
    cfg = h3["config"]
    lines.append("")
    lines.append(f"Recipe (the ground truth's): {cfg['epochs']} epochs, batch "
                 f"{cfg['batch_size']}, lr {cfg['lr']} (cosine), subset {cfg['limit'] or 'all'} "
                 f"of {h3['data']}, validation {cfg['val_fraction']:.0%} carved from those "
                 f"training images; searched archs won {wins} of {len(h3['pairs'])} H3 pairs "
                 "by more than the seed-to-seed std (one training per arch; peak memory is "
                 "not an objective of this comparison).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

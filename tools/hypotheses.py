"""The paper's four hypotheses, measured at a small scale in one command (under an hour on
two CPU cores) or at paper scale with larger settings on a GPU.

    taskset -c 0,1 .venv/bin/python tools/hypotheses.py --out runs/hypotheses

H1  multi-objective (NSGA-II) vs single-objective (weighted sum, TPE): hypervolume at
    equal evaluations.
H2  hierarchical vs flat search space (same genes, Optuna's plain NSGA-II variation):
    hypervolume at equal evaluations.
H3  searched vs hand-designed networks at matched MACs (the NSGA-II arch with the best
    accuracy estimate within +-25 % of the baseline's MACs, else the closest), all trained
    from scratch with one recipe on the same images and scored on a validation split
    carved from them: accuracy and peak memory side by side.
H4  transfer: the archs searched under one device's latency table, re-measured on another
    device (--transfer-device; default: the same host with 2 ONNX Runtime threads instead
    of 1); rank correlation and how much of the front stays Pareto-optimal. When the
    other device has a table of its own, its predictions are ranked against its
    measurements too.

Each hypothesis writes `<out>/h<N>.json` when done and is skipped on the next call, so a
killed run continues with the unfinished ones (training runs resume by epoch). At the end
the table is printed and written to `<out>/hypotheses.md` and `<out>/hypotheses.json`.
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

from edgenas.assess import assess, predict_latency
from edgenas.profile.measure import measure_latency
from edgenas.cost.count import count
from edgenas.profile.latency import LatencyModel, kendall_tau
from edgenas.device.descriptor import get_device
from edgenas.errors import EdgenasError
from edgenas.jsonio import write_json_atomic
from edgenas.profile.lut import open_lut
from strategies import compare_strategies, jsonable, searched_trials
from edgenas.search.engine import front
from edgenas.search.objectives import Budgets, Evaluator
from edgenas.search.pareto import non_dominated
from edgenas.space import Arch, get_space
from edgenas.space.baselines import baseline_archs
from edgenas.train.loop import TrainConfig

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


def supernet_dir(args: argparse.Namespace, out: Path) -> str:
    if args.supernet:
        return args.supernet
    from edgenas.train.supernet_training import train_supernet

    run = out / "supernet"
    say(f"training the accuracy estimator: supernet on {args.supernet_data}, "
        f"{args.supernet_epochs} epochs -> {run}")
    train_supernet(get_space(args.space), args.supernet_data, run,
                   TrainConfig(epochs=args.supernet_epochs, seed=0, val_fraction=0.3))
    return str(run)


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
    if spread and abs(diff) < spread:
        return f"not shown (difference {diff:+.3g} is within one std {spread:.3g})"
    return ("supported" if diff > 0 else "contradicted") + f" (difference {diff:+.3g}, std {spread:.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/hypotheses")
    parser.add_argument("--space", default="cifar")
    parser.add_argument("--device", default="host-cpu")
    parser.add_argument("--profiles-dir", default="profiles")
    parser.add_argument("--supernet", help="a trained supernet run; default: train one")
    parser.add_argument("--supernet-data", default="digits")
    parser.add_argument("--supernet-epochs", type=int, default=15)
    parser.add_argument("--val-limit", type=int, default=200,
                        help="supernet estimates on the first N validation images")
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--population", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--h3-data", default=CIFAR_TREE,
                        help="images for H3's training (ImageFolder tree, cifar10:PATH, digits; "
                             "default: $EDGENAS_CIFAR10, else digits)")
    parser.add_argument("--h3-limit", type=int, default=5000,
                        help="class-balanced subset of the H3 images (0: all)")
    parser.add_argument("--h3-epochs", type=int, default=3)
    parser.add_argument("--h3-val-fraction", type=float, default=0.2)
    parser.add_argument("--transfer-device",
                        help="H4's second device (a descriptor); default: --device with "
                             "--transfer-threads ONNX Runtime threads")
    parser.add_argument("--transfer-threads", type=int, default=2)
    parser.add_argument("--transfer-random", type=int, default=20,
                        help="random archs added to the front for H4's rank correlation")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space = get_space(args.space)
    device = get_device(args.device)
    lut = open_lut(device, space, args.profiles_dir)
    objectives = ("accuracy", "latency", "memory")

    search_cache: dict[str, Any] = {}

    def search() -> dict[str, Any]:
        """H1 and H2 share one comparison; H3 and H4 read the archs NSGA-II found."""
        if "summary" not in search_cache:
            from edgenas.train.supernet_training import supernet_evaluator

            accuracy = supernet_evaluator(supernet_dir(args, out), val_limit=args.val_limit)
            evaluator = Evaluator(objectives, Budgets(), LatencyModel(lut), accuracy.evaluate)
            say(f"H1/H2: 4 strategies x {len(args.seeds)} seeds x {args.trials} evaluations")
            search_cache["summary"] = compare_strategies(
                space, evaluator, ("nsga2", "nsga2-flat", "weighted-sum", "random"),
                args.trials, args.population, args.seeds,
                on_run=lambda r: say(f"  {r['strategy']} seed {r['seed']}: "
                                     f"{r['seconds']:.0f} s"))
            trials = searched_trials(search_cache["summary"], "nsga2")
            write_json_atomic([{"arch": t.user_attrs["arch"], **t.user_attrs["metrics"],
                                "feasible": t.user_attrs["feasible"]} for t in trials],
                              out / "nsga2_trials.json")
        return search_cache["summary"]

    def searched() -> list[dict[str, Any]]:
        path = out / "nsga2_trials.json"
        if not path.exists():
            search()
        return json.loads(path.read_text())

    def h12() -> dict[str, Any]:
        return jsonable(search())

    comparison = stage(out, "h12", h12)
    hv = {s: row["hypervolume"] for s, row in comparison["strategies"].items()}

    def h3() -> dict[str, Any]:
        trials = [_Trial(r) for r in searched()]
        baselines = baseline_archs(space)
        picks: dict[str, Arch] = {}
        pairs = []
        for name, arch in baselines.items():
            trial = matched(trials, count(arch).macs / 1e6)
            label = f"searched, {trial.user_attrs['metrics']['macs']:.1f} M MACs"
            picks[label] = Arch.from_json(trial.user_attrs["arch"])
            pairs.append([name, label])
        data = args.h3_data  # open_dataset (in assess) names a missing path and the fix
        config = TrainConfig(epochs=args.h3_epochs, seed=0, val_fraction=args.h3_val_fraction,
                             limit=args.h3_limit or None)
        say(f"H3: training {len(baselines) + len(picks)} networks, {args.h3_epochs} epochs "
            f"on {data} (subset {args.h3_limit or 'all'})")
        records = assess({**baselines, **picks}, device, lut, data, out / "h3", config,
                         on_trained=lambda n, r: say(f"  {n}: {100 * r['val_accuracy']:.1f} %"))
        return {"data": data, "config": config.to_dict(), "networks": records,
                "pairs": pairs}

    matched_result = stage(out, "h3", h3)

    def h4() -> dict[str, Any]:
        trials = [_Trial(r) for r in searched()]
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

    transfer = stage(out, "h4", h4)
    table = render(comparison, hv, matched_result, transfer)
    print(table)
    (out / "hypotheses.md").write_text(table + "\n")
    write_json_atomic({"h12": comparison, "h3": matched_result, "h4": transfer},
                      out / "hypotheses.json")


class _Trial:
    """A stored trial record with the attributes `front` and `matched` read."""

    def __init__(self, record: dict[str, Any]) -> None:
        metrics = {k: v for k, v in record.items() if k not in ("arch", "feasible")}
        self.user_attrs = {"arch": record["arch"], "metrics": metrics,
                           "feasible": record["feasible"]}


def _winner(searched: float, baseline: float) -> str:
    if searched == baseline:
        return "tie"
    return "searched better" if searched > baseline else "baseline better"


def render(comparison: dict[str, Any], hv: dict[str, list[float]], h3: dict[str, Any],
           h4: dict[str, Any]) -> str:
    def mean_std(values: list[float]) -> str:
        return f"{np.mean(values):.4g} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.2g}"

    n = comparison["trials"]
    seeds = len(comparison["seeds"])
    lines = ["| hypothesis | measured | result |", "| --- | --- | --- |",
             f"| H1 multi- vs single-objective | hypervolume at {n} evaluations, {seeds} seeds: "
             f"NSGA-II {mean_std(hv['nsga2'])}, weighted sum {mean_std(hv['weighted-sum'])}, "
             f"random {mean_std(hv['random'])} | {verdict(hv['nsga2'], hv['weighted-sum'])} |",
             f"| H2 hierarchical vs flat | hypervolume at {n} evaluations: hierarchical "
             f"{mean_std(hv['nsga2'])}, flat {mean_std(hv['nsga2-flat'])} | "
             f"{verdict(hv['nsga2'], hv['nsga2-flat'])} |"]
    nets = {r["name"]: r for r in h3["networks"]}
    wins = 0
    for base, pick in h3["pairs"]:
        b, p = nets[base], nets[pick]
        wins += p["val_accuracy"] > b["val_accuracy"]
        lines.append(
            f"| H3 {base} vs searched | {b['macs'] / 1e6:.1f} vs {p['macs'] / 1e6:.1f} M MACs; "
            f"accuracy {100 * b['val_accuracy']:.1f} % vs {100 * p['val_accuracy']:.1f} %; "
            f"peak memory {b['memory_bytes_fp32'] / 1e6:.2f} vs "
            f"{p['memory_bytes_fp32'] / 1e6:.2f} MB; measured {b['measured_ms']:.2f} vs "
            f"{p['measured_ms']:.2f} ms | "
            f"{_winner(p['val_accuracy'], b['val_accuracy'])} |")
    lines.append(
        f"| H4 transfer {h4['device']} -> {h4['other']} | {h4['archs']} archs "
        f"({h4['front']} on the front): Kendall tau of the table's prediction with "
        f"measurements there {h4['tau_predicted_here_vs_measured_there']:.3f} (here "
        f"{h4['tau_predicted_vs_measured_here']:.3f}); measured here vs there "
        f"{h4['tau_measured_here_vs_there']:.3f}"
        + (f"; {h4['other']}'s own table vs its measurements "
           f"{h4['tau_table_there_vs_measured_there']:.3f}"
           if h4.get("tau_table_there_vs_measured_there") is not None else "")
        + f"; median speed-up "
        f"{h4['speedup_median']:.2f}x | {h4['front_kept']} of {h4['front']} front archs stay "
        f"Pareto-optimal |")
    cfg = h3["config"]
    lines.append("")
    lines.append(f"H3 recipe: {cfg['epochs']} epochs, batch {cfg['batch_size']}, lr "
                 f"{cfg['lr']} (cosine), subset {cfg['limit'] or 'all'} of {h3['data']}, "
                 f"validation {cfg['val_fraction']:.0%} carved from those training images; "
                 f"searched archs won {wins} of {len(h3['pairs'])} pairs.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

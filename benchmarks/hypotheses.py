"""The paper's hypotheses, measured with the surrogate-assisted search on the CIFAR-10
recipe of the committed ground truth (CPU hours: run it in the background; it resumes).

    EDGENAS_CIFAR10=../shared/data/cifar10-jpeg nohup .venv/bin/python -m benchmarks hypotheses \
        --out runs/hypotheses > runs/hypotheses.log 2>&1 &

H1  multi-objective (NSGA-II on the surrogate) vs single-objective (weighted sum, TPE on
    the surrogate) vs random candidates: hypervolume of the trained archs at an equal
    training budget, over several seeds.
H2  hierarchical vs flat variation (Optuna's plain NSGA-II) in the same loop.
H3  searched vs hand-designed networks at matched MACs: the NSGA-II runs' trained arch
    with the best accuracy within +-25 % of the baseline's MACs (else the closest), against
    ResNet-20/56 and MobileNetV2-in-space, all trained with the ground truth's recipe.
H3 at matched measured latency and peak memory (stage ``h3-latency``): every NSGA-II run's
    trained archs and the baselines timed on --device in interleaved rounds; per seed, the
    front's most accurate arch no slower (no larger) than each baseline and its fastest
    (smallest) arch at least as accurate. It needs no images: ``--only h3-latency`` runs it
    from the committed records alone and also writes ``benchmarks/results/h3-latency.json``.
H4  transfer: the NSGA-II front, timed on this device and on another (--transfer-device;
    default: the same host with 2 ONNX Runtime threads instead of 1).

Every run of a seed starts from the same ten ground-truth archs (their accuracies are the
ground truth's seed-0 runs, the recipe is the ground truth's), so strategies differ only
in the candidates they train; an arch two runs propose is trained once. Objectives are
accuracy, MACs and peak memory (exact, host-independent, so a resumed comparison proposes
what an uninterrupted one would). ``--objectives accuracy latency memory`` searches on the
device's committed latency table instead of MACs (deterministic too); its runs are recorded
under the strategy's name tagged with the objectives (``nsga2+prior@latency-memory``), and
``--only h3-latency --h3-strategy`` judges them. Each hypothesis writes `<out>/h<N>.json` when done; the
table goes to `<out>/hypotheses.md` and `<out>/hypotheses.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import optuna

from edgenas.assess import predict_latency
from edgenas.cost.count import count
from edgenas.device.descriptor import Device, get_device
from edgenas.device.session import DeviceSession
from edgenas.errors import EdgenasError
from edgenas.estimate.estimators import DEFAULT_TABLE
from edgenas.estimate.groundtruth import GroundTruth
from edgenas.jsonio import write_json_atomic
from edgenas.profile.latency import LatencyModel, kendall_tau
from edgenas.profile.level import pair_gaps
from edgenas.profile.lut import open_lut
from edgenas.profile.measure import measure_latency
from edgenas.profile.onnx_graph import network_model
from edgenas.profile.precision import DeviceModels
from edgenas.profile.timing import time_batch
from edgenas.progress import StageProgress
from edgenas.search.engine import front
from edgenas.search.pareto import non_dominated
from edgenas.search.trained_search import SurrogateConfig, trained_evaluator
from edgenas.space import Arch, get_space
from edgenas.train.loop import TrainConfig
from edgenas.train.rundata import prepare_data
from edgenas.train.standalone import recipe_trainer
from benchmarks.harness import command_line, table_arguments
from benchmarks.strategies import compare_trained, jsonable

#: Runs finished so far, committed: a comparison continues from them anywhere.
RECORDED = Path(__file__).resolve().parent / "results" / "hypotheses-runs.jsonl"
#: H1/H2's objectives: exact and host-independent (a resumed run proposes the same archs)
OBJECTIVES = ("accuracy", "macs", "memory")
#: where the CIFAR-10 ImageFolder tree is, when not given: the environment, never a fixed path
CIFAR_TREE = os.environ.get("EDGENAS_CIFAR10", "digits")
#: H3 at matched latency, as committed: host, date, every network's round times, the pairs
H3_LATENCY_RESULT = Path(__file__).resolve().parent / "results" / "h3-latency.json"
#: Interleaved timing rounds per network: their median is the latency, their spread the noise
H3_ROUNDS = 7


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


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    parser.add_argument("--out", default="runs/hypotheses")
    table_arguments(parser)
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
    parser.add_argument("--skip-h3-latency", action="store_true",
                        help="leave out H3 at matched measured latency (it times networks)")
    parser.add_argument("--only", choices=["h3-latency"],
                        help="run this stage alone, from the recorded runs (--known): no "
                             "images, no training")
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES),
                        help="the trained searches' objectives (accuracy first); latency is "
                             "the --device's committed table's prediction")
    parser.add_argument("--h3-strategy", default="nsga2",
                        help="H3-latency: whose recorded runs are judged (a tagged name "
                             "for runs with other --objectives)")
    parser.add_argument("--rounds", type=int, default=H3_ROUNDS,
                        help="H3-latency: interleaved timing rounds per network")
    parser.add_argument("--h3-latency-json", default=str(H3_LATENCY_RESULT),
                        help="H3-latency's result with host, date and every timing, "
                             "written by --only h3-latency (commit-able)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gt = GroundTruth.load(args.groundtruth)
    noise = seed_noise(gt)

    def h3_latency() -> dict[str, Any]:
        try:
            return measured_h3(get_device(args.device), gt, Path(args.known), args.seeds,
                               args.rounds, noise, strategy=args.h3_strategy)
        except EdgenasError as err:
            parser.error(f"H3-latency: {err}")

    if args.only == "h3-latency":
        result = stage(out, "h3-latency", h3_latency)
        write_json_atomic(result, Path(args.h3_latency_json))
        table = render_measured_h3(result)
        print(table)
        (out / "h3-latency.md").write_text(table + "\n")
        say(f"written {out / 'h3-latency.md'} and {args.h3_latency_json}")
        return
    if not args.data:
        parser.error("--data: give the ground truth's images (or set EDGENAS_CIFAR10)")
    space = get_space(args.space)
    recipe = TrainConfig.from_dict({**gt.recipe, "seed": 0}, args.groundtruth)
    samples = [e for e in gt.finished if e.stratum != "baseline" and 0 in e.accuracy]
    config = SurrogateConfig(args.train_budget, args.initial, args.per_round, "nsga2",
                             args.inner_trials, args.population)
    objectives = tuple(args.objectives)
    if objectives[0] != "accuracy" or len(set(objectives)) != len(objectives):
        parser.error(f"--objectives {' '.join(objectives)}: accuracy first, each once")
    latency_model = None
    if "latency" in objectives:
        try:
            latency_model = LatencyModel(open_lut(get_device(args.device), space,
                                                  args.profiles_dir))
        except EdgenasError as err:
            parser.error(f"--objectives latency: {err}")
    evaluator = trained_evaluator(objectives, latency_model=latency_model)
    if objectives != OBJECTIVES:  # other objectives' runs are other runs: recorded apart
        tag = "-".join(o for o in objectives if o != "accuracy")
        args.strategies = [f"{s}@{tag}" for s in args.strategies]
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

    # H3 and H4 judge one search's archs: plain NSGA-II when it ran, else the first other
    # search strategy (say nsga2+prior); a comparison of random runs alone has none
    searched_strategy = next((s for s in ("nsga2", *args.strategies)
                              if s in args.strategies and s.split("@")[0] != "random"), None)
    searched_path = out / "searched_trials.json"

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
                           for run in summary["runs"] if run["strategy"] == searched_strategy
                           for t in run["trials"]], searched_path)
        return jsonable(summary)

    comparison = stage(out, "h12", h12)
    hv = {s: row["hypervolume"] for s, row in comparison["strategies"].items()}

    def h3() -> dict[str, Any]:
        trials = [_Trial(r) for r in json.loads(searched_path.read_text())]
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
        return {"data": args.data, "config": recipe.to_dict(), "pairs": pairs,
                "strategy": searched_strategy}

    if searched_strategy is None:
        say("H3/H4: no search strategy among --strategies (random alone); left out")
    matched_result = None if searched_strategy is None else stage(out, "h3", h3)
    at_latency = (None if args.skip_h3_latency or searched_strategy != "nsga2"
                  else stage(out, "h3-latency", h3_latency))  # recorded nsga2 runs only
    transfer = (None if args.skip_h4 or searched_strategy is None
                else stage(out, "h4", lambda: h4(args, space, searched_path, objectives)))
    table = render(comparison, hv, matched_result, transfer, noise)
    if at_latency is not None:
        table += "\n\n" + render_measured_h3(at_latency)
    print(table)
    (out / "hypotheses.md").write_text(table + "\n")
    h3_record = None if matched_result is None else {**matched_result, "seed_to_seed_std": noise}
    write_json_atomic({"h12": comparison, "h3": h3_record,
                       "h3_latency": at_latency, "h4": transfer},
                      out / "hypotheses.json")


def h4(args: argparse.Namespace, space: Any, searched_path: Path,
       objectives: tuple[str, ...]) -> dict[str, Any]:
    """The searched front (trained archs, on the search's ``objectives``) timed on this
    device and on another."""
    device = get_device(args.device)
    lut = open_lut(device, space, args.profiles_dir)
    trials = [_Trial(r) for r in json.loads(searched_path.read_text())]
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


def searched_objectives(strategy: str) -> list[str]:
    """The objectives a recorded strategy searched on: its ``@`` tag, else `OBJECTIVES`."""
    _, _, tag = strategy.partition("@")
    return ["accuracy", *tag.split("-")] if tag else list(OBJECTIVES)


def recorded_runs(path: Path, strategy: str, seeds: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each seed's trained archs (records of `log_run`) of ``strategy``; the last record of
    a (strategy, seed) wins. Raises when a seed has none."""
    runs: dict[int, list[dict[str, Any]]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line) if line.strip() else {}
            if record.get("strategy") == strategy and record.get("seed") in seeds:
                runs[record["seed"]] = record["trained"]
    missing = [seed for seed in seeds if seed not in runs]
    if missing:
        raise EdgenasError(f"{path}: no finished {strategy} run for seed(s) {missing}; run "
                           "the comparison (H1/H2) first, or give --seeds that it recorded")
    return {seed: runs[seed] for seed in seeds}


def time_in_rounds(device: Device, archs: Mapping[str, Arch], rounds: int,
                   seed: int = 0) -> dict[str, list[float]]:
    """Each network's median latency (ms) in each of ``rounds`` rounds over all of them.

    A round times every network once, in its own shuffled order, so that a slow spell of a
    shared host hits every network alike and no network always follows the same one; the
    median of a network's rounds is its latency, their range says how far to trust it."""
    models = DeviceModels(device, {name: partial(network_model, arch)  # its precision
                                   for name, arch in archs.items()})
    times: dict[str, list[float]] = {name: [] for name in archs}
    rng = np.random.default_rng(seed)
    names = list(models)
    with DeviceSession(device) as session:
        for index in range(rounds):
            started = time.perf_counter()
            order = [names[i] for i in rng.permutation(len(names))]
            time_batch(session, {name: models[name] for name in order},
                       lambda name, timing: times[name].append(float(timing.median_ms)),
                       len(order), lambda: None, StageProgress())
            say(f"  round {index + 1}/{rounds}: {len(order)} networks, "
                f"{time.perf_counter() - started:.0f} s")
    return times


def timing_summary(rounds_ms: Mapping[str, list[float]]) -> dict[str, Any]:
    """Per network the median of its rounds, their interquartile range (``spread_pct``) and
    full range (``range_pct``), both over the median; for all, how far rounds disagree and
    how fast the host ran in each round (``round_level``: the networks' median ratio of
    that round to their own median). The full range is set by single-round bursts of a
    shared host (a network twice as slow in one round of 15); the median ignores them."""
    networks = {}
    for name, times in rounds_ms.items():
        median = float(np.median(times))
        low, high = np.percentile(times, [25, 75])
        networks[name] = {"median_ms": median, "rounds_ms": [float(t) for t in times],
                          "spread_pct": float(100 * (high - low) / median),
                          "range_pct": float(100 * (max(times) - min(times)) / median)}
    spreads = [n["spread_pct"] for n in networks.values()]
    count_rounds = min(len(t) for t in rounds_ms.values())
    level = [float(np.median([t[r] / networks[n]["median_ms"] for n, t in rounds_ms.items()]))
             for r in range(count_rounds)]
    noise = {"rounds": count_rounds, "median_spread_pct": float(np.median(spreads)),
             "p90_spread_pct": float(np.percentile(spreads, 90)),
             "median_range_pct": float(np.median([n["range_pct"] for n in networks.values()])),
             "round_level": level,
             "first_two_rounds": pair_gaps([t[:2] for t in rounds_ms.values() if len(t) >= 2])}
    return {"networks": networks, "noise": noise}


def accuracy_front(trained: list[dict[str, Any]], cost: str) -> list[dict[str, Any]]:
    """The archs no other is both more accurate and cheaper than (in ``cost``)."""
    if not trained:
        return []
    points = np.array([[-t["accuracy"], t[cost]] for t in trained], dtype=float)
    return [t for t, kept in zip(trained, non_dominated(points)) if kept]


def _pick(trial: dict[str, Any] | None, cost: str) -> dict[str, Any] | None:
    return None if trial is None else {"arch": trial["arch"], "accuracy": trial["accuracy"],
                                       "round": trial.get("round"), cost: trial[cost]}


def compare_at(searched: Mapping[int, list[dict[str, Any]]], cost: str, limit: float,
               accuracy: float, noise: float | None) -> dict[str, Any]:
    """Searched fronts against one baseline at its ``cost`` (``limit``) and ``accuracy``.

    Per seed: the front's most accurate arch costing no more than the baseline
    (``matched``, None when none does) and its gap in points, and the front's cheapest arch
    at least as accurate (``as_accurate``) with the baseline's cost over its own
    (``saving``). Over seeds: the gaps' mean and std, and the verdict on the mean matched
    accuracy against the recipe's seed-to-seed std (`_winner`)."""
    seeds = []
    for seed, trained in searched.items():
        on_front = accuracy_front(trained, cost)
        best = max((t for t in on_front if t[cost] <= limit),
                   key=lambda t: (t["accuracy"], -t[cost]), default=None)
        cheapest = min((t for t in on_front if t["accuracy"] >= accuracy),
                       key=lambda t: (t[cost], -t["accuracy"]), default=None)
        seeds.append({"seed": seed, "front": len(on_front),
                      "within": sum(t[cost] <= limit for t in trained),
                      "matched": _pick(best, cost),
                      "gap_pts": None if best is None else 100 * (best["accuracy"] - accuracy),
                      "as_accurate": _pick(cheapest, cost),
                      "saving": None if cheapest is None else limit / cheapest[cost]})
    gaps = [s["gap_pts"] for s in seeds if s["gap_pts"] is not None]
    if gaps:
        verdict = _winner(float(np.mean([s["matched"]["accuracy"] for s in seeds
                                         if s["matched"] is not None])), accuracy, noise)
        if len(gaps) < len(seeds):
            verdict += f"; {len(seeds) - len(gaps)} of {len(seeds)} seeds have no arch within it"
    else:
        verdict = "none: no searched arch costs as little as the baseline in any seed"
    return {"seeds": seeds, "seeds_matched": len(gaps),
            "gap_mean_pts": float(np.mean(gaps)) if gaps else None,
            "gap_std_pts": float(np.std(gaps, ddof=1)) if len(gaps) > 1 else None,
            "verdict": verdict}


def compare_measured(runs: Mapping[int, list[dict[str, Any]]], baselines: list[dict[str, Any]],
                     latency_ms: Mapping[str, float], noise: float | None) -> list[dict[str, Any]]:
    """For each baseline (name, arch JSON, accuracy, memory_bytes), every seed's searched
    archs (`log_run` records) compared at its measured latency (``latency_ms`` by arch JSON)
    and at its peak memory (`compare_at`)."""
    searched = {seed: [{**t, "latency_ms": latency_ms[t["arch"]],
                        "memory_bytes": t["memory"] * 1e6} for t in trained]
                for seed, trained in runs.items()}
    pairs = []
    for base in baselines:
        pair = {"baseline": base["name"], "baseline_accuracy": base["accuracy"],
                "baseline_latency_ms": latency_ms[base["arch"]],
                "baseline_memory_bytes": base["memory_bytes"],
                "baseline_seeds": base.get("accuracy_seeds")}
        for cost in ("latency_ms", "memory_bytes"):
            pair[f"at_{cost}"] = compare_at(searched, cost, pair[f"baseline_{cost}"],
                                            base["accuracy"], noise)
        pairs.append(pair)
    return pairs


def host_info() -> dict[str, Any]:
    """What the timings depend on: the CPU, the runtime, when, how loaded."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:  # the runtime a local agent times with
        runtime: str | None = metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        runtime = None
    return {"cpu": model, "cpus": os.cpu_count(), "machine": platform.machine(),
            "onnxruntime": runtime,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def measured_h3(device: Device, gt: GroundTruth, known: Path, seeds: list[int], rounds: int,
                noise: float | None, strategy: str = "nsga2",
                timer: Callable[[Device, Mapping[str, Arch], int], dict[str, list[float]]]
                = time_in_rounds) -> dict[str, Any]:
    """H3 at matched measured latency and peak memory: the recorded ``strategy`` runs'
    trained archs and the ground truth's baselines timed together in ``rounds`` rounds
    (by ``timer``: each network's round times, as `time_in_rounds` gives them)."""
    runs = recorded_runs(known, strategy, seeds)
    baselines = [{"name": e.name, "arch": e.arch.to_json(), "accuracy": e.mean_accuracy,
                  "accuracy_seeds": sorted(e.accuracy),
                  "memory_bytes": count(e.arch).memory_bytes("fp32")}
                 for e in gt.finished if e.stratum == "baseline"]
    if not baselines:
        raise EdgenasError("the ground truth has no trained baselines (stratum 'baseline')")
    archs = {b["name"]: Arch.from_json(b["arch"]) for b in baselines}
    keys = {b["name"]: b["arch"] for b in baselines}
    distinct = list(dict.fromkeys(t["arch"] for trained in runs.values() for t in trained))
    for i, key in enumerate(distinct):
        archs[f"searched-{i:02d}"], keys[f"searched-{i:02d}"] = Arch.from_json(key), key
    say(f"H3-latency: {len(distinct)} distinct {strategy} archs (seeds {seeds}) and "
        f"{len(baselines)} baselines, {rounds} interleaved rounds on {device.name}")
    host = host_info()
    started = time.perf_counter()
    timing = timing_summary(timer(device, archs, rounds))
    for name, item in timing["networks"].items():
        item["arch"] = keys[name]
    latency_ms = {keys[name]: item["median_ms"] for name, item in timing["networks"].items()}
    pairs = compare_measured(runs, baselines, latency_ms, noise)
    by_arch = {keys[name]: item["rounds_ms"] for name, item in timing["networks"].items()}
    for pair in pairs:  # a match by medians that single rounds would overturn is fragile
        base = by_arch[keys[pair["baseline"]]]
        for seed in pair["at_latency_ms"]["seeds"]:
            if seed["matched"] is not None:
                own = by_arch[seed["matched"]["arch"]]
                seed["matched"]["no_slower_in_rounds"] = float(np.mean(
                    [a <= b for a, b in zip(own, base)]))
    return {"schema_version": 1, "device": device.name, "runtime": device.runtime_settings(),
            "host": {**host, "timing_seconds": time.perf_counter() - started,
                     "load_average_after": list(os.getloadavg())
                     if hasattr(os, "getloadavg") else None},
            "strategy": strategy, "seeds": seeds, "searched_objectives": searched_objectives(strategy),
            "recipe": gt.recipe, "data": gt.data, "seed_to_seed_std": noise,
            "timing_noise": timing["noise"],
            "pairs": pairs,
            "networks": timing["networks"]}


def render_measured_h3(result: dict[str, Any]) -> str:
    """H3 at matched measured latency and peak memory as markdown tables."""
    timing = result["timing_noise"]
    first = timing["first_two_rounds"] or {}
    lines = [f"H3 at matched measured latency on {result['device']} "
             f"({result['runtime']['name']}, {result['runtime']['threads']} thread(s); "
             f"{result['host']['cpu']}, {result['host']['date']}): the {result['strategy']} "
             f"runs of seeds {', '.join(map(str, result['seeds']))}, 20-arch fronts each. "
             f"These searches optimised {', '.join(result['searched_objectives'])}"
             + ("" if "latency" in result["searched_objectives"] else ", not latency")
             + ". Latency: median of "
             f"{timing['rounds']} interleaved rounds; their interquartile range is "
             f"{timing['median_spread_pct']:.1f} % of the median for the median network "
             f"({timing['p90_spread_pct']:.1f} % at the 90th percentile; full range "
             f"{timing['median_range_pct']:.1f} %, single-round bursts); rounds 1 and 2 agree "
             f"within 10 % for {100 * first.get('within_10pct', float('nan')):.0f} % of "
             "networks; the host ran at " + ", ".join(f"{x:.2f}" for x in timing["round_level"])
             + " of its median speed round by round."]
    units = {"latency_ms": ("ms", 1.0, "{:.2f}", "latency", "speed-up"),
             "memory_bytes": ("MB", 1e-6, "{:.2f}", "peak memory", "less memory")}
    noise = result["seed_to_seed_std"]
    against = f"seed-to-seed std {100 * noise:.1f} pts" if noise else "no seed-to-seed std"
    for cost, (unit, scale, fmt, label, saving) in units.items():
        lines += ["", f"| baseline ({label}, accuracy) | searched: most accurate within the "
                      f"baseline's {label}, per seed | gap (pts), mean ± std over seeds | "
                      f"verdict ({against}) | searched: cheapest as accurate, per seed "
                      f"({saving}) |", "| --- | --- | --- | --- | --- |"]
        for pair in result["pairs"]:
            row = pair[f"at_{cost}"]

            def show(seed: dict[str, Any], key: str) -> str:
                pick = seed[key]
                if pick is None:
                    return f"s{seed['seed']} none"
                text = f"s{seed['seed']} {fmt.format(pick[cost] * scale)} {unit}"
                if key == "matched":
                    origin = "warm start" if pick["round"] == 0 else f"round {pick['round']}"
                    share = pick.get("no_slower_in_rounds", 1.0)
                    return text + f", {100 * pick['accuracy']:.1f} % ({origin}" + (
                        "" if share == 1.0 else f"; no slower in {100 * share:.0f} % of "
                        "rounds") + ")"
                return text + f" ({seed['saving']:.2f}x)"

            gap = ("none" if row["gap_mean_pts"] is None else f"{row['gap_mean_pts']:+.1f} ± "
                   + ("n/a" if row["gap_std_pts"] is None else f"{row['gap_std_pts']:.1f}")
                   + f" ({row['seeds_matched']} of {len(row['seeds'])} seeds)")
            lines.append(
                f"| {pair['baseline']} ({fmt.format(pair[f'baseline_{cost}'] * scale)} {unit}, "
                f"{100 * pair['baseline_accuracy']:.1f} %) | "
                + "; ".join(show(s, "matched") for s in row["seeds"]) + f" | {gap} | "
                f"{row['verdict']} | " + "; ".join(show(s, "as_accurate") for s in row["seeds"])
                + " |")
    cfg = result["recipe"]
    lines += ["", f"Recipe (the ground truth's): {cfg['epochs']} epochs on {cfg['limit']} "
              f"CIFAR-10 training images, {cfg['val_fraction']:.0%} of them carved off for "
              "validation (no test split); one training per searched arch; trainings per "
              "baseline: " + ", ".join(f"{p['baseline']} {len(p['baseline_seeds'] or [])}"
                                       for p in result["pairs"]) + ". Warm-start archs are "
              "the ten random ground-truth samples a seed's run starts from, not the "
              "search's choice. A latency match says in how many interleaved rounds the "
              "arch was no slower than the baseline when not in all. "
              "The best of several archs under a budget is biased up by training noise "
              "(more so the more archs fit under it). Peak memory: analytic fp32 weights "
              "plus peak live activations."]
    return "\n".join(lines)


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


def render(comparison: dict[str, Any], hv: dict[str, list[float]], h3: dict[str, Any] | None,
           h4: dict[str, Any] | None, noise: float | None = None) -> str:
    def mean_std(values: list[float]) -> str:
        return f"{np.mean(values):.4g} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.2g}"

    # runs on other objectives carry one "@tag" (nsga2+prior@latency-memory): compared as
    # their untagged names, the tag said once in the setting
    tag = next((name.partition("@")[2] for name in comparison["strategies"] if "@" in name), "")
    rows = {name.split("@")[0]: row for name, row in comparison["strategies"].items()}
    hv = {name.split("@")[0]: values for name, values in hv.items()}

    def gain(strategy: str) -> str:
        return mean_std(rows[strategy]["gain_over_warm_start"])

    n, seeds = comparison["train_budget"], len(comparison["seeds"])
    setting = (f"hypervolume of {n} trained archs ({comparison['initial']} shared warm start, "
               f"{n - comparison['initial']} chosen), {seeds} seeds"
               + (f", objectives accuracy, {tag.replace('-', ', ')}" if tag else ""))
    lines = ["| hypothesis | measured | result |", "| --- | --- | --- |"]
    if "nsga2" in hv:  # each comparison only where both strategies ran
        measured = [f"NSGA-II {mean_std(hv['nsga2'])} (gain over the warm start {gain('nsga2')})"]
        verdicts = []
        for other, label in (("weighted-sum", "weighted sum"), ("random", "random")):
            if other in hv:
                measured.append(f"{label} {mean_std(hv[other])} (gain {gain(other)})")
                verdicts.append(f"vs {label}: {verdict(hv['nsga2'], hv[other])}")
        lines.append(f"| H1 multi- vs single-objective | {setting}: {', '.join(measured)} | "
                     f"{'; '.join(verdicts) or '-'} |")
        if "nsga2-flat" in hv:
            lines.append(f"| H2 hierarchical vs flat | {setting}: hierarchical "
                         f"{mean_std(hv['nsga2'])} (gain {gain('nsga2')}), flat "
                         f"{mean_std(hv['nsga2-flat'])} (gain {gain('nsga2-flat')}) | "
                         f"{verdict(hv['nsga2'], hv['nsga2-flat'])} |")
    for variant in (name for name in rows if "+" in name):  # e.g. nsga2+prior (H1 again)
        proposals = [run["surrogate"].get("proposals", {}).get("kendall_tau")
                     for run in comparison["runs"] if run["strategy"].split("@")[0] == variant]
        taus = ", ".join(f"{t:.2f}" for t in proposals if t is not None) or "-"
        against = (f"; random {mean_std(hv['random'])} (gain {gain('random')})",
                   f"vs random: {verdict(hv[variant], hv['random'])}") if "random" in hv \
            else ("", "-")
        lines.append(f"| H1 with {variant} | {setting}: {variant} {mean_std(hv[variant])} (gain "
                     f"{gain(variant)}), proposals' Kendall tau {taus}{against[0]} | "
                     f"{against[1]} |")
    if h3 is None:
        return "\n".join(lines)
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

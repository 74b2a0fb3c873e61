"""Replay of recorded trained searches: how their surrogate would have ranked with a prior.

    python -m benchmarks bench_surrogate [--runs benchmarks/results/hypotheses-runs.jsonl] \
        [--margins 0 0.1 0.2 0.3] [--zero-cost] [--json runs/bench_surrogate.json]

No training: every run of `benchmarks/hypotheses.py` recorded its trained archs in order, with
their round and accuracy (CIFAR-10 recipe of the committed ground truth) and what the
surrogate of the time predicted for them. For each run and each round r >= 1, every
surrogate variant is fitted on the archs of the rounds before r (their trained accuracies,
the run's seed) and predicts round r's archs; a run's score is the Kendall tau of all its
proposals' predictions against the accuracies they reached (10 proposals per run, as
`surrogate_summary` reports), also pooled over runs. Then each variant is fitted on all
of a run's archs: its cross-validated tau (what `surrogate_summary` calls ``final``).

Variants: the predictions as recorded; the surrogate refitted as the search fits it
without a prior; each candidate built on the committed predictor as a prior (the rescaled
prior alone ranks as the prior does); and the choice among those by cross-validated tau,
keeping the prior unless another candidate beats it by a margin (``--margins``; margin 0
is the plain best-tau choice). ``random`` runs recorded no predictions (their proposals
are random archs, not a surrogate's picks): their columns score the variants all the same
but stay out of the "surrogate runs" summaries.

The prior was fitted on the ground truth's 63 archs: the ten archs each run starts from
are among them (in sample for the prior, so a cross-validated tau on them flatters it);
the tool counts the proposals that are and scores the prior on the others too.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgenas.estimate.estimators import DEFAULT_TABLE, ProxyStore
from edgenas.estimate.features import arch_features
from edgenas.estimate.groundtruth import GroundTruth
from edgenas.estimate.predictor import (PRIOR, PRIOR_MARGIN, Predictor, candidates, choose,
                                        fit_predictor)
from edgenas.estimate.prior import AccuracyPrior, accuracy_prior
from edgenas.estimate.rank import agreement
from edgenas.profile.ranking import kendall_tau
from edgenas.jsonio import write_json_atomic
from edgenas.search.surrogate import FOLDS
from edgenas.space.arch import Arch
from benchmarks.harness import command_line

RUNS = Path(__file__).resolve().parent / "results" / "hypotheses-runs.jsonl"
RECORDED, REFIT = "as recorded", "refit, no prior"


@dataclass
class Run:
    """One recorded search: its archs in training order, rounds, accuracies, predictions."""

    label: str
    seed: int
    archs: list[Arch]
    rounds: np.ndarray
    accuracy: np.ndarray
    recorded: list[float | None]
    recorded_final_tau: float | None

    @property
    def uses_surrogate(self) -> bool:
        return any(p is not None for p in self.recorded)


def load_runs(path: Path) -> list[Run]:
    """The runs of a `benchmarks/hypotheses.py` record (one JSON object a line)."""
    runs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        trained = record["trained"]
        runs.append(Run(f"{record['strategy']}/{record['seed']}", int(record["seed"]),
                        [Arch.from_json(t["arch"]) for t in trained],
                        np.array([t["round"] for t in trained]),
                        np.array([t["accuracy"] for t in trained], float),
                        [t["predicted_accuracy"] for t in trained],
                        record.get("surrogate", {}).get("final", {}).get("cv_kendall_tau")))
    return runs


def fits(x: np.ndarray, y: np.ndarray, seed: int, prior: np.ndarray | None
         ) -> dict[str, Predictor]:
    """Each candidate fitted alone (its own cross-validated scores), with or without prior."""
    return {name: fit_predictor(x, y, FOLDS, seed, only=[name], prior=prior)
            for name in candidates(seed, prior is not None)}


def chosen(single: dict[str, Predictor], margin: float) -> str:
    """What `fit_predictor` keeps among these candidates (the same folds and seeds)."""
    return choose({name: p.candidates[name] for name, p in single.items()}, margin)


def replay_run(run: Run, priors: dict[str, np.ndarray], margins: Sequence[float]
               ) -> dict[str, Any]:
    """Per variant: the predictions of each proposal (fitted on earlier rounds), the chosen
    candidate per round, and the final cross-validated tau on all archs."""
    x = np.vstack([arch_features(a) for a in run.archs])
    y = run.accuracy
    proposals = np.flatnonzero(run.rounds >= 1)
    predicted: dict[str, np.ndarray] = {}
    picks: dict[str, list[str]] = {}
    final: dict[str, float | None] = {}
    claimed: dict[str, list[float]] = {}

    def record(variant: str, index: np.ndarray, value: np.ndarray, pick: str | None,
               cv_tau: float) -> None:
        predicted.setdefault(variant, np.full(len(y), np.nan))[index] = value
        picks.setdefault(variant, []).append(pick or "")
        claimed.setdefault(variant, []).append(cv_tau)

    for round_ in sorted(set(run.rounds[proposals].tolist())) + [None]:
        train = np.flatnonzero(run.rounds < round_) if round_ is not None else np.arange(len(y))
        test = np.flatnonzero(run.rounds == round_) if round_ is not None else None
        plain = fits(x[train], y[train], run.seed, None)
        best = chosen(plain, 0.0)
        with_prior = {label: fits(x[train], y[train], run.seed, values[train])
                      for label, values in priors.items()}
        variants: dict[str, tuple[Predictor, np.ndarray | None]] = {REFIT: (plain[best], None)}
        for label, single in with_prior.items():
            suffix = f" ({label})" if label else ""
            for name, fitted in single.items():
                variants[name + suffix] = (fitted, priors[label])
            for margin in margins:
                default = " = default" if margin == PRIOR_MARGIN else ""
                variants[f"choice, margin {margin:g}{default}{suffix}"] = \
                    (single[chosen(single, margin)], priors[label])
        for variant, (fitted, values) in variants.items():
            if test is None:
                final[variant] = fitted.cv_tau
                continue
            prior_values = None if values is None else values[test]
            record(variant, test, fitted.predict(x[test], prior=prior_values), fitted.name,
                   fitted.cv_tau)
    for label, values in priors.items():  # its own values: one order across all rounds
        name = f"prior values as they are{f' ({label})' if label else ''}"
        predicted[name], final[name] = values, kendall_tau(y, values, undefined=0.0)
    if run.uses_surrogate:
        predicted[RECORDED] = np.array([np.nan if p is None else p for p in run.recorded])
    final[RECORDED] = run.recorded_final_tau
    return {"run": run.label, "uses_surrogate": run.uses_surrogate,
            "proposals": proposals.tolist(), "accuracy": y.tolist(),
            "predicted": {k: v.tolist() for k, v in predicted.items()},
            "picks": picks, "claimed_cv_tau": claimed, "final_cv_tau": final,
            "proposal_tau": {k: kendall_tau(y[proposals], v[proposals], undefined=0.0)
                             for k, v in predicted.items()}}


def pooled(results: list[dict[str, Any]], variant: str) -> dict[str, Any] | None:
    """Kendall tau of all these runs' proposals at once, with its bootstrap interval."""
    truth, estimate = [], []
    for result in results:
        if variant not in result["predicted"]:
            return None
        for i in result["proposals"]:
            truth.append(result["accuracy"][i])
            estimate.append(result["predicted"][variant][i])
    return agreement(truth, estimate).to_dict() if len(truth) >= 3 else None


def in_sample_check(runs: list[Run], table: GroundTruth, prior: AccuracyPrior
                    ) -> dict[str, Any]:
    """How many archs are among those the prior was fitted on, and how it ranks each kind."""
    fitted_on = {a.to_json() for a in table.archs()}
    out: dict[str, Any] = {}
    for kind, keep in (("warm start (round 0)", lambda r: r.rounds == 0),
                       ("proposals", lambda r: r.rounds >= 1)):
        seen: dict[str, tuple[Arch, float]] = {}
        for run in runs:
            for i in np.flatnonzero(keep(run)):
                seen.setdefault(run.archs[i].to_json(), (run.archs[i], float(run.accuracy[i])))
        inside = [key for key in seen if key in fitted_on]
        outside = [key for key in seen if key not in fitted_on]

        def tau(keys: list[str]) -> float | None:
            if len(keys) < 3:
                return None
            return kendall_tau([seen[k][1] for k in keys],
                               prior.values([seen[k][0] for k in keys]), undefined=0.0)

        out[kind] = {"distinct": len(seen), "in_prior_fit": len(inside),
                     "prior_tau_in_sample": tau(inside), "prior_tau_out_of_sample": tau(outside)}
    return out


def table_rows(results: list[dict[str, Any]], variants: list[str], key: str
               ) -> list[list[str]]:
    """Markdown rows: per variant, each run's value, the mean over surrogate runs, pooled."""
    surrogate_runs = [r for r in results if r["uses_surrogate"]]
    rows = []
    for variant in variants:
        values = [r[key].get(variant) for r in results]
        mine = [r[key].get(variant) for r in surrogate_runs]
        mean = np.mean(mine) if mine and None not in mine else None
        cells = [variant, *("-" if v is None else f"{v:.2f}" for v in values),
                 "-" if mean is None else f"{mean:.2f}"]
        if key == "proposal_tau":
            both = pooled(surrogate_runs, variant)
            cells.append("-" if both is None else
                         f"{both['kendall_tau']:.2f} [{both['kendall_ci'][0]:.2f}, "
                         f"{both['kendall_ci'][1]:.2f}]")
            every = pooled(results, variant)
            cells.append("-" if every is None else f"{every['kendall_tau']:.2f}")
        rows.append(cells)
    return rows


def markdown(results: list[dict[str, Any]], variants: list[str], key: str) -> str:
    header = ["variant", *(r["run"] for r in results), "mean (surrogate runs)"]
    if key == "proposal_tau":
        header += ["pooled, surrogate runs [95 % CI]", "pooled, all runs"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(results, variants, key)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = command_line(__doc__, __file__)
    parser.add_argument("--runs", type=Path, default=RUNS,
                        help="recorded runs, one JSON object a line (default: %(default)s)")
    parser.add_argument("--table", default=str(DEFAULT_TABLE),
                        help="ground truth the prior is fitted on (default: the committed one)")
    parser.add_argument("--data", help="dataset of the zero-cost batch when the table stores "
                                       "none (only with --zero-cost)")
    parser.add_argument("--zero-cost", action="store_true",
                        help="also replay the prior with zero-cost features (seconds per "
                             "proposal on a CPU; the scores are cached)")
    parser.add_argument("--margins", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3],
                        help="keep the prior unless a candidate's cross-validated tau beats "
                             "it by this much (default: %(default)s)")
    parser.add_argument("--only", nargs="+", metavar="RUN",
                        help="replay only these runs (labels such as nsga2/0)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    runs = load_runs(args.runs)
    if args.only:
        runs = [run for run in runs if run.label in args.only]
    table = GroundTruth.load(args.table)
    # variants built on a prior are named after its candidate, and "(zero-cost)" for that one
    priors_by_label = {"": accuracy_prior(args.data, args.table)}
    if args.zero_cost:
        priors_by_label["zero-cost"] = accuracy_prior(args.data, args.table, proxies=True)
    results = []
    for run in runs:
        values = {label: prior.values(run.archs) for label, prior in priors_by_label.items()}
        results.append(replay_run(run, values, args.margins))
        print(f"[bench_surrogate] {run.label}: "
              + ", ".join(f"{k} {v:.2f}" for k, v in results[-1]["proposal_tau"].items()
                          if k in (RECORDED, REFIT, "prior")), file=sys.stderr, flush=True)
    if args.zero_cost:   # keep the new proposals' scores for the next replay
        estimator = priors_by_label["zero-cost"].estimator
        ProxyStore(estimator.batch, 0).save(estimator.proxy_cache)
    variants = list(dict.fromkeys(v for r in results for v in r["proposal_tau"]))
    variants.sort(key=lambda v: (v != RECORDED, v != REFIT))
    caveat = in_sample_check(runs, table, priors_by_label[""])
    seconds = time.perf_counter() - started

    print("Kendall tau of each run's proposals (predicted before training vs trained "
          "accuracy, n = 10 per run):\n")
    print(markdown(results, variants, "proposal_tau"))
    print("\nFinal cross-validated tau (fitted on all of a run's archs; for a choice, the "
          "chosen candidate's):\n")
    print(markdown(results, variants, "final_cv_tau"))
    print("\nWhat each choice kept, over all rounds of the surrogate runs (share of rounds "
          "keeping the rescaled prior; mean claimed cross-validated tau vs the mean "
          "proposals' tau):\n")
    for variant in variants:
        if not variant.startswith("choice"):
            continue
        mine = [r for r in results if r["uses_surrogate"]]
        kept = [p for r in mine for p in r["picks"][variant]]
        claims = [c for r in mine for c in r["claimed_cv_tau"][variant]]
        print(f"- {variant}: prior kept in {kept.count(PRIOR)}/{len(kept)} rounds; claimed "
              f"{np.mean(claims):.2f}, reached "
              f"{np.mean([r['proposal_tau'][variant] for r in mine]):.2f}")
    print("\nThe prior's own fit (in sample) vs not:")
    for kind, row in caveat.items():
        print(f"- {kind}: {row['in_prior_fit']} of {row['distinct']} distinct archs among the "
              f"table's; prior tau in sample {row['prior_tau_in_sample']}, out of sample "
              f"{row['prior_tau_out_of_sample']}")
    print(f"\n{len(runs)} runs replayed in {seconds:.0f} s")
    if args.json:
        write_json_atomic({"schema_version": 1, "runs_file": str(args.runs),
                           "table": args.table, "margins": args.margins,
                           "priors": {k or "arch features": p.describe()
                                      for k, p in priors_by_label.items()},
                           "seconds": seconds, "in_sample": caveat,
                           "pooled_surrogate_runs": {
                               v: pooled([r for r in results if r["uses_surrogate"]], v)
                               for v in variants},
                           "runs": results}, args.json)
    return 0

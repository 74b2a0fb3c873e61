"""Mutation testing of the numeric core (issues 27, 37): how many mutants of the Pareto,
latency, correction, padded-work, precision, level, drift, residual, ranking, predictor and
rank modules their fast tests kill.

    nice -n 19 .venv/bin/python -m benchmarks mutation [--module edgenas.profile.level ...]
        [--max-children 1] [--work /tmp/edgenas-mutation] [--resume] [--report-only]
        [--show-survivors] [--json out.json]

What is mutated and which tests run is configured in pyproject.toml (``[tool.mutmut]``).
mutmut works in a ``mutants/`` folder beside the sources, so this script runs it in a copy
of the working tree (the files git tracks or would track), never in the checkout. A fresh
copy is made unless ``--resume``: then the copy's files are refreshed and every mutant not
yet killed (surviving, unreached or not yet tested) is tested again, against the tests as
they are now; killed ones, and survivors listed in ``EQUIVALENT``, keep their result.
``--module`` restricts a run to some modules, so that a long measurement can be split.
mutmut forgets every result when pyproject.toml changes (the test selection, say): change
``[tool.mutmut]`` before a run, not between a run and its ``--resume``.
The score of a module is (killed + timed out) / (mutants - equivalent): a mutant that no
selected test reaches counts as surviving. Absolute run times depend on the host; the
score does not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib

from collections import Counter
from pathlib import Path

from edgenas.jsonio import write_json_atomic
from benchmarks.harness import command_line

ROOT = Path(__file__).resolve().parents[1]

#: Surviving mutants that no test can kill, because they change nothing a caller can
#: observe; each with the reason. Names are mutmut's, and shift when the module changes:
#: the report warns about an entry that is no longer a surviving mutant.
EQUIVALENT: dict[str, str] = {
    "edgenas.search.measured_front.x__refit__mutmut_23":
        "101 for 100 in the unsteady archs' log line: '%.0f %%' of 10.1 and of 10.0 both "
        "print 10",
    "edgenas.search.measured_front.x__refit__mutmut_65":
        "anchored=None for anchored=False: LatencyModel tests it for truth, and None is "
        "as false as False",
    "edgenas.search.measured_front.x_measure_front__mutmut_15":
        "ranked = None for ranked = trials before the passes: the first pass (MAX_PASSES is "
        "at least 1) assigns it before anything reads it",
    "edgenas.search.measured_front.x_measure_front__mutmut_37":
        "pending = None for pending = False: only its truth is read",
    "edgenas.search.measured_front.x_measure_front__mutmut_38":
        "pending = True for pending = False: the passes go on to MAX_PASSES, but a pass "
        "with nothing to time times nothing and refits nothing, so the result is the same",
    "edgenas.search.measured_front.x__time__mutmut_48":
        "101 for 100 in the retimed archs' log line: '%.0f %%' of 10.1 and of 10.0 both "
        "print 10",
    "edgenas.search.measured_front.x__second_layer__mutmut_9":
        "'or' for 'and' in the layers' loop: once no arch is left, front([]) is empty and "
        "the loop breaks with the same archs chosen",
    "edgenas.search.measured_front.x__second_layer__mutmut_10":
        "'<=' for '<' against HELD_OUT: one more pass adds layer[:0], nothing, and the "
        "loop ends when the archs run out, with the same archs chosen",
    "edgenas.search.measured_front.x__second_layer__mutmut_17":
        "'return' (None) for 'break' on an empty layer: the archs left are all feasible, "
        "so their Pareto layer is never empty and the line is never reached",
    "edgenas.search.measured_front.x__report__mutmut_15":
        "[1, 0] for [0, 0] as an unnoted arch's record: only its second item (timed after "
        "a refit or not) is read, and it stays 0",
    "edgenas.profile.drift.x_check_drift__mutmut_49":
        "'< MAX_BIAS' for '<= MAX_BIAS': they differ only where |ratio - 1| is exactly 0.1, "
        "and no double is (1 + 0.1 and 1 - 0.1 are not representable; 1.1 - 1 is "
        "0.10000000000000009)",
    "edgenas.profile.correction.xǁLineǁ__init____mutmut_1":
        "the forms are built once, when the module is imported, before mutmut switches a "
        "mutant on; nothing builds a Line later",
    "edgenas.profile.correction.xǁPerKindǁfit__mutmut_19":
        "lstsq without rcond=None: numpy 2 made None its default (the venv has 2.4)",
    "edgenas.profile.correction.xǁLogRatioǁfit__mutmut_29":
        "'target + mean' for 'target - mean' in xc.T @ (...): xc's columns are centred, so "
        "xc.T @ mean is 0 and the weights change by rounding only",
    "edgenas.profile.correction.xǁLogRatioǁfeatures__mutmut_13":
        "the stand-in sum of a network without unit time (2 for 1): its shares are 0 either "
        "way, its prediction is its sum, 0, times any factor, and no fit sees such a network",
    "edgenas.profile.correction.xǁNetworksǁof__mutmut_21":
        "unit counts kept as given (ints) instead of float64: every use multiplies them by a "
        "float or takes their maximum with 1.0, so the arithmetic is float64 either way",
    "edgenas.profile.correction.xǁNetworksǁof__mutmut_19":
        "as xǁNetworksǁof__mutmut_21 (dtype None rather than left out)",
    "edgenas.profile.correction.xǁNetworksǁof__mutmut_3":
        "per-kind sums kept as given instead of float64: each form multiplies or divides "
        "them by floats, so the arithmetic is float64 either way",
    "edgenas.profile.correction.xǁNetworksǁof__mutmut_5":
        "as xǁNetworksǁof__mutmut_3 (dtype left out rather than None)",
    "edgenas.profile.correction.xǁNetworksǁof__mutmut_6":
        "the sums of networks made for prediction (None): every form's predict reads the "
        "per-kind sums; only Line.held_out reads sums, on the Networks fit_correction builds",
    "edgenas.profile.correction.xǁNetworksǁof__mutmut_16":
        "as xǁNetworksǁof__mutmut_6 (one grand total instead of per-network sums)",
    "edgenas.profile.correction.xǁ_KindLineǁpredict__mutmut_27":
        "'raw <= edge' for 'raw < edge': at the edge the stretch is edge / raw = 1 either way",
    "edgenas.profile.correction.xǁ_KindLineǁpredict__mutmut_35":
        "the divisor's guard at raw == 0 dropped: edge / 0 is computed but np.where keeps the "
        "stretch at 1 there (raw > 0 is false); only a numpy warning differs",
    "edgenas.profile.correction.xǁ_KindLineǁpredict__mutmut_37":
        "the divisor's stand-in for raw == 0 (2 for 1): np.where never picks that quotient",
    "edgenas.profile.correction.xǁLineǁfit__mutmut_18":
        "lstsq without rcond=None: numpy 2 made None its default (the venv has 2.4)",
    "edgenas.profile.correction.x_fit_correction__mutmut_21":
        "unit sums kept as given instead of float64: the forms divide them by the float "
        "times or multiply them by float coefficients, so the arithmetic is float64 either way",
    "edgenas.profile.correction.x_fit_correction__mutmut_23":
        "as x_fit_correction__mutmut_21 (dtype left out rather than None)",
    "edgenas.profile.correction.x_fit_correction__mutmut_25":
        "unit counts kept as given (ints) instead of float64: as xǁNetworksǁof__mutmut_21",
    "edgenas.profile.correction.x_fit_correction__mutmut_27":
        "as x_fit_correction__mutmut_25 (dtype left out rather than None)",
    "edgenas.profile.correction.x_fit_correction__mutmut_32":
        "per-kind sums kept as given instead of float64: as xǁNetworksǁof__mutmut_3",
    "edgenas.profile.correction.x_fit_correction__mutmut_34":
        "as x_fit_correction__mutmut_32 (dtype left out rather than None)",
    "edgenas.profile.correction.xǁPaddedWorkǁfit__mutmut_18":
        "min over (error, block, weights) without a key: the blocks are distinct, so a tie "
        "in error goes to the smaller block, which sorted() put first, as with the key",
    "edgenas.profile.correction.xǁPaddedWorkǁfit__mutmut_20":
        "as xǁPaddedWorkǁfit__mutmut_18 (key left out rather than None)",
    "edgenas.profile.ranking.x_kendall_tau__mutmut_3":
        "one side kept as given instead of float64: Kendall's tau depends only on the order "
        "of the values, which ints and floats share",
    "edgenas.profile.ranking.x_kendall_tau__mutmut_5":
        "as x_kendall_tau__mutmut_3 (dtype left out rather than None)",
    "edgenas.profile.ranking.x_kendall_tau__mutmut_7":
        "as x_kendall_tau__mutmut_3, the other side",
    "edgenas.profile.ranking.x_kendall_tau__mutmut_9":
        "as x_kendall_tau__mutmut_7 (dtype left out rather than None)",
    "edgenas.profile.ranking.x_kendall_tau__mutmut_14":
        "float(\"NAN\") for float(\"nan\"): Python parses either as NaN",
    "edgenas.search.pareto.x_crowding_distance__mutmut_11":
        "reshape(n, -2) for reshape(n, -1): numpy takes any negative size as 'the rest'",
    "edgenas.search.pareto.x_margin_guard__mutmut_16":
        "as x_crowding_distance__mutmut_11",
    "edgenas.search.pareto.x__hv__mutmut_17":
        "'y <= best_y' for 'y < best_y': at y == best_y the slab added is (ref - x) * 0",
    "edgenas.search.pareto.x__hv__mutmut_50":
        "'height >= 0' for 'height > 0': a slice of height 0 adds 0 * its area",
    "edgenas.search.pareto.x_hypervolume__mutmut_16":
        "as x_crowding_distance__mutmut_11 (reshape(-2, d) for reshape(-1, d))",
    "edgenas.search.pareto.x_non_dominated_all__mutmut_11":
        "as x_crowding_distance__mutmut_11",
    "edgenas.search.pareto.x_hypervolume__mutmut_22":
        "points on the reference's boundary kept: each adds a slab of zero width, and none "
        "can dominate a point inside (it is larger where the other is below the reference)",
    **{f"edgenas.search.pareto.{name}":
       "a number kept as given instead of float64 where it only meets float64 arrays "
       "(numpy widens it exactly) or is only compared (widening keeps every order)"
       for name in ("x_hypervolume__mutmut_3", "x_hypervolume__mutmut_5",
                    "x_knee_index__mutmut_17", "x_knee_index__mutmut_19",
                    "x_non_dominated__mutmut_3", "x_non_dominated__mutmut_5",
                    "x_non_dominated_all__mutmut_7", "x_non_dominated_all__mutmut_9")},
    "edgenas.search.pareto.x_non_dominated_all__mutmut_12":
        "reshape(None) for reshape(n): the list of n booleans is already of shape (n,)",
    "edgenas.search.pareto.x_non_dominated_all__mutmut_14":
        "the mask's dtype inferred instead of bool: a list of bools is inferred as bool; only "
        "an empty one would not, and no points (shape (0, d)) fail the reshape before it",
    "edgenas.search.pareto.x_non_dominated_all__mutmut_16":
        "as x_non_dominated_all__mutmut_14 (dtype left out rather than None)",
    "edgenas.search.pareto.x_crowding_distance__mutmut_15":
        "'n < 2' for 'n <= 2': two points are each an extreme of every objective, so the "
        "loop gives both infinity, as the shortcut does",
    "edgenas.search.pareto.x_crowding_distance__mutmut_27":
        "kind=\"STABLE\" for kind=\"stable\": numpy reads the sort kind case-insensitively",
    "edgenas.search.pareto.x_select_spread__mutmut_3":
        "points kept as given instead of float64: select_spread only indexes them and hands "
        "them to non_dominated_all and crowding_distance, which convert them themselves",
    "edgenas.search.pareto.x_select_spread__mutmut_5":
        "as x_select_spread__mutmut_3 (dtype left out rather than None)",
    "edgenas.search.pareto.x_fastest_index__mutmut_11":
        "accuracies kept as given instead of float64: they only order the tied archs, and "
        "widening to double keeps every order",
    "edgenas.search.pareto.x_fastest_index__mutmut_13":
        "as x_fastest_index__mutmut_11 (dtype left out rather than None)",
    "edgenas.profile.padded_work.x_padded_work__mutmut_22":
        "'/' for '//' in a convolution's input channels per group: they divide exactly "
        "(PyTorch requires it), and padding a whole float gives the same number",
    "edgenas.profile.padded_work.x_padded_work__mutmut_94":
        "the running channel count after a layer dropped: only a pool reads it, and a pool "
        "is always a unit of its own (plan.py), read at the unit's input channels",
    "edgenas.profile.padded_work.x_padded_work__mutmut_95":
        "as x_padded_work__mutmut_94 (the running channel count never updated)",
    "edgenas.profile.padded_work.x_padded_work__mutmut_104":
        "a shortcut's input channels not passed: add reads them only for a pool, and a "
        "shortcut counted here is a convolution",
    "edgenas.profile.padded_work.x__kind__mutmut_10":
        "'or' for 'and' in choosing a prefix's kinds: no kind of the other prefix has digits "
        "past the prefix's length ('dw3'[4:] is '', 'conv1'[2:] is 'nv1')",
    "edgenas.profile.padded_work.x_relative_nnls__mutmut_12":
        "the stand-in norm of an all-zero column (2 for 1): NNLS never raises the weight of a "
        "column that cannot lower the residual, so that weight is 0, and 0 over either is 0",
    "edgenas.profile.precision.x_int8_model__mutmut_1":
        "another default calibration seed (1 for 0): which seeded draw calibrates is "
        "arbitrary; that it is seeded is what a test pins (the same model each time)",
    **{f"edgenas.profile.precision.x_int8_model__mutmut_{n}":
       "another name for a file or folder that lives only inside int8_model's temporary "
       "folder" for n in (22, 23, 24, 28, 29, 32, 33)},
    "edgenas.estimate.rank.x_spearman__mutmut_7":
        "one side kept as given instead of float: Spearman's rho depends only on the ranks "
        "of the values, which ints and floats share",
    "edgenas.estimate.rank.x_spearman__mutmut_9":
        "as x_spearman__mutmut_7 (dtype left out rather than None)",
    "edgenas.estimate.rank.x_spearman__mutmut_11":
        "as x_spearman__mutmut_7, the other side",
    "edgenas.estimate.rank.x_spearman__mutmut_13":
        "as x_spearman__mutmut_11 (dtype left out rather than None)",
    "edgenas.estimate.rank.x_agreement__mutmut_5":
        "the truth kept as given instead of float: the bootstrap only indexes it, and "
        "kendall and spearman convert what they are given to float themselves",
    "edgenas.estimate.rank.x_agreement__mutmut_7":
        "as x_agreement__mutmut_5 (dtype left out rather than None)",
    "edgenas.estimate.rank.x_agreement__mutmut_9":
        "as x_agreement__mutmut_5, the estimate",
    "edgenas.estimate.rank.x_agreement__mutmut_11":
        "as x_agreement__mutmut_9 (dtype left out rather than None)",
    "edgenas.estimate.predictor.x_candidates__mutmut_31":
        "the GP's random_state=None for the seed: GaussianProcessRegressor draws from it only "
        "to restart its optimiser (n_restarts_optimizer, 0 here) and in sample_y, which "
        "nothing calls",
    "edgenas.estimate.predictor.x_candidates__mutmut_34":
        "as x_candidates__mutmut_31 (random_state left out rather than None)",
    "edgenas.estimate.predictor.x_candidates__mutmut_48":
        "the forest's 100 trees left out: 100 is scikit-learn's default n_estimators (the "
        "venv has 1.9)",
    "edgenas.estimate.predictor.x_candidates__mutmut_61":
        "as x_candidates__mutmut_48, the boosting's n_estimators=100",
    "edgenas.estimate.predictor.x_candidates__mutmut_63":
        "the boosting's learning_rate=0.1 left out: 0.1 is scikit-learn's default (the venv "
        "has 1.9)",
    "edgenas.estimate.predictor.xǁRescaledPriorǁfit__mutmut_14":
        "'prior + mean' for 'prior - mean' in the covariance: y - y.mean() sums to 0, so the "
        "mean prior times it adds 0 and the slope changes by rounding only",
    "edgenas.estimate.predictor.xǁRescaledPriorǁfit__mutmut_15":
        "'y + mean' for 'y - mean' in the covariance: the centred prior sums to 0, as in "
        "xǁRescaledPriorǁfit__mutmut_14",
    "edgenas.estimate.predictor.xǁPriorAsIsǁpredict__mutmut_2":
        "the prior column copied at the rows' dtype instead of float64: rows reach PriorAsIs "
        "only through with_prior, whose float64 prior column makes the whole row float64",
    "edgenas.estimate.predictor.xǁPriorAsIsǁpredict__mutmut_4":
        "as xǁPriorAsIsǁpredict__mutmut_2 (dtype left out rather than None)",
    "edgenas.profile.latency.x_accuracy_metrics__mutmut_3":
        "predictions kept at their own dtype instead of float64: p / m - 1 is a true division, "
        "so int or float32 inputs give the same metrics up to rounding",
    "edgenas.profile.latency.x_accuracy_metrics__mutmut_5":
        "as x_accuracy_metrics__mutmut_3 (dtype left out rather than None)",
    "edgenas.profile.latency.x_accuracy_metrics__mutmut_8":
        "as x_accuracy_metrics__mutmut_3, the measured times",
    "edgenas.profile.latency.x_accuracy_metrics__mutmut_10":
        "as x_accuracy_metrics__mutmut_8 (dtype left out rather than None)",
    "edgenas.profile.latency.x_predict_on_device__mutmut_7":
        "the holding spaces not passed on: find_lut looks them up itself "
        "(spaces_holding); passing them only saves that lookup when asking several devices",
    "edgenas.profile.latency.x_predict_on_device__mutmut_12":
        "as x_predict_on_device__mutmut_7 (argument left out rather than None)",
    "edgenas.profile.latency.x_unit_rows__mutmut_23":
        "the unit cost cache never read: every unit's cost is computed again, the same value",
    "edgenas.profile.latency.x_unit_rows__mutmut_24":
        "as x_unit_rows__mutmut_23 (looked up under None, never stored there)",
    "edgenas.profile.latency.xǁLatencyModelǁpredict__mutmut_13":
        "unit costs computed for every prediction, not only for the whole-network model that "
        "reads them: the same prediction, slower",
    "edgenas.profile.level.x_pair_gaps__mutmut_4":
        "timings kept at their own dtype instead of float: the gaps are a true division, so "
        "int timings give the same numbers",
    "edgenas.profile.level.x_pair_gaps__mutmut_6":
        "as x_pair_gaps__mutmut_4 (dtype left out rather than None)",
}
#: What counts as killed: a test failed, or the mutant made the tests run past mutmut's limit.
DETECTED = ("killed", "timeout")


def modules_to_mutate() -> list[str]:
    """The dotted names of the modules pyproject.toml's ``only_mutate`` lists."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return [path.removesuffix(".py").replace("/", ".") for path in config["only_mutate"]]


def copy_tree(work: Path) -> None:
    """The working tree's files (tracked, or untracked and not ignored) into ``work``."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                             "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def run_mutmut(work: Path, targets: list[str], max_children: int) -> int:
    """``mutmut run`` in ``work`` over ``targets`` (mutant names or patterns; none: every
    mutant without a result); its exit status. A named mutant is tested again even where
    mutmut has a result for it."""
    mutmut = Path(sys.executable).with_name("mutmut")
    # quickest tests first (benchmarks/mutation_order.py); one thread each, on a shared host
    path = os.pathsep.join(filter(None, [str(work / "benchmarks"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "EDGENAS_CACHE": str(work / ".cache"), "PYTHONPATH": path,
           "PYTEST_ADDOPTS": " ".join(filter(None, [os.environ.get("PYTEST_ADDOPTS"),
                                                    "-p mutation_order"]))}
    return subprocess.run([str(mutmut), "run", "--max-children", str(max_children), *targets],
                          cwd=work, env=env).returncode


def statuses(work: Path, module: str) -> dict[str, str]:
    """mutant name -> mutmut's status for every mutant of ``module`` in ``work``."""
    from mutmut.stats import status_by_exit_code

    meta = work / "mutants" / (module.replace(".", "/") + ".py.meta")
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: status_by_exit_code[code] for name, code in codes.items()}


def score(found: dict[str, str]) -> dict[str, object]:
    """Counts by status and the score of one module's mutants."""
    counts = Counter(found.values())
    equivalent = [n for n in found if n in EQUIVALENT and found[n] == "survived"]
    detected = sum(counts[status] for status in DETECTED)
    judged = len(found) - len(equivalent)
    return {"mutants": len(found), "killed": counts["killed"], "timeout": counts["timeout"],
            "survived": counts["survived"] - len(equivalent), "equivalent": len(equivalent),
            "no_tests": counts["no tests"],
            "other": len(found) - detected - counts["survived"] - counts["no tests"],
            "score": detected / judged if judged else None,
            "survivors": sorted(n for n, s in found.items()
                                if s not in DETECTED and n not in equivalent)}


def report(work: Path, modules: list[str], show_survivors: bool) -> dict[str, dict]:
    """Print the table of scores; gives it per module, with the total."""
    table = {module: score(statuses(work, module)) for module in modules}
    found_names = {n for m in modules for n, s in statuses(work, m).items() if s == "survived"}
    for name in sorted(set(EQUIVALENT) - found_names):
        if any(name.startswith(m + ".") for m in modules):
            print(f"warning: {name} is listed as equivalent but is not a surviving mutant "
                  "(the module changed?); it is not excluded", file=sys.stderr)
    everything: dict[str, str] = {}
    for module in modules:
        everything.update(statuses(work, module))
    total = score(everything)
    header = ("module", "mutants", "killed", "timeout", "survived", "equivalent", "no tests",
              "other", "score")
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for name, row in [*table.items(), ("total", total)]:
        value = "-" if row["score"] is None else f"{100 * row['score']:.1f} %"
        print(f"| {name} | {row['mutants']} | {row['killed']} | {row['timeout']} | "
              f"{row['survived']} | {row['equivalent']} | {row['no_tests']} | {row['other']} | "
              f"{value} |")
    for name, row in table.items():
        for mutant in row["survivors"]:
            print(f"not killed: {mutant}")
            if show_survivors:
                shown = subprocess.run([str(Path(sys.executable).with_name("mutmut")), "show",
                                        mutant], cwd=work, capture_output=True, text=True)
                print(shown.stdout)
    return {**table, "total": total}


def merged(table: dict[str, dict], path: Path) -> dict[str, dict]:
    """``table`` dated today, over the scores already in ``path``: a module not in this run
    keeps its old row and the date it carries, so a split measurement adds up in one file.
    The total is this run's, over the modules it names."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    old = json.loads(path.read_text()) if path.exists() else {}
    kept = {name: row for name, row in old.items() if name not in table and name != "total"}
    fresh = {name: {**row, "measured": today} for name, row in table.items()}
    fresh["total"]["modules"] = [name for name in table if name != "total"]
    return {**kept, **fresh}


def main(argv: list[str] | None = None) -> int:
    parser = command_line(__doc__, __file__)
    parser.add_argument("--module", action="append", choices=modules_to_mutate(),
                        help="only this module (repeatable; default: every listed one)")
    parser.add_argument("--max-children", type=int, default=1,
                        help="mutants tested at once (default 1: the host is shared)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgenas-mutation"),
                        help="where the copy of the tree and mutmut's results go")
    parser.add_argument("--resume", action="store_true",
                        help="keep the results already in --work and test only the rest")
    parser.add_argument("--report-only", action="store_true",
                        help="print the scores of the results in --work; run nothing")
    parser.add_argument("--show-survivors", action="store_true",
                        help="print the diff of every mutant not killed")
    parser.add_argument("--json", type=Path,
                        help="also write the scores here, dated; the rows of modules not in "
                             "this run stay as the file had them")
    args = parser.parse_args(argv)
    modules = args.module or modules_to_mutate()
    if not args.report_only:
        if not args.resume and args.work.exists():
            shutil.rmtree(args.work)
        args.work.mkdir(parents=True, exist_ok=True)
        # a resumed run tests again what was not killed, against the tests as they are now;
        # a mutant listed as equivalent would only survive again
        targets = ([name for module in modules for name, status in statuses(args.work, module)
                    .items() if status not in DETECTED and name not in EQUIVALENT]
                   if args.resume else [f"{module}.*" for module in args.module or []])
        copy_tree(args.work)
        started = time.monotonic()
        if not args.resume or targets:
            status = run_mutmut(args.work, targets, args.max_children)
            print(f"mutmut run: exit status {status}, {time.monotonic() - started:.0f} s")
    table = report(args.work, modules, args.show_survivors)
    if args.json:
        write_json_atomic(merged(table, args.json), args.json)
    return 0

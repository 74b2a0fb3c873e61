"""Mutation testing of the numeric core (issue 27): how many mutants of the Pareto, latency,
level, predictor and rank modules their fast tests kill.

    nice -n 19 .venv/bin/python -m benchmarks mutation [--module edgenas.profile.level ...]
        [--max-children 1] [--work /tmp/edgenas-mutation] [--resume] [--report-only]
        [--show-survivors] [--json out.json]

What is mutated and which tests run is configured in pyproject.toml (``[tool.mutmut]``).
mutmut works in a ``mutants/`` folder beside the sources, so this script runs it in a copy
of the working tree (the files git tracks or would track), never in the checkout. A fresh
copy is made unless ``--resume``: then the copy's files are refreshed and every mutant not
yet killed (surviving, unreached or not yet tested) is tested again, against the tests as
they are now; killed ones keep their result. ``--module`` restricts a run to some modules,
so that a long measurement can be split.
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
EQUIVALENT: dict[str, str] = {}
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
    parser.add_argument("--json", type=Path, help="also write the scores here")
    args = parser.parse_args(argv)
    modules = args.module or modules_to_mutate()
    if not args.report_only:
        if not args.resume and args.work.exists():
            shutil.rmtree(args.work)
        args.work.mkdir(parents=True, exist_ok=True)
        # a resumed run tests again what was not killed, against the tests as they are now
        targets = ([name for module in modules for name, status in statuses(args.work, module)
                    .items() if status not in DETECTED] if args.resume
                   else [f"{module}.*" for module in args.module or []])
        copy_tree(args.work)
        started = time.monotonic()
        if not args.resume or targets:
            status = run_mutmut(args.work, targets, args.max_children)
            print(f"mutmut run: exit status {status}, {time.monotonic() - started:.0f} s")
    table = report(args.work, modules, args.show_survivors)
    if args.json:
        write_json_atomic(table, args.json)
    return 0

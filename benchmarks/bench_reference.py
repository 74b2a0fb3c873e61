"""How well a reference network's slow-down under load carries to the models it scales.

    python -m benchmarks bench_reference [--device host-cpu] [--space imagenet] [--archs 16] \
        [--units 16] [--pairs 3] [--neighbour compute] [--json runs/bench_reference.json] \
        [--rescore JSON]

A table is kept at one level of load by scaling every timing by a reference network timed
beside it (`edgenas.profile.timing`). That only works if load slows the reference as much
as the model. This benchmark tests it directly: it times the space's networks and units,
each between candidate references (the `cifar` reference older tables record, and the
space's own reference), in alternating quiet and busy phases. A busy phase runs a
neighbour process on another core (`benchmarks/neighbour.py`: ``compute``, a cache-resident
loop; ``memory``, a stream over a 64 MiB array), the kind of load a shared host's
neighbours add. Per model and pair of phases, the slow-down is
busy over quiet time; the transfer error of a reference is the model's slow-down over
the reference's (its neighbours in the timing order). A reference is as good as the
share of models whose transfer error is within 5 % and 10 %, next to ``none`` (no
scaling at all). Two quiet phases (``--neighbour none``) measure the noise such a
comparison carries by itself.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgenas.device.descriptor import get_device
from edgenas.device.session import DeviceSession
from edgenas.jsonio import write_json_atomic
from edgenas.profile.keys import space_units
from edgenas.profile.onnx_graph import network_model, unit_model
from edgenas.profile.timing import reference_network
from edgenas.profile.sampling import first_sample
from edgenas.space import get_space
from benchmarks.harness import command_line
from benchmarks.neighbour import LOADS, Neighbour

#: far from the table's own streams (calibration 1e6, validation 2e6) and bench_latency's
BENCH_SEED = 5_000_000
#: The kinds of subject, reported apart, by the prefix of their names.
KINDS = (("networks", "net"), ("units", "unit"))


def of_kind(names: Any, prefix: str) -> list[str]:
    return [name for name in names if name.startswith(prefix)]


def time_phase(session: DeviceSession, folder: Path, subjects: list[str], references: list[str]
               ) -> dict[str, Any]:
    """Time every subject between the references; (subject ms, its neighbouring references'
    mean ms per reference)."""
    order = []
    for name in subjects:
        order += references + [name]
    order += references
    results: list[dict[str, Any]] = []
    session.time_models([folder / f"{name}.onnx" for name in order], results.append)
    times = [r["median_ms"] for r in results]
    width = len(references) + 1
    out: dict[str, Any] = {}
    for i, name in enumerate(subjects):
        before, at, after = i * width, i * width + len(references), (i + 1) * width
        out[name] = {"ms": times[at], "refs": {
            ref: (times[before + k] + times[after + k]) / 2 for k, ref in enumerate(references)}}
    return out


def score(quiet: dict[str, Any], busy: dict[str, Any], references: list[str]
          ) -> dict[str, dict[str, float]]:
    """Per reference (and ``none``): the transfer errors' median and share within 5/10 %."""
    errors: dict[str, list[float]] = {ref: [] for ref in ["none", *references]}
    slowdowns = []
    for name in quiet:
        model = busy[name]["ms"] / quiet[name]["ms"]
        slowdowns.append(model)
        errors["none"].append(np.log(model))
        for ref in references:
            errors[ref].append(np.log(model / (busy[name]["refs"][ref] / quiet[name]["refs"][ref])))
    table = {}
    for ref, values in errors.items():
        gap = np.abs(np.expm1(np.array(values)))
        table[ref] = {"median_error_pct": float(100 * np.median(gap)),
                      "within_5pct": float(np.mean(gap <= 0.05)),
                      "within_10pct": float(np.mean(gap <= 0.10)),
                      "bias_pct": float(100 * np.expm1(np.median(values)))}
    table["slowdown"] = {"median": float(np.median(slowdowns))}
    return table


def movements(phases: list[dict[str, Any]], names: list[str]
              ) -> list[dict[str, dict[str, float]]]:
    """Per phase pair and kind of subject, the median busy/quiet ratio of the subjects
    (``self``) and of each reference beside them: how far each moved from one phase to the
    next."""
    out = []
    for pair in phases:
        quiet, busy = pair["quiet"], pair["busy"]
        row = {}
        for label, prefix in KINDS:
            keep = of_kind(quiet, prefix)
            if keep:
                row[label] = {"self": float(np.median([busy[n]["ms"] / quiet[n]["ms"]
                                                       for n in keep]))}
                for ref in names:
                    row[label][ref] = float(np.median(
                        [busy[n]["refs"][ref] / quiet[n]["refs"][ref] for n in keep]))
        out.append(row)
    return out


def report(phases: list[dict[str, Any]], names: list[str], args: argparse.Namespace
           ) -> dict[str, Any]:
    """Print the table and return what the JSON keeps of it."""
    rows: dict[str, Any] = {}
    for label, prefix in KINDS:
        per_pair = []
        for pair in phases:
            keep = of_kind(pair["quiet"], prefix)
            if keep:
                per_pair.append(score({n: pair["quiet"][n] for n in keep},
                                      {n: pair["busy"][n] for n in keep}, names))
        if per_pair:  # the mean over phase pairs
            rows[label] = {ref: {k: float(np.mean([s[ref][k] for s in per_pair]))
                                 for k in per_pair[0][ref]} for ref in per_pair[0]}
    subjects = list(phases[0]["quiet"])
    quiet_ms = {name: float(np.median([pair["quiet"][name]["ms"] for pair in phases]))
                for name in subjects}
    networks_ms = [quiet_ms[name] for name in of_kind(quiet_ms, "net")]
    references_ms = {ref: float(np.median([pair["quiet"][subjects[0]]["refs"][ref]
                                           for pair in phases])) for ref in names}
    print(f"\n{args.space}: {len(networks_ms)} networks (quiet median "
          f"{np.median(networks_ms):.2f} ms), {len(subjects) - len(networks_ms)} units; "
          f"neighbour {args.neighbour}; {len(phases)} phase pairs; references (quiet): "
          + ", ".join(f"{ref} {ms:.2f} ms" for ref, ms in references_ms.items()))
    moved = movements(phases, names)
    for p, row in enumerate(moved):
        print(f"pair {p + 1}, busy/quiet: " + "; ".join(
            f"{label} {r['self']:.3f}x (references beside them: "
            + ", ".join(f"{ref} {r[ref]:.3f}x" for ref in names) + ")"
            for label, r in row.items()))
    print(f"{'subjects':10} {'scaled by':10} {'slow-down':>9} {'within 5%':>9} {'within 10%':>10} "
          f"{'median err':>10} {'bias':>7}")
    for label, table in rows.items():
        for ref in ["none", *names]:
            row = table[ref]
            print(f"{label:10} {ref:10} {table['slowdown']['median']:9.2f} "
                  f"{100 * row['within_5pct']:8.0f}% {100 * row['within_10pct']:9.0f}% "
                  f"{row['median_error_pct']:9.1f}% {row['bias_pct']:+6.1f}%")
    return {"rows": rows, "movements": moved, "quiet_ms": quiet_ms,
            "references_quiet_ms": references_ms}


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    parser.add_argument("--device", default="host-cpu")
    parser.add_argument("--space", default="imagenet")
    parser.add_argument("--archs", type=int, default=16)
    parser.add_argument("--units", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=3, help="quiet/busy phase pairs")
    parser.add_argument("--neighbour", choices=[*sorted(LOADS), "none"], default="compute")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--rescore", type=Path,
                        help="report on the phases stored in this JSON instead of timing")
    args = parser.parse_args(argv)

    if args.rescore:
        stored = json.loads(args.rescore.read_text(encoding="utf-8"))
        for key in ("space", "neighbour", "archs", "units", "pairs"):
            setattr(args, key, stored["args"][key])
        phases, measured = stored["phases"], stored["measured"]
        names = list(phases[0]["quiet"][next(iter(phases[0]["quiet"]))]["refs"])
    else:
        phases, names = time_phases(args)
        measured = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result = report(phases, names, args)
    if args.json:
        write_json_atomic({
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            **result, "phases": phases, "measured": measured}, args.json)


def time_phases(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str]]:
    """Alternate quiet and busy phases; (per pair the two phases' timings, reference names)."""
    space = get_space(args.space)
    references = {"cifar": reference_network(get_space("cifar")),
                  args.space: reference_network(space)}
    subjects: dict[str, onnx.ModelProto] = {
        f"net{i:03d}": network_model(space.sample(BENCH_SEED + i)) for i in range(args.archs)}
    units = space_units(space)
    for i, key in enumerate(first_sample(list(units), args.units, seed=BENCH_SEED)):
        subjects[f"unit{i:03d}"] = unit_model(*units[key])
    names = list(references)  # one entry per space: cifar's own run has one reference
    phases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgenas-bench-reference-") as tmp, \
            DeviceSession(get_device(args.device)) as session:
        folder = Path(tmp)
        for name, model in {**references, **subjects}.items():
            onnx.save(model, folder / f"{name}.onnx")
        for p in range(args.pairs):
            pair = {}
            for phase, kind in (("quiet", "none"), ("busy", args.neighbour)):
                started = time.perf_counter()
                with Neighbour(kind):
                    pair[phase] = time_phase(session, folder, list(subjects), names)
                print(f"pair {p + 1}/{args.pairs} {phase}: {time.perf_counter() - started:.0f} s",
                      flush=True)
            phases.append(pair)
    return phases, names

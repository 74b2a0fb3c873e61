"""`edgenas run`: the main job (profile if needed, search, train, export, deploy, report)."""

from __future__ import annotations

import argparse
from typing import Any

import optuna

from edgenas.pipeline import RunConfig, run_pipeline

#: A deploy's load (its reference network against the table's yardstick) is shown beside a
#: pick's time only when further from 1 than this: the level's own jitter is a few per cent.
LOAD_SHOWN = 0.05


def cmd_run(args: argparse.Namespace) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress bar says it shorter

    config = RunConfig.from_arguments(args)
    summary = run_pipeline(config)
    for line in summary_lines(summary, args.device):
        print(line)
    print(f"report: {args.out}/report.html")


def summary_lines(summary: dict[str, Any], device: str) -> list[str]:
    """What the main job tells the user at the end: each exported pick (and a pick that is
    the same arch as another), then each baseline, or why it has no accuracy to compare."""
    lines = []
    surrogate = (summary.get("search") or {}).get("surrogate") or {}
    rungs = surrogate.get("rungs")
    if rungs:
        lines.append(f"   front: {summary['front_size']} archs, each trained to the full "
                     f"{rungs['epochs'][-1]} epochs ({rungs['archs'][-1]} of the "
                     f"{rungs['archs'][0]} scored after {rungs['epochs'][0]} went on)")
    elif "front_size" in summary:
        lines.append(f"   front: {summary['front_size']} trained archs")
    for m in summary["models"]:
        level = ""
        if m.get("load_ratio") and abs(m["load_ratio"] - 1) > LOAD_SHOWN:
            level = (f" (device at {m['load_ratio']:.2f}x its table's yardstick: "
                     f"{m['measured_at_table_level_ms']:.3f} ms at the table's level)")
        lines.append(f"{m['name']:>8}: val. accuracy {100 * m['accuracy_exported']:.1f} %, "
                     f"{m['macs'] / 1e6:.2f} M MACs, predicted {m['predicted_ms']:.3f} ms, "
                     f"measured {m['measured_ms']:.3f} ms on {device}{level} -> {m['bundle']} "
                     f"({', '.join(m['formats'])})")
    for name, same in summary.get("same_picks", {}).items():
        lines.append(f"{name:>8}: same arch as {same} (exported once, as {same})")
    for b in summary["baselines"]:
        costs = f"{b['macs'] / 1e6:.2f} M MACs, measured {b['measured_ms']:.3f} ms"
        if b["converged"]:
            lines.append(f"{b['name']:>8}: val. accuracy {100 * b['val_accuracy']:.1f} %, "
                         f"{costs} (hand-designed)")
        else:
            lines.append(f"{b['name']:>8}: {b['verdict']}; {costs} (hand-designed)")
    return lines


def register(commands: argparse._SubParsersAction) -> None:
    """Add `run`."""
    run = commands.add_parser("run", help="the whole job on one device (embedded default: "
                                          "host-cpu, cifar space, digits data)")
    RunConfig.add_arguments(run)  # every option, its default and help: the settings' own
    run.set_defaults(func=cmd_run)

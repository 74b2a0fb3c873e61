"""Benchmark: how well do a supernet's middle subnets score, by sampling rule and budget?

    OMP_NUM_THREADS=1 python -m benchmarks bench_supernet_sampling --data digits --epochs 15 \
        --val-fraction 0.3 --sampling sandwich fair --archs 12 --val-limit 300 \
        --out runs/bench_sampling --json runs/bench_sampling.json

Trains one supernet of a space per variant (every combination of ``--sampling``,
``--num-random`` (sandwich only) and ``--epochs``), each in its own resumable run
directory under ``--out``, then scores with the run's own evaluator (BN recalibrated on
fixed training batches, as the search does): the largest and the smallest subnet and
``--archs`` fixed random archs (seeds ``--arch-seed`` ...).

Diagnostics, which tell a bug from under-training (``--controls K``: on the first K
random archs; 0 turns them off):

* ``batch BN``: the subnet with BN in training mode on each validation batch (no running
  statistics at all). As low as the recalibrated score: recalibration is not what fails.
* ``path``: the supernet's own forward pass on the arch, BN on batch statistics too. Equal
  to ``batch BN``: subnet extraction (weight slicing, export) is faithful.
* ``relu``: the arch with every activation set to the space's first one, the only one the
  sandwich's ends train.
* ``ends ops``: the arch's macro and meso genes (resolution, width, depth, channels,
  down-sampling) with the largest's block in every slot, i.e. only weights that the
  sandwich trains every step. High: elastic width, depth and resolution work, and what
  is weak is the rarely trained op weights.
* ``updates``: for every random arch, the fewest training steps that reached any of the
  (slot, op) weight units on its path, counted by replaying the run's sampler.
* one gene (``--one-gene``): the largest arch with one macro or meso gene set to the
  smallest's value, for every such gene where the two differ: which elastic dimension
  the shared weights do not carry.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
import re
import statistics
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch

from edgenas.cost import count
from edgenas.data.augment import prepare_batch
from edgenas.jsonio import write_json_atomic
from edgenas.nn.supernet import SuperNet
from edgenas.space import SearchSpace, get_space
from edgenas.space.arch import Arch, Block
from edgenas.train.evaluate import SupernetEvaluator
from edgenas.train.loop import TrainConfig, epoch_batches, iterate_eval
from edgenas.train.placement import place
from edgenas.train.subnet_sampling import fair_paths, largest_arch, sandwich, smallest_arch
from edgenas.train.checkpoint import RESULT_FILE, read_run
from edgenas.train.supernet_training import load_supernet, train_supernet
from benchmarks.harness import command_line

BLOCK_KEY = re.compile(r"^s\d+_b\d+_")    # edgenas.nn.supernet.slot_key
BLOCK_GENE = re.compile(r"^s\d+\.b\d+\.")  # edgenas.space.search_space gene names


def variant_name(sampling: str, num_random: int, epochs: int) -> str:
    """Run directory name of one variant."""
    return f"sandwich-r{num_random}-e{epochs}" if sampling == "sandwich" else f"fair-e{epochs}"


def with_blocks(arch: Arch, block_for: Callable[[int, int, Block], Block]) -> Arch:
    """``arch`` with block j of stage i replaced by ``block_for(i, j, block)``."""
    stages = tuple(replace(stage, blocks=tuple(block_for(i, j, b)
                                               for j, b in enumerate(stage.blocks)))
                   for i, stage in enumerate(arch.stages))
    return replace(arch, stages=stages)


@torch.no_grad()
def batch_bn_accuracy(evaluator: SupernetEvaluator, arch: Arch, path: bool = False) -> float:
    """Validation accuracy with BN normalising by each batch's own statistics.

    Of the extracted subnet, or (``path``) of the supernet's own forward pass on ``arch``:
    with no running statistics involved the two must agree if extraction is faithful.
    """
    if path:
        supernet = copy.deepcopy(evaluator.supernet).train()  # keep its statistics intact
        model: Callable[[torch.Tensor], torch.Tensor] = lambda x: supernet(x, arch)
    else:
        model = evaluator.supernet.subnet(arch).train()
    correct = 0
    for images, labels in iterate_eval(evaluator.data, evaluator.val, evaluator.batch_size):
        inputs = prepare_batch(images, evaluator.normalize, False, arch.resolution)
        correct += int((model(inputs).argmax(1) == labels).sum())
    return correct / len(evaluator.val)


def one_gene_archs(space: SearchSpace) -> dict[str, Arch]:
    """The largest arch with one macro/meso gene at the smallest's value, by gene name."""
    largest, smallest = space.encode(largest_arch(space)), space.encode(smallest_arch(space))
    return {name: space.decode({**largest, name: smallest[name]}) for name in largest
            if not BLOCK_GENE.match(name) and largest[name] != smallest[name]}


def unit_updates(supernet: SuperNet, config: TrainConfig, steps: int) -> Counter[str]:
    """How many training steps reached each weight unit, replaying the run's sampler."""
    space = supernet.space
    reached: Counter[str] = Counter()
    for step in range(steps):
        rng = random.Random(config.seed * 1_000_003 + step)  # as train_supernet seeds it
        archs = (fair_paths(space, rng) if config.sampling == "fair"
                 else sandwich(space, rng, config.num_random))
        reached.update({key for arch in archs for key, _ in supernet.route(arch)})
    return reached


def has_block_weights(key: str) -> bool:
    """Whether a supernet slot key names the weights of a block op (not stem, head, skip)."""
    return BLOCK_KEY.match(key) is not None and not key.endswith("_skip")


def fewest_updates(supernet: SuperNet, arch: Arch, reached: Counter[str]) -> int:
    """The fewest updates of any block weight unit on ``arch``'s path."""
    return min(reached[key] for key, _ in supernet.route(arch) if has_block_weights(key))


def score_variant(run_dir: Path, space: SearchSpace, config: TrainConfig, archs: list[Arch],
                  controls: int, val_limit: int | None, one_gene: bool) -> dict[str, Any]:
    """Every score and diagnostic of one trained supernet."""
    placement = place("cpu")
    supernet, run_data, _ = load_supernet(run_dir, placement)
    evaluator = SupernetEvaluator(supernet, run_data.data, run_data.split, run_data.normalize,
                                  placement, config.calib_batches, config.eval_batch_size,
                                  val_limit, config.seed)
    steps = config.epochs * len(epoch_batches(run_data.split.train, config.batch_size,
                                              config.seed, 0, placement))
    reached = unit_updates(supernet, config, steps)
    largest = largest_arch(space)
    rows = []
    for i, arch in enumerate(archs):
        row: dict[str, Any] = {"arch": i, "mmacs": count(arch).macs / 1e6,
                               "accuracy": evaluator.evaluate(arch),
                               "batch_bn": batch_bn_accuracy(evaluator, arch),
                               "fewest_updates": fewest_updates(supernet, arch, reached)}
        if i < controls:
            ends = with_blocks(arch, lambda s, j, _: largest.stages[s].blocks[
                min(j, len(largest.stages[s].blocks) - 1)])
            row["path"] = batch_bn_accuracy(evaluator, arch, path=True)
            row["relu"] = evaluator.evaluate(with_blocks(
                arch, lambda s, j, b: replace(b, activation=space.activations[0])))
            row["ends_ops"] = evaluator.evaluate(ends)
            row["ends_ops_mmacs"] = count(ends).macs / 1e6
        rows.append(row)
    genes = ({name: evaluator.evaluate(arch) for name, arch in one_gene_archs(space).items()}
             if one_gene else {})
    units = [key for key in supernet.slots if has_block_weights(key)]
    block_units = [reached[key] for key in units]
    return {"largest": evaluator.evaluate(largest),
            "smallest": evaluator.evaluate(smallest_arch(space)), "rows": rows,
            "one_gene": genes, "steps": steps, "val_images": len(evaluator.val),
            "median_updates_per_unit": statistics.median(block_units),
            "units_never_reached": sum(n == 0 for n in block_units), "units": len(units)}


def summarise(name: str, scores: dict[str, Any], seconds: float, score_seconds: float
              ) -> dict[str, Any]:
    """One table row: the ends, the random archs' spread and the diagnostics' means."""
    rows = scores["rows"]

    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if key in r]
        return statistics.mean(values) if values else None

    accuracies = [r["accuracy"] for r in rows]
    controls = [r for r in rows if "path" in r]
    return {"variant": name, "largest": scores["largest"], "smallest": scores["smallest"],
            "random_mean": statistics.mean(accuracies), "random_min": min(accuracies),
            "random_max": max(accuracies), "batch_bn_mean": mean("batch_bn"),
            "control_accuracy_mean": (statistics.mean(r["accuracy"] for r in controls)
                                      if controls else None),
            "control_batch_bn_mean": (statistics.mean(r["batch_bn"] for r in controls)
                                      if controls else None),
            "path_mean": mean("path"), "relu_mean": mean("relu"), "ends_ops_mean": mean("ends_ops"),
            "fewest_updates_median": statistics.median(r["fewest_updates"] for r in rows),
            "median_updates_per_unit": scores["median_updates_per_unit"],
            "steps": scores["steps"], "train_seconds": seconds, "score_seconds": score_seconds}


def print_table(summaries: list[dict[str, Any]]) -> None:
    def pct(value: float | None) -> str:
        return "    -" if value is None else f"{100 * value:5.1f}"

    print(f"\n{'variant':<18} {'largest':>7} {'small':>6} {'rand mean':>9} {'min':>5} {'max':>5} "
          f"{'batchBN':>7} | {'ctl':>5} {'relu':>5} {'ends':>5} {'ctlbBN':>6} {'path':>5} | "
          f"{'upd min':>7} {'upd/unit':>8} {'steps':>5} {'train s':>7} {'score s':>7}")
    for s in summaries:
        print(f"{s['variant']:<18} {pct(s['largest']):>7} {pct(s['smallest']):>6} "
              f"{pct(s['random_mean']):>9} {pct(s['random_min']):>5} {pct(s['random_max']):>5} "
              f"{pct(s['batch_bn_mean']):>7} | {pct(s['control_accuracy_mean']):>5} "
              f"{pct(s['relu_mean']):>5} {pct(s['ends_ops_mean']):>5} "
              f"{pct(s['control_batch_bn_mean']):>6} {pct(s['path_mean']):>5} | "
              f"{s['fewest_updates_median']:>7} {s['median_updates_per_unit']:>8} "
              f"{s['steps']:>5} {s['train_seconds']:>7.0f} {s['score_seconds']:>7.0f}")
    print("(accuracy in %, means over archs; rand: the --archs random archs, recalibrated; "
          "batchBN: the same with BN on batch statistics; ctl: the first --controls archs, "
          "relu/ends: them with relu only / with the largest's blocks; ctlbBN/path: them with "
          "batch-statistics BN as subnet / as supernet path; upd min: median over random "
          "archs of the fewest steps any weight unit on the path was trained; upd/unit: "
          "median steps per (slot, op) unit)")


def trained(space: SearchSpace, data: str, run_dir: Path, config: TrainConfig
            ) -> dict[str, Any]:
    """The run's result: read when it finished with this config, else trained (resumed)."""
    done = run_dir / RESULT_FILE
    if done.exists() and read_run(run_dir)["config"] == config.to_dict():
        result: dict[str, Any] = json.loads(done.read_text())
        if len(result["history"]) == config.epochs:
            return result
    return train_supernet(space, data, run_dir, config, placement=place("cpu"))


def print_one_gene(details: dict[str, dict[str, Any]]) -> None:
    names = list(details)
    print(f"\n{'largest, but this gene as the smallest':<40}" + "".join(f"{n:>18}" for n in names))
    print(f"{'(none: the largest)':<40}"
          + "".join(f"{100 * details[n]['largest']:>18.1f}" for n in names))
    for gene in details[names[0]]["one_gene"]:
        print(f"{gene:<40}" + "".join(f"{100 * details[n]['one_gene'][gene]:>18.1f}"
                                     for n in names))


def main(argv: list[str] | None = None) -> None:
    parser = command_line(__doc__, __file__)
    parser.add_argument("--space", default="cifar")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--epochs", type=int, nargs="+", default=[15])
    parser.add_argument("--sampling", nargs="+", default=["sandwich", "fair"],
                        choices=["sandwich", "fair"])
    parser.add_argument("--num-random", type=int, nargs="+", default=[2],
                        help="random paths per sandwich step (variants)")
    parser.add_argument("--val-fraction", type=float, default=0.3)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--archs", type=int, default=12, help="random archs scored per variant")
    parser.add_argument("--arch-seed", type=int, default=1000)
    parser.add_argument("--controls", type=int, default=4,
                        help="random archs that also get the path/relu/ends diagnostics")
    parser.add_argument("--one-gene", action="store_true",
                        help="also score the largest with each macro/meso gene of the smallest")
    parser.add_argument("--val-limit", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-only", action="store_true", help="train, do not score")
    parser.add_argument("--out", default="runs/bench_sampling")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    space = get_space(args.space)
    archs = [space.sample(args.arch_seed + i) for i in range(args.archs)]
    variants = dict.fromkeys(
        (sampling, num_random if sampling == "sandwich" else 2, epochs)
        for sampling, num_random, epochs in itertools.product(args.sampling, args.num_random,
                                                              args.epochs))
    summaries, details = [], {}
    for sampling, num_random, epochs in variants:
        name = variant_name(sampling, num_random, epochs)
        config = TrainConfig(epochs=epochs, batch_size=args.batch_size, seed=args.seed,
                             val_fraction=args.val_fraction, limit=args.limit,
                             num_random=num_random, sampling=sampling)
        result = trained(space, args.data, Path(args.out) / name, config)
        seconds = sum(h["seconds"] for h in result["history"])
        print(f"{name}: trained ({seconds:.0f} s over {len(result['history'])} epochs)",
              flush=True)
        if args.train_only:
            continue
        started = time.perf_counter()
        scores = score_variant(Path(args.out) / name, space, config, archs, args.controls,
                               args.val_limit, args.one_gene)
        score_seconds = time.perf_counter() - started
        print(f"{name}: scored in {score_seconds:.0f} s", flush=True)
        for r in scores["rows"]:
            extra = "".join(f" {k} {100 * r[k]:.1f}" for k in ("path", "relu", "ends_ops")
                            if k in r)
            print(f"  arch {r['arch']:>2} {r['mmacs']:6.1f} MMACs: {100 * r['accuracy']:5.1f} % "
                  f"(batch BN {100 * r['batch_bn']:.1f}; fewest updates "
                  f"{r['fewest_updates']}){extra}", flush=True)
        summaries.append(summarise(name, scores, seconds, score_seconds))
        details[name] = {"config": config.to_dict(), "history": result["history"], **scores}
    if summaries:
        print_table(summaries)
    if args.one_gene and details:
        print_one_gene(details)
    if args.json:
        write_json_atomic({"space": args.space, "data": args.data,
                           "arch_seeds": [args.arch_seed + i for i in range(args.archs)],
                           "summary": summaries, "variants": details}, args.json)

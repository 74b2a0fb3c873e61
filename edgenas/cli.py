"""The `edgenas` command line: parses arguments, calls the library, prints.

No logic lives here that a Python user could not reach through the library.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
from typing import Sequence

from edgenas.commands import deploy, devices, estimate, groundtruth, run, search, training
from edgenas.commands.arguments import ALLOW_STALE_HELP, PROFILES_DIR_HELP
from edgenas.cost import count
from edgenas.device.descriptor import get_device
from edgenas.errors import EdgenasError
from edgenas.jsonio import write_hint
from edgenas.profile.latency import predict_on_device
from edgenas.space import SPACES, Arch, get_space
from edgenas.space.presets import resolve_arch


def _format_count(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.0f}"


def cmd_arch_show(args: argparse.Namespace) -> None:
    print(resolve_arch(args.arch).to_json(indent=2))


def cmd_arch_sample(args: argparse.Namespace) -> None:
    print(get_space(args.space).sample(args.seed).to_json(indent=2))


def _predict_latency(arch: Arch, device_name: str, profiles_dir: str,
                     allow_stale: bool) -> tuple[float, str]:
    """Predicted ms and the table it came from: the device's table whose space holds ``arch``."""
    prediction = predict_on_device(get_device(device_name), arch, profiles_dir, allow_stale)
    return prediction.ms, str(prediction.path)


def cmd_arch_count(args: argparse.Namespace) -> None:
    arch = resolve_arch(args.arch)
    counts = count(arch)
    latency = None
    if args.device:
        latency = _predict_latency(arch, args.device, args.profiles_dir, args.allow_stale)
    if args.json:
        data: dict[str, object] = dict(counts.to_dict())
        if latency is not None:
            data.update(latency_ms=latency[0], device=args.device, lut=latency[1])
        print(json.dumps(data, indent=2))
        return
    rows = [("MACs", _format_count(counts.macs), f"{counts.macs:,}"),
            ("params", _format_count(counts.params), f"{counts.params:,}")]
    for precision in ("fp32", "fp16", "int8"):
        nbytes = counts.memory_bytes(precision)
        rows.append((f"peak memory {precision}", f"{nbytes / 2**20:.2f} MiB", f"{nbytes:,} B"))
    if latency is not None:
        rows.append((f"latency {args.device}", f"{latency[0]:.3f} ms", f"({latency[1]})"))
    width = max(len(r[0]) for r in rows)
    print(f"{args.arch}  ({arch.resolution}x{arch.resolution}, {arch.num_classes} classes)")
    for name, short, exact in rows:
        print(f"  {name:<{width}}  {short:>12}  {exact:>16}")


def cmd_space_list(args: argparse.Namespace) -> None:
    for name in sorted(SPACES):
        space = get_space(name)
        print(f"{name:<10} {space.size():.3e} archs, {len(space.genes())} genes, "
              f"{space.num_classes} classes, resolutions {space.resolutions}")


def cmd_space_show(args: argparse.Namespace) -> None:
    space = get_space(args.space)
    if args.json:
        print(json.dumps({"space": space.to_dict(), "size": space.size(),
                          "hash": space.space_hash(), "genes": space.genes()}, indent=2))
        return
    print(f"space {space.name}: {space.size():.3e} archs, {len(space.genes())} genes, "
          f"hash {space.space_hash()}")
    for name, choices in space.genes().items():
        if ".b" in name and not name.split(".b")[1].startswith("0."):
            continue  # later block slots repeat slot 0's choices (plus skip)
        print(f"  {name:<22} {choices}")
    print("  (s{i}.b{j}.* for j > 0 add 'skip' to the op choices)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgenas", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    arch = commands.add_parser("arch", help="show, sample and count architectures")
    arch_cmds = arch.add_subparsers(dest="arch_command", required=True)
    show = arch_cmds.add_parser("show", help="print an arch (preset name or JSON file) as JSON")
    show.add_argument("arch", help="preset name or arch JSON file")
    show.set_defaults(func=cmd_arch_show)
    sample = arch_cmds.add_parser("sample", help="print a random arch of a space as JSON")
    sample.add_argument("--space", default="cifar", choices=sorted(SPACES),
                        help="search space to sample from (default %(default)s)")
    sample.add_argument("--seed", type=int, default=0,
                        help="seed of the sample: the same seed gives the same arch "
                             "(default %(default)s)")
    sample.set_defaults(func=cmd_arch_sample)
    counter = arch_cmds.add_parser("count", help="MACs, params and peak memory of an arch")
    counter.add_argument("arch", help="preset name or arch JSON file")
    counter.add_argument("--json", action="store_true", help="machine-readable output")
    counter.add_argument("--device", help="also predict latency from this device's latency table")
    counter.add_argument("--profiles-dir", default="profiles", help=PROFILES_DIR_HELP)
    counter.add_argument("--allow-stale", action="store_true", help=ALLOW_STALE_HELP)
    counter.set_defaults(func=cmd_arch_count)

    space = commands.add_parser("space", help="inspect search spaces")
    space_cmds = space.add_subparsers(dest="space_command", required=True)
    space_cmds.add_parser("list", help="the preset spaces").set_defaults(func=cmd_space_list)
    space_show = space_cmds.add_parser("show", help="a space's genes and choices")
    space_show.add_argument("space", choices=sorted(SPACES), help="preset space name")
    space_show.add_argument("--json", action="store_true",
                            help="machine-readable output: the space, its size, hash and genes")
    space_show.set_defaults(func=cmd_space_show)

    devices.register(commands)
    search.register(commands)
    deploy.register(commands)
    training.register(commands)
    run.register(commands)
    groundtruth.register(commands)
    estimate.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("edgenas").setLevel(logging.INFO)  # ours: informative; libraries: quiet
    try:
        args.func(args)
    except EdgenasError as err:
        print(f"edgenas: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as err:  # a full disk, a folder we may not write: name it, keep it short
        where = f"{err.filename}: " if err.filename else ""
        full = err.errno in (errno.ENOSPC, errno.EDQUOT)
        print(f"edgenas: error: {where}{err.strerror or err}"
              f"{'; ' + write_hint(err) if full else ''}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgenas: interrupted; finished work is saved, re-run the same command to resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

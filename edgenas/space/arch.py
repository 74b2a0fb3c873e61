"""The `Arch` value: one CNN, described at three levels, immutable and JSON-serialisable.

Macro level: width multiplier, depth multiplier, input resolution. Meso level: per stage,
block count, output channels, stride and how the stage down-samples. Micro level: per
block, operation, kernel, expansion ratio, squeeze-excitation and activation.

Channels and block counts are stored *before* the macro multipliers are applied, so a
width or depth change is one field, as in EfficientNet / MobileNet scaling; `edgenas.space.plan`
is the one place that applies them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

from edgenas.errors import ArchError
from edgenas.space.widths import scale_width

SCHEMA_VERSION = 1

#: Operations a block can be. ``conv``: one k x k convolution (VGG-style); ``basic``: the
#: ResNet basic residual block; ``bottleneck``: the ResNet residual bottleneck;
#: ``dwsep``: depth-wise separable (MobileNetV1); ``mbconv``: inverted bottleneck
#: (MobileNetV2); ``skip``: identity, i.e. the block is removed.
OPS: tuple[str, ...] = ("conv", "basic", "bottleneck", "dwsep", "mbconv", "skip")
ACTIVATIONS: tuple[str, ...] = ("relu", "relu6", "hswish", "swish")
#: How a stage with stride 2 halves the resolution: a strided first block, or a 2x2
#: pooling layer in front of a stride-1 first block (the search space's "pooling" op).
DOWNSAMPLES: tuple[str, ...] = ("stride", "maxpool", "avgpool")

#: Which micro fields each op reads; the others are set to neutral values so that two
#: blocks compare equal exactly when they build the same layers.
OP_USES: dict[str, frozenset[str]] = {
    "conv": frozenset({"kernel", "se", "activation"}),
    "basic": frozenset({"kernel", "se", "activation"}),
    "bottleneck": frozenset({"kernel", "expansion", "se", "activation"}),
    "dwsep": frozenset({"kernel", "se", "activation"}),
    "mbconv": frozenset({"kernel", "expansion", "se", "activation"}),
    "skip": frozenset(),
}
NEUTRAL: dict[str, Any] = {"kernel": 1, "expansion": 1.0, "se": False, "activation": "relu"}


@dataclass(frozen=True)
class Block:
    """Micro level: one block of a stage.

    ``expansion`` is the hidden width of an ``mbconv`` as a multiple of its input channels
    (MobileNetV2's t), and of a ``bottleneck`` as a multiple of ``out_channels / 4``
    (1.0 is ResNet's bottleneck).
    """

    op: str
    kernel: int = 3
    expansion: float = 1.0
    se: bool = False
    activation: str = "relu"

    def __post_init__(self) -> None:
        used = OP_USES.get(self.op)
        if used is None:
            return  # reported by validate(); keep the value inspectable
        object.__setattr__(self, "expansion", float(self.expansion))
        for name, neutral in NEUTRAL.items():
            if name not in used:
                object.__setattr__(self, name, neutral)

    def uses(self, field_name: str) -> bool:
        """Whether this block's op reads ``field_name`` (the rest are neutral)."""
        return field_name in OP_USES.get(self.op, frozenset())


@dataclass(frozen=True)
class Stage:
    """Meso level: blocks that share an output width; the first may change resolution."""

    channels: int
    stride: int
    blocks: tuple[Block, ...]
    downsample: str = "stride"

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if self.stride == 1:
            object.__setattr__(self, "downsample", "stride")


@dataclass(frozen=True)
class Stem:
    """The first convolution (conv + BN + activation) that turns pixels into features."""

    channels: int
    kernel: int = 3
    stride: int = 1
    activation: str = "relu"


@dataclass(frozen=True)
class Head:
    """Optional 1x1 feature convolution (``channels`` 0 = none), global pool, classifier."""

    channels: int = 0
    activation: str = "relu"
    dropout: float = 0.0


@dataclass(frozen=True)
class Arch:
    """One network. Everything else in edgenas is a function of this value."""

    resolution: int
    stem: Stem
    stages: tuple[Stage, ...]
    head: Head = field(default_factory=Head)
    num_classes: int = 10
    width_mult: float = 1.0
    depth_mult: float = 1.0
    in_channels: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "width_mult", float(self.width_mult))
        object.__setattr__(self, "depth_mult", float(self.depth_mult))

    # -- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain dict of JSON types (lists, not tuples) with the schema version first."""
        return json.loads(self.to_json(indent=0))

    def to_json(self, indent: int | None = None) -> str:
        """Canonical JSON: equal archs give byte-equal strings (usable as a cache key)."""
        data = {"schema_version": SCHEMA_VERSION, **asdict(self)}
        return json.dumps(data, indent=indent, sort_keys=indent is None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> "Arch":
        """Parse and validate; errors name the field path and, if given, the file."""
        try:
            arch = _parse_arch(data)
            validate(arch)
        except ArchError as err:
            raise err.with_source(source) if source else err
        return arch

    @classmethod
    def from_json(cls, text: str, source: str | None = None) -> "Arch":
        """Parse JSON text into a validated Arch."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ArchError("", f"not valid JSON ({err})", source) from None
        return cls.from_dict(data, source)

    def with_stage(self, index: int, stage: Stage) -> "Arch":
        """A copy with stage ``index`` replaced (stages are a tuple, so this is the way)."""
        stages = list(self.stages)
        stages[index] = stage
        return replace(self, stages=tuple(stages))


# -- parsing (dict -> dataclasses, with field paths) ---------------------------------------

def _expect_mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ArchError(path, f"expected an object, got {type(value).__name__}")
    return value


def _take(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], path: str,
          default: Any = ...) -> Any:
    full = f"{path}.{name}" if path else name
    if name not in data:
        if default is ...:
            raise ArchError(full, "missing")
        return default
    value = data[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python; never accept it where a number is meant, or vice versa
    if isinstance(value, bool) and bool not in kinds:
        raise ArchError(full, f"expected {_kind_name(kinds)}, got {value!r}")
    if not isinstance(value, kinds):
        raise ArchError(full, f"expected {_kind_name(kinds)}, got {value!r}")
    return value


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "a list", tuple: "a list", dict: "an object"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _reject_unknown(data: Mapping[str, Any], allowed: set[str], path: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        where = f"{path}." if path else ""
        raise ArchError(f"{where}{unknown[0]}",
                        f"unknown field; expected one of {sorted(allowed)}")


def _parse_block(data: Any, path: str) -> Block:
    data = _expect_mapping(data, path)
    _reject_unknown(data, {"op", "kernel", "expansion", "se", "activation"}, path)
    return Block(
        op=_take(data, "op", str, path),
        kernel=_take(data, "kernel", int, path, NEUTRAL["kernel"]),
        expansion=_take(data, "expansion", (int, float), path, NEUTRAL["expansion"]),
        se=_take(data, "se", bool, path, NEUTRAL["se"]),
        activation=_take(data, "activation", str, path, NEUTRAL["activation"]),
    )


def _parse_stage(data: Any, path: str) -> Stage:
    data = _expect_mapping(data, path)
    _reject_unknown(data, {"channels", "stride", "blocks", "downsample"}, path)
    blocks = _take(data, "blocks", (list, tuple), path)
    return Stage(
        channels=_take(data, "channels", int, path),
        stride=_take(data, "stride", int, path),
        blocks=tuple(_parse_block(b, f"{path}.blocks[{i}]") for i, b in enumerate(blocks)),
        downsample=_take(data, "downsample", str, path, "stride"),
    )


def _parse_arch(data: Any) -> Arch:
    data = _expect_mapping(data, "")
    _reject_unknown(data, {"schema_version", "resolution", "stem", "stages", "head",
                           "num_classes", "width_mult", "depth_mult", "in_channels"}, "")
    version = _take(data, "schema_version", int, "", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ArchError("schema_version", f"{version} is not supported; this edgenas reads "
                                          f"version {SCHEMA_VERSION}")
    stem = _expect_mapping(_take(data, "stem", dict, ""), "stem")
    _reject_unknown(stem, {"channels", "kernel", "stride", "activation"}, "stem")
    head = _expect_mapping(_take(data, "head", dict, "", {}), "head")
    _reject_unknown(head, {"channels", "activation", "dropout"}, "head")
    stages = _take(data, "stages", (list, tuple), "")
    return Arch(
        resolution=_take(data, "resolution", int, ""),
        stem=Stem(channels=_take(stem, "channels", int, "stem"),
                  kernel=_take(stem, "kernel", int, "stem", 3),
                  stride=_take(stem, "stride", int, "stem", 1),
                  activation=_take(stem, "activation", str, "stem", "relu")),
        stages=tuple(_parse_stage(s, f"stages[{i}]") for i, s in enumerate(stages)),
        head=Head(channels=_take(head, "channels", int, "head", 0),
                  activation=_take(head, "activation", str, "head", "relu"),
                  dropout=float(_take(head, "dropout", (int, float), "head", 0.0))),
        num_classes=_take(data, "num_classes", int, "", 10),
        width_mult=_take(data, "width_mult", (int, float), "", 1.0),
        depth_mult=_take(data, "depth_mult", (int, float), "", 1.0),
        in_channels=_take(data, "in_channels", int, "", 3),
    )


# -- structural validation (independent of any search space) -------------------------------

def _check(ok: bool, path: str, message: str) -> None:
    if not ok:
        raise ArchError(path, message)


def _check_kernel(kernel: int, path: str) -> None:
    _check(kernel >= 1 and kernel % 2 == 1, path, f"{kernel} must be an odd positive integer "
                                                   "(same padding needs an odd kernel)")


def validate(arch: Arch) -> None:
    """Raise `ArchError` if ``arch`` cannot be built; says which field and why.

    Checks what any network needs (known ops, positive sizes, odd kernels, a resolution
    that survives all the down-sampling, skips that do not change shape). Whether the
    arch lies inside a particular search space is `SearchSpace.validate`'s job.
    """
    _check(arch.resolution >= 1, "resolution", f"{arch.resolution} must be positive")
    _check(arch.in_channels >= 1, "in_channels", f"{arch.in_channels} must be positive")
    _check(arch.num_classes >= 1, "num_classes", f"{arch.num_classes} must be positive")
    _check(0 < arch.width_mult <= 8, "width_mult", f"{arch.width_mult} must be in (0, 8]")
    _check(0 < arch.depth_mult <= 8, "depth_mult", f"{arch.depth_mult} must be in (0, 8]")
    _check(arch.stem.channels >= 1, "stem.channels", f"{arch.stem.channels} must be positive")
    _check_kernel(arch.stem.kernel, "stem.kernel")
    _check(arch.stem.stride in (1, 2), "stem.stride", f"{arch.stem.stride} not in (1, 2)")
    _check(arch.stem.activation in ACTIVATIONS, "stem.activation",
           f"{arch.stem.activation!r} not in {ACTIVATIONS}")
    _check(arch.head.channels >= 0, "head.channels",
           f"{arch.head.channels} must be 0 (no head convolution) or positive")
    _check(arch.head.activation in ACTIVATIONS, "head.activation",
           f"{arch.head.activation!r} not in {ACTIVATIONS}")
    _check(0.0 <= arch.head.dropout < 1.0, "head.dropout", f"{arch.head.dropout} not in [0, 1)")
    _check(len(arch.stages) >= 1, "stages", "needs at least one stage")

    size = arch.resolution if arch.stem.stride == 1 else (arch.resolution + 1) // 2
    for i, stage in enumerate(arch.stages):
        path = f"stages[{i}]"
        _check(stage.channels >= 1, f"{path}.channels", f"{stage.channels} must be positive")
        _check(stage.stride in (1, 2), f"{path}.stride", f"{stage.stride} not in (1, 2)")
        _check(stage.downsample in DOWNSAMPLES, f"{path}.downsample",
               f"{stage.downsample!r} not in {DOWNSAMPLES}")
        _check(len(stage.blocks) >= 1, f"{path}.blocks", "needs at least one block")
        if stage.stride == 2:
            size = size // 2 if stage.downsample != "stride" else (size + 1) // 2
            _check(size >= 1, f"{path}.stride",
                   f"resolution {arch.resolution} is down-sampled to nothing by this stage; "
                   "use a larger resolution or fewer stride-2 stages")
        for j, block in enumerate(stage.blocks):
            bpath = f"{path}.blocks[{j}]"
            _check(block.op in OPS, f"{bpath}.op", f"{block.op!r} not in {OPS}")
            if block.uses("kernel"):
                _check_kernel(block.kernel, f"{bpath}.kernel")
            if block.uses("expansion"):
                _check(0 < block.expansion <= 16, f"{bpath}.expansion",
                       f"{block.expansion} must be in (0, 16]")
            if block.uses("activation"):
                _check(block.activation in ACTIVATIONS, f"{bpath}.activation",
                       f"{block.activation!r} not in {ACTIVATIONS}")
        _check_first_block_can_reshape(arch, i)


def stage_in_channels(arch: Arch, index: int) -> tuple[int, int]:
    """(input, output) channels of stage ``index`` after width scaling."""
    previous = arch.stem.channels if index == 0 else arch.stages[index - 1].channels
    return (scale_width(previous, arch.width_mult),
            scale_width(arch.stages[index].channels, arch.width_mult))


def _check_first_block_can_reshape(arch: Arch, index: int) -> None:
    """A skip cannot change shape, so it may not open a stage that changes it."""
    stage = arch.stages[index]
    if stage.blocks[0].op != "skip":
        return
    in_ch, out_ch = stage_in_channels(arch, index)
    strided = stage.stride == 2 and stage.downsample == "stride"
    if strided or in_ch != out_ch:
        change = "stride 2" if strided else f"channels {in_ch} -> {out_ch}"
        raise ArchError(f"stages[{index}].blocks[0].op",
                        f"'skip' cannot open a stage that changes shape ({change}); "
                        "use another op, or a pooling downsample with equal channels")


def load_arch(path: str | os.PathLike[str]) -> Arch:
    """Read and validate an arch JSON file; errors name the file and the field."""
    source = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as err:
        raise ArchError("", f"cannot read arch file ({err.strerror}); pass a preset name or "
                            "the path of a JSON file written by 'edgenas arch show/sample'",
                        source) from None
    except UnicodeDecodeError as err:
        raise ArchError("", f"not a text file ({err})", source) from None
    return Arch.from_json(text, source)

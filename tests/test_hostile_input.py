"""Hostile input, property-based (hypothesis): every invalid arch JSON, device descriptor,
budget, recipe, weight string or main-job number gets edgenas's own error, naming the field where it is a
field's fault, never a traceback; and every valid one is accepted, read as written (a reader
that refused everything would pass the first half alone)."""

from __future__ import annotations

import copy
import json
import math
import typing
from dataclasses import asdict, fields, is_dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgenas.cli import build_parser
from edgenas.device.descriptor import CONNECTIONS, Device, parse_device
from edgenas.errors import EdgenasError
from edgenas.pipeline import RunConfig
from edgenas.search.objectives import OBJECTIVES, Budgets, parse_weights
from edgenas.search.trained_search import SurrogateConfig
from edgenas.space import get_space
from edgenas.space.arch import (ACTIVATIONS, DOWNSAMPLES, NEUTRAL, OP_USES, OPS,
                                SCHEMA_VERSION, Arch)
from edgenas.train.loop import TrainConfig
from edgenas.train.subnet_sampling import SAMPLINGS

SPACES = [get_space("cifar"), get_space("imagenet")]
VALID_ARCH = get_space("cifar").sample(0).to_dict()
VALID_DEVICE = {"name": "board", "notes": "n",
                "connection": {"kind": "ssh", "host": "b.local", "user": "u", "port": 22,
                               "workdir": "/tmp/edgenas", "python": "python3"},
                "runtime": {"name": "onnxruntime", "providers": ["CPUExecutionProvider"],
                            "threads": 1, "precision": "fp32"},
                "timing": {"warmup": 10, "repeats": 50, "min_time_ms": 40.0,
                           "max_time_ms": 300.0}}
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats()
                    | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def paths(value, prefix=()):  # noqa: ANN001, ANN201
    """Every (path, leaf-or-node) inside a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def replaced(document, path, value):  # noqa: ANN001, ANN201
    out = copy.deepcopy(document)
    if not path:
        return value
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


ARCH_PATHS = [p for p in paths(VALID_ARCH) if p]
DEVICE_PATHS = [p for p in paths(VALID_DEVICE) if p]


@SETTINGS
@given(JSON)
def test_any_json_is_an_arch_or_an_arch_error(document) -> None:  # noqa: ANN001
    try:
        arch = Arch.from_dict(document, "arch.json")
    except EdgenasError as err:
        assert "arch.json" in str(err)
    else:  # then it was an arch, read as written
        given_values_kept(arch_fields_kept(document), arch.to_dict())


#: Fields an arch document may leave out (each has a default that any arch may hold), by
#: where they sit. Not width_mult nor a stage's downsample: a skip that opens a stage is
#: allowed by the channels and stride they give.
OPTIONAL_ARCH_FIELDS = {"arch": ("schema_version", "head", "num_classes", "depth_mult",
                                 "in_channels"),
                        "stem": ("kernel", "stride", "activation"),
                        "block": ("kernel", "expansion", "se", "activation")}


@SETTINGS
@given(st.sampled_from(SPACES), st.integers(0, 2**32 - 1), st.data())
def test_every_valid_arch_document_is_accepted_as_written(space, seed: int, data) -> None:  # noqa: ANN001
    document = json.loads(json.dumps(space.sample(seed).to_dict()))

    def leave_out(node: dict, where: str) -> None:
        for name in OPTIONAL_ARCH_FIELDS[where]:
            if data.draw(st.booleans(), label=f"leave out {where}.{name}"):
                node.pop(name)

    leave_out(document, "arch")
    leave_out(document["stem"], "stem")
    for stage in document["stages"]:
        for block in stage["blocks"]:
            leave_out(block, "block")
    arch = Arch.from_dict(document, "arch.json")
    given_values_kept(arch_fields_kept(document), arch.to_dict())


def kind(value) -> str:  # noqa: ANN001
    """A JSON value's type as a reader sees it (true is not a number, 3 and 3.5 both are)."""
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def given_values_kept(given, held) -> None:  # noqa: ANN001
    """Every value a document gives is the value the parsed object holds (``held``, as plain
    JSON data), of the same JSON kind: accepted input was read as written, not coerced, not
    dropped; fields it leaves out may take defaults. NaN, never equal to itself, fails."""
    if isinstance(given, dict):
        assert isinstance(held, dict) and set(given) <= set(held), (given, held)
        for key, value in given.items():
            given_values_kept(value, held[key])
    elif isinstance(given, list):
        assert isinstance(held, list) and len(held) == len(given), (given, held)
        for value, kept in zip(given, held):
            given_values_kept(value, kept)
    else:
        assert kind(given) == kind(held) and given == held, (given, held)


def arch_fields_kept(document):  # noqa: ANN001, ANN201
    """An accepted arch document less what an arch stores neutral whatever it is given: the
    fields a block's op does not use (a skip's kernel) and a stride-1 stage's down-sampling."""
    document = copy.deepcopy(document)
    for stage in document["stages"]:
        if stage["stride"] == 1:
            stage.pop("downsample", None)
        for block in stage["blocks"]:
            for name in NEUTRAL:
                if name not in OP_USES[block["op"]]:
                    block.pop(name, None)
    return document


def as_json(value) -> object:  # noqa: ANN001
    """A parsed dataclass as the JSON data it was read from (tuples as lists)."""
    return json.loads(json.dumps(asdict(value)))


def assert_well_typed(value) -> None:  # noqa: ANN001
    """Every field of a parsed dataclass (and of those inside it) holds its annotated type:
    no number or null among the names of a list, no true where a count belongs."""
    hints = typing.get_type_hints(type(value))
    for field in fields(value):
        item, hint = getattr(value, field.name), hints[field.name]
        if is_dataclass(item):
            assert_well_typed(item)
        elif typing.get_origin(hint) is tuple:
            element = typing.get_args(hint)[0]
            assert all(isinstance(x, element) for x in item), (field.name, item)
        else:
            assert isinstance(item, hint) and not (isinstance(item, bool) and hint is not bool), (
                field.name, item)


def _at(document, path):  # noqa: ANN001, ANN202
    for key in path:
        document = document[key]
    return document


@SETTINGS
@given(st.sampled_from(ARCH_PATHS), JSON)
def test_a_corrupted_arch_field_is_named(path, value) -> None:  # noqa: ANN001
    document = replaced(VALID_ARCH, path, value)
    try:
        arch = Arch.from_dict(document, "arch.json")
    except EdgenasError as err:
        message = str(err)
        assert "arch.json" in message
        if kind(value) != kind(_at(VALID_ARCH, path)) and isinstance(path[-1], str):
            # a value of the wrong JSON type is reported at its own field
            assert path[-1] in message, (path, value, message)
    else:  # the new value is one an arch may hold (another kernel, se off), read as written
        given_values_kept(arch_fields_kept(document), arch.to_dict())


def valid_arch_values(path: tuple) -> st.SearchStrategy:
    """Values the field at ``path`` of VALID_ARCH may take, the rest of it unchanged: any arch
    may hold them (VALID_ARCH halves its resolution three times at most, and none of its
    stages opens with a skip)."""
    name = path[-1]
    if name == "channels":
        return st.integers(0 if path[0] == "head" else 1, 4096)
    if name == "op":  # a skip may not open a stage that changes shape
        return st.sampled_from(OPS if path[-2] != 0 else tuple(o for o in OPS if o != "skip"))
    positive = st.floats(0, 8, exclude_min=True) | st.integers(1, 8)
    return {"schema_version": st.just(SCHEMA_VERSION), "resolution": st.integers(8, 4096),
            "kernel": st.integers(0, 7).map(lambda k: 2 * k + 1),
            "stride": st.sampled_from((1, 2)), "activation": st.sampled_from(ACTIVATIONS),
            "downsample": st.sampled_from(DOWNSAMPLES), "se": st.booleans(),
            "expansion": st.floats(0, 16, exclude_min=True) | st.integers(1, 16),
            "dropout": st.floats(0, 1, exclude_max=True) | st.just(0),
            "num_classes": st.integers(1, 10**5), "in_channels": st.integers(1, 64),
            "width_mult": positive, "depth_mult": positive}[name]


ARCH_LEAVES = [p for p in ARCH_PATHS if not isinstance(_at(VALID_ARCH, p), (dict, list))]


@SETTINGS
@given(st.sampled_from(ARCH_LEAVES), st.data())
def test_a_valid_value_in_any_arch_field_is_accepted_as_written(path, data) -> None:  # noqa: ANN001
    document = replaced(VALID_ARCH, path, data.draw(valid_arch_values(path), label="value"))
    arch = Arch.from_dict(document, "arch.json")
    given_values_kept(arch_fields_kept(document), arch.to_dict())


@SETTINGS
@given(st.sampled_from(SPACES), st.integers(0, 2**32 - 1))
def test_every_sampled_arch_round_trips(space, seed: int) -> None:  # noqa: ANN001
    arch = space.sample(seed)
    assert Arch.from_json(arch.to_json()) == arch
    assert Arch.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch
    assert space.decode(space.encode(arch)) == arch


@SETTINGS
@given(st.sampled_from(DEVICE_PATHS), JSON)
def test_a_corrupted_device_descriptor_is_a_device_error(path, value) -> None:  # noqa: ANN001
    document = replaced(VALID_DEVICE, path, value)
    try:
        device = parse_device(document, "devices/board.toml")
    except EdgenasError as err:
        assert "devices/board.toml" in str(err)
    else:  # the new value is one a descriptor may hold (another port, a user), read as written
        assert_well_typed(device)
        given_values_kept(document, as_json(device))


#: Host, user and serial names as ssh and adb take them: no leading '-', no whitespace.
REMOTE_NAME = st.text(st.sampled_from("abcxyzABC0189.-_:@"), max_size=12).filter(
    lambda name: not name.startswith("-"))


def valid_device_values(path: tuple) -> st.SearchStrategy:
    """Values the field at ``path`` of VALID_DEVICE (an ssh device on ONNX Runtime) may
    take, the rest of it unchanged."""
    if path[:2] == ("runtime", "providers"):
        return st.text() if len(path) == 3 else st.lists(st.text(), max_size=4)
    return {("name",): st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]*", fullmatch=True),
            ("notes",): st.text(),
            ("connection", "kind"): st.sampled_from(CONNECTIONS),
            ("connection", "host"): REMOTE_NAME.filter(bool),  # ssh needs one
            ("connection", "user"): REMOTE_NAME,
            ("connection", "port"): st.integers(0, 65535),
            ("connection", "workdir"): st.text(st.characters(categories=["L", "N", "P", "S"]))
            .map(lambda name: "/" + name),
            ("connection", "python"): st.text(),
            ("runtime", "name"): st.sampled_from(["onnxruntime", "tensorrt"]),
            ("runtime", "threads"): st.integers(1, 1024),
            ("runtime", "precision"): st.sampled_from(["fp32", "fp16", "int8"]),
            ("timing", "warmup"): st.integers(0, 10**6),
            ("timing", "repeats"): st.integers(5, 10**6),
            ("timing", "min_time_ms"): st.floats(0, 300) | st.integers(0, 300),  # max is 300
            ("timing", "max_time_ms"): st.just(0) | st.floats(40, 1e9) | st.integers(40, 10**9),
            }[path]


DEVICE_LEAVES = [p for p in DEVICE_PATHS if not isinstance(_at(VALID_DEVICE, p), dict)]


@SETTINGS
@given(st.sampled_from(DEVICE_LEAVES), st.data())
def test_a_valid_value_in_any_device_field_is_accepted_as_written(path, data) -> None:  # noqa: ANN001
    document = replaced(VALID_DEVICE, path, data.draw(valid_device_values(path), label="value"))
    device = parse_device(document, "devices/board.toml")
    assert_well_typed(device)
    given_values_kept(document, as_json(device))


@SETTINGS
@given(st.sampled_from(["host", "user", "serial"]),
       st.text(min_size=0, max_size=20).map(lambda t: "-" + t))
def test_a_connection_field_that_ssh_would_read_as_an_option_is_refused(field, value) -> None:  # noqa: ANN001
    # host = "-oProxyCommand=touch x" would have ssh run a local command
    document = replaced(VALID_DEVICE, ("connection", field), value)
    with pytest.raises(EdgenasError, match=f"connection.{field}"):
        parse_device(document, "devices/board.toml")


@SETTINGS
@given(st.text(min_size=1, max_size=20), st.sampled_from(["\n", "\r", "\t", "\x00", "\x1b"]))
def test_a_workdir_with_control_characters_is_refused(name, control) -> None:  # noqa: ANN001
    document = replaced(VALID_DEVICE, ("connection", "workdir"), f"/tmp/{name}{control}x")
    with pytest.raises(EdgenasError, match="connection.workdir"):
        parse_device(document, "devices/board.toml")


def test_a_workdir_with_shell_syntax_is_accepted_as_a_folder_name() -> None:
    # quoting makes these plain characters on the device (tests/test_ssh.py runs one)
    hostile = "/tmp/w $(touch pwned); `id` 'q' \"x\" -rf"
    device = parse_device(replaced(VALID_DEVICE, ("connection", "workdir"), hostile), "b.toml")
    assert device.connection.workdir == hostile
    with pytest.raises(EdgenasError, match="absolute path"):
        parse_device(replaced(VALID_DEVICE, ("connection", "workdir"), "-rf"), "b.toml")


@SETTINGS
@given(st.dictionaries(st.text(max_size=10), JSON, max_size=4))
def test_unknown_device_tables_are_refused(extra) -> None:  # noqa: ANN001
    document = {**VALID_DEVICE, **extra}
    unknown = sorted(set(extra) - ({field.name for field in fields(Device)} - {"source"}))
    if unknown:
        with pytest.raises(EdgenasError, match="devices/board.toml") as refused:
            parse_device(document, "devices/board.toml")
        assert "unknown field" in str(refused.value)
        return
    try:  # only known fields (rarely drawn): a changed value must be a valid one
        device = parse_device(document, "devices/board.toml")
    except EdgenasError as err:
        assert "devices/board.toml" in str(err)
    else:
        assert_well_typed(device)
        given_values_kept(document, as_json(device))


@SETTINGS
@given(st.sets(st.sampled_from(["notes", "connection", "runtime", "timing"])),
       st.none() | st.lists(st.text(), max_size=3))
def test_a_descriptor_of_known_tables_is_accepted_whichever_it_leaves_out(left_out, setup
                                                                          ) -> None:  # noqa: ANN001
    document = {key: value for key, value in VALID_DEVICE.items() if key not in left_out}
    if setup is not None:
        document["setup"] = setup
    device = parse_device(document, "devices/board.toml")  # a local device, if no connection
    assert_well_typed(device)
    given_values_kept(document, as_json(device))


@SETTINGS
@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**6, 10**6))
def test_budgets_are_positive_finite_numbers(limit) -> None:  # noqa: ANN001
    for name in ("max_latency_ms", "max_memory_mb", "max_mmacs", "max_params"):
        budgets = Budgets(**{name: limit})
        # a parameter budget is a count: below one parameter (5e-324 would be 0.0 millions)
        # no network meets it
        if limit > 0 and math.isfinite(limit) and (name != "max_params" or limit >= 1):
            assert len(budgets.limits()) == 1
        else:
            with pytest.raises(EdgenasError, match=name):
                budgets.limits()


@SETTINGS
@given(st.text(max_size=40))
def test_weight_strings_parse_or_name_the_item(text: str) -> None:
    try:
        weights = parse_weights(text)
    except EdgenasError as err:
        assert "--weights" in str(err)
    else:
        assert all(isinstance(v, float) for v in weights.values())


@SETTINGS
@given(st.dictionaries(st.sampled_from(sorted(set(OBJECTIVES) - {"accuracy"})),
                       st.floats(allow_nan=False)))
def test_weight_strings_of_cost_objectives_are_read_as_written(weights: dict[str, float]
                                                               ) -> None:
    text = ",".join(f"{name}={value!r}" for name, value in weights.items())
    assert parse_weights(text) == weights


@SETTINGS
@given(st.dictionaries(st.sampled_from(["epochs", "lr", "batch_size", "limit", "sampling",
                                        "val_fraction", "split_seed", "bogus"]), JSON,
                       max_size=3))
def test_recipes_are_checked_field_by_field(recipe) -> None:  # noqa: ANN001
    try:
        config = TrainConfig.from_dict(recipe, "recipe.json")
    except EdgenasError as err:
        assert "recipe.json" in str(err)
    else:  # what passed is a recipe a training runs with, read as written
        assert "bogus" not in recipe
        given_values_kept(recipe, as_json(config))
        assert config.epochs >= 1 and config.batch_size >= 1
        assert 0 < config.lr < math.inf and 0 < config.val_fraction < 1
        assert config.limit is None or config.limit >= 1


@SETTINGS
@given(st.fixed_dictionaries({}, optional={
    "epochs": st.integers(1, 10**6), "batch_size": st.integers(1, 10**6),
    "lr": st.floats(0, 10.0, exclude_min=True) | st.integers(1, 10),
    "limit": st.none() | st.integers(1, 10**9), "sampling": st.sampled_from(SAMPLINGS),
    "val_fraction": st.floats(0, 1, exclude_min=True, exclude_max=True),
    "split_seed": st.none() | st.integers(0, 2**32 - 1)}))
def test_a_recipe_of_valid_values_is_accepted_as_written(recipe) -> None:  # noqa: ANN001
    given_values_kept(recipe, as_json(TrainConfig.from_dict(recipe, "recipe.json")))


#: The main job's numeric settings and their flags.
RUN_NUMBERS = {"supernet_epochs": "--supernet-epochs", "train_epochs": "--train-epochs",
               "train_budget": "--train-budget", "trials": "--trials",
               "population": "--population", "val_limit": "--val-limit", "seed": "--seed",
               "table_minutes": "--table-minutes", "max_latency_ms": "--max-latency-ms",
               "max_memory_mb": "--max-memory-mb", "data_limit": "--data-limit",
               "halving": "--halving"}


@SETTINGS
@given(st.sampled_from(sorted(RUN_NUMBERS)),
       st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True))
def test_main_job_numbers_are_checked_before_any_work(name, value) -> None:  # noqa: ANN001
    config = RunConfig(**{name: value})
    try:
        config.check()
    except EdgenasError as err:
        assert str(err).startswith(RUN_NUMBERS[name]), err
    else:  # what passed is a number every stage can use
        assert value >= 0 and math.isfinite(value)
        assert name in ("table_minutes", "max_latency_ms", "max_memory_mb") or value == int(value)


#: The least whole number each count of the main job takes (the others are positive numbers).
RUN_MINIMUM = {"supernet_epochs": 1, "train_epochs": 1, "train_budget": SurrogateConfig.initial,
               "trials": 1, "population": 2, "val_limit": 1, "seed": 0, "data_limit": 20,
               "halving": 2}
POSITIVE = st.floats(0, 1e5, exclude_min=True) | st.integers(1, 10**5)


@SETTINGS
@given(st.sampled_from(sorted(RUN_NUMBERS)), st.data())
def test_main_job_numbers_at_or_above_their_minimum_are_accepted(name, data) -> None:  # noqa: ANN001
    value = data.draw(st.integers(RUN_MINIMUM[name], 10**6) if name in RUN_MINIMUM
                      else POSITIVE, label="value")
    RunConfig(**{name: value}).check()


PROFILE_COUNTS = {"--chunk": 1, "--fitting-networks": 0, "--max-units": 1, "--validate": 0}


@SETTINGS
@given(st.sampled_from(sorted(PROFILE_COUNTS)), st.integers(-10**6, 10) | st.text(max_size=4))
def test_profile_counts_are_checked_before_any_work(flag, value) -> None:  # noqa: ANN001
    """Checked as typed: `--chunk 0` was a traceback after the first unit, and `--validate
    -3` a whole profile that failed at its end."""
    parser = build_parser()
    try:
        args = parser.parse_args(["profile", "host-cpu", flag, str(value)])
    except SystemExit as stop:
        assert stop.code == 2
    else:
        assert int(str(value)) >= PROFILE_COUNTS[flag]
        assert getattr(args, flag[2:].replace("-", "_")) == int(str(value))


@SETTINGS
@given(st.sampled_from(sorted(PROFILE_COUNTS)), st.data())
def test_profile_counts_at_or_above_their_minimum_are_accepted(flag, data) -> None:  # noqa: ANN001
    value = data.draw(st.integers(PROFILE_COUNTS[flag], 10**6), label="value")
    args = build_parser().parse_args(["profile", "host-cpu", flag, str(value)])
    assert getattr(args, flag[2:].replace("-", "_")) == value


def test_hostile_file_and_folder_names_are_never_executed(tmp_path, monkeypatch) -> None:
    """Paths with spaces, quotes, `$(...)`, ';', backticks and leading dashes are data: the
    command works on them as named and runs nothing (no shell is ever involved)."""
    from edgenas.cli import main

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "d $(touch pwned); `touch pwned` 'q' \"x\""
    folder.mkdir()
    arch_file = folder / "-arch; $(touch pwned).json"
    arch_file.write_text(json.dumps(get_space("cifar").sample(3).to_dict()))
    out = "-out; $(touch pwned) `touch pwned`"
    assert main(["export", "--formats", "onnx", f"--out={out}", "--", str(arch_file)]) == 0
    assert (tmp_path / out / "model.onnx").is_file()
    assert not any(p.name == "pwned" for p in tmp_path.rglob("*"))

"""The numbers README.md states are the numbers the code has: each test reads its number
from README.md and holds it to the code, so the two cannot drift apart unnoticed (a
reworded sentence fails here too: then say the number again where this test finds it)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from edgenas import count, get_preset, get_space
from edgenas.pipeline import RunConfig, RunState, _recipe
from edgenas.profile import drift, trust
from edgenas.profile.keys import space_units
from edgenas.profile.sampling import SAMPLE_ABOVE
from test_count import RANDOM_ARCHS

README = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())


def stated(pattern: str) -> tuple[str, ...]:
    """The groups of ``pattern`` where README.md matches it (white space folded)."""
    found = re.search(pattern, README)
    assert found, f"README.md no longer says {pattern!r}"
    return found.groups()


def number(text: str) -> float:
    """``text`` as README writes a number (``6,966``, ``1.5``) read as one."""
    return float(text.replace(",", ""))


def test_the_main_jobs_search_defaults_are_those_the_readme_states() -> None:
    config = RunConfig()
    budget, initial, per_round = stated(r"of (\d+) archs \(`--train-budget`\): (\d+) spread "
                                        r"over the space's MACs, then rounds of (\d+) proposed")
    trials, population = stated(r"\(`--trials` (\d+) per round, `--population` (\d+)\)")
    surrogate = config.surrogate_config()
    assert (config.train_budget, surrogate.initial, surrogate.per_round) \
        == (int(budget), int(initial), int(per_round))
    assert (config.trials, config.population) == (int(trials), int(population))
    assert (surrogate.inner_trials, surrogate.population) == (int(trials), int(population))
    (supernet_epochs,) = stated(r"`--supernet-epochs` (\d+)")
    assert config.supernet_epochs == int(supernet_epochs)


def test_the_main_jobs_recipe_is_the_one_the_readme_states() -> None:
    epochs, batch, lr, warmup = stated(
        r"The recipe: `--train-epochs` (\d+), batch (\d+), learning rate ([\d.]+) \(linear "
        r"warm-up for `--train-warmup-epochs` ([\d.]+), then cosine\)")
    train, val = stated(r"on a seeded (\d+) % / (\d+) % train / validation split")
    recipe = _recipe(RunState(RunConfig(), Path("runs/main")))  # what every training gets
    assert (recipe.epochs, recipe.batch_size, recipe.lr, recipe.warmup_epochs) \
        == (int(epochs), int(batch), float(lr), float(warmup))
    assert int(train) + int(val) == 100 and recipe.val_fraction == int(val) / 100


def test_the_table_stage_numbers_are_those_the_readme_states() -> None:
    minutes, calibrate, validate = stated(
        r"measure it anew in `--table-minutes` \(([\d.]+)\): (\d+) table-fitting networks, "
        r"a covering sample of units \(the rest predicted\), (\d+) held-out networks")
    assert RunConfig().table_minutes == float(minutes)
    assert inspect.signature(trust.trusted_table).parameters["table_minutes"].default \
        == float(minutes)
    assert (trust.CALIBRATE, trust.VALIDATE) == (int(calibrate), int(validate))
    rechecked, bias, tau = stated(
        r"re-time (\d+) held-out networks; trust the table if their median "
        r"measured/predicted is within (\d+) % of 1 \*\*and\*\* Kendall tau ≥ ([\d.]+) \|")
    assert inspect.signature(drift.check_drift).parameters["count"].default == int(rechecked)
    assert (drift.MAX_BIAS, drift.MIN_TAU) == (int(bias) / 100, float(tau))
    (points,) = stated(r"the refit's share within ±10 % is over (\d+) points below the lower "
                       r"of the table's own share and this host's noise floor")
    assert drift.MAX_VALIDATION_LOSS == int(points) / 100


def test_the_space_sizes_and_gene_counts_are_those_the_readme_states() -> None:
    for name, pixels in (("cifar", r"28 or 32 px, 10 classes"),
                         ("imagenet", r"160-224 px, 1000 classes")):
        size, genes = stated(rf"`{name}` \({pixels}, ([\d.]+e\d+) archs, (\d+) genes\)")
        space = get_space(name)
        mantissa, exponent = size.split("e")
        assert f"{space.size():.2e}" == f"{mantissa}e+{exponent}", name
        assert len(space.genes()) == int(genes), name


def test_the_unit_count_and_the_sampling_threshold_are_those_the_readme_states() -> None:
    units, threshold = stated(r"\(([\d,]+) for `cifar`; a space of more than ([\d,]+), such "
                              r"as `imagenet`, is sampled within `--time-budget`\)")
    assert len(space_units(get_space("cifar"))) == number(units) <= number(threshold)
    assert SAMPLE_ABOVE == number(threshold) < len(space_units(get_space("imagenet")))


def test_the_counts_held_to_pytorch_are_those_the_readme_states() -> None:
    (macs,) = stated(r"MobileNetV2 at 224 px: ([\d,]+)\)")
    assert count(get_preset("mobilenetv2")).macs == number(macs)
    total, cifar, imagenet = stated(r"on every preset and (\d+) random archs \((\d+) of "
                                    r"`cifar`, (\d+) of `imagenet`\)")
    assert RANDOM_ARCHS == {"cifar": int(cifar), "imagenet": int(imagenet)}
    assert sum(RANDOM_ARCHS.values()) == int(total)

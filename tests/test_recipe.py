"""The shared training recipe: its learning-rate warm-up, and when a network trained with it
counts as converged (the report's hand-designed baselines)."""

from __future__ import annotations

import html
import math
from pathlib import Path

import pytest

from edgenas.errors import ConfigError
from edgenas.pipeline import RunConfig, RunState, _recipe, assess_convergence
from edgenas.profile.lut import load_lut
from edgenas.report import write_report
from edgenas.search.results import PICK_RULES
from edgenas.space import get_space
from edgenas.space.baselines import baseline_archs
from edgenas.train.loop import TrainConfig, cosine_lr, recipe_warmup_steps, scheduled_lr
from edgenas.train.standalone import (CONVERGENCE_RULE, MIN_ACCURACY_OVER_CHANCE,
                                      MIN_SHARE_OF_BEST_GAIN, convergence_floor, converged)

TABLE = Path(__file__).resolve().parents[1] / "profiles" / "host-cpu" / "cifar.json"


# -- warm-up -------------------------------------------------------------------------------------

def test_lr_rises_linearly_during_warmup_then_follows_cosine_to_zero() -> None:
    base, total, warmup = 0.1, 100, 20
    rates = [scheduled_lr(base, step, total, warmup) for step in range(total)]
    assert rates[:warmup] == pytest.approx([base * (s + 1) / warmup for s in range(warmup)])
    assert all(a < b for a, b in zip(rates[:warmup - 1], rates[1:warmup]))
    assert rates[warmup] == pytest.approx(base)
    for step in range(warmup, total):
        progress = (step - warmup) / (total - warmup)
        assert rates[step] == pytest.approx(0.5 * base * (1 + math.cos(math.pi * progress)))
    assert all(a >= b for a, b in zip(rates[warmup:], rates[warmup + 1:]))
    assert scheduled_lr(base, total, total, warmup) == pytest.approx(0.0)


def test_without_warmup_the_schedule_is_exactly_the_cosine_runs_started_with() -> None:
    assert [scheduled_lr(0.05, s, 39) for s in range(40)] == [cosine_lr(0.05, s, 39)
                                                             for s in range(40)]


def test_warmup_in_steps_follows_the_epochs_and_leaves_a_step_of_decay() -> None:
    assert recipe_warmup_steps(TrainConfig(epochs=2, warmup_epochs=0.5), 39) == 20
    assert recipe_warmup_steps(TrainConfig(epochs=2), 39) == 0
    assert recipe_warmup_steps(TrainConfig(epochs=2, warmup_epochs=1.99), 1) == 1


def test_warmup_is_recorded_in_the_recipe_only_when_there_is_one() -> None:
    assert TrainConfig(epochs=2, warmup_epochs=0.5).to_dict()["warmup_epochs"] == 0.5
    # runs recorded before warm-up existed keep their identity, and so resume
    assert "warmup_epochs" not in TrainConfig(epochs=2).to_dict()
    recipe = TrainConfig(epochs=2, warmup_epochs=0.5).to_dict()
    assert TrainConfig.from_dict(recipe, "run.json") == TrainConfig(epochs=2, warmup_epochs=0.5)


@pytest.mark.parametrize("warmup", [-0.5, 2, 3.0, float("nan"), True, "1"])
def test_a_warmup_that_leaves_no_decay_is_refused_naming_the_field(warmup: object) -> None:
    with pytest.raises(ConfigError, match="warmup_epochs"):
        TrainConfig(epochs=2, warmup_epochs=warmup)  # type: ignore[arg-type]


def test_the_main_jobs_recipe_warms_up_every_arch_it_trains(tmp_path: Path) -> None:
    # one recipe trains the search's archs and the baselines alike
    recipe = _recipe(RunState(RunConfig(), tmp_path))
    assert recipe.warmup_epochs == RunConfig().train_warmup_epochs > 0
    assert recipe.to_dict()["warmup_epochs"] == RunConfig().train_warmup_epochs


def test_the_main_job_refuses_a_warmup_as_long_as_its_training() -> None:
    with pytest.raises(ConfigError, match=r"--train-warmup-epochs 1: .*--train-epochs \(1\)"):
        RunConfig(train_epochs=1, train_warmup_epochs=1).check()


# -- convergence ---------------------------------------------------------------------------------

def test_a_network_near_chance_did_not_converge() -> None:
    # ResNet-56 after 2 epochs of the digits recipe, beside archs at 90 %
    assert not converged(0.163, 10, best_accuracy=0.905)
    assert not converged(0.208, 10, best_accuracy=0.905)
    assert not converged(0.10, 10)


def test_a_network_that_learned_converged() -> None:
    assert converged(0.798, 10, best_accuracy=0.905)  # ResNet-20 beside the same archs
    assert converged(0.292, 10, best_accuracy=0.434)  # CIFAR-10, 2 epochs: every net is low


def test_the_convergence_floor_is_the_stricter_of_chance_and_the_recipes_best() -> None:
    assert convergence_floor(10) == pytest.approx(MIN_ACCURACY_OVER_CHANCE / 10)
    assert convergence_floor(10, best_accuracy=0.9) == pytest.approx(
        0.1 + MIN_SHARE_OF_BEST_GAIN * 0.8)
    # when even the best stays low, chance x 1.5 still has to be reached
    assert convergence_floor(10, best_accuracy=0.12) == pytest.approx(0.15)
    assert converged(convergence_floor(10, 0.9), 10, 0.9)


def test_the_convergence_rule_states_the_constants() -> None:
    assert f"{MIN_ACCURACY_OVER_CHANCE:g} x chance" in CONVERGENCE_RULE
    assert f"{100 * MIN_SHARE_OF_BEST_GAIN:g} %" in CONVERGENCE_RULE


def _network(name: str, arch: dict, accuracy: float) -> dict:
    return {"name": name, "arch": arch, "macs": 125e6, "params": 0.85e6,
            "memory_bytes_fp32": 3.6e6, "predicted_ms": None, "measured_ms": 4.5,
            "val_accuracy": accuracy, "run_dir": "/nonexistent", "train_seconds": 60.0}


def test_a_baseline_that_did_not_converge_is_marked_with_its_verdict() -> None:
    archs = baseline_archs(get_space("cifar"))
    record = assess_convergence(_network("ResNet-56", archs["ResNet-56"].to_dict(), 0.163),
                                best_accuracy=0.905)
    assert record["converged"] is False
    assert record["verdict"] == ("did not converge: 16.3 % is below 30.1 % (chance 10.0 %, "
                                 "best with this recipe 90.5 %)")
    good = assess_convergence(_network("ResNet-20", archs["ResNet-20"].to_dict(), 0.798), 0.905)
    assert good["converged"] is True and good["verdict"] == "converged"


def test_the_report_says_did_not_converge_instead_of_the_accuracy_and_names_the_rules(
        tmp_path: Path) -> None:
    archs = baseline_archs(get_space("cifar"))
    baselines = [assess_convergence(_network(name, archs[name].to_dict(), accuracy), 0.905)
                 for name, accuracy in (("ResNet-20", 0.798), ("ResNet-56", 0.163))]
    models = [{"name": name, "formats": ["onnx"], "trial": 10, "accuracy_estimate": 0.905,
               "accuracy_exported": 0.905, "macs": 5.5e6, "params": 0.1e6,
               "memory_bytes_fp32": 0.81e6, "predicted_ms": 0.244, "measured_ms": 0.30,
               "bundle": "b", "rule": PICK_RULES[name]} for name in ("knee", "fastest")]
    summary = {"config": {"space": "cifar", "device": "host-cpu", "data": "digits"},
               "lut_validation": None, "lut_check": None, "models": models,
               "search": {"trials": 14, "hypervolume": 0.5, "surrogate": None},
               "front_size": 2, "baselines": baselines, "convergence_rule": CONVERGENCE_RULE,
               "pick_rules": {name: PICK_RULES[name] for name in ("knee", "fastest")},
               "recipe": TrainConfig(epochs=2, batch_size=32, lr=0.1,
                                     warmup_epochs=0.5).to_dict()}
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "pareto.png").write_bytes(b"\x89PNG")
    front = [{"accuracy": 0.905, "latency": 0.244, "macs": 5.5, "memory": 0.81}]
    page = write_report(tmp_path, summary, load_lut(TABLE), front).read_text()
    row = page[page.index("<td>ResNet-56</td>"):].split("</tr>")[0]
    assert "did not converge" in row and "16.3" not in row
    assert "79.8 %" in page  # the baseline that converged keeps its accuracy
    assert "16.3 % is below 30.1 %" in page and CONVERGENCE_RULE in page
    assert html.escape(PICK_RULES["knee"]) in page and html.escape(PICK_RULES["fastest"]) in page
    assert "linear warm-up over 0.5 epochs, then cosine" in page


def test_the_main_job_halves_only_when_told() -> None:
    """No successive halving by default (after 1 of the default recipe's 2 epochs most archs
    score at chance); --rungs as given; a rung at or past the recipe refused before any
    work, naming the flag."""
    assert RunConfig().surrogate_config().rungs == ()
    assert RunConfig(train_epochs=4, rungs=(1, 2)).surrogate_config().rungs == (1, 2)
    with pytest.raises(ConfigError, match="^--rungs 2: every rung must be below"):
        RunConfig(train_epochs=2, rungs=(2,)).check()
    with pytest.raises(ConfigError, match="^--rungs 2 1: give increasing"):
        RunConfig(train_epochs=4, rungs=(2, 1)).check()

"""What a front's accuracy column is.

Either a trained network's validation accuracy, under one recipe on one split, or an
estimator's number: which estimator, how well it ranks where that was measured, and what
it predicts (a predictor fitted on a ground truth predicts the accuracy of that ground
truth's recipe, not of the network trained in full). A search records the source in
``front.json`` as ``accuracy_source``; `describe` says it in one line for `edgenas pareto`
and the report, `label` in a few words per front.csv row.

A source is plain JSON:

* ``{"kind": "trained", "recipe": {...}, "data": SPEC, "split": {...}}``
* ``{"kind": "estimated", "estimator": NAME, "accuracy": bool, "tau": float | None,
  "tau_of": str | None, "predicts": <a trained source> | None, "what": str | None}``
  (``accuracy`` false: the number is a score whose order alone means something, e.g. a
  parameter count)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

#: The front-record field a search that trains archs at several fidelities sets: the epochs
#: that arch's accuracy was trained for. Accuracies of different fidelities are not equals.
FIDELITY = "epochs"


def trained(recipe: Mapping[str, Any], data: str | None,
            split: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The source of accuracies trained with ``recipe`` on ``data``; ``split``: what a run
    recorded about its train/validation split (sizes, seed), else what the recipe fixes."""
    if split is None:
        seed = recipe.get("split_seed")
        split = {"val_fraction": recipe.get("val_fraction"),
                 "seed": recipe.get("seed") if seed is None else seed,
                 "limit": recipe.get("limit")}
    return {"kind": "trained", "recipe": dict(recipe), "data": data, "split": dict(split)}


#: What a weight-sharing supernet's number is.
SUPERNET = ("the validation accuracy of the subnet with weights inherited from the supernet "
            "(not trained on its own)")


def estimated(estimator: str, accuracy: bool, tau: float | None = None,
              tau_of: str | None = None, predicts: Mapping[str, Any] | None = None,
              what: str | None = None) -> dict[str, Any]:
    """The source of numbers from an estimator: ``accuracy`` whether they are accuracies at
    all, ``tau`` its measured Kendall tau (``tau_of``: against what), ``predicts`` the
    trained source whose accuracy it predicts, else ``what`` the number is, in words."""
    return {"kind": "estimated", "estimator": estimator, "accuracy": accuracy, "tau": tau,
            "tau_of": tau_of, "predicts": dict(predicts) if predicts else None, "what": what}


def of_estimator(estimator: Any) -> dict[str, Any]:
    """The source of an `edgenas.estimate.estimators.Estimator`'s scores."""
    # local: the estimators load torch, which `edgenas pareto` and the report never need
    from edgenas.estimate.estimators import PredictorEstimator, SupernetEstimator

    info = estimator.describe()
    if isinstance(estimator, PredictorEstimator):
        table = estimator.table
        return estimated(estimator.name, True, info.get("cv_kendall_tau"),
                         f"cross-validated on the {info.get('trained_archs')} trained archs "
                         f"of its ground truth",
                         trained(table.recipe, table.data.get("spec"), table.data.get("split")))
    if isinstance(estimator, SupernetEstimator):
        return estimated(estimator.name, True, what=SUPERNET)
    return estimated(estimator.name, False)


def recorded_split(run_dirs: Iterable[str | None]) -> dict[str, Any] | None:
    """The split the first readable trained run recorded (sizes, seed, hash), or None."""
    # local: the checkpoint module loads torch, which `edgenas pareto` never needs
    from edgenas.train.checkpoint import RESULT_FILE

    for run_dir in run_dirs:
        if not run_dir:
            continue
        try:
            split = json.loads((Path(run_dir) / RESULT_FILE).read_text(encoding="utf-8"))["split"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(split, dict):
            return split
    return None


def _short(spec: str | None) -> str:
    """``cifar10:DIR`` -> ``cifar10``; a folder or a plain name as it is."""
    spec = spec or "?"
    kind, colon, _ = spec.partition(":")
    return kind if colon and kind.isidentifier() else spec


def _count(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def _recipe_words(recipe: Mapping[str, Any], epochs: Any = None) -> str:
    """``2 epochs (batch 64, lr 0.05, warm-up 0.5 epochs)``."""
    epochs = recipe.get("epochs") if epochs is None else epochs
    details = []
    if "batch_size" in recipe:
        details.append(f"batch {recipe['batch_size']}")
    if "lr" in recipe:
        details.append(f"lr {recipe['lr']:g}")
    if recipe.get("warmup_epochs"):
        details.append(f"warm-up {recipe['warmup_epochs']:g} epochs")
    return f"{epochs} epoch{'' if epochs == 1 else 's'}" + (
        f" ({', '.join(details)})" if details else "")


def _data_words(data: str | None, split: Mapping[str, Any] | None) -> str:
    """``4,000 images of cifar10 (validated on 1,000 others)``."""
    name = _short(data) if data else "its data"
    split = split or {}
    if "train_size" in split and "val_size" in split:
        return (f"{_count(split['train_size'])} images of {name} (validated on "
                f"{_count(split['val_size'])} others)")
    share, limit = split.get("val_fraction"), split.get("limit")
    subset = f"{_count(limit)} images of {name}" if limit else name
    return (f"{subset} (validated on a seeded {100 * share:g} % held out from them)" if share
            else subset)


def _trained_words(source: Mapping[str, Any], epochs: Any = None) -> str:
    return (f"{_recipe_words(source.get('recipe') or {}, epochs)} of training on "
            f"{_data_words(source.get('data'), source.get('split'))}")


def fidelities(records: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The distinct fidelities (epochs) the front's records say they were trained at."""
    return sorted({r[FIDELITY] for r in records if r.get(FIDELITY) is not None})


def describe(source: Mapping[str, Any] | None,
             records: Sequence[Mapping[str, Any]] = ()) -> str:
    """One line: what the accuracy column of a front is (``records``: the front, whose
    fidelities are named when they differ)."""
    if not source:
        return ("accuracy: its source is not recorded (a front written by an older edgenas); "
                "do not take it for the networks' accuracy")
    if source["kind"] == "trained":
        levels = fidelities(records)
        if len(levels) <= 1:
            epochs = levels[0] if levels else None
            return ("accuracy: trained, the validation accuracy after "
                    f"{_trained_words(source, epochs)}")
        epochs = f"{', '.join(map(str, levels[:-1]))} or {levels[-1]}"
        return (f"accuracy: trained at different fidelities, NOT COMPARABLE ACROSS ROWS: the "
                f"validation accuracy after {_trained_words(source, epochs)}, the epochs "
                f"differing by arch (column {FIDELITY}); an arch trained for fewer scores "
                "lower than the full recipe would give it")
    tau = source.get("tau")
    ranks = (f"Kendall tau {tau:.2f}, {source.get('tau_of') or 'measured'}" if tau is not None
             else "its ranking not measured here")
    if not source.get("accuracy"):
        return (f"accuracy: the {source['estimator']} estimator's score, not an accuracy: only "
                f"its order means anything ({ranks})")
    predicts = source.get("predicts")
    what = (f"a prediction of the validation accuracy after {_trained_words(predicts)}"
            if predicts else source.get("what") or "an estimate of the validation accuracy")
    return (f"accuracy: estimated by {source['estimator']} ({ranks}): {what}; not the "
            "network's accuracy when trained in full")


def label(source: Mapping[str, Any] | None, record: Mapping[str, Any]) -> str:
    """A few words for one front record: where its accuracy number comes from."""
    if not source:
        return "not recorded"
    if source["kind"] == "trained":
        recipe = source.get("recipe") or {}
        epochs = record.get(FIDELITY, recipe.get("epochs"))
        return (f"trained {epochs} epoch{'' if epochs == 1 else 's'} on "
                f"{_short(source.get('data'))}")
    tau = source.get("tau")
    name = _short(source["estimator"])
    ranks = f" (tau {tau:.2f})" if tau is not None else ""
    if not source.get("accuracy"):
        return f"{name} score{ranks}, not an accuracy"
    predicts = source.get("predicts")
    if not predicts:
        return f"estimated by {name}{ranks}"
    epochs = (predicts.get("recipe") or {}).get("epochs")
    return (f"estimated by {name}{ranks}: predicts {epochs}-epoch training on "
            f"{_short(predicts.get('data'))}")

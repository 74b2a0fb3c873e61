"""What a front's accuracy column is.

Either a trained network's validation accuracy, under one recipe on one split, or an
estimator's number: which estimator, how well it ranks where that was measured, and what
it predicts (a predictor fitted on a ground truth predicts the accuracy of that ground
truth's recipe, not of the network trained in full). A search records the source in
``front.json`` as ``accuracy_source``; `describe` says it in one line for `edgenas pareto`
and the report, `label` in a few words per front.csv row.

Inside edgenas a source is a typed value, `Trained` or `Estimated`; in JSON it is a dict
told apart by ``kind`` (`to_dict`, `from_dict`):

* ``{"kind": "trained", "recipe": {...}, "data": SPEC, "split": {...}}``
* ``{"kind": "estimated", "estimator": NAME, "accuracy": bool, "tau": float | None,
  "tau_of": str | None, "predicts": <a trained source> | None, "what": str | None}``
  (``accuracy`` false: the number is a score whose order alone means something, e.g. a
  parameter count)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping, Sequence, Union

#: The front-record field a search that trains archs at several fidelities sets: the epochs
#: that arch's accuracy was trained for. Accuracies of different fidelities are not equals.
FIDELITY = "epochs"
#: `describe`'s line for a front that records no source.
NOT_RECORDED = ("accuracy: its source is not recorded (a front written by an older edgenas); "
                "do not take it for the networks' accuracy")


@dataclass(frozen=True)
class Trained:
    """Accuracies trained with ``recipe`` on ``data``; ``split``: what the runs recorded
    about their train/validation split (sizes, seed), else what the recipe fixes."""

    recipe: Mapping[str, Any]
    data: str | None
    split: Mapping[str, Any] = field(default_factory=dict)
    KIND: ClassVar[str] = "trained"

    def to_dict(self) -> dict[str, Any]:
        """The source in front.json."""
        return {"kind": self.KIND, "recipe": dict(self.recipe), "data": self.data,
                "split": dict(self.split)}

    def words(self, epochs: Any = None) -> str:
        """``2 epochs (batch 64, lr 0.05) of training on 4,000 images of cifar10 (...)``."""
        return (f"{_recipe_words(self.recipe, epochs)} of training on "
                f"{_data_words(self.data, self.split)}")

    def describe(self, records: Sequence[Mapping[str, Any]] = ()) -> str:
        """One line for the front (``records``), naming its fidelities where they differ."""
        levels = fidelities(records)
        if len(levels) <= 1:
            epochs = levels[0] if levels else None
            return f"accuracy: trained, the validation accuracy after {self.words(epochs)}"
        epochs = f"{', '.join(map(str, levels[:-1]))} or {levels[-1]}"
        return (f"accuracy: trained at different fidelities, NOT COMPARABLE ACROSS ROWS: the "
                f"validation accuracy after {self.words(epochs)}, the epochs "
                f"differing by arch (column {FIDELITY}); an arch trained for fewer scores "
                "lower than the full recipe would give it")

    def label(self, record: Mapping[str, Any]) -> str:
        """A few words for one front record."""
        epochs = record.get(FIDELITY, self.recipe.get("epochs"))
        return f"trained {epochs} epoch{'' if epochs == 1 else 's'} on {_short(self.data)}"


@dataclass(frozen=True)
class Estimated:
    """Numbers from an estimator: ``accuracy`` whether they are accuracies at all, ``tau``
    its measured Kendall tau (``tau_of``: against what), ``predicts`` the trained source
    whose accuracy it predicts, else ``what`` the number is, in words."""

    estimator: str
    accuracy: bool
    tau: float | None = None
    tau_of: str | None = None
    predicts: Trained | None = None
    what: str | None = None
    KIND: ClassVar[str] = "estimated"

    def to_dict(self) -> dict[str, Any]:
        """The source in front.json."""
        return {"kind": self.KIND, "estimator": self.estimator, "accuracy": self.accuracy,
                "tau": self.tau, "tau_of": self.tau_of,
                "predicts": self.predicts.to_dict() if self.predicts else None,
                "what": self.what}

    def _ranks(self) -> str:
        return (f"Kendall tau {self.tau:.2f}, {self.tau_of or 'measured'}"
                if self.tau is not None else "its ranking not measured here")

    def describe(self, records: Sequence[Mapping[str, Any]] = ()) -> str:
        """One line for the front."""
        if not self.accuracy:
            return (f"accuracy: the {self.estimator} estimator's score, not an accuracy: only "
                    f"its order means anything ({self._ranks()})")
        what = (f"a prediction of the validation accuracy after {self.predicts.words()}"
                if self.predicts else self.what or "an estimate of the validation accuracy")
        return (f"accuracy: estimated by {self.estimator} ({self._ranks()}): {what}; not the "
                "network's accuracy when trained in full")

    def label(self, record: Mapping[str, Any]) -> str:
        """A few words for one front record."""
        name = _short(self.estimator)
        ranks = f" (tau {self.tau:.2f})" if self.tau is not None else ""
        if not self.accuracy:
            return f"{name} score{ranks}, not an accuracy"
        if not self.predicts:
            return f"estimated by {name}{ranks}"
        epochs = self.predicts.recipe.get("epochs")
        return (f"estimated by {name}{ranks}: predicts {epochs}-epoch training on "
                f"{_short(self.predicts.data)}")


AccuracySource = Union[Trained, Estimated]


def from_dict(data: Mapping[str, Any] | None) -> AccuracySource | None:
    """The source a front.json records; None where it records none, or one of a kind this
    edgenas does not know (a newer one's): such a front is described as not recorded."""
    if not data:
        return None
    if data.get("kind") == Trained.KIND:
        return Trained(data.get("recipe") or {}, data.get("data"), data.get("split") or {})
    if data.get("kind") == Estimated.KIND:
        predicts = from_dict(data.get("predicts"))
        return Estimated(str(data.get("estimator")), bool(data.get("accuracy")),
                         data.get("tau"), data.get("tau_of"),
                         predicts if isinstance(predicts, Trained) else None, data.get("what"))
    return None


def _typed(source: AccuracySource | Mapping[str, Any] | None) -> AccuracySource | None:
    return source if isinstance(source, (Trained, Estimated)) else from_dict(source)


def trained(recipe: Mapping[str, Any], data: str | None,
            split: Mapping[str, Any] | None = None) -> Trained:
    """The source of accuracies trained with ``recipe`` on ``data``; ``split``: what a run
    recorded about its train/validation split (sizes, seed), else what the recipe fixes."""
    if split is None:
        seed = recipe.get("split_seed")
        split = {"val_fraction": recipe.get("val_fraction"),
                 "seed": recipe.get("seed") if seed is None else seed,
                 "limit": recipe.get("limit")}
    return Trained(dict(recipe), data, dict(split))


#: What a weight-sharing supernet's number is.
SUPERNET = ("the validation accuracy of the subnet with weights inherited from the supernet "
            "(not trained on its own)")


def estimated(estimator: str, accuracy: bool, tau: float | None = None,
              tau_of: str | None = None, predicts: Trained | None = None,
              what: str | None = None) -> Estimated:
    """The source of numbers from an estimator (`Estimated`)."""
    return Estimated(estimator, accuracy, tau, tau_of, predicts, what)


def of_estimator(estimator: Any) -> Estimated:
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


def fidelities(records: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The distinct fidelities (epochs) the front's records say they were trained at."""
    return sorted({r[FIDELITY] for r in records if r.get(FIDELITY) is not None})


def describe(source: AccuracySource | Mapping[str, Any] | None,
             records: Sequence[Mapping[str, Any]] = ()) -> str:
    """One line: what the accuracy column of a front is (``records``: the front, whose
    fidelities are named when they differ); ``source`` typed or as front.json holds it."""
    typed = _typed(source)
    return NOT_RECORDED if typed is None else typed.describe(records)


def label(source: AccuracySource | Mapping[str, Any] | None, record: Mapping[str, Any]) -> str:
    """A few words for one front record: where its accuracy number comes from."""
    typed = _typed(source)
    return "not recorded" if typed is None else typed.label(record)

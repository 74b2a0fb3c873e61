"""What a trained search queues for training at once: a round's proposal, or a promotion
between rungs, as typed values.

The leader stores each batch in the study before it queues any of its archs
(`edgenas.search.work_queue`), so a leader killed at any moment goes on with the same
choice, and a worker can say where the arch it trains came from. The study keeps them as
JSON user attributes (``proposal_N``, ``promotion_N``) in the keys studies have always had,
so a study started by an earlier edgenas resumes; ``to_dict`` / ``from_dict`` are the only
places those keys are written or read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from edgenas.errors import EdgenasError


def _object(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping) or not isinstance(data.get("archs"), list):
        raise EdgenasError(f"{where}: not a batch of archs (a study of another edgenas?); "
                           "start the search in a new --out folder")
    return data


@dataclass(frozen=True)
class Candidate:
    """One arch of a batch (its JSON, the study's key for it) with the accuracy the
    surrogate predicted for it (None: proposed without a surrogate). In a promotion it also
    keeps the round it was proposed in and the score that promoted it."""

    arch: str
    predicted: float | None = None
    round: int | None = None
    score: float | None = None


@dataclass(frozen=True)
class Proposal:
    """A round's archs, chosen by the strategy from the surrogate's inner search (or, in
    round 0 and for strategies without a surrogate, sampled)."""

    round: int
    surrogate: dict[str, Any] | None
    archs: tuple[Candidate, ...]

    def keys(self) -> list[str]:
        return [candidate.arch for candidate in self.archs]

    def origin(self, candidate: Candidate) -> dict[str, Any]:
        """What a queued trial of ``candidate`` records of where it came from."""
        return {"round": self.round, "predicted_accuracy": candidate.predicted}

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.round, "surrogate": self.surrogate,
                "archs": [{"arch": c.arch, "predicted": c.predicted} for c in self.archs]}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "Proposal":
        data = _object(data, where)
        return cls(data.get("round"), data.get("surrogate"),
                   tuple(Candidate(entry["arch"], entry.get("predicted"))
                         for entry in data["archs"]))


@dataclass(frozen=True)
class Promotion:
    """The archs that go on from one rung of successive halving to the next."""

    promotion: int
    from_epochs: int | None
    epochs: int | None
    archs: tuple[Candidate, ...]

    def keys(self) -> list[str]:
        return [candidate.arch for candidate in self.archs]

    def origin(self, candidate: Candidate) -> dict[str, Any]:
        """A promoted arch keeps its round and prediction on the front."""
        return {"promotion": self.promotion, "round": candidate.round,
                "predicted_accuracy": candidate.predicted}

    def to_dict(self) -> dict[str, Any]:
        return {"promotion": self.promotion, "from_epochs": self.from_epochs,
                "epochs": self.epochs,
                "archs": [{"arch": c.arch, "round": c.round, "predicted": c.predicted,
                           "score": c.score} for c in self.archs]}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "Promotion":
        data = _object(data, where)
        return cls(data.get("promotion"), data.get("from_epochs"), data.get("epochs"),
                   tuple(Candidate(entry["arch"], entry.get("predicted"), entry.get("round"),
                                   entry.get("score"))
                         for entry in data["archs"]))


#: Either kind of batch; the queue treats them alike (`keys`, `origin`).
Batch = Proposal | Promotion

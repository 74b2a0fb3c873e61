"""A study as work that several processes share: who runs which trial, and what is queued.

Both searches keep their state in one Optuna study that any number of processes join
(`edgenas.search.study_store` opens it). `WorkQueue` is everything they do with it that is
about processes rather than archs, so that the algorithms never touch its attributes:

* claiming a trial as it starts (a heartbeat and the ``alive`` mark; a trained search's
  trial also says who took it), and counting the trials that may still complete, orphans
  excluded, against a budget;
* the trained search's records: each round's proposal (``proposal_N``), each promotion
  between rungs (``promotion_N``) and whether the leader has ``finished``; each is written
  before any of its archs is queued, so a leader killed at any moment repeats nothing;
* the queue of trainings: enqueuing a batch's missing archs, reading back what is pending
  and what is trained to which fidelity, and working the queue (failing and requeuing the
  trials of dead workers as it goes);
* waiting out a lost database connection, for either search (`WorkQueue.keep_trying`).

The names of the attributes are stored formats: studies written before this module must
still resume, so none of them may change.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any, Callable, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from edgenas.search.accuracy_source import FIDELITY
from edgenas.search.batch import Batch, Promotion, Proposal
from edgenas.search.study_store import (Reconnect, live_trials_before, mark_alive,
                                        recover_dead_workers)
from edgenas.space.arch import Arch
from edgenas.space.search_space import SearchSpace

log = logging.getLogger(__name__)

#: The user attribute a process sets on a queued trial as it starts training it.
TAKEN = "taken_by"
#: The study attribute the leader of a trained search sets once every arch is trained.
FINISHED = "finished"

#: A kind of stored batch (`edgenas.search.batch`).
B = TypeVar("B", Proposal, Promotion)
#: An objective Optuna calls per trial.
Objective = Callable[[optuna.Trial], Any]
#: A callback Optuna calls after each finished trial.
Callback = Callable[[optuna.Study, FrozenTrial], None]


def fidelity_of(trial: FrozenTrial) -> int | None:
    """The epochs a trial's arch was trained for, when the search has rungs; else None."""
    return trial.user_attrs.get(FIDELITY)


def completed(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials that evaluated an arch (repeats included), by trial number."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted((t for t in trials if "metrics" in t.user_attrs), key=lambda t: t.number)


def _stored(attrs: dict[str, Any], key: str, kind: type[B]) -> B | None:
    """The batch stored under study attribute ``key``, read as ``kind``; None if none."""
    stored = attrs.get(key)
    return None if stored is None else kind.from_dict(stored, f"study attribute {key}")


class WorkQueue:
    """One study seen as shared work (see the module's docstring); cheap to make, holds
    nothing but the study, so every caller may wrap the study it has."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study

    # -- claiming ------------------------------------------------------------------------

    def begin(self, trial: optuna.Trial) -> None:
        """Mark ``trial`` as run by this live process (`study_store.mark_alive`): from now
        on a dead process's trial is failed and retried rather than counted for ever."""
        mark_alive(trial)

    def claim(self, trial: optuna.Trial) -> None:
        """Begin a queued training, and say which host and process took it (for people
        reading the study)."""
        self.begin(trial)
        trial.set_user_attr(TAKEN, f"{socket.gethostname()}:{os.getpid()}")

    def within_budget(self, trial: optuna.Trial, budget: int) -> bool:
        """Whether ``trial`` is needed: fewer than ``budget`` earlier trials have completed
        or may still complete (those of dead processes will not)."""
        return live_trials_before(self.study, trial.number) < budget

    # -- the trained search's records ------------------------------------------------------

    def proposals(self) -> list[Proposal]:
        """Every round's proposal so far, in round order."""
        attrs = self.study.user_attrs  # one read of the storage, not one per round
        out: list[Proposal] = []
        while (proposal := _stored(attrs, f"proposal_{len(out)}", Proposal)) is not None:
            out.append(proposal)
        return out

    def record_proposal(self, proposal: Proposal) -> None:
        """Store a round's proposal before any of its archs is queued."""
        self.study.set_user_attr(f"proposal_{proposal.round}", proposal.to_dict())

    def promotion(self, rung: int) -> Promotion | None:
        """The archs chosen to go on from ``rung``, if chosen already."""
        return _stored(self.study.user_attrs, f"promotion_{rung}", Promotion)

    def record_promotion(self, promotion: Promotion) -> None:
        """Store a promotion before any of its archs is queued."""
        self.study.set_user_attr(f"promotion_{promotion.promotion}", promotion.to_dict())

    def batch(self, round_: int | None, promotion: int | None) -> Batch | None:
        """The proposal (or, given ``promotion``, the promotion) a queued arch came from."""
        if promotion is not None:
            return self.promotion(promotion)
        return None if round_ is None else _stored(self.study.user_attrs, f"proposal_{round_}",
                                                   Proposal)

    @property
    def finished(self) -> bool:
        """Whether the leader has said the search is done (workers then stop)."""
        return bool(self.study.user_attrs.get(FINISHED))

    def set_finished(self, finished: bool) -> None:
        self.study.set_user_attr(FINISHED, finished)

    # -- what is trained and what is pending ----------------------------------------------

    def trials_at(self, epochs: int | None) -> list[FrozenTrial]:
        """One completed trial per arch trained to ``epochs`` (None: a search without
        rungs, where that is every arch), in proposal order."""
        return self.per_arch(completed(self.study), epochs)

    def trained_trials(self) -> list[FrozenTrial]:
        """One completed trial per trained arch, at the first fidelity it was scored at (the
        first such trial), in the order the archs were proposed: a candidate retried after a
        crash gets a later trial number, and the surrogate fitted on this archive must not
        depend on that (a killed and resumed search ends with the archs an uninterrupted
        one trains). With rungs these are the scores every arch has, all at one fidelity."""
        done = completed(self.study)
        # every arch is scored at the first rung before any goes on, so the lowest fidelity
        # on record is every arch's first
        first = min((f for f in map(fidelity_of, done) if f is not None), default=None)
        return self.per_arch(done, first)

    def per_arch(self, done: list[FrozenTrial], epochs: int | None) -> list[FrozenTrial]:
        """Of the completed trials ``done``, the first per arch trained to ``epochs``, in the
        order the archs were proposed."""
        unique: dict[str, FrozenTrial] = {}
        for trial in done:
            if fidelity_of(trial) == epochs:
                unique.setdefault(trial.user_attrs["arch"], trial)
        order = {key: (r, i) for r, proposal in enumerate(self.proposals())
                 for i, key in enumerate(proposal.keys())}
        unproposed = (len(order) + 1, 0)  # archs of older studies: after, by trial number
        return sorted(unique.values(),
                      key=lambda t: (order.get(t.user_attrs["arch"], unproposed), t.number))

    def done(self, epochs: int | None) -> set[str]:
        """The archs trained to ``epochs``."""
        return {t.user_attrs["arch"] for t in self.trials_at(epochs)}

    def same_training(self, number: int, key: str, epochs: int | None) -> FrozenTrial | None:
        """The first other trial of arch ``key`` at fidelity ``epochs`` that trial ``number``
        must not train again: one that completed (its result is reused), or an earlier one
        running now (another process trains the arch, into the same folder). None: train it."""
        for other in self.study.get_trials(deepcopy=False):
            if other.number == number or other.user_attrs.get("arch") != key \
                    or fidelity_of(other) != epochs:
                continue
            if other.state == TrialState.COMPLETE or (other.state == TrialState.RUNNING
                                                       and other.number < number):
                return other
        return None

    def pending(self) -> set[tuple[str, int | None]]:
        """(arch, fidelity) of the trainings waiting in the queue or running now."""
        keys = set()
        for trial in self.study.get_trials(deepcopy=False,
                                           states=(TrialState.WAITING, TrialState.RUNNING)):
            if "arch" in trial.user_attrs:
                keys.add((trial.user_attrs["arch"], fidelity_of(trial)))
        return keys

    def pending_archs(self) -> set[str]:
        """Archs waiting in the queue or being trained now, at any fidelity."""
        return {key for key, _ in self.pending()}

    def enqueue_missing(self, space: SearchSpace, batch: Batch,
                        epochs: int | None) -> list[str]:
        """Enqueue the archs of ``batch`` (a round's proposal, or a promotion) not yet
        trained to ``epochs`` nor queued for it; returns those not trained yet. A trial
        carries the arch, where it comes from (its round or promotion) and, with rungs, its
        fidelity."""
        pending, trained = self.pending(), self.done(epochs)
        missing = []
        for candidate in batch.archs:
            key = candidate.arch
            if key in trained:
                continue
            missing.append(key)
            if (key, epochs) not in pending:
                attrs: dict[str, Any] = {"arch": key, **batch.origin(candidate)}
                if epochs is not None:
                    attrs[FIDELITY] = epochs
                self.study.enqueue_trial(space.encode(Arch.from_json(key)), user_attrs=attrs)
        return missing

    # -- working ----------------------------------------------------------------------------

    def work(self, objective: Objective, done: Callable[[], bool], callbacks: list[Callback],
             poll_s: float) -> None:
        """Run queued trials until ``done()``; while others run the rest, wait for them
        (and fail the trials of workers that stopped beating, which queues them again)."""
        steps = 0

        def step() -> bool:
            nonlocal steps
            if done():
                return True
            self._work_one(objective, callbacks, poll_s)
            steps += 1  # a step that went through: a later loss waits anew
            return False

        self.keep_trying(step, lambda fallback: steps)

    def _work_one(self, objective: Objective, callbacks: list[Callback], poll_s: float) -> None:
        recover_dead_workers(self.study)
        waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not waiting:
            time.sleep(poll_s)
            return
        try:
            self.study.optimize(objective, n_trials=1, gc_after_trial=False,
                                callbacks=callbacks)
        except ValueError as err:  # another process finished this trial first
            if "Cannot tell" not in str(err):
                raise
            log.warning("%s; another process reported it first (use PostgreSQL, not "
                        "SQLite, for several processes)", err)

    def keep_trying(self, step: Callable[[], bool],
                    progress: Callable[[int | None], int]) -> None:
        """Call ``step()`` until it returns True, waiting out a lost database connection
        (`study_store.Reconnect`; any other error is raised). ``progress(fallback)`` counts
        the work done so far (``fallback`` while the storage cannot say): a loss after
        progress since the last one waits anew, so a storage that comes back only to fail
        again at once is given up on in the end."""
        watch, at_loss = Reconnect(), -1
        while True:
            try:
                if progress(None) > at_loss:
                    watch.ok()
                if step():
                    return
            except Exception as err:  # noqa: BLE001 - only a lost connection is retried
                if watch.since is None:
                    at_loss = progress(at_loss)
                watch.lost(err)


def trials_at(study: optuna.Study, epochs: int | None) -> list[FrozenTrial]:
    """`WorkQueue.trials_at` of a study."""
    return WorkQueue(study).trials_at(epochs)


def trained_trials(study: optuna.Study) -> list[FrozenTrial]:
    """`WorkQueue.trained_trials` of a study: the archive a surrogate is fitted on."""
    return WorkQueue(study).trained_trials()

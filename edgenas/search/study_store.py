"""Where searches keep their state: an Optuna RDB study that any number of workers share.

Both searches (the Optuna search of `engine` and the trained search of `trained_search`)
open their study here. The primitives about processes rather than archs live here too, and
the searches reach them through `work_queue.WorkQueue`, never directly:

* a study's identity, the settings every worker on it must agree on, and the refusal of
  a study started with other ones (`open_study`);
* heartbeats, so that a dead worker's trial is failed and retried (`open_storage`,
  `mark_alive`), and orphans, the trials of workers killed before their first beat, which
  Optuna never fails (`orphaned`, `recover_dead_workers`);
* a lost database connection waited out (`Reconnect`).
"""

from __future__ import annotations

import datetime
import inspect
import json
import logging
import time
import warnings
from typing import Any, Sequence

import optuna
from optuna.storages import RDBStorage, RetryFailedTrialCallback, fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from edgenas.search.objectives import SearchError

log = logging.getLogger(__name__)

#: The study attribute that holds a study's identity (see `open_study`).
IDENTITY = "edgenas"


def open_storage(url: str, heartbeat_s: int = 10) -> RDBStorage:
    """An RDB storage with heartbeats, so a dead worker's trial is failed and retried."""
    parameters = inspect.signature(RDBStorage.__init__).parameters
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                if "heartbeat_stale_trial_callback" in parameters:  # Optuna >= 4.9
                    from optuna.storages import RetryHeartbeatStaleTrialCallback

                    retry = {"heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(3)}
                else:
                    retry = {"failed_trial_callback": RetryFailedTrialCallback(max_retry=3)}
                # a pooled connection to a restarted server is dead: test it on checkout
                engine = {} if url.startswith("sqlite") else {"engine_kwargs": {"pool_pre_ping": True}}
                return RDBStorage(url, heartbeat_interval=heartbeat_s,
                                  grace_period=3 * heartbeat_s, **retry, **engine)
        except Exception as err:  # sqlalchemy raises many kinds; the URL is what the user can fix
            # workers started together race to create the schema on an empty database;
            # the loser finds it created a moment later
            if attempt == 4 or "already exists" not in str(err):
                raise SearchError(f"cannot open study storage {url!r}: {err}") from None
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


# -- identity: what the workers of one study agree on -------------------------------------------

def identity(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as the storage returns them (lists, not tuples), so they compare equal
    to the recorded ones."""
    return json.loads(json.dumps(settings))


def open_study(study_name: str, storage: str | RDBStorage, sampler: optuna.samplers.BaseSampler,
               directions: Sequence[str], mine: dict[str, Any],
               metric_names: Sequence[str], *, join_unrecorded: bool = False) -> optuna.Study:
    """Create a study recording ``mine`` (an `identity`), or load it to resume or to add a
    worker; refuses a study started with other settings. A study that holds trials but no
    settings is joined as it is with ``join_unrecorded`` (an Optuna search from before
    settings were recorded), else refused (it is a study of something else)."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    except KeyError:
        study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                    directions=list(directions), load_if_exists=True)
        study.set_user_attr(IDENTITY, mine)
        name_metrics(study, metric_names)
        return study
    recorded = identity_on_record(study, mine)
    if recorded is None and not join_unrecorded:
        raise SearchError(f"study {study_name!r} holds trials but no edgenas settings: it is "
                          f"not a study of this search; {_ELSEWHERE}")
    if recorded is not None and recorded != mine:
        raise SearchError(f"study {study_name!r} was started with other settings "
                          f"({_diff(recorded, mine)}); {_ELSEWHERE}")
    name_metrics(study, metric_names)  # a study from before the names were recorded
    return study


_ELSEWHERE = "use another --out, --storage or --study-name"


def identity_on_record(study: optuna.Study, mine: dict[str, Any]) -> dict[str, Any] | None:
    """The settings a study was started with. Creating a study and recording its settings
    are two writes: a worker that joins between them, or a study whose creator was killed
    between them, has none yet; while it has no trial either, ours are recorded, the same
    as its creator's would have been had they agreed."""
    recorded = study.user_attrs.get(IDENTITY)
    if recorded is None and not study.get_trials(deepcopy=False):
        study.set_user_attr(IDENTITY, mine)
        recorded = study.user_attrs.get(IDENTITY)  # read back: another may have won
    return recorded


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys)


def name_metrics(study: optuna.Study, names: Sequence[str]) -> None:
    """Name the study's objective values (``accuracy``, ``latency``, ...), so that
    optuna-dashboard and Optuna's plots label them by name instead of 0, 1, 2."""
    if study.metric_names == list(names) or len(study.directions) != len(names):
        return  # named already, or a study of other objectives (refused elsewhere)
    with warnings.catch_warnings():  # experimental since Optuna 3.2, still so in 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(names))


def wait_for_study(study_name: str, storage: RDBStorage, wait_s: float, poll_s: float) -> None:
    """Return once the study exists: a worker may start before the leader creates it."""
    started = time.monotonic()
    while True:
        try:
            optuna.load_study(study_name=study_name, storage=storage)
            return
        except KeyError:
            if time.monotonic() - started > wait_s:
                raise SearchError(f"no study {study_name!r} appeared in {wait_s:.0f} s;"
                                  f" start the leader (the same command without --worker)")
            time.sleep(poll_s)


# -- heartbeats and orphans ----------------------------------------------------------------------

#: A live trial's objective marks it within moments of the trial being started; one still
#: unmarked after this long belongs to a worker killed in between.
ORPHAN_S = 30.0

#: The user attribute a trial's own process sets as its objective starts. Its value is the
#: trial's number: Optuna's retry callback copies a failed trial's user attributes into the
#: retry, and a mark that could be inherited would vouch for a retry nobody runs.
ALIVE = "alive"


def mark_alive(trial: optuna.Trial) -> None:
    """Beat once, then mark the trial as run by a live process.

    The beat comes first so that a marked trial always has one: Optuna then fails it as
    stale if its process dies, and `orphaned` covers the unmarked rest. Optuna's own first
    beat comes from a thread that races the objective, so a worker killed early could leave
    a marked trial with no beat, which nothing would ever fail."""
    storage = trial.storage
    if getattr(storage, "get_heartbeat_interval", lambda: None)() is not None:
        storage.record_heartbeat(trial._trial_id)  # noqa: SLF001 - Optuna's own key for it
    trial.set_user_attr(ALIVE, trial.number)


def orphaned(trial: FrozenTrial, now: datetime.datetime) -> bool:
    """A running trial whose process died before `mark_alive`. Optuna's heartbeat fails only
    trials that beat once, and a worker killed between starting a trial and its first beat
    leaves it running for ever. Counted as alive, such a trial would hold a search one trial
    short of its budget while every worker prunes: a fresh trial, and equally a retried
    one, which inherits its failed original's attributes (hence `ALIVE` holds a number)."""
    return (trial.state == TrialState.RUNNING and trial.user_attrs.get(ALIVE) != trial.number
            and trial.datetime_start is not None
            and (now - trial.datetime_start).total_seconds() > ORPHAN_S)


def live_trials_before(study: optuna.Study, number: int) -> int:
    """Trials numbered below ``number`` that have completed or may still complete
    (orphans will not)."""
    alive = (TrialState.COMPLETE, TrialState.RUNNING)
    now = datetime.datetime.now()
    return sum(1 for t in study.get_trials(deepcopy=False, states=alive)
               if t.number < number and not orphaned(t, now))


def recover_dead_workers(study: optuna.Study) -> None:
    """Fail the trials of workers that stopped beating (their retry is queued by the
    storage's callback), and queue again those of workers killed before their first beat,
    which Optuna's stale-trial check never fails. Two processes may both queue one; the
    objective must run a queued arch once."""
    with warnings.catch_warnings():  # experimental since Optuna 2.9, still there in 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fail_stale_trials(study)  # a no-op without heartbeats
    now = datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not orphaned(trial, now) or "arch" not in trial.user_attrs:
            continue
        log.warning("trial %d was taken by a worker that died before starting it; queued "
                    "again", trial.number)
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        study.enqueue_trial(trial.system_attrs.get("fixed_params", {}),
                            user_attrs=dict(trial.user_attrs))


# -- reconnects ----------------------------------------------------------------------------------

#: How long a worker waits for its database to come back (a restart, a failover).
RECONNECT_S = 120


class Reconnect:
    """Waits out a lost database connection (a restart, a failover) for up to
    `RECONNECT_S` without progress, then gives up with a clear error; any other error is
    raised as it is."""

    def __init__(self) -> None:
        self.since: float | None = None

    def ok(self) -> None:
        """Work went through: a later loss waits anew."""
        self.since = None

    def lost(self, err: Exception) -> None:
        """Sleep a little and return (the caller retries), or raise."""
        if _taken_over(err) and not _connection_lost(err):
            log.warning("this worker's trial was failed as stale by another while it was cut "
                        "off; going on with a new trial")
        elif not _connection_lost(err):
            raise err
        if self.since is None:
            self.since = time.monotonic()
        waited = time.monotonic() - self.since
        if waited > RECONNECT_S:
            raise SearchError(f"the study storage has been unreachable for {waited:.0f} s "
                              f"({_root(err)}); every finished trial is stored: re-run the "
                              "same command once the database is back") from None
        log.warning("lost the study storage (%s); retrying (%.0f s of %d)", _root(err),
                    waited, RECONNECT_S)
        time.sleep(min(5.0, 0.5 + waited / 4))


def completed_count(study: optuna.Study, fallback: int | None = None) -> int:
    """Completed trials; ``fallback`` (when given) while the storage cannot say."""
    try:
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    except Exception:  # noqa: BLE001 - the storage is down; the caller retries later
        if fallback is None:
            raise
        return fallback


def _root(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _taken_over(err: BaseException) -> bool:
    """Our running trial was finished by another process: while this worker was cut off
    from the database (a restart), its heartbeats stopped and a peer failed the trial as
    stale, so writing to it or telling it now fails (Optuna's "Should not reach" assertion
    over "Cannot tell a FAIL trial"). The trial is retried by the peer's stale-trial
    callback; this worker goes on with a new one."""
    chain: BaseException | None = err
    while chain is not None:
        if isinstance(chain, optuna.exceptions.UpdateFinishedTrialError):
            return True
        if isinstance(chain, ValueError) and str(chain).startswith("Cannot tell a "):
            return True
        chain = chain.__cause__ or chain.__context__
    return False


def _connection_lost(err: BaseException) -> bool:
    """A dropped or refused database connection, as opposed to a bad query or bad data."""
    import sqlalchemy.exc

    chain: BaseException | None = err
    while chain is not None:
        if isinstance(chain, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
        if isinstance(chain, sqlalchemy.exc.DBAPIError) and chain.connection_invalidated:
            return True
        chain = chain.__cause__ or chain.__context__
    return False

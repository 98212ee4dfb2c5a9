"""A sweep's controller step, and the two hooks that tie its trials to it: a finished trial
asks for the next step, and each epoch of a trial asks the sweep's pruner whether to go on.

Nothing here waits or polls. `sweep_step(sweep_id)` is a short task, sent when the API stores a
sweep and again whenever one of its trials ends: it locks the sweep row, rebuilds the Optuna study
from the trial rows (core/jobs/sweep_study.py), asks for new trials while fewer than
`max_concurrent` are queued or running, stores each as an ordinary train (or finetune) job with
`parent_id` = the sweep, and enqueues it. Once every trial has ended it writes the sweep's result,
naming the best trial."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState, create_trial
from sqlalchemy.orm import Session

from core.db import Database
from core.jobs import queries, sweep_queries
from core.jobs.kinds import get_kind, load_stored
from core.jobs.kinds.sweep import trial_spec as make_trial
from core.jobs.quota import Quota, room
from core.jobs.schemas import FINISHED_STATUSES
from core.jobs.sweep_schemas import SweepSettings
from core.jobs.sweep_study import rebuild_study, rung_attrs
from core.queue import queue_for
from core.tables import ACTIVE_STATUSES, Job, utcnow
from worker.sweeps import SweepQueue, TrialPruned, ask_values
from worker.training_state import EpochReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dispatch:
    """A trial stored in the step's transaction, to enqueue once it has committed."""

    job_id: str
    queue: str
    time_limit_s: float | None
    priority: str


def sweep_step(
    db: Database, job_queue: SweepQueue, sweep_id: str, *, quota: Quota | None = None
) -> list[str]:
    """Advance the sweep: start trials while fewer than `max_concurrent` are queued or running,
    fewer than `trials` exist and its owner has room under `quota` (the rest wait for a later
    step), or conclude it once all have ended. Idempotent: a step with nothing to do changes
    nothing. Returns the ids of the trials it started."""
    with db.transaction() as session:
        sweep = queries.lock_job(session, job_id=sweep_id)
        if get_kind(sweep.kind).runs_on_a_worker or sweep.status in FINISHED_STATUSES:
            return []
        dispatches = _advance(session, sweep, quota or Quota())
    sent = []
    for dispatch in dispatches:  # after the commit: the worker that takes it finds the row
        try:
            job_queue.enqueue(
                dispatch.job_id,
                queue=dispatch.queue,
                time_limit_s=dispatch.time_limit_s,
                priority=dispatch.priority,
            )
        except Exception as error:  # noqa: BLE001  (the trial fails; the sweep goes on)
            log.error("sweep %s: could not enqueue trial %s: %s", sweep_id, dispatch.job_id, error)
            _unqueued(db, sweep_id, dispatch.job_id, f"broker unreachable: {error}")
            continue
        sent.append(dispatch.job_id)
    return sent


def _unqueued(db: Database, sweep_id: str, job_id: str, reason: str) -> None:
    """A trial the broker refused fails; with no trial left to end (and so to send the next
    step), the sweep fails too rather than wait for ever."""
    with db.transaction() as session:
        sweep = queries.lock_job(session, job_id=sweep_id)
        queries.finish_job(
            session, job=queries.get_job(session, job_id=job_id), status="failed", error=reason
        )
        trials = sweep_queries.list_trials(session, sweep_id=sweep_id)
        if sweep.status not in FINISHED_STATUSES and not any(
            trial.status in ACTIVE_STATUSES for trial in trials
        ):
            queries.finish_job(session, job=sweep, status="failed", error=reason)


def _advance(session: Session, sweep: Job, quota: Quota) -> list[Dispatch]:
    """The step's work under the sweep's lock: new trials, or the sweep's conclusion."""
    spec = load_stored(sweep.params)
    settings = spec.sweep
    assert settings is not None  # a sweep row always holds its settings
    trials = list(sweep_queries.list_trials(session, sweep_id=sweep.id))
    series = sweep_queries.metric_series(
        session, job_ids=[t.id for t in trials], key=settings.metric_key
    )
    active = sum(1 for trial in trials if trial.status in ACTIVE_STATUSES)
    wanted = min(settings.max_concurrent - active, settings.total_trials - len(trials))
    free = room(session, owner=sweep.owner, quota=quota) if wanted > 0 else None
    if free is not None and free < wanted:  # the rest wait: the reaper steps the sweep again
        log.info("sweep %s: %d trial(s) wait for room in its quota", sweep.id, wanted - free)
        wanted = free
    dispatches: list[Dispatch] = []
    if wanted > 0:
        study = rebuild_study(settings, trials, series)
        for _ in range(wanted):
            values = ask_values(study, settings)
            try:
                trial_spec = make_trial(spec, values)
            except ValueError as error:  # a combination no single value showed at submission
                _fail(session, sweep, trials, series, settings, f"{error}")
                return []
            queue = queue_for(wants_gpu=trial_spec.wants_gpu)
            trial = queries.create_job(
                session,
                spec=trial_spec,
                queue=queue,
                owner=sweep.owner,
                parent_id=sweep.id,
            )
            trials.append(trial)
            dispatches.append(
                Dispatch(trial.id, queue, trial_spec.time_limit_s, trial_spec.priority)
            )
            log.info("sweep %s: trial %d is job %s: %s", sweep.id, len(trials), trial.id, values)
    if dispatches and sweep.status == "queued":
        sweep.status, sweep.started_at = "running", utcnow()
    sweep.epoch = sum(trial.epoch for trial in trials)
    made_all = len(trials) >= settings.total_trials
    if made_all and all(trial.status in FINISHED_STATUSES for trial in trials):
        _conclude(session, sweep, trials, series, settings)
    return dispatches


def _conclude(
    session: Session,
    sweep: Job,
    trials: list[Job],
    series: dict[str, sweep_queries.Series],
    settings: SweepSettings,
) -> None:
    result = sweep_queries.sweep_result(trials, series, settings)
    if result["best_trial"] is None:
        error = f"none of its {len(trials)} trials succeeded with a {settings.metric}"
        queries.finish_job(session, job=sweep, status="failed", result=result, error=error)
        log.warning("sweep %s failed: %s", sweep.id, error)
        return
    queries.finish_job(session, job=sweep, status="succeeded", result=result)
    log.info(
        "sweep %s succeeded: best trial %s, %s=%.4g",
        sweep.id,
        result["best_trial"],
        settings.metric,
        result["best_value"],
    )


def _fail(
    session: Session,
    sweep: Job,
    trials: list[Job],
    series: dict[str, sweep_queries.Series],
    settings: SweepSettings,
    reason: str,
) -> None:
    """The sweep cannot go on: its active trials are cancelled, and it fails saying why."""
    for trial in trials:
        if trial.status in ACTIVE_STATUSES:
            queries.request_cancel(session, job=trial)
    result = sweep_queries.sweep_result(trials, series, settings)
    queries.finish_job(session, job=sweep, status="failed", result=result, error=reason)
    log.warning("sweep %s failed: %s", sweep.id, reason)


def notify_sweep(db: Database, job_queue: SweepQueue, job_id: str) -> None:
    """A job's run is over: if it is a sweep's trial and has ended, ask for the next step."""
    try:
        with db.sessions() as session:
            job = queries.get_job(session, job_id=job_id)
            if job.parent_id is None or job.status not in FINISHED_STATUSES:
                return
            sweep = queries.get_job(session, job_id=job.parent_id)
            sweep_id, queue = sweep.id, sweep.queue
        job_queue.enqueue_sweep_step(sweep_id, queue=queue)
    except Exception as error:  # noqa: BLE001  (the trial's own outcome is already stored)
        log.error("job %s: could not ask its sweep for the next step: %s", job_id, error)


EpochHook = Callable[[EpochReport], None]


def pruning(db: Database, job_id: str, on_epoch: EpochHook) -> EpochHook:
    """`on_epoch`, followed (for a trial of a sweep that prunes) by asking the pruner after
    each epoch; TrialPruned stops the training there."""
    with db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        if job.parent_id is None:
            return on_epoch
        sweep = queries.get_job(session, job_id=job.parent_id)
        settings = sweep_queries.sweep_settings(sweep)
        sweep_id = sweep.id
    if settings.prune == "none":
        return on_epoch

    def on_epoch_then_prune(report: EpochReport) -> None:
        on_epoch(report)  # recorded first: the siblings' pruning checks see this epoch too
        value = report.metrics.get(settings.metric_key)
        if value is None or report.progress is not None:
            return
        if should_prune(
            db, settings, sweep_id=sweep_id, job_id=job_id, epoch=report.epoch, value=value
        ):
            raise TrialPruned(epoch=report.epoch, value=value, rule=settings.prune)

    return on_epoch_then_prune


def should_prune(
    db: Database,
    settings: SweepSettings,
    *,
    sweep_id: str,
    job_id: str,
    epoch: int,
    value: float,
) -> bool:
    """Optuna's verdict on trial `job_id` after `epoch`, given its siblings' records."""
    with db.sessions() as session:
        trials = sweep_queries.list_trials(session, sweep_id=sweep_id)
        series = sweep_queries.metric_series(
            session, job_ids=[t.id for t in trials], key=settings.metric_key
        )
    siblings = [trial for trial in trials if trial.id != job_id]
    study = rebuild_study(settings, siblings, series, with_params=False)
    own = {step: v for step, v in series.get(job_id, {}).items() if step < epoch}
    attrs = rung_attrs(own, settings) if settings.prune == "asha" else {}
    study.add_trial(
        create_trial(state=TrialState.RUNNING, intermediate_values=own, system_attrs=attrs)
    )
    trial = optuna.trial.Trial(study, study.get_trials(deepcopy=False)[-1]._trial_id)
    trial.report(value, epoch)
    return trial.should_prune()


def record_pruned(db: Database, job_id: str, pruned: TrialPruned) -> None:
    """A pruned trial ends `cancelled`, its result saying where and why (checkpoints kept)."""
    with db.transaction() as session:
        job = queries.get_job(session, job_id=job_id)
        queries.finish_job(
            session,
            job=job,
            status="cancelled",
            result={"pruned": True, "at_epoch": pruned.epoch, "value": pruned.value},
            error=str(pruned),
        )

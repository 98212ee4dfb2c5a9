"""A job's metrics: recorded each epoch, and read at scale (filtered, downsampled and paged, or
only what is new).

A run can record thousands of points (per-layer norms every epoch, many k-fold folds). The
unique index on (job_id, epoch, split, name) serves every query here: they all filter on job_id
and read in epoch order, so no extra index (and no migration) is needed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.errors import InvalidInputError
from core.jobs.queries import get_job
from core.tables import Metric

LAYER_SPLIT = "layers"  # per-layer diagnostics: many rows, left out of job summaries
SEPARATOR = "_"  # between split and name in a flat metric name


class MetricKey(NamedTuple):
    """One series of a job's metrics: the split it was measured on (`train`, `val`, `layers`, a
    k-fold run's `c0/f2/val`) and its name (`acc`, `grad_norm`, `weight_norm:net.0.weight`).

    The engine reports and the database stores the two apart; HTTP, charts and job summaries
    spell them flat, `split_name` (`val_acc`, `c0/f2/val_acc`, `train_grad_norm`). A split never
    holds "_" and a name may, so a flat name splits at its first "_". A plain (split, name)
    tuple compares (and hashes) equal, so engine code may keep writing tuples."""

    split: str
    name: str

    @property
    def flat(self) -> str:
        """`split_name`, as HTTP, charts and job summaries spell it."""
        return f"{self.split}{SEPARATOR}{self.name}"

    @classmethod
    def parse(cls, flat: str) -> MetricKey:
        """`val_acc` -> ("val", "acc"), `train_grad_norm` -> ("train", "grad_norm");
        InvalidInputError for what is not `split_name` (no "_", or nothing on one side)."""
        split, _, name = flat.partition(SEPARATOR)
        if not split or not name:
            raise InvalidInputError(f"metric must look like split_name, e.g. val_acc; got {flat!r}")
        return cls(split, name)


def record_epoch(
    session: Session,
    *,
    job_id: str,
    epoch: int,
    step: int,
    values: Mapping[tuple[str, str], float],
    progress: int | None = None,
) -> None:
    """Upsert one epoch's metrics, keyed (split, name) as the engine reports them (a re-run
    epoch leaves one row each), and advance progress
    (`progress`: epochs done in all, where a job trains several nets, as k-fold does)."""
    rows = [
        {
            "job_id": job_id,
            "epoch": epoch,
            "step": step,
            "split": split,
            "name": name,
            "value": value,
        }
        for (split, name), value in values.items()
    ]
    if rows:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(Metric).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=["job_id", "epoch", "split", "name"],
            set_={"value": statement.excluded.value, "step": statement.excluded.step},
        )
        session.execute(statement)
    job = get_job(session, job_id=job_id)
    job.epoch = max(job.epoch, progress if progress is not None else epoch)


def list_metrics(session: Session, *, job_id: str, name: str | None = None) -> Sequence[Metric]:
    """Every metric row of a job in epoch order, optionally of one name."""
    query = select(Metric).where(Metric.job_id == job_id)
    if name is not None:
        query = query.where(Metric.name == name)
    return session.scalars(query.order_by(Metric.epoch, Metric.split, Metric.name)).all()


def latest_metrics(session: Session, *, job_id: str) -> dict[str, float]:
    """The metrics of the job's newest recorded epoch, keyed `split_name` (per-layer left out)."""
    newest = select(func.max(Metric.epoch)).where(Metric.job_id == job_id).scalar_subquery()
    rows = session.scalars(
        select(Metric).where(
            Metric.job_id == job_id, Metric.epoch == newest, Metric.split != LAYER_SPLIT
        )
    )
    return {MetricKey(row.split, row.name).flat: row.value for row in rows}


@dataclass(frozen=True)
class MetricPoint:
    """One recorded value; `id` grows with every new row, so it doubles as a stream cursor."""

    id: int
    epoch: int
    step: int
    split: str
    name: str
    value: float

    @property
    def key(self) -> MetricKey:
        """The series it belongs to; `key.flat` as job summaries spell it (`c0/f1/train_loss`)."""
        return MetricKey(self.split, self.name)


def _points(rows: Iterable[Any]) -> list[MetricPoint]:
    return [MetricPoint(*row) for row in rows]


COLUMNS = (Metric.id, Metric.epoch, Metric.step, Metric.split, Metric.name, Metric.value)


def read_metrics(
    session: Session,
    *,
    job_id: str,
    names: Sequence[str] = (),
    max_points: int | None = None,
) -> list[MetricPoint]:
    """A job's metrics in epoch order; `names` keeps rows whose `name` or `split_name` is listed,
    `max_points` thins each series (split, name) to at most that many points."""
    query = select(*COLUMNS).where(Metric.job_id == job_id)
    if names:
        query = query.where(
            or_(Metric.name.in_(names), (Metric.split + SEPARATOR + Metric.name).in_(names))
        )
    points = _points(session.execute(query.order_by(Metric.epoch, Metric.split, Metric.name)))
    if max_points is None:
        return points
    return downsample(points, max_points=max_points)


def downsample(points: Sequence[MetricPoint], *, max_points: int) -> list[MetricPoint]:
    """At most `max_points` per series, evenly spread, always keeping the first and last point
    (a curve's start and end are what a reader compares). Order is preserved."""
    series: dict[MetricKey, list[int]] = defaultdict(list)
    for index, point in enumerate(points):
        series[point.key].append(index)
    keep: set[int] = set()
    for indices in series.values():
        if len(indices) <= max_points:
            keep.update(indices)
        elif max_points == 1:
            keep.add(indices[-1])
        else:
            last = len(indices) - 1
            keep.update(indices[i * last // (max_points - 1)] for i in range(max_points))
    return [point for index, point in enumerate(points) if index in keep]


def metrics_after(session: Session, *, job_id: str, after_id: int) -> list[MetricPoint]:
    """Rows recorded since the row `after_id`, oldest first.

    One worker writes a job's epochs one transaction at a time, so ids grow in commit order; an
    epoch re-run after redelivery updates its rows in place and is not seen again."""
    query = (
        select(*COLUMNS).where(Metric.job_id == job_id, Metric.id > after_id).order_by(Metric.id)
    )
    return _points(session.execute(query).all())


METRIC_NAMES_HELP = (
    "Comma-separated metrics to keep: `split_name` (val_acc, c0/f1/train_loss) or a bare name "
    "(acc: every split's)."
)


def parse_metric_names(names: str | None, *, at_most: int) -> list[str]:
    """`?names=val_acc, train_loss` as a list, each once; an empty entry is refused, not
    ignored, and so are more than `at_most` names (each is a term of the query)."""
    if names is None:
        return []
    parsed = list(dict.fromkeys(entry.strip() for entry in names.split(",")))
    if not all(parsed):
        raise InvalidInputError(f"names: empty entry in {names!r}; e.g. names=val_acc,train_loss")
    if len(parsed) > at_most:
        raise InvalidInputError(
            f"names: at most {at_most} metrics (D2L_QUERY_MAX_VALUES); got {len(parsed)}"
        )
    return parsed

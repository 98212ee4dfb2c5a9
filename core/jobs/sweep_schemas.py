"""A hyperparameter sweep's settings (`kind: "sweep"`): what to search, how, and how to judge.

A sweep job's body is an ordinary job body (the base of every trial) plus `sweep`. Each trial is
the base with the trial's sampled values written at their dotted paths (`hyperparameters.lr`,
`model.config.hidden_sizes`); the trial is then validated as a job of its own. Optuna does the
searching (worker/sweeps.py asks; core/jobs/sweep_study.py rebuilds the study from the trial
rows) and the pruning in the worker; this module only describes and checks, and the sweep's card
(core/jobs/kinds/sweep.py) makes the trials.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)

from core.bodies import Frozen, Int, whole
from core.errors import InvalidInputError
from core.jobs.hyperparameters import MAX_SEED, Hyperparameters
from core.jobs.metrics import MetricKey

# Where a sampled value may be written: training knobs, the net and its options, fine-tuning.
SPACE_ROOTS = ("hyperparameters.", "model.", "finetune.")
# A sweep trains this many trials when a random search does not say.
DEFAULT_RANDOM_TRIALS = 10
MAX_GRID_POINTS = 1000
MAX_CHOICES = 50  # per field: each is checked as a job at submission


# Integer range bounds: any integer a double holds exactly (JSON's own limit).
SafeInt = Annotated[int, Field(ge=-(2**53), le=2**53), BeforeValidator(whole)]


class Range(Frozen):
    """A continuous (float) or integer range; integer when both bounds are JSON integers,
    unless `type` says (write 0.0 to make a range starting at 0 a float one)."""

    low: float | SafeInt
    high: float | SafeInt
    log: bool = Field(default=False, description="Sample on a log scale (low must be > 0).")
    type: Literal["float", "int"] | None = Field(
        default=None, description="Default: int when both bounds are integers, else float."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        if self.is_int and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an int range needs integer bounds")
        return self

    @property
    def is_int(self) -> bool:
        if self.type is not None:
            return self.type == "int"
        return isinstance(self.low, int) and isinstance(self.high, int)

    def bounds(self) -> list[float | int]:
        """The values a submission is checked with: both ends (and they must be valid)."""
        if self.is_int:
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]


Choices = list[Any]
SpacePath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.]{1,200}$")]
# A list is choices, anything else a range: an error then names the one it was meant to be.
SpaceEntry = Annotated[
    Annotated[Choices, Tag("choices")] | Annotated[Range, Tag("range")],
    Discriminator(lambda spec: "choices" if isinstance(spec, list) else "range"),
]


class SweepSettings(Frozen):
    """What to search (`space`), how (`search`, `trials`, `max_concurrent`), what is best
    (`metric`, `direction`) and whether bad trials stop early (`prune`)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "space": {
                        "hyperparameters.lr": [0.05, 0.1, 0.2],
                        "hyperparameters.dropout": {"low": 0.0, "high": 0.5},
                    },
                    "search": "random",
                    "trials": 6,
                    "max_concurrent": 2,
                    "metric": "val_acc",
                    "prune": "median",
                }
            ]
        },
    )

    space: dict[SpacePath, SpaceEntry] = Field(
        json_schema_extra={"additionalProperties": False},
        min_length=1,
        max_length=20,
        description="Dotted job field -> a list of choices or a {low, high, log} range. A bare "
        "name is a hyperparameter when there is one of that name (lr, weight_decay, dropout, "
        "batch_size), else a net option (model.config.NAME).",
    )
    search: Literal["grid", "random"] = Field(
        default="random", description="grid: every combination of choices once; random: sample."
    )
    trials: Annotated[int, Field(ge=1, le=MAX_GRID_POINTS), BeforeValidator(whole)] | None = Field(
        default=None,
        description=f"Trials in all; default: the grid's size, or {DEFAULT_RANDOM_TRIALS}.",
    )
    max_concurrent: Int = Field(default=2, ge=1, le=100, description="Trials queued or running.")
    metric: Literal["val_acc", "val_loss"] = Field(
        default="val_acc", description="Each trial's score: its last epoch's value."
    )
    direction: Literal["maximize", "minimize"] | None = Field(
        default=None, description="Default: maximize an accuracy, minimize a loss."
    )
    prune: Literal["none", "median", "asha"] = Field(
        default="none",
        description="Stop bad trials early: median (below the median of finished trials at the "
        "same epoch) or asha (successive halving).",
    )
    prune_min_epochs: Int = Field(
        default=1, ge=1, le=10_000, description="No trial is pruned before this epoch."
    )
    prune_startup_trials: Int = Field(
        default=2, ge=0, le=1000, description="median: finished trials needed before pruning."
    )
    reduction_factor: Int = Field(
        default=3, ge=2, le=10, description="asha: 1 in this many trials goes on at each rung."
    )
    seed: Int = Field(
        default=0, ge=0, le=MAX_SEED, description="Seeds the order of the grid and the samples."
    )

    @field_validator("space", mode="before")
    @classmethod
    def _full_paths(cls, space: Any) -> Any:
        if not isinstance(space, dict):
            return space
        return {full_path(str(path)): spec for path, spec in space.items()}

    @field_validator("space")
    @classmethod
    def _known_roots(cls, space: dict[str, Choices | Range]) -> dict[str, Choices | Range]:
        for path, spec in space.items():
            if not path.startswith(SPACE_ROOTS) or path.endswith(".") or ".." in path:
                raise ValueError(
                    f"space: {path!r} is not a field a trial can vary; use hyperparameters.NAME, "
                    "model.config.NAME or finetune.NAME"
                )
            if isinstance(spec, list) and not 1 <= len(spec) <= MAX_CHOICES:
                raise ValueError(f"space.{path}: give 1 to {MAX_CHOICES} choices")
        return space

    @model_validator(mode="after")
    def _grid_is_discrete(self) -> SweepSettings:
        if self.search == "grid":
            ranges = [path for path, spec in self.space.items() if isinstance(spec, Range)]
            if ranges:
                raise ValueError(
                    f"space.{ranges[0]}: grid search needs a list of choices; ranges are for "
                    "search 'random'"
                )
            size = self.grid_size
            if size > MAX_GRID_POINTS:
                raise ValueError(f"the grid has {size} points; at most {MAX_GRID_POINTS}")
            if self.trials is not None and self.trials > size:
                raise ValueError(f"trials: the grid has {size} points; got trials={self.trials}")
        return self

    @property
    def grid_size(self) -> int:
        return math.prod(len(spec) for spec in self.space.values() if isinstance(spec, list))

    @property
    def total_trials(self) -> int:
        if self.trials is not None:
            return self.trials
        return self.grid_size if self.search == "grid" else DEFAULT_RANDOM_TRIALS

    @property
    def maximize(self) -> bool:
        if self.direction is not None:
            return self.direction == "maximize"
        return not self.metric.endswith("loss")

    @property
    def metric_key(self) -> MetricKey:
        """(split, name) of the metric rows that score a trial, e.g. ("val", "acc")."""
        return MetricKey.parse(self.metric)

    @property
    def space_values(self) -> int:
        """Values the space lists in all, a range counting its two bounds."""
        return sum(len(spec) if isinstance(spec, list) else 2 for spec in self.space.values())

    def check_size(self, *, max_trials: int, max_space_values: int) -> None:
        """Refuse (InvalidInputError) a sweep bigger than this service takes. It only counts,
        so it costs nothing however big the space: call it before `check_trials`."""
        if self.space_values > max_space_values:
            raise InvalidInputError(
                f"sweep.space lists {self.space_values} values in all (a range counts 2); this "
                f"service checks at most {max_space_values} (D2L_SWEEP_MAX_SPACE_VALUES): "
                "give fewer choices, or a range instead of a long list"
            )
        if self.total_trials > max_trials:
            why = (
                "as asked"
                if self.trials is not None
                else "one per grid point"
                if self.search == "grid"
                else "a random search's default"
            )
            raise InvalidInputError(
                f"sweep: {self.total_trials} trials ({why}); at most {max_trials} on this "
                "service (D2L_SWEEP_MAX_TRIALS): give fewer `trials`"
            )

    def check_trials(self, make_trial: Callable[[dict[str, Any]], object]) -> None:
        """Each choice and each range bound must make a valid job: `make_trial` (the job's
        `trial_spec`) raises ValueError naming the field. A net is built for each, seconds for a
        big space: the API runs this once, at submission, in its CPU pool."""
        for values in self.checked_values():
            try:
                make_trial(values)
            except ValueError as error:
                raise InvalidInputError(str(error)) from None

    def checked_values(self) -> list[dict[str, Any]]:
        """One override per choice and per range bound: each must make a valid job."""
        singles: list[dict[str, Any]] = []
        for path, spec in self.space.items():
            values = spec if isinstance(spec, list) else spec.bounds()
            singles += [{path: value} for value in values]
        return singles

    def grid_points(self) -> list[dict[str, Any]]:
        """Every combination of the choices (a grid search's trials)."""
        paths = list(self.space)
        lists = [spec for spec in self.space.values() if isinstance(spec, list)]
        return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*lists)]


def full_path(path: str) -> str:
    """`lr` -> `hyperparameters.lr`; `hidden_sizes` -> `model.config.hidden_sizes`."""
    if "." in path:
        return path
    if path in Hyperparameters.model_fields:
        return f"hyperparameters.{path}"
    return f"model.config.{path}"


def trial_body(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The base job body with each value written at its dotted path (missing levels made)."""
    body = copy.deepcopy(base)
    for path, value in values.items():
        *parents, leaf = path.split(".")
        node = body
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[leaf] = copy.deepcopy(value)
    return body


def read_path(body: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a job body (None where a level is missing)."""
    node: Any = body
    for key in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node

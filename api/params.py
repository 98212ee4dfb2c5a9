"""The path and query parameters routes share, each with the pattern validation applies.

A URL parameter that does not match is a 422 naming it before any handler runs, and the
OpenAPI document carries the same pattern, so no NUL byte or control character reaches a
database query. Ids keep the general name alphabet (not only 32 hex digits): a well-formed name
that matches nothing is still a 404 saying so.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import StringConstraints

from core.names import (
    METRIC_NAMES_PATTERN,
    METRIC_PATTERN,
    MODEL_REF_PATTERN,
    NAME_HELP,
    NAME_PATTERN,
)

JobId = Annotated[str, Path(pattern=NAME_PATTERN, description="A job's id.")]
DatasetId = Annotated[
    str, Path(pattern=NAME_PATTERN, description="A built-in dataset's name or an upload's id.")
]
WeightsId = Annotated[str, Path(pattern=NAME_PATTERN, description="An uploaded state_dict's id.")]
ExperimentName = Annotated[str, Path(pattern=NAME_PATTERN, description=f"{NAME_HELP}.")]
ArchName = Annotated[str, Path(pattern=NAME_PATTERN, description="A registered architecture.")]
RecipeName = Annotated[str, Path(pattern=NAME_PATTERN, description="A course experiment.")]
AliasName = Annotated[str, Path(pattern=NAME_PATTERN, description="An alias name (no ':').")]
ModelRef = Annotated[
    str,
    Path(
        pattern=MODEL_REF_PATTERN,
        description="A model id, or an alias: name:VERSION, name:latest, name:production.",
    ),
]

NameFilter = Annotated[str | None, Query(pattern=NAME_PATTERN, description=f"{NAME_HELP}.")]
MetricName = Annotated[
    str,
    Query(
        pattern=METRIC_PATTERN,
        description="split_name (val_acc, train_loss) or a result number (test_acc)",
    ),
]
MetricItem = Annotated[str, StringConstraints(pattern=METRIC_PATTERN)]
MetricNames = Annotated[
    str | None,
    Query(
        pattern=METRIC_NAMES_PATTERN,
        description="Comma-separated metrics to keep: `split_name` (val_acc, c0/f1/train_loss) "
        "or a bare name (acc: every split's).",
    ),
]
BareMetric = Annotated[
    str | None,
    Query(pattern=r"^[A-Za-z0-9_/]{1,130}$", description="One metric: `split_name` or a name."),
]
TensorName = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z0-9_.]{1,200}$",
        description="A state_dict key (e.g. features.0.weight): that tensor's values.",
    ),
]

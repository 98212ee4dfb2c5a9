"""The kinds of job, one card a file; importing this package imports every module in it, and
each card registers itself (a new kind is a new file here, and nothing else to edit).

A card says what the house does differently for its kind (core/jobs/kinds/card.py); the registry
(core/jobs/kind_registry.py) finds it by name. POST /v1/jobs takes the body of any registered
kind: `JobSubmission` is the union of their bodies, told apart by `kind`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag

from core.jobs.kind_registry import JobSpec, UnknownKindError, get_kind, list_kinds, load_stored
from core.jobs.kinds.card import KindCard
from core.jobs.schemas import JobCreate

__all__ = [
    "SUBMISSION_TAGS",
    "JobSpec",
    "JobSubmission",
    "KindCard",
    "get_kind",
    "list_kinds",
    "load_stored",
]

for _module in pkgutil.iter_modules(__path__):  # the cards register themselves
    importlib.import_module(f"{__name__}.{_module.name}")

BODIES = list(dict.fromkeys(get_kind(name).spec_model for name in list_kinds()))


def submission_tag(body: Any) -> str:
    """Which body a POST /v1/jobs request is, by its `kind` (an unknown kind is read as a
    training body, whose own validation names the kinds there are)."""
    kind = body.get("kind", "train") if isinstance(body, dict) else getattr(body, "kind", None)
    try:
        return get_kind(str(kind)).spec_model.__name__
    except UnknownKindError:
        return JobCreate.__name__


# The tag never reaches a client: api/untagged_errors.py drops it from error locations, so a
# train job's errors read `body.model.arch` as they always did.
JobSubmission: Any = Annotated[
    Union[tuple(Annotated[body, Tag(body.__name__)] for body in BODIES)],  # type: ignore[valid-type]  # noqa: UP007
    Discriminator(submission_tag),
]
SUBMISSION_TAGS = tuple(body.__name__ for body in BODIES)

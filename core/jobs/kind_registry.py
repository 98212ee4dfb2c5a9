"""The kinds of job as cards in one registry, as networks are in `models/registry.py`.

A card (`KindCard`, core/jobs/kinds/card.py) holds everything the house does differently for one
kind: the body it takes, the rules of that body, what the server checks at submission, how it is
sent to the workers, the worker engine that runs it, how many epochs it plans, how it is
cancelled, and what its success leaves (a model, or a file). Routes, the runner and the reaper
look the kind up here and call its card; none of them branches on a kind's name.

The cards are in `core/jobs/kinds/`, one file each, and register themselves (`@register_kind`)
when that package is imported. They build on modules that look kinds up in turn (a spec's
validation asks its card for the kind's rules), so this module imports no card: the first lookup
imports the package, the way entry points are discovered, and a module the cards import can still
look kinds up without an import circle.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from core.bodies import STORED

if TYPE_CHECKING:
    from core.bodies import Frozen
    from core.jobs.kinds.card import KindCard

CARDS_PACKAGE = "core.jobs.kinds"


class JobSpec(Protocol):
    """What the house reads of any kind's body (the rest is its card's business)."""

    @property
    def kind(self) -> str: ...
    @property
    def experiment(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def priority(self) -> str: ...
    @property
    def time_limit_s(self) -> float | None: ...
    @property
    def wants_gpu(self) -> bool: ...

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


class UnknownKindError(ValueError):
    """A kind no card is registered for."""


_REGISTRY: dict[str, KindCard] = {}


def register_kind(card: type[KindCard]) -> type[KindCard]:
    """Class decorator: register one instance of `card` under `card.name`; refuses duplicates."""
    if card.name in _REGISTRY:
        raise ValueError(f"job kind {card.name!r} is already registered")
    _REGISTRY[card.name] = card()
    return card


def _cards() -> dict[str, KindCard]:
    if not _REGISTRY:
        importlib.import_module(CARDS_PACKAGE)
    return _REGISTRY


def get_kind(name: str) -> KindCard:
    """The card of kind `name`; UnknownKindError when none is registered."""
    try:
        return _cards()[name]
    except KeyError:
        raise UnknownKindError(
            f"unknown kind {name!r}; allowed: {', '.join(list_kinds())}"
        ) from None


def list_kinds(where: Callable[[KindCard], bool] = lambda card: True) -> list[str]:
    """The registered kinds' names, in registration order; `where` filters the cards."""
    return [name for name, card in _cards().items() if where(card)]


def kinds_of(
    spec_model: type[Frozen], where: Callable[[KindCard], bool] = lambda card: True
) -> list[str]:
    """The kinds whose body is `spec_model` (and whose card `where` accepts)."""
    return list_kinds(lambda card: card.spec_model is spec_model and where(card))


def worker_run_kinds() -> list[str]:
    """Kinds a worker runs from their own message (every kind but a sweep's controller)."""
    return list_kinds(lambda card: card.runs_on_a_worker)


def load_stored(params: dict[str, Any]) -> Any:
    """A job row's stored body, rebuilt as the object the API accepted, without checking it
    against the registries again (it was, when it was accepted)."""
    return get_kind(str(params.get("kind", "train"))).spec_model.model_validate(
        params, context=STORED
    )


def controlled_kinds() -> list[str]:
    """Kinds no worker runs from a message of their own: a controller step advances them."""
    return list_kinds(lambda card: not card.runs_on_a_worker)

"""What a course recipe is: a preset job body, the book's printed numbers, and how to compare.

A recipe is data, not code: `spec` is a partial `JobCreate` body (the same JSON a user would
post), so a recipe can never do anything a hand-written job cannot (one way to do each thing).
Its `book` numbers come from COURSE.md (the executed notebooks of d2l-zh v2.0.0 and d2l-en
0.17.5), and its `checks` say which of our result's numbers must fall where for the run to
count as reproducing the book.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Number = float | list[float]


@dataclass(frozen=True)
class Check:
    """One number of our result set against the book: `target` +- `tolerance`, or a range.

    `metric` is a key of the job's result, or a derived value `observed_value` knows
    (`weights`, `generalization_gap`). `low`/`high` bound it; `target`/`tolerance` bound it
    elementwise (a weight vector)."""

    metric: str
    low: float | None = None
    high: float | None = None
    target: Number | None = None
    tolerance: float | None = None
    why: str = ""

    @property
    def expected(self) -> str:
        """The bound as a person reads it: `0.95 <= test_acc`, `[5, 1.2] +- 0.2`."""
        if self.target is not None:
            return f"{self.target} +- {self.tolerance}"
        if self.low is not None and self.high is not None:
            return f"{self.low} - {self.high}"
        return f">= {self.low}" if self.low is not None else f"<= {self.high}"

    def holds(self, value: Number | None) -> bool | None:
        """Whether `value` is inside; None when the result lacks it."""
        if value is None:
            return None
        if self.target is not None:
            targets = self.target if isinstance(self.target, list) else [self.target]
            values = value if isinstance(value, list) else [value]
            if len(values) != len(targets):
                return False
            return all(
                abs(v - t) <= (self.tolerance or 0.0) for v, t in zip(values, targets, strict=True)
            )
        if isinstance(value, list):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


@dataclass(frozen=True)
class Variant:
    """A version of the recipe for data this machine has (e.g. `digits`), with its own checks.

    `overrides` are merged over the recipe's spec exactly as a user's overrides are."""

    name: str
    description: str
    overrides: dict[str, Any]
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """One experiment of the course: the job that reruns it and what the book printed."""

    name: str
    title: str
    chapter: str
    spec: dict[str, Any]
    book: dict[str, Number]
    book_printed: str
    book_dataset: str
    preprocessing: str
    init: str
    checks: tuple[Check, ...] = ()
    variants: tuple[Variant, ...] = ()
    # Fields a request must give because the recipe cannot (e.g. a fine-tune's source weights).
    requires: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    book_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    def variant(self, name: str) -> Variant:
        """The variant called `name`, or a ValueError naming the ones there are."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        known = ", ".join(v.name for v in self.variants) or "none"
        raise ValueError(f"recipe {self.name!r} has no variant {name!r}; its variants: {known}")

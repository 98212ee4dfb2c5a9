"""A recipe job's numbers set beside the book's: what GET /v1/jobs/{id} shows as `book`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from core.recipes.expand import lookup, recipe_body
from core.recipes.model import Check, Number, Recipe
from core.recipes.registry import UnknownRecipeError, get_recipe


class CheckOutcome(BaseModel):
    """One of our numbers against the bound the book sets for it."""

    metric: str
    expected: str = Field(description="The bound, e.g. '0.95 - 1.0' or '[5, 1.2] +- 0.2'.")
    why: str
    ours: Number | None = None
    within: bool | None = Field(default=None, description="None until the job has a result.")


class BookComparison(BaseModel):
    """The book's printed numbers beside this job's, and whether ours fall within range."""

    recipe: str
    variant: str | None
    chapter: str
    title: str
    book: dict[str, Number] = Field(description="What the book printed (COURSE.md).")
    book_printed: str
    ours: dict[str, Number | None] = Field(description="The same quantities from this job.")
    checks: list[CheckOutcome]
    within: bool | None = Field(description="Every check holds (None until there is a result).")
    overrides: list[str] = Field(
        description="Fields this job changed from the recipe: the book's numbers assume none."
    )


HEADLINE = ("train_loss", "test_loss", "train_acc", "test_acc")


def observed_value(result: Mapping[str, Any], metric: str) -> Number | None:
    """A number of a job's result by the name the book's table uses.

    `weights` folds a bias, where the model has one, into w[0] (the book's polynomial has none:
    its constant term is the weight of the feature x^0 = 1); `generalization_gap` is test loss
    minus train loss."""
    if metric == "weights":
        weights = result.get("weights") or {}
        w, b = weights.get("w"), weights.get("b") or 0.0
        return [w[0] + b, *w[1:]] if w else None
    if metric == "generalization_gap":
        train, test = result.get("train_loss"), result.get("test_loss")
        return test - train if train is not None and test is not None else None
    value = result.get(metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def ours_beside(
    recipe: Recipe, checks: tuple[Check, ...], result: Mapping[str, Any] | None
) -> dict[str, Number | None]:
    """Our value of each number the book printed or a check reads, and the headline losses
    and accuracies the result has (the overfitting polynomial prints no book number)."""
    keys = [*recipe.book, *(check.metric for check in checks)]
    ours: dict[str, Number | None] = {}
    for key in [*keys, *HEADLINE]:
        value = observed_value(result, key) if result else None
        if key in keys or value is not None:
            ours[key] = value
    return ours


def active_checks(recipe: Recipe, variant: str | None) -> tuple[Check, ...]:
    return recipe.variant(variant).checks if variant else recipe.checks


def overridden(params: Mapping[str, Any], recipe_params: Mapping[str, Any]) -> list[str]:
    """Dotted paths where the job differs from its recipe, e.g. `hyperparameters.epochs`."""
    changed: list[str] = []

    def walk(expected: Any, prefix: str) -> None:
        if isinstance(expected, Mapping):
            for key, value in expected.items():
                walk(value, f"{prefix}.{key}" if prefix else key)
        elif lookup(params, prefix) != expected:
            changed.append(f"{prefix}: {expected!r} -> {lookup(params, prefix)!r}")

    walk({k: v for k, v in recipe_params.items() if k != "experiment"}, "")
    return changed


def compare(params: Mapping[str, Any], result: Mapping[str, Any] | None) -> BookComparison | None:
    """The comparison for a job made from a recipe; None for any other job."""
    name, variant = params.get("recipe"), params.get("recipe_variant")
    if not isinstance(name, str):
        return None
    try:
        recipe = get_recipe(name)
        checks = active_checks(recipe, variant)
        recipe_params = recipe_body(name, variant)
    except (UnknownRecipeError, ValueError):  # a recipe since renamed: show the job plainly
        return None
    outcomes = []
    for check in checks:
        ours = observed_value(result, check.metric) if result is not None else None
        outcomes.append(
            CheckOutcome(
                metric=check.metric,
                expected=check.expected,
                why=check.why,
                ours=ours,
                within=check.holds(ours) if result is not None else None,
            )
        )
    verdicts = [outcome.within for outcome in outcomes]
    return BookComparison(
        recipe=name,
        variant=variant,
        chapter=recipe.chapter,
        title=recipe.title,
        book=recipe.book,
        book_printed=recipe.book_printed,
        ours=ours_beside(recipe, checks, result),
        checks=outcomes,
        within=None if result is None or None in verdicts else all(verdicts),
        overrides=overridden(params, recipe_params),
    )

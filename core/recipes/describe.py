"""A recipe as GET /v1/recipes shows it: the job it submits, the book's numbers, and whether the
book's data are on this machine (with the files to put where when they are not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from core.datasets import get_dataset, list_datasets, missing_files
from core.datasets.availability import missing_message
from core.recipes.expand import recipe_body
from core.recipes.model import Check, Number, Recipe


class CheckOut(BaseModel):
    metric: str
    expected: str
    why: str


class VariantOut(BaseModel):
    name: str
    description: str
    job: dict[str, Any] = Field(description="The JobCreate body this variant submits.")
    checks: list[CheckOut]


class DataAvailability(BaseModel):
    """Whether the book's dataset can be loaded here; if not, what to do about it."""

    dataset: str
    available: bool
    missing_files: list[str] = Field(default_factory=list)
    message: str | None = None


class RecipeOut(BaseModel):
    name: str
    title: str
    chapter: str
    job: dict[str, Any] = Field(
        description='The JobCreate body {"recipe": name} submits; override any field of it.'
    )
    requires: list[str] = Field(description="Fields the request must add (the recipe cannot).")
    book: dict[str, Number]
    book_printed: str
    book_ranges: dict[str, tuple[float, float]]
    book_data: DataAvailability
    preprocessing: str
    init: str
    checks: list[CheckOut]
    variants: list[VariantOut]
    notes: list[str]


def checks_out(checks: tuple[Check, ...]) -> list[CheckOut]:
    return [CheckOut(metric=c.metric, expected=c.expected, why=c.why) for c in checks]


def book_data(recipe: Recipe, datasets_dir: Path, *, download: bool) -> DataAvailability:
    """The same availability check a job submission makes (core.datasets.availability)."""
    name = recipe.spec.get("dataset", {}).get("name")
    if name is None or name not in list_datasets():
        return DataAvailability(
            dataset=recipe.book_dataset,
            available=False,
            message=f"{recipe.book_dataset}: name your own copy in dataset.name, or run a variant",
        )
    info = get_dataset(name, root=datasets_dir)
    missing = missing_files(info, datasets_dir)
    if not missing or (download and info.fetch is not None):
        return DataAvailability(dataset=name, available=True)
    offer = f'; or run "recipe_variant": "{recipe.variants[0].name}"' if recipe.variants else ""
    return DataAvailability(
        dataset=name,
        available=False,
        missing_files=[str(path) for path in missing],
        message=missing_message(info, datasets_dir, missing) + offer,
    )


def describe(recipe: Recipe, datasets_dir: Path, *, download: bool = False) -> RecipeOut:
    """Everything a learner needs to run the recipe and read its outcome."""
    return RecipeOut(
        name=recipe.name,
        title=recipe.title,
        chapter=recipe.chapter,
        job=recipe_body(recipe.name),
        requires=list(recipe.requires),
        book=recipe.book,
        book_printed=recipe.book_printed,
        book_ranges=recipe.book_ranges,
        book_data=book_data(recipe, datasets_dir, download=download),
        preprocessing=recipe.preprocessing,
        init=recipe.init,
        checks=checks_out(recipe.checks),
        variants=[
            VariantOut(
                name=variant.name,
                description=variant.description,
                job=recipe_body(recipe.name, variant.name),
                checks=checks_out(variant.checks),
            )
            for variant in recipe.variants
        ],
        notes=list(recipe.notes),
    )

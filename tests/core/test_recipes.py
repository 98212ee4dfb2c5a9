"""Course recipes: each one is a valid job, overrides win, and a bad request says what to fix."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.jobs.kinds.kfold import candidate_specs
from core.jobs.schemas import JobCreate
from core.recipes import compare, expand_recipe, get_recipe, list_recipes, recipe_body

COURSE_EXPERIMENTS = {
    "mlp",
    "dropout",
    "dropout-scratch",
    "weight-decay-0",
    "weight-decay-3",
    "poly-underfit",
    "poly-normal",
    "poly-overfit",
    "kfold",
    "lenet",
    "alexnet",
    "vgg-small",
    "nin",
    "googlenet",
    "lenet-bn-scratch",
    "lenet-bn",
    "resnet18",
    "finetune",
    "finetune-scratch",
    "nadaraya-watson",
    "nadaraya-watson-parametric",
}
SOURCE = {"finetune": {"source": {"job_id": "0" * 32}}}


def bodies() -> list[tuple[str, str | None, dict[str, Any]]]:
    """A request for every recipe and variant, adding only what the recipe says it requires."""
    cases = []
    for name in list_recipes():
        recipe = get_recipe(name)
        extra: dict[str, Any] = SOURCE if "finetune.source" in recipe.requires else {}
        if "dataset" not in recipe.requires:
            cases.append((name, None, {"recipe": name, **extra}))
        for variant in recipe.variants:
            cases.append(
                (name, variant.name, {"recipe": name, "recipe_variant": variant.name, **extra})
            )
    return cases


def test_every_course_experiment_has_a_recipe_with_the_books_numbers() -> None:
    assert set(list_recipes()) == COURSE_EXPERIMENTS
    for name in list_recipes():
        recipe = get_recipe(name)
        assert recipe.book_printed and recipe.chapter and recipe.preprocessing and recipe.init
        assert recipe.checks or recipe.variants, name


@pytest.mark.parametrize(("name", "variant", "body"), bodies(), ids=lambda v: str(v)[:30])
def test_every_recipe_and_variant_is_a_valid_job(
    name: str, variant: str | None, body: dict[str, Any]
) -> None:
    spec = JobCreate.model_validate(body)
    assert (spec.recipe, spec.recipe_variant) == (name, variant)
    # The stored JSON rebuilds the very same job in the worker.
    assert JobCreate.model_validate(spec.model_dump(mode="json")) == spec


def test_image_recipes_without_the_books_data_offer_a_digits_variant() -> None:
    for name in list_recipes():
        recipe = get_recipe(name)
        if recipe.spec.get("dataset", {}).get("name") in (None, "fashion_mnist"):
            digits = recipe.variant("digits")
            assert digits.overrides["dataset"]["name"] == "digits"


def test_the_book_recipes_carry_the_books_hyperparameters() -> None:
    lenet = JobCreate.model_validate({"recipe": "lenet"})
    hp = lenet.hyperparameters
    assert (hp.lr, hp.epochs, hp.batch_size, hp.optimizer, hp.momentum) == (0.9, 10, 256, "sgd", 0)
    assert (lenet.dataset.name, lenet.dataset.val_fraction) == ("fashion_mnist", 0.0)
    assert JobCreate.model_validate({"recipe": "alexnet"}).model.resolved_input_size == 224
    scratch = JobCreate.model_validate({"recipe": "lenet-bn-scratch"})
    assert scratch.model.config["batchnorm"] == "scratch"
    dropout = JobCreate.model_validate({"recipe": "dropout-scratch"}).model.config
    assert dropout["dropout_impl"] == "scratch" and dropout["dropout"] == [0.2, 0.5]
    overfit = JobCreate.model_validate({"recipe": "poly-overfit"})
    assert overfit.hyperparameters.epochs == 1500 and overfit.model.input_size == 20


def test_any_field_can_be_overridden_and_the_rest_stays_the_recipes() -> None:
    spec = JobCreate.model_validate(
        {
            "recipe": "lenet",
            "dataset": {"name": "digits"},
            "hyperparameters": {"epochs": 2},
            "device": "cpu",
        }
    )
    assert spec.hyperparameters.epochs == 2 and spec.hyperparameters.lr == 0.9
    assert spec.dataset.name == "digits" and spec.dataset.val_fraction == 0.0
    assert spec.device == "cpu" and spec.model.config == {"activation": "sigmoid"}


def test_another_arch_replaces_the_recipes_model_options() -> None:
    spec = JobCreate.model_validate(
        {"recipe": "dropout", "recipe_variant": "digits", "model": {"arch": "lenet"}}
    )
    assert spec.model.arch == "lenet" and spec.model.config == {}


def test_a_kfold_recipe_compares_candidates_as_plain_train_jobs() -> None:
    spec = JobCreate.model_validate({"recipe": "kfold", "recipe_variant": "digits"})
    labels = [label for label, _ in candidate_specs(spec)]
    assert labels == ["wd0", "wd1e-3"]
    assert all(candidate.kind == "train" for _, candidate in candidate_specs(spec))


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ({"recipe": "lenet5"}, ["unknown recipe 'lenet5'", "lenet", "poly-normal"]),
        ({"recipe": "lenet", "recipe_variant": "cifar"}, ["no variant 'cifar'", "digits"]),
        ({"recipe_variant": "digits", "model": {"arch": "mlp"}}, ["recipe_variant needs a recipe"]),
        ({"recipe": "kfold"}, ["needs dataset", '"recipe_variant"']),
        ({"recipe": "finetune", "recipe_variant": "digits"}, ["needs finetune.source"]),
        ({"recipe": "lenet", "hyperparameters": {"lr": -1}}, ["hyperparameters.lr"]),
    ],
)
def test_a_bad_recipe_request_says_what_to_fix(body: dict[str, Any], needles: list[str]) -> None:
    with pytest.raises(ValidationError) as error:
        JobCreate.model_validate(body)
    text = str(error.value)
    for needle in needles:
        assert needle in text


def test_expanding_a_stored_body_again_changes_nothing() -> None:
    stored = JobCreate.model_validate({"recipe": "mlp", "recipe_variant": "digits"}).model_dump(
        mode="json"
    )
    assert expand_recipe(stored) == stored


def test_a_job_shows_which_recipe_fields_it_changed() -> None:
    params = JobCreate.model_validate(
        {"recipe": "poly-normal", "hyperparameters": {"epochs": 3}}
    ).model_dump(mode="json")
    comparison = compare(params, None)
    assert comparison is not None
    assert comparison.overrides == ["hyperparameters.epochs: 400 -> 3"]
    assert comparison.within is None and comparison.book["weights"] == [5.010, 1.235, -3.423, 5.503]
    assert compare(JobCreate.model_validate(recipe_body("lenet")).model_dump(), None) is not None
    assert compare({"model": {"arch": "mlp"}}, None) is None  # not a recipe job

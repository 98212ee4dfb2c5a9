"""Recipes by name: where the API, the job schema and the fidelity bench look them up."""

from __future__ import annotations

from core.recipes.basics import MLP_RECIPES, OTHER_RECIPES, POLY_RECIPES, WEIGHT_DECAY_RECIPES
from core.recipes.cnn import CNN_RECIPES
from core.recipes.model import Recipe


class UnknownRecipeError(ValueError):
    """A recipe name that is not in the catalogue; the message lists the ones there are."""


def _index(recipes: tuple[Recipe, ...]) -> dict[str, Recipe]:
    index: dict[str, Recipe] = {}
    for recipe in recipes:
        if recipe.name in index:
            raise RuntimeError(f"recipe {recipe.name!r} is defined twice")
        index[recipe.name] = recipe
    return index


# In the course's order: ch. 3, 5, 7-8, 11, 14.
_RECIPES = _index(
    (
        *MLP_RECIPES,
        *WEIGHT_DECAY_RECIPES,
        *POLY_RECIPES,
        *OTHER_RECIPES[:1],  # k-fold
        *CNN_RECIPES,
        *OTHER_RECIPES[1:],
    )
)


def list_recipes() -> list[str]:
    """Every recipe name, in the course's order."""
    return list(_RECIPES)


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`, or an UnknownRecipeError that lists the known names."""
    try:
        return _RECIPES[name]
    except (KeyError, TypeError):
        raise UnknownRecipeError(
            f"unknown recipe {name!r}; known recipes: {', '.join(_RECIPES)}"
        ) from None

"""The course's experiments as named presets of a job (GET /v1/recipes), with the book's numbers.

`expand_recipe` turns `{"recipe": "lenet", ...overrides}` into an ordinary JobCreate body;
`compare` sets a finished recipe job's result beside what the book printed.
"""

from core.recipes.compare import BookComparison, CheckOutcome, compare, observed_value
from core.recipes.expand import RECIPE_FIELDS, expand_recipe, merge, recipe_body, variant_offer
from core.recipes.model import Check, Recipe, Variant
from core.recipes.registry import UnknownRecipeError, get_recipe, list_recipes

__all__ = [
    "RECIPE_FIELDS",
    "BookComparison",
    "Check",
    "CheckOutcome",
    "Recipe",
    "UnknownRecipeError",
    "Variant",
    "compare",
    "expand_recipe",
    "get_recipe",
    "list_recipes",
    "merge",
    "observed_value",
    "recipe_body",
    "variant_offer",
]

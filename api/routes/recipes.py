"""The course's experiments as presets: list them, read one; `POST /v1/jobs {"recipe": ...}`
runs one (the expansion lives in core.recipes, used by the job schema)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SettingsDep
from api.params import RecipeName
from core.errors import NotFoundError
from core.recipes import UnknownRecipeError
from core.recipes import get_recipe as find_recipe
from core.recipes import list_recipes as recipe_names
from core.recipes.describe import RecipeOut, describe

router = APIRouter(prefix="/v1/recipes", tags=["recipes"])


@router.get("", summary="Every course experiment: its job, the book's numbers, its data")
def list_recipes(settings: SettingsDep) -> list[RecipeOut]:
    return [
        describe(find_recipe(name), settings.datasets_dir, download=settings.download_datasets)
        for name in recipe_names()
    ]


@router.get("/{name}", summary='One course experiment; POST /v1/jobs {"recipe": name} runs it')
def get_recipe(name: RecipeName, settings: SettingsDep) -> RecipeOut:
    try:
        recipe = find_recipe(name)
    except UnknownRecipeError as error:
        raise NotFoundError(str(error)) from None
    return describe(recipe, settings.datasets_dir, download=settings.download_datasets)

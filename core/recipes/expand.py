"""A recipe plus a request's overrides becomes an ordinary JobCreate body, before validation.

`JobCreate` calls `expand_recipe` in a `mode="before"` validator, so a recipe job is validated,
stored and rebuilt in the worker exactly like a hand-written one; the stored body keeps
`recipe` (and `recipe_variant`) so the job can be set beside the book's numbers later.
Expanding a stored (already expanded) body again gives the same body: every field it holds
wins over the recipe's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from core.recipes.registry import get_recipe

RECIPE_FIELDS = ("recipe", "recipe_variant")


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` laid over it: objects merge key by key, anything else replaces.

    A `model` naming another `arch` replaces the recipe's model whole: the recipe's options
    belong to its own architecture."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        current = merged.get(key)
        if (
            isinstance(value, Mapping)
            and isinstance(current, dict)
            and not replaces(key, current, value)
        ):
            merged[key] = merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def replaces(key: str, current: Mapping[str, Any], value: Mapping[str, Any]) -> bool:
    """Whether an override object replaces the recipe's whole: a model of another arch."""
    return key == "model" and value.get("arch", current.get("arch")) != current.get("arch")


def lookup(body: Mapping[str, Any], dotted: str) -> Any:
    """The value at `dotted` (e.g. `finetune.source`) in a JSON body, None when absent."""
    value: Any = body
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def recipe_body(name: str, variant: str | None = None) -> dict[str, Any]:
    """The recipe's own body (with its variant applied), before any user override."""
    recipe = get_recipe(name)
    body = merge(recipe.spec, {"recipe": name})
    if variant is not None:
        body = merge(body, recipe.variant(variant).overrides)
        body["experiment"] = f"{body['experiment']}-{variant}"
        body["recipe_variant"] = variant
    return body


def expand_recipe(body: Mapping[str, Any]) -> dict[str, Any]:
    """The JobCreate body a request means: its recipe's, overridden by every field it gives.

    Raises ValueError naming what to fix: an unknown recipe or variant (listing the known ones),
    a variant without a recipe, or a field the recipe needs from the request (with the hint)."""
    name, variant = body.get("recipe"), body.get("recipe_variant")
    if name is None:
        if variant is not None:
            raise ValueError("recipe_variant needs a recipe; see GET /v1/recipes")
        return dict(body)
    if not isinstance(name, str) or not (variant is None or isinstance(variant, str)):
        raise ValueError("recipe and recipe_variant are names; see GET /v1/recipes")
    recipe = get_recipe(name)
    expanded = merge(recipe_body(name, variant), body)
    for field in recipe.requires:
        if lookup(expanded, field) is None:
            offer = (
                f', or run a variant ("recipe_variant": {recipe.variants[0].name!r})'
                if recipe.variants and variant is None
                else ""
            )
            raise ValueError(
                f"recipe {name!r} needs {field} from the request (the book uses "
                f"{recipe.book_dataset}){offer}"
            )
    return expanded


def variant_offer(name: str | None, variant: str | None) -> str:
    """For a recipe job refused because its data are absent: the variant that runs here."""
    if name is None or variant is not None:
        return ""
    recipe = get_recipe(name)
    if not recipe.variants:
        return ""
    variant_name = recipe.variants[0].name
    return f'; or run the recipe on data this machine has: "recipe_variant": "{variant_name}"'

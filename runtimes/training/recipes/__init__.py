"""The four fine-tuning recipes by technique name: each is a module with `Config` (a pydantic model of every
knob) and `build_trainer(config, model_source, prepared, output_dir, callbacks) -> transformers.Trainer`.

Looking a recipe up imports only its module; torch and trl are imported when a trainer is built.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from core.errors import UserError

RECIPES: dict[str, str] = {
    "sft": "runtimes.training.recipes.sft_recipe",
    "dpo": "runtimes.training.recipes.dpo_recipe",
    "rlvr": "runtimes.training.recipes.rlvr_recipe",
    "rlaif": "runtimes.training.recipes.rlaif_recipe",
}


def recipe(technique: str) -> ModuleType:
    """The recipe module for `technique` (sft, dpo, rlvr, rlaif)."""
    if technique not in RECIPES:
        from catalog.suggestions import unknown

        raise UserError(unknown("technique", technique, RECIPES))
    return importlib.import_module(RECIPES[technique])


def parse_config(technique: str, knobs: dict[str, Any]) -> Any:
    """The technique's config from plain values; a bad knob is a `UserError` naming it."""
    return recipe(technique).Config.parse(knobs)

"""The four fine-tuning recipes by technique name: each is a module with `Config` (a pydantic model of every
knob) and `build_trainer(config, model_source, prepared, output_dir, callbacks) -> transformers.Trainer`.

Looking a recipe up imports only its module; torch and trl are imported when a trainer is built.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Literal, get_args

from core.errors import UserError

# The techniques, each with its recipe module `<technique>_recipe`; every list of techniques is read from here.
Technique = Literal["sft", "dpo", "rlvr", "rlaif"]
RECIPES: dict[str, str] = {t: f"{__name__}.{t}_recipe" for t in get_args(Technique)}
TECHNIQUES: tuple[str, ...] = tuple(RECIPES)
TECHNIQUES_IN_WORDS = f"{', '.join(TECHNIQUES[:-1])} or {TECHNIQUES[-1]}"  # sft, dpo, rlvr or rlaif


def recipe(technique: str) -> ModuleType:
    """The recipe module for `technique` (one of `TECHNIQUES`)."""
    if technique not in RECIPES:
        from catalog.suggestions import unknown

        raise UserError(unknown("technique", technique, RECIPES))
    return importlib.import_module(RECIPES[technique])


def parse_config(technique: str, knobs: dict[str, Any]) -> Any:
    """The technique's config from plain values; a bad knob is a `UserError` naming it."""
    return recipe(technique).Config.parse(knobs)

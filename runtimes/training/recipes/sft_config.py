"""The SFT recipe's knobs: the shared ones plus how the loss is masked and batched.

A pydantic model only; `sft_recipe.build_trainer` turns it into TRL's `SFTConfig`.
"""
from __future__ import annotations

from pydantic import Field

from runtimes.training.recipes.base_config import RecipeConfig


class SftRecipeConfig(RecipeConfig):
    assistant_only_loss: bool = Field(
        True, description="conversations: learn only the assistant's turns (needs a template with "
                          "{% generation %} markers); prompt/completion rows always learn only the completion")
    packing: bool = Field(False, description="pack several short examples into one max_length row")
    padding_free: bool = Field(False, description="concatenate a batch with no padding (flash attention on GPU)")

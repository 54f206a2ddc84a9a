"""The DPO recipe's knobs: the shared ones plus the preference loss and its strength.

A pydantic model only; `dpo_recipe.build_trainer` turns it into TRL's `DPOConfig`.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from runtimes.training.recipes.base_config import RecipeConfig


class DpoRecipeConfig(RecipeConfig):
    learning_rate: float = Field(5e-6, gt=0, lt=1, description="peak learning rate (DPO wants small steps)")
    beta: float = Field(0.1, gt=0, description="how far the policy may move from the reference: lower moves further")
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = Field(
        "sigmoid", description="the preference loss: sigmoid is the original DPO")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="assumed share of mislabelled pairs")

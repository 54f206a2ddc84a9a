"""The RLVR recipe's knobs: the shared ones, GRPO's sampling knobs (also used by RLAIF) and the verifiable
rewards with their weights.

Pydantic models only; `rlvr_recipe.build_trainer` turns them into TRL's `GRPOConfig`.
"""
from __future__ import annotations

from pydantic import Field, model_validator

from runtimes.training.recipes.base_config import RecipeConfig
from runtimes.training.recipes.generation_groups import accumulation_for, fitting_generations, group_advice
from runtimes.training.rewards.combine import RewardSpec


class GrpoRecipeConfig(RecipeConfig):
    learning_rate: float = Field(1e-5, gt=0, lt=1, description="peak learning rate (RL wants small steps)")
    micro_batch: int = Field(8, ge=1, description="completions per forward/backward pass")
    max_length: int = Field(512, ge=8, description="prompt tokens kept (longer prompts are cut from the left)")
    num_generations: int = Field(8, ge=2, description="completions sampled per prompt; rewards are compared "
                                                      "within each group (when not set: 8, or the largest group "
                                                      "size that micro_batch × grad_accum holds whole)")
    max_completion_length: int = Field(256, ge=1, description="tokens generated per completion")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the completions")
    kl_beta: float = Field(0.0, ge=0, description="KL penalty towards the base model (0: none, no reference copy)")
    scale_rewards: bool = Field(True, description="divide each group's advantages by its reward spread")
    processes: int = Field(1, ge=1, description="ranks generating together: each step's completions are "
                                                "micro_batch × grad_accum × processes, in whole groups")

    @model_validator(mode="after")
    def _groups_fit(self) -> "GrpoRecipeConfig":
        batch = self.micro_batch * self.grad_accum * self.processes  # TRL's generation batch, over all ranks
        if batch % self.num_generations == 0:
            return self
        if "num_generations" not in self.model_fields_set:  # not the user's: the group size follows the batch
            fitting = fitting_generations(batch, self.num_generations)
            if fitting is not None:
                self.num_generations = fitting
                return self
            if "grad_accum" not in self.model_fields_set:  # a batch of one: accumulate whole groups instead
                self.grad_accum = accumulation_for(self.micro_batch, self.num_generations,
                                                   processes=self.processes)
                return self
        raise ValueError(group_advice(self.micro_batch, self.grad_accum, self.num_generations, "grad_accum",
                                      "gradient_accumulation", self.processes))


class RlvrRecipeConfig(GrpoRecipeConfig):
    rewards: list[RewardSpec] = Field(
        default_factory=lambda: [RewardSpec(name="numeric_answer")],
        description="verifiable rewards and their weights; default: the numeric answer (GSM8K's `#### n`)")

    @model_validator(mode="after")
    def _some_reward(self) -> "RlvrRecipeConfig":
        if not self.rewards:
            raise ValueError("give at least one reward")
        if not any(r.weight > 0 for r in self.rewards):
            raise ValueError("at least one reward needs a weight above 0")
        return self

"""Reinforcement learning from verifiable rewards: GRPO on `prompt` rows, each completion scored by the
rewards library (exact match, numeric answer, regex, JSON schema, sandboxed Python tests) with weights.

It builds the trainer and never calls `train()`; the job runner does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from runtimes.models.sources import ModelSource
from runtimes.training.recipes import trainer_setup as setup
from runtimes.training.recipes.rlvr_config import GrpoRecipeConfig, RlvrRecipeConfig
from runtimes.training.rewards.combine import build_reward

TECHNIQUE = "rlvr"
Config = RlvrRecipeConfig


def grpo_arguments(config: GrpoRecipeConfig, output_dir: Path, *, has_eval: bool,
                   reward_weights: list[float] | None = None) -> Any:
    """TRL's `GRPOConfig` for a GRPO-based recipe."""
    from trl import GRPOConfig

    args = setup.training_arguments(config, output_dir, has_eval=has_eval)
    # Evaluation generates whole groups too: its batch is the micro-batch rounded to whole groups (at least one).
    groups = max(1, config.micro_batch // config.num_generations)
    args["per_device_eval_batch_size"] = groups * config.num_generations
    return GRPOConfig(**args, num_generations=config.num_generations,
                      max_completion_length=config.max_completion_length, temperature=config.temperature,
                      beta=config.kl_beta, scale_rewards="group" if config.scale_rewards else "none",
                      reward_weights=reward_weights, log_completions=False)


def build_grpo_trainer(config: GrpoRecipeConfig, model_source: ModelSource, prepared: Any, output_dir: Path,
                       callbacks: list[Any] | None, reward_funcs: list[Any],
                       reward_weights: list[float] | None = None) -> Any:
    from trl import GRPOTrainer

    tokenizer, _ = setup.tokenizer_for(model_source)
    # GRPO cuts prompts itself only with vLLM; left truncation keeps the question's end, next to the reply.
    tokenizer.truncation_side = "left"
    tokenizer.model_max_length = config.max_length
    args = grpo_arguments(config, output_dir, has_eval=prepared.eval is not None, reward_weights=reward_weights)
    return GRPOTrainer(model=setup.load_policy(config, model_source), reward_funcs=reward_funcs, args=args,
                       train_dataset=prepared.train, eval_dataset=prepared.eval, processing_class=tokenizer,
                       peft_config=setup.lora_config(config, model_source), callbacks=list(callbacks or []))


def build_trainer(config: RlvrRecipeConfig, model_source: ModelSource, prepared: Any, output_dir: Path,
                  callbacks: list[Any] | None = None) -> Any:
    setup.require_columns(prepared, ("prompt",), TECHNIQUE)
    rewards = [build_reward(spec) for spec in config.rewards]
    for spec in config.rewards:  # a reward whose column is missing fails now, not at the first step
        column = spec.column or ("tests" if spec.name == "python_tests" else "answer")
        if spec.name not in ("regex", "json_schema"):
            setup.require_columns(prepared, ("prompt", column), TECHNIQUE)
    return build_grpo_trainer(config, model_source, prepared, output_dir, callbacks, rewards,
                              [spec.weight for spec in config.rewards])

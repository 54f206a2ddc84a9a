"""Reinforcement learning from AI feedback: GRPO whose reward is an LLM judge scoring each completion
with a rubric (see `judging.judge`). Judge failures are recorded in the run folder and skipped. On several ranks
every rank calls the same judge for its own completions, within its share of the job's limits.

It builds the trainer and never calls `train()`; the job runner does.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.errors import UserError
from runtimes.models.sources import ModelSource
from runtimes.training.recipes import trainer_setup as setup
from runtimes.training.recipes.rlaif_config import RlaifRecipeConfig
from runtimes.training.recipes.rlvr_recipe import build_grpo_trainer
from runtimes.judging.judge import Judge, judge_reward, load_rubric

TECHNIQUE = "rlaif"
Config = RlaifRecipeConfig


def build_judge(config: RlaifRecipeConfig, run_dir: Path, ranks: int | None = None) -> Judge:
    """The judge one process calls. The ranks of a distributed run share one judge server, each asking it about
    its own completions: each takes its share (`ranks`, default `processes`) of the job's rate limit and calls in
    flight, at least one."""
    ranks = config.processes if ranks is None else ranks
    api_key = None
    if config.judge_api_key_env:
        api_key = os.environ.get(config.judge_api_key_env)
        if not api_key:
            raise UserError(f"the judge's API key variable `{config.judge_api_key_env}` is not set")
    return Judge(model=config.judge_model, rubric=load_rubric(config.rubric, max_score=config.max_score),
                 run_dir=run_dir, api_base=config.judge_api_base, api_key=api_key, policy=config.policy,
                 concurrency=max(1, config.judge_concurrency // ranks),
                 requests_per_second=config.judge_requests_per_second / ranks,
                 retries=config.judge_retries, timeout_s=config.judge_timeout_s)


def build_trainer(config: RlaifRecipeConfig, model_source: ModelSource, prepared: Any, output_dir: Path,
                  callbacks: list[Any] | None = None) -> Any:
    setup.require_columns(prepared, ("prompt", "reference"), TECHNIQUE)
    judge = build_judge(config, Path(output_dir))
    trainer = build_grpo_trainer(config, model_source, prepared, output_dir, callbacks, [judge_reward(judge)])
    trainer.lathe_judge = judge  # the job runner reports the judge's calls and failures
    return trainer

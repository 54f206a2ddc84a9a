"""The RLAIF recipe's knobs: GRPO's (shared with RLVR) plus the judge: its model, endpoint, rubric and how
it is called.

A pydantic model only; `rlaif_recipe.build_trainer` builds the judge and TRL's `GRPOConfig` from it.
"""
from __future__ import annotations

from pydantic import Field

from runtimes.training.recipes.rlvr_config import GrpoRecipeConfig


class RlaifRecipeConfig(GrpoRecipeConfig):
    judge_model: str = Field(description="the judge, as a LiteLLM model name (e.g. `openai/gpt-4o-mini`, "
                                         "`ollama/llama3`, `openai/NAME` with judge_api_base for a local server)")
    judge_api_base: str | None = Field(None, description="base URL of an OpenAI-compatible judge server")
    judge_api_key_env: str | None = Field(None, description="environment variable holding the judge's API key")
    rubric: str = Field("helpfulness", description="a built-in rubric (helpfulness, faithfulness, summary_quality, "
                                                   "tone_policy), a .jinja file, or Jinja text")
    policy: str | None = Field(None, description="tone_policy: the policy replies must follow")
    max_score: float = Field(10.0, gt=0, description="the top of the rubric's score scale")
    judge_concurrency: int = Field(4, ge=1, le=64, description="judge calls in flight at once (the job's, "
                                                                 "shared by its ranks)")
    judge_requests_per_second: float = Field(5.0, gt=0, description="rate limit of judge calls (the job's, shared "
                                                                    "by its ranks)")
    judge_retries: int = Field(2, ge=0, le=10, description="retries of a failed judge call (with backoff)")
    judge_timeout_s: float = Field(60.0, gt=0, description="time limit of one judge call")

"""Rewards chosen by name with weights (`RewardSpec`), built into TRL reward functions and combined.

GRPO can weight several reward functions itself (`reward_weights`); `combine` gives the same weighted sum
as one function, for evaluation and for callers outside GRPO. A None score (no score) is left out, never
counted as 0. It never runs a model.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import UserError
from runtimes.training.rewards.verifiable import RewardFunction, _named

RewardName = Literal["exact_match", "numeric_answer", "regex", "json_schema", "python_tests"]


class RewardSpec(BaseModel):
    """One verifiable reward and its weight."""
    model_config = ConfigDict(extra="forbid")

    name: RewardName = Field(description="which verifiable check scores a completion")
    weight: float = Field(1.0, ge=0, description="its share in the combined reward")
    column: str | None = Field(None, description="the dataset column with the expected answer or tests "
                                                 "(default: `answer`, or `tests` for python_tests)")
    pattern: str | None = Field(None, description="regex: the pattern a good completion contains")
    full_match: bool = Field(False, description="regex: the pattern must match the whole completion")
    json_schema: dict[str, Any] | None = Field(None, description="json_schema: the schema a completion must satisfy")
    strict: bool = Field(False, description="numeric_answer: only a `#### n` line counts, not the last number")
    timeout_s: float = Field(5.0, gt=0, le=120, description="python_tests: wall-clock limit per run")
    memory_mb: int = Field(256, ge=32, le=16_384, description="python_tests: address-space limit per run")

    @model_validator(mode="after")
    def _needs(self) -> "RewardSpec":
        if self.name == "regex" and not self.pattern:
            raise ValueError("the regex reward needs a `pattern`")
        if self.name == "json_schema" and self.json_schema is None:
            raise ValueError("the json_schema reward needs a `json_schema`")
        return self

    @classmethod
    def parse(cls, text: str) -> "RewardSpec":
        """`name[:weight]`, as the CLI's `--reward numeric_answer:2` gives it (regex/json_schema need the API)."""
        name, _, weight = text.strip().partition(":")
        data: dict[str, Any] = {"name": name}
        if weight:
            try:
                data["weight"] = float(weight)
            except ValueError:
                raise UserError(f"reward `{text}`: the weight after `:` must be a number") from None
        try:
            return cls.model_validate(data)
        except Exception as e:  # pydantic's message names the allowed rewards
            raise UserError(f"reward `{text}`: {_first_error(e)}") from None


def _first_error(e: Exception) -> str:
    errors = getattr(e, "errors", None)
    if callable(errors):
        err = errors()[0]
        return f"{'.'.join(str(x) for x in err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
    return str(e)


def build_reward(spec: RewardSpec) -> RewardFunction:
    from runtimes.training.rewards import python_tests as pt
    from runtimes.training.rewards import verifiable as v

    column = spec.column or ("tests" if spec.name == "python_tests" else "answer")
    if spec.name == "exact_match":
        return v.exact_match(column)
    if spec.name == "numeric_answer":
        return v.numeric_answer(column, strict=spec.strict)
    if spec.name == "regex":
        return v.regex_match(spec.pattern or "", full=spec.full_match)
    if spec.name == "json_schema":
        return v.json_schema(spec.json_schema or {})
    return pt.python_tests(column, pt.SandboxLimits(timeout_s=spec.timeout_s, memory_mb=spec.memory_mb))


def combine(parts: Sequence[tuple[RewardFunction, float]], name: str = "combined") -> RewardFunction:
    """One reward: the weighted sum of `parts`' scores; a completion no part scored gets None."""
    if not parts:
        raise UserError("no rewards to combine: give at least one")
    if any(w < 0 for _, w in parts):
        raise UserError("reward weights must be 0 or more")

    def reward(prompts: Any = None, completions: Sequence[Any] = (), **columns: Any) -> list[float | None]:
        scored = [(fn(prompts=prompts, completions=completions, **columns), w) for fn, w in parts]
        out: list[float | None] = []
        for i in range(len(completions)):
            values = [(s[i], w) for s, w in scored if s[i] is not None]
            out.append(sum(x * w for x, w in values) if values else None)
        return out
    return _named(reward, name)


def build_combined(specs: Sequence[RewardSpec]) -> RewardFunction:
    return combine([(build_reward(s), s.weight) for s in specs])

"""Whether a job is learning anything: a `TrainerCallback` that reads each logged step and counts the steps whose
training signal is missing or degenerate (no reward, a NaN or infinite loss, a zero gradient norm, a loss of
exactly zero where there is no reward). Above the allowed share of steps the job has not earned `succeeded`.

It only reads the logs; once the outcome is certain it asks the trainer to stop, so no more compute is spent.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any

from transformers import TrainerCallback

DEFAULT_MAX_SHARE = 0.5  # `max_degenerate_share`: more than this share of degenerate steps fails the job


def step_problem(logs: dict[str, Any]) -> str | None:
    """Why one logged training step carries no signal, or None when it does. GRPO logs a mean `reward` (NaN when
    every score failed) and a loss that rounds to 0 while it learns, so with a reward the loss is not judged."""
    def bad(v: Any) -> bool:
        return v is None or (isinstance(v, float) and not math.isfinite(v))

    rewarded = "reward" in logs
    if rewarded and bad(logs["reward"]):
        return "no reward (every reward call failed or gave no score)"
    if "loss" in logs and bad(logs["loss"]):
        return "the loss is not a number"
    if "grad_norm" in logs:
        if bad(logs["grad_norm"]):
            return "the gradient norm is not a number"
        if float(logs["grad_norm"]) == 0.0:
            return "the gradient norm is 0 (nothing to learn from)"
    if not rewarded and "loss" in logs and float(logs["loss"]) == 0.0:
        return "the loss is exactly 0"
    return None


class SignalCheck(TrainerCallback):
    """Counts training steps without signal; `verdict()` says why the job must fail, or None."""

    def __init__(self, max_share: float = DEFAULT_MAX_SHARE) -> None:
        self.max_share = max_share
        self.steps = 0
        self.problems: Counter[str] = Counter()

    @property
    def degenerate(self) -> int:
        return sum(self.problems.values())

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 (transformers' signature)
        logs = logs or {}
        if "loss" not in logs and "reward" not in logs or any(k.startswith("eval_") for k in logs) \
                or "train_loss" in logs:
            return control  # evaluation and the end-of-training summary are not training steps
        self.steps += 1
        problem = step_problem(logs)
        if problem:
            self.problems[problem] += 1
            planned = max(int(state.max_steps or 0), self.steps)
            if self.degenerate > self.max_share * planned:
                control.should_training_stop = True  # the job fails whatever the remaining steps do
        return control

    def verdict(self) -> str | None:
        if not self.steps or self.degenerate <= self.max_share * self.steps:
            return None
        worst, count = self.problems.most_common(1)[0]
        return (f"no training signal: {self.degenerate} of {self.steps} logged steps had none, over the "
                f"{self.max_share:.0%} allowed (`max_degenerate_share`); most often {worst} ({count} steps)")

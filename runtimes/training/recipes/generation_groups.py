"""GRPO scores each prompt's completions as one group, so the completions of one optimizer step (micro-batch ×
accumulation) must hold whole groups: the group size that fits a batch, and what to change when one does not.

Arithmetic only; it never decides for the user a value the user set.
"""
from __future__ import annotations

import math

MIN_GENERATIONS = 2  # GRPO's advantages compare completions within a group: one alone has nothing to compare


def fitting_generations(batch: int, preferred: int) -> int | None:
    """The group size for `batch` completions per step: `preferred` when it divides the batch, else the largest
    divisor below it (at least 2), else the smallest divisor above it; None when the batch is 1."""
    if batch < MIN_GENERATIONS:
        return None
    if batch % preferred == 0:
        return preferred
    divisors = [d for d in range(MIN_GENERATIONS, batch + 1) if batch % d == 0]
    below = [d for d in divisors if d <= preferred]
    return max(below) if below else min(divisors)


def accumulation_for(micro_batch: int, generations: int, at_least: int = 1) -> int:
    """The smallest accumulation, `at_least` or more, that makes micro-batch × accumulation hold whole groups."""
    step = generations // math.gcd(micro_batch, generations)
    return max(step, math.ceil(at_least / step) * step)


def group_advice(micro_batch: int, accumulation: int, generations: int, accumulation_name: str,
                 job_name: str | None = None) -> str:
    """Why the batch does not fit the group size, and the values that would (`job_name`: what a job's settings
    call the accumulation knob, when they name it differently)."""
    batch = micro_batch * accumulation
    fits = [d for d in range(MIN_GENERATIONS, min(batch, 64) + 1) if batch % d == 0]
    k = accumulation_for(micro_batch, generations)
    options = [f"{accumulation_name}={k} ({micro_batch} × {k} = {micro_batch * k})"]
    if fits:
        options.append("num_generations=" + " or ".join(str(d) for d in fits[-3:]))
    return (f"micro_batch × {accumulation_name} ({micro_batch} × {accumulation} = {batch}) must be a multiple of "
            f"num_generations ({generations}): each prompt's completions are scored as one group; use "
            + ", or ".join(options)
            + (f" (`{accumulation_name}` is `{job_name}` in a job's settings)" if job_name else ""))

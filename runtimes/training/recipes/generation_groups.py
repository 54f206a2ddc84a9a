"""GRPO scores each prompt's completions as one group, so the completions of one optimizer step (micro-batch ×
accumulation × ranks: TRL's generation batch) must hold whole groups: the group size that fits a batch, what to
change when one does not, and how the ranks of a distributed run share the generation.

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


def accumulation_for(micro_batch: int, generations: int, at_least: int = 1, processes: int = 1) -> int:
    """The smallest accumulation, `at_least` or more, that makes micro-batch × accumulation × processes hold whole
    groups."""
    step = generations // math.gcd(micro_batch * processes, generations)
    return max(step, math.ceil(at_least / step) * step)


def group_advice(micro_batch: int, accumulation: int, generations: int, accumulation_name: str,
                 job_name: str | None = None, processes: int = 1) -> str:
    """Why the batch does not fit the group size, and the values that would (`job_name`: what a job's settings
    call the accumulation knob, when they name it differently)."""
    ranks, times = (" × processes", f" × {processes}") if processes > 1 else ("", "")
    batch = micro_batch * accumulation * processes
    fits = [d for d in range(MIN_GENERATIONS, min(batch, 64) + 1) if batch % d == 0]
    k = accumulation_for(micro_batch, generations, processes=processes)
    options = [f"{accumulation_name}={k} ({micro_batch} × {k}{times} = {micro_batch * k * processes})"]
    if fits:
        options.append("num_generations=" + " or ".join(str(d) for d in fits[-3:]))
    spread = " (TRL's generation batch, spread over the ranks)" if processes > 1 else ""
    return (f"micro_batch × {accumulation_name}{ranks} ({micro_batch} × {accumulation}{times} = {batch}) must be a "
            f"multiple of num_generations ({generations}){spread}: each prompt's completions are scored as one "
            "group; use " + ", or ".join(options)
            + (f" (`{accumulation_name}` is `{job_name}` in a job's settings)" if job_name else ""))


def generation_split(micro_batch: int, accumulation: int, processes: int, generations: int,
                     strategy: str = "ddp") -> str:
    """How one optimizer step's completions are generated: by prompt group, and by rank when there are several."""
    batch = micro_batch * accumulation * processes
    prompts = batch // generations
    line = (f"Generation: each optimizer step samples {batch} completions, {generations} for each of {prompts} "
            f"prompt{'s' if prompts != 1 else ''}")
    if processes == 1:
        return line + "."
    lockstep = (f"; under {strategy} the ranks generate in lockstep (the sharded weights gathered), every one until "
                "the longest completion of all ends" if strategy in ("fsdp", "zero3") else "")
    return (line + f"; each of the {processes} ranks generates {micro_batch * accumulation} of them (micro_batch × "
            "gradient_accumulation) on its own device with transformers' generate, and the rewards of all ranks are "
            f"gathered before each prompt's group is compared, so a group may span ranks{lockstep}. Hence "
            "micro_batch × gradient_accumulation × processes must be a multiple of num_generations.")


def too_few_prompts(micro_batch: int, accumulation: int, processes: int, generations: int, rows: int) -> str | None:
    """Why `rows` prompts cannot make one step (TRL drops a generation batch short of whole prompts, so it would
    train no step at all), or None when they can."""
    prompts = micro_batch * accumulation * processes // generations
    if prompts <= rows:
        return None
    ranks, times = (" × processes", f" × {processes}") if processes > 1 else ("", "")
    return (f"each GRPO step takes {prompts} prompts (micro_batch × gradient_accumulation{ranks} / num_generations = "
            f"{micro_batch} × {accumulation}{times} / {generations}), more than the {rows} rows to train on, so no "
            "step would run: lower gradient_accumulation or micro_batch" + (", use fewer processes" if processes > 1
                                                                           else "") + ", or train on more rows")

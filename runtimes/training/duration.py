"""A job's duration measured, not modelled: a few warm-up steps of the real trainer on a sample of the real rows
time one optimizer step, one greedy reply and one scored reply time the base-vs-tuned evaluation, and the
estimate is setup + steps × step time + evaluation, to be compared with what the job really took.

It trains only a throwaway copy (in a temporary folder) and never touches the job store or the registry.
"""
from __future__ import annotations

import contextlib
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from transformers import PrinterCallback, TrainerCallback

RL = ("rlvr", "rlaif")
WARMUP_STEPS = 2  # timed steps after the first, which pays for one-off work (allocations, kernels, caches)


@dataclass(frozen=True)
class MeasuredDuration:
    steps: int             # optimizer steps the job will take
    setup_s: float         # loading the model, preparing the rows, building the trainer
    step_s: float          # one optimizer step after warm-up
    evaluation_s: float    # the base-vs-tuned comparison after training
    warmup_steps: int

    @property
    def training_s(self) -> float:
        return self.steps * self.step_s

    @property
    def total_s(self) -> float:
        return self.setup_s + self.training_s + self.evaluation_s

    def describe(self) -> str:
        return (f"about {_span(self.total_s)}, measured on {self.warmup_steps} warm-up steps of this model and "
                f"data: {self.step_s:.2f} s per optimizer step × {self.steps:,} steps = {_span(self.training_s)} of "
                f"training, plus {_span(self.setup_s)} to load and prepare and {_span(self.evaluation_s)} to "
                "evaluate base vs tuned")

    def to_json(self) -> dict[str, float]:
        return {"steps": self.steps, "setup_s": round(self.setup_s, 2), "step_s": round(self.step_s, 4),
                "evaluation_s": round(self.evaluation_s, 2), "warmup_steps": self.warmup_steps,
                "total_s": round(self.total_s, 1)}


def planned_steps(settings: dict[str, Any], plan_steps: int) -> int:
    """The optimizer steps a job takes: `max_steps` when set (more or fewer than the epochs give), else the plan's."""
    max_steps = int(settings.get("max_steps", -1) or -1)
    return max_steps if max_steps > 0 else plan_steps


def measure_duration(technique: str, settings: dict[str, Any], source: Any, prepared: Any, steps: int, *,
                     warmup_steps: int = WARMUP_STEPS) -> MeasuredDuration:
    """Time `warmup_steps` + 1 optimizer steps of the job's own trainer (its recipe, settings and model) on a
    seeded sample of its rows, and the evaluation's unit costs; `steps` is how many the job will take."""
    from runtimes.training.jobs.trainer_factory import build_trainer

    per_step = int(settings.get("micro_batch", 1)) * int(settings.get("gradient_accumulation", 1))
    if technique in RL:  # a GRPO batch counts completions: num_generations of them per prompt
        per_step = max(1, per_step // int(settings.get("num_generations", 2) or 2))
    rows = prepared.train
    picked = sorted(random.Random(int(settings.get("seed", 42))).sample(
        range(len(rows)), min(len(rows), per_step * (warmup_steps + 1))))
    sample = replace(prepared, train=rows.select(picked), eval=None)
    warm = {**settings, "max_steps": warmup_steps + 1, "checkpoint_every": 10**9}
    timer = _StepTimer()
    with _quiet(), tempfile.TemporaryDirectory(prefix="lathe-warmup-") as tmp:
        started = time.perf_counter()
        trainer = build_trainer(technique, warm, source, sample, Path(tmp), [timer])
        setup_s = time.perf_counter() - started
        trainer.remove_callback(PrinterCallback)  # a plan's output is the plan, not the warm-up's logs
        trainer.train()
        evaluation_s = _evaluation_cost(technique, settings, source, trainer, prepared)
    gaps = [b - a for a, b in zip(timer.ends, timer.ends[1:])] or [timer.ends[0] - timer.began]
    return MeasuredDuration(steps=steps, setup_s=setup_s, step_s=statistics.median(gaps),
                            evaluation_s=evaluation_s, warmup_steps=len(gaps))


def _evaluation_cost(technique: str, settings: dict[str, Any], source: Any, trainer: Any, prepared: Any) -> float:
    """Loading the base model again, plus one reply generated and one reference scored, times how many of each the
    comparison makes for both models (see `evaluation.compare`)."""
    from runtimes.training.evaluation import COMPARE_ROWS, SCORE_ROWS, completion_logprob, generate_replies
    from runtimes.models.sources import load_model

    held = prepared.eval if prepared.eval is not None and len(prepared.eval) else prepared.train
    row = held[0]
    model, tokenizer = trainer.model, trainer.processing_class
    started = time.perf_counter()
    load_model(source)
    load_s = time.perf_counter() - started
    generations = 2 * min(COMPARE_ROWS, len(held)) if technique != "dpo" else 0
    scores = {"sft": 2, "dpo": 4}.get(technique, 0) * min(SCORE_ROWS, len(held))
    generate_s = score_s = 0.0
    if generations:
        tokens = min(int(settings.get("max_completion_length") or 64), 128)
        prompt = list(row["prompt"]) if "prompt" in row else _prompt_of(row["messages"])
        started = time.perf_counter()
        generate_replies(model, tokenizer, [prompt], tokens)
        generate_s = time.perf_counter() - started
    if scores:
        prompt = list(row["prompt"]) if "prompt" in row else _prompt_of(row["messages"])
        reply = list(row.get("chosen") or row.get("completion") or row["messages"][len(prompt):])
        started = time.perf_counter()
        completion_logprob(model, tokenizer, prompt, reply)
        score_s = time.perf_counter() - started
    return load_s + generations * generate_s + scores * score_s


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No loading or tokenizing progress bars: a plan's output is the plan (and `--json` is only JSON)."""
    import datasets
    from transformers.utils import logging as hf_logging

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()
        if bars:
            datasets.enable_progress_bars()


def _prompt_of(messages: list[Any]) -> list[Any]:
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages))
    return list(messages[:last])


class _StepTimer(TrainerCallback):
    """Records when training began and when each optimizer step ended."""

    def __init__(self) -> None:
        self.began = 0.0
        self.ends: list[float] = []

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.began = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.ends.append(time.perf_counter())


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

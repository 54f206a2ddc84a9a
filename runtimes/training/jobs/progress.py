"""The `TrainerCallback` of a job: each logged step's metrics (loss, reward, grad norm, tokens/s, memory) go to
the job's progress and metrics and to MLflow, each saved checkpoint is recorded, and a stop request becomes
"checkpoint now,
then stop". It never changes what the trainer computes.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from runtimes.jobs.store import JobStore

_SKIP = {"epoch", "total_flos", "train_runtime", "train_samples_per_second", "train_steps_per_second",
         "train_loss", "num_input_tokens_seen", "train_tokens_per_second"}


class ProgressCallback(TrainerCallback):
    def __init__(self, store: JobStore, job_id: str, attempt: int, tracking: Any, stop: Callable[[], bool]) -> None:
        self.store, self.job_id, self.attempt, self.tracking, self.stop = store, job_id, attempt, tracking, stop
        self._last: tuple[float, int] | None = None

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001 (transformers' signature)
        self._last = (time.perf_counter(), int(state.num_input_tokens_seen or 0))
        self.store.add_event(self.job_id, "train_begin", f"training from step {state.global_step} of {state.max_steps}",
                             {"step": state.global_step, "max_steps": state.max_steps})

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if self.stop():
            control.should_save = True  # the trainer writes the checkpoint right after this hook
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
        values = {k: float(v) for k, v in (logs or {}).items()
                  if isinstance(v, int | float) and not isinstance(v, bool) and k not in _SKIP}
        if not values or "eval_loss" in values:
            return
        now, tokens = time.perf_counter(), int(state.num_input_tokens_seen or 0)
        if self._last is not None and now > self._last[0] and tokens > self._last[1]:
            values["tokens_per_s"] = (tokens - self._last[1]) / (now - self._last[0])
        self._last = (now, tokens)
        values["memory_mb"] = _memory_mb()
        step = int(state.global_step)
        self.store.add_metrics(self.job_id, self.attempt, step, values)
        self.store.set_progress(self.job_id, step, int(state.max_steps or 0) or None,
                                event=f"step {step} of {state.max_steps}")
        self.tracking.log_metrics(step, values)

    def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.store.record(self.job_id, checkpoint=str(path))
        self.store.add_event(self.job_id, "checkpoint", f"checkpoint at step {state.global_step}",
                             {"step": state.global_step, "path": str(path)})


def _memory_mb() -> float:
    """CUDA peak allocated where a GPU trains, else the process's resident memory."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    import psutil

    return psutil.Process().memory_info().rss / 2**20

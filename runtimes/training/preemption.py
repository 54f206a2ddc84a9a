"""Checkpointing for a job on preemptible (spot) machines: the checkpoint interval that minimises the expected time
lost (Young and Daly: sqrt(2 × checkpoint time × mean time between losses)), whether the notice's grace period holds
one more step and its checkpoint, and the expected saving against an on-demand machine, each with its reason.

Pure arithmetic on the plan's estimates; it never signals, times or writes anything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from runtimes.training.memory_estimate import gib

# Assumptions, stated in every explanation that uses them; a measured figure replaces each where the plan has one.
SPOT_DISCOUNT = 0.70                 # spot/preemptible prices run 60-90 % below on-demand on the large clouds
PREEMPTION_MEAN_S = 6 * 3600.0       # one preemption every 6 hours: a busy spot pool
NOTICELESS_MEAN_S = 24 * 3600.0      # losses without a usable notice (a crash, a host failure): one a day
WRITE_BYTES_PER_S = 500e6            # a local disk writing a checkpoint
RESTART_S = 60.0                     # a new machine loading the model and data before its first step
DEFAULT_GRACE_S = 30.0               # Google Cloud gives 30 s; AWS two minutes; Azure 30 s


@dataclass(frozen=True)
class PreemptionPlan:
    checkpoint_every: int   # optimizer steps between regular checkpoints
    step_s: float
    checkpoint_s: float
    grace_s: float
    notice_fits: bool       # the step in progress and its checkpoint fit in the grace period
    overhead: float         # expected extra running time, as a share of the training time
    saving: float           # expected cost saving against the same run on an on-demand machine
    reason: str

    def describe(self) -> str:
        return (f"Preemptible: checkpoint every {self.checkpoint_every} steps; expected saving about "
                f"{self.saving:.0%} against on-demand. {self.reason}")


def plan_preemption(steps: int, step_s: float, checkpoint_bytes: int, grace_s: float, *, restart_s: float = RESTART_S,
                    chosen_every: int | None = None) -> PreemptionPlan:
    """The regular checkpoint interval for a run of `steps` steps of `step_s` seconds whose checkpoint holds
    `checkpoint_bytes` (per rank: ranks write their shards at once), and what running it on spot machines saves.
    `chosen_every` is the user's interval, kept and costed instead of the chosen one."""
    steps, step_s = max(1, steps), max(step_s, 1e-3)
    checkpoint_s = max(checkpoint_bytes / WRITE_BYTES_PER_S, 0.01)
    notice_fits = step_s + checkpoint_s <= grace_s
    # With a notice that holds the step in progress and its checkpoint, a preemption loses no finished step: regular
    # checkpoints only guard against losses without notice. Otherwise every preemption falls back on them.
    mean_loss_s = NOTICELESS_MEAN_S if notice_fits else PREEMPTION_MEAN_S
    optimum_s = math.sqrt(2 * checkpoint_s * mean_loss_s)
    every = chosen_every or min(steps, max(1, round(optimum_s / step_s)))
    interval_s = every * step_s
    lost_per_preemption = (step_s if notice_fits else interval_s / 2) + restart_s
    overhead = (checkpoint_s / interval_s + lost_per_preemption / PREEMPTION_MEAN_S
                + (interval_s / 2 + restart_s) / NOTICELESS_MEAN_S)
    saving = 1 - (1 - SPOT_DISCOUNT) * (1 + overhead)
    notice = (f"the grace period of {grace_s:g} s holds the step in progress ({step_s:.2g} s) and its checkpoint "
              f"({checkpoint_s:.2g} s for {gib(checkpoint_bytes)} at an assumed {WRITE_BYTES_PER_S / 1e6:.0f} MB/s), "
              "so a preemption with notice loses no finished step and regular checkpoints only guard against a loss "
              f"without notice (assumed one a day)" if notice_fits else
              f"the grace period of {grace_s:g} s is shorter than a step ({step_s:.2g} s) plus its checkpoint "
              f"({checkpoint_s:.2g} s for {gib(checkpoint_bytes)} at an assumed {WRITE_BYTES_PER_S / 1e6:.0f} MB/s), "
              "so a preemption falls back on the last regular checkpoint and loses half an interval on average "
              "(preemptions assumed one every 6 hours)")
    interval = (f"every {every} steps is yours" if chosen_every else
                f"every {every} steps (~{interval_s:.3g} s) is the interval that loses least in expectation, "
                f"sqrt(2 × checkpoint time × mean time between such losses) = {optimum_s:.3g} s"
                + (", capped at the run's length" if every == steps and optimum_s > steps * step_s else ""))
    why = (f"{notice[0].upper()}{notice[1:]}; {interval}. Spot machines cost about {SPOT_DISCOUNT:.0%} less (typical "
           f"of the large clouds), less {overhead:.1%} more running time for checkpoints and restarts "
           f"({restart_s:.0f} s each).")
    return PreemptionPlan(every, step_s, checkpoint_s, grace_s, notice_fits, overhead, saving, why)

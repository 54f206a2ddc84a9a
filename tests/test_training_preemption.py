"""Spot-style preemption: the plan of a preemptible job chooses its checkpoint interval and costs the saving, with
the reason; a job whose worker, torchrun and ranks all get SIGTERM (a machine being taken away) checkpoints on every
rank at one step, goes back to the queue, and once started again continues on the loss curve of an uninterrupted
run. The 2 gloo ranks follow one process with the same global batch, before and after the preemption."""
from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import pytest

from tests.rank_processes import alive, rank_pids

from core.errors import UserError
from runtimes.training.preemption import (NOTICELESS_MEAN_S, PREEMPTION_MEAN_S, SPOT_DISCOUNT, WRITE_BYTES_PER_S,
                                          plan_preemption)

GB = 10**9


# --- the plan -----------------------------------------------------------------------------------------------------

def test_a_notice_that_holds_a_step_and_its_checkpoint_leaves_regular_checkpoints_for_losses_without_notice():
    p = plan_preemption(steps=10_000, step_s=2.0, checkpoint_bytes=GB, grace_s=30)
    assert p.notice_fits and p.checkpoint_s == pytest.approx(GB / WRITE_BYTES_PER_S)
    assert p.checkpoint_every == round(math.sqrt(2 * p.checkpoint_s * NOTICELESS_MEAN_S) / 2.0)
    assert "loses no finished step" in p.reason and "sqrt(2 × checkpoint time" in p.reason
    assert 0 < SPOT_DISCOUNT - p.saving < 0.01  # almost all of the spot discount is kept
    assert p.describe().startswith(f"Preemptible: checkpoint every {p.checkpoint_every} steps; expected saving "
                                   f"about {p.saving:.0%} against on-demand.")


def test_a_grace_period_shorter_than_a_step_and_its_checkpoint_falls_back_on_regular_ones_more_often():
    held = plan_preemption(steps=10_000, step_s=2.0, checkpoint_bytes=GB, grace_s=30)
    short = plan_preemption(steps=10_000, step_s=2.0, checkpoint_bytes=GB, grace_s=3)
    assert not short.notice_fits and "is shorter than a step (2 s) plus its checkpoint" in short.reason
    assert short.checkpoint_every == round(math.sqrt(2 * short.checkpoint_s * PREEMPTION_MEAN_S) / 2.0)
    assert short.checkpoint_every < held.checkpoint_every and short.saving < held.saving


def test_the_users_interval_is_kept_and_costed_and_a_short_run_is_capped():
    mine = plan_preemption(steps=1000, step_s=1.0, checkpoint_bytes=GB, grace_s=30, chosen_every=7)
    chosen = plan_preemption(steps=1000, step_s=1.0, checkpoint_bytes=GB, grace_s=30)
    assert mine.checkpoint_every == 7 and "every 7 steps is yours" in mine.reason
    assert mine.overhead > chosen.overhead  # checkpointing that often costs more than the chosen interval
    short = plan_preemption(steps=5, step_s=1.0, checkpoint_bytes=GB, grace_s=30)
    assert short.checkpoint_every == 5 and "capped at the run's length" in short.reason


@pytest.fixture(scope="module")
def ws(demos_workspace):
    return demos_workspace(rows=40)


def _spec(**settings):
    return {"model": "tiny", "table": "demos", "technique": "sft", "eval_fraction": 0.1,
            "settings": {"micro_batch": 2, "max_length": 32, "learning_rate": 1e-3, **settings}}


def test_a_preemptible_plan_shows_its_interval_and_saving_and_bad_settings_are_refused(ws):
    from runtimes.training.jobs.spec import JobSpec
    from runtimes.training.planning import plan_finetune

    plan = plan_finetune(ws, JobSpec.parse(_spec(preemptible=True, grace_period_s=20, max_steps=400)),
                         measure_speed=False)
    assert plan.settings["checkpoint_every"] == plan.preemption.checkpoint_every
    assert f"Preemptible: checkpoint every {plan.preemption.checkpoint_every} steps" in plan.explain()
    assert "grace period of 20 s" in plan.explain() and plan.to_json()["preemption"]["grace_s"] == 20
    plain = plan_finetune(ws, JobSpec.parse(_spec(max_steps=400)), measure_speed=False)
    assert plain.preemption is None and "Preemptible" not in plain.explain()
    for settings, message in [({"preemptible": "yes"}, "setting `preemptible` takes true or false, got 'yes'"),
                              ({"grace_period_s": 0}, "setting `grace_period_s` = 0 is out of range: it takes from 1 to 3,600")]:
        with pytest.raises(UserError, match=message):
            plan_finetune(ws, JobSpec.parse(_spec(**settings)), measure_speed=False)


# --- a preempted job with 2 CPU ranks -----------------------------------------------------------------------------

LOSS_TOLERANCE = 1e-4  # the same examples per step; only the order of float additions differs between 1 and 2 ranks


@pytest.mark.slow
def test_two_gloo_ranks_follow_one_process_and_a_preempted_job_resumes_on_the_same_curve(ws):
    from runtimes.jobs import lifecycle
    from runtimes.jobs.store import JobStore
    from tests.waiting import JOB_STALL_S, until

    store = JobStore(ws)
    steps = 8
    one = lifecycle.submit(ws, "finetune", _spec(max_steps=steps, gradient_accumulation=2, processes=1))
    assert lifecycle.wait(ws, one.id, timeout_s=JOB_STALL_S).status == "succeeded"
    two = lifecycle.submit(ws, "finetune", _spec(max_steps=steps, gradient_accumulation=1, processes=2,
                                                 preemptible=True, grace_period_s=300))
    assert two.plan["decisions"]["strategy"] == "ddp" and two.plan["decisions"]["effective_batch"] == 4
    assert "Preemptible: checkpoint every" in two.plan["explanation"]

    # The machine is taken away: every process of the job gets the notice at once, as at a shutdown.
    pids = until(lambda: store.get(two.id).step >= 2 and rank_pids(store, two.id, 1), ws)
    worker = store.get(two.id).pid
    for pid in [worker, *pids]:
        os.kill(pid, signal.SIGTERM)
    until(lambda: not any(alive(p) for p in [worker, *pids]), ws)
    preempted = store.get(two.id)
    assert preempted.status == "queued" and not preempted.stop_requested, store.events(two.id)[-3:]
    step = int(Path(preempted.checkpoint).name.split("-")[1])
    assert 2 <= step < steps
    assert {p.name for p in Path(preempted.checkpoint).glob("rng_state_*.pth")} == {"rng_state_0.pth",
                                                                                    "rng_state_1.pth"}
    notice = [e for e in store.events(two.id) if e.kind == "preempted"]
    assert len(notice) == 1 and f"checkpoint at step {step} on every rank" in notice[0].message
    assert notice[0].data["seconds_after_notice"] < notice[0].data["grace_period_s"]

    # Capacity returns: the next dispatch starts it again from the checkpoint of the notice.
    assert lifecycle.dispatch(ws) == [two.id]
    done = lifecycle.wait(ws, two.id, timeout_s=JOB_STALL_S)
    assert done.status == "succeeded", done.error
    losses = store.metrics(two.id, "loss")
    assert min(s for a, s, _, _ in losses if a == 2) == step + 1  # continued, not restarted
    curves = [{s: v for _, s, _, v in store.metrics(j.id, "loss")} for j in (one, two)]
    assert sorted(curves[0]) == sorted(curves[1]) == list(range(1, steps + 1))
    gap = max(abs(curves[0][s] - curves[1][s]) for s in curves[0])
    print(f"preempted at step {step}; losses, 1 process: {curves[0]}; 2 ranks: {curves[1]}; largest gap {gap:.2e}")
    assert gap < LOSS_TOLERANCE, curves
    assert [e.kind for e in store.events(two.id)].count("ranks") == 2  # one per attempt
    assert done.model_version and done.lineage["metrics"]["steps"] == steps  # evaluated, registered from rank 0's save
    assert not any(alive(p) for p in rank_pids(store, two.id, 2))

"""Peer recovery in the job system (`recovery` = peer, torchft): the plan says how a lost rank recovers and refuses
what peer recovery cannot cover; in a fine-tuning job of two CPU ranks (gloo), SIGKILL of one rank leaves the other
training, a replacement receives model and optimizer state from it (no checkpoint exists to read), the job's events
record the loss and the healing, and the loss curve follows an uninterrupted job's. The job test runs where torchft
is installed (`pip install lathe-ml[recovery]`)."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.rank_processes import alive

from core.errors import UserError
from runtimes.training.recovery import check_recovery, describe_recovery

PEER = {"processes": 2, "strategy": "ddp", "recovery": "peer"}


def test_peer_recovery_is_explained_and_what_it_cannot_cover_is_refused(monkeypatch):
    assert "the others train on without it" in describe_recovery(PEER)
    assert "wait until 2 ranks can step" in describe_recovery({**PEER, "min_ranks": 2})
    assert "restarts every rank from its last checkpoint" in describe_recovery({**PEER, "recovery": "disk"})
    assert describe_recovery({"processes": 1}) is None
    cases = [({**PEER, "recovery": "memory"}, "sft", "setting `recovery` = 'memory': it takes disk .* or peer"),
             ({**PEER, "processes": 1}, "sft", "`processes` is 1: set `processes` to 2 or more"),
             (PEER, "rlvr", "covers sft; rlvr is not covered yet"), (PEER, "dpo", "covers sft; dpo is not covered"),
             ({**PEER, "strategy": "fsdp"}, "sft", "needs strategy ddp, .* `fsdp` shards it"),
             ({**PEER, "min_ranks": 3}, "sft", "`min_ranks` = 3 is more than the 2 ranks: a step could never start")]
    for settings, technique, message in cases:
        with pytest.raises(UserError, match=message):
            check_recovery(technique, settings)
    check_recovery("sft", {"processes": 1})  # disk, the default, needs nothing
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchft" else real(name, *a))
    with pytest.raises(UserError, match=r"needs torchft, which is not installed: `pip install lathe-ml\[recovery\]`"):
        check_recovery("sft", PEER)


# --- a job of two CPU ranks, one SIGKILLed ------------------------------------------------------------------------

STEPS, KILL_AFTER = 12, 3
# The step in flight at the kill is not committed, and the replacement reads its share of the rows from the start:
# the curve bends a little, within this. (`min_ranks` 2: the survivor waits, so it never trains on half the batch.)
LOSS_TOLERANCE = 0.1


@pytest.mark.slow
def test_a_killed_rank_is_replaced_and_healed_from_its_peer_and_the_job_follows_the_uninterrupted_curve(
        demos_workspace):
    pytest.importorskip("torchft")
    from runtimes.jobs import lifecycle
    from runtimes.jobs.store import JobStore
    from tests.waiting import JOB_STALL_S, until

    ws = demos_workspace(rows=40)
    store = JobStore(ws)
    spec = {"model": "tiny", "table": "demos", "technique": "sft", "eval_fraction": 0.1,
            "settings": {"micro_batch": 2, "max_length": 32, "learning_rate": 1e-3, "max_steps": STEPS,
                         "checkpoint_every": STEPS, "processes": 2, "recovery": "peer",
                         "min_ranks": 2}}
    whole = lifecycle.submit(ws, "finetune", spec)
    job = lifecycle.submit(ws, "finetune", spec)
    assert "Recovery: peer." in job.plan["explanation"]

    def launched(job_id: str):
        return next((e for e in store.events(job_id) if e.kind == "launch"), None)

    launch = until(lambda: store.get(job.id).step >= KILL_AFTER and launched(job.id), ws)
    os.kill(launch.data["pids"][1], signal.SIGKILL)
    done = lifecycle.wait(ws, job.id, timeout_s=JOB_STALL_S)
    assert done.status == "succeeded", (done.error, [e.message for e in store.events(job.id)][-6:])
    events = store.events(job.id)
    lost = [e for e in events if e.kind == "rank_lost"]
    healed = [e for e in events if e.kind == "recovery"]
    assert len(lost) == 1 and lost[0].data["rank"] == 1 and "killed by SIGKILL" in lost[0].message
    assert lost[0].data["living"] == [0]
    assert len(healed) == 1 and healed[0].data["pid"] == lost[0].data["replacement_pid"]
    assert healed[0].data["step"] > KILL_AFTER and healed[0].data["bytes"] > 0  # the peer's step, not step 0
    checkpoints = sorted(p.name for p in (Path(done.checkpoint).parent).glob("checkpoint-*"))
    assert checkpoints == [f"checkpoint-{STEPS}"]  # nothing on disk the replacement could have read
    assert done.model_version and done.lineage["metrics"]["steps"] == STEPS
    assert not any(alive(p) for p in [*launch.data["pids"], lost[0].data["replacement_pid"]])

    assert lifecycle.wait(ws, whole.id, timeout_s=JOB_STALL_S).status == "succeeded"
    curves = [{s: v for _, s, _, v in store.metrics(j.id, "loss")} for j in (whole, job)]
    assert sorted(curves[0]) == sorted(curves[1]) == list(range(1, STEPS + 1))  # every step once, in one attempt
    gap = max(abs(curves[0][s] - curves[1][s]) for s in curves[0])
    print(f"healed: {healed[0].message}; losses, uninterrupted: {curves[0]}; recovered: {curves[1]}; gap {gap:.3g}")
    assert gap < LOSS_TOLERANCE, curves

"""Benchmark 3: a fine-tuning job killed with SIGKILL at step k and recovered from its last checkpoint gives the
same loss at every later step as an uninterrupted run of the same job (within 1e-5, fixed seeds). With
`--preempt`, every process of the job gets SIGTERM instead (a spot machine taken away): it checkpoints at the step
in progress, goes back to the queue and continues from there. `--processes 2` runs both jobs with 2 gloo ranks.

Run: .venv/bin/python bench/resume_determinism.py [--steps 40] [--kill-at 17] [--checkpoint-every 5]
     [--processes 2] [--preempt]
Real processes, a real workspace in a temporary folder, a tiny random-weight Qwen3 model.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.offline import apply_offline_env  # noqa: E402

apply_offline_env()

from catalog.importers import import_paths  # noqa: E402
from core.workspace import Workspace  # noqa: E402
from runtimes.jobs import lifecycle as launcher  # noqa: E402
from runtimes.jobs.lifecycle import recover  # noqa: E402
from runtimes.jobs.store import JobStore  # noqa: E402
from runtimes.training.tiny_models import build_tiny_model  # noqa: E402

TOLERANCE = 1e-5


def _losses(store: JobStore, job_id: str) -> dict[int, float]:
    out: dict[int, float] = {}
    for _, step, _, value in store.metrics(job_id, "loss"):
        out[step] = value  # the recovered attempt's rerun of a step replaces the killed attempt's
    return out


def _ranks(store: JobStore, job_id: str) -> list[int]:
    """torchrun and the ranks of the job's current attempt, once all have joined (a machine's end signals them all)."""
    while not (ranks := [e for e in store.events(job_id) if e.kind == "ranks"]):
        time.sleep(0.01)
    launch = [e for e in store.events(job_id) if e.kind == "launch"][-1]
    return [launch.data["launcher_pid"], *ranks[-1].data["pids"]]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--kill-at", type=int, default=17)
    ap.add_argument("--checkpoint-every", type=int, default=5)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--preempt", action="store_true", help="SIGTERM every process of the job instead of SIGKILL")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.create()
        rows = [{"prompt": f"Where is order {i}?", "completion": f"Order {i} ships on day {i % 7}."} for i in range(80)]
        (Path(tmp) / "demos.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        import_paths(ws, [Path(tmp) / "demos.jsonl"])
        build_tiny_model("qwen3", ws.root / "models" / "base" / "tiny",
                         [r["prompt"] + " " + r["completion"] for r in rows], hidden=64, layers=2, vocab_size=400)
        spec = {"model": "tiny", "table": "demos", "technique": "sft",
                "settings": {"max_steps": a.steps, "checkpoint_every": a.checkpoint_every, "learning_rate": 1e-3,
                             "micro_batch": 4, "max_length": 48, "seed": 7,
                             "processes": a.processes, "preemptible": a.preempt, "grace_period_s": 300.0}}
        store = JobStore(ws)

        whole = launcher.wait(ws, launcher.submit(ws, "finetune", spec).id)
        assert whole.status == "succeeded", whole.error

        job = launcher.submit(ws, "finetune", spec)
        while store.get(job.id).step < a.kill_at:
            time.sleep(0.005)
        pid = store.get(job.id).pid
        ranks = _ranks(store, job.id) if a.processes > 1 and a.preempt else []
        for p in [pid, *ranks]:
            os.kill(p, signal.SIGTERM if a.preempt else signal.SIGKILL)
        killed_at = store.get(job.id).step
        while launcher.is_worker_alive(pid, job.id):
            time.sleep(0.05)
        ckpt = store.get(job.id).checkpoint
        if a.preempt:
            assert store.get(job.id).status == "queued", store.events(job.id)[-1].message
            launcher.dispatch(ws)  # capacity returns
        else:
            recover(ws)
        resumed = launcher.wait(ws, job.id)
        assert resumed.status == "succeeded", resumed.error

        ref, got = _losses(store, whole.id), _losses(store, job.id)
        resumed_from = int(Path(ckpt).name.split("-")[1]) if ckpt else 0
        later = [s for s in sorted(ref) if s > resumed_from]
        diffs = [abs(ref[s] - got[s]) for s in later]
        worst = max(diffs)
        print(f"steps {a.steps}, {a.processes} process(es); {'SIGTERM' if a.preempt else 'SIGKILL'} at step "
              f"{killed_at}; resumed from checkpoint-{resumed_from}; "
              f"compared steps {later[0]}..{later[-1]} ({len(later)} steps)")
        print(f"max |loss difference| = {worst:.3g} (tolerance {TOLERANCE:g}); "
              f"final loss {ref[a.steps]:.6f} uninterrupted, {got[a.steps]:.6f} resumed")
        print("PASS" if worst <= TOLERANCE and set(later) <= set(got) else "FAIL")
        return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())

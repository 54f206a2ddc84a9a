"""Benchmark: peer recovery inside the job system. One fine-tuning job (SFT, a tiny Qwen3, 2 CPU ranks with gloo,
`recovery = peer`) has rank 1 SIGKILLed after step K; prints the job's events around the kill, the time from the
kill to rank 0's next step, and when and how the replacement was healed.

Run: PYTHONPATH=$PWD .venv/bin/python bench/peer_recovery_job.py [--steps 300] [--kill-after 5] [--min-ranks 1]
     (torchft 0.2.0: `pip install lathe-ml[recovery]`)
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--kill-after", type=int, default=5)
    ap.add_argument("--min-ranks", type=int, default=1)
    a = ap.parse_args()
    from catalog.importers import import_paths
    from core.workspace import Workspace
    from runtimes.jobs import lifecycle
    from runtimes.jobs.store import JobStore
    from runtimes.training.tiny_models import build_tiny_model

    with tempfile.TemporaryDirectory() as d:
        ws = Workspace(Path(d) / "ws")
        ws.create()
        rows = [{"prompt": f"Where is order {i}?", "completion": f"Order {i} ships on day {i % 7}."} for i in range(40)]
        (Path(d) / "demos.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        import_paths(ws, [Path(d) / "demos.jsonl"])
        build_tiny_model("qwen3", ws.root / "models" / "base" / "tiny", [r["prompt"] + " " + r["completion"]
                                                                          for r in rows],
                         hidden=32, layers=1, heads=2, kv_heads=1, vocab_size=320)
        store = JobStore(ws)
        job = lifecycle.submit(ws, "finetune", {
            "model": "tiny", "table": "demos", "technique": "sft", "eval_fraction": 0.1,
            "settings": {"micro_batch": 2, "max_length": 32, "learning_rate": 1e-3, "max_steps": a.steps,
                         "checkpoint_every": 5, "processes": 2, "recovery": "peer", "min_ranks": a.min_ranks}})
        while True:
            launch = next((e for e in store.events(job.id) if e.kind == "launch"), None)
            if launch and store.get(job.id).step >= a.kill_after:
                break
            if store.get(job.id).status in ("failed", "succeeded"):
                raise SystemExit(f"the job ended before step {a.kill_after}: {store.get(job.id).error}")
            time.sleep(0.01)
        killed = time.time()
        os.kill(launch.data["pids"][1], signal.SIGKILL)
        done = lifecycle.wait(ws, job.id, timeout_s=3600)
        events = store.events(job.id)
        for e in events:
            if e.kind in ("rank_lost", "recovery", "status") or (e.kind == "progress" and abs(e.at - killed) < 2):
                print(f"{e.at - killed:+8.2f} s  {e.kind}: {e.message}")
        steps = [(e.at, e.message) for e in events if e.kind == "progress" and e.at > killed]
        print(f"job {done.status}; rank 0's steps after the kill: {steps[0][1]} at +{steps[0][0] - killed:.2f} s, "
              f"{steps[1][1]} at +{steps[1][0] - killed:.2f} s (the step in flight at the kill does not commit)")
        return 0 if done.status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: one data-parallel job of two workers (torchft replica groups over gloo, a tiny Qwen3), one worker
SIGKILLed at step K, recovered (a) from the last disk checkpoint, every worker restarting from it as a job restart
does, and (b) from a peer, torchft's way: the survivor keeps training with a per-step quorum (Lighthouse + Manager)
and the replacement receives model and optimizer state from it over the network instead of reading a checkpoint.
Prints downtime (from the kill to the first step after it), lost steps, the ratio, and the loss after recovery
against an uninterrupted run.

Run: PYTHONPATH=$PWD:/path/to/torchft .venv/bin/python bench/checkpointless_recovery.py [--steps 120] [--kill-at 17]
     [--checkpoint-every 5] [--min-replicas 1|2] [--min-step-s 0.5]   (torchft 0.2.0: `pip install torchft==0.2.0`, or `pip install lathe-ml[recovery]`)
Real processes, real sockets on loopback; each worker prints one JSON line per committed step.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BATCH, LENGTH = 4, 24


# --- one worker (replica group of one process) -------------------------------------------------------------------

def worker(a: argparse.Namespace) -> int:
    import torch
    from torch.distributed import TCPStore
    from torchft import Manager, Optimizer, ProcessGroupGloo
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    torch.set_num_threads(1)
    out = Path(a.out)
    tok = AutoTokenizer.from_pretrained(a.model)
    rows = [f"Where is order {i}? Order {i} ships on day {i % 7}." for i in range(400)]
    enc = tok(rows, padding="max_length", truncation=True, max_length=LENGTH, return_tensors="pt")
    model = AutoModelForCausalLM.from_pretrained(a.model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def state_dict() -> dict:
        return {"model": model.state_dict(), "optim": opt.state_dict()}

    def load_state_dict(sd: dict) -> None:
        model.load_state_dict(sd["model"])
        opt.load_state_dict(sd["optim"])

    store = TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    manager = Manager(pg=ProcessGroupGloo(timeout=timedelta(seconds=5)), min_replica_size=1,
                      load_state_dict=load_state_dict, state_dict=state_dict, replica_id=f"worker_{a.worker}",
                      store_addr="127.0.0.1", store_port=store.port, rank=0, world_size=1,
                      lighthouse_addr=a.lighthouse, timeout=timedelta(seconds=10),
                      quorum_timeout=timedelta(seconds=600))
    optim = Optimizer(manager, opt)
    ckpt = out / f"checkpoint-worker{a.worker}.pt"
    if a.resume and ckpt.is_file():
        saved = torch.load(ckpt, weights_only=False)
        load_state_dict(saved["state"])
        manager.load_state_dict(saved["torchft"])
    (out / f"ready-{a.generation}-{a.worker}").touch()
    while not a.replacement and not all((out / f"ready-{a.generation}-{w}").exists() for w in range(a.workers)):
        time.sleep(0.01)  # the first quorum holds both workers, so the uninterrupted curve is one world size
    log = open(out / f"worker{a.worker}.jsonl", "a", buffering=1)
    while manager.current_step() < a.steps:
        step, started = manager.current_step(), time.time()
        i = (step * a.workers + a.worker) * BATCH % (len(rows) - BATCH)
        ids, mask = enc["input_ids"][i:i + BATCH], enc["attention_mask"][i:i + BATCH]
        optim.zero_grad()  # starts this step's quorum: a replacement is healed from a peer here
        loss = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
        loss.backward()
        # The manager's allreduce averages over this step's quorum; a dead peer turns it into an error that only
        # makes this step uncommitted. (torchft's DDP wrapper asserts in its comm hook on that error on gloo.)
        for work in [manager.allreduce(p.grad) for p in model.parameters() if p.grad is not None]:
            work.wait()
        optim.step()  # commits only when every participant's allreduce succeeded
        time.sleep(max(0.0, started + a.min_step_s - time.time()))  # stands for a real model's step time
        if manager.current_step() > step:
            log.write(json.dumps({"step": manager.current_step(), "loss": float(loss.detach()), "started": started,
                                  "t": time.time(), "pid": os.getpid(),
                                  "participants": manager.num_participants()}) + "\n")
            if a.checkpoint_every and manager.current_step() % a.checkpoint_every == 0:
                tmp = ckpt.with_suffix(".tmp")
                torch.save({"state": state_dict(), "torchft": manager.state_dict()}, tmp)
                os.replace(tmp, ckpt)
    log.close()
    # Replicas that agree hold the same weights and optimizer moments: a checksum of both, to compare.
    moments = [v for st in opt.state.values() for v in st.values() if torch.is_tensor(v) and v.dim()]
    total = sum(float(t.double().sum()) for t in [*model.parameters(), *moments])
    (out / f"final-{a.worker}.txt").write_text(repr(total))
    manager.shutdown(wait=False)
    return 0


# --- the benchmark ----------------------------------------------------------------------------------------------

def _steps(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _start(a: argparse.Namespace, out: Path, lighthouse: str, w: int, *, resume=False, replacement=False,
           checkpoint_every: int = 0, generation: int = 0) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--worker", str(w), "--out", str(out), "--model", str(out.parent / "tiny"),
           "--lighthouse", lighthouse, "--steps", str(a.steps), "--checkpoint-every", str(checkpoint_every),
           "--generation", str(generation), "--min-step-s", str(a.min_step_s)]
    cmd += ["--resume"] * resume + ["--replacement"] * replacement
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.Popen(cmd, env=env, stdout=open(out / f"w{w}.log", "ab"), stderr=subprocess.STDOUT)


def run(a: argparse.Namespace, tmp: Path, mode: str) -> dict:
    """mode: 'whole' (uninterrupted), 'disk' (all restart from the last checkpoint), 'peer' (torchft healing)."""
    os.environ.setdefault("RUST_LOG", "warn")  # the Lighthouse logs every quorum otherwise
    from torchft._torchft import LighthouseServer

    out = tmp / mode
    out.mkdir()
    lighthouse = LighthouseServer(bind="[::]:0", min_replicas=a.min_replicas, join_timeout_ms=60_000, quorum_tick_ms=20,
                                  heartbeat_timeout_ms=1000)
    every = a.checkpoint_every if mode == "disk" else 0
    procs = [_start(a, out, lighthouse.address(), w, checkpoint_every=every) for w in range(2)]
    result: dict = {"mode": mode}
    if mode != "whole":
        while not _steps(out / "worker1.jsonl") or _steps(out / "worker1.jsonl")[-1]["step"] < a.kill_at:
            time.sleep(0.002)
            if procs[1].poll() is not None:
                raise SystemExit(f"worker 1 ended early; see {out / 'w1.log'}")
        killed_t = time.time()
        os.kill(procs[1].pid, signal.SIGKILL)
        procs[1].wait()
        at_kill = max(s["step"] for s in _steps(out / "worker0.jsonl") + _steps(out / "worker1.jsonl"))
        if mode == "disk":
            procs[0].kill()  # a data-parallel job restarts as a whole from its last checkpoint
            procs[0].wait()
            procs = [_start(a, out, lighthouse.address(), w, resume=True, checkpoint_every=every, generation=1)
                     for w in range(2)]
        else:
            procs[1] = _start(a, out, lighthouse.address(), 1, replacement=True)
        result.update(killed_t=killed_t, at_kill=at_kill)
    live, live_replacement = {p.pid for p in procs}, procs[1].pid
    for p in procs:
        if p.wait() != 0:
            tails = "\n".join(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-25:])
                              for f in sorted(out.glob("w*.log")))
            raise SystemExit(f"{tails}\na worker of the {mode} run failed (exit code {p.returncode})")
    lighthouse.shutdown()
    result["curve"] = {s["step"]: s["loss"] for s in _steps(out / "worker0.jsonl")}  # a later rerun replaces
    if mode != "whole":
        # The first step begun after the kill by a process that lives on: the survivor's (peer) or a restarted one's.
        logs = [s for w in (0, 1) for s in _steps(out / f"worker{w}.jsonl")]
        after = sorted((s for s in logs if s["started"] > result["killed_t"] and s["pid"] in live), key=lambda s: s["t"])
        first = after[0]
        result["downtime_s"] = first["t"] - result["killed_t"]
        reached_before = max(s["step"] for s in logs if s["t"] < first["started"])
        result["lost_steps"] = reached_before - (first["step"] - 1)  # committed, then computed again
        back = [s for s in after if s["pid"] == live_replacement][0]
        result["replacement_first_step_s"] = back["t"] - result["killed_t"]
        result["replacement_first_step"] = back["step"]
        reached = [s for s in after if s["step"] >= result["at_kill"] + 1][0]
        result["back_to_kill_step_s"] = reached["t"] - result["killed_t"]
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--kill-at", type=int, default=17)
    ap.add_argument("--checkpoint-every", type=int, default=5)
    ap.add_argument("--worker", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--generation", type=int, default=0)
    ap.add_argument("--min-replicas", type=int, default=1, help="1: the survivor trains on alone; 2: it waits")
    ap.add_argument("--min-step-s", type=float, default=0.5, help="a step's least duration, standing for a real "
                    "model's, so the survivor does not finish the job before a replacement has started")
    ap.add_argument("--out"), ap.add_argument("--model"), ap.add_argument("--lighthouse")
    ap.add_argument("--resume", action="store_true"), ap.add_argument("--replacement", action="store_true")
    a = ap.parse_args()
    if a.worker is not None:
        return worker(a)
    from runtimes.training.tiny_models import build_tiny_model

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = [f"Where is order {i}? Order {i} ships on day {i % 7}." for i in range(400)]
        build_tiny_model("qwen3", tmp / "tiny", rows, hidden=64, layers=2, vocab_size=400)
        whole, disk, peer = (run(a, tmp, m) for m in ("whole", "disk", "peer"))
        print(f"steps {a.steps} (at least {a.min_step_s:g} s each), 2 workers (torchft replica groups, gloo), "
              f"SIGKILL of worker 1 at step {a.kill_at}; disk checkpoints every {a.checkpoint_every} steps; "
              f"quorum of at least {a.min_replicas} worker(s)")
        for r, name in ((disk, "(a) disk checkpoint, all restart"), (peer, "(b) from a peer (torchft)")):
            gap = max(abs(r["curve"][s] - whole["curve"][s]) for s in whole["curve"] if s > a.kill_at)
            r["gap"] = gap
            print(f"{name}: downtime {r['downtime_s']:.2f} s (kill -> first step after), lost steps "
                  f"{r['lost_steps']}, replacement's first step (step {r['replacement_first_step']}) after "
                  f"{r['replacement_first_step_s']:.2f} s, back past step "
                  f"{r['at_kill']} after {r['back_to_kill_step_s']:.2f} s; max |loss - uninterrupted| after the kill "
                  f"{gap:.3g} (worker 0)")
        saved = 1 - peer["downtime_s"] / disk["downtime_s"]
        print(f"downtime ratio peer/disk = {peer['downtime_s'] / disk['downtime_s']:.3f} ({saved:.0%} less); "
              f"to get back past the kill step: {peer['back_to_kill_step_s'] / disk['back_to_kill_step_s']:.3f}")
        print(f"final loss: uninterrupted {whole['curve'][a.steps]:.4f}, disk {disk['curve'][a.steps]:.4f}, "
              f"peer {peer['curve'][a.steps]:.4f}")
        print("PASS" if saved >= 0.8 else "BELOW GOAL (80 % less downtime)")
        return 0


if __name__ == "__main__":
    sys.exit(main())

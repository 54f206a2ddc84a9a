"""FSDP2 on CPU ranks (gloo): a tiny model trains on 2 ranks with sharded (DCP) checkpoints, then its mid-run
checkpoint is resumed on 1 rank with the accumulation that keeps the global batch; prints both loss curves after
the checkpoint and their largest difference.

    PYTHONPATH=$PWD .venv/bin/python bench/fsdp_world_size.py [--steps 8]

Each phase is one `torchrun --standalone` of this file (`--phase`); the driver compares what they wrote.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MICRO, GLOBAL = 2, 4


def phase(folder: Path, steps: int, resume: str | None) -> None:
    """One torchrun rank: train the tiny model with FSDP2 through the Trainer, from `resume` if given."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from runtimes.training.jobs.sharded_checkpoint import (Topology, TopologyRecord, enable_cpu_fsdp,
                                                           resume_accumulation)
    from runtimes.training.recipes.trainer_setup import distributed_arguments

    world = int(os.environ["WORLD_SIZE"])
    accumulation = GLOBAL // (MICRO * 2)
    if resume:
        accumulation = resume_accumulation(Path(resume), "fsdp", world, MICRO, accumulation)
    ids = torch.randint(0, 300, (64, 16), generator=torch.Generator().manual_seed(0)).tolist()
    args = TrainingArguments(output_dir=str(folder / "out"), max_steps=steps, per_device_train_batch_size=MICRO,
                             gradient_accumulation_steps=accumulation, learning_rate=1e-3, logging_steps=1,
                             save_steps=steps // 2, report_to=[], disable_tqdm=True, use_cpu=True, seed=0,
                             **distributed_arguments("fsdp", cuda=False))
    trainer = Trainer(model=AutoModelForCausalLM.from_pretrained(str(folder / "tiny")), args=args,
                      train_dataset=Dataset.from_dict({"input_ids": ids, "labels": ids}),
                      callbacks=[TopologyRecord(Topology(strategy="fsdp", world_size=world, micro_batch=MICRO,
                                                         gradient_accumulation=accumulation))])
    enable_cpu_fsdp(trainer)
    trainer.train(resume_from_checkpoint=resume)
    if trainer.is_world_process_zero():
        losses = {h["step"]: h["loss"] for h in trainer.state.log_history if "loss" in h}
        (folder / f"losses-{world}.json").write_text(json.dumps(losses), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--resume", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.phase:
        return phase(Path(a.phase), a.steps, a.resume)
    from runtimes.training.tiny_models import build_tiny_model

    folder = Path(tempfile.mkdtemp(prefix="fsdp-world-"))
    build_tiny_model("qwen3", folder / "tiny", [f"Where is order {i}? It ships on day {i % 7}." for i in range(40)],
                     hidden=32, layers=1, heads=2, kv_heads=1, vocab_size=320)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    middle = folder / "out" / f"checkpoint-{a.steps // 2}"
    for ranks, resume in ((2, None), (1, middle)):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", __file__,
               "--phase", str(folder), "--steps", str(a.steps)] + (["--resume", str(resume)] if resume else [])
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    two, one = (json.loads((folder / f"losses-{n}.json").read_text()) for n in (2, 1))
    after = [s for s in one if int(s) > a.steps // 2]
    gap = max(abs(two[s] - one[s]) for s in after)
    shards = sorted(p.name for p in (middle / "pytorch_model_fsdp_0").iterdir())
    print(f"checkpoint at step {a.steps // 2} written by 2 ranks: {shards}")
    print("steps " + ", ".join(after) + f" on 2 ranks: {[round(two[s], 6) for s in after]}")
    print("steps " + ", ".join(after) + f" resumed on 1 rank: {[round(one[s], 6) for s in after]}")
    print(f"largest loss difference: {gap:.2e}")


if __name__ == "__main__":
    main()

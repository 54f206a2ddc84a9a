"""Benchmark of SFT training throughput on CPU: (1) a Lathe SFT run (`prepare_dataset` from a DuckDB workspace
table, the `sft` recipe's `build_trainer`) against a plain TRL script with the same model, data and settings
(gradient checkpointing included), target ratio >= 0.95; (2) Lathe's automatic configuration against TRL's
defaults on variable-length GSM8K, checkpointing the same on both sides, target >= 1.3x. Runs alternate and each figure is the median of `--repeat` runs.

Tokens/s is counted the same way for every run: non-padding tokens fed to the model's forward, over the wall
time of the training steps after `--warmup` steps. It never asserts or writes outside a temporary folder.

    .venv/bin/python bench/sft_throughput.py [--steps 20] [--repeat 3] [--warmup 2] [--rows 400]
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.offline import apply_offline_env  # noqa: E402

apply_offline_env()

from core.workspace import Workspace  # noqa: E402

GSM8K = ROOT.parent / "shared" / "data" / "gsm8k_test.jsonl"
TABLE = "gsm8k"
# Llama-shaped, about 23 M parameters with an 8,000-token vocabulary trained on the data.
MODEL = dict(hidden=512, layers=6, heads=8, kv_heads=4, vocab_size=8000)
# The settings both pipelines of comparison 1 share. Gradient checkpointing is named on both sides: TRL's
# `SFTConfig` turns it on by default and Lathe's recipe leaves it off unless memory needs it.
SAME = dict(micro_batch=4, max_length=256, learning_rate=2e-5, seed=42, gradient_checkpointing=False)
TARGET_SAME, TARGET_AUTO = 0.95, 1.3


@dataclass
class Throughput:
    """Counts non-padding tokens per forward and times the steps after warm-up (a `TrainerCallback`'s hooks)."""

    warmup: int
    tokens: int = 0
    seconds: float = 0.0
    steps: int = 0
    _start: float | None = field(default=None, repr=False)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def count(self, module: Any, args: tuple, kwargs: dict) -> None:
        if self._start is None:
            return  # a warm-up step
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        # Padding-free and packed batches carry no mask: every token in them is real.
        self.tokens += int(mask.sum()) if mask is not None else int(ids.numel())

    def on_step_end(self, state: Any) -> None:
        now = time.perf_counter()
        if state.global_step == self.warmup:
            self._start = now
        elif self._start is not None:
            self.seconds, self.steps = now - self._start, state.global_step - self.warmup


def callback(meter: Throughput) -> Any:
    from transformers import TrainerCallback

    class _Meter(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            meter.on_step_end(state)

    return _Meter()


def measured_run(trainer: Any, meter: Throughput) -> Throughput:
    """Train `trainer` (built with `callback(meter)`) with the token counter on its model's forward."""
    hook = trainer.model.register_forward_pre_hook(meter.count, with_kwargs=True)
    try:
        trainer.train()
    finally:
        hook.remove()
    if meter.steps < 1:
        raise SystemExit(f"only {trainer.state.global_step} steps ran: --steps must exceed --warmup")
    return meter


def setup_workspace(root: Path, rows: int) -> Workspace:
    """A workspace whose warehouse holds the first `rows` GSM8K rows as table `gsm8k`."""
    from runtimes.training.datasets.shared_data import import_gsm8k

    ws = Workspace(root / "ws")
    ws.create()
    lines = GSM8K.read_text(encoding="utf-8").splitlines()[:rows]
    subset = root / "gsm8k_subset.jsonl"
    subset.write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_gsm8k(ws, subset, table=TABLE)
    return ws


def build_model(path: Path, data_file: Path, **shape: Any) -> Path:
    from runtimes.training.tiny_models import build_tiny_model

    rows = [json.loads(line) for line in data_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [r["question"] for r in rows] + [r["answer"] for r in rows]
    return build_tiny_model("llama3", path, texts, **{**MODEL, **shape})


def lathe_dataset(ws: Workspace) -> Any:
    from runtimes.training.datasets.preparation import DatasetSpec, prepare_dataset

    return prepare_dataset(ws, DatasetSpec(table=TABLE, technique="sft", eval_fraction=0, deduplicate=False))


def lathe_trainer(model_dir: Path, prepared: Any, out: Path, knobs: dict[str, Any], meter: Throughput) -> Any:
    from runtimes.models.sources import resolve_model
    from runtimes.training.recipes import parse_config, recipe

    config = parse_config("sft", {"save_steps": 10_000, **knobs})
    return recipe("sft").build_trainer(config, resolve_model(str(model_dir)), prepared, out, [callback(meter)])


def auto_knobs(model_dir: Path, prepared: Any, steps: int) -> tuple[dict[str, Any], Any]:
    """The `sft` recipe's knobs from `auto_configure` on this model, this machine and the data's token lengths."""
    from transformers import AutoTokenizer

    from runtimes.training.auto_config import DataProfile, auto_configure
    from runtimes.training.hardware import detect_hardware
    from runtimes.training.memory_estimate import ModelShape

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    lengths = [len(tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=True)["input_ids"])
               for r in prepared.train]
    plan = auto_configure(ModelShape.from_pretrained(model_dir), DataProfile.from_lengths(lengths),
                          detect_hardware(), "sft")
    c = plan.config
    knobs = dict(method=c.method, precision=c.precision, micro_batch=c.micro_batch, grad_accum=c.gradient_accumulation,
                 gradient_checkpointing=c.gradient_checkpointing, max_length=c.max_length, packing=c.packing,
                 padding_free=c.padding_free, learning_rate=c.learning_rate, max_steps=steps)
    if c.method != "full":
        knobs.update(lora_rank=c.lora_rank, lora_alpha=c.lora_alpha)
    return knobs, plan


# ---- the plain TRL script, as a user writes it from TRL's documentation --------------------------------------

def plain_dataset(data_file: Path) -> Any:
    from datasets import Dataset

    rows = [json.loads(line) for line in data_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return Dataset.from_list([{"prompt": [{"role": "user", "content": r["question"]}],
                               "completion": [{"role": "assistant", "content": r["answer"]}]} for r in rows])


def plain_trainer(model_dir: Path, dataset: Any, out: Path, settings: dict[str, Any], meter: Throughput) -> Any:
    """`settings` are `SFTConfig` fields; none but the CPU ones means TRL's defaults."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    args = SFTConfig(output_dir=str(out), use_cpu=True, bf16=False, report_to="none", disable_tqdm=True,
                     **settings)
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                      callbacks=[callback(meter)])


# ---- the two comparisons ---------------------------------------------------------------------------------------

@dataclass
class Comparison:
    name: str
    target: float
    lathe: list[Throughput] = field(default_factory=list)
    baseline: list[Throughput] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(m.tokens_per_second for m in self.lathe) / \
            statistics.median(m.tokens_per_second for m in self.baseline)

    @property
    def paired_ratio(self) -> float:
        """Median of each round's ratio: steadier than `ratio` when other work shares the CPU and drifts."""
        return statistics.median(a.tokens_per_second / b.tokens_per_second for a, b in zip(self.lathe, self.baseline))


def alternate(comparison: Comparison, repeat: int, warmup: int, lathe: Callable[[Throughput], Any],
              baseline: Callable[[Throughput], Any], log: Callable[[str], None] = print) -> Comparison:
    """`repeat` rounds, each running both sides, the first side alternating between rounds."""
    sides = [("lathe", lathe, comparison.lathe), ("baseline", baseline, comparison.baseline)]
    for r in range(repeat):
        for label, build, results in (sides if r % 2 == 0 else sides[::-1]):
            meter = Throughput(warmup)
            trainer = build(meter)
            results.append(measured_run(trainer, meter))
            log(f"  {comparison.name} round {r + 1} {label:8s}: {meter.tokens_per_second:8.1f} tokens/s "
                f"({meter.tokens} tokens in {meter.seconds:.1f} s over {meter.steps} steps)")
            del trainer
            gc.collect()
    return comparison


def run(steps: int, repeat: int, warmup: int, rows: int, workdir: Path, *, model: dict[str, Any] | None = None,
        same: dict[str, Any] | None = None, only: tuple[str, ...] = ("same", "auto"),
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Both comparisons in `workdir`; returns the measurements and ratios."""
    import torch

    from runtimes.training.memory_estimate import ModelShape

    same = {**SAME, **(same or {})}
    ws = setup_workspace(workdir, rows)
    data_file = workdir / "gsm8k_subset.jsonl"
    model_dir = build_model(workdir / "model", data_file, **(model or {}))
    params = ModelShape.from_pretrained(model_dir).n_params
    prepared, plain = lathe_dataset(ws), plain_dataset(data_file)
    log(f"model: llama3-shaped, {params / 1e6:.1f} M parameters; data: {len(prepared.train)} GSM8K rows; "
        f"torch threads: {torch.get_num_threads()}")
    out: dict[str, Any] = {"params": params, "rows": len(prepared.train), "prepared": prepared, "plain": plain}
    if "same" in only:
        knobs = dict(method="full", micro_batch=same["micro_batch"], max_length=same["max_length"],
                     learning_rate=same["learning_rate"], seed=same["seed"], max_steps=steps,
                     gradient_checkpointing=same["gradient_checkpointing"])
        settings = dict(per_device_train_batch_size=same["micro_batch"], max_length=same["max_length"],
                        learning_rate=same["learning_rate"], seed=same["seed"], max_steps=steps,
                        gradient_checkpointing=same["gradient_checkpointing"])
        log(f"1. same settings ({json.dumps(settings)}):")
        out["same"] = alternate(Comparison("same", TARGET_SAME), repeat, warmup,
                                lambda m: lathe_trainer(model_dir, prepared, workdir / "lathe", knobs, m),
                                lambda m: plain_trainer(model_dir, plain, workdir / "plain", settings, m), log)
    if "auto" in only:
        knobs, plan = auto_knobs(model_dir, prepared, steps)
        out["auto_knobs"] = knobs
        # Checkpointing as the automatic configuration chose it on both sides: the gain measured is that of the
        # lengths, batch and padding it chose, not of recomputing activations or not.
        defaults = dict(max_steps=steps, gradient_checkpointing=knobs["gradient_checkpointing"])
        log(f"2. auto configuration ({json.dumps(knobs)}) against TRL's defaults (max_length 1024, batch 8, "
            f"no packing; gradient_checkpointing {knobs['gradient_checkpointing']} on both sides):")
        out["auto"] = alternate(Comparison("auto", TARGET_AUTO), repeat, warmup,
                                lambda m: lathe_trainer(model_dir, prepared, workdir / "lathe-auto", knobs, m),
                                lambda m: plain_trainer(model_dir, plain, workdir / "plain-defaults", defaults, m),
                                log)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per run (warm-up included)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs per side; the median is reported")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the count")
    parser.add_argument("--rows", type=int, default=400, help="GSM8K rows imported into the workspace")
    parser.add_argument("--only", default="same,auto", help="same, auto or both (comma-separated)")
    a = parser.parse_args()
    if not GSM8K.is_file():
        raise SystemExit(f"no GSM8K file at {GSM8K}")
    with tempfile.TemporaryDirectory(prefix="sft-throughput-") as tmp:
        out = run(a.steps, a.repeat, a.warmup, a.rows, Path(tmp), only=tuple(a.only.split(",")))
    print("\nresult (median of each side):")
    for key in ("same", "auto"):
        if key in out:
            c: Comparison = out[key]
            lathe = statistics.median(m.tokens_per_second for m in c.lathe)
            base = statistics.median(m.tokens_per_second for m in c.baseline)
            verdict = "meets" if c.paired_ratio >= c.target else "misses"
            print(f"  {key}: Lathe {lathe:.1f} tokens/s, {'plain TRL' if key == 'same' else 'TRL defaults'} "
                  f"{base:.1f} tokens/s, ratio {c.ratio:.3f}, median of paired rounds {c.paired_ratio:.3f} "
                  f"({verdict} the target {c.target})")


if __name__ == "__main__":
    main()

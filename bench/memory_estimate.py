"""Benchmark of the training memory estimate against the measured peak: each configuration trains a locally built
model (random weights, a BPE tokenizer trained on GSM8K questions) for a few real TRL `SFTTrainer` steps in its
own subprocess, with and without LoRA, at several batch sizes and lengths.

On CPU the measured figure is the child's peak RSS minus the peak RSS of a baseline child that only imports the
same libraries; on CUDA it is `torch.cuda.max_memory_allocated()`. Prints estimate, measured and error per
configuration and the largest error beside its target (within ±25 %).

    .venv/bin/python bench/memory_estimate.py [--steps 3] [--only NAME,...]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.offline import OFFLINE_ENV, apply_offline_env  # noqa: E402

apply_offline_env()

GSM8K = ROOT.parent / "shared" / "data" / "gsm8k_test.jsonl"
TARGET = 0.25
VOCAB = 8000


@dataclass(frozen=True)
class Case:
    name: str
    model: str           # key of MODELS
    method: str          # "full" or "lora"
    batch: int
    length: int
    rank: int = 16
    checkpointing: bool = False


# Two Llama shapes and a Qwen3 MoE: about 6 M, 25 M and 14 M parameters with an 8,000-token vocabulary.
MODELS: dict[str, dict] = {
    "llama-6m": dict(model_type="llama", hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                     num_key_value_heads=2, intermediate_size=704, tie_word_embeddings=False),
    "llama-25m": dict(model_type="llama", hidden_size=512, num_hidden_layers=6, num_attention_heads=8,
                      num_key_value_heads=4, intermediate_size=1408, tie_word_embeddings=False),
    "qwen3moe-14m": dict(model_type="qwen3_moe", hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=64, intermediate_size=704, moe_intermediate_size=256,
                         num_experts=8, num_experts_per_tok=2, decoder_sparse_step=1, tie_word_embeddings=False),
}

CASES = [
    Case("6m-full-b4-l128", "llama-6m", "full", 4, 128),
    Case("6m-full-b8-l256", "llama-6m", "full", 8, 256),
    Case("6m-lora-b8-l256", "llama-6m", "lora", 8, 256, rank=8),
    Case("25m-full-b4-l256", "llama-25m", "full", 4, 256),
    Case("25m-full-b8-l256-gc", "llama-25m", "full", 8, 256, checkpointing=True),
    Case("25m-lora-b8-l256", "llama-25m", "lora", 8, 256, rank=16),
    Case("25m-lora-b16-l512", "llama-25m", "lora", 16, 512, rank=16),
    Case("25m-lora-b16-l512-gc", "llama-25m", "lora", 16, 512, rank=16, checkpointing=True),
    Case("moe-full-b8-l256", "qwen3moe-14m", "full", 8, 256),
    Case("moe-lora-b8-l256", "qwen3moe-14m", "lora", 8, 256, rank=8),
]


# The configurations whose measurements the CPU terms of memory_estimate.py were fitted on; the rest are held out.
CALIBRATION = {"6m-full-b4-l128", "25m-full-b4-l256", "25m-lora-b8-l256", "25m-lora-b16-l512", "moe-full-b8-l256"}


def _imports() -> None:
    """The same libraries in the baseline and the training child, so their difference is the training alone."""
    import datasets  # noqa: F401
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from trl import SFTConfig, SFTTrainer  # noqa: F401


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def child(args: dict) -> dict:
    _imports()
    if args.get("baseline"):
        return {"peak": _peak_rss()}
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(0)
    tok = PreTrainedTokenizerFast.from_pretrained(args["tokenizer"])
    texts = _texts()
    model = AutoModelForCausalLM.from_pretrained(args["model"], dtype=torch.float32)
    peft_config = None
    if args["method"] == "lora":
        from peft import LoraConfig
        peft_config = LoraConfig(r=args["rank"], lora_alpha=2 * args["rank"], target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    # Texts of several questions each, so that every example is cut to exactly `length` tokens.
    data = Dataset.from_dict({"text": [" ".join(texts[i:i + 12]) for i in range(0, 12 * 64, 12)]})
    cuda = torch.cuda.is_available()
    cfg = SFTConfig(output_dir=args["out"], max_steps=args["steps"], per_device_train_batch_size=args["batch"],
                    gradient_accumulation_steps=1, max_length=args["length"], packing=False, padding_free=False,
                    gradient_checkpointing=args["checkpointing"], use_cpu=not cuda, bf16=False,
                    logging_steps=1, save_strategy="no", report_to=[], dataloader_num_workers=0,
                    learning_rate=1e-4, seed=0, disable_tqdm=True)
    if cuda:
        model = model.cuda()
        torch.cuda.reset_peak_memory_stats()
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=data, processing_class=tok, peft_config=peft_config)
    t0 = time.perf_counter()
    trainer.train()
    out = {"peak": _peak_rss(), "seconds": time.perf_counter() - t0,
           "params": sum(p.numel() for p in trainer.model.parameters())}
    if cuda:
        out["cuda_peak"] = torch.cuda.max_memory_allocated()
    return out


def _texts() -> list[str]:
    return [json.loads(line)["question"] for line in GSM8K.read_text().splitlines()]


def build_models(root: Path) -> tuple[Path, dict[str, Path]]:
    """A byte-level BPE tokenizer trained on GSM8K questions and the models, saved with random weights."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    texts = _texts()
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<pad>", "<eos>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="<eos>")
    tok_dir = root / "tokenizer"
    tok.save_pretrained(tok_dir)
    paths = {}
    for name, spec in MODELS.items():
        spec = dict(spec)
        cfg = AutoConfig.for_model(spec.pop("model_type"), vocab_size=len(tok), pad_token_id=tok.pad_token_id,
                                   eos_token_id=tok.eos_token_id, bos_token_id=None, **spec)
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(cfg).save_pretrained(root / name)
        paths[name] = root / name
    return tok_dir, paths


def _run_child(args: dict) -> dict:
    env = {**os.environ, **OFFLINE_ENV, "TORCHINDUCTOR_CACHE_DIR": str(Path(args["out"]) / "inductor")}
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({args}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def estimate_for(case: Case, model_dir: Path, device: str) -> "object":
    from runtimes.training.memory_estimate import ModelShape, TrainingShape, estimate_memory

    shape = ModelShape.from_pretrained(model_dir)
    return estimate_memory(shape, TrainingShape(method=case.method, precision="fp32", micro_batch=case.batch,
                                                seq_len=case.length, lora_rank=case.rank,
                                                gradient_checkpointing=case.checkpointing, device=device))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", help="also write the rows to this file")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(json.loads(a.child))))
        return
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    cases = [c for c in CASES if not a.only or c.name in a.only.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="lathe-mem-") as tmp:
        root = Path(tmp)
        tok_dir, paths = build_models(root)
        base = _run_child({"baseline": True, "out": str(root / "base")})["peak"] if device == "cpu" else 0
        print(f"device: {device}; baseline child peak RSS (imports only): {base / 2**20:.0f} MiB")
        print(f"{'config':24} {'params':>7} {'estimate':>9} {'measured':>9} {'error':>7} {'step s':>7}  role")
        for case in cases:
            res = _run_child({**asdict(case), "steps": a.steps, "tokenizer": str(tok_dir),
                              "model": str(paths[case.model]), "out": str(root / case.name)})
            measured = res["cuda_peak"] if device == "cuda" else res["peak"] - base
            est = estimate_for(case, paths[case.model], device)
            err = est.total / measured - 1
            rows.append({"config": case.name, "estimate_mib": est.total / 2**20, "measured_mib": measured / 2**20,
                         "error": err, "breakdown_mib": {k: v / 2**20 for k, v in est.parts().items()}})
            print(f"{case.name:24} {res['params'] / 1e6:6.1f}M {est.total / 2**20:8.0f}M {measured / 2**20:8.0f}M "
                  f"{err:+7.1%} {res['seconds'] / a.steps:7.2f}  {'fitted' if case.name in CALIBRATION else 'held out'}",
                  flush=True)
    worst = max(abs(r["error"]) for r in rows)
    held = [abs(r["error"]) for r in rows if r["config"] not in CALIBRATION]
    print(f"largest error {worst:.1%} over {len(rows)} configurations (target within ±{TARGET:.0%}): "
          f"{'met' if worst <= TARGET else 'NOT met'}"
          + (f"; largest on the {len(held)} held-out ones {max(held):.1%}" if held and device == "cpu" else ""))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

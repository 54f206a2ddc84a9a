"""The model both serving benchmarks deploy: a Llama-3-shaped model of about 20 M parameters with random weights
and a tokenizer trained on GSM8K text, built locally in a fresh workspace's `models/base/` (nothing downloaded).

It only builds files under the folder it is given.
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k_test.jsonl"
NAME = "bench-20m"
SHAPE = dict(hidden=512, layers=6, heads=8, kv_heads=4, vocab_size=8000)


def questions(n: int = 64) -> list[str]:
    """Prompts for the requests: GSM8K questions where the file is, generated sentences otherwise."""
    if GSM8K.exists():
        rows = [json.loads(line) for line in GSM8K.read_text(encoding="utf-8").splitlines()[:n]]
        return [r["question"] for r in rows]
    return [f"Order {i} ships on day {i % 7}; how many euros is the refund of ticket {i}?" for i in range(n)]


def build(ws_root: Path) -> tuple[str, int]:
    """Build the model under `ws_root/models/base/`; returns its workspace name and parameter count."""
    from runtimes.training.tiny_models import build_tiny_model

    texts = questions(2000)
    if GSM8K.exists():
        texts += [json.loads(line)["answer"] for line in GSM8K.read_text(encoding="utf-8").splitlines()[:2000]]
    path = build_tiny_model("llama3", ws_root / "models" / "base" / NAME, texts, **SHAPE)
    from safetensors import safe_open

    params = 0
    for f in path.glob("*.safetensors"):
        with safe_open(str(f), framework="pt") as st:
            for key in st.keys():
                shape = st.get_slice(key).get_shape()
                n = 1
                for d in shape:
                    n *= d
                params += n
    return NAME, params

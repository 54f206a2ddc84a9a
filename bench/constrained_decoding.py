"""Benchmark of JSON output by constrained decoding (xgrammar): the cost per generated token of the grammar's
token mask against plain decoding, on the serving benchmark model (20 M parameters, 8,000-token vocabulary),
greedy, one request at a time, both run side by side in one process; and the one-off costs (the grammar
compiler for a tokenizer, a schema's compilation).

    .venv/bin/python bench/constrained_decoding.py [--tokens 96] [--repeat 5]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.serving_bench_model import build, questions  # noqa: E402

SCHEMA = {"type": "object", "required": ["answer", "reason"], "additionalProperties": False,
          "properties": {"answer": {"type": "integer"}, "reason": {"type": "string"}}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import torch

    from runtimes.serving.engines import constrained
    from runtimes.serving.engines.transformers_engine import Engine

    with tempfile.TemporaryDirectory() as tmp:
        name, params = build(Path(tmp))
        engine = Engine(str(Path(tmp) / "models" / "base" / name), device="cpu")
        vocab = engine.model.config.get_text_config().vocab_size
        t = time.perf_counter()
        constrained.json_processor(engine.tokenizer, vocab, {"type": "object"})
        first = time.perf_counter() - t
        t = time.perf_counter()
        constrained.json_processor(engine.tokenizer, vocab, SCHEMA)
        schema_s = time.perf_counter() - t
        ids = engine.tokenizer(questions(1)[0], return_tensors="pt")["input_ids"]

        def per_token(processor: bool) -> float:
            kw = dict(max_new_tokens=args.tokens, do_sample=False, temperature=None, top_p=None, top_k=None,
                      pad_token_id=engine.tokenizer.pad_token_id)
            if processor:
                kw["logits_processor"] = [constrained.json_processor(engine.tokenizer, vocab, SCHEMA)]
            else:  # the same number of tokens as the constrained reply made
                kw["min_new_tokens"] = args.tokens
            t = time.perf_counter()
            with torch.inference_mode():
                out = engine.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kw)
            return (time.perf_counter() - t) * 1000 / (out.shape[1] - ids.shape[1])

        per_token(True), per_token(False)  # warm-up
        plain, json_ms = [], []
        for _ in range(args.repeat):  # alternating, so both see the same machine load
            plain.append(per_token(False))
            json_ms.append(per_token(True))
        p, c = statistics.median(plain), statistics.median(json_ms)
        print(json.dumps({"model_params": params, "vocab": vocab, "compiler_first_s": round(first, 3),
                          "schema_compile_ms": round(schema_s * 1000, 2), "plain_ms_per_token": round(p, 2),
                          "json_schema_ms_per_token": round(c, 2), "ratio": round(c / p, 3)}, indent=2))


if __name__ == "__main__":
    main()

"""Batch transform throughput: a micro-batch answered by one batched `generate` call against the same rows
answered one at a time, through Lathe's engine, on the ~20 M-parameter serving benchmark model.

Both ways answer the same GSM8K questions as chats, greedy, in alternating rounds; tokens/s counts the completion
tokens each reply returned, and the script prints how many replies are identical both ways (left padding can
move a near tie by float rounding). It writes only to a temporary folder.

    .venv/bin/python bench/batch_generation.py [--rows 64] [--micro-batch 16] [--max-tokens 32] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.offline import apply_offline_env  # noqa: E402

apply_offline_env()

from bench import serving_bench_model  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--micro-batch", type=int, default=16, help="rows per batched generate call")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import torch

    from runtimes.serving.engines.transformers_engine import ChatMessage, Engine, Sampling
    from runtimes.models.refs import ServedModel

    with tempfile.TemporaryDirectory(prefix="lathe-bench-batch-") as tmp:
        name, params = serving_bench_model.build(Path(tmp))
        folder = str(Path(tmp) / "models" / "base" / name)
        engine = Engine(folder)
        engine.register(ServedModel(id=name, base=folder, base_ref=name, adapter=None))
        device = torch.cuda.get_device_name() if engine.device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
        print(f"model: {name}, {params / 1e6:.1f} M parameters on {device}; {args.rows} rows, micro-batch "
              f"{args.micro_batch}, max_tokens {args.max_tokens}, greedy")
        ids = [engine.prompt_ids(name, messages=[ChatMessage(role="user", content=q)])
               for q in serving_bench_model.questions(args.rows)]
        sampling = Sampling(max_new_tokens=args.max_tokens, temperature=0)

        def one_at_a_time() -> list:
            return [engine.generate(name, i, sampling) for i in ids]

        def batched() -> list:
            out = []
            for start in range(0, len(ids), args.micro_batch):
                out += engine.generate_batch(name, ids[start:start + args.micro_batch], sampling)
            return out

        ways = {"one at a time": one_at_a_time, "batched": batched}
        engine.generate(name, ids[0], sampling)  # warm-up: first calls pay one-time costs
        engine.generate_batch(name, ids[:2], sampling)
        speeds: dict[str, list[float]] = {w: [] for w in ways}
        replies: dict[str, list] = {}
        for r in range(args.rounds):
            for w in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
                started = time.perf_counter()
                replies[w] = ways[w]()
                seconds = time.perf_counter() - started
                tokens = sum(g.completion_tokens for g in replies[w])
                speeds[w].append(tokens / seconds)
                print(f"round {r + 1} {w}: {tokens} tokens in {seconds:.2f} s = {tokens / seconds:.1f} tok/s",
                      flush=True)
        same = sum(a.text == b.text for a, b in zip(replies["one at a time"], replies["batched"]))
        single, batch = statistics.median(speeds["one at a time"]), statistics.median(speeds["batched"])
        print(f"\nidentical replies: {same} of {len(ids)}")
        print(f"one at a time {single:.1f} tok/s, batched {batch:.1f} tok/s (medians of {args.rounds}): "
              f"{batch / single:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a Lathe endpoint adds to generation. The same ~20 M-parameter model answers the
same chat prompts at batch size 1, greedy, (a) through a real endpoint process on loopback called with the
official `openai` client, and (b) by `model.generate()` in this process; target: endpoint / direct <= 1.10.

Requests alternate (each prompt direct, then through the endpoint) so that a busy machine slows both alike;
the figures are the medians of per-request times and of the paired ratios over all rounds. Both sides use `--threads` torch threads (default 1: on a small machine shared
with other work, OpenMP's spinning threads make 2-thread generation many times slower and erratic). Both sides must produce the same tokens, which the script checks. It writes
only to a temporary folder and stops its endpoint at the end.

    .venv/bin/python bench/endpoint_overhead.py [--requests 10] [--rounds 3] [--max-tokens 64]
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
from core.workspace import Workspace  # noqa: E402

TARGET = 1.10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10, help="requests per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    args = parser.parse_args()
    import os

    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # read by torch here and in the endpoint process it starts

    import openai
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from runtimes.serving.endpoints import deploy as endpoints

    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="lathe-bench-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.create()
        name, params = serving_bench_model.build(ws.root)
        prompts = serving_bench_model.questions(args.requests)
        print(f"model: {name}, {params / 1e6:.1f} M parameters; {args.requests} requests x {args.rounds} rounds, "
              f"max_tokens {args.max_tokens}, greedy, batch size 1; torch threads {torch.get_num_threads()}")

        folder = ws.root / "models" / "base" / name
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        # The device and precision the endpoint's engine picks: a GPU in bfloat16 where there is one.
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype).to(device).eval()
        print(f"both sides on {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}, {dtype}")

        def direct(prompt: str) -> tuple[float, list]:
            started = time.perf_counter()
            ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                return_tensors="pt", return_dict=True)["input_ids"].to(device)
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                     max_new_tokens=args.max_tokens, pad_token_id=tokenizer.pad_token_id,
                                     temperature=None, top_p=None, top_k=None)
            text = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
            return time.perf_counter() - started, [int(out.shape[1] - ids.shape[1]), text]

        deployed = endpoints.deploy(ws, [name], name="bench")
        client = openai.OpenAI(base_url=deployed.endpoint.url, api_key=deployed.api_key, max_retries=0)

        def served(prompt: str) -> tuple[float, list]:
            started = time.perf_counter()
            reply = client.chat.completions.create(model=name, messages=[{"role": "user", "content": prompt}],
                                                   max_tokens=args.max_tokens, temperature=0)
            return time.perf_counter() - started, [reply.usage.completion_tokens, reply.choices[0].message.content]

        try:
            for p in prompts[:2]:  # warm-up: first calls pay one-time costs on both sides
                direct(p)
                served(p)
            times: dict[str, list[float]] = {"direct": [], "endpoint": []}
            pairs: list[float] = []
            tokens: list[int] = []
            for r in range(args.rounds):
                for p in prompts:
                    d_s, d_out = direct(p)
                    e_s, e_out = served(p)
                    if d_out != e_out:
                        print(f"outputs differ between the sides on {p[:40]!r}: {e_out} vs {d_out}")
                        return 1
                    times["direct"].append(d_s)
                    times["endpoint"].append(e_s)
                    pairs.append(e_s / d_s)
                    tokens.append(d_out[0])
                n = len(prompts)
                med = {s: statistics.median(t[-n:]) for s, t in times.items()}
                print(f"round {r + 1}: direct {med['direct'] * 1000:.1f} ms, endpoint {med['endpoint'] * 1000:.1f} "
                      f"ms per request; median paired ratio {statistics.median(pairs[-n:]):.3f}")
        finally:
            endpoints.delete(ws, "bench")
        d, e = statistics.median(times["direct"]), statistics.median(times["endpoint"])
        ratio = statistics.median(pairs)
        print(f"same tokens and text on both sides ({min(tokens)}-{max(tokens)} completion tokens per request); "
              f"median per request: "
              f"direct {d * 1000:.1f} ms, endpoint {e * 1000:.1f} ms (ratio of medians {e / d:.3f}); median paired "
              f"ratio {ratio:.3f} (target <= {TARGET}): {'PASS' if ratio <= TARGET else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

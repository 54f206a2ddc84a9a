"""Throughput of one endpoint under concurrent clients. The ~20 M-parameter bench model is deployed as a real
endpoint process on loopback; the same greedy chat requests are sent by 1 client (one at a time, the baseline),
then by 8 and by 32 concurrent clients (official `openai` client, one thread each). Per level: completion
tokens per second, its ratio to one at a time, and p50/p95 request latency; every reply must equal its one-at-a-
time reply. Target: >= 4x the one-at-a-time throughput at 8 clients.

The endpoint runs with `--threads` torch threads (default 1, as bench/endpoint_overhead.py). With `--rounds R`
the levels run R times in turn and each ratio is the median of its rounds' ratios, each against the one-at-a-time
run just before it, so a machine whose load drifts does not bias one level. It writes only to a temporary folder
and stops its endpoint at the end.

    .venv/bin/python bench/endpoint_concurrency.py [--requests 32] [--max-tokens 32] [--clients 1,8,32] [--rounds 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.offline import apply_offline_env  # noqa: E402

apply_offline_env()

from bench import serving_bench_model  # noqa: E402
from core.workspace import Workspace  # noqa: E402

TARGET = 4.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=32, help="requests per level (at least the clients)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels; 1 is the one-at-a-time baseline")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the endpoint process")
    parser.add_argument("--rounds", type=int, default=1, help="times each level runs, in turn")
    args = parser.parse_args()
    levels = sorted({1, *(int(c) for c in args.clients.split(","))})
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # read by the endpoint process it starts

    import openai

    from runtimes.serving.endpoints import deploy as endpoints

    with tempfile.TemporaryDirectory(prefix="lathe-bench-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.create()
        name, params = serving_bench_model.build(ws.root)
        n = max(args.requests, max(levels))
        prompts = serving_bench_model.questions(n)
        print(f"model: {name}, {params / 1e6:.1f} M parameters; {n} chat requests per level, max_tokens "
              f"{args.max_tokens}, greedy; endpoint torch threads {args.threads}; load average before "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        deployed = endpoints.deploy(ws, [name], name="bench")
        client = openai.OpenAI(base_url=deployed.endpoint.url, api_key=deployed.api_key, max_retries=0,
                               timeout=600)

        def ask(prompt: str) -> tuple[float, int, str]:
            started = time.perf_counter()
            reply = client.chat.completions.create(model=name, messages=[{"role": "user", "content": prompt}],
                                                   max_tokens=args.max_tokens, temperature=0)
            return time.perf_counter() - started, reply.usage.completion_tokens, reply.choices[0].message.content

        try:
            for p in prompts[:2]:  # warm-up: first calls pay one-time costs
                ask(p)
            results: dict[int, dict] = {}
            ratios: dict[int, list[float]] = {c: [] for c in levels}
            expected: list[tuple[int, str]] = []
            for clients in [c for _ in range(args.rounds) for c in levels]:
                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=clients) as pool:
                    replies = list(pool.map(ask, prompts))
                wall = time.perf_counter() - started
                outputs = [(tokens, text) for _, tokens, text in replies]
                if clients == 1:
                    expected = outputs
                differ = sum(a != b for a, b in zip(outputs, expected))
                latencies = [s for s, _, _ in replies]
                tokens = sum(t for t, _ in outputs)
                results[clients] = {"tok_s": tokens / wall, "p50": _percentile(latencies, 0.5),
                                    "p95": _percentile(latencies, 0.95), "wall": wall,
                                    "differ": differ + results.get(clients, {}).get("differ", 0)}
                r = results[clients]
                ratios[clients].append(r["tok_s"] / results[1]["tok_s"])
                print(f"{clients:>3} clients: {tokens} tokens in {wall:.2f} s = {r['tok_s']:.1f} tok/s "
                      f"({r['tok_s'] / results[1]['tok_s']:.2f}x one at a time); latency p50 "
                      f"{r['p50'] * 1000:.0f} ms, p95 {r['p95'] * 1000:.0f} ms; replies differing from one at a "
                      f"time: {differ}")
        finally:
            endpoints.delete(ws, "bench")
    print(f"load average after {os.getloadavg()[0]:.1f}")
    if args.rounds > 1:
        print("median ratio over rounds: " + ", ".join(f"{c} clients {statistics.median(ratios[c]):.2f}x "
                                                       f"(rounds: {', '.join(f'{x:.2f}' for x in ratios[c])})"
                                                       for c in levels if c != 1))
    same = all(r["differ"] == 0 for r in results.values())
    at8 = statistics.median(ratios[8]) if 8 in levels else None
    verdict = "PASS" if same and at8 is not None and at8 >= TARGET else "FAIL"
    print(f"identical greedy replies at every level: {same}; throughput at 8 clients "
          f"{'n/a' if at8 is None else f'{at8:.2f}x'} one at a time (target >= {TARGET:g}x): {verdict}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

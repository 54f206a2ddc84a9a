"""Benchmark of quantized serving against the unquantized model: tokens/s through Lathe's engine (alternating
rounds, median), weight bytes and memory (process RSS on CPU, allocated GPU memory on a GPU; each engine in its
own child process), and quality (greedy outputs and teacher-forced token agreement over the answers' length).
On CPU: dynamic int8 against float32; on a GPU: int8 or int4 (torchao or bitsandbytes) against bfloat16.

The model is trained here on the redaction task of `bench/prompt_lookup.py` (a quality figure of random weights
would mean nothing), or given with `--model DIR` (e.g. one kept by `bench/prompt_lookup.py --keep DIR`).
It writes only inside a temporary folder and asserts nothing about speed.

    .venv/bin/python bench/quantization.py [--steps 60] [--model DIR] [--prompts 12] [--rounds 3] [--mode int8|int4]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.offline import apply_offline_env  # noqa: E402

apply_offline_env()

from bench.prompt_lookup import WIDTH, Redaction, build_and_train, load_texts  # noqa: E402

# About 16 M parameters: wide enough that the Linear layers, which int8 changes, dominate the time.
MODEL = dict(hidden=512, layers=6, heads=8, kv_heads=4, vocab_size=2000)


def rss_child(folder: str, mode: str, device: str) -> None:
    """Run in a child process: load an engine, answer once, print its memory and weight bytes as JSON."""
    import gc

    import psutil

    from runtimes.serving.engines.transformers_engine import Engine, Sampling
    from runtimes.models.refs import ServedModel
    from runtimes.serving.engines.quantization import weight_bytes

    engine = Engine(folder, quantize=mode, device=device)
    engine.register(ServedModel(id="m", base=folder, base_ref="m", adapter=None))
    text = Redaction(engine.tokenizer).prompt("Tom has 3 apples.") or "Tom has 3 apples."
    engine.generate("m", engine.prompt_ids("m", prompt=text), Sampling(max_new_tokens=8, temperature=0.0))
    gc.collect()
    if device == "cuda":
        import torch

        memory = torch.cuda.memory_allocated()
    else:
        memory = psutil.Process().memory_info().rss
    print(json.dumps({"memory": memory, "weights": weight_bytes(engine.model)}))


def child_figures(folder: Path, mode: str, device: str) -> dict[str, int]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--model", str(folder), "--device", device],
                         check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a trained model folder; else one is trained")
    parser.add_argument("--steps", type=int, default=60, help="training steps when no --model is given")
    parser.add_argument("--prompts", type=int, default=12, help="GSM8K rows held out; their question pieces are answered")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=WIDTH + 1)
    parser.add_argument("--mode", choices=("int8", "int4"), default="int8", help="int4 needs a GPU")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: a GPU where there is one")
    parser.add_argument("--child", choices=("none", "int8", "int4"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.child:
        rss_child(str(args.model), args.child, device)
        return

    from runtimes.serving.engines.transformers_engine import Engine, Sampling
    from runtimes.models.refs import ServedModel
    from runtimes.serving.engines.quantization import quantization_effect

    texts, held = load_texts(args.prompts)
    with tempfile.TemporaryDirectory(prefix="lathe-bench-quant-") as tmp:
        folder = args.model
        if folder is None:
            folder = Path(tmp) / "model"
            print(f"training {MODEL} for {args.steps} steps on the redaction task")
            trained = build_and_train(folder, texts, MODEL, args.steps, 16, 2e-3, seed=0, copy_steps=0)
            print(f"  {trained['params'] / 1e6:.2f} M parameters, {trained['seconds']:.0f} s, "
                  f"final loss {trained['final_loss']:.3f}")
        print(f"torch {torch.__version__}, device {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}, "
              f"threads {torch.get_num_threads()}, int8 CPU engine {torch.backends.quantized.engine}")
        modes = ("none", args.mode)
        engines = {}
        for mode in modes:
            engine = Engine(str(folder), quantize=mode, device=device)
            engine.register(ServedModel(id="m", base=str(folder), base_ref="m", adapter=None))
            engines[mode] = engine
        task = Redaction(engines["none"].tokenizer)
        held = [q for q in held if task.prompt(q) is not None]
        prompts = [task.prompt(q) or "" for q in held]
        sampling = Sampling(max_new_tokens=args.max_new_tokens, temperature=0.0)
        speeds: dict[str, list[float]] = {m: [] for m in engines}
        for mode, engine in engines.items():  # warm-up
            engine.generate("m", engine.prompt_ids("m", prompt=prompts[0]), sampling)
        for r in range(args.rounds):
            for mode in (modes if r % 2 == 0 else modes[::-1]):
                engine, tokens, seconds = engines[mode], 0, 0.0
                for p in prompts:
                    ids = engine.prompt_ids("m", prompt=p)
                    started = time.perf_counter()
                    tokens += engine.generate("m", ids, sampling).completion_tokens
                    seconds += time.perf_counter() - started
                speeds[mode].append(tokens / seconds)
                print(f"  round {r + 1} {mode}: {tokens} tokens, {tokens / seconds:.1f} tok/s", flush=True)

        # No perplexity: the model learned answers only (its loss never saw the prompts), so a perplexity of
        # whole texts would measure nothing it was taught; greedy agreement over the answer's length does.
        effect = quantization_effect(engines[args.mode], prompts, max_new_tokens=WIDTH)
        memory = {mode: child_figures(folder, mode, device) for mode in modes}

        ref, q = statistics.median(speeds["none"]), statistics.median(speeds[args.mode])
        mib = 1024 * 1024
        full = "bfloat16" if device == "cuda" else "float32"
        held_in = "allocated GPU memory" if device == "cuda" else "process RSS"
        print(f"\n| figure | {full} | {args.mode} | {args.mode} / {full} |")
        print("| --- | --- | --- | --- |")
        print(f"| engine tokens/s (median of {args.rounds}) | {ref:.1f} | {q:.1f} | {q / ref:.2f} |")
        print(f"| weight bytes (state dict) | {memory['none']['weights'] / mib:.1f} MiB | "
              f"{memory[args.mode]['weights'] / mib:.1f} MiB | "
              f"{memory[args.mode]['weights'] / memory['none']['weights']:.2f} |")
        print(f"| {held_in} after load and one answer | {memory['none']['memory'] / mib:.0f} MiB | "
              f"{memory[args.mode]['memory'] / mib:.0f} MiB | "
              f"{memory[args.mode]['memory'] / memory['none']['memory']:.2f} |")
        print(f"| held-out perplexity | {effect.reference_perplexity} | {effect.quantized_perplexity} | "
              f"{effect.quantized_perplexity / effect.reference_perplexity:.3f} |"
              if effect.reference_perplexity and effect.quantized_perplexity else "| perplexity | – | – | – |")
        print(f"\nquality: {effect.same_outputs:.0%} of {effect.prompts} greedy outputs identical "
              f"({effect.new_tokens} tokens each); teacher-forced top-1 agreement {effect.token_agreement:.1%}")
        print("quantization_effect():", json.dumps(effect.to_json()))


if __name__ == "__main__":
    main()

"""Prompt-lookup decoding on an input-grounded editing task, target >= 1.5x tokens/s
with identical greedy output.

The benchmark makes its own model: a small Llama-shaped model with a tokenizer trained on GSM8K text, trained
here (plain PyTorch, CPU or GPU) to redact the numbers of a window of text ("Text: ... Redacted: ..." with every
token holding a digit replaced by `#`), so that its answers copy their input. Then Lathe's serving engine
answers windows of held-out questions greedily without and with prompt lookup (and, with `--draft`, with a
smaller draft model trained the same way), in alternating rounds: it asserts and prints that the outputs are
identical, and prints tokens/s, their ratio (median of rounds) and the acceptance counts. It writes only inside
a temporary folder (or `--keep DIR`).

    .venv/bin/python bench/prompt_lookup.py [--steps 200] [--copy-steps 1500] [--held-out 40] [--rounds 3] [--draft]
"""
from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.offline import apply_offline_env  # noqa: E402

apply_offline_env()

GSM8K = ROOT.parent / "shared" / "data" / "gsm8k_test.jsonl"
TARGET = 1.5
# About 2.2 M parameters (2,000-token vocabulary); the draft is half its width.
MODEL = dict(hidden=256, layers=2, heads=4, kv_heads=2, vocab_size=2000)
DRAFT = dict(hidden=128, layers=2, heads=2, kv_heads=1, vocab_size=2000)
WIDTH = 32  # tokens of text in every prompt


def redact(text: str) -> str:
    """The redaction in words (for the tokenizer's corpus); the task itself works token by token."""
    return re.sub(r"\d+", "#", text)


class Redaction:
    """The task on one tokenizer: the input is a window of exactly WIDTH tokens of text, and the answer is the
    same tokens with every token that holds a digit replaced by `#`.

    Why fixed-width windows: the answer's token i is then always the same distance from the input's token i,
    which a small model can learn without a content-matching (induction) circuit. Prompt lookup itself does not
    care how it copies."""

    HEAD, TAIL = "Redact the numbers.\nText:", "\nRedacted:"

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer
        spaced = tokenizer(" #")["input_ids"]
        plain = tokenizer("#")["input_ids"]
        self.hash = {True: spaced[0] if len(spaced) == 1 else plain[0], False: plain[0]}
        self.head, self.tail = tokenizer(self.HEAD)["input_ids"], tokenizer(self.TAIL)["input_ids"]

    def windows(self, text: str, most: int = 3) -> list[str]:
        """Up to `most` consecutive WIDTH-token windows of `text`, as text that tokenizes back to the same
        WIDTH tokens inside a prompt (a window cut inside a word may not: it is left out)."""
        ids = self.tok(" " + text)["input_ids"]
        out = []
        for start in range(0, len(ids) - WIDTH + 1, WIDTH):
            window = self.tok.decode(ids[start:start + WIDTH])
            if self.tok(self.prompt(window))["input_ids"] == self.head + ids[start:start + WIDTH] + self.tail:
                out.append(window)
            if len(out) == most:
                break
        return out

    def prompt(self, window: str) -> str:
        return f"{self.HEAD}{window}{self.TAIL}"

    def answer_ids(self, window: str) -> list[int]:
        out = []
        for t in self.tok(window)["input_ids"]:
            piece = self.tok.decode([t])
            out.append(self.hash[piece.startswith(" ")] if any(c.isdigit() for c in piece) else t)
        return out

    def answer(self, window: str) -> str:
        return self.tok.decode(self.answer_ids(window), skip_special_tokens=True)

    def example(self, window: str) -> tuple[list[int], list[int]]:
        return self.tok(self.prompt(window))["input_ids"], self.answer_ids(window) + [self.tok.eos_token_id]

    def copying(self, rng: random.Random) -> Any:
        """Endless examples whose window is WIDTH random tokens with no digit (the answer copies it all): the
        warm-up that teaches copying before the task."""
        specials = set(self.tok.all_special_ids)
        pool = [i for i in self.tok.get_vocab().values()
                if i not in specials and not any(c.isdigit() for c in self.tok.decode([i]))]
        while True:
            text = [rng.choice(pool) for _ in range(WIDTH)]
            yield self.head + text + self.tail, text + [self.tok.eos_token_id]


def pieces(text: str, words: int = 60) -> list[str]:
    """`text` cut at sentence ends into pieces of at most about `words` words: shorter training examples."""
    out, current = [], ""
    for sentence in re.split(r"(?<=[.?!])\s+", text):
        if current and len(f"{current} {sentence}".split()) > words:
            out.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    return out + [current] if current else out


def load_texts(held_out: int) -> tuple[list[str], list[str]]:
    """Training texts (questions and worked answers of all but the last `held_out` rows) and held-out texts
    (the questions of those last rows), all cut at sentence ends into pieces of at most about 60 words."""
    if not GSM8K.is_file():
        raise SystemExit(f"{GSM8K} is missing: this benchmark reads GSM8K from the shared data folder")
    rows = [json.loads(line) for line in GSM8K.read_text(encoding="utf-8").splitlines() if line.strip()]
    train_rows, held = rows[:-held_out], rows[-held_out:]
    answers = [re.sub(r"<<[^>]*>>", "", r["answer"]).split("####")[0].replace("\n", " ") for r in train_rows]
    texts = [p for t in [r["question"].strip() for r in train_rows] + answers for p in pieces(t.strip())]
    return texts, [p for r in held for p in pieces(r["question"].strip())]


def build_and_train(folder: Path, texts: list[str], shape: dict[str, int], steps: int, batch: int,
                    lr: float, seed: int, copy_steps: int = 1500) -> dict[str, Any]:
    """A model of `shape` with a tokenizer trained on the task's text, trained on copying random token windows
    in the task's format until it copies (at most `copy_steps` steps), then `steps` steps on the redaction of
    `texts` (loss on the answer only), and saved at `folder`.

    The copying warm-up is there because a small model learning from natural text first spends its steps on
    word statistics; on random tokens copying is the only way to lower the loss. It formed within about 120
    steps in every run here; the budget and the stop once it has keep a run short either way."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from runtimes.training.tiny_models import build_tiny_model

    corpus = texts + [redact(t) for t in texts] + [Redaction.HEAD, Redaction.TAIL]
    build_tiny_model("llama3", folder, corpus, seed=seed, **shape)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    task = Redaction(tokenizer)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # Input and output embeddings tied: copying a token is then attending to it and passing its embedding
    # through, and forms within ~150 steps here; untied, copying random tokens had not started after 1,500.
    config = AutoConfig.from_pretrained(str(folder))
    config.tie_word_embeddings = True
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).to(device).train()
    examples = [task.example(w) for t in texts for w in task.windows(t)]
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = 50
    started, losses = time.perf_counter(), []
    copying = task.copying(rng)
    copied_at = None  # the step where the copying loss fell below 0.3; the task follows at once
    step = 0
    while copied_at is None or step < copied_at + steps:
        in_copy = copied_at is None
        if in_copy and step == copy_steps:
            copied_at = step  # it did not form in the budget: train on the task all the same
            if copy_steps:
                print(f"  copying did not form within {copy_steps} steps", flush=True)
            continue
        chunk = [next(copying) for _ in range(batch)] if in_copy else rng.sample(examples, batch)
        ids, labels, mask = _batch(chunk, tokenizer.pad_token_id, device)
        for group in optimizer.param_groups:  # warm-up, flat while copying, then cosine decay to a tenth
            progress = 0.0 if in_copy else (step - copied_at) / max(1, steps)
            group["lr"] = lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + _cos(progress)))
        # bfloat16 autocast on a GPU only: on CPU it kept the copying from forming (float32 did not)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
        step += 1
        if step % 50 == 0:
            print(f"  step {step} ({'copying' if in_copy else 'task'}): loss {statistics.mean(losses[-50:]):.3f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
        if in_copy and len(losses) >= 20 and statistics.mean(losses[-20:]) < 0.3:
            copied_at = step
            print(f"  copying formed at step {step} ({time.perf_counter() - started:.0f} s)", flush=True)
    model.eval().to("cpu").save_pretrained(str(folder))
    return {"params": sum(p.numel() for p in model.parameters()), "examples": len(examples), "copied_at": copied_at,
            "seconds": time.perf_counter() - started, "final_loss": statistics.mean(losses[-50:])}


def _cos(x: float) -> float:
    import math

    return math.cos(math.pi * x)


def _batch(examples: list[tuple[list[int], list[int]]], pad: int, device: str) -> tuple[Any, Any, Any]:
    import torch

    width = max(len(p) + len(a) for p, a in examples)
    ids = torch.full((len(examples), width), pad)
    labels = torch.full((len(examples), width), -100)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (p, a) in enumerate(examples):
        ids[i, :len(p) + len(a)] = torch.tensor(p + a)
        labels[i, len(p):len(p) + len(a)] = torch.tensor(a)
        mask[i, :len(p) + len(a)] = 1
    return ids.to(device), labels.to(device), mask.to(device)


def serve_all(engine: Any, prompts: list[str], max_new_tokens: int) -> tuple[list[str], int, float, list[dict]]:
    """Greedy answers of `engine` to every prompt: texts, completion tokens, seconds, per-request stats."""
    from runtimes.serving.engines.transformers_engine import Sampling

    sampling = Sampling(max_new_tokens=max_new_tokens, temperature=0.0)
    texts, tokens, seconds, stats = [], 0, 0.0, []
    for text in prompts:
        ids = engine.prompt_ids("bench", prompt=text)
        started = time.perf_counter()
        g = engine.generate("bench", ids, sampling)
        seconds += time.perf_counter() - started
        texts.append(g.text)
        tokens += g.completion_tokens
        stats.append(g.stats)
    return texts, tokens, seconds, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="redaction training steps")
    parser.add_argument("--copy-steps", type=int, default=1500, help="most copying warm-up steps (it stops once copying works)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--held-out", type=int, default=40, help="GSM8K rows held out; their questions are answered")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lookup-tokens", type=int, default=10, help="prompt_lookup_num_tokens")
    parser.add_argument("--ngram", type=int, default=3, help="max_matching_ngram_size")
    parser.add_argument("--max-new-tokens", type=int, default=WIDTH + 1)
    parser.add_argument("--draft", action="store_true", help="also train a small draft model and compare it")
    parser.add_argument("--keep", type=Path, default=None, help="keep the trained model(s) in this folder")
    args = parser.parse_args()

    import torch

    from runtimes.serving.engines.transformers_engine import Engine
    from runtimes.models.refs import ServedModel
    from runtimes.serving.engines.speculative import SpeculationConfig

    texts, held = load_texts(args.held_out)
    with tempfile.TemporaryDirectory(prefix="lathe-bench-pld-") as tmp:
        root = args.keep or Path(tmp)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        print(f"device {device}, torch threads {torch.get_num_threads()}; {len(texts)} training texts, "
              f"{len(held)} held-out questions")
        print(f"training the served model {MODEL}: {args.copy_steps} copying + {args.steps} task steps")
        trained = build_and_train(root / "model", texts, MODEL, args.steps, args.batch, args.lr, seed=0,
                                  copy_steps=args.copy_steps)
        print(f"  {trained['params'] / 1e6:.2f} M parameters, {trained['examples']} examples, "
              f"{trained['seconds']:.0f} s, final loss {trained['final_loss']:.3f}")
        configs: dict[str, SpeculationConfig | None] = {
            "plain": None,
            "prompt lookup": SpeculationConfig(prompt_lookup_tokens=args.lookup_tokens,
                                               max_matching_ngram=args.ngram)}
        if args.draft:
            print(f"training the draft model {DRAFT}: {args.copy_steps} copying + {args.steps} task steps")
            drafted = build_and_train(root / "draft", texts, DRAFT, args.steps, args.batch, args.lr, seed=1,
                                      copy_steps=args.copy_steps)
            print(f"  {drafted['params'] / 1e6:.2f} M parameters, {drafted['seconds']:.0f} s, "
                  f"final loss {drafted['final_loss']:.3f}")
            configs["draft model"] = SpeculationConfig(draft=str(root / "draft"))
        from transformers import AutoTokenizer

        task = Redaction(AutoTokenizer.from_pretrained(str(root / "model")))
        held = [w for q in held for w in task.windows(q, most=1)]
        prompts = [task.prompt(w) for w in held]
        print(f"{len(held)} held-out windows of {WIDTH} tokens")
        engines = {}
        for name, config in configs.items():
            engine = Engine(str(root / "model"), speculation=config, device=device)
            engine.register(ServedModel(id="bench", base=str(root / "model"), base_ref="bench", adapter=None))
            serve_all(engine, prompts[:2], 16)  # warm-up
            engines[name] = engine

        speeds: dict[str, list[float]] = {name: [] for name in engines}
        outputs: dict[str, list[str]] = {}
        last_stats: dict[str, list[dict]] = {}
        for r in range(args.rounds):
            order = list(engines) if r % 2 == 0 else list(reversed(engines))  # alternate who goes first
            for name in order:
                got, tokens, seconds, stats = serve_all(engines[name], prompts, args.max_new_tokens)
                if name in outputs:
                    assert got == outputs[name], f"{name}: greedy output changed between rounds"
                outputs[name], last_stats[name] = got, stats
                speeds[name].append(tokens / seconds)
                print(f"  round {r + 1} {name}: {tokens} tokens in {seconds:.2f} s = {tokens / seconds:.1f} tok/s",
                      flush=True)

        copied = sum(o == task.answer(q) for o, q in zip(outputs["plain"], held))
        print(f"\nthe trained model redacts {copied}/{len(held)} held-out questions exactly (greedy, plain)")
        for name in engines:
            if name == "plain":
                continue
            same = outputs[name] == outputs["plain"]
            print(f"{name}: greedy output identical to plain decoding on {len(held)} held-out inputs: {same}")
            assert same, [i for i, (a, b) in enumerate(zip(outputs[name], outputs["plain"])) if a != b]
        plain = statistics.median(speeds["plain"])
        print(f"\n| decoding | tokens/s (median of {args.rounds}) | ratio to plain | acceptance | tokens per forward |")
        print("| --- | --- | --- | --- | --- |")
        for name, engine in engines.items():
            speed = statistics.median(speeds[name])
            totals = engine.speculation.totals() if engine.speculation else None
            rate = f"{totals['acceptance_rate']:.1%} ({totals['accepted']}/{totals['proposed']})" if totals else "–"
            per_forward = f"{totals['tokens_per_forward']:.2f}" if totals else "1.00"
            print(f"| {name} | {speed:.1f} | {speed / plain:.2f} | {rate} | {per_forward} |")
        ratio = statistics.median(speeds["prompt lookup"]) / plain
        print(f"\nprompt lookup / plain: {ratio:.2f}x (target >= {TARGET}x): {'met' if ratio >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()

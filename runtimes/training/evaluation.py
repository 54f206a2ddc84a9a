"""After training: the eval loss on held-out rows; for RLVR the verifiable reward of base and tuned models on
held-out prompts (greedy replies); for RLAIF the judge's win rate of tuned over base; and a report of the training
curves and that comparison (`report.json`, plus a PNG when matplotlib is installed).

It reads the models, trainer and metrics it is given; it never trains and never writes outside `folder`.
"""
from __future__ import annotations

import importlib.util
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any


def eval_metrics(trainer: Any, prepared: Any) -> dict[str, float]:
    """`eval_loss` (and its perplexity) on the prepared eval split; empty when the dataset has none."""
    if prepared.eval is None or len(prepared.eval) == 0:
        return {}
    out = trainer.evaluate()
    loss = float(out["eval_loss"])
    return {"eval_loss": loss, "eval_perplexity": math.exp(min(loss, 50.0))}


# Held-out prompts compared between base and tuned: a few are enough to see a direction, and each is a generation.
COMPARE_ROWS = 8


def generate_replies(model: Any, tokenizer: Any, prompts: list[Any], max_new_tokens: int) -> list[str]:
    """One greedy reply per prompt (a list of chat messages), so base and tuned are compared without sampling luck."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    replies = []
    for prompt in prompts:
        text = tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        replies.append(tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return replies


def _held_out(prepared: Any, n: int) -> Any:
    rows = prepared.eval if prepared.eval is not None and len(prepared.eval) else prepared.train
    return rows.select(range(min(n, len(rows))))


def verifiable_comparison(base: Any, tuned: Any, tokenizer: Any, prepared: Any, reward: Any, *,
                          max_new_tokens: int = 64, n: int = COMPARE_ROWS) -> dict[str, float]:
    """The mean verifiable reward of base and tuned replies on `n` held-out rows (a failed score counts 0)."""
    rows = _held_out(prepared, n)
    prompts = list(rows["prompt"])
    columns = {c: list(rows[c]) for c in rows.column_names if c != "prompt"}
    out: dict[str, float] = {"compared_rows": float(len(prompts))}
    for label, model in (("base", base), ("tuned", tuned)):
        replies = generate_replies(model, tokenizer, prompts, max_new_tokens)
        scores = reward(prompts=prompts, completions=[[{"role": "assistant", "content": r}] for r in replies],
                        **columns)
        out[f"{label}_reward"] = sum(float(x or 0.0) for x in scores) / max(1, len(scores))
    out["reward_gain"] = out["tuned_reward"] - out["base_reward"]
    return out


def judge_comparison(base: Any, tuned: Any, tokenizer: Any, prepared: Any, judge: Any, *,
                     max_new_tokens: int = 64, n: int = COMPARE_ROWS) -> dict[str, float]:
    """The judge's scores of base and tuned replies on `n` held-out rows, and the tuned model's win rate (a tie
    counts half; a row where either score failed is left out and counted)."""
    import asyncio

    rows = _held_out(prepared, n)
    prompts = list(rows["prompt"])
    refs = list(rows["reference"]) if "reference" in rows.column_names else None
    scores = {}
    for label, model in (("base", base), ("tuned", tuned)):
        replies = generate_replies(model, tokenizer, prompts, max_new_tokens)
        scores[label] = asyncio.run(judge.score(prompts, [[{"role": "assistant", "content": r}] for r in replies],
                                                refs))
    pairs = [(b, t) for b, t in zip(scores["base"], scores["tuned"]) if b is not None and t is not None]
    out = {"compared_rows": float(len(pairs)), "judge_failures": float(len(prompts) - len(pairs))}
    if pairs:
        out["base_judge_score"] = sum(b for b, _ in pairs) / len(pairs)
        out["tuned_judge_score"] = sum(t for _, t in pairs) / len(pairs)
        out["win_rate"] = sum(1.0 if t > b else 0.5 if t == b else 0.0 for b, t in pairs) / len(pairs)
    return out


def write_report(folder: Path, curves: list[tuple[int, str, float]], summary: dict[str, Any],
                 comparison: dict[str, float] | None = None) -> dict[str, Any]:
    """`report.json` (curves by metric, the summary, base vs tuned) and `curves.png` (the curves and, when given,
    the comparison as bars) if matplotlib is available."""
    folder.mkdir(parents=True, exist_ok=True)
    series: dict[str, dict[int, float]] = defaultdict(dict)
    for step, name, value in curves:
        series[name][step] = value  # a resumed job's rerun step replaces the first attempt's
    report: dict[str, Any] = {"summary": summary, "comparison": comparison or {},
                              "curves": {k: sorted(v.items()) for k, v in series.items()}, "plot": None}
    if importlib.util.find_spec("matplotlib") is None:
        report["plot_note"] = "no PNG: matplotlib is not installed (pip install matplotlib)"
    else:
        report["plot"] = str(_plot(folder / "curves.png", series, comparison or {}))
    (folder / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def _plot(path: Path, series: dict[str, dict[int, float]], comparison: dict[str, float]) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display in a job process
    import matplotlib.pyplot as plt

    names = [n for n in ("loss", "reward", "grad_norm", "tokens_per_s") if n in series] or sorted(series)[:4]
    bars = [(k.removesuffix("_reward").removesuffix("_judge_score"), v) for k, v in comparison.items()
            if k in ("base_reward", "tuned_reward", "base_judge_score", "tuned_judge_score")]
    fig, axes = plt.subplots(len(names) + bool(bars), 1, figsize=(6, 2.2 * (len(names) + bool(bars))), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        points = sorted(series[name].items())
        ax.plot([p[0] for p in points], [p[1] for p in points])
        ax.set_ylabel(name)
        ax.set_xlabel("step")
    if bars:
        ax = axes[-1, 0]
        ax.bar([b[0] for b in bars], [b[1] for b in bars], color=["#999999", "#2a7ab0"][:len(bars)])
        what = "judge score" if "base_judge_score" in comparison else "verifiable reward"
        title = f"held-out {what}, base vs tuned"
        if "win_rate" in comparison:
            title += f" (tuned wins {comparison['win_rate']:.0%})"
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

"""After training, base and tuned compared on held-out rows with a figure that means something for each
technique: SFT the held-out loss (and perplexity) of the reference replies and a reference-based win rate of
greedy replies; DPO the preference accuracy and the implicit reward margin on held-out pairs; RLVR the held-out
verifiable reward and pass rate; RLAIF the judge's win rate. Then a report of the curves and that comparison
(`report.json`, `report.txt`, and a PNG when matplotlib is installed).

It reads the models, trainer and metrics it is given; it never trains and never writes outside `folder`.
"""
from __future__ import annotations

import importlib.util
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

# Held-out rows compared by generation between base and tuned: a few are enough to see a direction, and each
# is a generation. Scoring given replies (loss, preference log-probabilities) is cheap: more rows.
COMPARE_ROWS = 8
SCORE_ROWS = 32


def compare(technique: str, config: Any, base: Any, tuned: Any, tokenizer: Any, prepared: Any, *,
            judge: Any = None) -> dict[str, float]:
    """The technique's base-vs-tuned figures on held-out rows (`config` is the recipe's config)."""
    tokens = min(int(getattr(config, "max_completion_length", 64) or 64), 128)
    if technique == "sft":
        return sft_comparison(base, tuned, tokenizer, prepared, max_new_tokens=tokens)
    if technique == "dpo":
        return preference_comparison(base, tuned, tokenizer, prepared, beta=float(config.beta))
    if technique == "rlvr":
        from runtimes.training.rewards.combine import build_combined

        return verifiable_comparison(base, tuned, tokenizer, prepared, build_combined(config.rewards),
                                     full_score=sum(r.weight for r in config.rewards), max_new_tokens=tokens)
    if technique == "rlaif":
        return judge_comparison(base, tuned, tokenizer, prepared, judge, max_new_tokens=tokens)
    return {}


def completion_logprob(model: Any, tokenizer: Any, prompt: list[Any], completion: list[Any],
                       max_length: int = 1024) -> tuple[float, int]:
    """(sum of log-probabilities, token count) of `completion`'s tokens after `prompt`, both rendered through
    the tokenizer's chat template as training renders them."""
    import torch

    start = tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)
    whole = tokenizer.apply_chat_template(list(prompt) + list(completion), tokenize=False)
    ids = tokenizer(whole, add_special_tokens=False)["input_ids"][:max_length]
    prefix = tokenizer(start, add_special_tokens=False)["input_ids"]
    cut = next((i for i, (a, b) in enumerate(zip(prefix, ids)) if a != b), min(len(prefix), len(ids)))
    cut = max(1, cut)  # the first token has nothing before it to be predicted from
    if cut >= len(ids):
        return 0.0, 0
    device = next(model.parameters()).device
    x = torch.tensor([ids], device=device)
    with torch.no_grad():
        logits = model(input_ids=x).logits[0, :-1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(1, x[0, 1:, None])[:, 0]
    return float(logp[cut - 1:].sum()), len(ids) - cut


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


def _split_reply(row: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """(prompt messages, reply messages) of an SFT row: the last assistant turn is the reply."""
    if "messages" in row and row["messages"]:
        messages = list(row["messages"])
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages) - 1)
        return messages[:last], messages[last:last + 1]
    return list(row["prompt"]), list(row["completion"])


def _text(messages: list[Any]) -> str:
    return " ".join(str(m.get("content", "")) for m in messages)


def reference_f1(reply: str, reference: str) -> float:
    """Word-overlap F1 of a reply against the reference reply (case-folded words), 0 to 1."""
    got, want = re.findall(r"\w+", reply.lower()), re.findall(r"\w+", reference.lower())
    if not got or not want:
        return float(got == want)
    counts: dict[str, int] = defaultdict(int)
    for w in want:
        counts[w] += 1
    common = 0
    for w in got:
        if counts[w] > 0:
            counts[w] -= 1
            common += 1
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def _win_rate(pairs: list[tuple[float, float]]) -> float:
    """The share of rows where tuned beats base (a tie counts half)."""
    return sum(1.0 if t > b else 0.5 if t == b else 0.0 for b, t in pairs) / max(1, len(pairs))


def sft_comparison(base: Any, tuned: Any, tokenizer: Any, prepared: Any, *, max_new_tokens: int = 64,
                   n: int = COMPARE_ROWS, scored: int = SCORE_ROWS) -> dict[str, float]:
    """The held-out loss per reply token (and its perplexity) of the reference replies under base and tuned on
    `scored` rows, and on `n` of them the word-overlap F1 of greedy replies with the reference, and the tuned
    model's win rate by that F1."""
    rows = [_split_reply(r) for r in _held_out(prepared, scored)]
    out: dict[str, float] = {"scored_rows": float(len(rows))}
    for label, model in (("base", base), ("tuned", tuned)):
        model.eval()
        total, count = 0.0, 0
        for prompt, reply in rows:
            logp, k = completion_logprob(model, tokenizer, prompt, reply)
            total, count = total + logp, count + k
        loss = -total / max(1, count)
        out[f"{label}_heldout_loss"] = loss
        out[f"{label}_perplexity"] = math.exp(min(loss, 50.0))
    out["eval_loss"] = out["tuned_heldout_loss"]  # the tuned model's held-out loss, by its usual name
    compared = rows[:n]
    references = [_text(reply) for _, reply in compared]
    f1: dict[str, list[float]] = {}
    for label, model in (("base", base), ("tuned", tuned)):
        replies = generate_replies(model, tokenizer, [p for p, _ in compared], max_new_tokens)
        f1[label] = [reference_f1(r, ref) for r, ref in zip(replies, references)]
        out[f"{label}_reference_f1"] = sum(f1[label]) / max(1, len(compared))
    out["compared_rows"] = float(len(compared))
    out["win_rate"] = _win_rate(list(zip(f1["base"], f1["tuned"])))
    return out


def preference_comparison(base: Any, tuned: Any, tokenizer: Any, prepared: Any, *, beta: float = 0.1,
                          n: int = SCORE_ROWS) -> dict[str, float]:
    """On `n` held-out pairs: each model's preference accuracy (the share of pairs where it gives the chosen reply
    a higher log-probability than the rejected one) and mean log-probability margin, and the tuned model's
    implicit DPO reward margin over the base as reference (beta × the change in that margin; the base's is 0 by
    definition) with the share of pairs where it is positive."""
    rows = list(_held_out(prepared, n))
    logps: dict[str, list[tuple[float, float]]] = {}
    for label, model in (("base", base), ("tuned", tuned)):
        model.eval()
        logps[label] = [(completion_logprob(model, tokenizer, r["prompt"], r["chosen"])[0],
                         completion_logprob(model, tokenizer, r["prompt"], r["rejected"])[0]) for r in rows]
    k = max(1, len(rows))
    out: dict[str, float] = {"compared_rows": float(len(rows))}
    for label in ("base", "tuned"):
        out[f"{label}_preference_accuracy"] = sum(c > r for c, r in logps[label]) / k
        out[f"{label}_logp_margin"] = sum(c - r for c, r in logps[label]) / k
    margins = [beta * ((tc - bc) - (tr - br)) for (bc, br), (tc, tr) in zip(logps["base"], logps["tuned"])]
    out["reward_margin"] = sum(margins) / k
    out["reward_accuracy"] = sum(m > 0 for m in margins) / k
    return out


def verifiable_comparison(base: Any, tuned: Any, tokenizer: Any, prepared: Any, reward: Any, *,
                          full_score: float = 1.0, max_new_tokens: int = 64, n: int = COMPARE_ROWS) -> dict[str, float]:
    """The mean verifiable reward of base and tuned replies on `n` held-out rows (a failed score counts 0) and
    their pass rate: the share of replies given the full score (every check passed)."""
    rows = _held_out(prepared, n)
    prompts = list(rows["prompt"])
    columns = {c: list(rows[c]) for c in rows.column_names if c != "prompt"}
    out: dict[str, float] = {"compared_rows": float(len(prompts))}
    for label, model in (("base", base), ("tuned", tuned)):
        replies = generate_replies(model, tokenizer, prompts, max_new_tokens)
        scores = reward(prompts=prompts, completions=[[{"role": "assistant", "content": r}] for r in replies],
                        **columns)
        out[f"{label}_reward"] = sum(float(x or 0.0) for x in scores) / max(1, len(scores))
        out[f"{label}_pass_rate"] = sum(float(x or 0.0) >= full_score - 1e-9 for x in scores) / max(1, len(scores))
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
        out["win_rate"] = _win_rate(pairs)
    return out


# What each base-vs-tuned figure means, for the text report and the plot; lower is better for a loss.
FIGURES = {"heldout_loss": "held-out loss per reply token", "perplexity": "held-out perplexity",
           "reference_f1": "word overlap with the reference reply (F1)",
           "preference_accuracy": "preference accuracy (chosen more likely than rejected)",
           "logp_margin": "log-probability margin, chosen minus rejected", "reward": "held-out verifiable reward",
           "pass_rate": "held-out pass rate (full score)", "judge_score": "judge score"}
_LOWER_IS_BETTER = {"heldout_loss", "perplexity"}


def base_vs_tuned(comparison: dict[str, float]) -> list[tuple[str, float, float]]:
    """(figure, base, tuned) for each figure the comparison holds for both models."""
    return [(name, comparison[f"base_{name}"], comparison[f"tuned_{name}"]) for name in FIGURES
            if f"base_{name}" in comparison and f"tuned_{name}" in comparison]


def describe_comparison(comparison: dict[str, float]) -> list[str]:
    """One line per figure: `held-out pass rate (full score): base 0.125 → tuned 0.25 (better)`."""
    lines = []
    for name, b, t in base_vs_tuned(comparison):
        better = (t < b) if name in _LOWER_IS_BETTER else (t > b)
        verdict = "same" if t == b else "better" if better else "worse"
        lines.append(f"{FIGURES[name]}: base {b:.4g} → tuned {t:.4g} ({verdict})")
    if "win_rate" in comparison:
        lines.append(f"tuned wins {comparison['win_rate']:.0%} of {comparison.get('compared_rows', 0):.0f} "
                     "held-out rows against the base (a tie counts half)")
    if "reward_margin" in comparison:
        lines.append(f"implicit reward margin {comparison['reward_margin']:.4g} (positive on "
                     f"{comparison.get('reward_accuracy', 0):.0%} of the held-out pairs)")
    return lines


def write_report(folder: Path, curves: list[tuple[int, str, float]], summary: dict[str, Any],
                 comparison: dict[str, float] | None = None) -> dict[str, Any]:
    """`report.json` (curves by metric, the summary, base vs tuned), `report.txt` (the same in words) and
    `curves.png` (the curves and the base-vs-tuned figures as bars) if matplotlib is available."""
    folder.mkdir(parents=True, exist_ok=True)
    series: dict[str, dict[int, float]] = defaultdict(dict)
    for step, name, value in curves:
        series[name][step] = value  # a resumed job's rerun step replaces the first attempt's
    comparison = comparison or {}
    report: dict[str, Any] = {"summary": summary, "comparison": comparison,
                              "curves": {k: sorted(v.items()) for k, v in series.items()}, "plot": None}
    if importlib.util.find_spec("matplotlib") is None:
        report["plot_note"] = "no PNG: matplotlib is not installed (pip install matplotlib)"
    else:
        report["plot"] = str(_plot(folder / "curves.png", series, comparison))
    (folder / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    text = ["Base vs tuned on held-out rows:", *(f"  {line}" for line in describe_comparison(comparison))]
    if not comparison:
        text = ["No base-vs-tuned comparison was made."]
    text += ["Summary:", *(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}" for k, v in summary.items())]
    (folder / "report.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    return report


def _plot(path: Path, series: dict[str, dict[int, float]], comparison: dict[str, float]) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display in a job process
    import matplotlib.pyplot as plt

    names = [n for n in ("loss", "reward", "grad_norm", "tokens_per_s") if n in series] or sorted(series)[:4]
    figures = base_vs_tuned(comparison)
    rows = len(names) + len(figures)
    fig, axes = plt.subplots(max(1, rows), 1, figsize=(6, 2.2 * max(1, rows)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        points = sorted(series[name].items())
        ax.plot([p[0] for p in points], [p[1] for p in points])
        ax.set_ylabel(name)
        ax.set_xlabel("step")
    for ax, (name, b, t) in zip(axes[len(names):, 0], figures):
        ax.bar(["base", "tuned"], [b, t], color=["#999999", "#2a7ab0"])
        title = f"{FIGURES[name]}, base vs tuned"
        if "win_rate" in comparison and name in ("reference_f1", "judge_score"):
            title += f" (tuned wins {comparison['win_rate']:.0%})"
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

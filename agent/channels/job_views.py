"""How a followed fine-tuning job looks in a chat: one progress line (terminal), a progress message and the
evaluation report (Markdown, for the chat UI), and how to approve the registered version.

Pure functions of `JobProgress` events; they never poll, start or stop a job.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for hints: the chat UI imports this before the agent has loaded
    from agent.events import JobProgress

_BAR_CELLS = 20
# The evaluation figures a report shows first, with their names in words; the rest follow as they are.
FIGURE_NAMES = {
    "base_heldout_loss": "held-out loss, base", "tuned_heldout_loss": "held-out loss, tuned",
    "base_perplexity": "held-out perplexity, base", "tuned_perplexity": "held-out perplexity, tuned",
    "base_reference_f1": "overlap with the reference reply, base", "tuned_reference_f1":
    "overlap with the reference reply, tuned", "base_preference_accuracy": "preference accuracy, base",
    "tuned_preference_accuracy": "preference accuracy, tuned", "reward_margin": "implicit reward margin (tuned)",
    "base_pass_rate": "pass rate, base", "tuned_pass_rate": "pass rate, tuned",
    "eval_loss": "eval loss", "eval_perplexity": "eval perplexity", "base_reward": "verifiable reward, base",
    "tuned_reward": "verifiable reward, tuned", "reward_gain": "reward gain (tuned − base)",
    "base_judge_score": "judge score, base", "tuned_judge_score": "judge score, tuned",
    "win_rate": "judge's win rate of tuned over base", "judge_failures": "judge failures left out",
    "compared_rows": "held-out rows compared", "loss": "final training loss", "grad_norm": "final gradient norm",
    "tokens_per_s": "tokens/s", "steps": "steps", "duration_estimated_s": "estimated seconds",
    "duration_actual_s": "actual seconds", "duration_ratio": "actual / estimated duration"}


def progress_line(p: JobProgress) -> str:
    """The terminal's line for one progress event."""
    return p.text


def progress_bar(step: int, total: int | None) -> str:
    """`[██████░░░░] 3/5` when the last step is known; just the step otherwise."""
    if not total:
        return f"step {step}"
    done = min(_BAR_CELLS, round(_BAR_CELLS * step / total))
    return f"`[{'█' * done}{'░' * (_BAR_CELLS - done)}]` {step}/{total}"


def progress_markdown(p: JobProgress) -> str:
    """The chat UI's progress message, rewritten in place as the job moves."""
    lines = [f"**Job `{p.job_id}`** — {p.status} · {progress_bar(p.step, p.max_steps)}"]
    shown = [f"{name.replace('_', ' ')} {_value(name, v)}" for name, v in p.metrics.items()
             if name in ("loss", "reward", "grad_norm", "tokens_per_s")]
    if shown and not p.final:
        lines.append("latest: " + " · ".join(shown))
    if p.error:
        lines.append(f"**Error:** {p.error}")
    if p.timed_out:
        lines.append("_Stopped following; the job goes on. Ask “how is the job doing?” to see it again._")
    return "\n\n".join(lines)


def report_markdown(p: JobProgress) -> str:
    """The evaluation report posted when a followed job has succeeded: figures, files, the registered version
    and how to approve it."""
    lines = [f"**Evaluation of job `{p.job_id}`** ({p.step} steps)", "", "| figure | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in evaluation_rows(p.evaluation)]
    if p.report:
        lines += ["", f"Report: `{p.report}`" + (" (the curves are drawn below)" if p.curves else "")]
    if p.model_version:
        lines += ["", f"Registered **{p.model_version}**, pending approval. {approve_hint(p.model_version)}"]
    return "\n".join(lines)


def evaluation_rows(evaluation: dict[str, Any]) -> list[tuple[str, str]]:
    """The evaluation figures as (name in words, value) rows, the known ones first in a reading order."""
    ordered = [k for k in FIGURE_NAMES if k in evaluation] + [k for k in evaluation if k not in FIGURE_NAMES]
    return [(FIGURE_NAMES.get(k, k), _value(k, evaluation[k])) for k in ordered]


def approve_hint(model_version: str) -> str:
    """How an approver approves `name/version`."""
    name, _, version = model_version.rpartition("/")
    return (f"An approver approves it with `lathe models approve {name} {version}` "
            f"(or `lathe models reject …`); `lathe models show {name} {version}` shows its lineage.")


def _value(name: str, value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    if name == "win_rate":
        return f"{value:.0%}"
    if name == "tokens_per_s":
        return f"{value:,.0f}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4g}"

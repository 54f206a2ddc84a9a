"""How a followed fine-tuning job looks in a chat: one progress line (terminal), a progress message and the
evaluation report (Markdown, for the chat UI), and how to approve the registered version.

Pure functions of `JobProgress` events; they never poll, start or stop a job.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tools.job_figures import duration_text, figure_text

if TYPE_CHECKING:  # only for hints: the chat UI imports this before the agent has loaded
    from agent.events import JobProgress

_BAR_CELLS = 20
_SPARKS = "▁▂▃▄▅▆▇█"
_DURATIONS = ("duration_estimated_s", "duration_actual_s", "duration_ratio")  # said in a sentence, not as rows
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
    """`[██████░░░░] step 3 of 5` when the last step is known; just the step otherwise."""
    if not total:
        return f"step {step:,}"
    done = min(_BAR_CELLS, round(_BAR_CELLS * step / total))
    return f"`[{'█' * done}{'░' * (_BAR_CELLS - done)}]` step {step:,} of {total:,}"


def progress_markdown(p: JobProgress) -> str:
    """The chat UI's progress message, rewritten in place as the job moves: where it stands, its time spent and
    left, its last figures and a small loss curve."""
    where = progress_bar(p.step, p.max_steps) + (f" · {p.step / p.max_steps:.0%}" if p.max_steps else "")
    lines = [f"**Job `{p.job_id}`** — {p.status} · {where}"]
    if p.final:
        lines.append(duration_sentence(p) or "")
    elif (times := time_line(p)):
        lines.append(times)
    shown = [f"{_FIGURE_WORDS.get(name, name.replace('_', ' '))} {figure_text(name, v)}"
             for name, v in p.metrics.items() if name in _FIGURE_WORDS]
    if shown and not p.final:
        lines.append("latest: " + " · ".join(shown))
    if len(p.loss_curve) > 1:
        lines.append(f"loss curve {sparkline([v for _, v in p.loss_curve])} "
                     f"(steps {p.loss_curve[0][0]}–{p.loss_curve[-1][0]})")
    if p.error:
        lines.append(f"**Error:** {p.error}")
    if p.timed_out:
        lines.append("_Stopped following; the job goes on. Ask “how is the job doing?” to see it again._")
    return "\n\n".join(line for line in lines if line)


_FIGURE_WORDS = {"loss": "loss", "reward": "reward", "grad_norm": "gradient norm", "tokens_per_s": "tokens/s"}


def remaining_s(p: JobProgress) -> float | None:
    """Seconds left: at the pace of the steps so far once two are logged (loading the model before them does not
    count), else what the plan's estimate leaves."""
    if p.step_s is not None and p.max_steps:
        return p.step_s * max(0, p.max_steps - p.step)
    if p.elapsed_s is None:
        return None
    if p.estimated_s:
        return max(0.0, p.estimated_s - p.elapsed_s)
    return None


def time_line(p: JobProgress) -> str:
    """`elapsed 12 s · about 48 s left · the plan estimated 1 min 05 s` (what is known of it)."""
    parts = []
    if p.elapsed_s is not None:
        parts.append(f"elapsed {duration_text(p.elapsed_s)}")
    if (left := remaining_s(p)) is not None:
        parts.append(f"about {duration_text(left)} left")
    if p.estimated_s:
        parts.append(f"the plan estimated {duration_text(p.estimated_s)}")
    return " · ".join(parts)


def duration_sentence(p: JobProgress) -> str | None:
    """An ended job's time against the plan's estimate: `Took 1 min 12 s; the plan estimated 1 min 30 s (0.80×).`
    The job's own measure (training and evaluation) where it recorded one, else its time from start to end."""
    actual = p.evaluation.get("duration_actual_s", p.elapsed_s)
    estimated = p.evaluation.get("duration_estimated_s", p.estimated_s)
    if actual is None:
        return None
    if not estimated:
        return f"Took {duration_text(actual)}."
    return (f"Took {duration_text(actual)}; the plan estimated {duration_text(estimated)} "
            f"(actual/estimated {actual / estimated:.2f}).")


def sparkline(values: list[float]) -> str:
    """`▇▆▅▃▂▁`: the values' shape in one line of block characters, lowest to highest."""
    low, high = min(values), max(values)
    span = high - low or 1.0
    return "".join(_SPARKS[round((v - low) / span * (len(_SPARKS) - 1))] for v in values)


def report_markdown(p: JobProgress) -> str:
    """The evaluation report posted when a followed job has succeeded: figures, files, the registered version
    and how to approve it."""
    lines = [f"**Evaluation of job `{p.job_id}`** ({p.step} steps)", "", "| figure | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in evaluation_rows(p.evaluation) if name not in _DURATION_WORDS]
    if (took := duration_sentence(p)):
        lines += ["", took]
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
    return figure_text(name, value)


_DURATION_WORDS = {FIGURE_NAMES[k] for k in _DURATIONS}

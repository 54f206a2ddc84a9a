"""A job's figures as a person reads them, formatted by what each figure is: a learning rate in scientific
notation, a count of tokens or rows as a whole number, a rate as a percentage, seconds as minutes and seconds.

Pure functions of a figure's name and value, shared by the `job_status` answer, the chat UI and the terminal.
"""
from __future__ import annotations

from typing import Any

_COUNTS = ("num_tokens", "num_input_tokens_seen", "step", "steps", "compared_rows", "judge_failures", "total_flos",
           "rows", "rows_done", "rows_total")
_PERCENTS = ("win_rate", "accuracy", "pass_rate", "error_rate", "fraction")  # not a learning rate
_SECONDS = ("_s", "_seconds", "runtime")


def duration_text(seconds: float) -> str:
    """`45 s`, `3 min 05 s`, `2 h 04 min`: seconds as a person says them."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def figure_text(name: str, value: Any) -> str:
    """One figure by its name: `learning_rate 2e-05`, `num_tokens 136,987`, `win_rate 62%`, `loss 0.4121`."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    key = name.lower()
    if key.endswith("per_s") or key.endswith("per_second"):
        return f"{value:,.0f}"
    if key.endswith(_SECONDS) and not key.endswith("_loss"):
        return duration_text(value)
    if key.endswith(_PERCENTS) and "margin" not in key and 0 <= value <= 1:
        return f"{value:.0%}"
    if key in _COUNTS or key.startswith("num_") or key.endswith("_count") or key.endswith("_rows"):
        return f"{value:.3g}" if abs(value) >= 1e12 else f"{round(value):,}"
    if key == "epoch":
        return f"{value:.2f}"
    if float(value).is_integer() and abs(value) < 1e12:
        return f"{int(value):,}"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e9):
        return f"{value:.3g}"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.4g}"

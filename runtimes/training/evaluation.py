"""After training: the eval loss on held-out rows, and a report of the training curves (`report.json`, plus a
PNG when matplotlib is installed; without it the report says so instead of failing).

It reads the trainer and the metrics it is given; it never trains and never writes outside `folder`.
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


def write_report(folder: Path, curves: list[tuple[int, str, float]], summary: dict[str, Any]) -> dict[str, Any]:
    """`report.json` (curves by metric, the summary) and `curves.png` if matplotlib is available."""
    folder.mkdir(parents=True, exist_ok=True)
    series: dict[str, dict[int, float]] = defaultdict(dict)
    for step, name, value in curves:
        series[name][step] = value  # a resumed job's rerun step replaces the first attempt's
    report: dict[str, Any] = {"summary": summary,
                              "curves": {k: sorted(v.items()) for k, v in series.items()}, "plot": None}
    if importlib.util.find_spec("matplotlib") is None:
        report["plot_note"] = "no PNG: matplotlib is not installed (pip install matplotlib)"
    else:
        report["plot"] = str(_plot(folder / "curves.png", series))
    (folder / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def _plot(path: Path, series: dict[str, dict[int, float]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display in a job process
    import matplotlib.pyplot as plt

    names = [n for n in ("loss", "reward", "grad_norm", "tokens_per_s") if n in series] or sorted(series)[:4]
    fig, axes = plt.subplots(len(names), 1, figsize=(6, 2.2 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        points = sorted(series[name].items())
        ax.plot([p[0] for p in points], [p[1] for p in points])
        ax.set_ylabel(name)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

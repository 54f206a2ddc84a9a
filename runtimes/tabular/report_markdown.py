"""The report of a trained model as Markdown beside its PNGs (`report.md`): held-out metrics with intervals against
the baseline, the plots, the features that drive the predictions, bias per sensitive column with its verdict, and
the tuning that chose the model."""
from __future__ import annotations

from typing import Any


def markdown(p: Any, r: dict[str, Any]) -> str:
    m = r["metric"]
    lines = [f"# `{p.name}`: {p.task} of `{p.spec.label.column}`", "",
             f"{p.spec.family} on {p.rows:,} rows ({p.split['kind']} split), {r['rows']:,} held out.", "",
             "## Held-out metrics", "",
             "| metric | model | 95% interval | baseline |", "|---|---|---|---|",
             f"| {m} | {r['value']:.4f} | {_ci(r['ci95'])} | {r['baseline']:.4f} ({r.get('baseline_kind', 'baseline')}) |"]
    lines += [f"| {k} | {v:.4f} | {_ci(r['other_metrics_ci95'][k])} | |" for k, v in r["other_metrics"].items()]
    verdict = "beats" if r["beats_baseline"] else "does NOT beat"
    lines += ["", f"The model {verdict} the baseline. Intervals: {r['ci_method']}.", ""]
    lines += [f"![{name}]({name})" for name in _held_out_plots(r)]
    e = r["explanations"]
    lines += ["", "## What drives the predictions (SHAP)", "",
              f"{e['method']}; values in {e['units']}.", "", "| feature | mean abs SHAP |", "|---|---|"]
    lines += [f"| {f['feature']} | {f['mean_abs_shap']:.4f} |" for f in e["top_features"][:10]]
    lines += ["", "![shap_importance.png](shap_importance.png)", "![shap_beeswarm.png](shap_beeswarm.png)", ""]
    for row in e["individual"]:
        why = ", ".join(f"{t['feature']} = {t['value']} ({t['shap']:+.3f})" for t in row["top"])
        lines += [f"- {row['id']} ({row['rank']} output, {row['output']:.3f} against a base of {row['base']:.3f}): "
                  f"{why}", f"  ![{row['plot']}]({row['plot']})"]
    lines += ["", "## Bias", ""]
    if not r["fairness"]:
        lines += ["No column is tagged `sensitive` in the catalog or named as sensitive in the request: no check "
                  "by group was made."]
    for column, f in r["fairness"].items():
        lines += [f"### `{column}` (groups: {f['before']['grouping']})", "",
                  f"- **Verdict: {'review before approving' if f['review'] else 'no difference over the threshold'}.**",
                  f"- Before training: {f['before']['verdict']}.", f"- After training: {f['after']['verdict']}."]
        if f["after"].get("decision"):
            lines.append(f"- A row counts as selected when {f['after']['decision']}.")
        if f["is_feature"]:
            lines.append(f"- `{column}` is itself one of the model's features.")
        after = f["after"]
        if after.get("by_group"):
            keys = [k for k in next(iter(after["by_group"].values()))]
            lines += ["", "| group | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
            lines += [f"| {g} | " + " | ".join(_num(v[k]) for k in keys) + " |" for g, v in after["by_group"].items()]
        lines += [""] + [f"![{name}]({name})" for name in after.get("plots", [])] + [""]
    t = r["tuning"]
    lines += ["", "## Tuning", "",
              f"Optuna study `{t['study']}`: {t['trials']} trials ({t['pruned']} pruned), best validation {m} "
              f"{t[f'best_valid_{m}']:.4f} after {t['rounds']} rounds with "
              + ", ".join(f"{k} = {_num(v)}" for k, v in t["best_params"].items()) + ".",
              "", "## Files", "", *[f"- {name}" for name in r["plots"]], "- report.json", ""]
    return "\n".join(lines)


def _held_out_plots(r: dict[str, Any]) -> list[str]:
    later = set(r["explanations"]["plots"]) | {n for f in r["fairness"].values() for n in f["after"].get("plots", [])}
    return [n for n in r["plots"] if n not in later]


def _ci(ci: list[float]) -> str:
    return f"{ci[0]:.4f} – {ci[1]:.4f}"


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)

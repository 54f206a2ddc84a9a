"""One status tool for every kind of job (fine-tune, batch, …): status, progress in the one shape every kind
reports, the latest metrics, and once it has ended its results (evaluation, report, registered version, predictions
table) or its error. `batch_status` is the same tool, asking for the latest batch by default.

It only reads the job store; it never starts, changes or stops a job.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from catalog.results import QueryResult
from core.errors import UserError
from tools.base import LatheTool, ToolArgs, ToolOutput
from tools.job_figures import figure_text
from tools.risk import Risk

_NOUNS = {"finetune": "fine-tuning job", "batch": "batch job"}
CURVE_POINTS = 40  # the loss curve a progress view draws is thinned to about this many points


class JobStatusArgs(ToolArgs):
    job_id: str | None = Field(None, description="the job's id; the latest job (of `kind`, when given) if left out")
    kind: str | None = Field(None, description="finetune or batch: which kind's latest job, when no id is given")


class JobStatus(LatheTool):
    name: str = "job_status"
    description: str = ("Any job's status (fine-tuning or batch): progress, latest metrics and, once it has ended, "
                        "its evaluation figures, report, registered model version or predictions table, or its "
                        "error. Without a job id: the latest job.")
    args_schema: type[BaseModel] = JobStatusArgs
    risk = Risk.read
    default_kind: str | None = None

    def _run(self, job_id: str | None = None, kind: str | None = None) -> ToolOutput:
        from runtimes.jobs.store import JobStore

        store = JobStore(self.workspace)
        kind = kind or self.default_kind
        if job_id is None:
            jobs = store.list(kind=kind)
            if not jobs:
                raise UserError(f"there is no {_NOUNS.get(kind or '', 'job')} in this workspace yet")
            job_id = max(jobs, key=lambda j: (j.created_at, j.id)).id
        job = store.get(job_id)
        latest = {k: v for k, (_, v) in store.latest_metrics(job.id).items()}
        where = _where(job)
        parts = [f"{'job' if job.kind == 'finetune' else job.kind} {job.id} is {job.status} ({_what(job)}), {where}"]
        unit = {"steps": "step"}.get(job.progress.unit, job.progress.unit)
        rows: list[list[Any]] = [["kind", job.kind], ["status", job.status], [unit, job.progress.done]]
        shown = {k: latest[k] for k in ("loss", "reward", "grad_norm", "tokens_per_s") if k in latest}
        if shown:
            parts.append("latest: " + ", ".join(f"{k} {figure_text(k, v)}" for k, v in shown.items()))
        # Each figure as text formatted by what it is: a table cell would give every float two decimals.
        rows += [[k, figure_text(k, v)] for k, v in latest.items()]
        evaluation: dict[str, Any] = {}
        report = None
        if job.status == "succeeded":
            evaluation = dict((job.lineage or {}).get("metrics") or {})
            figures = {k: v for k, v in evaluation.items() if k.startswith(("eval", "base_", "tuned_", "duration",
                                                                            "test_", "baseline_"))
                       or "win" in k or "reward" in k}
            if figures:
                parts.append("evaluation: " + ", ".join(f"{k} {figure_text(k, v)}" for k, v in figures.items()))
            path = self.workspace.root / "runs" / job.id / "report"
            report = str(path / "report.json") if (path / "report.json").exists() else None
            if report:
                beside = " (curves.png beside it)" if (path / "curves.png").exists() else ""
                parts.append(f"report: {report}{beside}")
            if job.model_version:
                parts.append(f"registered {job.model_version} ({_approval(self.workspace, job.model_version)})")
            if job.output_table:
                parts.append(f"predictions in table `{job.output_table}`")
            rows += [[f"final {k}", figure_text(k, v)] for k, v in evaluation.items()]
        elif job.status == "failed" and job.error:
            parts.append(f"error: {job.error}")
        progress = {"done": job.progress.done, "total": job.progress.total, "unit": job.progress.unit}
        return ToolOutput(text="; ".join(parts), result=QueryResult(sql="", columns=["field", "value"], rows=rows),
                          data={"job_id": job.id, "kind": job.kind, "status": job.status, "progress": progress,
                                "step": job.progress.done, "max_steps": job.progress.total or 0,
                                "rows_done": job.rows_done, "rows_total": job.rows_total,
                                "latest_metrics": latest, "evaluation": evaluation, "report": report,
                                "model_version": job.model_version, "output_table": job.output_table,
                                "error": job.error, "started_at": job.started_at, "finished_at": job.finished_at,
                                "estimated_duration_s": (job.plan or {}).get("estimated_duration_s"),
                                "loss_curve": _thinned([(step, v) for _, step, _, v in store.metrics(job.id, "loss")]),
                                "step_s": _pace(store.metric_times(job.id, "loss"))})


class BatchStatus(JobStatus):
    name: str = "batch_status"
    description: str = ("A batch inference job's status, rows done of all, its predictions table once it has "
                        "succeeded, or its error. Without a job id: the latest batch.")
    default_kind: str | None = "batch"


def _pace(times: list[tuple[int, float]]) -> float | None:
    """Seconds per step between the first and the last logged step, so that loading and preparing before the
    first step do not count."""
    if len(times) < 2 or times[-1][0] <= times[0][0]:
        return None
    (first_step, first_at), (last_step, last_at) = times[0], times[-1]
    return (last_at - first_at) / (last_step - first_step)


def _thinned(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """At most about `CURVE_POINTS` of the points, evenly spread, the last one always kept."""
    if len(points) <= CURVE_POINTS:
        return points
    kept = points[::-(-len(points) // CURVE_POINTS)]
    return kept if kept[-1] == points[-1] else [*kept, points[-1]]


def _where(job: Any) -> str:
    p = job.progress
    if p.unit == "steps":
        return f"step {p.done}" + (f" of {p.total}" if p.total else "")
    return f"{p.done:,} of {p.total or 0:,} {p.unit} done"


def _what(job: Any) -> str:
    s = job.spec
    if job.kind == "train":
        return f"{s.get('family', 'lightgbm')} model of `{s['label']['column']}`"
    source = f"`{s['table']}`" if s.get("table") else "a query"
    if job.kind == "finetune":
        return f"{s.get('technique', 'sft')} of `{s['model']}` on {source}"
    model = (job.plan or {}).get("model_id") or s.get("model")
    return f"`{model}` over {source}"


def _approval(ws: Any, ref: str) -> str:
    """A version's approval as the registry has it now: it may have been decided since its job ended."""
    from runtimes.models.registry import get_version

    name, _, version = ref.rpartition("/")
    try:
        state = get_version(ws, name, version).approval
    except UserError:
        return "no longer in the registry"
    return "pending approval" if state == "pending" else state

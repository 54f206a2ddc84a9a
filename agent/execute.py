"""The `execute` node: runs the next approved step of the plan, one step per graph super-step.

Each result is checkpointed before the next step starts, so a restart never runs a finished step
again and never skips an unfinished one. It never decides whether a step may run (review does).
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from core.errors import UserError
from agent.charts import chart_for
from agent.events import ChartSpec, StepFinished, StepStarted, TableEvent
from agent.state import KEPT_ROWS, AgentState, Failure, Plan, Step, StepResult, TableData
from tools.risk import Risk

if TYPE_CHECKING:
    from langgraph.runtime import Runtime

    from agent.resources import AgentResources

MAX_REPAIRS = 3
_log = logging.getLogger(__name__)


def next_step(plan: Plan, results: dict[str, StepResult]) -> Step | None:
    return next((s for s in plan.order() if s.id not in results), None)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def execute_node(state: AgentState, runtime: Runtime[AgentResources]) -> dict[str, Any]:
    deps = runtime.context
    emit = runtime.stream_writer
    assert state.plan is not None
    step = next_step(state.plan, state.results)
    if step is None:
        return {}
    emit(StepStarted(step_id=step.id, tool=step.tool, title=step.title or step.tool))
    started = _now()
    tool = deps.tools[step.tool]
    try:
        out = tool.run_validated(tool.schema().model_validate(step.args))
    except UserError as e:
        result = StepResult(step_id=step.id, tool=step.tool, ok=False, error=str(e), started_at=started,
                            finished_at=_now())
    except Exception as e:  # a bug in a tool must not end the conversation; it is logged with its traceback
        _log.exception("step %s (%s) failed", step.id, step.tool)
        result = StepResult(step_id=step.id, tool=step.tool, ok=False, error=f"internal error: {type(e).__name__}: {e}",
                            started_at=started, finished_at=_now())
    else:
        full = TableData.from_result(out.result) if out.result is not None else None
        result = StepResult(step_id=step.id, tool=step.tool, ok=True, text=out.text, data=out.data,
                            table=TableData.from_result(out.result, keep=KEPT_ROWS) if full else None,
                            started_at=started, finished_at=_now())
    job_id = started_job(result, tool.risk)
    emit(StepFinished(step_id=step.id, tool=step.tool, ok=result.ok, text=result.text, error=result.error,
                      job_id=job_id, job_kind=result.data.get("kind") if job_id else None,
                      reveal=out.reveal if result.ok else {}))
    if result.ok and full is not None:
        emit(TableEvent(step_id=step.id, table=full, labels=result.data.get("labels") or {},
                        units=result.data.get("units") or {}))
        chart: ChartSpec | None = chart_for(step.id, full)
        if chart is not None:
            emit(chart)
    update: dict[str, Any] = {"results": {**state.results, step.id: result}}
    if not result.ok:
        update["failure"] = Failure(step_id=step.id, tool=step.tool, args=step.args, error=result.error or "")
    return update


def started_job(result: StepResult, risk: Risk) -> str | None:
    """The job a step started, of any kind: a compute step's `job_id` (a read step such as job_status only reports
    one). It is followed through `job_status`, which reads the job's kind from the job itself."""
    job_id = result.data.get("job_id") if result.ok and risk is Risk.compute else None
    return str(job_id) if job_id else None


def after_execute(state: AgentState) -> str:
    if state.failure is not None:
        return "plan" if state.repairs < MAX_REPAIRS else "respond"
    assert state.plan is not None
    return "execute" if next_step(state.plan, state.results) is not None else "respond"

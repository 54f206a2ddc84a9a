"""The planner for SQL typed directly: one `run_sql` step with the text as written.

It never rewrites the SQL; the safe SQL path checks and refuses it.
"""
from __future__ import annotations

from agent.planners.base import Emit, PlannerReply, PlanRequest
from agent.state import Plan, Step


class DirectSqlPlanner:
    name = "direct-sql"

    def plan(self, request: PlanRequest, emit: Emit) -> PlannerReply:
        step = Step(id="s1", tool="run_sql", args={"sql": request.text.strip()}, title="Run the SQL as typed")
        return PlannerReply(plan=Plan(steps=[step], summary="Running your SQL on the warehouse (read-only)."))

"""The planner used when no LLM is configured and the offline planner is not installed.

It says plainly what it can do (SQL typed directly) and how to configure an LLM; it never guesses a plan.
"""
from __future__ import annotations

from agent.planners.base import Emit, PlannerReply, PlanRequest
from agent.planners.direct_sql import DirectSqlPlanner

HOW_TO = ("To ask in plain language, configure an LLM: set `[llm] model = \"ollama/llama3.1\"` (or any LiteLLM "
          "model string, with `api_base` and `api_key_env` as needed) in lathe.toml, or the LATHE_MODEL and "
          "LATHE_API_BASE environment variables.")


class FallbackPlanner:
    name = "fallback"

    def plan(self, request: PlanRequest, emit: Emit) -> PlannerReply:
        if request.failure is not None:
            return PlannerReply(text=f"The query failed: {request.failure.error}\nWith no LLM configured I cannot "
                                     f"correct it; fix the SQL and send it again. {HOW_TO}")
        if request.route == "sql":
            return DirectSqlPlanner().plan(request, emit)
        return PlannerReply(text="No LLM is configured, so I understand only SQL typed directly, e.g. "
                                 "`SELECT count(*) FROM orders`. " + HOW_TO)

"""What the graph's nodes use besides the state: workspace, principal, tools, planner, review policy,
catalog cache. Built once per session and passed as LangGraph's run context; never checkpointed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.workspace import Workspace
from agent.catalog_cache import CatalogCache
from agent.planners.base import Planner
from agent.planners.direct_sql import DirectSqlPlanner
from agent.review import ReviewPolicy
from agent.state import Plan
from tools.base import LatheTool
from tools.registry import ToolRegistry


@dataclass
class AgentResources:
    workspace: Workspace
    principal: Any
    registry: ToolRegistry
    tools: dict[str, LatheTool]
    planner: Planner
    policy: ReviewPolicy
    catalog: CatalogCache

    def planner_for(self, route: str, correcting: bool) -> Planner:
        """SQL typed directly runs as typed; corrections and everything else go to the session's planner."""
        if route == "sql" and not correcting and not getattr(self.planner, "reads_sql_first", False):
            return DirectSqlPlanner()
        return self.planner

    def with_estimates(self, plan: Plan) -> Plan:
        steps = []
        for s in plan.steps:
            tool = self.tools[s.tool]
            steps.append(s.model_copy(update={"estimated_cost": tool.estimate(tool.schema().model_validate(s.args))}))
        return plan.model_copy(update={"steps": steps})

"""Chooses a session's planner: the LLM when one is configured, else the offline planner
(`agent/planners/offline.py`, exposing `create_planner(deps) -> Planner`), else a fallback that understands
only SQL typed directly. It only chooses; it never plans.
"""
from __future__ import annotations

import importlib

from agent.planners.base import Planner, PlannerDeps

OFFLINE_MODULE = "agent.planners.offline"


def choose_planner(deps: PlannerDeps) -> Planner:
    from agent.llm import chat_model, llm_settings

    settings = llm_settings(deps.workspace)
    if settings.configured:
        from agent.planners.llm_planner import LlmPlanner

        return LlmPlanner(chat_model(settings), deps.registry, deps.tools, stream=settings.stream)
    try:
        offline = importlib.import_module(OFFLINE_MODULE)
    except ModuleNotFoundError as e:
        if e.name != OFFLINE_MODULE:
            raise
    else:
        return offline.create_planner(deps)
    from agent.planners.fallback import FallbackPlanner

    return FallbackPlanner()

"""The agent's graph, wired in one place: route → context → plan → review → execute → respond.

Nodes are plain functions in their own modules; state is checkpointed in the workspace's `state.sqlite`
after every step. This module only wires; it holds no logic of its own.
"""
from __future__ import annotations

import sqlite3
from typing import Any

from langgraph.graph import END, START, StateGraph

from agent.context import context_node
from agent.execute import after_execute, execute_node
from agent.planning import after_plan, plan_node
from agent.resources import AgentResources
from agent.respond import respond_node
from agent.review import after_review, review_node
from agent.routing import route_node
from agent.state import STATE_TYPES, AgentState


def build_graph() -> StateGraph:
    g = StateGraph(AgentState, context_schema=AgentResources)
    g.add_node("route", route_node)
    g.add_node("context", context_node)
    g.add_node("plan", plan_node)
    g.add_node("review", review_node)
    g.add_node("execute", execute_node)
    g.add_node("respond", respond_node)

    g.add_edge(START, "route")
    g.add_edge("route", "context")
    g.add_edge("context", "plan")
    g.add_conditional_edges("plan", after_plan, ["review", "respond"])
    g.add_conditional_edges("review", after_review, ["execute", "review", "respond"])  # review: edited or refused
    g.add_conditional_edges("execute", after_execute, ["execute", "plan", "respond"])  # plan: correct a failure
    g.add_edge("respond", END)
    return g


def checkpointer(conn: sqlite3.Connection) -> Any:
    """LangGraph's SQLite checkpointer on `conn`, allowed to rebuild exactly the agent's state types."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
    from langgraph.checkpoint.sqlite import SqliteSaver

    allowed = [(t.__module__, t.__name__) for t in STATE_TYPES]
    return SqliteSaver(conn, serde=JsonPlusSerializer(allowed_msgpack_modules=allowed))


def compile_graph(conn: sqlite3.Connection) -> Any:
    return build_graph().compile(checkpointer=checkpointer(conn))

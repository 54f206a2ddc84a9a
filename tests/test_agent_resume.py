"""Interrupt and resume across processes: a process killed with SIGKILL while a plan waits, another that
approves; a process killed between two steps, another that finishes the run. Each step runs exactly once.

This module also defines two tools with countable side effects (found through `tool_modules`).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from agent import audit_log
from agent.planners.base import Emit, PlannerReply, PlanRequest
from agent.session import Session
from agent.state import Plan, Step
from core.errors import UserError
from catalog.store import CatalogStore
from tests.conftest import ROOT
from tests.scripted_llm import call
from tests.agent_events import collect, done, of
from tests.small_workspace import count_rows, tables_in
from tests.waiting import communicate, wait_for
from tools.base import LatheTool, ToolArgs, ToolOutput
from tools.risk import Risk

pytestmark = pytest.mark.slow

HERE = "tests.test_agent_resume"


class LabelArgs(ToolArgs):
    label: str


class BumpCounter(LatheTool):
    name: str = "bump_counter"
    description: str = "Append a label to bumps.log in the workspace (a countable side effect)."
    args_schema: type[ToolArgs] = LabelArgs
    risk = Risk.write

    def _run(self, label: str) -> ToolOutput:
        with open(self.workspace.root / "bumps.log", "a", encoding="utf-8") as f:
            f.write(label + "\n")
        return ToolOutput(text=f"bumped {label}")


class CrashOnce(LatheTool):
    name: str = "crash_once"
    description: str = "Kill this process the first time it runs; append the label on later runs."
    args_schema: type[ToolArgs] = LabelArgs
    risk = Risk.write

    def _run(self, label: str) -> ToolOutput:
        marker = self.workspace.root / "crashed-once"
        if not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return BumpCounter(workspace=self.workspace)._run(label)


class SlowBump(LatheTool):
    name: str = "slow_bump"
    description: str = "Wait a moment, then append the label to bumps.log (a long write)."
    args_schema: type[ToolArgs] = LabelArgs
    risk = Risk.write

    def _run(self, label: str) -> ToolOutput:
        time.sleep(0.5)
        return BumpCounter(workspace=self.workspace)._run(label)


class OneSlowStepPlanner:
    name = "one-slow-step"

    def plan(self, request: PlanRequest, emit: Emit) -> PlannerReply:
        return PlannerReply(plan=Plan(steps=[Step(id="s1", tool="slow_bump", args={"label": "once"})]))


class ThreeStepPlanner:
    """Always proposes bump → crash_once → bump, each after the one before."""
    name = "three-steps"

    def plan(self, request: PlanRequest, emit: Emit) -> PlannerReply:
        return PlannerReply(plan=Plan(summary="three steps", steps=[
            Step(id="s1", tool="bump_counter", args={"label": "one"}),
            Step(id="s2", tool="crash_once", args={"label": "two"}, depends_on=["s1"]),
            Step(id="s3", tool="bump_counter", args={"label": "three"}, depends_on=["s2"])]))


def _python(code: str, *args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "HF_HUB_OFFLINE": "1", **(env or {})}
    for k in ("LATHE_MODEL", "LATHE_API_BASE"):
        if k not in (env or {}):
            full_env.pop(k, None)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


WAIT_FOR_APPROVAL = """
    import sys, time
    from agent.session import Session
    session = Session(sys.argv[1], sys.argv[2])
    for event in session.send("save the EMEA customers as a table"):
        if event.type == "approval_needed":
            print("WAITING", event.plan_hash, flush=True)
    time.sleep(600)  # killed here, with the plan waiting in state.sqlite
"""

APPROVE = """
    import json, sys
    from agent.session import Session
    from core.errors import UserError
    session = Session(sys.argv[1], sys.argv[2])
    try:
        print(json.dumps([e.to_json() for e in session.approve(reason="ok from another process")]))
    except UserError as e:
        print("ERROR", e)
"""


def test_killed_while_waiting_then_approved_from_another_process(small_ws, llm):
    llm.push(call("create_derived_table", name="emea_customers",
                  select_sql="SELECT * FROM customers WHERE region = 'EMEA'"))
    first = _python(WAIT_FOR_APPROVAL, str(small_ws.root), "t1",
                    env={"LATHE_MODEL": "openai/scripted", "LATHE_API_BASE": llm.url})
    line = first.stdout.readline()
    assert line.startswith("WAITING"), line + first.stderr.read()
    first.send_signal(signal.SIGKILL)
    communicate(first)
    assert first.returncode == -signal.SIGKILL
    plan_hash = line.split()[1]
    assert "emea_customers" not in tables_in(small_ws)

    second = _python(APPROVE, str(small_ws.root), "t1")
    out, err = communicate(second)
    assert second.returncode == 0 and out.startswith("["), out + err
    events = json.loads(out)
    assert [e["type"] for e in events if e["type"].startswith("step")] == ["step_started", "step_finished"]
    assert events[-1]["status"] == "answered"

    third = _python(APPROVE, str(small_ws.root), "t1")
    out, err = communicate(third)
    assert out.startswith("ERROR no plan waits for approval in thread t1"), out + err

    assert count_rows(small_ws, "emea_customers") == 3
    assert len([x for x in CatalogStore(small_ws).load().lineage if x.table == "emea_customers"]) == 3
    assert [(r.decision, r.plan_hash, r.reason) for r in audit_log.entries(small_ws, "t1")] == [
        ("approved", plan_hash, "ok from another process")]
    assert len(llm.requests) == 1


FINISH = """
    import json, sys
    from agent.session import Session
    from tests.test_agent_resume import HERE, ThreeStepPlanner
    session = Session(sys.argv[1], sys.argv[2], planner=ThreeStepPlanner(), tool_modules=[HERE])
    events = session.approve() if sys.argv[3] == "approve" else session.resume()
    print(json.dumps([e.to_json() for e in events]))
"""


def test_killed_between_steps_then_finished_without_repeating_a_step(small_ws):
    session = Session(small_ws, "t1", planner=ThreeStepPlanner(), tool_modules=[HERE])
    events = collect(session.send("do the three things"))
    assert done(events).status == "waiting_approval" and of(events, "approval_needed")[0].needs_approval == ["s1", "s2", "s3"]
    log = Path(small_ws.root / "bumps.log")

    crashed = _python(FINISH, str(small_ws.root), "t1", "approve")
    out, err = communicate(crashed)
    assert crashed.returncode == -signal.SIGKILL, err
    assert log.read_text().splitlines() == ["one"]
    assert session.pending() is None

    finished = _python(FINISH, str(small_ws.root), "t1", "resume")
    out, err = communicate(finished)
    assert finished.returncode == 0, err
    events = json.loads(out)
    assert [e["step_id"] for e in events if e["type"] == "step_started"] == ["s2", "s3"]
    assert events[-1]["status"] == "answered"
    assert log.read_text().splitlines() == ["one", "two", "three"]
    assert [r.decision for r in audit_log.entries(small_ws, "t1")] == ["approved"]

    # Nothing is left to finish: resuming again runs nothing.
    assert collect(session.resume()) == []
    assert log.read_text().splitlines() == ["one", "two", "three"]


def test_a_new_message_first_finishes_an_interrupted_run(small_ws):
    session = Session(small_ws, "t1", planner=ThreeStepPlanner(), tool_modules=[HERE])
    collect(session.send("do the three things"))
    crashed = _python(FINISH, str(small_ws.root), "t1", "approve")
    communicate(crashed)
    assert crashed.returncode == -signal.SIGKILL
    events = collect(session.send("and again"))
    assert [e.step_id for e in of(events, "step_started")] == ["s2", "s3"]
    assert [e.status for e in of(events, "done")] == ["answered", "waiting_approval"]
    assert Path(small_ws.root / "bumps.log").read_text().splitlines() == ["one", "two", "three"]


def test_two_approvals_at_once_run_the_step_once(small_ws):
    sessions = [Session(small_ws, "t1", planner=OneSlowStepPlanner(), tool_modules=[HERE]) for _ in range(2)]
    collect(sessions[0].send("bump once"))
    # Both decisions pass their first checks before either runs; the thread lock lets one through.
    runs = [s.approve() for s in sessions]
    outcomes: list[str] = []

    def consume(events):
        try:
            outcomes.append(done(collect(events)).status)
        except UserError as e:
            outcomes.append(str(e))

    workers = [threading.Thread(target=consume, args=(r,)) for r in runs]
    for w in workers:
        w.start()
    wait_for(lambda: not any(w.is_alive() for w in workers), progress=lambda: len(outcomes), what="both approvals")
    assert sorted(outcomes) == ["answered", "no plan waits for approval in thread t1"]
    assert Path(small_ws.root / "bumps.log").read_text().splitlines() == ["once"]
    assert [r.decision for r in audit_log.entries(small_ws, "t1")] == ["approved"]

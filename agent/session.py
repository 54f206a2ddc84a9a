"""`Session`: the one entry for every front-end. `send(text)` and `decide(...)` yield typed events;
`pending()` shows the plan waiting for approval; `follow_job(id)` yields a job's progress until it ends
(`job_progress(id)` is one look at it); `new_alerts(since)` gives monitors' alerts to push into the chat;
`Session.threads(ws)` lists conversations.

A session is one thread of one workspace for one principal; it holds a connection to `state.sqlite`
and per-session caches, never results across threads.
"""
from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from core.errors import UserError
from core.principal import Principal, may_approve
from core.workspace import Workspace
from agent import audit_log, thread_index
from agent.audit_log import AuditEntry
from agent.catalog_cache import CatalogCache
from agent.events import AlertRaised, ApprovalNeeded, Done, ErrorEvent, Event, JobProgress
from agent.planners import choose_planner
from agent.planners.base import Planner, PlannerDeps
from agent.resources import AgentResources
from agent.review import ReviewPolicy, own_approval_refused
from agent.state import AgentState, Plan, Turn
from agent.thread_index import ThreadInfo
from agent.thread_lock import thread_lock
from tools.registry import ToolRegistry

# Nodes after approval: a run stopped there (a crash) is finished before anything else happens.
_MUST_FINISH = frozenset({"execute", "respond"})
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
# What a progress line shows while a job runs, and the evaluation figures its last line shows.
_RUNNING_FIGURES = ("loss", "reward", "grad_norm", "tokens_per_s")
_FINAL_FIGURES = ("eval_loss", "base_heldout_loss", "tuned_heldout_loss", "base_preference_accuracy", "tuned_preference_accuracy",
                  "reward_margin", "base_reward", "tuned_reward", "base_pass_rate", "tuned_pass_rate",
                  "base_judge_score", "tuned_judge_score", "win_rate", "duration_ratio")


class PendingApproval(BaseModel):
    thread_id: str
    plan: Plan
    plan_hash: str
    needs_approval: list[str]
    requested_by: str = ""
    notice: str | None = None


class Session:
    def __init__(self, workspace: Workspace | str | Path, thread_id: str | None = None, principal: Any = None, *,
                 planner: Planner | Callable[[PlannerDeps], Planner] | None = None,
                 tool_modules: Iterable[str] = ()):
        from agent.graph import compile_graph  # LangGraph is imported when a session starts, not before

        ws = workspace if isinstance(workspace, Workspace) else Workspace.resolve(workspace)
        self.workspace = ws.require()
        self.thread_id = thread_id or uuid.uuid4().hex[:16]
        self.principal = principal if principal is not None else Principal.local_admin()
        registry = ToolRegistry.discover(tuple(tool_modules))
        tools = registry.bind(self.workspace, self.principal)
        cache = CatalogCache(self.workspace)
        deps = PlannerDeps(self.workspace, registry, tools, cache)
        if planner is None:
            chosen = choose_planner(deps)
        elif isinstance(planner, Planner):
            chosen = planner
        else:
            chosen = planner(deps)
        self.resources = AgentResources(workspace=self.workspace, principal=self.principal, registry=registry,
                                        tools=tools, planner=chosen, policy=ReviewPolicy.for_workspace(self.workspace),
                                        catalog=cache)
        self._conn = sqlite3.connect(self.workspace.state_path, check_same_thread=False, timeout=30)
        self._graph = compile_graph(self._conn)
        self._config = {"configurable": {"thread_id": self.thread_id}}

    # ---- conversation ---------------------------------------------------------------------
    def send(self, text: str) -> Iterator[Event]:
        """One turn: the answer as events, ending with `Done` (or with `ApprovalNeeded` and `Done`).

        Raises `UserError` at once for an empty message or while a plan waits for a decision.
        """
        if not text or not text.strip():
            raise UserError("the message is empty: ask a question, or type SQL")
        waiting = self.pending()
        if waiting is not None:
            raise UserError(f"a plan waits for approval in thread {self.thread_id} (steps "
                            f"{', '.join(waiting.needs_approval)}): approve, reject or edit it first")
        return self._turn(text)

    def _turn(self, text: str) -> Iterator[Event]:
        with thread_lock(self.workspace, self.thread_id):
            if self.pending() is not None:  # another process got there first
                raise UserError(f"a plan waits for approval in thread {self.thread_id}: approve, reject or edit it first")
            if self._unfinished():  # a run a crash cut short is finished first: its approved steps still run
                yield from self._run(None)
            thread_index.touch(self.workspace, self.thread_id, text, self.principal.name)
            turn = {"history": [Turn(role="user", text=text)], "request": text, "requested_by": self.principal.name,
                    "requested_roles": sorted(getattr(self.principal, "roles", ()) or ()), "route": "", "plan": None, "reply": "", "review": None, "results": {}, "failure": None,
                    "repairs": 0, "outcome": ""}
            yield from self._run(turn)

    def decide(self, action: Literal["approve", "reject", "edit"], *, reason: str = "",
               edits: dict[str, dict[str, Any]] | None = None, plan_hash: str | None = None) -> Iterator[Event]:
        """Approve, reject (with a reason) or edit the waiting plan; the graph goes on from where it stopped.

        `plan_hash` (from the approval request) guards against deciding on a plan that has changed since.
        """
        from agent.state import Decision

        if action not in ("approve", "reject", "edit"):
            raise UserError(f"unknown decision `{action}`: use approve, reject or edit")
        waiting = self.pending()
        if waiting is None:
            raise UserError(f"no plan waits for approval in thread {self.thread_id}")
        if plan_hash is not None and plan_hash != waiting.plan_hash:
            raise UserError(f"the plan has changed since it was shown (now {waiting.plan_hash}, not {plan_hash}): "
                            "look at it again and decide on the new one")
        decision_id = uuid.uuid4().hex
        roles = sorted(getattr(self.principal, "roles", ()) or ())
        if action == "approve" and not may_approve(roles):
            audit_log.record(self.workspace, AuditEntry(
                decision_id=decision_id, thread_id=self.thread_id, principal=self.principal.name,
                plan_hash=waiting.plan_hash, decision="refused", reason="approving needs the approver role"))
            raise UserError(f"`{self.principal.name}` may not approve this plan: approving needs the `approver` role")
        if action == "approve":
            refused = own_approval_refused(self.workspace, self.resources.policy, waiting.plan,
                                           waiting.needs_approval, waiting.requested_by, self.principal.name)
            if refused:
                audit_log.record(self.workspace, AuditEntry(
                    decision_id=decision_id, thread_id=self.thread_id, principal=self.principal.name,
                    plan_hash=waiting.plan_hash, decision="refused", reason="four-eyes: the asker may not approve"))
                raise UserError(refused)
        if action == "edit":
            # a bad edit (or one whose estimate refuses its arguments) fails here; nothing changes
            self.resources.with_estimates(waiting.plan.edited(edits or {}, self.resources.registry))
        decision = Decision(action=action, principal=self.principal.name, roles=roles, reason=reason,
                            edits=edits or {}, plan_hash=waiting.plan_hash, decision_id=decision_id)
        return self._decided(decision)

    def _decided(self, decision: Any) -> Iterator[Event]:
        from langgraph.types import Command

        with thread_lock(self.workspace, self.thread_id):
            # Checked again under the lock: a decision sent at the same time from elsewhere may have won.
            waiting = self.pending()
            if waiting is None:
                raise UserError(f"no plan waits for approval in thread {self.thread_id}")
            if waiting.plan_hash != decision.plan_hash:
                raise UserError(f"the plan has changed since it was shown (now {waiting.plan_hash}): "
                                "look at it again and decide on the new one")
            yield from self._run(Command(resume=decision.model_dump()))

    def approve(self, reason: str = "", plan_hash: str | None = None) -> Iterator[Event]:
        return self.decide("approve", reason=reason, plan_hash=plan_hash)

    def reject(self, reason: str, plan_hash: str | None = None) -> Iterator[Event]:
        return self.decide("reject", reason=reason, plan_hash=plan_hash)

    def edit(self, edits: dict[str, dict[str, Any]], reason: str = "", plan_hash: str | None = None) -> Iterator[Event]:
        return self.decide("edit", edits=edits, reason=reason, plan_hash=plan_hash)

    def resume(self) -> Iterator[Event]:
        """Finish a run that stopped part-way (the process died): unfinished steps run, finished ones do not."""
        with thread_lock(self.workspace, self.thread_id):
            if self._unfinished():
                yield from self._run(None)

    # ---- following a job ------------------------------------------------------------------
    def follow_job(self, job_id: str, interval: float = 1.0, timeout: float | None = None) -> Iterator[JobProgress]:
        """A job's progress through the `job_status` tool, polled every `interval` seconds and yielded when it
        changed; the last event (`final`) carries the evaluation figures, the report and the registered version.

        Ending the iteration (or Ctrl-C) stops following, never the job. With `timeout` (seconds), following
        stops there with one more event marked `timed_out`. Raises `UserError` at once for an unknown job.
        """
        if not interval > 0:
            raise UserError(f"the polling interval must be a positive number of seconds, got {interval!r}")
        if timeout is not None and not timeout >= 0:
            raise UserError(f"the timeout must be a number of seconds, 0 or more, got {timeout!r}")
        first = self.job_progress(job_id)
        return self._following(first, interval, timeout)

    def _following(self, progress: JobProgress, interval: float, timeout: float | None) -> Iterator[JobProgress]:
        deadline = None if timeout is None else time.monotonic() + timeout
        shown: tuple[Any, ...] | None = None
        while not progress.final:
            seen = (progress.status, progress.step, progress.metrics, progress.model_version)
            if seen != shown:
                yield progress
                shown = seen
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                yield progress.model_copy(update={"timed_out": True, "text": progress.text
                                                  + f" (stopped following after {timeout:g} s; the job goes on)"})
                return
            time.sleep(interval if left is None else min(interval, left))
            progress = self.job_progress(progress.job_id)
        yield progress

    def started_jobs(self) -> list[str]:
        """Every job this thread's plans started, oldest first."""
        from agent.execute import started_job

        started: dict[str, None] = {}
        for snap in reversed(list(self._graph.get_state_history(self._config))):  # results are kept per plan
            for result in (AgentState.model_validate(snap.values).results.values() if snap.values else ()):
                tool = self.resources.tools.get(result.tool)
                job_id = started_job(result, tool.risk) if tool is not None else None
                if job_id is not None:
                    started[job_id] = None
        return list(started)

    def running_jobs(self) -> list[str]:
        """Jobs this thread's plans started that have not ended, oldest first: what a chat resumed after a
        reload or a restart follows again."""
        running = []
        for job_id in self.started_jobs():
            try:
                if not self.job_progress(job_id).final:
                    running.append(job_id)
            except UserError:  # removed since
                continue
        return running

    def job_progress(self, job_id: str) -> JobProgress:
        """Where the job stands now (one poll of the `job_status` tool); `UserError` for an unknown job."""
        tool = self.resources.tools.get("job_status")
        if tool is None:
            raise UserError("following a job needs the `job_status` tool, and this session was started without it")
        out = tool.run_validated(tool.schema().model_validate({"job_id": job_id}))
        return progress_event(out.data)

    # ---- alerts -----------------------------------------------------------------------------
    def new_alerts(self, since: float, *, run_due: bool = True) -> list[AlertRaised]:
        """Alerts raised after `since` (a UNIX time), oldest first, for a front-end to push into the chat.

        With `run_due`, monitors whose schedule is due run first, so an open chat keeps them on schedule
        (runs are claimed in the state database: several front-ends never run one twice)."""
        from tools.monitoring import alerts_after, run_due_monitors

        if run_due:
            run_due_monitors(self.workspace)
        return [AlertRaised(alert_id=a["id"], endpoint=a["endpoint"], rule=a["rule"], message=a["message"],
                            created_at=a["created_at"]) for a in alerts_after(self.workspace, since)]

    # ---- what the thread holds ------------------------------------------------------------
    def pending(self) -> PendingApproval | None:
        snap = self._graph.get_state(self._config)
        for intr in snap.interrupts:
            return PendingApproval.model_validate(intr.value)
        return None

    def state(self) -> AgentState:
        values = self._graph.get_state(self._config).values
        return AgentState.model_validate(values) if values else AgentState()

    def history(self) -> list[Turn]:
        return self.state().history

    @staticmethod
    def threads(workspace: Workspace | str | Path) -> list[ThreadInfo]:
        ws = workspace if isinstance(workspace, Workspace) else Workspace.resolve(workspace)
        return thread_index.list_threads(ws)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- running the graph ----------------------------------------------------------------
    def _unfinished(self) -> bool:
        snap = self._graph.get_state(self._config)
        return not snap.interrupts and bool(set(snap.next) & _MUST_FINISH)

    def _run(self, graph_input: Any) -> Iterator[Event]:
        waiting: list[Event] = []
        try:
            for mode, data in self._graph.stream(graph_input, self._config, context=self.resources,
                                                 stream_mode=["custom", "updates"], durability="sync"):
                if mode == "custom":
                    yield data
                elif "__interrupt__" in data:
                    waiting += [ApprovalNeeded.model_validate(i.value) for i in data["__interrupt__"]]
        except UserError as e:  # e.g. a catalog file broken by hand: say so, keep the thread usable
            yield ErrorEvent(message=str(e))
            yield Done(thread_id=self.thread_id, status="failed", text=str(e))
            return
        # Announced only once the run has ended: by then the waiting plan is in state.sqlite, so any
        # process can decide on it even if this one dies right after.
        yield from waiting
        yield self._done()

    def _done(self) -> Done:
        snap = self._graph.get_state(self._config)
        if snap.interrupts:
            return Done(thread_id=self.thread_id, status="waiting_approval",
                        text="The plan waits for approval: approve, reject or edit it.")
        state = AgentState.model_validate(snap.values)
        last = state.history[-1].text if state.history and state.history[-1].role == "assistant" else ""
        return Done(thread_id=self.thread_id, status=state.outcome or "answered", text=last)


def progress_event(data: dict[str, Any]) -> JobProgress:
    """The `job_status` tool's data, for a job of any kind, as a progress event with its one-line text."""
    status, step = str(data["status"]), int(data.get("step") or 0)
    kind, unit = str(data.get("kind") or "finetune"), str((data.get("progress") or {}).get("unit") or "steps")
    total = int(data.get("max_steps") or 0)
    total = total if total > 0 else None  # -1: it trains for whole epochs
    metrics = {k: float(v) for k, v in (data.get("latest_metrics") or {}).items()}
    final = status in FINAL_STATUSES
    name = f"{'job' if kind == 'finetune' else kind} {data['job_id']}"
    where = (f"step {step}" + (f" of {total}" if total else "") if unit == "steps"
             else f"{step:,} of {total or 0:,} {unit}")
    if status == "succeeded":
        evaluation = dict(data.get("evaluation") or {})
        figures = [_figure(k, evaluation[k]) for k in _FINAL_FIGURES if isinstance(evaluation.get(k), int | float)]
        figures += [_figure(k, v) for k, v in evaluation.items()  # a tabular model's held-out metric and baseline
                    if k.startswith(("test_", "baseline_")) and isinstance(v, int | float)]
        text = (f"{name} succeeded after {step} steps" if unit == "steps" else f"{name} succeeded: {where}") \
            + "".join(f"; {f}" for f in figures)
        if data.get("model_version"):
            text += f"; registered {data['model_version']} (pending approval)"
        if data.get("output_table"):
            text += f"; predictions in table `{data['output_table']}`"
    elif status == "failed":
        text = f"{name} failed at {where}: {data.get('error') or 'no reason recorded'}"
    elif status == "cancelled":
        text = f"{name} was cancelled at {where}"
    else:
        shown = [_figure(k, metrics[k]) for k in _RUNNING_FIGURES if k in metrics]
        text = f"{name} is {status}: {where}" + "".join(f", {f}" for f in shown)
    report = data.get("report") if final else None
    curves = str(Path(report).with_name("curves.png")) if report else None
    return JobProgress(job_id=str(data["job_id"]), kind=kind, unit=unit, status=status, step=step, max_steps=total,
                       metrics=metrics, text=text, final=final,
                       evaluation=dict(data.get("evaluation") or {}) if final else {},
                       report=report, curves=curves if curves and Path(curves).exists() else None,
                       model_version=data.get("model_version") if final else None,
                       output_table=data.get("output_table") if final else None,
                       error=data.get("error") if status == "failed" else None,
                       elapsed_s=_elapsed(data), estimated_s=data.get("estimated_duration_s"), step_s=data.get("step_s"),
                       loss_curve=[(int(st), float(v)) for st, v in data.get("loss_curve") or ()])


def _elapsed(data: dict[str, Any]) -> float | None:
    started = data.get("started_at")
    return None if started is None else max(0.0, float(data.get("finished_at") or time.time()) - float(started))


def _figure(name: str, value: float) -> str:
    from tools.job_figures import figure_text

    if name == "tokens_per_s":
        return f"{value:,.0f} tokens/s"
    if name == "win_rate":
        return f"win rate of tuned over base {value:.0%}"
    return f"{name.replace('_', ' ')} {figure_text(name, value)}"

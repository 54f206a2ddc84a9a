"""Tools for batch and asynchronous inference from the chat: run a model over a table or query into a predictions
table (risk `compute`, so it waits for approval), follow a batch, submit a request to the async queue (`compute`)
and read an async request's status and result.

Thin wrappers over `runtimes/serving/batch/transform.py` and the async queue: the status tool changes nothing; the batch
runs as a job in its own process and the async request waits for the queue's workers.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from core.errors import UserError
from catalog.results import QueryResult
from runtimes.serving.batch.transform import BatchSpec
from tools.base import LatheTool, ToolArgs, ToolOutput
from tools.risk import Risk


class RunBatchArgs(BatchSpec, ToolArgs):
    """A batch's spec, field for field."""


_PLANS: dict[tuple[Any, ...], Any] = {}  # one plan per request, person and warehouse state


class RunBatch(LatheTool):
    name: str = "run_batch"
    description: str = ("Run a model over every row of a catalog table or a read-only query and write a predictions "
                        "table to the warehouse (prompt, prediction, tokens, latency, model), as a resumable job. "
                        "Spends compute, so it waits for approval. Follow it with `job_status`.")
    args_schema: type[BaseModel] = RunBatchArgs
    risk = Risk.compute

    def _plan(self, a: RunBatchArgs) -> Any:
        """The plan the approval shows, kept per request and warehouse state: the job then runs this very plan."""
        from runtimes.serving.batch.transform import BatchSpec, plan_batch

        ws = self.workspace
        key = (str(ws.root), a.model_dump_json(), getattr(self.principal, "name", None),
               ws.warehouse_path.stat().st_mtime if ws.warehouse_path.exists() else 0.0)
        if key not in _PLANS:
            _PLANS[key] = plan_batch(ws, BatchSpec.parse({**a.model_dump(exclude_none=True)}), self.principal)
        return _PLANS[key]

    def estimate(self, args: BaseModel) -> str:
        try:
            plan = self._plan(RunBatchArgs.model_validate(args.model_dump()))
        except UserError as e:
            return f"cannot estimate: {e}"
        return "; ".join(plan.explain().splitlines()[:5])

    def _run(self, **args: Any) -> ToolOutput:
        from runtimes.serving.batch.transform import run_batch

        plan = self._plan(RunBatchArgs(**args))
        job = run_batch(self.workspace, plan)
        return ToolOutput(text=f"started batch job {job.id}: `{plan.model_id}` over {plan.rows:,} rows into table "
                               f"`{plan.into}`; ask \"how is the batch doing?\" to follow it",
                          data={"job_id": job.id, "kind": job.kind, "status": job.status, "rows": plan.rows,
                                "into": plan.into,
                                "plan": plan.explain()})


class SubmitAsyncArgs(ToolArgs):
    target: str = Field(..., min_length=1, description="an endpoint name, or a model (NAME, NAME@N, a base model)")
    message: str = Field(..., min_length=1, description="the text to send")
    kind: Literal["chat", "completion"] = Field("chat", description="a chat message (default) or a plain prompt")
    model: str | None = Field(None, description="which of an endpoint's models answers, when it serves several")
    max_tokens: int = Field(64, ge=1, le=8192)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    webhook: str | None = Field(None, description="a URL to POST the result to when it is ready")


class SubmitAsync(LatheTool):
    name: str = "submit_async"
    description: str = ("Queue a request for asynchronous inference by an endpoint or a model; answers its id at "
                        "once. The queue's workers answer it; read it with `async_status`.")
    args_schema: type[BaseModel] = SubmitAsyncArgs
    risk = Risk.compute

    def estimate(self, args: BaseModel) -> str:
        a = SubmitAsyncArgs.model_validate(args.model_dump())
        return f"one request to `{a.target}`, up to {a.max_tokens} new tokens, answered by the async workers"

    def _run(self, target: str, message: str, kind: str = "chat", model: str | None = None, max_tokens: int = 64,
             temperature: float = 1.0, webhook: str | None = None) -> ToolOutput:
        from runtimes.serving.queue.store import submit, summary

        body: dict[str, Any] = ({"prompt": message} if kind == "completion"
                                else {"messages": [{"role": "user", "content": message}]})
        body.update(max_tokens=max_tokens, temperature=temperature, **({"model": model} if model else {}))
        request_id = submit(self.workspace, target, body, webhook=webhook)
        live = [w for w in summary(self.workspace)["workers"] if w["alive"]]
        note = ""
        if not live:  # from the chat nobody keeps a pool running: one worker answers and stops when done
            from runtimes.serving.queue.worker import start_detached

            start_detached(self.workspace, target)
            note = " No worker was running: one started and stops once the queue is empty."
        return ToolOutput(text=f"queued request {request_id} for `{target}`.{note}",
                          data={"id": request_id, "workers": len(live), "worker_started": not live})


class AsyncStatusArgs(ToolArgs):
    request_id: str | None = Field(None, description="the request's id; the queue's summary when left out")


class AsyncStatus(LatheTool):
    name: str = "async_status"
    description: str = ("An async request's status and, once done, its answer (with webhook delivery); or, without "
                        "an id, the queue's requests per model and status and its workers.")
    args_schema: type[BaseModel] = AsyncStatusArgs
    risk = Risk.read

    def _run(self, request_id: str | None = None) -> ToolOutput:
        from runtimes.serving.queue.store import result, status, summary

        if request_id is None:
            s = summary(self.workspace)
            statuses = ("queued", "running", "done", "failed", "cancelled")
            rows = [[m, *[c.get(x, 0) for x in statuses]] for m, c in s["requests"].items()]
            live = sum(1 for w in s["workers"] if w["alive"])
            text = (f"{sum(sum(c.values()) for c in s['requests'].values()):,} async requests; "
                    + ", ".join(f"{x} {sum(c.get(x, 0) for c in s['requests'].values()):,}" for x in statuses)
                    + f"; {live} worker{'s' if live != 1 else ''} running")
            return ToolOutput(text=text, result=QueryResult(sql="", columns=["model", *statuses], rows=rows),
                              data={"requests": s["requests"], "workers_alive": live})
        st = status(self.workspace, request_id)
        data: dict[str, Any] = st.to_json()
        text = f"request {st.id} for `{st.model}` is {st.status}"
        if st.status == "done":
            r = result(self.workspace, request_id)
            data["result"] = r.to_json()
            text += f": {r.text}"
        elif st.status == "failed":
            text += f": {st.error}"
        if st.webhook:
            text += f" (webhook {st.webhook['status']} after {st.webhook['attempts']} tries)"
        return ToolOutput(text=text, data=data)

"""Tools for serving from the chat: deploy approved model versions behind an OpenAI-compatible endpoint (risk
`deploy`), list endpoints, send an endpoint a message, and stop one (risk `deploy`).

Thin wrappers over `runtimes/serving/`: listing and invoking change nothing; only `deploy_model` and
`stop_endpoint` start or stop processes, and both wait for approval in the agent, as does an invocation beyond a
small budget of tokens (it spends compute).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field, create_model

from core.errors import UserError
from catalog.results import QueryResult
from runtimes.serving.endpoints.deploy import DeploySpec
from tools.base import LatheTool, ToolArgs, ToolOutput, spec_fields
from tools.risk import Risk

# An invocation within these is a look at the endpoint; beyond them it spends compute and waits for approval.
READ_MAX_TOKENS = 256
READ_MAX_MESSAGE_CHARS = 4000


# A deploy's spec, but from the chat an endpoint always listens on loopback, and the mode is a yes/no.
DeployModelArgs = create_model(
    "DeployModelArgs", __base__=ToolArgs, **spec_fields(DeploySpec, exclude=("host", "mode")),
    serverless=(bool, Field(False, description="load on the first request and unload when idle (scale to zero)")))


class DeployModel(LatheTool):
    name: str = "deploy_model"
    description: str = ("Deploy approved model versions behind an OpenAI-compatible endpoint on this machine "
                        "(real-time, or serverless: scale to zero when idle). Answers the URL and the API key, "
                        "shown once. Refuses versions not approved and adapters that do not fit their base.")
    args_schema: type[BaseModel] = DeployModelArgs
    risk = Risk.deploy

    def estimate(self, args: BaseModel) -> str:
        a = DeployModelArgs.model_validate(args.model_dump())
        how = (f"serverless: loads on the first request, unloads after {a.idle_timeout:g} s idle" if a.serverless
               else "real-time: loads now and stays up")
        return f"starts an endpoint process on 127.0.0.1 serving {', '.join(a.models)} ({how})"

    def _run(self, **args: Any) -> ToolOutput:
        from runtimes.serving.endpoints.deploy import deploy

        a = DeployModelArgs.model_validate(args).model_dump(exclude={"models", "serverless"})
        from tools.base import principal_or_local

        d = deploy(self.workspace, args["models"], mode="serverless" if args.get("serverless") else "realtime",
                   owner=principal_or_local(self.principal).name, **a)
        e = d.endpoint
        lines = [f"endpoint `{e.name}` is {e.status} at {e.url} ({e.mode}), serving {', '.join(e.model_ids)}"]
        reveal: dict[str, str] = {}
        if d.api_key:  # the thread keeps a redacted key; the key itself goes to the person once
            lines.append(f"API key {redacted(d.api_key)} (shown once in the answer, not kept)")
            reveal = {"api_key": d.api_key, "url": e.url, "model": e.model_ids[0], "endpoint": e.name}
        else:
            lines.append("it already existed; its API key is unchanged")
        return ToolOutput(text="\n".join(lines), data={"endpoint": e.to_json(), "api_key": redacted(d.api_key),
                                                       "created": d.created}, reveal=reveal)


def redacted(key: str | None) -> str | None:
    """A key as it may be kept: enough to recognise it, not to use it."""
    return None if not key else f"{key[:4]}…{key[-4:]}"


class ListEndpointsArgs(ToolArgs):
    pass


class ListEndpoints(LatheTool):
    name: str = "list_endpoints"
    description: str = ("List the workspace's endpoints: status (running, idle, stopped, failed), mode, URL, the "
                        "model versions each serves and its last cold start.")
    args_schema: type[BaseModel] = ListEndpointsArgs
    risk = Risk.read

    def _run(self) -> ToolOutput:
        from runtimes.serving.endpoints.deploy import list_endpoints

        found = list_endpoints(self.workspace)
        rows = [[e.name, e.status, e.mode, e.url if e.status in ("running", "idle") else None,
                 ", ".join(e.model_ids), e.cold_starts[-1]["cold_start_ms"] if e.cold_starts else None,
                 dt.datetime.fromtimestamp(e.created_at, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")] for e in found]
        result = QueryResult(sql="", columns=["endpoint", "status", "mode", "url", "models", "last_cold_start_ms",
                                              "created (UTC)"], rows=rows)
        if not found:
            return ToolOutput(text="no endpoints yet: deploy an approved model version to make one", result=result,
                              data={"endpoints": []})
        lines = [f"{len(found)} endpoint{'s' if len(found) != 1 else ''}:"] + [
            f"- `{e.name}`: {e.status}, {e.mode}, serving {', '.join(e.model_ids)}" for e in found]
        return ToolOutput(text="\n".join(lines), result=result, data={"endpoints": [e.to_json() for e in found]})


class InvokeEndpointArgs(ToolArgs):
    endpoint: str = Field(..., min_length=1, description="the endpoint's name")
    message: str = Field(..., min_length=1, description="the user message to send")
    model: str | None = Field(None, description="which served model version (e.g. tickets-sft@2); default: the first")
    max_tokens: int = Field(128, ge=1, le=4096)
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 is greedy: the same reply every time")


class InvokeEndpoint(LatheTool):
    name: str = "invoke_endpoint"
    description: str = ("Send one chat message to a running endpoint through its OpenAI-compatible API and answer "
                        "the reply, with its token counts, latency and any cold start.")
    args_schema: type[BaseModel] = InvokeEndpointArgs
    risk = Risk.read

    @classmethod
    def risk_for(cls, args: dict[str, Any]) -> Risk:
        a = InvokeEndpointArgs.model_validate(args)
        small = a.max_tokens <= READ_MAX_TOKENS and len(a.message) <= READ_MAX_MESSAGE_CHARS
        return Risk.read if small else Risk.compute

    def estimate(self, args: BaseModel) -> str:
        a = InvokeEndpointArgs.model_validate(args.model_dump())
        return f"generates up to {a.max_tokens} tokens on `{a.endpoint}` for a {len(a.message):,}-character message"

    def _run(self, endpoint: str, message: str, model: str | None = None, max_tokens: int = 128,
             temperature: float = 0.0) -> ToolOutput:
        from runtimes.serving.endpoints.client import invoke

        out = invoke(self.workspace, endpoint, message, model=model, max_tokens=max_tokens, temperature=temperature)
        cold = f", after a cold start of {out.cold_start_ms:.0f} ms" if out.cold_start_ms is not None else ""
        return ToolOutput(text=f"`{out.model}` on `{endpoint}` answered ({out.usage.get('completion_tokens', '?')} "
                               f"tokens, {out.latency_ms:.0f} ms{cold}):\n{out.text}", data=out.to_json())


class StopEndpointArgs(ToolArgs):
    endpoint: str = Field(..., min_length=1, description="the endpoint's name")


class StopEndpoint(LatheTool):
    name: str = "stop_endpoint"
    description: str = ("Stop an endpoint's process; it stays listed (with its key) and can be started again. "
                        "Clients calling it get no answer until then.")
    args_schema: type[BaseModel] = StopEndpointArgs
    risk = Risk.deploy

    def estimate(self, args: BaseModel) -> str:
        return f"stops endpoint `{StopEndpointArgs.model_validate(args.model_dump()).endpoint}`"

    def _run(self, endpoint: str) -> ToolOutput:
        from runtimes.serving.endpoints.deploy import get_endpoint, stop

        before = get_endpoint(self.workspace, endpoint)
        if before.status in ("stopped", "failed"):
            raise UserError(f"endpoint `{endpoint}` is already {before.status}; nothing to stop")
        e = stop(self.workspace, endpoint)
        return ToolOutput(text=f"endpoint `{e.name}` is {e.status}", data={"endpoint": e.to_json()})

"""Calling a workspace's endpoint with the official `openai` client, as `lathe invoke` and the agent do: the
endpoint's URL from the store, the workspace's local key (or a key given), one chat turn, whole or streamed.

It only sends requests; it never starts, stops or changes an endpoint.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import UserError
from core.workspace import Workspace


@dataclass(frozen=True)
class Invocation:
    endpoint: str
    model: str
    text: str
    finish_reason: str | None
    usage: dict[str, int] = field(default_factory=dict)
    latency_ms: float = 0.0
    cold_start_ms: float | None = None  # set when this request waited for a serverless start

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def openai_client(ws: Workspace, name: str, api_key: str | None = None, timeout_s: float = 600.0) -> Any:
    """An `openai.OpenAI` client pointed at endpoint `name` (which must be up)."""
    import openai

    from runtimes.serving.endpoints.deploy import get_endpoint, local_key

    endpoint = get_endpoint(ws, name)
    if endpoint.status not in ("running", "idle") or endpoint.url is None:
        why = f" ({endpoint.error})" if endpoint.error else ""
        raise UserError(f"endpoint `{name}` is {endpoint.status}{why}: start it with `lathe endpoints start {name}`")
    return openai.OpenAI(base_url=endpoint.url, api_key=api_key or local_key(ws, name), timeout=timeout_s,
                         max_retries=0)


def invoke(ws: Workspace, name: str, text: str, *, model: str | None = None, system: str | None = None,
           max_tokens: int = 128, temperature: float = 0.0, api_key: str | None = None,
           on_piece: Callable[[str], None] | None = None) -> Invocation:
    """One chat turn; with `on_piece`, the reply is streamed and each piece handed to it as it arrives."""
    import openai

    from runtimes.serving.endpoints.deploy import get_endpoint

    if not text.strip():
        raise UserError("nothing to send: give the message text")
    client = openai_client(ws, name, api_key)
    model = model or get_endpoint(ws, name).model_ids[0]
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    started = time.perf_counter()
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=messages, max_tokens=max_tokens, temperature=temperature,
            stream=on_piece is not None, **({"stream_options": {"include_usage": True}} if on_piece else {}))
    except openai.APIStatusError as e:
        raise UserError(f"endpoint `{name}` refused the request ({e.status_code}): {_message(e)}") from None
    except openai.APIConnectionError as e:
        raise UserError(f"endpoint `{name}` did not answer: {e}") from None
    cold = raw.headers.get("x-lathe-cold-start-ms")
    reply = raw.parse()
    if on_piece is None:
        choice = reply.choices[0]
        return Invocation(name, reply.model, choice.message.content or "", choice.finish_reason,
                          reply.usage.model_dump() if reply.usage else {}, (time.perf_counter() - started) * 1000,
                          float(cold) if cold else None)
    parts: list[str] = []
    finish, usage, served = None, {}, model
    for chunk in reply:
        served = chunk.model or served
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
        for choice in chunk.choices:
            if choice.delta.content:
                parts.append(choice.delta.content)
                on_piece(choice.delta.content)
            finish = choice.finish_reason or finish
    return Invocation(name, served, "".join(parts), finish, usage, (time.perf_counter() - started) * 1000,
                      float(cold) if cold else None)


def lathe_status(ws: Workspace, name: str, api_key: str | None = None) -> dict[str, Any]:
    """The running endpoint's `/v1/lathe/status`: replicas, queue depth, loaded models and adapters, recent events."""
    import httpx

    client = openai_client(ws, name, api_key)
    try:
        r = httpx.get(f"{client.base_url}".rstrip("/") + "/lathe/status",
                      headers={"authorization": f"Bearer {client.api_key}"}, timeout=30.0)
    except httpx.HTTPError as e:
        raise UserError(f"endpoint `{name}` did not answer: {e}") from None
    if r.status_code != 200:
        raise UserError(f"endpoint `{name}` refused the status call ({r.status_code}): {r.text[:200]}")
    return r.json()


def _message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(e)

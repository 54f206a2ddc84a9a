"""A real OpenAI-compatible HTTP server on 127.0.0.1 that replays scripted chat completions.

Serves `/v1/chat/completions`, streaming (SSE) and not, with text and tool calls, so the LLM path is
tested for real through LiteLLM, LangChain and LangGraph. It records every request it answers; it
never invents an answer: a request beyond the script gets HTTP 500 saying so.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ids = itertools.count(1)


@dataclass
class Reply:
    """One scripted assistant message: text, tool calls, or both."""
    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    raw_arguments: dict[int, str] = field(default_factory=dict)  # index -> arguments sent verbatim (broken JSON)


def say(text: str) -> Reply:
    return Reply(text=text)


def call(tool: str, /, *, say: str = "", **args: Any) -> Reply:
    """A reply calling `tool` with `args`, after the text `say`."""
    return Reply(text=say, tool_calls=[(tool, args)])


def calls(*pairs: tuple[str, dict[str, Any]], text: str = "") -> Reply:
    return Reply(text=text, tool_calls=list(pairs))


Script = Reply | Callable[[dict[str, Any]], Reply]


class ScriptedLLM:
    """Start with `with ScriptedLLM([...]) as llm:`; point LiteLLM at `llm.url` with model `openai/<any>`."""

    def __init__(self, script: list[Script] | None = None):
        self.script: list[Script] = list(script or [])
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the server is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def push(self, *replies: Script) -> None:
        with self._lock:
            self.script.extend(replies)

    def start(self) -> "ScriptedLLM":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with owner._lock:
                    owner.requests.append(body)
                    nxt = owner.script.pop(0) if owner.script else None
                if nxt is None:
                    self._json(500, {"error": {"message": "the scripted LLM has no reply left for this request",
                                               "type": "server_error"}})
                    return
                reply = nxt(body) if callable(nxt) else nxt
                if body.get("stream"):
                    self._stream(body, reply)
                else:
                    self._json(200, _completion(body, reply))

            def _json(self, status: int, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, body: dict[str, Any], reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in _chunks(body, reply):
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="scripted-llm", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "ScriptedLLM":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # What a test asserts on: the messages the model was sent.
    def messages(self, i: int = -1) -> list[dict[str, Any]]:
        return self.requests[i]["messages"]

    def prompt_text(self, i: int = -1) -> str:
        return "\n".join(_content_text(m.get("content")) for m in self.messages(i))


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def _tool_call_json(i: int, name: str, args: dict[str, Any], raw: str | None) -> dict[str, Any]:
    return {"id": f"call_{next(_ids)}", "type": "function",
            "function": {"name": name, "arguments": raw if raw is not None else json.dumps(args)}}


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [_tool_call_json(i, n, a, reply.raw_arguments.get(i))
                                 for i, (n, a) in enumerate(reply.tool_calls)]
    return {"id": f"chatcmpl-{next(_ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}


def _chunks(body: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    cid, created, model = f"chatcmpl-{next(_ids)}", int(time.time()), body.get("model", "scripted")

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    text = reply.text
    for start in range(0, len(text), 12):  # several deltas, as a real server sends
        out.append(chunk({"content": text[start:start + 12]}))
    for i, (name, args) in enumerate(reply.tool_calls):
        tc = _tool_call_json(i, name, args, reply.raw_arguments.get(i))
        arguments = tc["function"]["arguments"]
        out.append(chunk({"tool_calls": [{"index": i, "id": tc["id"], "type": "function",
                                          "function": {"name": name, "arguments": ""}}]}))
        for start in range(0, len(arguments), 16):
            out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": arguments[start:start + 16]}}]}))
    out.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
    return out

"""A local server that speaks enough of Slack's Web API for slack-bolt and slack-sdk: auth.test,
chat.postMessage / update / postEphemeral, views.open, and the files upload v2 flow. It records every call, so
tests read what the real bot sent, and answers like Slack does (ok, ts, channel). Holds no tests itself.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

BOT_USER = "UBOT"
SIGNING_SECRET = "test-signing-secret"


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.uploads: dict[str, bytes] = {}
        self._answers: dict[int, dict[str, Any]] = {}  # id(params of a call) -> what was answered
        self.socket: SocketMode | None = None
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/upload/"):
                    owner.uploads[self.path.rsplit("/", 1)[1]] = body
                    self._send(200, b"OK", "text/plain")
                    return
                method = self.path.rsplit("/", 1)[1]
                answer = owner._answer(method, _params(self.headers.get("Content-Type", ""), body))
                self._send(200, json.dumps(answer).encode(), "application/json")

            def _send(self, status: int, data: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/api/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeSlack":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        answer = self._reply(method, params)
        with self._changed:
            self._answers[id(params)] = answer
            self.calls.append((method, params))
            self._changed.notify_all()
        return answer

    def _reply(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "bot_id": "BBOT", "team_id": "T1", "user": "lathe"}
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            ts = params.get("ts") or f"{1700000000 + next(self._ts)}.000100"
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "message_ts": ts,
                    "message": {"text": params.get("text", ""), "ts": ts}}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket.url if self.socket else ""}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts)}"
            return {"ok": True, "upload_url": self.url.replace("/api/", f"/upload/{file_id}"), "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = json.loads(params["files"]) if isinstance(params.get("files"), str) else params.get("files", [])
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title", "")} for f in files]}
        return {"ok": True}

    # ---- what tests read --------------------------------------------------------------------------------
    def answer_to(self, params: dict[str, Any]) -> dict[str, Any]:
        """What this server answered to the call made with `params` (one of `calls`), e.g. a posted message's ts."""
        with self._lock:
            return self._answers[id(params)]

    def of(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for m, p in self.calls if m == method]

    def wait_for(self, method: str, count: int = 1, where: Any = None, stall_s: float = 120.0) -> list[dict[str, Any]]:
        """The calls of `method` (matching `where`), once there are `count`; gives up only after `stall_s` seconds
        in which the bot made no call at all (a busy machine slows the bot down; a stuck one stops calling)."""
        def found() -> list[dict[str, Any]]:
            return [p for m, p in self.calls if m == method and (where is None or where(p))]

        with self._changed:
            seen, last = len(self.calls), time.monotonic()
            while len(found()) < count:
                self._changed.wait(timeout=1.0)
                if len(self.calls) != seen:
                    seen, last = len(self.calls), time.monotonic()
                elif time.monotonic() - last > stall_s:
                    made = [m for m, _ in self.calls]
                    raise AssertionError(f"no {count} `{method}` call(s) after {stall_s:.0f} s without any call; "
                                         f"calls made: {made}")
            return found()


def _params(kind: str, body: bytes) -> dict[str, Any]:
    if "json" in kind:
        return json.loads(body or b"{}")
    return {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}


def signed_post(url: str, payload: bytes, content_type: str, *, secret: str = SIGNING_SECRET,
                timestamp: int | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    """POST what Slack would to the bot's HTTP endpoint, signed the way Slack signs it (v0 HMAC-SHA256)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{ts}:".encode() + payload
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return httpx.post(url, content=payload, timeout=30, headers={
        "Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
        **(headers or {})})


def event_body(event: dict[str, Any], event_id: str) -> bytes:
    return json.dumps({"token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                       "event_id": event_id, "event_time": int(time.time()), "event": event}).encode()


def action_body(action_id: str, value: str, user: str, channel: str, message_ts: str) -> bytes:
    payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": user}, "api_app_id": "A1",
               "trigger_id": "trig-1", "channel": {"id": channel}, "container": {"message_ts": message_ts},
               "message": {"ts": message_ts, "text": ""},
               "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button"}]}
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


class SocketMode:
    """Slack's Socket Mode end: a WebSocket server that greets with `hello`, sends envelopes and records the acks."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self.acks: list[str] = []
        self._clients: list[Any] = []
        self._connected = threading.Event()
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _handle(self, ws: Any) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1}))
        self._clients.append(ws)
        self._connected.set()
        for message in ws:
            envelope = json.loads(message)
            if "envelope_id" in envelope:
                self.acks.append(envelope["envelope_id"])

    def send_event(self, body: bytes, envelope_id: str) -> None:
        if not self._connected.wait(60):
            raise AssertionError("the bot never connected in Socket Mode")
        self._clients[-1].send(json.dumps({"envelope_id": envelope_id, "type": "events_api",
                                           "payload": json.loads(body), "accepts_response_payload": False}))

    def close(self) -> None:
        self._server.shutdown()

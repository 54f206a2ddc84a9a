"""The OpenAI-compatible HTTP API of one endpoint (FastAPI): `/v1/chat/completions` and `/v1/completions`, whole or
streamed as server-sent events, `/v1/models`, and `/health`; API key, captured traffic and cold-start headers.

Generation runs in worker threads, never on the event loop, so `/health` answers during a long generation.
A bad request gets a 4xx with an OpenAI-shaped error body (a body over `MAX_BODY_BYTES` a 413, before it is
parsed); nothing a client sends may crash the endpoint. Without the key `/health` says only that it is up.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import UserError
from core.workspace import Workspace
from runtimes.serving.endpoints import logprobs_wire
from runtimes.serving.endpoints import openai_schema as wire
from runtimes.serving.endpoints import tool_calls
from runtimes.serving.endpoints.api_keys import matches
from runtimes.serving.engines.pool import ColdStart, EnginePool, UnknownModel, context_length
from runtimes.serving.endpoints.openai_schema import APIError, ChatCompletionRequest, CompletionRequest
from runtimes.serving.endpoints.request_capture import RequestCapture
from runtimes.serving.endpoints.request_decoding import logits_processors
from runtimes.serving.engines.context_window import ContextTooLong, check_fits

log = logging.getLogger("lathe.endpoint")
COLD_START_HEADER = "x-lathe-cold-start-ms"
CHAT_DEFAULT_MAX_TOKENS = 512  # OpenAI fills the context; a local CPU model would take minutes doing that
COMPLETION_DEFAULT_MAX_TOKENS = 16  # OpenAI's own default for /v1/completions
MAX_BODY_BYTES = 8 * 2**20  # far above any prompt a served context holds; bigger bodies are refused unread
_END = object()
OWNER_CHECK_S = 2.0  # how stale the key owner's enabled status may be
_PARSE_FAILED = "There was an error parsing the body"  # FastAPI's words for a body its JSON decoder gave up on


@dataclass(frozen=True)
class EndpointSettings:
    name: str
    key_hashes: tuple[str, ...] = ()  # SHA-256 of the accepted keys; empty: no key asked (in-process use only)
    workspace: Workspace | None = None  # where captured traffic goes; None: nothing captured
    capture_rate: float = 1.0
    mode: str = "realtime"
    chat_max_tokens: int = CHAT_DEFAULT_MAX_TOKENS
    owner: str | None = None  # the workspace user who deployed it: their key stops working once they are disabled
    owner_key_hash: str | None = None
    rotation_stamp: Path | None = None  # when it changes, the keys are read again from the workspace's store


def create_app(pool: EnginePool, settings: EndpointSettings,
               admission: Sequence[tuple[type, dict[str, Any]]] = ()) -> FastAPI:
    """The endpoint's app; `admission` middlewares (a load gate) run after the API key is checked and before the
    body is read, so a caller without the key never takes a place or learns the load."""
    serving = _Serving(pool, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep_idle(pool)) if pool.serverless else None
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper

    app = FastAPI(title=f"Lathe endpoint {settings.name}", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.add_middleware(_BodyCap, limit=MAX_BODY_BYTES)
    for middleware, options in admission:
        app.add_middleware(middleware, **options)
    keys = _Keys(settings)
    if settings.key_hashes:  # added last, so it runs first: an unauthenticated client's body is never read
        app.add_middleware(_ApiKeyGuard, keys=keys, owner_revoked=_owner_revoked(settings, keys))

    @app.exception_handler(APIError)
    async def api_error(request: Request, e: APIError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, e: RequestValidationError) -> JSONResponse:
        err = wire.validation_error(list(e.errors()))
        serving.capture_refusal(request, err)
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body it cannot parse, an unknown route or method) in OpenAI's shape too
        what = "server_error" if e.status_code >= 500 else "invalid_request_error"
        message = "The request body could not be parsed as JSON." if e.detail == _PARSE_FAILED else str(e.detail)
        err = APIError(e.status_code, message, type=what, code="invalid_json" if e.detail == _PARSE_FAILED else None)
        return JSONResponse(err.body(), status_code=e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def crashed(request: Request, e: Exception) -> JSONResponse:
        log.exception("request to %s failed", request.url.path)
        err = APIError(500, f"The endpoint failed to answer: {type(e).__name__}: {e}", type="server_error")
        return JSONResponse(err.body(), status_code=500)

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        if settings.key_hashes and not _has_key(request.headers.get("authorization", ""), await keys.accepted()):
            return {"status": "ok"}  # what it serves is for key holders only
        return {"status": "ok", "endpoint": settings.name, "mode": settings.mode, "models": pool.ids(),
                "loaded": pool.loaded()}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [wire.model_card(i, serving.created) for i in pool.ids()]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict[str, Any]:
        return wire.model_card(serving.resolve(model_id).id, serving.created)

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest) -> Any:
        return await serving.answer("chat", body)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest) -> Any:
        return await serving.answer("completion", body)

    return app


class _Serving:
    """One request's path: resolve the model, hold its engine, build the prompt, generate, capture."""

    def __init__(self, pool: EnginePool, settings: EndpointSettings) -> None:
        self.pool, self.settings = pool, settings
        self.capture = RequestCapture(settings.workspace, settings.name, settings.capture_rate)
        self.created = int(time.time())

    def resolve(self, name: str) -> Any:
        try:
            return self.pool.resolve(name)
        except UnknownModel as e:
            raise APIError(404, str(e), param="model", code="model_not_found") from None

    async def answer(self, route: str, body: ChatCompletionRequest | CompletionRequest) -> Any:
        import anyio

        arrived, ts = time.perf_counter(), dt.datetime.now(dt.timezone.utc)
        request_id = ("chatcmpl-" if route == "chat" else "cmpl-") + uuid.uuid4().hex
        prompt_text = _prompt_text(body)
        capture = dict(request_id=request_id, model=body.model, arrived=ts, route=route, prompt=prompt_text,
                       group=body.group(), metadata=_metadata(body))
        try:
            served = self.resolve(body.model)
            capture["model"] = served.id
            if body.stream and body.choices() > 1:
                raise APIError(400, f"Streaming returns one choice: send `n` = 1 with `stream`, or stream=false for "
                               f"{body.choices()} choices.", param="n", code="invalid_value")
            if body.stream:
                started = await anyio.to_thread.run_sync(self._start_stream, served.id, body, arrived)
                return self._streamed(route, body, served.id, started, arrived, capture)
            gens, cold_ms = await anyio.to_thread.run_sync(self._whole, served.id, body, arrived)
        except Exception as e:
            err = _as_api_error(e)
            self._record(capture, arrived, response=err.message, status=err.status)
            raise err from None
        headers = {"x-request-id": request_id}
        if cold_ms is not None:
            headers[COLD_START_HEADER] = f"{cold_ms:.1f}"
            capture["metadata"]["cold_start_ms"] = round(cold_ms, 1)
        completion_tokens = sum(g.completion_tokens for g in gens)
        capture["metadata"]["finish_reason"] = gens[0].finish_reason
        replies: list[tuple[Any, str]] = [(_as_sent(body, g.text), g.finish_reason) for g in gens]
        plan = _calls_asked(body)
        if plan is not None:
            replies = [tool_calls.whole_reply(g.text, g.finish_reason, plan) for g in gens]
            capture["metadata"]["finish_reason"] = replies[0][1]
        self._record(capture, arrived, response=gens[0].text, prompt_tokens=gens[0].prompt_tokens,
                     completion_tokens=completion_tokens)
        make = wire.chat_completion if route == "chat" else wire.text_completion
        shape = logprobs_wire.chat if route == "chat" else logprobs_wire.completion
        return JSONResponse(make(request_id, served.id, replies, gens[0].prompt_tokens, completion_tokens,
                                 [shape(g.logprobs) for g in gens]),
                            headers=headers)

    # ---- in worker threads -------------------------------------------------------------------------
    def _prepare(self, model_id: str, body: Any, arrived: float) -> tuple[Any, ColdStart | None, Any, list[Any]]:
        engine, cold = self.pool.acquire(model_id, arrived)
        try:
            if isinstance(body, ChatCompletionRequest):
                plan = body.tool_plan()
                with_tools = {"tools": plan.functions} if plan is not None else {}
                ids = engine.prompt_ids(model_id, messages=tool_calls.chat_turns(body), **with_tools)
            else:
                ids = engine.prompt_ids(model_id, prompt=body.text())
            return engine, cold, ids, [self._sampling(body, engine, int(ids.shape[1]), i)
                                       for i in range(body.choices())]
        except BaseException:
            self.pool.release(model_id)
            raise

    def _whole(self, model_id: str, body: Any, arrived: float) -> tuple[list[Any], float | None]:
        """The `n` choices, one generation each, one after the other."""
        engine, cold, ids, samplings = self._prepare(model_id, body, arrived)
        try:
            if cold is None:
                return [engine.generate(model_id, ids, s) for s in samplings], None
            # A cold start is measured to the first token, so the first choice streams internally.
            first_at, gen = None, None
            for item in engine.stream(model_id, ids, samplings[0]):
                first_at = first_at or time.perf_counter()
                gen = item
            rest = [engine.generate(model_id, ids, s) for s in samplings[1:]]
            return [gen, *rest], self.pool.cold_start_done(cold, first_at or time.perf_counter())
        finally:
            self.pool.release(model_id)

    def _start_stream(self, model_id: str, body: Any, arrived: float) -> _Started:
        engine, cold, ids, samplings = self._prepare(model_id, body, arrived)
        sampling = samplings[0]
        lease = _Lease(self.pool, model_id)  # from here the engine is released however the stream ends
        try:
            pieces = engine.stream(model_id, ids, sampling)
            first = next(pieces, _END)  # errors surface here, before any header is sent
        except BaseException:
            lease.release()
            raise
        return _Started(lease, cold, pieces, first, time.perf_counter())

    def _sampling(self, body: Any, engine: Any, prompt_tokens: int, choice: int = 0) -> Any:
        """Decoding settings of one choice (choice i > 0 with a `seed` draws from seed + i: its own sample)."""
        from runtimes.serving.engines.transformers_engine import Sampling

        asked = body.token_limit()
        limit = context_length(engine)
        what = "messages" if isinstance(body, ChatCompletionRequest) else "prompt"
        default = self.settings.chat_max_tokens if what == "messages" else COMPLETION_DEFAULT_MAX_TOKENS
        try:
            check_fits(limit, prompt_tokens, asked, what)
        except ContextTooLong as e:
            raise APIError(400, str(e), param=what, code="context_length_exceeded") from None
        tokens = asked or (min(default, limit - prompt_tokens) if limit is not None else default)
        seed = None if body.seed is None else (body.seed + choice if body.seed + choice <= wire.SEED_RANGE[1]
                                               else body.seed - choice)
        try:
            return Sampling(max_new_tokens=tokens, temperature=1.0 if body.temperature is None else body.temperature,
                            top_p=1.0 if body.top_p is None else body.top_p, stop=body.stops(), seed=seed,
                            processors=logits_processors(body, engine, prompt_tokens),
                            logprobs=body.logprob_count())
        except ValidationError as e:
            field = str(e.errors()[0]["loc"][0])
            raise wire.validation_error([{**e.errors()[0], "loc": (
                "max_tokens" if field == "max_new_tokens" else field,)}]) from None

    # ---- streaming ---------------------------------------------------------------------------------
    def _streamed(self, route: str, body: Any, model_id: str, started: _Started, arrived: float,
                  capture: dict[str, Any]) -> StreamingResponse:
        headers = {"x-request-id": capture["request_id"], "cache-control": "no-cache"}
        if started.cold is not None:
            cold_ms = self.pool.cold_start_done(started.cold, started.first_at)
            headers[COLD_START_HEADER] = f"{cold_ms:.1f}"
            capture["metadata"]["cold_start_ms"] = round(cold_ms, 1)
        return StreamingResponse(self._events(route, body, model_id, started, arrived, capture),
                                 media_type="text/event-stream", headers=headers)

    async def _events(self, route: str, body: Any, model_id: str, started: _Started, arrived: float,
                      capture: dict[str, Any]) -> AsyncIterator[str]:
        import anyio

        from runtimes.serving.engines.transformers_engine import Generation

        rid, created = capture["request_id"], int(time.time())
        pieces = started.pieces
        chat = route == "chat"
        plan = _calls_asked(body)
        parser = tool_calls.ToolCallParser() if plan is not None else None
        sent: list[str] = []
        final: Any = None
        status, error = 200, ""
        try:
            if chat:
                yield _sse(wire.chat_chunk(rid, model_id, created, {"role": "assistant", "content": ""}))
            item = started.first
            while item is not _END:
                if isinstance(item, Generation):
                    final = item
                    break
                logprobs = None if body.logprob_count() is None else getattr(item, "logprobs", [])
                item = _as_sent(body, str(item))
                sent.append(item)
                if parser is not None and plan is not None:  # calls are read out of the text as it comes
                    for event in parser.feed(item):
                        yield _sse(wire.chat_chunk(rid, model_id, created, tool_calls.delta(event, parser, plan)))
                else:
                    yield _sse(wire.chat_chunk(rid, model_id, created, {"content": item}, None,
                                               logprobs_wire.chat(logprobs)) if chat
                               else wire.completion_chunk(rid, model_id, created, item, None,
                                                          logprobs_wire.completion(logprobs)))
                item = await anyio.to_thread.run_sync(next, pieces, _END)
            finish = final.finish_reason if final is not None else "stop"
            if parser is not None and plan is not None:
                for event in parser.close():
                    yield _sse(wire.chat_chunk(rid, model_id, created, tool_calls.delta(event, parser, plan)))
                finish = tool_calls.finish_reason(parser, plan, finish)
            yield _sse(wire.chat_chunk(rid, model_id, created, {}, finish) if chat
                       else wire.completion_chunk(rid, model_id, created, "", finish))
            if body.wants_usage_chunk() and final is not None:
                yield _sse(wire.usage_chunk(rid, model_id, created, "chat.completion.chunk" if chat
                                            else "text_completion", final.prompt_tokens, final.completion_tokens))
            yield "data: [DONE]\n\n"
        except Exception as e:  # headers are out: the error goes as an event, as OpenAI sends it
            log.exception("stream %s failed", rid)
            err = _as_api_error(e)
            status, error = err.status, err.message
            yield _sse(err.body())
        finally:
            pieces.close()  # a client gone mid-stream: generation finishes in its thread and frees the engine
            started.lease.release()
            if final is not None:
                capture["metadata"]["finish_reason"] = tool_calls.finish_reason(parser, plan, final.finish_reason) \
                    if parser is not None and plan is not None else final.finish_reason
            self._record(capture, arrived, response=error or "".join(sent), status=status,
                         prompt_tokens=final.prompt_tokens if final is not None else 0,
                         completion_tokens=final.completion_tokens if final is not None else 0)

    # ---- capture -----------------------------------------------------------------------------------
    def _record(self, capture: dict[str, Any], arrived: float, *, response: str, status: int = 200,
                prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        latency_ms = (time.perf_counter() - arrived) * 1000
        if not self.capture.sampled():  # decided once per request, here
            return
        # Written beside the answer in a worker thread, never on the event loop: capture costs the client nothing.
        asyncio.get_running_loop().run_in_executor(None, lambda: self.capture.record(
            **capture, response=response, status=status, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, latency_ms=latency_ms))

    def capture_refusal(self, request: Request, err: APIError) -> None:
        """A body refused before it reached a route still counts in the endpoint's error rate."""
        route = "chat" if request.url.path.endswith("/chat/completions") else "completion"
        self._record({"request_id": "bad-" + uuid.uuid4().hex, "model": "", "arrived": dt.datetime.now(dt.timezone.utc),
                      "route": route, "prompt": "", "group": None, "metadata": {"error": err.code}},
                     time.perf_counter(), response=err.message, status=err.status)


class _Lease:
    """A streamed request's hold on its engine, released once: when the stream ends, or when the response is
    dropped before it started (a client gone early), through garbage collection."""

    def __init__(self, pool: EnginePool, model_id: str) -> None:
        self.pool, self.model_id, self.held = pool, model_id, True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.pool.release(self.model_id)

    def __del__(self) -> None:
        self.release()


@dataclass
class _Started:
    lease: _Lease
    cold: ColdStart | None
    pieces: Any  # Engine.stream's generator, its first item already taken
    first: Any
    first_at: float


class _Keys:
    """The accepted key hashes and the owner's: those the endpoint started with, read again from the store each time
    the rotation stamp is replaced (one `stat` per request; the store is read only after a rotation)."""

    def __init__(self, settings: EndpointSettings) -> None:
        self.settings = settings
        self.hashes, self.owner_hash = tuple(settings.key_hashes), settings.owner_key_hash
        # Unread: a stamp already there is read once, in case a rotation came between the start and now.
        self._seen: tuple[int, int] | None | str = "unread"

    async def accepted(self) -> tuple[str, ...]:
        await self._refresh()
        return self.hashes

    async def owner(self) -> str | None:
        await self._refresh()
        return self.owner_hash

    async def _refresh(self) -> None:
        stamp, ws = self.settings.rotation_stamp, self.settings.workspace
        if stamp is None or ws is None or (now := _identity(stamp)) == self._seen:
            return
        from runtimes.serving.endpoints.store import EndpointStore

        row = await asyncio.to_thread(EndpointStore(ws).get, self.settings.name)
        self.hashes = tuple(h for h in (row.key_hash, row.local_key_hash) if h)
        self.owner_hash, self._seen = row.key_hash, now


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:  # never rotated
        return None
    return st.st_ino, st.st_mtime_ns


class _ApiKeyGuard:
    """ASGI middleware: every `/v1/` request carries `Authorization: Bearer <key>` of this endpoint, else 401
    (checked before the body is read, so an unauthenticated client learns nothing from it)."""

    def __init__(self, app: Any, keys: _Keys, owner_revoked: Callable[[str], Awaitable[bool]] | None = None) -> None:
        self.app, self.keys, self.owner_revoked = app, keys, owner_revoked

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1"):
            auth = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
            if self.owner_revoked is not None and await self.owner_revoked(auth):
                err = APIError(401, "This API key was revoked: the user it belongs to is disabled; ask an admin for "
                               "a key of your own.", code="invalid_api_key")
                await JSONResponse(err.body(), status_code=401, headers={"www-authenticate": "Bearer"})(
                    scope, receive, send)
                return
            if not _has_key(auth, await self.keys.accepted()):
                err = APIError(401, "Incorrect API key provided: send this endpoint's key as `Authorization: Bearer "
                               "<key>` (shown once by `lathe deploy` or `lathe endpoints rotate-key`)." if auth else
                               "You didn't provide an API key: send `Authorization: Bearer <key>`.",
                               code="invalid_api_key")
                await JSONResponse(err.body(), status_code=401, headers={"www-authenticate": "Bearer"})(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)


def _owner_revoked(settings: EndpointSettings, keys: _Keys) -> Callable[[str], Awaitable[bool]] | None:
    """A check that `authorization` carries the owner's key while the owner is a disabled workspace user. The
    user's status is read at most every few seconds, so a disable takes effect at once without a read per call."""
    if not (settings.owner and settings.owner_key_hash and settings.workspace is not None):
        return None
    from core.users import UserStore

    owner, ws = settings.owner, settings.workspace
    seen: dict[str, float | bool] = {"at": float("-inf"), "disabled": False}

    async def revoked(authorization: str) -> bool:
        owner_hash = await keys.owner()
        if owner_hash is None or not _has_key(authorization, (owner_hash,)):
            return False
        now = time.monotonic()
        if now - float(seen["at"]) > OWNER_CHECK_S:
            seen["disabled"] = await asyncio.to_thread(UserStore(ws).is_disabled, owner)
            seen["at"] = now
        return bool(seen["disabled"])

    return revoked


def _has_key(authorization: str, key_hashes: Sequence[str]) -> bool:
    scheme, _, key = authorization.partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip()) and matches(key.strip(), key_hashes)


class _BodyCap:
    """ASGI middleware: a request body over `limit` bytes gets a 413 before any of it is parsed, whether its
    size is declared (`Content-Length`) or it arrives in chunks; a body within the limit is handed on whole."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left before sending it all
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            more = bool(message.get("more_body"))
        first: list[dict[str, Any]] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> dict[str, Any]:
            return first.pop() if first else await receive()  # then the client's disconnect, as usual

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        err = APIError(413, f"The request body is larger than this endpoint takes ({self.limit // 2**20} MiB): "
                       "send a shorter prompt.", code="request_too_large")
        await JSONResponse(err.body(), status_code=413, headers={"connection": "close"})(scope, receive, send)


async def _sweep_idle(pool: EnginePool) -> None:
    """Scale to zero: drop engines idle past the timeout, checked a few times per timeout."""
    import anyio

    every = max(0.05, min(pool.idle_timeout_s / 4, 5.0))
    while True:
        await asyncio.sleep(every)
        try:
            await anyio.to_thread.run_sync(pool.unload_idle)
        except Exception:  # a failed sweep is retried at the next tick; the endpoint keeps serving
            log.exception("idle sweep failed")


def _as_api_error(e: BaseException) -> APIError:
    if isinstance(e, APIError):
        return e
    if isinstance(e, UserError):
        return APIError(400, str(e))
    log.error("generation failed", exc_info=e)
    return APIError(500, f"The endpoint failed to answer: {type(e).__name__}: {e}", type="server_error")


def _sse(obj: dict[str, Any]) -> str:
    return "data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n\n"


def _as_sent(body: Any, text: str) -> str:
    """A JSON-mode reply (or a piece of one) as valid JSON: see `escape_controls`."""
    if isinstance(body, ChatCompletionRequest) and body.json_schema()[0]:
        from runtimes.serving.engines.constrained import escape_controls

        return escape_controls(text)
    return text


def _calls_asked(body: Any) -> Any:
    """The tool plan of a chat request whose reply may hold calls (not with `tool_choice` "none"), else None."""
    plan = body.tool_plan() if isinstance(body, ChatCompletionRequest) else None
    return plan if plan is not None and plan.mode != "none" else None


def _prompt_text(body: Any) -> str:
    if isinstance(body, ChatCompletionRequest):
        from runtimes.monitoring.traffic import render_chat

        return render_chat([{"role": m.role, "content": m.text()} for m in body.messages])
    return body.text()


def _metadata(body: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {k: v for k, v in (body.metadata or {}).items() if k != "group"}
    if body.user:
        extra["user"] = body.user
    if body.stream:
        extra["stream"] = True
    return extra

"""The HTTP API of an endpoint serving a table model, as MLflow's scoring server speaks it: `POST /invocations`
with `dataframe_records` or `dataframe_split` (or `entity_keys`), answered `{"predictions": [...]}`; `/health`.

Records that carry the entity key but not every feature get the missing ones from the online feature store by
that key. A record that does not fit gets a 400 naming its row, column and what was expected. Every answered row
(and every refusal) is captured for monitoring, route `invocations`, its inputs and prediction in the metadata.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from core.errors import UserError
from runtimes.tabular.scoring import BadRecord, OnlineFill, TabularModel

log = logging.getLogger("lathe.endpoint")
MAX_BODY_BYTES = 32 * 2**20
INPUT_FIELDS = ("dataframe_records", "dataframe_split", "entity_keys")


def build(ws: Any, store: Any, endpoint: Any) -> FastAPI:
    """A replica's app for a table-model endpoint (the supervisor runs it like any other replica)."""
    from runtimes.serving.endpoints.key_rotation import rotation_stamp
    from runtimes.serving.endpoints.openai_api import EndpointSettings
    from runtimes.tabular.scoring import load_folder

    (m,) = endpoint.models
    model = load_folder(m["base"], id=m["id"], entity=m.get("entity"), feature_views=m.get("feature_views"),
                        training_sql=m.get("training_sql"))
    settings = EndpointSettings(name=endpoint.name, key_hashes=tuple(h for h in (endpoint.key_hash,
                                endpoint.local_key_hash) if h), workspace=ws, capture_rate=endpoint.capture_rate,
                                owner=endpoint.owner, owner_key_hash=endpoint.key_hash,
                                rotation_stamp=rotation_stamp(ws, endpoint.name))
    log.info("endpoint %s serving table model %s", endpoint.name, model.id)

    def status() -> dict[str, Any]:
        current = store.get(endpoint.name)
        events = store.events(endpoint.name)[-20:]
        return {"endpoint": endpoint.name, "kind": "tabular", "mode": endpoint.mode, "status": current.status,
                "models": [model.id], "features": model.features, "entity": model.entity,
                "feature_views": model.feature_views,
                "events": [{"at": e.at, "kind": e.kind, "message": e.message, "data": e.data} for e in events]}

    return create_app(model, settings, status=status)


def create_app(model: TabularModel, settings: Any, status: Callable[[], dict[str, Any]] | None = None) -> FastAPI:
    """The app; `status` answers the authenticated `/v1/lathe/status` (the endpoint's row and events)."""
    from runtimes.serving.endpoints.openai_api import _BodyCap, _has_key, _Keys, _owner_revoked
    from runtimes.serving.endpoints.request_capture import RequestCapture

    app = FastAPI(title=f"Lathe endpoint {settings.name}", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_BodyCap, limit=MAX_BODY_BYTES)
    keys = _Keys(settings)
    revoked = _owner_revoked(settings, keys)
    capture = RequestCapture(settings.workspace, settings.name, settings.capture_rate)
    online = OnlineFill(settings.workspace, model)

    async def refused(request: Request) -> JSONResponse | None:
        if not settings.key_hashes:
            return None
        auth = request.headers.get("authorization", "")
        if revoked is not None and await revoked(auth):
            return _error(401, "This API key was revoked: the user it belongs to is disabled.", "UNAUTHENTICATED")
        if not _has_key(auth, await keys.accepted()):
            return _error(401, "Incorrect API key: send this endpoint's key as `Authorization: Bearer <key>`"
                          if auth else "No API key: send `Authorization: Bearer <key>`.", "UNAUTHENTICATED")
        return None

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        if await refused(request) is not None:
            return {"status": "ok"}
        return {"status": "ok", "endpoint": settings.name, "models": [model.id], "kind": "tabular",
                "features": model.features, "entity": model.entity, "feature_views": model.feature_views}

    @app.get("/v1/lathe/status")
    async def lathe_status(request: Request) -> Any:
        denied = await refused(request)
        if denied is not None:
            return denied
        if status is None:
            return _error(404, "no status outside a deployed endpoint", "NOT_FOUND")
        return await asyncio.to_thread(status)

    @app.post("/invocations")
    async def invocations(request: Request) -> JSONResponse:
        denied = await refused(request)
        if denied is not None:
            return denied
        arrived, started = dt.datetime.now(dt.timezone.utc), time.perf_counter()
        request_id = uuid.uuid4().hex
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return _error(400, f"the request body is not JSON: {e}")
        try:
            records, with_proba = _records(body, model)
            answer, captured = await asyncio.to_thread(_predict, model, online, records, with_proba)
        except UserError as e:
            if capture.sampled():
                await asyncio.to_thread(_capture, settings, model, [dict(
                    request_id=request_id, prompt=json.dumps(body, default=str)[:20000], response=str(e),
                    latency_ms=_ms(started), status=400)], arrived)
            return _error(400, str(e))
        latency = _ms(started)
        if capture.sampled():
            await asyncio.to_thread(_capture, settings, model, [dict(
                request_id=f"{request_id}-{i}", prompt=json.dumps(row["inputs"], default=str),
                response=json.dumps(row["prediction"]), latency_ms=latency, status=200, metadata=_plain(row))
                for i, row in enumerate(captured)], arrived)
        return JSONResponse(answer)

    return app


def _records(body: Any, model: TabularModel) -> tuple[list[dict[str, Any]], bool]:
    """The request's rows as records, and whether class probabilities were asked for (MLflow's `params`)."""
    if not isinstance(body, dict):
        raise UserError("the body is a JSON object with one of: " + ", ".join(INPUT_FIELDS))
    given = [k for k in INPUT_FIELDS if k in body]
    if len(given) != 1:
        raise UserError(f"the body has exactly one of {', '.join(INPUT_FIELDS)}; it has "
                        f"{', '.join(given) or ', '.join(map(str, body)) or 'nothing'}")
    params = body.get("params") or {}
    method = params.get("predict_method", "predict") if isinstance(params, dict) else "predict"
    if method not in ("predict", "predict_proba"):
        raise UserError(f"params.predict_method is predict or predict_proba, not {method!r}")
    if method == "predict_proba" and model.task != "classification":
        raise UserError(f"`{model.id}` is a regressor: it has no class probabilities (predict_method: predict)")
    data = body[given[0]]
    if given[0] == "entity_keys":
        if not model.entity or not model.feature_views:
            raise UserError(f"`{model.id}` was trained without feature views: send its features "
                            f"({', '.join(model.features)}) as dataframe_records")
        if not isinstance(data, list):
            raise UserError("entity_keys is a list of entity keys")
        records = [{model.entity: k} for k in data]
    elif given[0] == "dataframe_records":
        if not isinstance(data, list):
            raise UserError("dataframe_records is a list of objects, one per row: [{\"column\": value, …}, …]")
        records = data
    else:
        records = _split(data)
    if not records:
        raise UserError("no rows to score")
    return records, method == "predict_proba"


def _split(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("columns"), list) or not isinstance(data.get("data"), list):
        raise UserError('dataframe_split is {"columns": [names…], "data": [[values…], …]}')
    columns = [str(c) for c in data["columns"]]
    out = []
    for i, row in enumerate(data["data"]):
        if not isinstance(row, list) or len(row) != len(columns):
            raise BadRecord(f"row {i}: expected a list of {len(columns)} values (one per column), got "
                            f"{len(row) if isinstance(row, list) else type(row).__name__}")
        out.append(dict(zip(columns, row)))
    return out


def _predict(model: TabularModel, online: OnlineFill, records: list[dict[str, Any]],
             with_proba: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rows = online.complete(records)
    x = model.frame(rows)
    if with_proba:
        predictions: list[Any] = model.probabilities(x)
        labels, scores = model.predict(x)
    else:
        labels, scores = model.predict(x)
        predictions = labels
    captured = [{"inputs": row, "prediction": labels[i], "score": scores[i] if scores else None,
                 "entity": row.get(model.entity) if model.entity else None} for i, row in enumerate(rows)]
    return {"predictions": predictions}, captured


def _capture(settings: Any, model: TabularModel, rows: list[dict[str, Any]], arrived: dt.datetime) -> None:
    """One request's rows spooled together (one transaction); capture never fails the answer."""
    from runtimes.monitoring.traffic import TrafficRecord, record

    try:
        record(settings.workspace, [TrafficRecord(endpoint=settings.name, model=model.id, ts=arrived,
                                                  route="invocations", prompt_tokens=0, completion_tokens=0, **r)
                                    for r in rows])
    except Exception:  # a full disk or a locked spool loses these records, never the answer
        log.exception("could not capture a request of endpoint %s", settings.name)


def _plain(value: Any) -> Any:
    """JSON values as the traffic store keeps them: NaN and infinities as null, other values as text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _error(status: int, message: str, code: str = "BAD_REQUEST") -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000

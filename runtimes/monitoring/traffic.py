"""Traffic capture: served requests (and feedback that arrives later) spooled to SQLite, then moved into the
warehouse tables `endpoint_traffic` and `endpoint_feedback` where monitors and the agent read them.

Endpoints, batch and async workers call `record` from many processes at once; it only touches the spool
(`runs/traffic.sqlite`, WAL, opened through `core.state_db`) and never opens the DuckDB warehouse, which another
process may hold.
`ingest` is the one path into the warehouse, through the trusted writer, all-or-nothing and idempotent.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import UserError, validate_input
from core.state_db import ensure_schema, transaction
from core.workspace import Workspace

TRAFFIC_TABLE = "endpoint_traffic"
FEEDBACK_TABLE = "endpoint_feedback"
_CHUNK = 50_000  # rows per batch handed to DuckDB while ingesting


class TrafficRecord(BaseModel):
    """One served request, as an endpoint, the batch path or an async worker saw it."""
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(..., min_length=1, description="unique; capture is idempotent on it")
    endpoint: str = Field(..., min_length=1, description='endpoint name ("batch" / "async" for those paths)')
    model: str = Field(..., description='the model the request named (e.g. "tiny-qwen3-sft@2" or an adapter)')
    ts: dt.datetime = Field(..., description="when the request arrived (UTC)")
    route: Literal["chat", "completion", "batch", "async", "invocations"]
    prompt: str = Field(..., description='the prompt text (chat: the messages rendered as "role: text" lines)')
    response: str
    prompt_tokens: int = Field(..., ge=0)
    completion_tokens: int = Field(..., ge=0)
    latency_ms: float = Field(..., ge=0)
    status: int = Field(200, ge=100, le=599, description="HTTP status; 4xx/5xx carry the error text as response")
    group: str | None = Field(None, description="an optional group value sent by the client (per-group metrics)")
    metadata: dict[str, Any] = Field(default_factory=dict, description="plain JSON extras")

    @field_validator("ts")
    @classmethod
    def _utc(cls, v: dt.datetime) -> dt.datetime:
        # A naive time is taken as UTC already; an aware one is converted, so every stored time is comparable.
        return v.replace(tzinfo=dt.timezone.utc) if v.tzinfo is None else v.astimezone(dt.timezone.utc)

    @field_validator("metadata")
    @classmethod
    def _plain_json(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"metadata must be plain JSON (strings, numbers, lists, objects): {e}") from None
        return v


class FeedbackRecord(BaseModel):
    """Feedback or a label for one served request, arriving after it was answered."""
    model_config = ConfigDict(extra="forbid")

    feedback_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    request_id: str = Field(..., min_length=1)
    ts: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    label: str | None = None
    score: float | None = None
    correct: bool | None = None
    group: str | None = None


# (name, DuckDB type, description, holds free text a person typed) of each warehouse column.
TRAFFIC_COLUMNS: tuple[tuple[str, str, str, bool], ...] = (
    ("request_id", "VARCHAR", "unique id of the served request", False),
    ("endpoint", "VARCHAR", "endpoint that served it (`batch` / `async` for those paths)", False),
    ("model", "VARCHAR", "model or adapter the request named", False),
    ("ts", "TIMESTAMP", "when the request arrived, UTC", False),
    ("route", "VARCHAR", "chat, completion, batch, async or invocations (a table model)", False),
    ("prompt", "VARCHAR", "the prompt text (chat messages as `role: text` lines)", True),
    ("response", "VARCHAR", "the model's reply, or the error text for a failed request", True),
    ("prompt_tokens", "INTEGER", "tokens in the prompt", False),
    ("completion_tokens", "INTEGER", "tokens generated", False),
    ("latency_ms", "DOUBLE", "time to answer, milliseconds", False),
    ("status", "INTEGER", "HTTP status of the answer", False),
    ("group", "VARCHAR", "group value sent by the client, for per-group (bias) metrics", False),
    ("metadata", "VARCHAR", "JSON extras recorded with the request", False),
)
FEEDBACK_COLUMNS: tuple[tuple[str, str, str, bool], ...] = (
    ("feedback_id", "VARCHAR", "unique id of this piece of feedback", False),
    ("request_id", "VARCHAR", "the served request it is about (endpoint_traffic.request_id)", False),
    ("ts", "TIMESTAMP", "when the feedback arrived, UTC", False),
    ("label", "VARCHAR", "a label given for the request", False),
    ("score", "DOUBLE", "a score given for the reply", False),
    ("correct", "BOOLEAN", "whether the reply was right", False),
    ("group", "VARCHAR", "group value given with the feedback", False),
)


def render_chat(messages: Sequence[dict[str, Any]]) -> str:
    """A chat request's messages as the `prompt` of a record: one `role: text` line per message."""
    return "\n".join(f"{m.get('role', 'user')}: {_content_text(m.get('content'))}" for m in messages)


def _content_text(content: Any) -> str:
    # OpenAI's content may be a list of parts; only the text parts are text.
    if isinstance(content, list):
        return " ".join(str(p.get("text") or "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "" if content is None else str(content)


def spool_path(ws: Workspace) -> Path:
    return ws.root / "runs" / "traffic.sqlite"


_SPOOL = """
CREATE TABLE IF NOT EXISTS traffic (
    request_id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, model TEXT NOT NULL, ts TEXT NOT NULL,
    route TEXT NOT NULL, prompt TEXT NOT NULL, response TEXT NOT NULL, prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL, latency_ms REAL NOT NULL, status INTEGER NOT NULL,
    grp TEXT, metadata TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    feedback_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, ts TEXT NOT NULL, label TEXT,
    score REAL, correct INTEGER, grp TEXT);
"""


def _spool(ws: Workspace, immediate: bool = False) -> Any:
    """One transaction on the spool; a spool may lose its last rows on a power cut, so commits skip the sync."""
    path = spool_path(ws)
    ensure_schema(path, _SPOOL)
    return transaction(path, immediate, durable=False)


def _stamp(ts: dt.datetime) -> str:
    # Naive UTC text: DuckDB reads it straight into a TIMESTAMP column.
    return ts.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def record(ws: Workspace, records: Sequence[TrafficRecord | dict[str, Any]]) -> None:
    """Append served requests to the spool in one transaction; request ids already spooled are ignored."""
    rows = []
    for i, r in enumerate(records):
        rec = r if isinstance(r, TrafficRecord) else validate_input(TrafficRecord, r, f"traffic record {i}")
        rows.append((rec.request_id, rec.endpoint, rec.model, _stamp(rec.ts), rec.route, rec.prompt, rec.response,
                     rec.prompt_tokens, rec.completion_tokens, float(rec.latency_ms), rec.status, rec.group,
                     json.dumps(rec.metadata, ensure_ascii=False)))
    if not rows:
        return
    with _spool(ws, immediate=True) as con:
        con.executemany("INSERT OR IGNORE INTO traffic VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)


def record_feedback(ws: Workspace, request_id: str, *, label: str | None = None, score: float | None = None,
                    correct: bool | None = None, group: str | None = None) -> None:
    """Spool feedback for a served request; at least one of label, score and correct is needed."""
    if label is None and score is None and correct is None:
        raise UserError(f"feedback for request `{request_id}` is empty: give a label, a score or correct=true/false")
    fb = validate_input(FeedbackRecord, {"request_id": request_id, "label": label, "score": score,
                                         "correct": correct, "group": group}, "feedback")
    with _spool(ws, immediate=True) as con:
        con.execute("INSERT OR IGNORE INTO feedback VALUES (?,?,?,?,?,?,?)",
                    (fb.feedback_id, fb.request_id, _stamp(fb.ts), fb.label, fb.score,
                     None if fb.correct is None else int(fb.correct), fb.group))


def spooled(ws: Workspace) -> tuple[int, int]:
    """How many traffic and feedback rows wait in the spool."""
    if not spool_path(ws).exists():
        return 0, 0
    with _spool(ws) as con:
        return (con.execute("SELECT count(*) FROM traffic").fetchone()[0],
                con.execute("SELECT count(*) FROM feedback").fetchone()[0])


def ingest(ws: Workspace) -> int:
    """Move spooled traffic and feedback into the warehouse; returns the traffic rows moved.

    Rows land in one DuckDB transaction with the catalog entries; only then are they deleted from the spool.
    A crash in between leaves them spooled, and the next ingest skips the request ids already there.
    """
    ws.require()
    import pyarrow as pa

    from catalog.store import CatalogStore
    from catalog.warehouse_change import warehouse_change

    with _spool(ws) as spool:
        # A snapshot bound: rows recorded while this runs wait for the next ingest.
        last_t = spool.execute("SELECT coalesce(max(rowid), 0) FROM traffic").fetchone()[0]
        last_f = spool.execute("SELECT coalesce(max(rowid), 0) FROM feedback").fetchone()[0]
        store = CatalogStore(ws)
        catalog = store.load()
        moved = 0
        with warehouse_change(ws) as (con, txn):
            for table, columns, spool_table, upto in ((TRAFFIC_TABLE, TRAFFIC_COLUMNS, "traffic", last_t),
                                                      (FEEDBACK_TABLE, FEEDBACK_COLUMNS, "feedback", last_f)):
                con.execute(_create_sql(table, columns))
                key = columns[0][0]
                names = ", ".join(_quote(c[0]) for c in columns)
                added = 0
                for chunk in _chunks(spool, spool_table, upto, columns):
                    con.register("_lathe_spooled", pa.Table.from_pydict(chunk, schema=_arrow_schema(columns)))
                    added += con.execute(
                        f"INSERT INTO {_quote(table)} ({names}) SELECT {names} FROM _lathe_spooled s "
                        f"WHERE NOT EXISTS (SELECT 1 FROM {_quote(table)} t WHERE t.{key} = s.{key})").fetchall()[0][0]
                    con.unregister("_lathe_spooled")
                if table == TRAFFIC_TABLE:
                    moved = added
                count = con.execute(f"SELECT count(*) FROM {_quote(table)}").fetchall()[0][0]
                existing = catalog.table(table)
                if existing is None:
                    txn.put_table(_catalog_entry(table, columns, count))
                elif existing.row_count != count:
                    # Keep what people added to the entry (descriptions, synonyms, tags): only the count moves.
                    txn.put_table(existing.model_copy(update={"row_count": count}))
    with _spool(ws, immediate=True) as spool:
        spool.execute("DELETE FROM traffic WHERE rowid <= ?", (last_t,))
        spool.execute("DELETE FROM feedback WHERE rowid <= ?", (last_f,))
    return moved


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _create_sql(table: str, columns: tuple[tuple[str, str, str, bool], ...]) -> str:
    cols = ", ".join(f"{_quote(n)} {t}" for n, t, _, _ in columns)
    return f"CREATE TABLE IF NOT EXISTS {_quote(table)} ({cols})"


def _arrow_schema(columns: tuple[tuple[str, str, str, bool], ...]) -> Any:
    import pyarrow as pa

    types = {"VARCHAR": pa.string(), "TIMESTAMP": pa.string(), "INTEGER": pa.int64(), "DOUBLE": pa.float64(),
             "BOOLEAN": pa.bool_()}
    return pa.schema([(n, types[t]) for n, t, _, _ in columns])


def _chunks(spool: sqlite3.Connection, table: str, upto: int,
            columns: tuple[tuple[str, str, str, bool], ...]) -> Iterator[dict[str, list[Any]]]:
    names = [c[0] for c in columns]
    cur = spool.execute(f"SELECT * FROM {table} WHERE rowid <= ? ORDER BY rowid", (upto,))
    while True:
        rows = cur.fetchmany(_CHUNK)
        if not rows:
            return
        data = {n: [r[i] for r in rows] for i, n in enumerate(names)}
        if "correct" in data:
            data["correct"] = [None if v is None else bool(v) for v in data["correct"]]
        yield data


def _catalog_entry(table: str, columns: tuple[tuple[str, str, str, bool], ...], rows: int) -> Any:
    from catalog.metadata import Column, PiiTag, Table

    about = ("requests served by Lathe endpoints, batch and async inference, captured for monitoring: one row "
             "per request with prompt, reply, tokens, latency and status" if table == TRAFFIC_TABLE else
             "feedback and labels for served requests (join to endpoint_traffic on request_id)")
    return Table(name=table, description=about, owner="lathe", source="lathe monitoring", tags=["monitoring"],
                 primary_key=[columns[0][0]], row_count=rows,
                 # Prompts and replies are free text a person typed: they may hold personal data, so they are
                 # tagged and masked for those without a grant; no sample values are ever copied here.
                 columns=[Column(name=n, type=t, description=d, pii=PiiTag.other if free else None)
                          for n, t, d, free in columns])

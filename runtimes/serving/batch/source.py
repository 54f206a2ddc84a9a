"""The rows a batch runs over: a catalog table or one read query through the safe SQL reader (guard, PII masking,
sandbox), the prompt column (chosen or detected), a stable key per row so a resumed batch knows what is done, and
each row's prompt as a chat, a plain prompt or the messages the row holds.

It only reads; it never opens a writable connection and never runs a model.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlglot import exp

from catalog.data_source import source_of
from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace

Format = Literal["chat", "prompt", "messages"]
# Column names that say "this is the text to answer", best first.
_PROMPT_NAMES = ("prompt", "question", "input", "instruction", "query", "request", "text", "body", "message",
                 "content", "description", "subject", "title")
_ROLES = {"system", "user", "assistant", "tool", "developer"}
CHUNK_ROWS = 50_000  # rows fetched from DuckDB at a time: memory stays flat whatever the source's size


@dataclass(frozen=True)
class SourceRows:
    sql: str  # the DuckDB statement that ran (recorded as the predictions' lineage)
    columns: list[str]
    rows: list[list[Any]]
    tables: list[str]


@dataclass(frozen=True)
class SourceColumn:
    type: str
    sources: list[str] = field(default_factory=list)  # `table.column`s it is computed from
    pii: str | None = None


@dataclass(frozen=True)
class BatchRow:
    key: str  # stable across runs: the key column's value as text, or a hash of the row
    key_value: Any
    prompt: str  # the prompt as text (messages rendered as `role: text` lines); '' when the row has none
    messages: list[dict[str, str]] | None  # the chat to send, for chat and messages formats


def source_statement(table: str | None, sql: str | None) -> str:
    return source_of(table, sql).statement()


def stream_rows(ws: Workspace, statement: str, principal: Principal | None = None,
                chunk_rows: int = CHUNK_ROWS) -> Iterator[SourceRows]:
    """Every row of the statement, in chunks fetched from DuckDB as they are needed (no row limit, never a silent
    cut), through the guard, PII masking for `principal` and the sandboxed reader. The reader is held only while
    the chunks are read."""
    import duckdb

    from catalog.pii_masking import mask_pii
    from catalog.query_schema import warehouse_catalog
    from catalog.sql_guard import guard
    from catalog.store import CatalogStore
    from catalog.warehouse import connect_reader
    from runtimes.training.datasets.sources import tables_read

    catalog = CatalogStore(ws).load()
    with connect_reader(ws) as con:
        tables = warehouse_catalog(con, catalog)
        guarded = guard(statement, None, tables)
        if guarded.query is None:
            raise UserError(f"a batch needs rows: `{statement}` is not a query")
        masked = mask_pii(con, guarded, tables, principal or Principal.local_admin())
        final = masked.tree.sql(dialect="duckdb")
        try:
            cur = con.execute(final)
            columns = [d[0] for d in cur.description]
            read = tables_read(final)
            while chunk := cur.fetchmany(chunk_rows):
                yield SourceRows(sql=final, columns=columns, rows=[list(r) for r in chunk], tables=read)
        except duckdb.Error as e:
            raise UserError(f"DuckDB cannot run the batch's source: {str(e).strip().splitlines()[0]}") from None


def read_rows(ws: Workspace, statement: str, principal: Principal | None = None) -> SourceRows:
    """Every row of the statement at once (small sources and tests); `stream_rows` keeps memory flat."""
    chunks = list(stream_rows(ws, statement, principal))
    if not chunks:
        raise UserError(f"the batch's source is empty: `{statement}` returned no rows")
    return SourceRows(sql=chunks[0].sql, columns=chunks[0].columns, rows=[r for c in chunks for r in c.rows],
                      tables=chunks[0].tables)


@dataclass(frozen=True)
class SourceScan:
    """One pass over a whole source: its row count, the rows with a prompt, the content hash, and whether the key
    column held a repeated or missing value anywhere."""
    rows: int
    with_prompt: int
    content_hash: str
    key_problem: str | None


def scan_rows(chunks: Iterable[SourceRows], prompt_column: str, key_column: str | None, fmt: Format,
              system_prompt: str | None = None, on_rows: Any = None) -> SourceScan:
    """Read every chunk once, turning each into `BatchRow`s (given to `on_rows` when set) and hashing them."""
    h, seen, keys = hashlib.sha256(), {}, set()
    count = with_prompt = 0
    problem = None
    for chunk in chunks:
        if key_column is not None and problem is None:
            k = chunk.columns.index(key_column)
            values = [r[k] for r in chunk.rows]
            if any(v is None for v in values):
                problem = "some rows have no value"
        rows = batch_rows(chunk, prompt_column, key_column, fmt, system_prompt, seen)
        if key_column is not None and problem is None:
            before = len(keys)
            keys.update(r.key for r in rows)
            if len(keys) - before != len(rows):
                problem = "its values repeat"
        _hash_rows(h, rows)
        count += len(rows)
        with_prompt += sum(1 for r in rows if r.prompt)
        if on_rows is not None:
            on_rows(rows)
    return SourceScan(count, with_prompt, h.hexdigest(), problem)


def describe_source(ws: Workspace, statement: str) -> dict[str, SourceColumn]:
    """Each output column's DuckDB type, the source columns it comes from and the PII tag it carries."""
    import duckdb

    from catalog.column_lineage import lineage_by_position
    from catalog.query_schema import warehouse_catalog
    from catalog.sql_guard import guard
    from catalog.store import CatalogStore
    from catalog.warehouse import connect_reader

    with connect_reader(ws) as con:
        tables = warehouse_catalog(con, CatalogStore(ws).load())
        guarded = guard(statement, None, tables)
        if guarded.query is None:
            raise UserError(f"a batch needs rows: `{statement}` is not a query")
        try:
            described = con.execute(exp.Describe(this=guarded.tree.copy()).sql(dialect="duckdb")).fetchall()
        except duckdb.Error as e:
            raise UserError(f"DuckDB cannot run the batch's source: {str(e).strip().splitlines()[0]}") from None
    try:
        lineage = [o.sources for o in lineage_by_position(guarded.query, guarded.schema)]
    except UserError:
        lineage = [[] for _ in described]  # lineage is a record, not a precondition of the batch
    out: dict[str, SourceColumn] = {}
    for (name, type_, *_), sources in zip(described, lineage + [[]] * (len(described) - len(lineage))):
        pii = None
        for ref in sources:
            t, _, c = ref.partition(".")
            meta = tables.table(t)
            col = meta.column(c) if meta else None
            if col is not None and col.pii is not None:
                pii = col.pii.value
                break
        out[name] = SourceColumn(type=str(type_), sources=list(sources), pii=pii)
    return out


def choose_prompt_column(columns: list[str], rows: list[list[Any]], given: str | None,
                         avoid: tuple[str | None, ...] = ()) -> tuple[str, str]:
    """The column to prompt with and why it was chosen; the given one must exist and hold some text."""
    from catalog.sql_guard import unknown_in

    if given is not None:
        name = next((c for c in columns if c.lower() == given.lower()), None)
        if name is None:
            raise UserError(unknown_in("column", given, columns, "the batch's source") +
                            " Choose the prompt column with --prompt-column.")
        if not any(_text(v) for v in _values(columns, rows, name)):
            raise UserError(f"the prompt column `{name}` is empty: none of its {len(rows):,} rows holds text; "
                            "choose another with --prompt-column")
        return name, "chosen"
    texts = [c for c in columns if c not in avoid and any(_is_text(v) for v in _values(columns, rows, c))]
    if not texts:
        raise UserError(f"the batch's source has no text column to prompt with (columns: {', '.join(columns)}); "
                        "name one with --prompt-column")
    for wanted in _PROMPT_NAMES:
        for c in texts:
            low = c.lower()
            if low == wanted or low.endswith("_" + wanted) or low.startswith(wanted + "_"):
                return c, f"detected by its name (`{wanted}`)"
    longest = max(texts, key=lambda c: sum(len(_text(v)) for v in _values(columns, rows, c)))
    return longest, "detected as the longest text column"


def choose_key_column(columns: list[str], rows: list[list[Any]], given: str | None,
                      primary_key: list[str]) -> str | None:
    """The column that names each row: the given one (checked unique and never null), else the table's single
    primary key, else an `id` / `*_id` column that happens to be unique; None when no column can."""
    from catalog.sql_guard import unknown_in

    if given is not None:
        name = next((c for c in columns if c.lower() == given.lower()), None)
        if name is None:
            raise UserError(unknown_in("column", given, columns, "the batch's source") +
                            " Choose the key column with --key-column.")
        problem = _key_problem(_values(columns, rows, name))
        if problem:
            raise UserError(f"`{name}` cannot key the batch's rows: {problem}; choose a unique column with "
                            "--key-column, or leave it out to key rows by their content")
        return name
    candidates = [c for c in primary_key[:1] if len(primary_key) == 1 and c in columns]
    candidates += [c for c in columns if c.lower() == "id" or c.lower().endswith("_id")]
    for c in candidates:
        if _key_problem(_values(columns, rows, c)) is None:
            return c
    return None


def batch_rows(source: SourceRows, prompt_column: str, key_column: str | None, fmt: Format,
               system_prompt: str | None = None, seen: dict[str, int] | None = None) -> list[BatchRow]:
    """One `BatchRow` per source row, in source order; `seen` carries the content keys across chunks."""
    p = source.columns.index(prompt_column)
    k = source.columns.index(key_column) if key_column else None
    out: list[BatchRow] = []
    seen = {} if seen is None else seen
    for row in source.rows:
        value = row[p]
        if k is not None:
            key, key_value = _key_text(row[k]), row[k]
        else:
            # Identical rows are told apart by their order among equals, which no reordering of the source changes.
            digest = hashlib.sha256(json.dumps(row, default=str, ensure_ascii=False).encode()).hexdigest()[:20]
            seen[digest] = seen.get(digest, 0) + 1
            key = key_value = f"{digest}-{seen[digest]}"
        out.append(_prompt_row(key, key_value, value, fmt, system_prompt))
    return out


def detect_format(source: SourceRows, prompt_column: str, asked: str) -> Format:
    """`auto`: the messages a column holds as they are, else each text as the user's turn of a chat."""
    holds_messages = any(_messages(v) is not None for v in _values(source.columns, source.rows, prompt_column))
    if asked == "auto":
        return "messages" if holds_messages else "chat"
    if asked == "prompt" and holds_messages:
        raise UserError(f"`{prompt_column}` holds chat messages, which a plain prompt cannot send: use the chat "
                        "format (leave --format out)")
    if asked == "messages" and not holds_messages:
        raise UserError(f"`{prompt_column}` holds no chat messages (a list of {{role, content}}): use --format chat "
                        "or prompt")
    return asked  # type: ignore[return-value]


def content_hash(rows: list[BatchRow]) -> str:
    h = hashlib.sha256()
    _hash_rows(h, rows)
    return h.hexdigest()


def _hash_rows(h: Any, rows: list[BatchRow]) -> None:
    for r in rows:
        h.update(json.dumps([r.key, r.prompt], ensure_ascii=False).encode())
        h.update(b"\n")


def default_output(table: str | None, tables: list[str]) -> str:
    stem = table or (tables[0] if len(tables) == 1 else "batch")
    return f"{stem}_predictions"


# ---- values ---------------------------------------------------------------------------------------------
def _values(columns: list[str], rows: list[list[Any]], column: str) -> list[Any]:
    i = columns.index(column)
    return [r[i] for r in rows]


def _is_text(v: Any) -> bool:
    return isinstance(v, str) or _messages(v) is not None


def _text(v: Any) -> str:
    msgs = _messages(v)
    if msgs is not None:
        return "\n".join(f"{m['role']}: {m['content']}" for m in msgs)
    return v.strip() if isinstance(v, str) else ""


def _messages(v: Any) -> list[dict[str, str]] | None:
    """A chat held in a cell (a list of {role, content}, or its JSON text), else None."""
    if isinstance(v, str) and v.lstrip().startswith("["):
        try:
            v = json.loads(v)
        except ValueError:
            return None
    if not isinstance(v, list) or not v:
        return None
    if all(isinstance(m, dict) and m.get("role") in _ROLES and isinstance(m.get("content"), str) for m in v):
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in v]
    return None


def _prompt_row(key: str, key_value: Any, value: Any, fmt: Format, system_prompt: str | None) -> BatchRow:
    text = _text(value)
    if not text:
        return BatchRow(key, key_value, "", None)
    if fmt == "prompt":
        return BatchRow(key, key_value, text, None)
    messages = _messages(value) if fmt == "messages" else None
    if messages is None:
        messages = [{"role": "user", "content": text}]
    if system_prompt and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system_prompt}, *messages]
    return BatchRow(key, key_value, text, messages)


def _key_text(v: Any) -> str:
    from catalog.results import json_value

    value = json_value(v)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _key_problem(values: list[Any]) -> str | None:
    if any(v is None for v in values):
        return "some rows have no value"
    texts = [_key_text(v) for v in values]
    if len(set(texts)) != len(texts):
        return "its values repeat"
    return None

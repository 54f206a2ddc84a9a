"""The rows a batch runs over: a catalog table or one read query through the safe SQL reader (guard, PII masking,
sandbox), the prompt column (chosen or detected), a stable key per row so a resumed batch knows what is done, and
each row's prompt as a chat, a plain prompt or the messages the row holds.

It only reads; it never opens a writable connection and never runs a model.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlglot import exp

from catalog.data_source import source_of
from core.errors import UserError
from core.principal import Principal
from catalog.safe_sql import run_sql
from core.workspace import Workspace

Format = Literal["chat", "prompt", "messages"]
# Column names that say "this is the text to answer", best first.
_PROMPT_NAMES = ("prompt", "question", "input", "instruction", "query", "request", "text", "body", "message",
                 "content", "description", "subject", "title")
_ROLES = {"system", "user", "assistant", "tool", "developer"}


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


def read_rows(ws: Workspace, statement: str, principal: Principal | None = None) -> SourceRows:
    """Every row of the statement, through the guarded, masked, sandboxed reader; never a silent cut."""
    from runtimes.training.datasets.sources import tables_read

    result = run_sql(ws, statement, principal=principal)
    if result.truncated:
        raise UserError(f"the batch's source has more rows than the workspace's row limit "
                        f"({ws.settings.sql.row_limit:,}); raise `row_limit` under [sql] in lathe.toml or split the "
                        "batch with WHERE clauses, so that no row is left out without notice")
    if not result.rows:
        raise UserError(f"the batch's source is empty: `{result.sql}` returned no rows")
    return SourceRows(sql=result.sql, columns=list(result.columns), rows=result.rows, tables=tables_read(result.sql))


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
               system_prompt: str | None = None) -> list[BatchRow]:
    """One `BatchRow` per source row, in source order."""
    p = source.columns.index(prompt_column)
    k = source.columns.index(key_column) if key_column else None
    out: list[BatchRow] = []
    seen: dict[str, int] = {}
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
    for r in rows:
        h.update(json.dumps([r.key, r.prompt], ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


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

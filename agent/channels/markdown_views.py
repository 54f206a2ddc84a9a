"""Markdown for what a session shows people: a result table, a new endpoint with its snippets, CSV and SQL text.

Pure functions of events and plans, shared by every front-end that speaks Markdown; they never run or
decide anything, and they escape cell text so data can never change the layout around it.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for hints: the chat UI imports this before the agent has loaded
    from agent.state import TableData

SHOWN_ROWS = 50  # rows of a result shown in a chat message; the rest are counted, not drawn
_CELL_CHARS = 120


def plain_cell(value: Any) -> str:
    """One value as every front-end shows it: thousands separators (not on 4-digit integers such as years), two
    decimals for fractions, JSON for structures."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1000 or value != int(value) else f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def cell_text(value: Any) -> str:
    """One cell as Markdown table text: no pipes or line breaks from the data, long text cut."""
    if value is None:
        return ""
    text = " ".join(plain_cell(value).split())
    if len(text) > _CELL_CHARS:
        text = text[: _CELL_CHARS - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("*", "\\*").replace("_", "\\_")


def table_markdown(table: TableData, max_rows: int = SHOWN_ROWS) -> str:
    """The rows as a Markdown table (at most `max_rows`), with a line saying what was left out or masked."""
    if not table.columns:
        return "_no columns_"
    head = "| " + " | ".join(cell_text(c) for c in table.columns) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = ["| " + " | ".join(cell_text(v) for v in row) + " |" for row in table.rows[:max_rows]]
    total = max(table.row_count, len(table.rows))
    notes: list[str] = []
    if not table.rows:
        notes.append("no rows")
    elif total > max_rows:
        notes.append(f"showing {max_rows:,} of {total:,} rows")
    else:
        notes.append(f"{total:,} row{'s' if total != 1 else ''}")
    if table.truncated:
        notes.append("the query had more rows than its limit")
    if table.masked_columns:
        notes.append("masked (PII): " + ", ".join(table.masked_columns))
    notes += table.warnings
    return "\n".join([head, rule, *body, "", "_" + "; ".join(notes) + "_"])


def endpoint_markdown(reveal: dict[str, str], kept: str | None = None) -> str:
    """A new endpoint as a person uses it: URL, model and API key, with `curl` and `openai` snippets ready to
    paste. `kept` stands for the key in what is kept after it was shown once (its redacted form)."""
    url, model = reveal["url"], reveal["model"]
    key = kept if kept is not None else reveal["api_key"]
    once = ("**Copy the key now: it is shown this once** and cannot be shown again." if kept is None
            else "_The key was shown once, when the endpoint was made; it is not kept here._")
    return "\n".join([
        f"**Endpoint `{reveal.get('endpoint', '')}` is ready.** {once}", "",
        f"- URL: `{url}`", f"- Model: `{model}`", f"- API key: `{key}`", "",
        "```bash",
        f"curl {url}/chat/completions -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\",
        f"  -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'",
        "```", "",
        "```python",
        "from openai import OpenAI",
        f"client = OpenAI(base_url=\"{url}\", api_key=\"{key}\")",
        f"reply = client.chat.completions.create(model=\"{model}\", messages=[{{\"role\": \"user\", "
        f"\"content\": \"Hello\"}}])",
        "print(reply.choices[0].message.content)",
        "```"])


def csv_text(table: TableData) -> str:
    """The whole table as CSV, headers as shown, values as they are (numbers unformatted)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.columns)
    writer.writerows(table.rows)
    return out.getvalue()


def pretty_sql(sql: str) -> str:
    """SQL laid out one clause a line (sqlglot), as it ran; unchanged where it does not parse."""
    import sqlglot

    try:
        return ";\n".join(sqlglot.transpile(sql, read="duckdb", write="duckdb", pretty=True))
    except sqlglot.errors.ParseError:
        return sql

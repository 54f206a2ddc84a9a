"""Block Kit for what a session shows in Slack: answers in mrkdwn, small tables as code blocks (large ones go as
CSV files), a waiting plan with Approve / Reject / Edit buttons, the same plan once decided, and the modals that
ask for a rejection's reason or a step's edited arguments.

Pure functions of events and plans; they never call Slack, run or decide anything.
"""
from __future__ import annotations

import csv
import io
import json
import re
from typing import TYPE_CHECKING, Any

from agent.channels.markdown_views import cell_text

if TYPE_CHECKING:
    from agent.state import Plan, TableData

APPROVE, REJECT, EDIT = "lathe_approve", "lathe_reject", "lathe_edit"
INLINE_ROWS = 20  # rows drawn in a message; a larger result is sent as a CSV file
_INLINE_CHARS = 2800  # Slack caps a section's text at 3,000 characters
_SECTION_CHARS = 2900


def mrkdwn(markdown: str) -> str:
    """Markdown as Slack's mrkdwn: **bold** → *bold*, [text](url) → <url|text>; code spans stay as they are."""
    text = re.sub(r"\*\*(.+?)\*\*", r"*\1*", markdown)
    return re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", r"<\2|\1>", text)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:_SECTION_CHARS]}}


def table_text(table: TableData) -> str | None:
    """The rows as an aligned monospace table, or None when they do not fit a message (send a CSV instead)."""
    if not table.columns or len(table.rows) > INLINE_ROWS or table.row_count > INLINE_ROWS:
        return None
    cells = [[_plain(c) for c in table.columns]] + [[_plain(v) for v in row] for row in table.rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(table.columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    body = "```\n" + "\n".join(lines) + "\n```"
    return body if len(body) <= _INLINE_CHARS else None


def table_csv(table: TableData) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(table.columns)
    w.writerows(["" if v is None else v for v in row] for row in table.rows)
    return out.getvalue()


def table_note(table: TableData) -> str:
    total = max(table.row_count, len(table.rows))
    notes = [f"{total:,} row{'s' if total != 1 else ''}"]
    if table.masked_columns:
        notes.append("masked (PII): " + ", ".join(table.masked_columns))
    return "_" + "; ".join(notes + list(table.warnings)) + "_"


def plan_blocks(plan: Plan, needs: list[str], thread_id: str, plan_hash: str, requested_by: str,
                notice: str | None = None) -> list[dict[str, Any]]:
    """A waiting plan: who asked, each step (SQL as a code block), and the three buttons."""
    blocks = [section(f"*Plan waiting for approval* (asked by {requested_by or 'someone'}): {mrkdwn(plan.summary)}")]
    blocks += _steps(plan, needs)
    if notice:
        blocks.append(section(f":warning: {mrkdwn(notice)}"))
    value = json.dumps({"thread": thread_id, "hash": plan_hash})
    blocks.append({"type": "actions", "block_id": "lathe_decision", "elements": [
        {"type": "button", "action_id": APPROVE, "style": "primary", "value": value,
         "text": {"type": "plain_text", "text": "Approve"}},
        {"type": "button", "action_id": REJECT, "style": "danger", "value": value,
         "text": {"type": "plain_text", "text": "Reject"}},
        {"type": "button", "action_id": EDIT, "value": value, "text": {"type": "plain_text", "text": "Edit"}}]})
    return blocks


def decided_blocks(plan: Plan, needs: list[str], decided: str) -> list[dict[str, Any]]:
    """The plan as it was decided: the buttons replaced by who decided and when."""
    return [section(f"*Plan*: {mrkdwn(plan.summary)}"), *_steps(plan, needs),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": decided}]}]


def reject_modal(value: str) -> dict[str, Any]:
    return {"type": "modal", "callback_id": REJECT, "private_metadata": value,
            "title": {"type": "plain_text", "text": "Reject the plan"},
            "submit": {"type": "plain_text", "text": "Reject"},
            "blocks": [{"type": "input", "block_id": "reason", "label": {"type": "plain_text", "text": "Why?"},
                        "element": {"type": "plain_text_input", "action_id": "text", "multiline": True}}]}


def edit_modal(plan: Plan, needs: list[str], value: str) -> dict[str, Any]:
    """One JSON field per step that waits for approval, holding its current arguments."""
    blocks = [{"type": "input", "block_id": s.id, "optional": True,
               "label": {"type": "plain_text", "text": f"{s.id}: {s.title}"[:150]},
               "element": {"type": "plain_text_input", "action_id": "args", "multiline": True,
                           "initial_value": json.dumps(s.args, indent=2, ensure_ascii=False)[:3000]}}
              for s in plan.steps if s.id in needs]
    return {"type": "modal", "callback_id": EDIT, "private_metadata": value,
            "title": {"type": "plain_text", "text": "Edit the plan"},
            "submit": {"type": "plain_text", "text": "Save"}, "blocks": blocks}


def _steps(plan: Plan, needs: list[str]) -> list[dict[str, Any]]:
    blocks = []
    for s in plan.order():
        line = f"{'*waits*' if s.id in needs else 'runs'} `{s.id}` {mrkdwn(s.title)} ({s.risk.value})"
        if s.estimated_cost:
            line += f": {s.estimated_cost}"
        sql = next((v for k, v in s.args.items() if "sql" in k and isinstance(v, str)), None)
        if sql:
            line += f"\n```\n{sql}\n```"
        blocks.append(section(line))
    return blocks


def _plain(value: Any) -> str:
    # cell_text escapes for Markdown tables; a code block shows text as it is, so take it back out.
    return cell_text(value).replace("\\|", "|").replace("\\`", "`").replace("\\*", "*").replace("\\_", "_").replace(
        "\\\\", "\\")

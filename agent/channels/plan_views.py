"""A plan as the chat UI shows it once: a checklist of steps, each with its SQL as a formatted code block and its
other arguments in words; the planner's explanation laid out as a clean Markdown list; a step's arguments as the
fields of an edit form, read back into typed values.

Pure functions of plans and text; they never run or decide anything.
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from agent.channels.markdown_views import pretty_sql
from agent.result_text import said_names

if TYPE_CHECKING:  # only for hints: the chat UI imports this before the agent has loaded
    from agent.state import Plan, Step

_MARKS = {None: "[ ]", True: "[x]", False: "[!]"}
_SQL_ARGS = ("sql", "select_sql", "query")
_EMPTY = (None, "", [], {})
_KINDS = {bool: "true or false", int: "a whole number", float: "a number", dict: "a JSON object", list: "a JSON list"}


def plan_markdown(plan: Plan, needs_approval: list[str], finished: dict[str, bool] | None = None,
                  said: str = "") -> str:
    """The plan as a checklist, ticked as steps finish; its summary is left out when `said` (the answer's text just
    shown, as it was streamed or as its explanation was laid out) already says it, so a plan is never read twice."""
    finished = finished or {}
    summary = plan.summary.strip()
    told = summary in said or explanation_markdown(summary) in said
    lines = ["**Plan**" + (f" — {summary}" if summary and not told else ""), ""]
    for s in plan.order():
        lines += step_lines(s, s.id in needs_approval and s.id not in finished, finished.get(s.id))
    return "\n".join(lines)


def step_lines(s: Step, waits: bool, done: bool | None = None) -> list[str]:
    """One step: its mark, title, risk and cost on one line; its SQL in a code block; its other arguments."""
    label = said_names(s.title) if s.title and not s.title.startswith(f"{s.tool}(") else s.tool
    about = " · ".join([s.risk.value, *cost_parts(s.estimated_cost)])
    lines = [f"- {_MARKS[done]} `{s.id}` **{label}** — _{about}_" + (" · **needs approval**" if waits else "")]
    others = []
    for key, value in s.args.items():
        if value in _EMPTY:
            continue
        if key in _SQL_ARGS and isinstance(value, str):
            lines += ["", "  ```sql", *(f"  {line}" for line in pretty_sql(value).splitlines()), "  ```"]
        else:
            others.append(f"{key.replace('_', ' ')} {arg_text(value)}")
    if others:
        lines += ["", "  " + " · ".join(others)]
    return lines


def cost_parts(cost: str) -> list[str]:
    """A step's cost in its parts, without empty ones or a dangling colon (`free:;` was a list's lead-in)."""
    parts = (p.strip().rstrip(":").strip() for p in cost.split(";"))
    return [p.replace("*", "\\*") for p in parts if p]


def arg_text(value: Any) -> str:
    """An argument's value in a line: text and numbers in code spans, a mapping as `k=v` pairs."""
    if isinstance(value, dict):
        return ", ".join(f"`{k}={json.dumps(v, ensure_ascii=False, default=str)}`" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(f"`{v}`" for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if len(text) > 40 or " " in text:  # prose (a description) reads better as text than as code
        text = text if len(text) <= 160 else text[:159] + "…"
        return "“" + text.replace("*", "\\*").replace("_", "\\_").replace("`", "'") + "”"
    return f"`{text}`"


_LEAD = re.compile(r"^([A-Z][\w ()/-]{0,40}):\s*(.*)$")  # `Memory: about 170 MiB …`


def explanation_markdown(text: str) -> str:
    """A planner's explanation (plain lines, `Label: text`, indented `- item` lines) as Markdown: each labelled
    line a list item with its label in bold, indented lines nested under it, other lines paragraphs, so no text
    runs into a list. Text that is not laid out in lines (one sentence, a paragraph) comes back as it is."""
    lines = text.splitlines()
    if not any(line.startswith("  ") for line in lines):
        return text
    out: list[str] = []
    in_list = False
    for line in lines:
        stripped = line.strip()
        if not stripped:
            out.append("")
            in_list = False
        elif line.startswith("  "):  # belongs to the item above it
            item = stripped[2:] if stripped.startswith("- ") else stripped
            if not in_list:
                out.append("-")
                in_list = True
            out.append(f"  - {item}")
        elif (lead := _LEAD.match(stripped)) is not None and lead.group(2) != "" or stripped.endswith(":"):
            if not in_list and out and out[-1] != "":
                out.append("")
            label, rest = (lead.group(1), lead.group(2)) if lead is not None else (stripped.rstrip(":"), "")
            out.append(f"- **{label}:** {rest}".rstrip())
            in_list = True
        else:
            if in_list:
                out.append("")
                in_list = False
            out += [stripped, ""]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


# ---- editing a step ---------------------------------------------------------------------------------------------
def form_fields(s: Step) -> list[dict[str, Any]]:
    """The edit form's fields: each argument's name, label, current value as text, a hint of its type, and
    whether it needs several lines (SQL, long text, a mapping)."""
    out = []
    for key, text in edit_fields(s).items():
        value = s.args[key]
        hint = ("(SQL)" if key in _SQL_ARGS else "(JSON)" if isinstance(value, dict | list) else
                "(true or false)" if isinstance(value, bool) else "(a number)" if isinstance(value, int | float)
                else "(empty: not set)" if value is None else "")
        if key in _SQL_ARGS and text:
            text = pretty_sql(text)
        out.append({"name": key, "label": key.replace("_", " ").capitalize(), "value": text, "hint": hint,
                    "multiline": key in _SQL_ARGS or "\n" in text or len(text) > 80 or isinstance(value, dict)})
    return out


def edit_fields(s: Step) -> dict[str, str]:
    """A step's arguments as form fields: name -> its value as text (JSON for lists and mappings)."""
    return {k: v if isinstance(v, str) else "" if v is None else json.dumps(v, ensure_ascii=False, default=str)
            for k, v in s.args.items()}


def read_fields(s: Step, fields: dict[str, str]) -> dict[str, Any]:
    """The changed arguments from a submitted form, each read as the type its current value has (a number, a
    yes/no, JSON for lists and mappings); a field left as it was is not an edit. `ValueError` names a field that
    does not read as its type."""
    changed: dict[str, Any] = {}
    before = edit_fields(s)
    for key, text in fields.items():
        if key not in s.args:
            raise ValueError(f"step `{s.id}` has no argument `{key}`; its arguments are "
                             + ", ".join(f"`{k}`" for k in s.args))
        if text.strip() == before[key].strip():
            continue
        current = s.args[key]
        if isinstance(current, str) or (current is None and not text.strip().startswith(("[", "{"))):
            changed[key] = text if text.strip() or current is not None else None
            continue
        try:
            changed[key] = json.loads(text) if text.strip() else None
        except json.JSONDecodeError as e:
            kind = _KINDS.get(type(current), "JSON value")
            raise ValueError(f"`{key}` must be {kind} (like {before[key] or 'null'}); “{text.strip()[:60]}” "
                             f"does not read as one ({e.msg})") from None
    return changed

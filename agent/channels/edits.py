"""Reads a person's edit of a plan step, typed as JSON in a chat or a terminal, into `Session.edit` form.

It only parses and names what is wrong (with line and column); the session validates the edited plan
against the tool's arguments, so nothing here decides what a tool accepts.
"""
from __future__ import annotations

import json
from typing import Any

from core.errors import UserError


def parse_step_edit(text: str, step_id: str) -> dict[str, dict[str, Any]]:
    """`{"limit": 10}` typed for step `s1` as `{"s1": {"limit": 10}}`; a fenced ```json block is accepted too."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    if not body.strip():
        raise UserError(f"the edit of step `{step_id}` is empty: send a JSON object such as {{\"name\": \"new_name\"}}")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as e:
        raise UserError(f"the edit of step `{step_id}` is not valid JSON (line {e.lineno}, column {e.colno}: "
                        f"{e.msg}); send an object such as {{\"name\": \"new_name\"}}") from None
    if not isinstance(value, dict) or not value:
        raise UserError(f"the edit of step `{step_id}` must be a JSON object naming the arguments to change, "
                        f"such as {{\"name\": \"new_name\"}}; got {json.dumps(value)[:80]}")
    return {step_id: value}

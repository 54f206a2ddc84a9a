"""A chat request's messages as the dictionaries a tokenizer's chat template renders, the same for every engine
(OpenAI's `developer` role is read as `system`); an empty chat is refused. With tools, a template that renders tools
gets them and the calls in history as it expects; any other gets them in a system message, calls written as the
model writes them and tool results as `<tool_response>` user turns (templates that know no `tool` role drop it).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from core.errors import UserError
from runtimes.serving.engines.tool_format import FunctionSpec, render_call, system_prompt


class ToolCall(BaseModel):
    """A call made earlier in the chat: `arguments` is the JSON text the model wrote."""
    id: str = ""
    name: str
    arguments: str = "{}"


class ChatTurn(BaseModel):
    """One message with what tool calling adds: the calls an assistant made, and which call a tool answers."""
    role: str
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None  # the function a `tool`/`function` message answers


def chat_dicts(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """Plain role/content dictionaries, for messages without tool calls."""
    if not messages:
        raise UserError("`messages` is empty: send at least one message")
    return [{"role": "system" if m.role == "developer" else m.role, "content": m.content} for m in messages]


def chat_template_input(tokenizer: Any, messages: Sequence[Any],
                        tools: Sequence[FunctionSpec] | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The messages and the extra keyword arguments for `tokenizer.apply_chat_template`."""
    if not tools and not any(getattr(m, "tool_calls", None) or m.role in ("tool", "function") for m in messages):
        return chat_dicts(messages), {}
    if not messages:
        raise UserError("`messages` is empty: send at least one message")
    if _renders_tools(tokenizer):
        return [_native(m) for m in messages], ({"tools": [t.openai() for t in tools]} if tools else {})
    rendered = [_as_text(m) for m in messages]
    if tools:
        prompt = system_prompt(list(tools))
        if rendered[0]["role"] == "system":
            rendered[0] = {"role": "system", "content": (rendered[0]["content"] or "") + "\n\n" + prompt}
        else:
            rendered.insert(0, {"role": "system", "content": prompt})
    return rendered, {}


def _renders_tools(tokenizer: Any) -> bool:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named templates: the default, or one named for tool use
        template = template.get("tool_use") or template.get("default")
    return isinstance(template, str) and "tools" in template


def _role(m: Any) -> str:
    return "system" if m.role == "developer" else m.role


def _native(m: Any) -> dict[str, Any]:
    """As transformers' templates take tool history: calls with arguments as objects, results with their id."""
    out: dict[str, Any] = {"role": "tool" if m.role == "function" else _role(m), "content": m.content or ""}
    calls = getattr(m, "tool_calls", None) or []
    if calls:
        out["tool_calls"] = [{"id": c.id, "type": "function",
                              "function": {"name": c.name, "arguments": _arguments(c.arguments)}} for c in calls]
    if getattr(m, "tool_call_id", None):
        out["tool_call_id"] = m.tool_call_id
    if getattr(m, "name", None):
        out["name"] = m.name
    return out


def _as_text(m: Any) -> dict[str, Any]:
    """For a template without tools: calls as the model writes them, results as user turns."""
    if m.role in ("tool", "function"):
        return {"role": "user", "content": f"<tool_response>\n{m.content or ''}\n</tool_response>"}
    calls = getattr(m, "tool_calls", None) or []
    text = "\n".join([*([m.content] if m.content else []), *(render_call(c.name, _compact(c.arguments))
                                                              for c in calls)])
    return {"role": _role(m), "content": text}


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:  # the model's own text, kept as it was
        return text


def _compact(text: str) -> str:
    """Arguments in the spacing the decoding grammar writes, so history looks like the model's own calls."""
    parsed = _arguments(text)
    return text if isinstance(parsed, str) else json.dumps(parsed, ensure_ascii=False)

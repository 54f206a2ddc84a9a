"""Tool calls in and out of a chat: the request's messages as chat turns (calls and tool results included), and the
model's text read back into OpenAI's shapes, whole (`message.tool_calls`, or the legacy `message.function_call`) or
streamed (`delta.tool_calls` by index), by one incremental parser so a stream adds up to the whole reply.

The content of a reply with calls is the text before the first call, trailing whitespace dropped (null when none
is left), as vLLM's parsers answer; text after a call is not part of the reply.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from runtimes.serving.endpoints.openai_schema import ChatCompletionRequest
from runtimes.serving.endpoints.tool_specs import ToolPlan
from runtimes.serving.engines.chat_input import ChatTurn, ToolCall
from runtimes.serving.engines.constrained import escape_controls
from runtimes.serving.engines.tool_format import ARGS_HEAD, CALL_END, CALL_HEAD, CALL_OPEN, TRIGGER, NAME_CHARS

Event = tuple[Literal["content", "name", "arguments"], int, str]


def chat_turns(body: ChatCompletionRequest) -> list[ChatTurn]:
    turns = []
    for m in body.messages:
        calls = [ToolCall(id=c.id, name=c.function.name, arguments=c.function.text()) for c in m.tool_calls or []]
        if m.function_call is not None:
            calls.append(ToolCall(name=m.function_call.name, arguments=m.function_call.text()))
        turns.append(ChatTurn(role=m.role, content=None if calls and m.content is None else m.text(), tool_calls=calls,
                              tool_call_id=m.tool_call_id, name=m.name))
    return turns


@dataclass
class ParsedCall:
    name: str
    arguments: str = ""
    id: str = field(default_factory=lambda: "call_" + uuid.uuid4().hex[:24])


class ToolCallParser:
    """Reads a reply piece by piece: `feed` and `close` answer what is now decided (content, a call's name, more
    of its arguments). Text that may begin a call, a call's end or trailing whitespace waits until it is decided."""

    def __init__(self) -> None:
        self.calls: list[ParsedCall] = []
        self._content: list[str] = []
        self._buf = ""
        self._state: Literal["text", "head", "args"] = "text"
        self._held_space = ""

    def feed(self, piece: str) -> list[Event]:
        self._buf += piece
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def close(self) -> list[Event]:
        events: list[Event] = []
        if self._state == "args":
            self._arguments(self._buf, events)
        else:  # a call's beginning cut short is text
            self._text(self._buf, events)
        self._buf, self._state = "", "text"
        if not self.calls and self._held_space:
            events.append(("content", 0, self._held_space))
            self._held_space = ""
        return events

    def content(self) -> str | None:
        text = "".join(self._content)
        return (text.rstrip() or None) if self.calls else text

    # ---- one decision at a time; True while there may be more ----------------------------------------
    def _step(self, events: list[Event]) -> bool:
        buf = self._buf
        if self._state == "text":
            at = buf.find(TRIGGER)
            if at < 0:
                keep = _partial_suffix(buf, TRIGGER)
                self._text(buf[:len(buf) - keep], events)
                self._buf = buf[len(buf) - keep:]
                return False
            self._text(buf[:at], events)
            self._buf, self._state = buf[at:], "head"
            return True
        if self._state == "head":
            opening = CALL_OPEN + CALL_HEAD
            if len(buf) < len(opening):
                if opening.startswith(buf):
                    return False
                return self._not_a_call(events)
            if not buf.startswith(opening):
                return self._not_a_call(events)
            rest = buf[len(opening):]
            n = next((i for i, c in enumerate(rest) if c not in NAME_CHARS), len(rest))
            after = rest[n:]
            if n > 64 or (after and not (after.startswith(ARGS_HEAD) or ARGS_HEAD.startswith(after))):
                return self._not_a_call(events)
            if not after.startswith(ARGS_HEAD):
                return False  # the name is not over yet
            if n == 0:
                return self._not_a_call(events)
            name, end = rest[:n], len(opening) + n
            self._held_space = ""  # the content ends where the first call begins
            self.calls.append(ParsedCall(name))
            events.append(("name", len(self.calls) - 1, name))
            self._buf, self._state = buf[end + len(ARGS_HEAD):], "args"
            return True
        at = buf.find(CALL_END)
        if at < 0:
            keep = _partial_suffix(buf, CALL_END)
            self._arguments(buf[:len(buf) - keep], events)
            self._buf = buf[len(buf) - keep:]
            return False
        self._arguments(buf[:at], events)
        self._buf, self._state = buf[at + len(CALL_END):], "text"
        return True

    def _not_a_call(self, events: list[Event]) -> bool:
        self._text(TRIGGER, events)
        self._buf, self._state = self._buf[len(TRIGGER):], "text"
        return True

    def _text(self, text: str, events: list[Event]) -> None:
        if not text or self.calls:
            return
        self._content.append(text)
        pending = self._held_space + text
        body = pending.rstrip()
        self._held_space = pending[len(body):]
        if body:
            events.append(("content", 0, body))

    def _arguments(self, text: str, events: list[Event]) -> None:
        text = escape_controls(text)  # arguments are decoded as compact JSON: see `escape_controls`
        if text:
            self.calls[-1].arguments += text
            events.append(("arguments", len(self.calls) - 1, text))


def _partial_suffix(text: str, marker: str) -> int:
    """The length of the longest end of `text` that begins `marker`."""
    for n in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-n:]):
            return n
    return 0


# ---- OpenAI's shapes --------------------------------------------------------------------------------
def message(parser: ToolCallParser, plan: ToolPlan) -> dict[str, Any]:
    """A whole reply's message fields."""
    fields: dict[str, Any] = {"content": parser.content()}
    if parser.calls and plan.legacy:
        first = parser.calls[0]
        fields["function_call"] = {"name": first.name, "arguments": first.arguments}
    elif parser.calls:
        fields["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name,
                                                                             "arguments": c.arguments}}
                                for c in parser.calls]
    return fields


def finish_reason(parser: ToolCallParser, plan: ToolPlan, finished: str) -> str:
    """`tool_calls` (legacy: `function_call`) when the reply ended on its own with calls; else as it ended."""
    if parser.calls and finished == "stop":
        return "function_call" if plan.legacy else "tool_calls"
    return finished


def whole_reply(text: str, finished: str, plan: ToolPlan) -> tuple[dict[str, Any], str]:
    """A whole reply's (message fields, finish reason)."""
    parser = ToolCallParser()
    parser.feed(text)
    parser.close()
    return message(parser, plan), finish_reason(parser, plan, finished)


def delta(event: Event, parser: ToolCallParser, plan: ToolPlan) -> dict[str, Any]:
    """A stream chunk's delta for one parser event."""
    kind, index, value = event
    if kind == "content":
        return {"content": value}
    if plan.legacy:
        return {"function_call": {"name": value, "arguments": ""} if kind == "name" else {"arguments": value}}
    if kind == "name":
        call = parser.calls[index]
        return {"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                "function": {"name": value, "arguments": ""}}]}
    return {"tool_calls": [{"index": index, "function": {"arguments": value}}]}

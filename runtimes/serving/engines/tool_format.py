"""The text a model writes to call a tool, `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>` (the
Hermes/Qwen convention), the system prompt that teaches it to a model whose chat template knows no tools, and the
xgrammar structural tag that holds decoding to it: a call must name a given tool and its arguments match its schema.

Pure text and JSON: nothing here compiles a grammar or touches a tokenizer.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

CALL_OPEN = "<tool_call>\n"
CALL_HEAD = '{"name": "'
ARGS_HEAD = '", "arguments": '
CALL_END = "}\n</tool_call>"
TRIGGER = "<tool_call>"
NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")  # OpenAI's function names
NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}

Mode = Literal["none", "auto", "required", "forced"]


@dataclass(frozen=True)
class FunctionSpec:
    """One callable function: its name, what it does, and the JSON schema of its arguments."""
    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: dict(NO_PARAMETERS))

    def openai(self) -> dict[str, Any]:
        """As OpenAI's `tools` list and transformers' chat templates take it."""
        fn: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            fn["description"] = self.description
        return {"type": "function", "function": fn}


def render_call(name: str, arguments: str) -> str:
    """A call as the model writes it; `arguments` is JSON text (written as it is, even if it does not parse)."""
    return f"{CALL_OPEN}{CALL_HEAD}{name}{ARGS_HEAD}{arguments}{CALL_END}"


def system_prompt(functions: list[FunctionSpec]) -> str:
    """The tools and the call format, for a chat template that does not render tools itself."""
    listed = "\n".join(json.dumps(f.openai(), ensure_ascii=False) for f in functions)
    return ("You may call functions to answer. The functions, as JSON schemas:\n<tools>\n" + listed + "\n</tools>\n"
            "To call one, answer with a JSON object of its name and arguments within tags, each call like this:\n"
            + render_call("<function-name>", "<arguments-object>"))


def tool_call_tag(functions: list[FunctionSpec], mode: Mode, parallel: bool) -> dict[str, Any]:
    """An xgrammar structural tag (as JSON) for `mode`: `forced` one call of the one function; `required` calls
    only (at least one; one at most unless `parallel`); `auto` free text in which `<tool_call>` starts a call. Arguments are compact JSON
    (no free whitespace: a small model could spend its whole budget on it) matching each function's schema."""
    import xgrammar as xgr

    def tag(f: FunctionSpec) -> dict[str, Any]:
        arguments = str(xgr.Grammar.from_json_schema(json.dumps(f.parameters), any_whitespace=False))
        return {"type": "tag", "begin": CALL_OPEN + CALL_HEAD + f.name + ARGS_HEAD,
                "content": {"type": "grammar", "grammar": arguments}, "end": CALL_END}

    if mode == "forced":
        (only,) = functions
        return {"type": "structural_tag", "format": tag(only)}
    if mode == "required":  # calls only, one a line: no text around them to decode and throw away
        return {"type": "structural_tag", "format": {
            "type": "tags_with_separator", "tags": [tag(f) for f in functions], "separator": "\n",
            "at_least_one": True, "stop_after_first": not parallel}}
    return {"type": "structural_tag", "format": {
        "type": "triggered_tags", "triggers": [TRIGGER], "tags": [tag(f) for f in functions],
        "stop_after_first": not parallel}}

"""The tools of a chat request, checked: OpenAI's `tools` (or the legacy `functions`) as function specs, and
`tool_choice` (or `function_call`) as a decoding mode. A bad definition is refused saying which tool and what is
wrong: its type, its name, or a `parameters` schema that is not valid JSON Schema or that constrained decoding
cannot hold to.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from runtimes.serving.engines.tool_format import NO_PARAMETERS, FunctionSpec, Mode

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # OpenAI's rule for function names
CHOICES = "'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}"
LEGACY_CHOICES = "'none', 'auto' or {\"name\": ...}"


@dataclass(frozen=True)
class ToolPlan:
    """What a request asks of tools: all its functions (shown in the prompt), those decoding may call, how, and
    whether the answer takes the legacy `function_call` shape (one call)."""
    functions: list[FunctionSpec]
    mode: Mode
    callable: list[FunctionSpec]
    parallel: bool
    legacy: bool


def function_specs(raw: list[Any], field: str, check: bool = True) -> list[FunctionSpec]:
    """`tools` (field "tools") or `functions` as specs; `check` also proves each schema with xgrammar."""
    specs: list[FunctionSpec] = []
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        fn = item
        if field == "tools":
            if not isinstance(item, dict) or item.get("type") != "function":
                got = item.get("type") if isinstance(item, dict) else item
                raise ValueError(f"{where}: type must be \"function\" (got {got!r}); only function tools are "
                                 "supported")
            fn = item.get("function")
            if not isinstance(fn, dict):
                raise ValueError(f"{where}: needs a `function` object with a `name` (and `parameters`)")
        if not isinstance(fn, dict):
            raise ValueError(f"{where}: must be an object with a `name` (and `parameters`)")
        name = fn.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ValueError(f"{where}: the function name {name!r} must be 1 to 64 letters, digits, underscores or "
                             "dashes")
        label = f"{where} ('{name}')"
        if any(s.name == name for s in specs):
            raise ValueError(f"{label}: another tool has this name; names must be unique")
        description = fn.get("description")
        if description is not None and not isinstance(description, str):
            raise ValueError(f"{label}: `description` must be a string")
        parameters = fn.get("parameters", NO_PARAMETERS)
        _check_parameters(label, parameters, check)
        specs.append(FunctionSpec(name, description, parameters))
    return specs


def _check_parameters(label: str, parameters: Any, check: bool) -> None:
    if not isinstance(parameters, dict):
        raise ValueError(f"{label}: `parameters` must be a JSON schema object, got {type(parameters).__name__}")
    if check:
        import jsonschema

        try:
            jsonschema.validators.validator_for(parameters).check_schema(parameters)
        except jsonschema.SchemaError as e:
            at = "/".join(str(p) for p in e.path)
            raise ValueError(f"{label}: `parameters` is not a valid JSON schema: {e.message}"
                             + (f" (at `{at}`)" if at else "")) from None
    if parameters.get("type", "object") != "object":
        raise ValueError(f"{label}: `parameters` must be a JSON schema of type \"object\" (the arguments are a "
                         f"JSON object), got {parameters.get('type')!r}")
    if not check:
        return
    import xgrammar as xgr

    try:
        xgr.Grammar.from_json_schema(json.dumps(parameters), any_whitespace=False)
    except Exception as e:  # xgrammar says what in the schema it cannot take
        said = re.sub(r"^\[[^]]*\] \S+: ", "", str(e).splitlines()[0])  # without xgrammar's time and source line
        raise ValueError(f"{label}: `parameters` cannot be used for constrained decoding: {said}") from None


def tool_mode(choice: Any, functions: list[FunctionSpec] | None, legacy: bool) -> tuple[Mode, list[FunctionSpec]]:
    """The decoding mode of `tool_choice` (or legacy `function_call`) and the functions it may call."""
    what, noun = ("function_call", "function") if legacy else ("tool_choice", "tool")
    if choice is None:
        return ("auto" if functions else "none"), list(functions or [])
    if choice == "none":
        return "none", []
    if not functions:
        raise ValueError(f"`{what}` needs `{'functions' if legacy else 'tools'}` to choose from (or send \"none\")")
    if choice == "auto" or (choice == "required" and not legacy):
        return choice, list(functions)
    name = None
    if isinstance(choice, dict):
        name = choice.get("name") if legacy else (choice.get("function") or {}).get("name") \
            if choice.get("type") == "function" and isinstance(choice.get("function"), dict) else None
    if not isinstance(name, str):
        raise ValueError(f"`{what}` is {LEGACY_CHOICES if legacy else CHOICES}")
    named = [f for f in functions if f.name == name]
    if not named:
        raise ValueError(f"no {noun} is named {name!r}; the {noun}s are "
                         + ", ".join(repr(f.name) for f in functions))
    return "forced", named

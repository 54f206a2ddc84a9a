"""The OpenAI wire format an endpoint speaks: request bodies as pydantic models (the fields Lathe honours; known
fields it cannot honour refused with a 400 naming them; unknown fields ignored, as OpenAI does), response and
stream-chunk bodies, and OpenAI-shaped error bodies.

Pure data: it never generates, loads a model or touches HTTP; `openai_api` does.
"""
from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from runtimes.serving.endpoints.tool_specs import ToolPlan, function_specs, tool_mode
from runtimes.serving.engines.tool_format import FunctionSpec

MAX_STOP = 4  # OpenAI's own limit on stop sequences
MAX_TOKENS = 1_000_000  # beyond any context; larger numbers are typing errors, refused before they reach torch
MAX_CHOICES = 8  # `n`: each choice is a generation of its own, one after the other
SEED_RANGE = (-(2**63), 2**63 - 1)  # what a generator's seed holds (OpenAI's `seed` is a 64-bit integer)


class APIError(Exception):
    """An answer with an OpenAI-shaped error body: `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def validation_error(e: ValidationError | list[dict[str, Any]]) -> APIError:
    """The first problem of a request body as a 400 naming the field, as OpenAI words it."""
    errors = e.errors() if isinstance(e, ValidationError) else e
    err = errors[0]
    loc = [str(x) for x in err.get("loc", ()) if x != "body"]
    param = ".".join(loc) or None
    if err.get("type") == "missing" and not param:
        return APIError(400, "The request has no body: send a JSON object.", code="invalid_json")
    if err.get("type") == "missing":
        return APIError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if err.get("type") == "json_invalid":
        return APIError(400, "The request body is not valid JSON: " + str(err.get("ctx", {}).get("error", err["msg"])),
                        code="invalid_json")
    if not param and err.get("type") in ("model_attributes_type", "dict_type"):
        return APIError(400, "The request body must be a JSON object (send it with `Content-Type: "
                        "application/json`).", code="invalid_json")
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    got = err.get("input")
    shown = f" (got {got!r})" if param and not isinstance(got, dict | list) and got is not None else ""
    return APIError(400, f"Invalid value for '{param}': {msg}{shown}." if param else msg, param=param,
                    code="invalid_value" if param else "invalid_request")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class RequestFunction(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    arguments: str | dict[str, Any] = "{}"

    def text(self) -> str:
        """The arguments as JSON text (OpenAI sends a string; an object is taken too)."""
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments, ensure_ascii=False)


class RequestToolCall(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = ""
    type: Literal["function"] = "function"
    function: RequestFunction


class RequestMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "function", "developer"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[RequestToolCall] | None = None
    function_call: RequestFunction | None = None  # a legacy assistant call
    tool_call_id: str | None = Field(None, validate_default=True)

    @field_validator("content")
    @classmethod
    def _text_only(cls, v: str | list[ContentPart] | None) -> str | list[ContentPart] | None:
        if isinstance(v, list) and any(p.type != "text" for p in v):
            kinds = sorted({p.type for p in v if p.type != "text"})
            raise ValueError(f"only text content parts are supported, not {', '.join(kinds)}")
        return v

    @field_validator("tool_call_id")
    @classmethod
    def _answers_a_call(cls, v: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("role") == "tool" and not v:
            raise ValueError("a `tool` message answers a call: send its `tool_call_id`")
        if info.data.get("role") == "function" and not info.data.get("name"):
            raise ValueError("a `function` message answers a call: send the function's `name`")
        return v

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content)
        return self.content or ""


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field("response", min_length=1, max_length=64)
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """`text` (the default), `json_object` (any JSON object) or `json_schema` (JSON matching the schema)."""
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> "ResponseFormat":
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type `json_schema` needs `json_schema: {\"name\": ..., \"schema\": {...}}`")
        return self


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class _Request(BaseModel):
    """Fields both routes share. Unknown fields are ignored; known ones Lathe cannot honour are refused."""
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(1, ge=1, le=MAX_CHOICES)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = Field(None, description="free labels; `group` feeds per-group monitoring")

    @field_validator("logit_bias")
    @classmethod
    def _token_biases(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        for token, bias in (v or {}).items():
            # ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and other scripts' digits.
            if not (token.isascii() and token.isdigit()):
                raise ValueError(f"keys are token ids (e.g. \"50256\"), got {token!r}")
            if not -100 <= bias <= 100:
                raise ValueError(f"biases lie between -100 and 100, got {bias} for token {token}")
        return v

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences, got {len(v)}")
        return v

    def choices(self) -> int:
        return self.n or 1

    def token_biases(self) -> dict[int, float]:
        return {int(k): v for k, v in (self.logit_bias or {}).items()}

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else [s for s in (self.stop or []) if s]

    def group(self) -> str | None:
        return (self.metadata or {}).get("group")

    def wants_usage_chunk(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(_Request):
    messages: list[RequestMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    # Tools before `response_format`: validators of later fields see the earlier ones.
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    functions: list[Any] | None = None
    function_call: str | dict[str, Any] | None = None
    response_format: ResponseFormat | None = None

    @field_validator("top_logprobs")
    @classmethod
    def _top_needs_logprobs(cls, v: Any, info: ValidationInfo) -> Any:
        if v is not None and not info.data.get("logprobs"):
            raise ValueError("`logprobs` must be true when `top_logprobs` is set")
        return v

    def logprob_count(self) -> int | None:
        """None: no log probabilities; k: each token's and the k most likely alternatives'."""
        return (self.top_logprobs or 0) if self.logprobs else None

    @field_validator("tools", "functions")
    @classmethod
    def _functions(cls, v: list[Any] | None, info: ValidationInfo) -> list[Any] | None:
        if v and info.field_name == "functions" and info.data.get("tools"):
            raise ValueError("send `tools` or `functions`, not both (`functions` is the older form of `tools`)")
        if v:
            function_specs(v, info.field_name)
        return v

    @field_validator("tool_choice", "function_call")
    @classmethod
    def _choice(cls, v: Any, info: ValidationInfo) -> Any:
        legacy = info.field_name == "function_call"
        raw = info.data.get("functions" if legacy else "tools")
        tool_mode(v, function_specs(raw, "functions" if legacy else "tools", check=False) if raw else None, legacy)
        return v

    @field_validator("response_format")
    @classmethod
    def _not_with_tools(cls, v: ResponseFormat | None, info: ValidationInfo) -> ResponseFormat | None:
        calls = any(info.data.get(f) and info.data.get(c) != "none"
                    for f, c in (("tools", "tool_choice"), ("functions", "function_call")))
        if v is not None and v.type != "text" and calls:
            raise ValueError("send `response_format` or tool calls, not both (or `tool_choice`: \"none\")")
        return v

    def tool_specs(self) -> list[FunctionSpec]:
        raw, field = (self.tools, "tools") if self.tools else (self.functions, "functions")
        return function_specs(raw, field, check=False) if raw else []

    def tool_plan(self) -> ToolPlan | None:
        """What the request asks of tools; None when it sends none."""
        functions = self.tool_specs()
        legacy = not self.tools and bool(self.functions)
        if not functions:
            return None
        mode, callable_ = tool_mode(self.function_call if legacy else self.tool_choice, functions, legacy)
        parallel = not legacy and self.parallel_tool_calls is not False
        return ToolPlan(functions, mode, callable_, parallel, legacy)

    def json_schema(self) -> tuple[bool, dict[str, Any] | None]:
        """Whether the reply must be JSON, and the schema it must match (None: any JSON object)."""
        fmt = self.response_format
        if fmt is None or fmt.type == "text":
            return False, None
        return True, (fmt.json_schema.schema_ or None) if fmt.json_schema is not None and fmt.type == "json_schema" \
            else None

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Request):
    prompt: str | list[str]
    echo: bool | None = None
    best_of: int | None = None
    logprobs: int | None = Field(None, ge=0, le=5)
    suffix: str | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and len(v) != 1:
            raise ValueError(f"`prompt` must be one string (Lathe answers one prompt per request), "
                             f"got a list of {len(v)}")
        return v

    @field_validator("echo", "best_of", "suffix")
    @classmethod
    def _unsupported(cls, v: Any, info: ValidationInfo) -> Any:
        if v is not None and v is not False and v != "" and not (info.field_name == "best_of" and v == 1):
            raise ValueError(f"`{info.field_name}` is not supported by Lathe endpoints: leave it out")
        return v

    def text(self) -> str:
        return self.prompt[0] if isinstance(self.prompt, list) else self.prompt

    def logprob_count(self) -> int | None:
        return self.logprobs

    def token_limit(self) -> int | None:
        return self.max_tokens


# ---- response bodies ------------------------------------------------------------------------------------
def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def chat_completion(request_id: str, model: str, replies: list[tuple[str | dict[str, Any], str]], prompt_tokens: int,
                    completion_tokens: int, logprobs: list[Any] | None = None) -> dict[str, Any]:
    """A whole chat reply: one choice per (text or message fields, finish reason)."""
    return {"id": request_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "system_fingerprint": None,
            "choices": [{"index": i, "message": {"role": "assistant", "refusal": None} | (
                reply if isinstance(reply, dict) else {"content": reply}),
                         "logprobs": logprobs[i] if logprobs else None, "finish_reason": finish}
                        for i, (reply, finish) in enumerate(replies)],
            "usage": usage(prompt_tokens, completion_tokens)}


def chat_chunk(request_id: str, model: str, created: int, delta: dict[str, Any],
               finish_reason: str | None = None, logprobs: Any = None) -> dict[str, Any]:
    return {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]}


def text_completion(request_id: str, model: str, replies: list[tuple[str, str]], prompt_tokens: int,
                    completion_tokens: int, logprobs: list[Any] | None = None) -> dict[str, Any]:
    return {"id": request_id, "object": "text_completion", "created": int(time.time()), "model": model,
            "system_fingerprint": None,
            "choices": [{"index": i, "text": text, "logprobs": logprobs[i] if logprobs else None,
                         "finish_reason": finish}
                        for i, (text, finish) in enumerate(replies)],
            "usage": usage(prompt_tokens, completion_tokens)}


def completion_chunk(request_id: str, model: str, created: int, text: str,
                     finish_reason: str | None = None, logprobs: Any = None) -> dict[str, Any]:
    return {"id": request_id, "object": "text_completion", "created": created, "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}]}


def usage_chunk(request_id: str, model: str, created: int, obj: str, prompt_tokens: int,
                completion_tokens: int) -> dict[str, Any]:
    """The last chunk of a stream with `stream_options.include_usage`: no choices, the usage."""
    return {"id": request_id, "object": obj, "created": created, "model": model, "system_fingerprint": None,
            "choices": [], "usage": usage(prompt_tokens, completion_tokens)}


def model_card(model_id: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "lathe"}

"""The OpenAI request fields that shape decoding, as logits processors for one generation: `presence_penalty`,
`frequency_penalty`, `logit_bias`, `response_format` (JSON) and tool calls (both by constrained decoding). A field
a backend cannot honour is refused with a 400 naming it, never ignored. A backend that decodes on its own (vLLM)
gets them as data to translate: the penalty and bias objects and a `Constraint`.
"""
from __future__ import annotations

from typing import Any

from core.errors import UserError
from runtimes.serving.endpoints.openai_schema import APIError, ChatCompletionRequest


def logits_processors(body: Any, engine: Any, prompt_tokens: int) -> list[Any]:
    """Fresh processors for one choice of `body` on `engine` (they keep state while decoding)."""
    from runtimes.serving.engines.logit_processors import LogitBias, OpenAIPenalties

    wants_json, schema = body.json_schema() if isinstance(body, ChatCompletionRequest) else (False, None)
    plan = body.tool_plan() if isinstance(body, ChatCompletionRequest) else None
    calls = plan is not None and plan.mode != "none"
    tools_field = "functions" if plan is not None and plan.legacy else "tools"
    asked = [name for name, on in (("presence_penalty", bool(body.presence_penalty)),
                                   ("frequency_penalty", bool(body.frequency_penalty)),
                                   ("logit_bias", bool(body.logit_bias)), ("response_format", wants_json),
                                   (tools_field, calls)) if on]
    if not asked:
        return []
    as_data = bool(getattr(engine, "takes_constraints", False))
    if not as_data and not _takes_processors(engine):
        raise APIError(400, f"`{asked[0]}` is not supported by this endpoint's backend ({type(engine).__name__}): "
                       "leave it out, or deploy with the transformers backend.", param=asked[0], code="invalid_value")
    processors: list[Any] = []
    if body.presence_penalty or body.frequency_penalty:
        processors.append(OpenAIPenalties(prompt_tokens, body.presence_penalty or 0.0, body.frequency_penalty or 0.0))
    vocab = int(getattr(engine, "vocab_size", 0) or engine.model.config.get_text_config().vocab_size)
    if body.logit_bias:
        bias = body.token_biases()
        beyond = sorted(t for t in bias if t >= vocab)
        if beyond:
            raise APIError(400, f"Invalid value for 'logit_bias': token id {beyond[0]} is not in this model's "
                           f"vocabulary (ids 0 to {vocab - 1}).", param="logit_bias", code="invalid_value")
        processors.append(LogitBias(bias))
    if calls or wants_json:
        from runtimes.serving.engines.constrained import Constraint
        from runtimes.serving.engines.tool_format import tool_call_tag

        field = tools_field if calls else "response_format"
        try:
            constraint = Constraint(structural_tag=tool_call_tag(plan.callable, plan.mode, plan.parallel)) \
                if calls and plan is not None else Constraint(json_schema=schema)
            processors.append(constraint if as_data else constraint.processor(engine.tokenizer, vocab))
        except UserError as e:
            raise APIError(400, f"Invalid value for '{field}': {e}.", param=field, code="invalid_value") from None
    return processors


def _takes_processors(engine: Any) -> bool:
    from runtimes.serving.engines.transformers_engine import Engine

    return isinstance(engine, Engine)

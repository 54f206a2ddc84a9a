"""One request's decoding settings as vLLM's `SamplingParams` keyword arguments: limits, sampling, stop strings,
seed, OpenAI's penalties and logit bias, and constrained output (a JSON schema, any JSON object, or a structural
tag of tool calls) as vLLM's `structured_outputs`. Pure data: it imports nothing of vLLM, so it is checked here.

A setting vLLM would not honour is refused, never dropped.
"""
from __future__ import annotations

import json
from typing import Any

from core.errors import UserError
from runtimes.serving.engines.constrained import Constraint
from runtimes.serving.engines.logit_processors import LogitBias, OpenAIPenalties


def sampling_params_args(sampling: Any) -> dict[str, Any]:
    """`SamplingParams(**args)`, except `structured_outputs`, which is `StructuredOutputsParams(**args[...])`."""
    args: dict[str, Any] = {"n": 1, "max_tokens": sampling.max_new_tokens, "temperature": sampling.temperature,
                            "top_p": sampling.top_p, "stop": list(sampling.stop) or None, "seed": sampling.seed,
                            "skip_special_tokens": True}
    for p in sampling.processors:
        if isinstance(p, OpenAIPenalties):  # vLLM counts the output only, as OpenAI defines them
            args["presence_penalty"], args["frequency_penalty"] = p.presence, p.frequency
        elif isinstance(p, LogitBias):
            args["logit_bias"] = dict(p.bias)
        elif isinstance(p, Constraint):
            args["structured_outputs"] = _structured(p)
        else:
            raise UserError(f"the vllm backend cannot apply {type(p).__name__} to a request; deploy with the "
                            "transformers backend for it")
    return args


def _structured(c: Constraint) -> dict[str, Any]:
    if c.structural_tag is not None:
        return {"structural_tag": json.dumps(c.structural_tag)}
    if c.json_schema is not None:
        return {"json": c.json_schema}
    return {"json_object": True}

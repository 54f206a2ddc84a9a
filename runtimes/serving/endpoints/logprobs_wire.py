"""Log probabilities in OpenAI's shapes: chat's `logprobs.content` (token, logprob, bytes, top_logprobs) and the
legacy completions' `tokens`, `token_logprobs`, `top_logprobs` (token → logprob) and `text_offset`."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runtimes.serving.engines.token_logprobs import ReplyToken


def chat(tokens: Sequence[ReplyToken] | None) -> dict[str, Any] | None:
    if tokens is None:
        return None
    return {"content": [{"token": t.text, "logprob": t.logprob, "bytes": list(t.bytes),
                         "top_logprobs": [{"token": text, "logprob": v, "bytes": list(data)}
                                          for text, data, v in t.top]} for t in tokens],
            "refusal": None}


def completion(tokens: Sequence[ReplyToken] | None) -> dict[str, Any] | None:
    if tokens is None:
        return None
    return {"tokens": [t.text for t in tokens], "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": [{text: v for text, _, v in t.top} for t in tokens],
            "text_offset": [t.offset for t in tokens]}

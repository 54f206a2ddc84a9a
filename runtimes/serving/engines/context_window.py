"""Whether a prompt and the completion asked for fit a model's context window: the one check the real-time API,
the async queue (at submit and again in the worker) and batch rows all make, in OpenAI's words.

A prompt that does not fit is refused, never truncated: a model past its positions answers garbage.
"""
from __future__ import annotations

import functools
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from core.errors import UserError


class ContextTooLong(UserError):
    """The prompt plus the tokens asked for exceed the model's context length."""

    def __init__(self, limit: int, prompt_tokens: int, asked: int, what: str) -> None:
        self.limit, self.prompt_tokens, self.asked, self.what = limit, prompt_tokens, asked, what
        super().__init__(f"This model's maximum context length is {limit} tokens. However, you requested "
                         f"{prompt_tokens + asked} tokens ({prompt_tokens} in the {what}, {asked} in the completion). "
                         f"Please reduce the length of the {what} or completion.")


def check_fits(limit: int | None, prompt_tokens: int, asked: int | None, what: str) -> None:
    """Raise `ContextTooLong` unless `prompt_tokens` and `asked` new tokens (at least one) fit in `limit`;
    `what` is `messages` (chat) or `prompt` (completion). No limit known: anything goes."""
    if limit is not None and prompt_tokens + (asked or 1) > limit:
        raise ContextTooLong(limit, prompt_tokens, asked or 1, what)


def config_context_length(config: dict[str, Any]) -> int | None:
    """The context length a model's `config.json` (as a dict) declares, None when it does not say."""
    n = config.get("max_position_embeddings", (config.get("text_config") or {}).get("max_position_embeddings"))
    return int(n) if isinstance(n, int) and n > 0 else None


def check_request_fits(base: str, *, messages: Sequence[Any] | None, prompt: str | None, asked: int | None,
                       workspace_root: str | None = None) -> None:
    """`check_fits` before any model is loaded: the prompt counted with the model's tokenizer (and chat template)
    exactly as the engine will tokenize it; `base` is found as `resolve_model` finds it in that workspace."""
    from runtimes.serving.engines.chat_input import chat_dicts

    tokenizer, limit = _tokenizer_and_limit(base, workspace_root)
    if limit is None:
        return
    if messages is not None:
        n = len(tokenizer.apply_chat_template(chat_dicts(messages), add_generation_prompt=True, tokenize=True,
                                              return_dict=True)["input_ids"])
    else:
        n = len(tokenizer(prompt or "")["input_ids"])
    check_fits(limit, n, asked, "messages" if messages is not None else "prompt")


@functools.lru_cache(maxsize=4)
def _tokenizer_and_limit(base: str, workspace_root: str | None) -> tuple[Any, int | None]:
    from core.workspace import Workspace
    from runtimes.models.sources import load_tokenizer, resolve_model

    source = resolve_model(base, Workspace(Path(workspace_root)) if workspace_root else None)
    return load_tokenizer(source)[0], config_context_length(source.config)

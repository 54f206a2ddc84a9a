"""A chat request's messages as the plain role/content dictionaries a tokenizer's chat template renders, the same
for every engine (OpenAI's `developer` role is read as `system`); an empty chat is refused.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.errors import UserError


def chat_dicts(messages: Sequence[Any]) -> list[dict[str, str]]:
    if not messages:
        raise UserError("`messages` is empty: send at least one message")
    return [{"role": "system" if m.role == "developer" else m.role, "content": m.content} for m in messages]

"""Constrained decoding (OpenAI's `response_format` and tool calls): a grammar compiled by xgrammar from a JSON
schema, from "any JSON object" or from a structural tag of tool calls masks every token that would leave it, so the
reply parses and matches (unless the token limit cuts it first: then `finish_reason` is `length`).

A grammar compiler per tokenizer is kept (building one reads the whole vocabulary); compiled schemas are cached.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any

from core.errors import UserError

ANY_OBJECT: dict[str, Any] = {"type": "object"}
_CONTROL = re.compile("[\x00-\x1f]")
_compilers: dict[tuple[int, int], Any] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Constraint:
    """What a reply must match, as data any backend can take: a structural tag (tool calls, as xgrammar's JSON)
    or else a JSON schema (None with no tag: any JSON object)."""
    json_schema: dict[str, Any] | None = None
    structural_tag: dict[str, Any] | None = None

    def processor(self, tokenizer: Any, vocab_size: int) -> Any:
        """A fresh transformers logits processor holding decoding to it."""
        if self.structural_tag is None:
            return json_processor(tokenizer, vocab_size, self.json_schema)
        import xgrammar as xgr

        grammar = _compiler(tokenizer, vocab_size).compile_structural_tag(self.structural_tag)
        return xgr.contrib.hf.LogitsProcessor(grammar)


def json_processor(tokenizer: Any, vocab_size: int, schema: dict[str, Any] | None) -> Any:
    """A fresh logits processor (one per generation: it tracks where the reply is in the grammar) that keeps
    the reply a JSON value matching `schema`, or any JSON object when `schema` is None."""
    try:
        import xgrammar as xgr
    except ImportError:
        raise UserError("JSON output (`response_format`) needs the xgrammar package: pip install xgrammar") from None
    compiler = _compiler(tokenizer, vocab_size)
    try:
        # No free whitespace between tokens: a small model could otherwise spend its whole budget on it.
        grammar = compiler.compile_json_schema(json.dumps(schema or ANY_OBJECT), any_whitespace=False)
    except Exception as e:  # xgrammar says what in the schema it cannot take
        raise UserError(f"the JSON schema cannot be used for decoding: {str(e).splitlines()[0]}") from None
    return xgr.contrib.hf.LogitsProcessor(grammar)


def _compiler(tokenizer: Any, vocab_size: int) -> Any:
    import xgrammar as xgr

    key = (id(tokenizer), vocab_size)
    with _lock:
        if key not in _compilers:
            info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
            _compilers[key] = (tokenizer, xgr.GrammarCompiler(info))  # the tokenizer is kept so its id stays its own
        return _compilers[key][1]


def escape_controls(text: str) -> str:
    """JSON decoded under these grammars, with each raw control character escaped as JSON writes it (`\\u000f`).
    xgrammar lets a length-bounded string hold raw control characters, which JSON forbids; the grammars here
    allow no whitespace outside strings, so every control character is inside one. Character by character: a
    stream escaped piece by piece adds up to the whole reply escaped."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

"""Log probabilities of the tokens a generation chose, and of the most likely alternatives at each step, taken
from the scores the sampler read: after the request's own logits processors (logit_bias, penalties, a JSON
grammar), before temperature and top-p. vLLM reports raw model log probabilities by default; OpenAI does not
say. A token a processor banned has log probability -inf, written as -9999.0 as OpenAI writes it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

FLOOR = -9999.0  # what OpenAI reports for a token that cannot be chosen (JSON has no -inf)


@dataclass(frozen=True)
class TokenLogprob:
    """One decoded token: its id and log probability, and the `top` most likely ids with theirs, best first."""
    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class ReplyToken:
    """A token of the reply as the API shows it: its text, its bytes, and where it starts in the reply."""
    text: str
    bytes: bytes
    offset: int  # characters of the reply before it
    logprob: float
    top: tuple[tuple[str, bytes, float], ...] = field(default=())


def _finite(value: float) -> float:
    return value if value > FLOOR else FLOOR


def score(scores: Any, token: int, top: int) -> TokenLogprob:
    """The entry for `token` chosen from `scores` (one row of logits), with the `top` best alternatives."""
    import torch

    logprobs = torch.log_softmax(scores.float().reshape(-1), dim=-1)
    best: tuple[tuple[int, float], ...] = ()
    if top > 0:
        values, ids = torch.topk(logprobs, min(top, logprobs.shape[0]))
        best = tuple((int(i), _finite(float(v))) for i, v in zip(ids.tolist(), values.tolist()))
    return TokenLogprob(int(token), _finite(float(logprobs[token])), best)


class Recorder:
    """A logits processor for `model.generate` (the one-at-a-time path), placed after the request's own: it keeps
    each step's scores until the next step shows which token was chosen from them."""

    def __init__(self, prompt_tokens: int, top: int) -> None:
        self.prompt_tokens, self.top = prompt_tokens, top
        self.entries: list[TokenLogprob] = []
        self._pending: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if input_ids.shape[1] > self.prompt_tokens:  # the last token was chosen from the scores kept last step
            self._settle(input_ids[0, -1])
        self._pending = scores[0].detach().clone()
        return scores

    def _settle(self, token: Any) -> None:
        if self._pending is not None:
            self.entries.append(score(self._pending, int(token), self.top))
            self._pending = None

    def finish(self, new_tokens: list[int]) -> list[TokenLogprob]:
        """The entries of the `new_tokens` generated (the last one settled here)."""
        if len(self.entries) < len(new_tokens):
            self._settle(new_tokens[len(self.entries)])
        return self.entries[:len(new_tokens)]


class TokenText:
    """A tokenizer's tokens as bytes: byte-level BPE tokens (GPT-2, Llama 3, Qwen) map back to their exact bytes,
    sentencepiece byte tokens (`<0xE2>`) to their byte, other tokens to their decoded text."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
        self._bytes_of: dict[str, int] | None = None
        if decoder is not None and "ByteLevel" in repr(decoder)[:200]:
            from transformers.convert_slow_tokenizer import bytes_to_unicode

            self._bytes_of = {c: b for b, c in bytes_to_unicode().items()}
        self._special = set(tokenizer.all_special_ids)
        self._cache: dict[int, bytes] = {}

    def special(self, token: int) -> bool:
        return token in self._special

    def bytes(self, token: int) -> bytes:
        if token not in self._cache:
            piece = self.tokenizer.convert_ids_to_tokens(token)
            if self._bytes_of is not None and piece is not None and all(c in self._bytes_of for c in piece):
                value = bytes(self._bytes_of[c] for c in piece)
            elif piece is not None and (m := re.fullmatch(r"<0x([0-9A-Fa-f]{2})>", piece)):
                value = bytes([int(m.group(1), 16)])
            else:
                value = self.tokenizer.decode([token]).encode("utf-8")
            self._cache[token] = value
        return self._cache[token]

    def text(self, token: int) -> str:
        """The token's text; a token that is only part of a character is written as its escaped bytes."""
        return self.bytes(token).decode("utf-8", errors="backslashreplace")


def reply_tokens(tokens: TokenText, entries: list[TokenLogprob], reply: str | None = None) -> list[ReplyToken]:
    """The reply's tokens (special tokens left out) as the API lists them; with `reply` (a reply cut at a stop
    string), only the tokens that begin inside it."""
    limit = None if reply is None else len(reply.encode("utf-8"))
    out: list[ReplyToken] = []
    before = b""
    for entry in entries:
        if tokens.special(entry.token):
            continue
        if limit is not None and len(before) >= limit:
            break
        data = tokens.bytes(entry.token)
        out.append(ReplyToken(tokens.text(entry.token), data, len(before.decode("utf-8", errors="replace")),
                              entry.logprob, tuple((tokens.text(t), tokens.bytes(t), v) for t, v in entry.top)))
        before += data
    return out


def settled(listed: list[ReplyToken], sent: str) -> int:
    """How many of `listed` (a stream's reply tokens so far) it may send once `sent` is out: those that lie within
    the text sent and begin strictly inside it, so that no stop string found later can leave them out."""
    limit = len(sent.encode("utf-8"))
    n, start = 0, 0
    for token in listed:
        if start >= limit or start + len(token.bytes) > limit:
            break
        start += len(token.bytes)
        n += 1
    return n

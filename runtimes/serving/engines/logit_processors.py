"""OpenAI's logit adjustments as transformers logits processors: `presence_penalty` and `frequency_penalty`
(counted over the completion only, as OpenAI defines them) and `logit_bias` (added to the chosen tokens' logits).

One processor per request: each knows where its prompt ends.
"""
from __future__ import annotations

from typing import Any


class OpenAIPenalties:
    """`logit[j] -= count[j] * frequency_penalty + (count[j] > 0) * presence_penalty`, where `count[j]` is how
    often token j was generated so far in this completion (the prompt does not count)."""

    def __init__(self, prompt_tokens: int, presence: float, frequency: float) -> None:
        self.prompt_tokens, self.presence, self.frequency = prompt_tokens, presence, frequency

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        made = input_ids[:, self.prompt_tokens:]
        if made.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(1, made, torch.ones_like(made, dtype=scores.dtype))
        return scores - counts * self.frequency - (counts > 0).to(scores.dtype) * self.presence


class LogitBias:
    """Adds `bias[token]` to each named token's logit (-100 bans it, 100 all but forces it)."""

    def __init__(self, bias: dict[int, float]) -> None:
        self.bias = bias
        self._tensor: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self._tensor is None or self._tensor.device != scores.device:
            self._tensor = torch.zeros(scores.shape[-1], dtype=scores.dtype, device=scores.device)
            for token, b in self.bias.items():
                self._tensor[token] = b
        return scores + self._tensor

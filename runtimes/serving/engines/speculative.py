"""Speculative decoding for greedy requests: a draft (assistant) model of the same tokenizer, or prompt-lookup
decoding (candidates copied from the prompt), both through transformers' assisted generation, with counts of the
candidate tokens proposed and accepted per request and per endpoint.

It never changes what greedy decoding returns (the target model checks every candidate) and is never used for
sampled requests; the engine decides that, this module only decodes.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import UserError, validate_input


class SpeculationConfig(BaseModel):
    """Exactly one of `draft` (a draft model: folder, workspace model or hub id) or `prompt_lookup_tokens`."""
    model_config = ConfigDict(extra="forbid")

    draft: str | None = Field(None, min_length=1)
    draft_tokens: int | None = Field(None, ge=1, le=64)  # candidates per round; None: transformers' default (20)
    prompt_lookup_tokens: int | None = Field(None, ge=1, le=64)
    max_matching_ngram: int = Field(2, ge=1, le=16)  # longest prompt n-gram matched to find a continuation

    @model_validator(mode="after")
    def _one_mode(self) -> SpeculationConfig:
        if (self.draft is None) == (self.prompt_lookup_tokens is None):
            raise ValueError("give either `draft` (a draft model sharing the tokenizer) or `prompt_lookup_tokens` "
                             "(candidates copied from the prompt, e.g. 10), not both and not neither")
        if self.draft_tokens is not None and self.draft is None:
            raise ValueError("`draft_tokens` applies to a draft model only; prompt lookup takes "
                             "`prompt_lookup_tokens`")
        return self

    @property
    def mode(self) -> str:
        return "draft" if self.draft is not None else "prompt_lookup"


@dataclass
class Tally:
    """Counts of one request, or summed over an endpoint's requests."""
    requests: int = 0
    proposed: int = 0           # candidate tokens the draft or the prompt lookup put forward
    accepted: int = 0           # of those, the ones the target model confirmed and the output kept
    forward_passes: int = 0     # target model forward passes (one per round, the prefill included)
    draft_forward_passes: int = 0
    new_tokens: int = 0         # made by the decoding loop (before a stop-string cut)

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_json(self, mode: str) -> dict[str, Any]:
        return {"mode": mode, "requests": self.requests, "proposed": self.proposed, "accepted": self.accepted,
                "acceptance_rate": round(self.accepted / self.proposed, 4) if self.proposed else None,
                "forward_passes": self.forward_passes, "draft_forward_passes": self.draft_forward_passes,
                "new_tokens": self.new_tokens,
                # plain greedy decoding makes one token per forward pass: this is the gain in passes
                "tokens_per_forward": round(self.new_tokens / self.forward_passes, 3) if self.forward_passes else None}


class Speculation:
    """One endpoint's speculative decoding: its settings, its draft model if any, its running totals."""

    def __init__(self, config: SpeculationConfig | dict[str, Any], engine: Any) -> None:
        self.config: SpeculationConfig = (config if isinstance(config, SpeculationConfig)
                                          else validate_input(SpeculationConfig, config, "speculation"))
        self.mode = self.config.mode
        self.draft: Any = None
        if self.config.draft is not None:
            self.draft = _load_draft(self.config, engine)
        self._totals = Tally()
        self._totals_lock = threading.Lock()

    def generate(self, model: Any, input_ids: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """`model.generate(input_ids, **kwargs)` with speculation (greedy only): the output ids and this
        request's counts."""
        if kwargs.get("do_sample"):
            raise UserError("speculative decoding serves greedy requests only (temperature 0); "
                            "sampled requests decode without it")
        extra: dict[str, Any] = ({"assistant_model": self.draft} if self.draft is not None else
                                 {"prompt_lookup_num_tokens": self.config.prompt_lookup_tokens,
                                  "max_matching_ngram_size": self.config.max_matching_ngram})
        tally = Tally(requests=1)
        with _counting(_transformers_model(model), tally), _counting_forwards(self.draft, tally):
            out = model.generate(input_ids=input_ids, **kwargs, **extra)
        tally.new_tokens = int(out.shape[1] - input_ids.shape[1])
        if kwargs.get("stop_strings"):
            out = _cut_after_stop(out, int(input_ids.shape[1]), kwargs["stop_strings"], kwargs["tokenizer"])
        with self._totals_lock:
            self._totals.add(tally)
        return out, tally.to_json(self.mode)

    def totals(self) -> dict[str, Any]:
        """The counts summed over every request this endpoint decoded with speculation."""
        with self._totals_lock:
            return self._totals.to_json(self.mode)


def _load_draft(config: SpeculationConfig, engine: Any) -> Any:
    from runtimes.models.sources import load_model, load_tokenizer, resolve_model

    source = resolve_model(config.draft or "")
    tokenizer, _ = load_tokenizer(source)
    check_same_tokenizer(engine.tokenizer, tokenizer, engine.base, config.draft or "")
    target_vocab = engine.model.config.get_text_config().vocab_size
    draft = load_model(source, dtype=engine.model.dtype).to(engine.device).eval()
    draft_vocab = draft.config.get_text_config().vocab_size
    if draft_vocab != target_vocab:
        raise UserError(f"the draft model `{config.draft}` has an output layer of {draft_vocab} tokens and the "
                        f"served model `{engine.base}` one of {target_vocab}: their tokenizers agree but their "
                        "embedding sizes must too; choose a draft of the same family and size of vocabulary")
    if config.draft_tokens is not None:
        draft.generation_config.num_assistant_tokens = config.draft_tokens
        draft.generation_config.num_assistant_tokens_schedule = "constant"
    return draft


def check_same_tokenizer(target: Any, draft: Any, target_ref: str, draft_ref: str) -> None:
    """Raise `UserError` unless the two tokenizers give every text the same ids (same vocabulary and specials):
    a draft's candidates are token ids the target checks as they are."""
    target_vocab, draft_vocab = target.get_vocab(), draft.get_vocab()
    if target_vocab != draft_vocab:
        only_target = sorted(set(target_vocab) - set(draft_vocab))[:3]
        moved = [t for t in target_vocab if t in draft_vocab and draft_vocab[t] != target_vocab[t]][:3]
        why = (f"tokens of the served model missing from the draft: {only_target}" if only_target else
               f"tokens with other ids in the draft: {moved}" if moved else
               f"the draft has {len(draft_vocab) - len(target_vocab)} more tokens")
        raise UserError(f"the draft model `{draft_ref}` does not share the tokenizer of the served model "
                        f"`{target_ref}` ({len(draft_vocab)} vs {len(target_vocab)} tokens; {why}): a draft must "
                        "use the same tokenizer (e.g. a smaller model of the same family); "
                        "or use prompt lookup instead (`prompt_lookup_tokens`)")
    for special in ("eos_token_id", "pad_token_id", "bos_token_id"):
        if getattr(target, special) != getattr(draft, special):
            raise UserError(f"the draft model `{draft_ref}` has {special} {getattr(draft, special)} but the served "
                            f"model `{target_ref}` has {getattr(target, special)}: a draft must use the same "
                            "tokenizer and special tokens")


def _cut_after_stop(out: Any, prompt_len: int, stop: list[str], tokenizer: Any) -> Any:
    """`out` up to the first new token that completes a stop string, where plain decoding would have stopped.

    Transformers checks stop strings at the end of each round only, so the candidates accepted in the round
    that completed one can run past it; the text is cut the same either way, the token count would not be."""
    new = out[0, prompt_len:].tolist()

    def stops_within(k: int) -> bool:
        text = tokenizer.decode(new[:k])
        return any(s and s in text for s in stop)

    if not new or not stops_within(len(new)):
        return out
    low, high = 1, len(new)  # the shortest prefix that holds a stop string (containing one only grows with k)
    while low < high:
        mid = (low + high) // 2
        if stops_within(mid):
            high = mid
        else:
            low = mid + 1
    return out[:, :prompt_len + low]


def _transformers_model(model: Any) -> Any:
    """The transformers model whose `generate` runs the decoding loop (inside a PEFT wrapper if there is one)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


@contextlib.contextmanager
def _counting(target: Any, tally: Tally) -> Iterator[None]:
    """Count candidates on the candidate generator transformers builds for this one call.

    Transformers does not return the counts, so the generator it makes is wrapped on the instance (its class is
    kept: transformers checks it): `get_candidates` tells what was proposed each round (each round is one target
    forward pass), `update_candidate_strategy` how many of them the output kept."""
    make = target._get_candidate_generator

    def counted_generator(*args: Any, **kwargs: Any) -> Any:
        generator = make(*args, **kwargs)
        propose, update = generator.get_candidates, generator.update_candidate_strategy

        def get_candidates(input_ids: Any, **kw: Any) -> Any:
            candidates, logits = propose(input_ids, **kw)
            tally.proposed += int(candidates.shape[1] - input_ids.shape[1])
            tally.forward_passes += 1
            return candidates, logits

        def update_candidate_strategy(input_ids: Any, scores: Any, num_matches: Any) -> Any:
            tally.accepted += int(num_matches)
            return update(input_ids, scores, num_matches)

        generator.get_candidates = get_candidates
        generator.update_candidate_strategy = update_candidate_strategy
        return generator

    target._get_candidate_generator = counted_generator  # this instance only, for this call (under the engine lock)
    try:
        yield
    finally:
        del target._get_candidate_generator


@contextlib.contextmanager
def _counting_forwards(draft: Any, tally: Tally) -> Iterator[None]:
    if draft is None:
        yield
        return

    def count(*_: Any) -> None:
        tally.draft_forward_passes += 1

    handle = draft.register_forward_hook(count)
    try:
        yield
    finally:
        handle.remove()

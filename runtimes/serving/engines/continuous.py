"""Continuous batching for the transformers engine: a request joins the running batch after its own prefill and
leaves it at the decode step that finishes it (end token, max_new_tokens, stop string, or its reader gone), so
concurrent requests share every forward pass.

One scheduler thread, alive while there is work, owns the model and one left-padded batched KV cache (the
model's own `DynamicCache`). Requests for different LoRA adapters share the batch through PEFT's per-row
`adapter_names`. Each row decodes on its own: greedy rows take the argmax, sampled rows apply their own
temperature and top-p with their own seeded generator, so a reply does not depend on what runs beside it.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BASE_ROW = "__base__"  # PEFT's name for "no adapter" in a mixed batch


@dataclass(eq=False)  # each request is itself: found in the queue by identity
class Request:
    """One prompt's generation as the scheduler sees it; `done` is set once `tokens` (or `error`) is final."""
    input_ids: Any  # (1, prompt length) on the engine's device
    max_new_tokens: int
    temperature: float
    top_p: float
    stop: list[str]
    seed: int | None
    reserve: Callable[[set[str]], str | None]  # the row's adapter name, loading it if needed; None: wait for one
    streamer: Any = None
    processors: list[Any] = field(default_factory=list)  # this request's logits processors (penalties, grammar)
    logprobs: int | None = None  # None: none kept; k: each chosen token's log probability and the k best
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    tokens: list[int] = field(default_factory=list)
    scores: list[Any] = field(default_factory=list)  # a TokenLogprob per token, when `logprobs` is asked
    error: BaseException | None = None


@dataclass
class _Row:
    request: Request
    adapter: str
    length: int  # tokens of this sequence in the cache (its next position)
    next_token: int
    pick: Callable[[Any], int]
    stopped: Callable[[list[int]], bool]


class ContinuousBatcher:
    """Runs submitted requests together; `model()` is what to call for a forward pass (the PEFT wrapper once an
    adapter is loaded), `count(n)` is told of every n tokens decoded."""

    def __init__(self, model: Callable[[], Any], tokenizer: Any, eos_ids: set[int], count: Callable[[int], None],
                 max_batch_size: int = 64) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._eos = eos_ids
        self._count = count
        self.max_batch_size = max_batch_size
        self._cond = threading.Condition()
        self._waiting: list[Request] = []
        self._pending = 0  # submitted and not yet done
        self._thread: threading.Thread | None = None
        self._rows: list[_Row] = []
        self._cache: Any = None
        self._mask: Any = None  # (rows, cache length): 0 over each row's left padding

    @property
    def busy(self) -> bool:
        """A request is waiting or decoding."""
        return self._pending > 0

    def submit(self, request: Request) -> Request:
        with self._cond:
            self._waiting.append(request)
            self._pending += 1
            if self._thread is None:  # the thread ends when idle, so an engine dropped by its pool is freed
                self._thread = threading.Thread(target=self._run, name="continuous-batching", daemon=True)
                self._thread.start()
            self._cond.notify()
        return request

    # ---- the scheduler thread -----------------------------------------------------------------------
    def _run(self) -> None:
        import torch

        with torch.inference_mode():
            while True:
                with self._cond:
                    if not self._waiting and not self._rows:
                        self._thread = None
                        return
                    try:
                        joining = self._admit()
                    except BaseException as e:  # never leave a caller waiting on a dead thread
                        for request in self._waiting:
                            self._finish(request, e)
                        self._waiting, joining = [], []
                for group in _prefill_groups(joining):
                    self._prefill_safely(group)
                try:
                    if self._rows:
                        self._step()
                except BaseException as e:  # a failed step fails what was running; the next request starts clean
                    for row in self._rows:
                        self._finish(row.request, e)
                    self._rows, self._cache, self._mask = [], None, None
                if not self._rows and not joining and self._waiting:
                    with self._cond:  # nothing could join and nothing runs: wait rather than spin
                        self._cond.wait(0.05)

    def _admit(self) -> list[Request]:
        """Waiting requests that can join now (room in the batch and their adapter loaded); drops cancelled ones."""
        joining: list[Request] = []
        in_use = {row.adapter for row in self._rows}
        for request in list(self._waiting):
            if request.cancel.is_set():
                self._waiting.remove(request)
                self._finish(request)
                continue
            if len(self._rows) + len(joining) >= self.max_batch_size:
                break
            try:
                adapter = request.reserve(in_use)
            except BaseException as e:  # an adapter that fails to load fails its request only
                self._waiting.remove(request)
                self._finish(request, e)
                continue
            if adapter is None:
                continue
            in_use.add(adapter)
            request._adapter = adapter  # type: ignore[attr-defined]
            self._waiting.remove(request)
            joining.append(request)
        return joining

    def _prefill_safely(self, group: list[Request]) -> None:
        """Prefill `group` together (if that pass fails, each alone), then take each one's first token; the
        sequences that token does not finish join the running batch together. A failure fails its requests only."""
        try:
            out, cache, mask = self._prefill(group)
        except BaseException as e:  # the batch is untouched until a prefill succeeds
            if len(group) == 1:
                self._finish(group[0], e)
                return
            for request in group:
                self._prefill_safely([request])
            return
        logits = out.logits[:, -1, :]
        rows, keep = [], []
        for i, request in enumerate(group):
            try:
                row = _Row(request, request._adapter, int(request.input_ids.shape[1]), 0,  # type: ignore[attr-defined]
                           _picker(request, logits.device), _stop_rule(self._tokenizer, request))
                if request.streamer is not None:
                    request.streamer.put(request.input_ids.cpu())  # a streamer skips the prompt it is given first
                if not self._advance(row, logits[i:i + 1]):
                    rows.append(row)
                    keep.append(i)
            except BaseException as e:  # a processor or stop string that fails fails its own request
                self._finish(request, e)
        if keep:
            try:
                self._join(rows, cache, mask, keep)
            except BaseException as e:
                for row in rows:
                    self._finish(row.request, e)

    def _prefill(self, group: list[Request]) -> tuple[Any, Any, Any]:
        """The prompts' forward pass as one left-padded batch (a lone prompt: exactly one-at-a-time generation):
        its output, its cache and its padding mask."""
        import torch
        from transformers import DynamicCache

        width = max(int(r.input_ids.shape[1]) for r in group)
        device = group[0].input_ids.device
        ids = torch.zeros((len(group), width), dtype=group[0].input_ids.dtype, device=device)
        mask = torch.zeros((len(group), width), dtype=torch.long, device=device)
        for i, request in enumerate(group):  # left padding: every prompt ends where its first token goes
            ids[i, width - request.input_ids.shape[1]:] = request.input_ids[0]
            mask[i, width - request.input_ids.shape[1]:] = 1
        model = self._model()
        cache = DynamicCache(config=model.config)
        inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if len(group) > 1:  # positions count from each prompt's first real token, as they do alone
            inputs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self._forward(model, [r._adapter for r in group], cache=cache,  # type: ignore[attr-defined]
                            use_cache=True, logits_to_keep=1, **inputs)
        if any(type(layer) is not _plain_layer() for layer in cache.layers):
            raise RuntimeError("continuous batching needs a full-attention cache on every layer")
        return out, cache, mask

    def _step(self) -> None:
        """One decode step for every row; rows that finish leave the batch."""
        import torch

        device = self._mask.device
        tokens = torch.tensor([[r.next_token] for r in self._rows], device=device)
        positions = torch.tensor([[r.length] for r in self._rows], device=device)
        self._mask = torch.cat([self._mask, torch.ones((len(self._rows), 1), dtype=self._mask.dtype,
                                                       device=device)], dim=1)
        out = self._forward(self._model(), [r.adapter for r in self._rows], input_ids=tokens,
                            attention_mask=self._mask, position_ids=positions, cache=self._cache,
                            use_cache=True)
        for r in self._rows:
            r.length += 1
        logits = out.logits[:, -1, :]
        keep = [i for i, row in enumerate(self._rows) if not self._advance(row, logits[i:i + 1])]
        if len(keep) < len(self._rows):
            self._leave(keep)

    def _advance(self, row: _Row, logits: Any) -> bool:
        """Take the row's next token from its logits; True when the request is over (and answered)."""
        request = row.request
        if request.cancel.is_set():  # its reader is gone: nothing more is decoded for it
            self._finish(request)
            return True
        token = row.pick(logits.float())
        request.tokens.append(token)
        row.next_token = token
        self._count(1)
        if request.streamer is not None:
            import torch

            request.streamer.put(torch.tensor([token]))
        if token in self._eos or len(request.tokens) >= request.max_new_tokens or row.stopped(request.tokens):
            self._finish(request)
            return True
        return False

    def _finish(self, request: Request, error: BaseException | None = None) -> None:
        if request.done.is_set():
            return
        request.error = error
        if request.streamer is not None:
            request.streamer.end()
        with self._cond:
            self._pending -= 1
        request.done.set()

    # ---- the batched cache ------------------------------------------------------------------------------
    def _join(self, rows: list[_Row], cache: Any, mask: Any, keep: list[int]) -> None:
        """Add prefilled sequences (rows `keep` of `cache` and its padding `mask`): both sides are left-padded to
        the longer cache and stacked on the batch."""
        import torch
        import torch.nn.functional as F

        if len(keep) < mask.shape[0]:
            index = torch.tensor(keep, device=mask.device)
            mask = mask[index]
            for layer in cache.layers:
                layer.keys, layer.values = layer.keys[index], layer.values[index]
        if not self._rows:
            self._rows, self._cache, self._mask = rows, cache, mask
            return
        width = max(self._mask.shape[1], mask.shape[1])
        grow, pad = width - self._mask.shape[1], width - mask.shape[1]
        merged = [(torch.cat([F.pad(mine.keys, (0, 0, grow, 0)), F.pad(theirs.keys, (0, 0, pad, 0))]),
                   torch.cat([F.pad(mine.values, (0, 0, grow, 0)), F.pad(theirs.values, (0, 0, pad, 0))]))
                  for mine, theirs in zip(self._cache.layers, cache.layers)]
        for layer, (keys, values) in zip(self._cache.layers, merged):  # assigned only once all are built
            layer.keys, layer.values = keys, values
        self._mask = torch.cat([F.pad(self._mask, (grow, 0)), F.pad(mask, (pad, 0))])
        self._rows.extend(rows)

    def _leave(self, keep: list[int]) -> None:
        """Keep only the rows `keep`, and drop the padding columns no remaining row needs."""
        import torch

        self._rows = [self._rows[i] for i in keep]
        if not self._rows:
            self._cache, self._mask = None, None
            return
        index = torch.tensor(keep, device=self._mask.device)
        mask = self._mask[index]
        start = int((mask.sum(dim=0) > 0).nonzero()[0])
        self._mask = mask[:, start:]
        for layer in self._cache.layers:
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]

    @staticmethod
    def _forward(model: Any, adapters: list[str], **inputs: Any) -> Any:
        if hasattr(model, "peft_config"):  # rows with different adapters (or none) in one pass
            inputs["adapter_names"] = adapters
        return model(**inputs)


def _picker(request: Request, device: Any) -> Callable[[Any], int]:
    """The row's decoding rule: argmax when greedy, else `generate`'s temperature and top-p warpers then a draw
    from the request's own generator (seeded: the same reply whatever else is in the batch)."""
    import torch
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    processors = LogitsProcessorList(request.processors)

    def processed(scores: Any) -> Any:
        """The request's own processors first, as `generate` applies them before its warpers: they read the
        prompt and the tokens decoded so far."""
        if not processors:
            return scores
        ids = torch.tensor([request.tokens], dtype=request.input_ids.dtype, device=request.input_ids.device)
        return processors(torch.cat([request.input_ids, ids], dim=1), scores)

    def kept(scores: Any, token: int) -> int:
        if request.logprobs is not None:  # from the scores the token was chosen from
            from runtimes.serving.engines.token_logprobs import score

            request.scores.append(score(scores, token, request.logprobs))
        return token

    if request.temperature == 0.0:
        def greedy(scores: Any) -> int:
            scores = processed(scores)
            return kept(scores, int(scores[0].argmax()))

        return greedy

    warpers = LogitsProcessorList()
    if request.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(request.temperature))
    if request.top_p < 1.0:
        warpers.append(TopPLogitsWarper(request.top_p))
    generator = None
    if request.seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(request.seed)

    def pick(scores: Any) -> int:
        scores = processed(scores)
        probs = torch.softmax(warpers(None, scores), dim=-1)
        return kept(scores, int(torch.multinomial(probs, num_samples=1, generator=generator)[0, 0]))

    return pick


def _stop_rule(tokenizer: Any, request: Request) -> Callable[[list[int]], bool]:
    """Whether the tokens decoded so far end in one of the request's stop strings (read with the prompt)."""
    if not request.stop:
        return lambda tokens: False
    import torch
    from transformers import StopStringCriteria

    stop = StopStringCriteria(tokenizer, request.stop)
    prompt = request.input_ids[0].tolist()
    return lambda tokens: bool(stop(torch.tensor([prompt + tokens]), None)[0])


PAD_WASTE = 1.25  # a prefill group's padded tokens over its real tokens, at most
PREFILL_TOKENS = 8192  # padded tokens in one prefill pass, at most (a bound on its memory and on the wait it adds)


def _prefill_groups(requests: list[Request]) -> list[list[Request]]:
    """Requests that join together, grouped for batched prefills by prompt length: a longer prompt starts a new
    group where padding would waste more than `PAD_WASTE` or pass `PREFILL_TOKENS`. One pass over 8 prompts costs
    less than 8 passes (larger matrix products), so what arrives together is prefilled together."""
    groups: list[list[Request]] = []
    real = 0
    for request in sorted(requests, key=lambda r: int(r.input_ids.shape[1])):
        n = int(request.input_ids.shape[1])
        group = groups[-1] if groups else None
        if group is None or (len(group) + 1) * n > min(PAD_WASTE * (real + n), PREFILL_TOKENS):
            groups.append([request])
            real = n
        else:
            group.append(request)
            real += n
    return groups


def _plain_layer() -> type:
    from transformers.cache_utils import DynamicLayer

    return DynamicLayer


def batchable(model: Any) -> bool:
    """Whether every attention layer keeps a full cache (left padding and row merges are exact only then)."""
    config = model.config.get_text_config()
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return False
    return all(t == "full_attention" for t in (getattr(config, "layer_types", None) or ["full_attention"]))

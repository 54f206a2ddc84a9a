"""The transformers generation engine: one base model in memory with the LoRA adapters served over it (the least
recently used leaves first beyond a cap), chat or plain prompts, whole or streamed, greedy or sampled.

It knows nothing of HTTP, endpoints or the registry: the API and the batch and async workers call it. Concurrent
requests, whatever their adapter, are decoded together by continuous batching (`continuous.py`); with speculative
decoding, one generation runs at a time (a lock). A stream whose reader stops (a client gone) ends at the next token.
"""
from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from core.errors import UserError
from runtimes.models.refs import ServedModel
from runtimes.serving.engines.chat_input import chat_template_input
from runtimes.serving.engines.continuous import BASE_ROW, ContinuousBatcher, Request, batchable
from runtimes.serving.engines.stop_strings import StopHoldBack, cut_at_stop
from runtimes.serving.engines.token_logprobs import Recorder, ReplyToken, TokenText, reply_tokens, settled

FinishReason = Literal["stop", "length"]


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str


class Sampling(BaseModel):
    """How to decode: temperature 0 is greedy (the same output every time)."""
    max_new_tokens: int = Field(64, ge=1, le=8192)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: list[str] = Field(default_factory=list, max_length=4)
    seed: int | None = None
    logprobs: int | None = Field(None, ge=0, le=20)  # None: none; k: each token's log probability and the k best
    # transformers logits processors for this one request (penalties, biases, a JSON grammar); stateful, never shared
    processors: list[Any] = Field(default_factory=list, exclude=True)


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason
    latency_ms: float
    stats: dict[str, Any] = field(default_factory=dict)
    logprobs: list[ReplyToken] | None = None  # the reply's tokens with their log probabilities, when asked


class TextPiece(str):
    """A streamed piece of text; `logprobs` are the reply tokens it completes (when they were asked)."""
    logprobs: list[ReplyToken] = []


class Engine:
    def __init__(self, base: str, *, quantize: str = "none", max_adapters: int = 4, device: str | None = None,
                 speculation: Any = None, max_batch_size: int = 64,
                 on_adapter: Callable[[str, str], None] | None = None) -> None:
        import torch

        from runtimes.models.sources import ModelSource, load_model, load_tokenizer, resolve_model

        if max_adapters < 1:
            raise UserError(f"max_adapters is {max_adapters}: keep at least 1 adapter loaded")
        started = time.perf_counter()
        source: ModelSource = resolve_model(base)
        self.base = base
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer, _ = load_tokenizer(source)
        self.token_text = TokenText(self.tokenizer)
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        model = load_model(source, dtype=dtype).to(self.device).eval()
        if quantize != "none":
            from runtimes.serving.engines.quantization import quantize_model

            model = quantize_model(model, quantize, self.device)
        self.quantize = quantize
        self.model = model
        self.max_adapters = max_adapters
        self._on_adapter = on_adapter or (lambda change, model_id: None)  # ("loaded" | "unloaded", model id)
        self._served: dict[str, ServedModel] = {}
        self._loaded: OrderedDict[str, str] = OrderedDict()  # adapter name → model id, oldest use first
        self._peft: Any = None
        self._lock = threading.Lock()
        self.tokens_generated = 0  # tokens decoded so far, every request and sequence together
        self.speculation = None
        if speculation is not None:
            from runtimes.serving.engines.speculative import Speculation

            self.speculation = Speculation(speculation, self)
        self._batcher: ContinuousBatcher | None = None
        if self.speculation is None and batchable(model):
            eos = model.generation_config.eos_token_id
            eos = model.config.get_text_config().eos_token_id if eos is None else eos
            self._batcher = ContinuousBatcher(lambda: self._peft if self._peft is not None else self.model,
                                              self.tokenizer, set(eos if isinstance(eos, list) else [eos]),
                                              self._counted, max_batch_size=max_batch_size)
        self.load_seconds = time.perf_counter() - started

    @property
    def busy(self) -> bool:
        """A generation is waiting or running."""
        return self._batcher.busy if self._batcher is not None else self._lock.locked()

    # ---- which models it serves -------------------------------------------------------------
    def register(self, served: ServedModel) -> None:
        """Serve `served` from this engine; an adapter is checked now and loaded on its first request."""
        if served.adapter:
            from runtimes.serving.engines.adapter_fit import check_adapter_fits

            check_adapter_fits(self.base, served.adapter)
            if self.quantize != "none":
                from runtimes.serving.engines.quantization import check_adapters_allowed

                check_adapters_allowed(self.quantize, self.device)
        self._served[served.id] = served

    def ids(self) -> list[str]:
        return list(self._served)

    def loaded_adapters(self) -> list[str]:
        """Model ids whose adapters are in memory, least recently used first."""
        return list(self._loaded.values())

    # ---- generation -----------------------------------------------------------------------
    def prompt_ids(self, model_id: str, *, messages: Sequence[ChatMessage] | None = None,
                   prompt: str | None = None, tools: Sequence[Any] | None = None) -> Any:
        """Token ids of a chat (rendered with the model's chat template, `tools` too) or a plain prompt."""
        self._lookup(model_id)
        if messages is not None:
            rendered, extra = chat_template_input(self.tokenizer, messages, tools)
            ids = self.tokenizer.apply_chat_template(rendered, add_generation_prompt=True, return_tensors="pt",
                                                     return_dict=True, **extra)["input_ids"]
        elif prompt is not None:
            ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"]
        else:
            raise UserError("send `messages` (chat) or `prompt` (completion)")
        return ids.to(self.device)

    def generate(self, model_id: str, input_ids: Any, sampling: Sampling) -> Generation:
        """The whole reply to one prompt."""
        started = time.perf_counter()
        if self._batcher is not None:
            request = self._submit(model_id, input_ids, sampling)
            return self._finish(_tokens(request), input_ids, sampling, started, {}, request.scores)
        sampling, recorder = _recording(sampling, input_ids)
        with self._lock:
            with self._active(model_id):
                out, stats = self._generate(input_ids, sampling, streamer=None)
        new = out[0, input_ids.shape[1]:]
        return self._finish(new, input_ids, sampling, started, stats, _recorded(recorder, new))

    def generate_batch(self, model_id: str, inputs: Sequence[Any], sampling: Sampling) -> list[Generation]:
        """Replies to several prompts decoded together, one forward pass per token instead of one per token and
        prompt. Greedy replies are those of one at a time up to float rounding: identical in float32, while in
        bfloat16 a near tie between two tokens can go the other way. Each reply's latency is its batch's. With
        speculation, which decodes one sequence at a time, they are made one at a time."""
        if self._batcher is not None:
            started = time.perf_counter()
            requests = [self._submit(model_id, ids, sampling) for ids in inputs]
            return [self._finish(_tokens(r), ids, sampling, started, {}, r.scores) for r, ids in zip(requests, inputs)]
        if self.speculation is not None or len(inputs) < 2 or sampling.logprobs is not None:
            return [self.generate(model_id, ids, sampling) for ids in inputs]
        import torch

        started = time.perf_counter()
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        width = max(int(ids.shape[1]) for ids in inputs)
        batch = torch.full((len(inputs), width), pad, dtype=inputs[0].dtype, device=self.device)
        mask = torch.zeros_like(batch)
        for i, ids in enumerate(inputs):  # left padding: every prompt ends where generation starts
            batch[i, width - ids.shape[1]:] = ids[0]
            mask[i, width - ids.shape[1]:] = 1
        with self._lock:
            with self._active(model_id):
                out, stats = self._generate(batch, sampling, streamer=None, attention_mask=mask)
        return [self._finish(out[i, width:], ids, sampling, started, stats) for i, ids in enumerate(inputs)]

    def stream(self, model_id: str, input_ids: Any, sampling: Sampling) -> Iterator[str | Generation]:
        """Text pieces as they are decoded, then the finished `Generation`."""
        from transformers import TextIteratorStreamer

        started = time.perf_counter()
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        result: dict[str, Any] = {}
        cancel = threading.Event()
        scores: list[Any] = []  # the tokens' log probabilities as they are decoded (batched decoding only)
        recorder = None
        if self._batcher is not None:
            request = self._submit(model_id, input_ids, sampling, streamer=streamer, cancel=cancel)
            scores = request.scores
            worker: Any = _Waiter(request, result)
        else:
            sampling, recorder = _recording(sampling, input_ids)
            worker = self._one_at_a_time(model_id, input_ids, sampling, streamer, cancel, result)
        held = StopHoldBack(sampling.stop)  # text that may begin a stop string waits until it is decided
        listed, text = 0, ""  # reply tokens sent so far, text sent so far

        def piece(out: str, final: list[ReplyToken] | None = None) -> TextPiece:
            """`out` with the reply tokens it completes: those wholly sent by now, or at the end all the rest."""
            nonlocal listed, text
            text += out
            shown = TextPiece(out)
            if sampling.logprobs is not None:
                known = final if final is not None else reply_tokens(self.token_text, list(scores))
                upto = len(known) if final is not None else max(listed, settled(known, text))
                shown.logprobs, listed = known[listed:upto], upto
            return shown

        try:
            for chunk in streamer:
                if out := held.feed(chunk):
                    yield piece(out)
                if held.stopped:
                    break
            if held.stopped:  # drain after a stop string: the generation must finish
                for _ in streamer:
                    pass
            worker.join()
        finally:
            # A caller that stops reading (a client gone mid-stream closes this generator) ends the generation
            # at its next token, so the engine is not held for the rest of max_tokens; nothing waits for it here.
            cancel.set()
        if "error" in result:
            raise result["error"]
        entries = scores if recorder is None else _recorded(recorder, result["new"])
        finished = self._finish(result["new"], input_ids, sampling, started, result["stats"], entries)
        rest = held.rest(finished.text)
        if rest or (finished.logprobs is not None and listed < len(finished.logprobs)):
            yield piece(rest, finished.logprobs)
        yield finished

    def _submit(self, model_id: str, input_ids: Any, sampling: Sampling, streamer: Any = None,
                cancel: threading.Event | None = None) -> Request:
        served = self._lookup(model_id)
        assert self._batcher is not None
        request = Request(input_ids=input_ids, max_new_tokens=sampling.max_new_tokens,
                          temperature=sampling.temperature, top_p=sampling.top_p, stop=list(sampling.stop),
                          seed=sampling.seed, processors=list(sampling.processors), logprobs=sampling.logprobs,
                          reserve=lambda in_use: self._reserve(served, in_use), streamer=streamer)
        if cancel is not None:
            request.cancel = cancel
        return self._batcher.submit(request)

    def _counted(self, n: int) -> None:
        self.tokens_generated += n

    def _one_at_a_time(self, model_id: str, input_ids: Any, sampling: Sampling, streamer: Any,
                       cancel: threading.Event, result: dict[str, Any]) -> threading.Thread:
        """The generation thread of a stream under the engine lock (speculative decoding)."""

        def run() -> None:
            try:
                with self._active(model_id):
                    out, result["stats"] = self._generate(input_ids, sampling, streamer=streamer, cancel=cancel)
                    result["new"] = out[0, input_ids.shape[1]:]
            except BaseException as e:  # re-raised in the caller's thread below
                result["error"] = e
                streamer.end()
            finally:
                self._lock.release()

        self._lock.acquire()
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        return worker

    def _generate(self, input_ids: Any, sampling: Sampling, streamer: Any, cancel: threading.Event | None = None,
                  attention_mask: Any = None) -> tuple[Any, dict[str, Any]]:
        import torch

        kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_new_tokens,
                                  "pad_token_id": self.tokenizer.pad_token_id,
                                  "attention_mask": torch.ones_like(input_ids) if attention_mask is None
                                  else attention_mask}
        if sampling.temperature == 0.0:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=None)
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
        if sampling.stop:
            kwargs.update(stop_strings=sampling.stop, tokenizer=self.tokenizer)
        if streamer is not None:
            kwargs["streamer"] = streamer
        if sampling.processors:
            kwargs["logits_processor"] = sampling.processors
        kwargs["stopping_criteria"] = self._decoding(int(input_ids.shape[1]), cancel)
        model = self._peft if self._peft is not None else self.model
        stats: dict[str, Any] = {}
        with torch.inference_mode():
            if self.speculation is not None and sampling.temperature == 0.0 and not sampling.processors:
                out, stats = self.speculation.generate(model, input_ids, kwargs)
            else:
                out = model.generate(input_ids=input_ids, **kwargs)
        return out, stats

    def _decoding(self, prompt_len: int, cancel: threading.Event | None) -> Any:
        """A stopping criterion called after every decoding step: it counts the tokens decoded, and ends every
        sequence once `cancel` is set (a stream nobody reads any more)."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        engine = self

        class Decoding(StoppingCriteria):
            seen = prompt_len

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                length = int(input_ids.shape[1])
                engine.tokens_generated += (length - self.seen) * int(input_ids.shape[0])
                self.seen = length
                stop = cancel is not None and cancel.is_set()
                return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

        return StoppingCriteriaList([Decoding()])

    def _finish(self, new: Any, input_ids: Any, sampling: Sampling, started: float,
                stats: dict[str, Any], scores: list[Any] | None = None) -> Generation:
        ids = [int(t) for t in (new.tolist() if hasattr(new, "tolist") else new)]
        specials = set(self.tokenizer.all_special_ids)
        ended = any(t in specials for t in ids)
        while ids and ids[-1] == self.tokenizer.pad_token_id:
            ids.pop()
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        cut = cut_at_stop(text, sampling.stop)
        finish: FinishReason = "stop" if ended or cut is not None or len(ids) < sampling.max_new_tokens else "length"
        listed = None
        if sampling.logprobs is not None:
            listed = reply_tokens(self.token_text, list(scores or [])[:len(ids)], cut)
        return Generation(text=cut if cut is not None else text, prompt_tokens=int(input_ids.shape[1]),
                          completion_tokens=len(ids), finish_reason=finish,
                          latency_ms=(time.perf_counter() - started) * 1000, stats=stats, logprobs=listed)

    # ---- adapters -------------------------------------------------------------------------
    def _lookup(self, model_id: str) -> ServedModel:
        if model_id not in self._served:
            from catalog.suggestions import unknown

            raise UserError(unknown("model on this endpoint", model_id, self._served))
        return self._served[model_id]

    def _active(self, model_id: str) -> Any:
        import contextlib

        served = self._lookup(model_id)
        if served.adapter is None:
            return self._peft.disable_adapter() if self._peft is not None else contextlib.nullcontext()
        name = _adapter_name(model_id)
        if name not in self._loaded:
            self._load_adapter(name, served)
        self._loaded.move_to_end(name)
        self._peft.set_adapter(name)
        return contextlib.nullcontext()

    def _reserve(self, served: ServedModel, in_use: set[str]) -> str | None:
        """The batch row name for `served` (its adapter, loaded now if it is not), or None while the cap is full
        of adapters that running requests use (the request then waits for one to finish)."""
        if served.adapter is None:
            return BASE_ROW
        name = _adapter_name(served.id)
        if name not in self._loaded:
            if len(self._loaded) >= self.max_adapters and all(n in in_use for n in self._loaded):
                return None
            self._load_adapter(name, served, keep=in_use)
        self._loaded.move_to_end(name)
        return name

    def _load_adapter(self, name: str, served: ServedModel, keep: Set[str] = frozenset()) -> None:
        from peft import PeftModel

        if self._peft is None:
            self._peft = PeftModel.from_pretrained(self.model, served.adapter, adapter_name=name).eval()
        else:
            self._peft.load_adapter(served.adapter, adapter_name=name)
        self._loaded[name] = served.id
        self._on_adapter("loaded", served.id)
        while len(self._loaded) > self.max_adapters:  # the least recently used leaves first, unless in use
            old = next(n for n in self._loaded if n not in keep and n != name)
            self._on_adapter("unloaded", self._loaded.pop(old))
            self._peft.delete_adapter(old)


class _Waiter:
    """A batched stream's end, joined like the one-at-a-time generation thread."""

    def __init__(self, request: Request, result: dict[str, Any]) -> None:
        self.request, self.result = request, result

    def join(self) -> None:
        try:
            self.result.update(new=_tokens(self.request), stats={})
        except BaseException as e:  # re-raised in the stream's thread
            self.result["error"] = e


def _recording(sampling: Sampling, input_ids: Any) -> tuple[Sampling, Recorder | None]:
    """For `model.generate`: the sampling with a processor that records log probabilities, when they are asked."""
    if sampling.logprobs is None:
        return sampling, None
    recorder = Recorder(int(input_ids.shape[1]), sampling.logprobs)
    return sampling.model_copy(update={"processors": [*sampling.processors, recorder]}), recorder


def _recorded(recorder: Recorder | None, new: Any) -> list[Any] | None:
    if recorder is None:
        return None
    return recorder.finish([int(t) for t in (new.tolist() if hasattr(new, "tolist") else new)])


def _tokens(request: Request) -> list[int]:
    """The tokens of a submitted request, once it is done."""
    request.done.wait()
    if request.error is not None:
        raise request.error
    return request.tokens


def _adapter_name(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", model_id)

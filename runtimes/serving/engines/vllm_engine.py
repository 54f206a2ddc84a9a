"""vLLM as an external engine behind the same endpoint API: the `Engine` interface (register, prompt_ids, generate,
stream) over vLLM's async engine (`AsyncLLM`), which batches concurrent requests itself (continuous batching),
caches shared prompt prefixes and serves LoRA versions as `LoRARequest`s over one base. Streams come from the
engine's output generator as it decodes; a reader that stops aborts its request.

The async engine runs on an event loop of its own, in a thread; the endpoint's worker threads hand it requests.
Used only where vLLM is installed (a GPU machine); elsewhere `require_vllm` fails at deploy time with what to do.
It never changes the API, capture or keys: those stay the endpoint's.
"""
from __future__ import annotations

import asyncio
import importlib.util
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from core.errors import UserError
from runtimes.models.refs import ServedModel
from runtimes.serving.engines.chat_input import chat_template_input
from runtimes.serving.engines.transformers_engine import ChatMessage, Generation, Sampling
from runtimes.serving.engines.vllm_requests import sampling_params_args

_DONE = object()


def require_vllm() -> None:
    """Raise `UserError` unless vLLM can be imported here."""
    if importlib.util.find_spec("vllm") is None:
        raise UserError("the vllm backend needs vLLM, which is not installed here: install it on a machine with a "
                        "supported GPU (`pip install vllm`), or deploy with the default transformers backend")


class VllmEngine:
    takes_constraints = True  # penalties, biases and JSON/tool grammars come as data, for `SamplingParams`

    def __init__(self, base: str, *, max_adapters: int = 4, max_lora_rank: int = 64, max_batch_size: int = 256,
                 **unsupported: Any) -> None:
        require_vllm()
        if any(v not in (None, "none") for v in unsupported.values()):
            raise UserError(f"the vllm backend takes its own settings; {', '.join(unsupported)} apply to the "
                            "transformers backend only")
        from transformers import AutoTokenizer
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        started = time.perf_counter()
        self.base = base
        self.device = "cuda"
        self.max_adapters = max_adapters
        self.tokenizer = AutoTokenizer.from_pretrained(base)  # the prompt is rendered here, as for the other engine
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="vllm-engine", daemon=True).start()
        args = AsyncEngineArgs(model=base, enable_lora=True, max_loras=max_adapters, max_lora_rank=max_lora_rank,
                               enable_prefix_caching=True, max_num_seqs=max_batch_size)

        async def make() -> Any:  # created on its loop: its output handler runs there
            return AsyncLLM.from_engine_args(args)

        self.llm = asyncio.run_coroutine_threadsafe(make(), self._loop).result()
        self.vocab_size = int(self.llm.model_config.get_vocab_size())  # what `logit_bias` ids are checked against
        self._served: dict[str, ServedModel] = {}
        self._lora_ids: dict[str, int] = {}
        self._running = 0
        self._count = threading.Lock()
        self.load_seconds = time.perf_counter() - started

    @property
    def model(self) -> Any:
        """Only what the API reads of a model: the context length, as a transformers config says it."""
        from types import SimpleNamespace

        length = self.llm.model_config.max_model_len
        return SimpleNamespace(config=SimpleNamespace(max_position_embeddings=length))

    @property
    def busy(self) -> bool:
        return self._running > 0

    def register(self, served: ServedModel) -> None:
        if served.adapter:
            from runtimes.serving.engines.adapter_fit import check_adapter_fits

            check_adapter_fits(self.base, served.adapter)
            self._lora_ids[served.id] = len(self._lora_ids) + 1  # vLLM's LoRA ids start at 1
        self._served[served.id] = served

    def ids(self) -> list[str]:
        return list(self._served)

    def loaded_adapters(self) -> list[str]:
        return [m for m in self._served if m in self._lora_ids]  # vLLM keeps `max_loras` on the GPU itself

    def prompt_ids(self, model_id: str, *, messages: Sequence[ChatMessage] | None = None,
                   prompt: str | None = None, tools: Sequence[Any] | None = None) -> Any:
        import torch

        self._lookup(model_id)
        if messages is not None:
            rendered, extra = chat_template_input(self.tokenizer, messages, tools)
            ids = self.tokenizer.apply_chat_template(rendered, add_generation_prompt=True, tokenize=True,
                                                     return_dict=True, **extra)["input_ids"]
        elif prompt is not None:
            ids = self.tokenizer(prompt)["input_ids"]
        else:
            raise UserError("send `messages` (chat) or `prompt` (completion)")
        return torch.tensor([list(ids)])

    def generate(self, model_id: str, input_ids: Any, sampling: Sampling) -> Generation:
        """The whole reply: the stream, read to its end."""
        *_, last = self.stream(model_id, input_ids, sampling)
        return last  # the `Generation`, which carries the whole text

    def stream(self, model_id: str, input_ids: Any, sampling: Sampling) -> Iterator[str | Generation]:
        """Text pieces as vLLM decodes them (its deltas), then the finished `Generation`."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        served = self._lookup(model_id)
        if sampling.logprobs is not None:
            raise UserError("log probabilities are returned by the transformers backend only: leave `logprobs` out")
        args = sampling_params_args(sampling)
        if "structured_outputs" in args:
            args["structured_outputs"] = StructuredOutputsParams(**args["structured_outputs"])
        params = SamplingParams(**args, output_kind=RequestOutputKind.DELTA)
        prompt = TokensPrompt(prompt_token_ids=[int(t) for t in input_ids[0].tolist()])
        request_id, started = uuid.uuid4().hex, time.perf_counter()
        outputs: queue.Queue[Any] = queue.Queue()

        async def pump() -> None:
            try:
                async for out in self.llm.generate(prompt, params, request_id, lora_request=self._lora(served)):
                    outputs.put(out)
            except BaseException as e:  # handed to the reading thread
                outputs.put(e)
            finally:
                outputs.put(_DONE)

        with self._count:
            self._running += 1
        asyncio.run_coroutine_threadsafe(pump(), self._loop)
        made, finish, finished, text = 0, "stop", False, []
        try:
            while (out := outputs.get()) is not _DONE:
                if isinstance(out, BaseException):
                    raise out
                piece = out.outputs[0]
                made += len(piece.token_ids)
                if piece.text:
                    text.append(piece.text)
                    yield piece.text
                if out.finished:
                    finished = True
                    finish = "length" if piece.finish_reason == "length" else "stop"
            yield Generation(text="".join(text), prompt_tokens=len(prompt["prompt_token_ids"]), completion_tokens=made,
                             finish_reason=finish, latency_ms=(time.perf_counter() - started) * 1000)
        finally:
            if not finished:  # a reader gone: the engine stops decoding this request
                asyncio.run_coroutine_threadsafe(self.llm.abort(request_id), self._loop)
            with self._count:
                self._running -= 1

    def _lora(self, served: ServedModel) -> Any:
        if served.adapter is None:
            return None
        from vllm.lora.request import LoRARequest

        return LoRARequest(served.id, self._lora_ids[served.id], served.adapter)

    def _lookup(self, model_id: str) -> ServedModel:
        if model_id not in self._served:
            from catalog.suggestions import unknown

            raise UserError(unknown("model on this endpoint", model_id, self._served))
        return self._served[model_id]

    def __del__(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.shutdown()
        loop = getattr(self, "_loop", None)
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)

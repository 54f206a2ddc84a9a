"""vLLM as an external engine behind the same endpoint API: the `Engine` interface (register, prompt_ids, generate,
stream) over `vllm.LLM`, with LoRA versions served as `LoRARequest`s over one base.

Used only where vLLM is installed (a GPU machine); elsewhere `require_vllm` fails at deploy time with what to
do. It never changes the API, capture or keys: those stay the endpoint's.
"""
from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from core.errors import UserError
from runtimes.serving.engines.transformers_engine import ChatMessage, Generation, Sampling
from runtimes.models.refs import ServedModel
from runtimes.serving.engines.chat_input import chat_dicts


def require_vllm() -> None:
    """Raise `UserError` unless vLLM can be imported here."""
    if importlib.util.find_spec("vllm") is None:
        raise UserError("the vllm backend needs vLLM, which is not installed here: install it on a machine with a "
                        "supported GPU (`pip install vllm`), or deploy with the default transformers backend")


class VllmEngine:
    def __init__(self, base: str, *, max_adapters: int = 4, max_lora_rank: int = 64, **unsupported: Any) -> None:
        require_vllm()
        if any(v not in (None, "none") for v in unsupported.values()):
            raise UserError(f"the vllm backend takes its own settings; {', '.join(unsupported)} apply to the "
                            "transformers backend only")
        from vllm import LLM

        started = time.perf_counter()
        self.base = base
        self.device = "cuda"
        self.llm = LLM(model=base, enable_lora=True, max_loras=max_adapters, max_lora_rank=max_lora_rank)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_adapters = max_adapters
        self._served: dict[str, ServedModel] = {}
        self._lora_ids: dict[str, int] = {}
        self._lock = threading.Lock()
        self.load_seconds = time.perf_counter() - started

    @property
    def model(self) -> Any:
        """Only what the API reads of a model: the context length, as a transformers config says it."""
        from types import SimpleNamespace

        length = self.llm.llm_engine.model_config.max_model_len
        return SimpleNamespace(config=SimpleNamespace(max_position_embeddings=length))

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
                   prompt: str | None = None) -> Any:
        import torch

        self._lookup(model_id)
        if messages is not None:
            rendered = chat_dicts(messages)
            ids = self.tokenizer.apply_chat_template(rendered, add_generation_prompt=True, tokenize=True)
        elif prompt is not None:
            ids = self.tokenizer(prompt)["input_ids"]
        else:
            raise UserError("send `messages` (chat) or `prompt` (completion)")
        return torch.tensor([list(ids)])

    def generate(self, model_id: str, input_ids: Any, sampling: Sampling) -> Generation:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        served = self._lookup(model_id)
        if sampling.logprobs is not None:
            raise UserError("log probabilities are returned by the transformers backend only: leave `logprobs` out")
        started = time.perf_counter()
        params = SamplingParams(max_tokens=sampling.max_new_tokens, temperature=sampling.temperature,
                                top_p=sampling.top_p, stop=sampling.stop or None, seed=sampling.seed)
        prompt = TokensPrompt(prompt_token_ids=[int(t) for t in input_ids[0].tolist()])
        with self._lock:
            (out,) = self.llm.generate(prompt, params, lora_request=self._lora(served), use_tqdm=False)
        reply = out.outputs[0]
        return Generation(text=reply.text, prompt_tokens=len(out.prompt_token_ids),
                          completion_tokens=len(reply.token_ids),
                          finish_reason="length" if reply.finish_reason == "length" else "stop",
                          latency_ms=(time.perf_counter() - started) * 1000)

    def stream(self, model_id: str, input_ids: Any, sampling: Sampling) -> Iterator[str | Generation]:
        """vLLM's offline engine answers whole: one piece, then the `Generation`."""
        whole = self.generate(model_id, input_ids, sampling)
        if whole.text:
            yield whole.text
        yield whole

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

"""Quantizing a served model's Linear layers (int8 dynamic on CPU with torch's own kernels; bitsandbytes or
torchao on a GPU where installed) and measuring what it did: speed, weight memory and a quality figure against
the unquantized model.

The output head and embeddings stay in full precision (as transformers' bitsandbytes integration leaves them).
It never installs anything: a missing GPU package is a clear error naming what to install.
"""
from __future__ import annotations

import contextlib
import statistics
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from core.errors import UserError

MODES = ("none", "int8", "int4")
_GPU_PACKAGES = "bitsandbytes (`pip install bitsandbytes`) or torchao (`pip install torchao`)"


def check_mode(mode: str, device: str) -> None:
    """Raise `UserError` unless `mode` is known and can run on `device`."""
    if mode not in MODES:
        raise UserError(f"unknown quantization `{mode}`: choose one of {', '.join(MODES)} "
                        "(int8: dynamic int8 on CPU, bitsandbytes or torchao int8 on GPU; int4: GPU only)")
    if mode == "int4" and not _is_cuda(device):
        raise UserError("int4 quantization needs a GPU (bitsandbytes NF4 or torchao int4 kernels); "
                        "on CPU use `int8` (dynamic int8) or `none`")


def quantize_model(model: Any, mode: str, device: str) -> Any:
    """The model with its Linear layers (not the output head) quantized as `mode` says, on `device`."""
    check_mode(mode, device)
    if mode == "none":
        return model
    if not _is_cuda(device):
        return _cpu_dynamic_int8(model)
    return _gpu_quantized(model, mode, device)


def check_adapters_allowed(mode: str, device: str) -> None:
    """LoRA adapters need Linear layers PEFT can wrap: bitsandbytes' and torchao's can be, torch's dynamic
    int8 modules cannot, so a CPU int8 engine refuses adapters at deploy time rather than at the first request."""
    if mode == "int8" and not _is_cuda(device):
        raise UserError("LoRA adapters cannot be served over a CPU int8 model (PEFT cannot wrap dynamic int8 "
                        "layers): deploy with quantization `none`, or merge the adapter into a full model "
                        "and quantize that")


def _is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def _quantizable(model: Any) -> list[str]:
    """Names of the Linear layers to quantize: all but the output head, which carries the most error."""
    import torch

    head = model.get_output_embeddings()
    return [name for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and module is not head]


def _cpu_dynamic_int8(model: Any) -> Any:
    import torch

    quantize_dynamic = getattr(getattr(torch.ao, "quantization", None), "quantize_dynamic", None)
    if quantize_dynamic is None:  # torch has announced its removal in favour of torchao
        raise UserError(f"this torch ({torch.__version__}) has no dynamic int8 quantization "
                        "(torch.ao.quantization.quantize_dynamic); install torchao or use quantization `none`")
    if "fbgemm" not in torch.backends.quantized.supported_engines and \
            "qnnpack" not in torch.backends.quantized.supported_engines:
        raise UserError("this torch build has no int8 CPU kernels (fbgemm or qnnpack); use quantization `none`")
    # Per-channel scales: one per output row keeps the greedy output far closer than one per matrix.
    spec = {name: torch.ao.quantization.per_channel_dynamic_qconfig for name in _quantizable(model)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation notice, printed on every call
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)


def _gpu_quantized(model: Any, mode: str, device: str) -> Any:
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is not None:
        return _bitsandbytes(model, mode, device)
    if importlib.util.find_spec("torchao") is not None:
        return _torchao(model, mode)
    raise UserError(f"{mode} quantization on a GPU needs {_GPU_PACKAGES}; neither is installed here. "
                    "Install one, or deploy with quantization `none`")


def _bitsandbytes(model: Any, mode: str, device: str) -> Any:
    """bitsandbytes quantizes while loading: reload the same weights through transformers' documented path."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    location = getattr(model, "name_or_path", "") or ""
    if not location:
        raise UserError("bitsandbytes quantizes while loading: this model has no folder or hub id to reload")
    quant = (BitsAndBytesConfig(load_in_8bit=True) if mode == "int8" else
             BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=model.dtype,
                                bnb_4bit_use_double_quant=True))
    quantized = AutoModelForCausalLM.from_pretrained(location, quantization_config=quant, dtype=model.dtype,
                                                     device_map={"": device}).eval()
    del model
    torch.cuda.empty_cache()
    return quantized


def _torchao(model: Any, mode: str) -> Any:
    from torchao.quantization import Int4WeightOnlyConfig, Int8WeightOnlyConfig, quantize_

    targets = set(_quantizable(model))
    # int4 in torch's own tinygemm layout: torchao's default int4 layout needs a separate kernel package (mslk)
    config = (Int8WeightOnlyConfig() if mode == "int8" else
              Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d"))
    try:
        quantize_(model, config, filter_fn=lambda _module, name: name in targets)
    except ImportError as e:
        raise UserError(f"torchao cannot quantize to {mode} here ({e}); install what it names, or deploy with "
                        "quantization `none`") from None
    return model


# ---- what quantizing did --------------------------------------------------------------------------------
@dataclass
class QuantizationEffect:
    mode: str
    device: str
    reference_tokens_per_s: float
    quantized_tokens_per_s: float
    speedup: float                  # quantized tokens/s over the reference's
    reference_weight_bytes: int     # the state dict's tensors, as held in memory
    quantized_weight_bytes: int
    weight_ratio: float             # quantized over reference
    same_outputs: float             # share of prompts whose greedy continuation is identical
    token_agreement: float          # share of the reference's greedy tokens the quantized model also ranks first
    reference_perplexity: float | None
    quantized_perplexity: float | None
    prompts: int
    new_tokens: int                 # generated per prompt and per model

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def measure_effect(reference: Any, quantized: Any, tokenizer: Any, prompts: Sequence[str], *, mode: str,
                   texts: Sequence[str] = (), max_new_tokens: int = 32, device: str = "cpu",
                   rounds: int = 3) -> QuantizationEffect:
    """Compare `quantized` with its unquantized `reference` on `prompts` (greedy, `max_new_tokens` each, speed
    the median of `rounds`) and, where given, on held-out `texts` (perplexity)."""
    if not prompts:
        raise UserError("measuring a quantization needs at least one prompt")
    encoded = [tokenizer(p, return_tensors="pt")["input_ids"].to(device) for p in prompts]
    # Alternating rounds, median: whichever model runs first or next to a burst of other work is not favoured.
    models = {"reference": reference, "quantized": quantized}
    speeds: dict[str, list[float]] = {name: [] for name in models}
    outputs: dict[str, list[Any]] = {}
    for r in range(max(1, rounds)):
        for name in (list(models) if r % 2 == 0 else list(models)[::-1]):
            speed, outputs[name] = _greedy(models[name], encoded, max_new_tokens, tokenizer.pad_token_id)
            speeds[name].append(speed)
    ref_speed, q_speed = statistics.median(speeds["reference"]), statistics.median(speeds["quantized"])
    ref_out, q_out = outputs["reference"], outputs["quantized"]
    ref_bytes, q_bytes = weight_bytes(reference), weight_bytes(quantized)
    return QuantizationEffect(
        mode=mode, device=str(device), reference_tokens_per_s=round(ref_speed, 1),
        quantized_tokens_per_s=round(q_speed, 1), speedup=round(q_speed / ref_speed, 3),
        reference_weight_bytes=ref_bytes, quantized_weight_bytes=q_bytes, weight_ratio=round(q_bytes / ref_bytes, 3),
        same_outputs=round(sum(bool((a == b).all()) for a, b in zip(ref_out, q_out)) / len(prompts), 4),
        token_agreement=round(_agreement(quantized, encoded, ref_out), 4),
        reference_perplexity=_perplexity(reference, tokenizer, texts, device),
        quantized_perplexity=_perplexity(quantized, tokenizer, texts, device),
        prompts=len(prompts), new_tokens=max_new_tokens)


def quantization_effect(engine: Any, prompts: Sequence[str], *, texts: Sequence[str] = (),
                        max_new_tokens: int = 32) -> QuantizationEffect:
    """What an engine's quantization did: its model against the same base loaded unquantized, side by side."""
    import torch

    from runtimes.models.sources import load_model, resolve_model

    if engine.quantize == "none":
        raise UserError(f"the engine serving `{engine.base}` is not quantized: nothing to measure")
    dtype = torch.bfloat16 if _is_cuda(engine.device) else torch.float32
    reference = load_model(resolve_model(engine.base), dtype=dtype).to(engine.device).eval()
    with _held(engine):
        return measure_effect(reference, engine.model, engine.tokenizer, prompts, mode=engine.quantize, texts=texts,
                              max_new_tokens=max_new_tokens, device=engine.device)


@contextlib.contextmanager
def _held(engine: Any) -> Iterator[None]:
    lock = getattr(engine, "_lock", None)  # requests wait while their model is being measured
    if lock is None:
        yield
        return
    with lock:
        yield


def weight_bytes(model: Any) -> int:
    """Bytes of every tensor in the state dict: int8 weights count one byte each, their scales too."""
    seen: set[int] = set()
    return sum(_tensor_bytes(v, seen) for v in model.state_dict().values())


def _tensor_bytes(value: Any, seen: set[int]) -> int:
    import torch

    if isinstance(value, (tuple, list)):  # torch's packed int8 Linear parameters: (weight, bias)
        return sum(_tensor_bytes(v, seen) for v in value)
    if not isinstance(value, torch.Tensor):
        return 0
    if hasattr(value, "__tensor_flatten__"):  # torchao's quantized tensors hold their data in inner tensors
        names, _ = value.__tensor_flatten__()
        return sum(_tensor_bytes(getattr(value, n), seen) for n in names)
    key = value.data_ptr() if value.device.type != "meta" and not value.is_quantized else id(value)
    if key in seen:  # tied weights are stored once
        return 0
    seen.add(key)
    size = value.numel() * value.element_size()
    if value.is_quantized and value.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        scales, zeros = value.q_per_channel_scales(), value.q_per_channel_zero_points()
        size += scales.numel() * scales.element_size() + zeros.numel() * zeros.element_size()
    return size


def _greedy(model: Any, encoded: list[Any], max_new_tokens: int, pad_id: int | None) -> tuple[float, list[Any]]:
    """Tokens/s and the continuations of greedy decoding at a fixed length (end tokens suppressed, so both
    models make the same number of tokens), after one warm-up call."""
    import torch

    kwargs = dict(max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=False,
                  temperature=None, top_p=None, top_k=None, pad_token_id=pad_id)
    outputs = []
    with torch.inference_mode():
        model.generate(input_ids=encoded[0], attention_mask=torch.ones_like(encoded[0]), **kwargs)
        started = time.perf_counter()
        for ids in encoded:
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
            outputs.append(out[0, ids.shape[1]:])
        elapsed = time.perf_counter() - started
    return sum(len(o) for o in outputs) / elapsed, outputs


def _agreement(model: Any, encoded: list[Any], reference_out: list[Any]) -> float:
    """Teacher-forced top-1 agreement on the reference's continuation: one early difference does not count
    against every later token, as comparing two free-running outputs would. (Dynamic int8 scales activations
    per call, so a whole-sequence pass can rank a near tie differently from token-by-token decoding.)"""
    import torch

    eos = model.generation_config.eos_token_id
    ends = [e for e in ([eos] if isinstance(eos, int) else list(eos or [])) if e is not None]
    same = total = 0
    with torch.inference_mode():
        for ids, cont in zip(encoded, reference_out):
            if len(cont) == 0:
                continue
            full = torch.cat([ids[0], cont.to(ids.device)]).unsqueeze(0)
            logits = model(input_ids=full).logits[0, ids.shape[1] - 1:-1].float()
            if ends:  # the continuation was made with the end tokens suppressed: rank the others only
                logits[:, ends] = float("-inf")
            same += int((logits.argmax(-1) == cont.to(logits.device)).sum())
            total += len(cont)
    return same / total if total else 1.0


def _perplexity(model: Any, tokenizer: Any, texts: Sequence[str], device: str) -> float | None:
    import math

    import torch

    nll = tokens = 0.0
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt")["input_ids"].to(device)
            if ids.shape[1] < 2:
                continue
            loss = model(input_ids=ids, labels=ids).loss
            nll += float(loss) * (ids.shape[1] - 1)
            tokens += ids.shape[1] - 1
    return round(math.exp(nll / tokens), 3) if tokens else None

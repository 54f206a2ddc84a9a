"""Quantized serving: an int8 engine on CPU generates and reports what quantizing did (speed, weight bytes,
agreement and perplexity against the unquantized model); unknown or impossible modes are refused clearly."""
from __future__ import annotations

import importlib.util

import pytest

from core.errors import UserError
from runtimes.serving.engines.transformers_engine import Engine, Sampling
from runtimes.models.refs import ServedModel
from runtimes.serving.engines.quantization import quantization_effect, quantize_model, weight_bytes
from tests.serving_models import TEXTS, tiny_adapter, tiny_base


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("quant")
    base = tiny_base(root / "base", hidden=64)
    return {"base": base, "adapter": tiny_adapter(base, root / "adapter")}


def _served(models, adapter: bool = False) -> ServedModel:
    return ServedModel(id="tuned@1" if adapter else "base", base=str(models["base"]), base_ref="tiny",
                       adapter=str(models["adapter"]) if adapter else None)


@pytest.mark.slow
def test_an_int8_engine_generates_and_reports_its_effect(models):
    import torch

    engine = Engine(str(models["base"]), quantize="int8", device="cpu")
    engine.register(_served(models))
    layers = dict(engine.model.named_modules())
    quantized = [n for n, m in layers.items() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert quantized and not any(isinstance(m, torch.nn.Linear) and n != "lm_head" for n, m in layers.items())
    assert isinstance(engine.model.get_output_embeddings(), torch.nn.Linear)  # the head stays in float

    g = engine.generate("base", engine.prompt_ids("base", prompt=TEXTS[2]), Sampling(max_new_tokens=6,
                                                                                      temperature=0.0))
    assert g.completion_tokens >= 1 and g.prompt_tokens > 0

    effect = quantization_effect(engine, TEXTS[:3], texts=TEXTS[75:78], max_new_tokens=8)
    assert effect.mode == "int8" and effect.device == "cpu" and effect.prompts == 3
    assert effect.quantized_weight_bytes < effect.reference_weight_bytes
    assert effect.weight_ratio == round(effect.quantized_weight_bytes / effect.reference_weight_bytes, 3)
    assert effect.reference_tokens_per_s > 0 and effect.quantized_tokens_per_s > 0
    assert 0.0 <= effect.same_outputs <= 1.0 and 0.0 <= effect.token_agreement <= 1.0
    assert effect.reference_perplexity and effect.quantized_perplexity
    assert set(effect.to_json()) >= {"speedup", "weight_ratio", "token_agreement", "quantized_perplexity"}


def test_weight_bytes_counts_int8_weights_as_one_byte(models):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(models["base"])).eval()
    linear = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n != "lm_head"]
    linear_params = sum(m.weight.numel() for m in linear)
    before = weight_bytes(model)
    assert before == sum(p.numel() * 4 for p in model.parameters())  # float32; the rotary buffer is not saved
    after = weight_bytes(quantize_model(model, "int8", "cpu"))
    # three bytes saved per weight; the per-row scales and zero points cost a little back
    assert before - 3 * linear_params < after < before - 2 * linear_params


def test_unknown_and_impossible_modes_are_refused(models):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(models["base"]))
    with pytest.raises(UserError, match=r"unknown quantization `fp3`.*none, int8, int4"):
        quantize_model(model, "fp3", "cpu")
    with pytest.raises(UserError, match="unknown quantization"):
        Engine(str(models["base"]), quantize="int3", device="cpu")
    with pytest.raises(UserError, match="int4 quantization needs a GPU"):
        quantize_model(model, "int4", "cpu")
    assert quantize_model(model, "none", "cpu") is model


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None or importlib.util.find_spec("torchao")
                    is not None, reason="a GPU quantization package is installed here")
def test_gpu_quantization_without_its_packages_says_what_to_install(models):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(models["base"]))
    with pytest.raises(UserError, match=r"needs bitsandbytes .*or torchao"):
        quantize_model(model, "int8", "cuda")


def test_adapters_over_a_cpu_int8_model_are_refused_at_registration(models):
    engine = Engine(str(models["base"]), quantize="int8", device="cpu")
    with pytest.raises(UserError, match="LoRA adapters cannot be served over a CPU int8 model"):
        engine.register(_served(models, adapter=True))
    assert engine.ids() == []


def test_an_unquantized_engine_has_no_effect_to_measure(models):
    engine = Engine(str(models["base"]), device="cpu")
    with pytest.raises(UserError, match="not quantized"):
        quantization_effect(engine, TEXTS[:1])

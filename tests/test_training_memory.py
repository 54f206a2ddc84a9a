"""The memory estimate: model shapes read from real saved configs (dense, GQA, MoE), parameter and adapter
counts against the models themselves, and how each part of the estimate moves with the settings."""
from __future__ import annotations

import pytest

from core.errors import UserError
from runtimes.training.memory_estimate import ModelShape, TrainingShape, estimate_memory, lora_params


def _save(tmp_path, model_type: str, **kw):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model(model_type, vocab_size=512, **kw)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg)
    path = tmp_path / model_type
    model.save_pretrained(path)
    return path, model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("models")
    return {
        "llama": _save(tmp, "llama", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, intermediate_size=160, tie_word_embeddings=False),
        "qwen2": _save(tmp, "qwen2", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, intermediate_size=160, tie_word_embeddings=True),
        "qwen3_moe": _save(tmp, "qwen3_moe", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=16, intermediate_size=160, moe_intermediate_size=32,
                           num_experts=8, num_experts_per_tok=2, decoder_sparse_step=1),
        "deepseek_v3": _save(tmp, "deepseek_v3", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=4, intermediate_size=160, moe_intermediate_size=32,
                             n_routed_experts=8, num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1,
                             n_group=1, topk_group=1, q_lora_rank=32, kv_lora_rank=16, qk_rope_head_dim=8,
                             qk_nope_head_dim=8, v_head_dim=16),
    }


@pytest.mark.parametrize("name", ["llama", "qwen2", "qwen3_moe", "deepseek_v3"])
def test_shape_counts_the_saved_models_parameters(models, name):
    path, model = models[name]
    shape = ModelShape.from_pretrained(path)
    assert shape.n_params == sum(p.numel() for p in model.parameters())
    assert shape.hidden_size == 64 and shape.num_layers == 2 and shape.vocab_size == 512
    assert shape.model_type == name


def test_moe_shape_reads_experts_and_active_parameters(models):
    moe = ModelShape.from_pretrained(models["qwen3_moe"][0])
    assert (moe.num_experts, moe.experts_per_token, moe.moe_layers) == (8, 2, 2)
    assert moe.n_expert_params > 0
    assert moe.active_params == moe.n_params - moe.n_expert_params * 3 // 4
    ds = ModelShape.from_pretrained(models["deepseek_v3"][0])
    assert (ds.num_experts, ds.moe_layers) == (8, 1)  # the first layer stays dense
    assert ds.shared_intermediate_size == 32
    dense = ModelShape.from_pretrained(models["llama"][0])
    assert not dense.is_moe and dense.active_params == dense.n_params


@pytest.mark.parametrize("name", ["llama", "qwen3_moe"])
def test_lora_parameter_count_matches_peft(models, name):
    from peft import LoraConfig, get_peft_model

    path, model = models[name]
    shape = ModelShape.from_pretrained(path)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert lora_params(shape, 4) == trainable
    peft_model.unload()


def test_tied_embeddings_count_once(models):
    tied = ModelShape.from_pretrained(models["qwen2"][0])
    untied = ModelShape.from_pretrained(models["llama"][0])
    assert tied.tie_word_embeddings and tied.n_embedding_params == 512 * 64
    assert untied.n_embedding_params == 2 * 512 * 64


def test_full_fine_tuning_keeps_gradients_and_two_adam_states(models):
    shape = ModelShape.from_pretrained(models["llama"][0])
    est = estimate_memory(shape, TrainingShape(method="full", precision="fp32", micro_batch=1, seq_len=16))
    n = shape.n_params
    assert (est.weights, est.gradients, est.optimizer, est.adapters) == (4 * n, 4 * n, 8 * n, 0)
    assert est.trainable_params == n
    bf16 = estimate_memory(shape, TrainingShape(method="full", precision="bf16", micro_batch=1, seq_len=16,
                                                device="cuda"))
    assert bf16.weights == 2 * n and bf16.optimizer == 4 * n


def test_lora_trains_only_the_adapters(models):
    shape = ModelShape.from_pretrained(models["llama"][0])
    est = estimate_memory(shape, TrainingShape(method="lora", lora_rank=8, micro_batch=1, seq_len=16))
    assert est.trainable_params == lora_params(shape, 8) < shape.n_params / 2
    assert est.adapters == est.gradients == 4 * est.trainable_params
    assert est.optimizer == 8 * est.trainable_params
    assert est.weights == 4 * shape.n_params


def test_qlora_quantizes_all_but_the_embeddings_and_needs_cuda(models):
    shape = ModelShape.from_pretrained(models["llama"][0])
    q = estimate_memory(shape, TrainingShape(method="qlora", precision="bf16", device="cuda", seq_len=16))
    lora = estimate_memory(shape, TrainingShape(method="lora", precision="bf16", device="cuda", seq_len=16))
    quantized = shape.n_params - shape.n_embedding_params
    assert q.weights == int(quantized * (0.5 + 4 / 64) + shape.n_embedding_params * 2)
    assert q.weights < lora.weights
    with pytest.raises(UserError, match="QLoRA needs a CUDA GPU"):
        estimate_memory(shape, TrainingShape(method="qlora", device="cpu"))


def test_activations_grow_with_tokens_and_checkpointing_cuts_them(models):
    shape = ModelShape.from_pretrained(models["llama"][0])

    def act(**kw):
        return estimate_memory(shape, TrainingShape(method="full", **kw)).activations

    assert act(micro_batch=4, seq_len=128) == pytest.approx(4 * act(micro_batch=1, seq_len=128), abs=4)
    assert act(micro_batch=1, seq_len=256) == pytest.approx(2 * act(micro_batch=1, seq_len=128), abs=2)
    assert act(micro_batch=4, seq_len=128, gradient_checkpointing=True) < act(micro_batch=4, seq_len=128)
    assert act(micro_batch=4, seq_len=128, precision="bf16") < act(micro_batch=4, seq_len=128)


def test_dpo_doubles_sequences_and_keeps_a_reference_for_full(models):
    shape = ModelShape.from_pretrained(models["llama"][0])
    sft = estimate_memory(shape, TrainingShape(method="full", micro_batch=2, seq_len=64))
    dpo = estimate_memory(shape, TrainingShape(method="full", micro_batch=2, seq_len=64, recipe="dpo"))
    assert dpo.activations == pytest.approx(2 * sft.activations, abs=2) and dpo.weights == 2 * sft.weights
    dpo_lora = estimate_memory(shape, TrainingShape(method="lora", micro_batch=2, seq_len=64, recipe="dpo"))
    assert dpo_lora.weights == sft.weights  # the base with adapters off is the reference


def test_bad_settings_and_missing_model_are_user_errors(tmp_path, models):
    shape = ModelShape.from_pretrained(models["llama"][0])
    with pytest.raises(UserError, match="at least 1"):
        estimate_memory(shape, TrainingShape(micro_batch=0))
    with pytest.raises(UserError, match="cannot read a model config from"):
        ModelShape.from_pretrained(tmp_path / "nowhere")

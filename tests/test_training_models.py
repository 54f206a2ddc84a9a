"""Model families, tiny local models and model sources: detection from real configs, chat templates, LoRA
targets against the module names of a real tiny model of each family, generation and one TRL SFT step on CPU,
hub refusal when offline, and the demo's base models."""
from __future__ import annotations

import os
import time

import pytest

from core.errors import UserError
from runtimes.models.chat_templates import TEMPLATE_TOKENS
from runtimes.models.families import FAMILIES, check_chat_template, detect_family, family
from runtimes.models.sources import load_model, load_tokenizer, resolve_model
from runtimes.training.tiny_models import TINY_FAMILIES, build_tiny_model, install_demo_models, train_tokenizer

TEXTS = [f"Hello {n}, your order #{i * 7} shipped on {d}. Thanks for your patience!"
         for i, (n, d) in enumerate((n, d) for n in ("Maria", "Wei", "Lars", "Amara") for d in ("Monday", "Friday"))
         for _ in range(10)]
# One SFT step per architecture and chat format: the R1 distills and Llama 2 share their weights' layout with
# another family, and Llama 2 writes its own template.
SFT_FAMILIES = ("llama2", "llama3", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "deepseek_v2", "deepseek_v3",
                "deepseek_r1_distill_qwen", "gpt_oss")
# How each chat format writes an assistant reply (the tokens the loss is computed on) and the turn's opening.
REPLY_END = {"chatml": "It shipped.<|im_end|>", "llama3": "It shipped.<|eot_id|>", "llama2": " It shipped. </s>",
             "deepseek": "It shipped.<｜end▁of▁sentence｜>", "harmony": "It shipped.<|return|>"}
PROMPT_END = {"chatml": "<|im_start|>assistant\n", "llama3": "<|start_header_id|>assistant<|end_header_id|>\n\n",
              "llama2": "[/INST]", "deepseek": "<｜Assistant｜>", "harmony": "<|start|>assistant<|channel|>final<|message|>"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {f: build_tiny_model(f, root / f, TEXTS) for f in TINY_FAMILIES}


@pytest.mark.parametrize(("config", "name", "expected"), [
    ({"model_type": "llama", "vocab_size": 128256, "rope_theta": 500000.0}, "", "llama3"),
    ({"model_type": "llama", "vocab_size": 32000, "rope_theta": 10000.0}, "", "llama2"),
    ({"model_type": "llama", "vocab_size": 32000}, "meta-llama/Meta-Llama-3-8B-Instruct", "llama3"),
    ({"model_type": "llama", "vocab_size": 32000}, "meta-llama/Llama-2-7b-chat-hf", "llama2"),
    ({"model_type": "llama", "vocab_size": 128256}, "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "deepseek_r1_distill_llama"),
    ({"model_type": "qwen2"}, "Qwen/Qwen2.5-7B-Instruct", "qwen2"),
    ({"model_type": "qwen2"}, "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "deepseek_r1_distill_qwen"),
    ({"model_type": "qwen2_moe"}, "Qwen/Qwen1.5-MoE-A2.7B", "qwen2_moe"),
    ({"model_type": "qwen3"}, "Qwen/Qwen3-0.6B", "qwen3"),
    ({"model_type": "qwen3_moe"}, "Qwen/Qwen3-30B-A3B", "qwen3_moe"),
    ({"model_type": "deepseek_v2", "q_lora_rank": None}, "deepseek-ai/DeepSeek-V2-Lite", "deepseek_v2"),
    ({"model_type": "deepseek_v3", "q_lora_rank": 1536}, "deepseek-ai/DeepSeek-R1", "deepseek_v3"),
    ({"model_type": "gpt_oss"}, "openai/gpt-oss-20b", "gpt_oss"),
])
def test_detects_the_family_from_config_and_name(config, name, expected):
    assert detect_family(config, name).name == expected


def test_unsupported_and_unknown_families_are_clear_errors():
    with pytest.raises(UserError, match=r"`bert` model, which Lathe does not support.*supported model types: .*qwen3"):
        detect_family({"model_type": "bert"}, "bert-base-uncased")
    with pytest.raises(UserError, match="has no `model_type`"):
        detect_family({}, "x")
    with pytest.raises(UserError, match="no model family `qwen4`; did you mean `qwen3` or `qwen2`"):
        family("qwen4")


def test_family_defaults_are_sensible():
    for f in FAMILIES:
        d = f.defaults()
        assert d["learning_rate_lora"] > d["learning_rate_full"] > 0
        assert d["gradient_checkpointing"] is True and d["lora_target_modules"]
        assert bool(f.lora_expert_parameters) == f.moe
        assert not f.moe or any("expert" in n for n in f.notes)
    # DeepSeek's query projection depends on the member: low-rank (V3) or plain (V2-Lite).
    ds = family("deepseek_v3")
    assert "q_proj" not in ds.lora_target_modules({"q_lora_rank": 1536})
    assert {"q_a_proj", "q_b_proj"}.isdisjoint(ds.lora_target_modules({"q_lora_rank": None}))


@pytest.mark.parametrize("name", TINY_FAMILIES)
def test_tiny_model_loads_generates_and_takes_lora_targets(models, name):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = models[name]
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    source = resolve_model(str(path))
    assert source.local and source.family.name == name
    fmt = source.family.chat_format
    assert 300 < len(tok) <= 512 and {"<|pad|>", tok.bos_token, tok.eos_token} <= set(tok.get_vocab())
    assert tok.chat_template == source.family.chat_template  # the family's own template, not ChatML for all
    assert fmt == "chatml" or "<|im_start|>" not in tok.get_vocab()

    # Every LoRA target names real Linear modules of this architecture.
    linear = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    targets = source.family.lora_target_modules(source.config)
    assert set(targets) <= linear, set(targets) - linear
    params = {n for n, _ in model.named_parameters()}
    for p in source.family.lora_expert_parameters:
        assert any(n.endswith(p) or n.endswith(p + ".weight") for n in params) or any(p in n for n in params), p
    lora = get_peft_model(model, LoraConfig(r=4, target_modules=targets))
    trained = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in n for n in trained)
    assert {t for t in targets if any(f".{t}.lora_A" in n for n in trained)} == set(targets)

    # The chat template marks the assistant's turn, and generation produces new tokens.
    chat = [{"role": "user", "content": "Where is my order?"}, {"role": "assistant", "content": "It shipped."}]
    enc = tok.apply_chat_template(chat, return_dict=True, return_assistant_tokens_mask=True)
    masked = [t for t, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert tok.decode(masked) == REPLY_END[fmt]
    # Each template's markers are single special tokens, and the generation prompt opens an assistant reply.
    for marker in TEMPLATE_TOKENS[fmt]:
        assert len(tok(marker, add_special_tokens=False).input_ids) == 1, marker
    assert tok.apply_chat_template(chat[:1], add_generation_prompt=True, tokenize=False).endswith(PROMPT_END[fmt])
    prompt = tok.apply_chat_template(chat[:1], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = lora.base_model.model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == prompt["input_ids"].shape[1] + 4 or tok.eos_token_id in out[0].tolist()


@pytest.mark.slow
@pytest.mark.parametrize("name", SFT_FAMILIES)
def test_one_sft_step_on_cpu_changes_the_weights(models, name, tmp_path):
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    source = resolve_model(str(models[name]))
    tok, check = load_tokenizer(source)
    assert check.source == "tokenizer" and check.assistant_masks
    model = load_model(source)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    # Rows of different lengths, so the batch is padded and attention runs under a padding mask.
    rows = [{"messages": [{"role": "user", "content": f"Where is order {i}?" + " Please hurry." * i},
                          {"role": "assistant", "content": f"Order {i} shipped on Monday." + " Thanks!" * (3 - i)}]}
            for i in range(4)]
    args = SFTConfig(output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=4, use_cpu=True,
                     bf16=False, report_to=[], assistant_only_loss=True, save_strategy="no", max_length=256,
                     learning_rate=1e-3, disable_tqdm=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    assert len(set(lengths)) == 4, lengths  # really variable-length: four different lengths, padded
    # Training renders through the family's template: the loss covers exactly the assistant replies.
    labelled = [tok.decode([t for t, lab in zip(ids, labels) if lab != -100])
                for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist())]
    replies = [r["messages"][1]["content"] for r in rows]
    llama2 = source.family.chat_format == "llama2"
    assert sorted(labelled) == sorted(f" {c} {tok.eos_token}" if llama2 else c + tok.eos_token for c in replies)
    result = trainer.train()
    assert 4.0 < result.training_loss < 8.0  # random weights: close to ln(vocab) ≈ 6.2
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert any("embed" in n for n in changed) and any("layers.1." in n for n in changed)


def test_chat_template_check_sets_the_family_template_or_says_what_is_missing():
    tok = train_tokenizer(TEXTS, 320)
    tok.chat_template = None
    check = check_chat_template(tok, family("qwen3"), "my-qwen")
    assert check.source == "family" and check.assistant_masks
    assert tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False) == "<|im_start|>user\nHi<|im_end|>\n"

    tok.chat_template = None
    with pytest.raises(UserError, match=r"tokenizer of `my-llama` has no chat template, and the Llama 3 template "
                                        r"needs special tokens it lacks \(<\|start_header_id\|>"):
        check_chat_template(tok, family("llama3"), "my-llama")
    tok.chat_template = "{{ messages[0]['content'] + undefined_filter | nope }}"
    with pytest.raises(UserError, match="cannot render a conversation with its chat template"):
        check_chat_template(tok, family("qwen3"), "broken")
    tok.chat_template = "{% for m in messages %}{% if m['role'] != 'assistant' %}{{ m['content'] }}{% endif %}{% endfor %}"
    with pytest.raises(UserError, match="drops the assistant's reply"):
        check_chat_template(tok, family("qwen3"), "lossy")


def test_tokenizer_needs_text_and_a_sane_vocabulary():
    with pytest.raises(UserError, match="needs some text"):
        train_tokenizer(["", "  "])
    with pytest.raises(UserError, match="300 to 50,000 tokens"):
        train_tokenizer(TEXTS, 100)


def test_model_sources_local_folders_and_offline_hub(workspace, models, tmp_path):
    with pytest.raises(UserError, match="holds no config.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(UserError, match="no model folder at"):
        resolve_model(str(tmp_path / "nowhere" / "model"))
    with pytest.raises(UserError, match="no model given"):
        resolve_model("  ")
    with pytest.raises(UserError, match="a model is a folder"):
        resolve_model(str(models["qwen3"] / "config.json"))

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    started = time.monotonic()
    with pytest.raises(UserError) as e:
        resolve_model("Qwen/Qwen3-0.6B-not-cached", workspace)
    assert time.monotonic() - started < 20  # fails fast rather than waiting on a network that is not there
    msg = str(e.value)
    assert "`Qwen/Qwen3-0.6B-not-cached` is not a local folder or a workspace model (the workspace has no models)" in msg
    assert "HF_HUB_OFFLINE=1" in msg and "hf download Qwen/Qwen3-0.6B-not-cached" in msg

    # A workspace model is found by name under models/base/.
    build_tiny_model("llama3", workspace.root / "models" / "base" / "my-llama", TEXTS)
    source = resolve_model("my-llama", workspace)
    assert source.local and source.family.name == "llama3" and source.model_type == "llama"
    with pytest.raises(UserError, match=r"workspace models: my-llama"):
        resolve_model("other-model", workspace)
    with pytest.raises(UserError, match="already exists"):
        build_tiny_model("llama3", workspace.root / "models" / "base" / "my-llama", TEXTS)


def test_demo_base_models(tmp_path):
    from core.workspace import Workspace
    from catalog.workspace_setup import init_workspace

    ws = Workspace(tmp_path / "demo")
    init_workspace(ws, demo=True, scale=0.05)
    made = install_demo_models(ws)
    assert [p.name for p in made] == ["tiny-qwen3", "tiny-llama"]
    assert all(p.parent == ws.root / "models" / "base" for p in made)
    first = {p: (p / "model.safetensors").stat().st_mtime_ns for p in made}
    assert install_demo_models(ws) == made and {p: (p / "model.safetensors").stat().st_mtime_ns for p in made} == first
    for name, fam in (("tiny-qwen3", "qwen3"), ("tiny-llama", "llama3")):
        source = resolve_model(name, ws)
        assert source.family.name == fam
        assert "not for quality" in (ws.root / "models" / "base" / name / "README.md").read_text()
        tok, _ = load_tokenizer(source)
        # Trained on the tickets: their common words are single tokens, not bytes.
        phrase = "Thanks for contacting us"
        assert len(tok(phrase, add_special_tokens=False).input_ids) <= 6
        assert len(tok) == 1000

    empty = Workspace(tmp_path / "empty")
    empty.create()
    with pytest.raises(UserError, match="no demo table `support_tickets`.*lathe init --demo"):
        install_demo_models(empty)
    assert not (empty.root / "models" / "base").exists() or not any((empty.root / "models" / "base").iterdir())


@pytest.mark.parametrize("name", ("llama2", "llama3", "qwen3", "deepseek_v3", "gpt_oss"))
def test_serving_renders_a_chat_through_the_familys_template(models, name):
    from runtimes.serving.engines.transformers_engine import ChatMessage, Engine, Sampling
    from runtimes.models.refs import ServedModel

    engine = Engine(str(models[name]))
    engine.register(ServedModel("base", str(models[name]), name, None))
    chat = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Where is my order?")]
    ids = engine.prompt_ids("base", messages=chat)[0].tolist()
    text = engine.tokenizer.decode(ids)
    fmt = family(name).chat_format
    assert text.endswith(PROMPT_END[fmt]) and "Where is my order?" in text
    # Every marker of the template but the end of an assistant reply (the eos) opens or closes a prompt's turns.
    assert all(marker in text for marker in TEMPLATE_TOKENS[fmt] if marker != engine.tokenizer.eos_token)
    reply = engine.generate("base", engine.prompt_ids("base", messages=chat),
                            Sampling(max_new_tokens=4, temperature=0))
    assert reply.completion_tokens >= 1

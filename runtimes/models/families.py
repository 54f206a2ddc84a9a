"""The model families Lathe promises to fine-tune: how to recognise each from a config, its chat template,
its LoRA target modules and its training defaults.

A plain table with lookups; it never loads weights or touches the hub (callers pass configs and tokenizers).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import UserError
from runtimes.models.chat_templates import TEMPLATE_TOKENS, TEMPLATES

_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
_MLP = ("gate_proj", "up_proj", "down_proj")
# Transformers 5 keeps routed experts as fused parameters, not Linear modules; PEFT reaches them through
# `target_parameters`, which is opt-in because it multiplies the adapter's size by the expert count.
_FUSED_EXPERTS = ("mlp.experts.gate_up_proj", "mlp.experts.down_proj")


@dataclass(frozen=True)
class ModelFamily:
    name: str
    title: str
    model_types: tuple[str, ...]
    chat_format: str
    lora_targets: tuple[str, ...]
    moe: bool = False
    lora_expert_parameters: tuple[str, ...] = ()
    learning_rate_full: float = 1e-5
    learning_rate_lora: float = 2e-4
    gradient_checkpointing: bool = True
    # Lower-case fragments of a model name or path that pick this family among those sharing a model_type.
    name_hints: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def chat_template(self) -> str:
        return TEMPLATES[self.chat_format]

    def lora_target_modules(self, config: Any | None = None) -> list[str]:
        """LoRA targets for this family; with a config, the ones that family member really has
        (DeepSeek models with a low-rank query projection have `q_a_proj`/`q_b_proj`, not `q_proj`)."""
        targets = list(self.lora_targets)
        if self.name in ("deepseek_v2", "deepseek_v3") and config is not None:
            low_rank_q = _get(config, "q_lora_rank") is not None
            drop = {"q_proj"} if low_rank_q else {"q_a_proj", "q_b_proj"}
            targets = [t for t in targets if t not in drop]
        return targets

    def defaults(self) -> dict[str, Any]:
        """Plain facts a plan starts from; the recipe and memory estimate refine them."""
        return {"family": self.name, "learning_rate_full": self.learning_rate_full,
                "learning_rate_lora": self.learning_rate_lora, "lora_target_modules": list(self.lora_targets),
                "gradient_checkpointing": self.gradient_checkpointing, "moe": self.moe,
                "chat_format": self.chat_format, "notes": list(self.notes)}


_MOE_NOTE = ("mixture of experts: every expert's weights sit in memory although few run per token; LoRA on "
             "attention (the default) leaves the experts frozen, and the router's load-balancing loss is kept")

# DeepSeek's multi-head latent attention: a low-rank query (q_a/q_b) in most members, a plain one in V2-Lite.
_MLA = ("q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj")
# PEFT maps the names gate/up/down_proj onto DeepSeek's fused experts (and then skips the dense layers),
# so the MLP names are left out of the defaults rather than adapting every expert by surprise.
_DEEPSEEK_MLP_NOTE = ("LoRA defaults to attention only: PEFT takes gate/up/down_proj on DeepSeek to mean the "
                      "fused experts; add `lora_expert_parameters` to adapt the experts on purpose")

FAMILIES: tuple[ModelFamily, ...] = (
    ModelFamily("llama2", "Llama 2", ("llama",), "llama2", _ATTENTION + _MLP, name_hints=("llama-2", "llama2"),
                learning_rate_full=2e-5),
    ModelFamily("llama3", "Llama 3", ("llama",), "llama3", _ATTENTION + _MLP,
                name_hints=("llama-3", "llama3", "meta-llama-3")),
    ModelFamily("qwen2", "Qwen 2 / 2.5", ("qwen2",), "chatml", _ATTENTION + _MLP,
                name_hints=("qwen2", "qwen-2", "qwen1.5")),
    ModelFamily("qwen2_moe", "Qwen 2 MoE", ("qwen2_moe",), "chatml", _ATTENTION + _MLP, moe=True,
                lora_expert_parameters=_FUSED_EXPERTS, learning_rate_lora=1e-4,
                notes=(_MOE_NOTE, "the shared expert is a plain MLP, so LoRA reaches it through gate/up/down_proj")),
    ModelFamily("qwen3", "Qwen 3", ("qwen3",), "chatml", _ATTENTION + _MLP,
                notes=("Qwen 3 templates can hold `<think>` reasoning; training data without it teaches short answers",)),
    ModelFamily("qwen3_moe", "Qwen 3 MoE", ("qwen3_moe",), "chatml", _ATTENTION, moe=True,
                lora_expert_parameters=_FUSED_EXPERTS, learning_rate_lora=1e-4, notes=(_MOE_NOTE,)),
    ModelFamily("deepseek_v2", "DeepSeek V2", ("deepseek_v2",), "deepseek",
                _MLA, moe=True, lora_expert_parameters=_FUSED_EXPERTS, learning_rate_full=5e-6,
                learning_rate_lora=1e-4,
                notes=(_MOE_NOTE, "multi-head latent attention: LoRA targets the compressed kv_a/kv_b projections",
                       _DEEPSEEK_MLP_NOTE)),
    ModelFamily("deepseek_v3", "DeepSeek V3 / R1", ("deepseek_v3",), "deepseek",
                _MLA, moe=True, lora_expert_parameters=_FUSED_EXPERTS, learning_rate_full=5e-6,
                learning_rate_lora=1e-4,
                notes=(_MOE_NOTE, "multi-head latent attention: LoRA targets the compressed q/kv projections",
                       _DEEPSEEK_MLP_NOTE,
                       "the full V3/R1 is 671B parameters: several GPUs and QLoRA at the very least")),
    # The R1 distills are Qwen 2.5 and Llama 3 models trained on R1's reasoning; they keep DeepSeek's template.
    ModelFamily("deepseek_r1_distill_qwen", "DeepSeek R1 distill (Qwen 2.5)", ("qwen2",), "deepseek",
                _ATTENTION + _MLP, name_hints=("deepseek-r1-distill-qwen", "r1-distill-qwen"),
                notes=("answers start with `<think>` reasoning; keep it in training data to keep the skill",)),
    ModelFamily("deepseek_r1_distill_llama", "DeepSeek R1 distill (Llama 3)", ("llama",), "deepseek",
                _ATTENTION + _MLP, name_hints=("deepseek-r1-distill-llama", "r1-distill-llama"),
                notes=("answers start with `<think>` reasoning; keep it in training data to keep the skill",)),
    ModelFamily("gpt_oss", "GPT-OSS", ("gpt_oss",), "harmony", _ATTENTION, moe=True,
                lora_expert_parameters=_FUSED_EXPERTS, learning_rate_lora=1e-4,
                notes=(_MOE_NOTE, "published weights are MXFP4: they are dequantized to bf16 for training",
                       "replies go to the harmony `final` channel")),
)

_BY_NAME = {f.name: f for f in FAMILIES}


def family(name: str) -> ModelFamily:
    from catalog.suggestions import unknown

    if name not in _BY_NAME:
        raise UserError(unknown("model family", name, _BY_NAME))
    return _BY_NAME[name]


def detect_family(config: Any, name: str = "") -> ModelFamily:
    """The family of a model from its config (a `PretrainedConfig` or its dict) and its name or path.
    Several families share a `model_type` (Llama 2 and 3 and the R1 distill are all `llama`): the name
    decides first, then the config (Llama 3's 128k vocabulary, the tokenizer's template tokens)."""
    model_type = str(_get(config, "model_type") or "").lower()
    if not model_type:
        raise UserError(f"the model config of `{name or 'this model'}` has no `model_type`: is it a transformers "
                        "model directory (with config.json)?")
    candidates = [f for f in FAMILIES if model_type in f.model_types]
    if not candidates:
        supported = ", ".join(sorted({t for f in FAMILIES for t in f.model_types}))
        raise UserError(f"model `{name or model_type}` is a `{model_type}` model, which Lathe does not support for "
                        f"fine-tuning; supported model types: {supported}")
    recorded = _get(config, "lathe_family")  # written by Lathe's tiny models, which are too small to tell apart
    if recorded in _BY_NAME and model_type in _BY_NAME[recorded].model_types:
        return _BY_NAME[recorded]
    low = name.lower()
    named = [f for f in candidates if any(h in low for h in f.name_hints)]
    if named:
        # The longest hint wins: "deepseek-r1-distill-llama" over "llama".
        return max(named, key=lambda f: max(len(h) for h in f.name_hints if h in low))
    if len(candidates) == 1:
        return candidates[0]
    if model_type == "llama":
        vocab = int(_get(config, "vocab_size") or 0)
        theta = float(_get(config, "rope_theta") or (_get(config, "rope_parameters") or {}).get("rope_theta") or 0)
        return _BY_NAME["llama3" if vocab >= 128_000 or theta >= 500_000 else "llama2"]
    plain = [f for f in candidates if not f.name_hints] or candidates
    return plain[0]


@dataclass(frozen=True)
class TemplateCheck:
    source: str  # "tokenizer": its own template; "family": the family's template was set on it
    assistant_masks: bool  # whether the template marks assistant turns ({% generation %}) for assistant-only loss


def check_chat_template(tokenizer: Any, fam: ModelFamily, model: str = "") -> TemplateCheck:
    """Make sure `tokenizer` can render conversations: keep its own template when it renders a sample,
    else give it the family's template if the tokenizer has that template's special tokens; otherwise
    raise a `UserError` that says what is missing."""
    who = f"the tokenizer of `{model}`" if model else "the tokenizer"
    if getattr(tokenizer, "chat_template", None):
        _render(tokenizer, who, "its chat template")
        return TemplateCheck("tokenizer", "generation" in str(tokenizer.chat_template))
    vocab = tokenizer.get_vocab()
    missing = [t for t in TEMPLATE_TOKENS[fam.chat_format] if t not in vocab]
    if missing:
        raise UserError(f"{who} has no chat template, and the {fam.title} template needs special tokens it lacks "
                        f"({', '.join(missing)}): use the model's instruct/chat tokenizer or one with a chat template")
    if fam.chat_format in ("llama2", "llama3", "deepseek") and tokenizer.bos_token is None:
        raise UserError(f"{who} has no chat template and no beginning-of-sequence token, which the "
                        f"{fam.title} template starts with")
    tokenizer.chat_template = fam.chat_template
    _render(tokenizer, who, f"the {fam.title} chat template")
    return TemplateCheck("family", True)


_SAMPLE = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
           {"role": "assistant", "content": "Hello."}]


def _render(tokenizer: Any, who: str, what: str) -> None:
    try:
        text = tokenizer.apply_chat_template(_SAMPLE, tokenize=False)
    except Exception as e:  # a Jinja error in a user's template is theirs to fix
        raise UserError(f"{who} cannot render a conversation with {what}: {e}") from None
    if "Hello." not in text:
        raise UserError(f"{who}'s {what} drops the assistant's reply from a rendered conversation")


def _get(config: Any, key: str) -> Any:
    if isinstance(config, Mapping):
        return config.get(key)
    return getattr(config, key, None)

"""Tiny random-weight models of every supported family, with a byte-level BPE tokenizer trained on given text
that carries the family's own chat template and special tokens.

For tests and for trying the pipeline end to end with no download; they say nothing about quality.
Building one never touches the hub; torch and transformers are imported inside the functions.
"""
from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.workspace import Workspace
from runtimes.models.chat_templates import TEMPLATE_TOKENS, TEMPLATES
from runtimes.models.families import family

PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|endoftext|>"
# Each chat format's beginning-of-sequence and end-of-turn tokens, as the family's published tokenizers name them;
# the end of turn is the tokenizer's eos so that generation stops where an assistant reply ends.
_FORMAT_TOKENS: dict[str, tuple[str, str]] = {
    "chatml": (BOS, "<|im_end|>"), "llama3": ("<|begin_of_text|>", "<|eot_id|>"), "llama2": ("<s>", "</s>"),
    "deepseek": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"), "harmony": (BOS, "<|return|>"),
}
# Which transformers config class builds each family; the R1 distills are Qwen 2 and Llama architectures.
_ARCHITECTURES = {
    "llama2": "llama", "llama3": "llama", "deepseek_r1_distill_llama": "llama",
    "qwen2": "qwen2", "deepseek_r1_distill_qwen": "qwen2", "qwen2_moe": "qwen2_moe", "qwen3": "qwen3",
    "qwen3_moe": "qwen3_moe", "deepseek_v2": "deepseek_v2", "deepseek_v3": "deepseek_v3", "gpt_oss": "gpt_oss",
}
TINY_FAMILIES: tuple[str, ...] = tuple(_ARCHITECTURES)
DEMO_MODELS = {"tiny-qwen3": "qwen3", "tiny-llama": "llama3"}
_DEMO_NOTE = """# {name}: a tiny {title} model with random weights

Made by `lathe init --demo` so that every fine-tuning technique can be tried end to end with no download.
Its weights are random and its tokenizer was trained on the demo's support-ticket text: it is for trying
the pipeline, not for quality. Fine-tune a real base model for real use.
"""


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512, chat_format: str = "chatml") -> Any:
    """A byte-level BPE tokenizer trained on `texts`, wrapped in `PreTrainedTokenizerFast`, with pad, bos and
    eos and the special tokens of `chat_format`'s template (ChatML, Llama 2 or 3, DeepSeek, Harmony), whose
    template it carries; the template marks assistant turns for assistant-only loss."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if chat_format not in TEMPLATES:
        raise UserError(f"no chat format `{chat_format}`; the formats: {', '.join(TEMPLATES)}")
    if not 300 <= vocab_size <= 50_000:
        raise UserError(f"a tiny tokenizer's vocabulary must be 300 to 50,000 tokens (the 256 bytes come first); "
                        f"got {vocab_size}")
    corpus = [t for t in texts if isinstance(t, str) and t.strip()]
    if not corpus:
        raise UserError("a tokenizer needs some text to learn from; none was given")
    bos, end_of_turn = _FORMAT_TOKENS[chat_format]
    special = list(dict.fromkeys((PAD, bos, EOS, end_of_turn, *TEMPLATE_TOKENS[chat_format])))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, min_frequency=1,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    extra = [t for t in special if t not in (PAD, bos, end_of_turn)]
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=end_of_turn, pad_token=PAD,
                                   unk_token=None, additional_special_tokens=extra,
                                   chat_template=TEMPLATES[chat_format], model_max_length=2048)


def tiny_config(family_name: str, tokenizer: Any, *, hidden: int = 64, layers: int = 2, heads: int = 4,
                kv_heads: int = 2, experts: int = 4, max_positions: int = 2048) -> Any:
    """A transformers config of `family_name` at toy size, its token ids taken from `tokenizer`."""
    from transformers import AutoConfig

    if family_name not in _ARCHITECTURES:
        family(family_name)  # raises with a suggestion
    if hidden % heads or heads % kv_heads:
        raise UserError(f"hidden ({hidden}) must be a multiple of heads ({heads}), and heads of kv_heads ({kv_heads})")
    head_dim = hidden // heads
    arch = _ARCHITECTURES[family_name]
    kw: dict[str, Any] = dict(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
        lathe_family=family_name)  # detection reads it: a toy llama3 has no 128k vocabulary to tell it by
    if arch in ("qwen3", "qwen3_moe", "gpt_oss"):
        kw["head_dim"] = head_dim
    if arch == "qwen2_moe":
        kw.update(num_experts=experts, num_experts_per_tok=2, moe_intermediate_size=hidden // 2,
                  shared_expert_intermediate_size=hidden)
    if arch == "qwen3_moe":
        kw.update(num_experts=experts, num_experts_per_tok=2, moe_intermediate_size=hidden // 2)
    if arch in ("deepseek_v2", "deepseek_v3"):
        # Multi-head latent attention expands keys and values to every head (the published configs set
        # num_key_value_heads = num_attention_heads); fewer would be repeated again under a padding mask.
        kw.update(num_key_value_heads=heads, n_routed_experts=experts, num_experts_per_tok=2, moe_intermediate_size=hidden // 2,
                  n_shared_experts=1, first_k_dense_replace=1, n_group=1, topk_group=1, kv_lora_rank=head_dim,
                  qk_nope_head_dim=head_dim // 2, qk_rope_head_dim=head_dim // 2, v_head_dim=head_dim,
                  q_lora_rank=None if arch == "deepseek_v2" else hidden // 2,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    if arch == "gpt_oss":
        kw.update(rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, num_local_experts=experts, num_experts_per_tok=2, sliding_window=min(128, max_positions),
                  layer_types=["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)])
    return AutoConfig.for_model(arch, **kw)


def build_tiny_model(family_name: str, path: Path | str, texts: Iterable[str], *, hidden: int = 64,
                     layers: int = 2, heads: int = 4, kv_heads: int = 2, vocab_size: int = 512,
                     experts: int = 4, seed: int = 0, note: str | None = None) -> Path:
    """Train a tokenizer on `texts`, make a random-weight `family_name` model around it and save both
    (`save_pretrained`) at `path`, which must not exist yet; returns `path`. Loads with
    `AutoModelForCausalLM` / `AutoTokenizer`."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    path = Path(path)
    if path.exists():
        raise UserError(f"{path} already exists: choose another folder for the tiny model or remove it")
    tokenizer = train_tokenizer(texts, vocab_size, family(family_name).chat_format)
    config = tiny_config(family_name, tokenizer, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
                         experts=experts)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(EOS)],
        pad_token_id=tokenizer.pad_token_id, max_new_tokens=64)
    # Written beside the target and renamed in one step: a failure never leaves half a model at `path`.
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if note:
            (tmp / "README.md").write_text(note, encoding="utf-8")
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def demo_texts(ws: Workspace, limit: int = 3000) -> list[str]:
    """Ticket and reply text of the demo company, for the demo models' tokenizers."""
    from sqlglot import exp

    from catalog.warehouse import connect_reader

    texts: list[str] = []
    with connect_reader(ws) as con:
        for table, column in (("support_tickets", "body"), ("ticket_replies", "body")):
            query = exp.select(exp.column(column)).from_(exp.to_table(table)).where(
                exp.column(column).is_(exp.null()).not_()).limit(limit)
            try:
                texts += [r[0] for r in con.execute(query.sql(dialect="duckdb")).fetchall()]
            except Exception as e:  # duckdb.CatalogException: not a demo workspace
                raise UserError(f"the workspace at {ws.root} has no demo table `{table}` to train the demo "
                                f"models' tokenizer on ({str(e).splitlines()[0]}); run `lathe init --demo`") from None
    return texts


def install_demo_models(ws: Workspace, *, replace: bool = False) -> list[Path]:
    """Build the demo's base models (`tiny-qwen3`, `tiny-llama`) under `models/base/` of a demo workspace,
    their tokenizer trained on the demo's ticket text; a model already there is kept unless `replace`."""
    from transformers.utils import logging as hf_logging

    texts = demo_texts(ws)
    base = ws.root / "models" / "base"
    made: list[Path] = []
    hf_logging.disable_progress_bar()  # `lathe init` prints its own summary, not shard-writing bars
    try:
        _install(base, texts, replace, made)
    finally:
        hf_logging.enable_progress_bar()
    return made


def _install(base: Path, texts: list[str], replace: bool, made: list[Path]) -> None:
    for name, family_name in DEMO_MODELS.items():
        target = base / name
        if target.exists() and not replace:
            made.append(target)
            continue
        staged = base / f".{name}.new-{uuid.uuid4().hex[:8]}"
        build_tiny_model(family_name, staged, texts, hidden=128, layers=2, heads=4, kv_heads=2, vocab_size=1000,
                         note=_DEMO_NOTE.format(name=name, title=family(family_name).title))
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
        made.append(target)


if __name__ == "__main__":  # `python -m runtimes.training.tiny_models WORKSPACE`: `lathe ui` builds them aside
    import sys

    install_demo_models(Workspace.resolve(sys.argv[1]))

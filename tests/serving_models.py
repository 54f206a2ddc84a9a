"""Tiny local models for the serving tests: a base, LoRA adapters trained on it (random LoRA weights, saved
as PEFT writes them) and one adapter of another size that must not fit."""
from __future__ import annotations

from pathlib import Path

TEXTS = [f"Order {i} ships on day {i % 7}. Ticket {i} is about a refund of {i * 3} euros." for i in range(80)]


def tiny_base(folder: Path, family: str = "qwen3", hidden: int = 32, seed: int = 0) -> Path:
    from runtimes.training.tiny_models import build_tiny_model

    return build_tiny_model(family, folder, TEXTS, hidden=hidden, layers=1, heads=2, kv_heads=1, vocab_size=300,
                            seed=seed)


def tiny_adapter(base: Path, folder: Path, seed: int = 1, r: int = 4) -> Path:
    """A LoRA adapter over `base` with non-zero weights, so its output differs from the base's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base))
    peft = get_peft_model(model, LoraConfig(r=r, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=False))
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_" in name:
                p.normal_(0, 0.5)
    peft.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(folder))
    return folder

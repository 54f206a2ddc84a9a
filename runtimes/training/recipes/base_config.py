"""The knobs every recipe shares (optimisation, batching, LoRA / QLoRA / full, precision, checkpoints),
each with its default and help. A recipe's config subclasses it with its own knobs.

Plain pydantic: it never imports torch or trl, and unknown knobs are refused by name.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.errors import validate_input


class RecipeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(2e-4, gt=0, lt=1, description="peak learning rate of AdamW")
    epochs: float = Field(1.0, gt=0, description="passes over the training rows (ignored when max_steps is set)")
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps")
    micro_batch: int = Field(4, ge=1, description="examples per forward/backward pass")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    max_length: int = Field(1024, ge=8, description="tokens per example; longer ones are cut")
    method: Literal["full", "lora", "qlora"] = Field(
        "lora", description="full fine-tuning, LoRA adapters, or LoRA on a 4-bit base (QLoRA, GPU only)")
    lora_rank: int = Field(16, ge=1, le=1024, description="LoRA: rank of the adapter matrices")
    lora_alpha: int = Field(32, ge=1, description="LoRA: scaling numerator (the update is scaled by alpha/rank)")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="LoRA: dropout on the adapter's input")
    lora_target_modules: list[str] | None = Field(
        None, description="LoRA: module names to adapt; default: the model family's targets")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="training precision; auto: bf16 on a GPU that has it, else fp32")
    gradient_checkpointing: bool = Field(False, description="recompute activations to save memory (slower)")
    seed: int = Field(42, description="seed of weights init, shuffling and sampling")
    save_steps: int = Field(50, ge=1, description="write a checkpoint every this many steps")
    logging_steps: int = Field(10, ge=1, description="log loss and metrics every this many steps")
    eval_steps: int | None = Field(None, ge=1, description="evaluate on the held-out rows every this many steps")
    strategy: Literal["single", "ddp", "fsdp", "zero3"] = Field(
        "single", description="how the ranks launched together share the work: ddp (a whole copy each), fsdp "
                              "(sharded, FSDP2 through accelerate) or zero3 (DeepSpeed); single: one process")

    @classmethod
    def parse(cls, data: dict[str, Any]) -> "RecipeConfig":
        """Validate knobs a user or the agent gave; a bad one is a `UserError` naming it."""
        return validate_input(cls, data, cls.__name__)

    @classmethod
    def knobs(cls) -> dict[str, dict[str, Any]]:
        """Every knob with its default and help, for `--help` and the agent's explanations."""
        return {name: {"default": f.default, "help": f.description or ""} for name, f in cls.model_fields.items()}

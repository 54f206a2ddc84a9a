"""What the four recipes share when they build a TRL trainer: the device and precision, the
`TrainingArguments` fields from a `RecipeConfig`, the PEFT `LoraConfig`, and loading the model
(4-bit for QLoRA) and its checked tokenizer.

It never starts training; torch, transformers and peft are imported inside the functions.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from core.errors import UserError
from runtimes.models.families import TemplateCheck
from runtimes.models.sources import ModelSource, load_model, load_tokenizer
from runtimes.training.recipes.base_config import RecipeConfig


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolved_precision(config: RecipeConfig) -> str:
    """fp32, bf16 or fp16 for this machine; a half precision the device lacks is a `UserError`."""
    import torch

    cuda = cuda_available()
    if config.precision == "auto":
        return "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    if config.precision in ("bf16", "fp16") and not cuda:
        raise UserError(f"precision `{config.precision}` needs a GPU and this machine has none: "
                        "use `precision: fp32` (or `auto`)")
    if config.precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise UserError("this GPU has no bf16: use `precision: fp16` or `auto`")
    return config.precision


def training_arguments(config: RecipeConfig, output_dir: Path, *, has_eval: bool) -> dict[str, Any]:
    """The `TrainingArguments` fields every recipe's TRL config takes."""
    precision = resolved_precision(config)
    args: dict[str, Any] = dict(
        output_dir=str(output_dir), learning_rate=config.learning_rate, num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1, per_device_train_batch_size=config.micro_batch,
        per_device_eval_batch_size=config.micro_batch, gradient_accumulation_steps=config.grad_accum,
        gradient_checkpointing=config.gradient_checkpointing, seed=config.seed, data_seed=config.seed,
        save_strategy="steps", save_steps=config.save_steps, logging_steps=config.logging_steps,
        logging_first_step=True, report_to=[], disable_tqdm=True, use_cpu=not cuda_available(),
        bf16=precision == "bf16", fp16=precision == "fp16",
        # The trainer counts the tokens each step feeds the model, so the job can log tokens/s. Packed and
        # padding-free batches hold no padding (and may use the pad id as a real end-of-text token): count all.
        include_num_input_tokens_seen="all" if getattr(config, "packing", False) or getattr(config, "padding_free", False)
        else "non_padding")
    if has_eval and config.eval_steps:
        args.update(eval_strategy="steps", eval_steps=config.eval_steps)
    args.update(distributed_arguments(config.strategy, cuda=cuda_available()))
    return args


def distributed_arguments(strategy: str, *, cuda: bool) -> dict[str, Any]:
    """The `TrainingArguments` fields of a strategy; the Trainer (through accelerate) joins the process group
    that torchrun set up and wraps the model itself."""
    if strategy == "single":
        return {}
    args: dict[str, Any] = {"ddp_backend": "nccl" if cuda else "gloo", "ddp_find_unused_parameters": False}
    if strategy == "fsdp":
        # Checkpoints stay sharded (DCP, one file per rank, reshardable); the final model is gathered whole.
        args.update(fsdp=True, fsdp_config={"version": 2, "reshard_after_forward": True,
                                            "state_dict_type": "SHARDED_STATE_DICT"})
    elif strategy == "zero3":
        # Every size left to the Trainer ("auto"), which fills them from its own arguments.
        args["deepspeed"] = {"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": "auto",
                             "gradient_accumulation_steps": "auto", "train_batch_size": "auto"}
    return args


def lora_config(config: RecipeConfig, source: ModelSource) -> Any | None:
    """PEFT's `LoraConfig` for LoRA and QLoRA, targets from the family unless given; None for full."""
    if config.method == "full":
        return None
    from peft import LoraConfig

    targets = config.lora_target_modules or source.family.lora_target_modules(source.config)
    return LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(targets), task_type="CAUSAL_LM", bias="none")


def load_policy(config: RecipeConfig, source: ModelSource) -> Any:
    """The model to train: 4-bit quantized for QLoRA (GPU and bitsandbytes needed), else in the training
    precision's dtype (fp32 master weights under mixed precision)."""
    if config.method != "qlora":
        return load_model(source)
    if not cuda_available():
        raise UserError("QLoRA loads the base model in 4 bits with bitsandbytes, which needs a CUDA GPU; this "
                        "machine has none: use `method: lora` (or `full` for a small model)")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise UserError("QLoRA needs the `bitsandbytes` package, which is not installed: install it "
                        "(`pip install bitsandbytes`) or use `method: lora`")
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=compute)
    model = load_model(source, quantization_config=quant, dtype=compute)
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)


def tokenizer_for(source: ModelSource) -> tuple[Any, TemplateCheck]:
    return load_tokenizer(source)


def require_columns(prepared: Any, needed: tuple[str, ...], technique: str) -> None:
    """The prepared dataset must be shaped for this technique (`prepare_dataset` with the same technique)."""
    have = list(prepared.train.column_names)
    missing = [c for c in needed if c not in have]
    if missing or prepared.technique != technique:
        raise UserError(f"the {technique.upper()} recipe needs a dataset prepared for `{technique}` with columns "
                        f"{', '.join(needed)}; this one was prepared for `{prepared.technique}` with "
                        f"{', '.join(have)}")

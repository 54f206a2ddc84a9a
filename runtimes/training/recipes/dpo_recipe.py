"""Direct preference optimisation on prompt/chosen/rejected rows, as a TRL `DPOTrainer`. With LoRA the
reference model is the base without its adapter, so no second copy is loaded.

It builds the trainer and never calls `train()`; the job runner does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from runtimes.models.sources import ModelSource
from runtimes.training.recipes import trainer_setup as setup
from runtimes.training.recipes.dpo_config import DpoRecipeConfig

TECHNIQUE = "dpo"
Config = DpoRecipeConfig


def build_trainer(config: DpoRecipeConfig, model_source: ModelSource, prepared: Any, output_dir: Path,
                  callbacks: list[Any] | None = None) -> Any:
    from trl import DPOConfig, DPOTrainer

    setup.require_columns(prepared, ("prompt", "chosen", "rejected"), TECHNIQUE)
    tokenizer, _ = setup.tokenizer_for(model_source)
    args = DPOConfig(**setup.training_arguments(config, output_dir, has_eval=prepared.eval is not None),
                     max_length=config.max_length, beta=config.beta, loss_type=[config.loss_type],
                     label_smoothing=config.label_smoothing)
    return DPOTrainer(model=setup.load_policy(config, model_source), args=args, train_dataset=prepared.train,
                      eval_dataset=prepared.eval, processing_class=tokenizer,
                      peft_config=setup.lora_config(config, model_source), callbacks=list(callbacks or []))

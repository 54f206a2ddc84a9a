"""Supervised fine-tuning on conversations (`messages`) or prompt/completion pairs, loss on the
assistant's tokens only, as a TRL `SFTTrainer`; every row is cut to `max_length` in every batching mode.

It builds the trainer and never calls `train()`; the job runner does.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from core.errors import UserError
from runtimes.models.sources import ModelSource
from runtimes.training.recipes import trainer_setup as setup
from runtimes.training.recipes.sft_config import SftRecipeConfig

TECHNIQUE = "sft"
Config = SftRecipeConfig


def build_trainer(config: SftRecipeConfig, model_source: ModelSource, prepared: Any, output_dir: Path,
                  callbacks: list[Any] | None = None) -> Any:
    from trl import SFTConfig, SFTTrainer

    columns = list(prepared.train.column_names)
    conversations = "messages" in columns
    setup.require_columns(prepared, ("messages",) if conversations else ("prompt", "completion"), TECHNIQUE)
    tokenizer, template = setup.tokenizer_for(model_source)
    assistant_only = conversations and config.assistant_only_loss
    if assistant_only and not template.assistant_masks:
        raise UserError(f"assistant-only loss needs a chat template that marks assistant turns with "
                        f"{{% generation %}}, and the template of `{model_source.ref}` does not: set "
                        "`assistant_only_loss: false` to learn every token, or give a template that marks them")
    # TRL refuses a max_length for padding-free rows that are not packed (its collator cannot cut a flattened
    # batch), and would then cut nothing; its dataset preparation can, so that step gets the planned max_length.
    unpacked_padding_free = config.padding_free and not config.packing
    args = SFTConfig(**setup.training_arguments(config, output_dir, has_eval=prepared.eval is not None),
                     max_length=None if unpacked_padding_free else config.max_length, packing=config.packing,
                     padding_free=config.padding_free, assistant_only_loss=assistant_only,
                     completion_only_loss=None if conversations else True)
    trainer_class = _cutting_rows_at(SFTTrainer, config.max_length) if unpacked_padding_free else SFTTrainer
    return trainer_class(model=setup.load_policy(config, model_source), args=args, train_dataset=prepared.train,
                         eval_dataset=prepared.eval, processing_class=tokenizer,
                         peft_config=setup.lora_config(config, model_source), callbacks=list(callbacks or []))


def _cutting_rows_at(trainer_class: type, max_length: int) -> type:
    """`trainer_class` whose dataset preparation cuts every row to `max_length` tokens (TRL's own truncation),
    while the trainer's arguments keep the `max_length=None` that its padding-free check asks for."""

    class CuttingSFTTrainer(trainer_class):  # type: ignore[misc, valid-type]
        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, *rest: Any) -> Any:
            cut = copy.copy(args)
            cut.max_length = max_length
            return super()._prepare_dataset(dataset, processing_class, cut, *rest)

    return CuttingSFTTrainer

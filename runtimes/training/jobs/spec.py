"""What a user asks a fine-tuning job to do (`JobSpec`): base model, data, technique and setting overrides,
validated with clear errors. The fine-tune kind plans from it; it holds no state and starts nothing.
"""
from __future__ import annotations

import re
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from catalog.data_source import SourceFields
from core.errors import validate_input
from runtimes.training.recipes import TECHNIQUES, TECHNIQUES_IN_WORDS, Technique  # noqa: F401 (TECHNIQUES: read from here too)

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class JobSpec(SourceFields):
    """What a user asked to train: base model, data (a catalog table or one read query), technique and
    overrides of any setting; everything else is chosen for them."""
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="a model folder, a workspace model (e.g. tiny-qwen3) or a hub id")
    technique: Technique = Field("sft", description=f"the technique: {TECHNIQUES_IN_WORDS}")
    settings: dict[str, Any] = Field(default_factory=dict, description="overrides: key → value (`--set key=value`)")
    name: str | None = Field(None, description="the registered model's name; default `<model>-<technique>`")
    eval_fraction: float = Field(0.1, ge=0, lt=1)
    mapping: dict[str, str] | None = Field(None, description="role → column, overriding the inferred mapping "
                                                             "(`--map prompt=question,completion=answer`)")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        # The name becomes a folder and a registry key: a path or a dot in it could write outside the runs folder.
        if name is not None and not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"{name!r} is not a model name: use 1 to 64 letters, digits, `-` or `_`, starting with "
                             f"a letter or digit (pattern {NAME_PATTERN.pattern})")
        return name

    @classmethod
    def parse(cls, data: dict[str, Any]) -> "JobSpec":
        return validate_input(cls, data, "fine-tuning job")

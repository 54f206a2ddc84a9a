"""Where a base model comes from: a local folder, a model in the workspace (`models/base/<name>`), or a hub id.

Resolving reads only the config (no weights); with no hub access a hub id that is not in the local cache
fails at once with what to do. It never downloads behind the user's back when `HF_HUB_OFFLINE` is set.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.workspace import Workspace
from runtimes.models.families import ModelFamily, TemplateCheck, check_chat_template, detect_family

_WORKSPACE_FOLDERS = ("models/base", "models")


@dataclass(frozen=True)
class ModelSource:
    ref: str  # what the user asked for
    location: str  # a local folder or a hub id, as `from_pretrained` takes it
    local: bool
    family: ModelFamily
    config: dict[str, Any] = field(repr=False)

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))


def resolve_model(ref: str, ws: Workspace | None = None) -> ModelSource:
    """Find the model `ref` names: an existing folder, a model under the workspace's `models/base/` or
    `models/`, or a hub id (from the local cache when offline). Raises `UserError` saying what was tried."""
    ref = ref.strip()
    if not ref:
        raise UserError("no model given: name a folder, a workspace model (e.g. `tiny-qwen3`) or a hub id")
    folder = _local_folder(ref, ws)
    if folder is not None:
        return ModelSource(ref, str(folder), True, *_family_and_config(str(folder), ref))
    return ModelSource(ref, ref, False, *_family_and_config(ref, ref, hub=True, ws=ws))


def load_tokenizer(source: ModelSource) -> tuple[Any, TemplateCheck]:
    """The model's tokenizer, its chat template checked (or the family's set on it), a pad token ensured."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location)
    except (OSError, ValueError) as e:
        raise UserError(f"could not load the tokenizer of `{source.ref}` from {source.location}: "
                        f"{_first_line(e)}") from None
    check = check_chat_template(tokenizer, source.family, source.ref)
    if tokenizer.pad_token is None:  # batching needs one; the end-of-sequence token is the usual stand-in
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, check


def load_model(source: ModelSource, **kwargs: Any) -> Any:
    """`AutoModelForCausalLM.from_pretrained` on the resolved location, with clear errors."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(source.location, **kwargs)
    except OSError as e:
        raise UserError(f"could not load the weights of `{source.ref}` from {source.location}: "
                        f"{_first_line(e)}") from None


def _local_folder(ref: str, ws: Workspace | None) -> Path | None:
    given = Path(ref).expanduser()
    candidates = [given]
    if ws is not None and not given.is_absolute():
        candidates += [ws.root / sub / ref for sub in _WORKSPACE_FOLDERS]
    for p in candidates:
        if p.is_dir():
            if not (p / "config.json").is_file():
                raise UserError(f"{p} is a folder but holds no config.json: give a transformers model folder "
                                "(as written by `save_pretrained`)")
            return p.resolve()
        if p.exists():
            raise UserError(f"{p} is a file; a model is a folder with config.json and weights")
    if ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        raise UserError(f"no model folder at {given}")
    return None


def _family_and_config(location: str, ref: str, *, hub: bool = False,
                       ws: Workspace | None = None) -> tuple[ModelFamily, dict[str, Any]]:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(location)
    except (OSError, ValueError) as e:
        if not hub:
            raise UserError(f"could not read the model config in {location}: {_first_line(e)}") from None
        raise UserError(_hub_failure(ref, ws, e)) from None
    return detect_family(config, ref), config.to_dict()


def _hub_failure(ref: str, ws: Workspace | None, e: Exception) -> str:
    local = ""
    if ws is not None:
        names = sorted(p.name for sub in _WORKSPACE_FOLDERS if (ws.root / sub).is_dir()
                       for p in (ws.root / sub).iterdir() if (p / "config.json").is_file())
        local = f" (workspace models: {', '.join(names)})" if names else " (the workspace has no models)"
    where = f"`{ref}` is not a local folder or a workspace model{local}"
    if _offline():
        return (f"{where}, and the Hugging Face hub is switched off (HF_HUB_OFFLINE=1) with no cached copy: "
                f"download it where the hub is reachable (`hf download {ref} --local-dir DIR`) and give DIR, "
                "or unset HF_HUB_OFFLINE")
    return f"{where}, and the Hugging Face hub could not provide it: {_first_line(e)}"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__

"""Whether a LoRA adapter fits a base model, read from the two folders' safetensors headers: every module the
adapter changes must exist in the base with the matching input and output sizes.

It never loads weights into memory, so a deploy refuses a wrong pairing in milliseconds, before any start.
"""
from __future__ import annotations

import json
from pathlib import Path

from core.errors import UserError


def check_adapter_fits(base: str, adapter: str) -> None:
    """Raise `UserError` naming the first module that does not fit; return quietly when all do."""
    base_shapes = _shapes(Path(base))
    adapter_shapes = _shapes(Path(adapter))
    if not base_shapes:
        return  # a hub id or a non-safetensors base: the load itself will tell
    if not adapter_shapes:
        raise UserError(f"{adapter} has no adapter weights (adapter_model.safetensors)")
    for key, shape in sorted(adapter_shapes.items()):
        module, _, part = key.partition(".lora_")
        if not part:
            continue
        target = module.removeprefix("base_model.model.") + ".weight"
        if target not in base_shapes:
            raise UserError(f"the adapter at {adapter} changes `{target.removesuffix('.weight')}`, which the base "
                            f"model at {base} does not have: it was trained on another architecture")
        out_features, in_features = base_shapes[target][0], base_shapes[target][-1]
        wrong = ((part.startswith("A.") and shape[-1] != in_features)
                 or (part.startswith("B.") and shape[0] != out_features))
        if wrong:
            raise UserError(f"the adapter at {adapter} does not fit the base model at {base}: "
                            f"`{key}` has shape {list(shape)} but the base's `{target}` is "
                            f"{list(base_shapes[target])}; deploy it with the base it was trained on")


def _shapes(folder: Path) -> dict[str, list[int]]:
    from safetensors import safe_open

    shapes: dict[str, list[int]] = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                shapes[key] = list(f.get_slice(key).get_shape())
    return shapes


def adapter_base(adapter: str) -> str:
    """The base the adapter says it was trained on (`base_model_name_or_path`), '' if it does not say."""
    config = Path(adapter) / "adapter_config.json"
    return str(json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path") or "")

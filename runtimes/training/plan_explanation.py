"""A training plan in plain words (hardware, memory by part, every setting with its reason, duration), and the
check of a user's overrides against the configuration's field names, with did-you-mean suggestions.

Formats and validates only; it never changes a choice itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from core.errors import UserError
from catalog.suggestions import unknown
from runtimes.training.memory_estimate import gib
from runtimes.training.recipes.generation_groups import generation_split

if TYPE_CHECKING:
    from runtimes.training.auto_config import TrainingPlan

PART_NAMES = {"weights": "model weights", "adapters": "LoRA adapters", "optimizer": "optimizer states (Adam)",
              "gradients": "gradients", "activations": "activations", "overhead": "overhead"}


def validate_overrides(overrides: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Each override's name must be a field of `model` and its value valid for that field's type and bounds."""
    fields = model.model_fields
    out: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in fields:
            raise UserError(f"cannot override: {unknown('setting', name, fields)}")
        info = fields[name]
        try:
            # The field's own annotation and constraints (ge, lt, Literal) decide what is valid.
            adapter = TypeAdapter(info.annotation if not info.metadata else _annotated(info))
            out[name] = adapter.validate_python(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise UserError(f"override `{name}` = {value!r}: {err['msg'].rstrip('.')}"
                            + (f" ({info.description})" if info.description else "")) from exc
    return out


def _annotated(info: Any) -> Any:
    from typing import Annotated

    return Annotated[(info.annotation, *info.metadata)]


def explain(plan: TrainingPlan) -> str:
    """The plan as a reader would want it: what was found, what it costs, what was chosen and why."""
    cfg, est, shape = plan.config, plan.estimate, plan.shape
    lines = [f"Training plan ({plan.recipe})", f"Hardware: {plan.hardware.describe()}."]
    moe = (f", mixture of experts: {shape.num_experts} experts, {shape.experts_per_token} per token"
           if shape.is_moe else "")
    lines.append(f"Model: {shape.model_type}, {shape.n_params / 1e6:,.1f}M parameters, {shape.num_layers} layers, "
                 f"hidden size {shape.hidden_size}, vocabulary {shape.vocab_size:,}{moe}.")
    per_rank = (f" on each of {cfg.processes} ranks ({cfg.strategy.upper()})" if cfg.processes > 1 else "")
    lines.append(f"Memory: about {gib(est.total)} at its peak{per_rank}, of {gib(plan.budget_bytes)} free"
                 f"{' to each' if per_rank else ''}{'' if plan.fits else ' (does NOT fit)'}:")
    for part, n_bytes in est.parts().items():
        if n_bytes:
            lines.append(f"  - {PART_NAMES[part]}: {gib(n_bytes)}")
    lines.append(f"  Trainable parameters: {est.trainable_params:,}.")
    lines.extend(f"  Note: {n}." for n in est.notes)
    lines.append("Settings (any can be changed by name):")
    for d in plan.decisions:
        mark = " [yours]" if d.overridden else ""
        lines.append(f"  - {d.field} = {_fmt(d.value)}{mark}: {d.reason}.")
    if cfg.num_generations:
        lines.append(generation_split(cfg.micro_batch, cfg.gradient_accumulation, cfg.processes, cfg.num_generations,
                                      cfg.strategy))
    lines.append(f"Duration: about {_duration(plan.duration_s)} for {plan.steps} optimizer steps at roughly "
                 f"{plan.tokens_per_second:,.0f} tokens/s (a rough figure from a compute model, not a measurement).")
    lines.extend(f"Warning: {w}." for w in plan.warnings)
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float) and value < 0.01:
        return f"{value:.0e}"
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"

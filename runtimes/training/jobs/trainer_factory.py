"""Builds the TRL trainer of a job from its resolved settings: the seam between the job machinery and the
recipes (`runtimes.training.recipes`): the job's settings become the technique's recipe `Config`, any other
recipe knob (method, lora_rank, beta, …) passes through by name.

It never decides settings (`resolve_settings` checks the user's, `planning.plan_finetune` fills in the rest) and
never touches the job store.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import UserError
from catalog.suggestions import unknown

# Every setting a job takes, with its default; `--set key=value` overrides any of them.
DEFAULTS: dict[str, Any] = {
    "max_steps": -1,           # -1: train for `epochs`
    "epochs": 1.0,
    "learning_rate": 2e-4,
    "micro_batch": 2,
    "gradient_accumulation": 1,
    "max_length": 256,
    "checkpoint_every": 50,    # optimizer steps between checkpoints
    "seed": 42,
    "max_degenerate_share": 0.5,  # more than this share of steps without training signal fails the job
    "processes": 1,            # ranks training together (the plan chooses: one per GPU, or 1 on CPU)
    "nodes": 1,                # machines, each running `processes` ranks (more than 1: on a Ray cluster)
    "preemptible": False,      # spot machines: the plan chooses `checkpoint_every` for them and costs the saving
    "grace_period_s": 30.0,    # after SIGTERM, the time to checkpoint and exit before the machine is taken
    "recovery": "disk",        # a lost rank: the job restarts from its last checkpoint (disk), or is healed from a peer
    "min_ranks": 1,            # recovery = peer: ranks a step needs (1: survivors train on; more: they wait for one)
}
# The range each setting must lie in (inclusive; learning_rate excludes both ends): a value outside is refused
# at plan time with the range, before it can overflow a seed or exhaust memory.
RANGES: dict[str, tuple[float, float]] = {
    "max_steps": (1, 10_000_000), "epochs": (0.01, 100), "learning_rate": (0, 1), "micro_batch": (1, 4096),
    "gradient_accumulation": (1, 4096), "max_length": (8, 1_048_576), "checkpoint_every": (1, 10_000_000),
    "seed": (0, 2**32 - 1), "max_degenerate_share": (0, 1), "effective_batch": (1, 1_048_576),
    "processes": (1, 1024), "nodes": (1, 1024), "grace_period_s": (1, 3600), "min_ranks": (1, 1024)}
# Settings the automatic configuration takes that no recipe does (it turns them into recipe knobs).
PLAN_ONLY: dict[str, type] = {"effective_batch": int}
# Settings of the job itself that no recipe takes.
JOB_ONLY = frozenset({"max_degenerate_share", "processes", "nodes", "preemptible", "grace_period_s", "recovery",
                      "min_ranks"})


def resolve_settings(overrides: Mapping[str, Any], technique: str = "sft") -> dict[str, Any]:
    """The job's full settings: defaults, then the user's overrides, each checked against its default's type
    (recipe knobs by the recipe's own config)."""
    settings = dict(DEFAULTS)
    knobs = _recipe_knobs(technique)
    extra: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key in DEFAULTS:
            settings[key] = _coerce(key, raw)
        elif key in knobs:
            extra[key] = raw
        elif key in PLAN_ONLY:
            extra[key] = _coerce_plan_only(key, raw)
        else:
            names = sorted(set(DEFAULTS) | knobs | set(PLAN_ONLY))
            raise UserError(unknown("setting", key, names) + f" (settings: {', '.join(names)})")
    if settings["max_steps"] != -1:
        check_range("max_steps", settings["max_steps"], " (or -1 to train for `epochs`)")
    for key in RANGES:
        if key in settings and key != "max_steps":
            check_range(key, settings[key])
    if "effective_batch" in extra:
        check_range("effective_batch", extra["effective_batch"])
    settings.update(extra)
    # A bad recipe knob is refused now, before a job exists. Only the given values are checked against the
    # recipe's own defaults: the plan chooses the rest together (e.g. GRPO's batch and group size).
    recipe_config(technique, {**{k: settings[k] for k in overrides if k in DEFAULTS}, **extra})
    return settings


def check_range(key: str, value: Any, alternative: str = "") -> None:
    """Refuse a setting outside `RANGES`, naming the range (learning_rate: strictly between its bounds)."""
    low, high = RANGES[key]
    ok = (low < value < high) if key == "learning_rate" else (low <= value <= high)
    if not ok or (isinstance(value, float) and not math.isfinite(value)):
        digits = str(value)
        shown = (f"{value:.3g}" if isinstance(value, float) else
                 digits if len(digits) <= 40 else f"{digits[:12]}… ({len(digits)} digits)")
        between = "strictly between" if key == "learning_rate" else "from"
        raise UserError(f"setting `{key}` = {shown} is out of range: it takes {between} {_number(low)} "
                        f"{'and' if key == 'learning_rate' else 'to'} {_number(high)}{alternative}")


def _number(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


# The job's names for the recipe knobs it sets itself; metrics are logged at every step for the curves.
_TO_RECIPE = {"gradient_accumulation": "grad_accum", "checkpoint_every": "save_steps"}


def _recipe_knobs(technique: str) -> set[str]:
    from runtimes.training.recipes import recipe

    return set(recipe(technique).Config.model_fields) - set(_TO_RECIPE.values()) - {"logging_steps"}


def recipe_config(technique: str, settings: dict[str, Any]) -> Any:
    from runtimes.training.recipes import parse_config, recipe

    takes = recipe(technique).Config.model_fields  # a job setting a recipe also takes (GRPO: processes) passes on
    knobs = {_TO_RECIPE.get(k, k): v for k, v in settings.items()
             if k not in PLAN_ONLY and (k not in JOB_ONLY or k in takes)}
    if knobs.get("max_steps") == -1:
        knobs["max_steps"] = None
    return parse_config(technique, {**knobs, "logging_steps": 1})


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """`["learning_rate=1e-4", "max_steps=20"]` → a dict; values are read as JSON where they parse."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"`--set {pair}`: write it as key=value, e.g. --set learning_rate=1e-4")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def build_trainer(technique: str, settings: dict[str, Any], model_source: Any, prepared: Any, output_dir: Path,
                  callbacks: list[Any]) -> Any:
    """The technique's recipe trainer, checkpointing into `output_dir` every `checkpoint_every` steps."""
    from runtimes.training.recipes import recipe

    from runtimes.training.recipes.trainer_setup import cuda_available

    config = recipe_config(technique, settings)
    trainer = recipe(technique).build_trainer(config, model_source, prepared, output_dir, callbacks)
    if config.strategy == "fsdp" and not cuda_available():
        from runtimes.training.jobs.sharded_checkpoint import enable_cpu_fsdp

        enable_cpu_fsdp(trainer)
    return trainer


def _coerce_plan_only(key: str, raw: Any) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise UserError(f"setting `{key}` takes a positive integer, got {raw!r}")
    return raw


def _coerce(key: str, raw: Any) -> Any:
    want = type(DEFAULTS[key])
    if want is bool:
        if not isinstance(raw, bool):
            raise UserError(f"setting `{key}` takes true or false, got {raw!r}")
        return raw
    try:
        if want is int and isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if want is int and isinstance(raw, bool | float):
            raise ValueError
        return want(raw)
    except (TypeError, ValueError):
        raise UserError(f"setting `{key}` takes {'an integer' if want is int else 'a number'}, got {raw!r}") from None

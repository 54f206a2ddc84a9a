"""The automatic training configuration: from the model's shape, the dataset's token lengths, the recipe and the
hardware, every knob (method, rank, micro-batch, accumulation, precision, checkpointing, max_length, packing,
learning rate, epochs) with the reason for it, a memory estimate and an estimated duration.

No side effects: it never loads weights, reads data or starts training; a user's overrides always win.
"""
from __future__ import annotations

import importlib.util
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.errors import UserError
from runtimes.training.distribution import (SHARDED, Strategy, check_processes, check_strategy, default_processes,
                                            rank_budget)
from runtimes.training.hardware import Hardware
from runtimes.training.memory_estimate import (MemoryEstimate, Method, ModelShape, Precision, Recipe, TrainingShape,
                                               estimate_memory, gib)
from runtimes.training.plan_explanation import validate_overrides
from runtimes.training.recipes.generation_groups import (MIN_GENERATIONS, accumulation_for, fitting_generations,
                                                         group_advice)

RL_RECIPES = ("rlvr", "rlaif")
# Below this size full fine-tuning is cheap and learns most; above it adapters give nearly the same quality.
FULL_MAX_PARAMS = 1_000_000_000
SAFETY = 0.90                     # plan to fill at most 90 % of the free memory
LENGTH_QUANTILE = 0.99
LENGTH_STEP = 64                  # max_length is rounded up to a multiple of this
MIN_USEFUL_MICRO_BATCH = 4        # below this, checkpointing pays for itself by allowing a larger micro-batch
# Learning rates by recipe, for full fine-tuning and for adapters (which need about 10x larger steps).
LEARNING_RATES: dict[str, tuple[float, float]] = {
    "sft": (2e-5, 2e-4), "dpo": (1e-6, 5e-6), "rlvr": (1e-6, 1e-5), "rlaif": (1e-6, 1e-5)}
# Share of the peak compute rate a training step reaches (model FLOPs utilisation); rough, not measured here.
UTILISATION = {"cuda": 0.35, "cpu": 0.5}
DECODE_UTILISATION = {"cuda": 0.03, "cpu": 0.2}   # token-by-token generation is bound by memory, not compute


class TrainingConfig(BaseModel):
    """Every setting of a training run that Lathe chooses; each can be overridden by name."""

    model_config = ConfigDict(extra="forbid")

    method: Method = Field(description="full fine-tuning, LoRA adapters, or LoRA on a 4-bit base (QLoRA)")
    lora_rank: int | None = Field(None, ge=1, le=1024)
    lora_alpha: int | None = Field(None, ge=1)
    precision: Precision
    micro_batch: int = Field(ge=1, description="examples per forward/backward pass")
    gradient_accumulation: int = Field(ge=1)
    effective_batch: int = Field(ge=1, description="examples per optimizer step (micro-batch × accumulation × "
                                                   "processes)")
    gradient_checkpointing: bool
    max_length: int = Field(ge=8, description="tokens per example (prompt for rlvr/rlaif); longer ones are cut")
    packing: bool
    padding_free: bool
    learning_rate: float = Field(gt=0, lt=1)
    epochs: float = Field(gt=0)
    num_generations: int | None = Field(None, ge=2, description="rlvr/rlaif: completions sampled per prompt")
    max_completion_length: int | None = Field(None, ge=1)
    processes: int = Field(1, ge=1, le=1024, description="ranks training together on this machine: one per GPU, "
                                                         "or N CPU processes with the gloo backend")
    strategy: Strategy = Field("single", description="single: one device; ddp: a whole copy of the model per rank; "
                                                     "fsdp: weights, gradients and optimizer states sharded over the "
                                                     "ranks; zero3: DeepSpeed's sharding, when it is installed")


@dataclass(frozen=True)
class DataProfile:
    """What the configuration needs from a dataset: each example's length in tokens (sft: the whole example;
    dpo: prompt plus the longer answer; rlvr/rlaif: the prompt) and, for RL, reference answers' lengths."""

    token_lengths: tuple[int, ...]
    completion_lengths: tuple[int, ...] = ()
    rows: int = 0  # the dataset's row count when the lengths are of a sample of it

    @classmethod
    def from_lengths(cls, lengths: Sequence[int], completion_lengths: Sequence[int] = (),
                     rows: int = 0) -> DataProfile:
        if not lengths:
            raise UserError("the dataset has no rows to train on")
        if min(lengths) < 1:
            raise UserError("every example needs at least one token (an empty row was given)")
        return cls(tuple(int(n) for n in lengths), tuple(int(n) for n in completion_lengths), max(rows, len(lengths)))

    @property
    def size(self) -> int:
        """Rows in the dataset (not only in the measured sample): what steps, epochs and batch depend on."""
        return self.rows or len(self.token_lengths)

    def quantile(self, q: float, of: Sequence[int] | None = None) -> int:
        xs = sorted(self.token_lengths if of is None else of)
        return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


@dataclass(frozen=True)
class Decision:
    field: str
    value: Any
    reason: str
    overridden: bool = False


@dataclass(frozen=True)
class TrainingPlan:
    """The resolved configuration with the reason for each choice, its memory estimate and duration."""

    recipe: Recipe
    config: TrainingConfig
    decisions: tuple[Decision, ...]
    hardware: Hardware
    shape: ModelShape
    estimate: MemoryEstimate
    budget_bytes: int
    steps: int
    tokens_per_second: float
    duration_s: float
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def fits(self) -> bool:
        return self.estimate.total <= self.budget_bytes

    def decision(self, name: str) -> Decision:
        return next(d for d in self.decisions if d.field == name)


def auto_configure(shape: ModelShape, data: DataProfile, hardware: Hardware, recipe: Recipe = "sft",
                   overrides: Mapping[str, Any] | None = None) -> TrainingPlan:
    """Choose every field of `TrainingConfig` not in `overrides`, each with its reason."""
    if recipe not in LEARNING_RATES:
        raise UserError(f"unknown recipe `{recipe}`; choose one of sft, dpo, rlvr, rlaif")
    fixed = validate_overrides(dict(overrides or {}), TrainingConfig)
    decisions: dict[str, Decision] = {}
    warnings: list[str] = []

    def decide(name: str, value: Any, reason: str) -> Any:
        if name in fixed:
            decisions[name] = Decision(name, fixed[name], f"set by you (Lathe would choose {value!r}: {reason})",
                                       overridden=True)
            return fixed[name]
        decisions[name] = Decision(name, value, reason)
        return value

    device = hardware.device
    gpu = hardware.best_gpu
    if gpu is None:
        precision = decide("precision", "fp32", "no GPU: the CPU trains in fp32 (bf16 on CPU is slow and lossy)")
    elif gpu.bf16:
        precision = decide("precision", "bf16", f"{gpu.name} supports bf16: half the memory of fp32, stable ranges")
    else:
        precision = decide("precision", "fp16", f"{gpu.name} has no bf16; fp16 with loss scaling")

    max_length = _choose_max_length(shape, data, recipe, decide)
    rl = recipe in RL_RECIPES
    num_generations = completion_len = None
    if rl:
        # The group size is settled once the batch is (see `_fit_groups`); the batch is sized for it meanwhile.
        num_generations = fixed.get("num_generations", _usual_generations(device))
        completion_len = _choose_completion_length(data, decide)
    else:
        for name in ("num_generations", "max_completion_length"):
            decisions[name] = Decision(name, None, "only GRPO (rlvr, rlaif) generates completions")
    effective_batch = decide("effective_batch", _default_effective_batch(data, recipe, num_generations),
                             _effective_batch_reason(data, recipe, num_generations))

    processes = decide("processes", *default_processes(hardware))
    check_processes(hardware, processes, recipe)
    rank_bytes = rank_budget(hardware, processes)
    budget = int(rank_bytes * SAFETY)
    seq = max_length + (completion_len or 0)
    rank_default = 8 if data.size < 1000 else 16 if data.size < 20000 else 32
    rank = fixed.get("lora_rank", rank_default)
    base = TrainingShape(precision=precision, seq_len=seq, lora_rank=rank, device=device, recipe=recipe,
                         completion_len=completion_len or 0,
                         generation_batch=math.ceil(effective_batch / processes) if rl else 0, ranks=processes)
    strategy, (method, micro, checkpointing, est, why) = _choose_strategy(
        shape, base, budget, math.ceil(effective_batch / processes), fixed)
    strategy = decide("strategy", strategy, why["strategy"])
    method = decide("method", method, why["method"])
    if method == "full":
        decisions["lora_rank"] = Decision("lora_rank", None, "full fine-tuning trains every weight: no adapters")
        decisions["lora_alpha"] = Decision("lora_alpha", None, "no adapters")
        rank = alpha = None
    else:
        rank = decide("lora_rank", rank_default, f"{data.size} examples: "
                      + ("a small rank is enough and overfits less" if rank_default == 8 else
                         "a medium rank" if rank_default == 16 else "enough data to use a larger rank"))
        alpha = decide("lora_alpha", 2 * rank, "twice the rank, the usual scale for LoRA updates")
    micro = decide("micro_batch", micro, why["micro_batch"])
    checkpointing = decide("gradient_checkpointing", checkpointing, why["gradient_checkpointing"])
    on_ranks = f" on each of {processes} ranks" if processes > 1 else ""
    accumulation = decide("gradient_accumulation", max(1, math.ceil(effective_batch / (micro * processes))),
                          f"{effective_batch} examples per step in micro-batches of {micro}{on_ranks}")
    if rl:
        micro, accumulation, num_generations = _fit_groups(micro, accumulation, _usual_generations(device), fixed,
                                                           decisions, decide, processes)
    if micro * accumulation * processes != effective_batch and "effective_batch" not in fixed:
        aimed = decisions["effective_batch"]
        effective_batch = micro * accumulation * processes
        decisions["effective_batch"] = replace(aimed, value=effective_batch, reason=(
            f"micro_batch {micro} × gradient_accumulation {accumulation}"
            + (f" × processes {processes}" if processes > 1 else "") + f" (aiming at {aimed.value}: {aimed.reason})"))

    packing, padding_free = _choose_batching(data, recipe, max_length, micro, decide)
    lr_full, lr_adapter = LEARNING_RATES[recipe]
    lr = decide("learning_rate", lr_full if method == "full" else lr_adapter,
                f"TRL's usual rate for {recipe} with {'full fine-tuning' if method == 'full' else 'adapters'}"
                + (" (adapters need larger steps than full weights)" if method != "full" else ""))
    epochs = _choose_epochs(data, recipe, decide)

    config = TrainingConfig(method=method, lora_rank=rank, lora_alpha=alpha, precision=precision, micro_batch=micro,
                            gradient_accumulation=accumulation, effective_batch=effective_batch,
                            gradient_checkpointing=checkpointing, max_length=max_length, packing=packing,
                            padding_free=padding_free, learning_rate=lr, epochs=epochs,
                            num_generations=num_generations, max_completion_length=completion_len,
                            processes=processes, strategy=strategy)
    final = replace(base, method=config.method, precision=config.precision, micro_batch=config.micro_batch,
                    seq_len=config.max_length + (config.max_completion_length or 0),
                    lora_rank=config.lora_rank or 1, gradient_checkpointing=config.gradient_checkpointing,
                    completion_len=config.max_completion_length or 0,
                    generation_batch=config.micro_batch * config.gradient_accumulation if rl else 0,  # one rank's
                    sharded=config.strategy in SHARDED)
    estimate = estimate_memory(shape, final)
    if estimate.total > rank_bytes:
        warnings.append(f"the estimate ({gib(estimate.total)}) exceeds the free memory "
                        f"({gib(rank_bytes)}{' per rank' if processes > 1 else ''}): with these settings the run "
                        "will likely run out of memory")
    steps, tps, duration = estimate_duration(shape, data, config, recipe, hardware)
    order = list(TrainingConfig.model_fields)
    return TrainingPlan(recipe=recipe, config=config, decisions=tuple(decisions[k] for k in order if k in decisions),
                        hardware=hardware, shape=shape, estimate=estimate, budget_bytes=rank_bytes,
                        steps=steps, tokens_per_second=tps, duration_s=duration, warnings=tuple(warnings))


def _choose_max_length(shape: ModelShape, data: DataProfile, recipe: Recipe, decide) -> int:
    p = data.quantile(LENGTH_QUANTILE)
    length = max(LENGTH_STEP, math.ceil(p / LENGTH_STEP) * LENGTH_STEP)
    capped = bool(shape.max_positions and length > shape.max_positions)
    if capped:
        length = shape.max_positions
    cut = sum(1 for n in data.token_lengths if n > length)
    what = "prompts" if recipe in RL_RECIPES else "examples"
    reason = (f"the 99th percentile of {len(data.token_lengths)} {what} is {p} tokens (longest {max(data.token_lengths)}), "
              f"rounded up to a multiple of {LENGTH_STEP}")
    if capped:
        reason += f", capped at the model's context of {shape.max_positions}"
    reason += f"; {cut} {what} ({cut / len(data.token_lengths):.1%}) are longer and will be cut" if cut else f"; no {what} are cut"
    return decide("max_length", length, reason)


def _choose_completion_length(data: DataProfile, decide) -> int:
    if data.completion_lengths:
        p = data.quantile(LENGTH_QUANTILE, data.completion_lengths)
        length = max(LENGTH_STEP, math.ceil(p / LENGTH_STEP) * LENGTH_STEP)
        return decide("max_completion_length", length,
                      f"the reference answers' 99th percentile is {p} tokens, rounded up to {length}")
    return decide("max_completion_length", 256, "no reference answers to measure: 256 tokens, room for a worked answer")


def _usual_generations(device: str) -> int:
    return 8 if device == "cuda" else 4  # fewer on CPU, where each completion is slow to generate


def _fit_groups(micro: int, accumulation: int, usual: int, fixed: dict[str, Any], decisions: dict[str, Decision],
                decide, processes: int = 1) -> tuple[int, int, int]:
    """(micro-batch, accumulation, num_generations) whose completions per step, over all ranks, hold whole groups:
    the group size follows the batch unless the user set it; then an accumulation or micro-batch the user left open
    follows the group size; only values the user set for all that do not fit are refused, naming ones that would."""
    batch = micro * accumulation * processes  # TRL's generation batch: every rank's completions of one step
    ranks = f" × processes {processes}" if processes > 1 else ""
    if "num_generations" not in fixed:
        n = fitting_generations(batch, usual)
        if n is None:
            raise UserError(f"GRPO compares at least {MIN_GENERATIONS} completions of each prompt, and micro_batch "
                            f"{micro} × gradient_accumulation {accumulation} makes 1 per step: set "
                            f"gradient_accumulation={accumulation_for(micro, usual)} (or micro_batch={usual})")
        why = f"micro_batch {micro} × gradient_accumulation {accumulation}{ranks} = {batch} completions per step"
        reason = (f"completions per prompt that GRPO compares (fewer on CPU, where each is slow); {why} hold "
                  f"{batch // n} prompts' groups" if n == usual else
                  f"{why}: a group size that fits whole, the nearest to the usual {usual}, which does not divide "
                  f"{batch}")
        return micro, accumulation, decide("num_generations", n, reason)
    n = fixed["num_generations"]
    if batch % n:
        if "gradient_accumulation" not in fixed:
            accumulation = accumulation_for(micro, n, at_least=accumulation, processes=processes)
            decisions["gradient_accumulation"] = Decision(
                "gradient_accumulation", accumulation, f"micro_batch {micro} × {accumulation}{ranks} = "
                f"{micro * accumulation * processes} completions per step, the nearest that holds whole groups of "
                f"your num_generations {n}")
        elif "micro_batch" not in fixed:
            step = n // math.gcd(accumulation * processes, n)
            micro = max(step, micro // step * step)
            decisions["micro_batch"] = replace(decisions["micro_batch"], value=micro, reason=(
                f"{micro} × your gradient_accumulation {accumulation}{ranks} holds whole groups of your "
                f"num_generations {n} (memory alone allowed {decisions['micro_batch'].value})"))
        else:
            raise UserError(group_advice(micro, accumulation, n, "gradient_accumulation", processes=processes))
    return micro, accumulation, decide("num_generations",
                                       fitting_generations(micro * accumulation * processes, usual) or usual,
                                       "completions per prompt that GRPO compares")


def _default_effective_batch(data: DataProfile, recipe: Recipe, generations: int | None) -> int:
    if recipe in RL_RECIPES:
        return 4 * generations  # four prompts per step, each with its group of completions
    return 8 if data.size < 500 else 16 if data.size < 20000 else 32


def _effective_batch_reason(data: DataProfile, recipe: Recipe, generations: int | None) -> str:
    if recipe in RL_RECIPES:
        return f"four prompts per step × {generations} completions each"
    return f"{data.size} examples: " + ("a small batch gives enough steps on little data" if data.size < 500 else
                                         "a common batch for fine-tuning" if data.size < 20000 else
                                         "plenty of data: a larger batch gives smoother steps")


def _fits(shape: ModelShape, run: TrainingShape, budget: int) -> MemoryEstimate | None:
    est = estimate_memory(shape, run)
    return est if est.total <= budget else None


def _largest_micro_batch(shape: ModelShape, run: TrainingShape, budget: int, target: int
                         ) -> tuple[int, MemoryEstimate] | None:
    """The largest power of two up to `target` that fits, with its estimate."""
    best = None
    micro = 1
    while micro <= target:
        est = _fits(shape, replace(run, micro_batch=micro), budget)
        if est is None:
            break
        best = (micro, est)
        micro *= 2
    return best


def _choose_memory_layout(shape: ModelShape, base: TrainingShape, budget: int, target: int,
                          fixed: dict[str, Any]) -> tuple[str, int, bool, MemoryEstimate, dict[str, str]]:
    """Method, micro-batch and checkpointing together, since each changes what the others can afford."""
    small = shape.n_params <= FULL_MAX_PARAMS
    qlora_ok = base.device == "cuda" and importlib.util.find_spec("bitsandbytes") is not None
    order = ["full", "lora", "qlora"] if small else ["lora", "qlora", "full"]
    if "method" in fixed:
        order = [fixed["method"]]
    order = [m for m in order if m != "qlora" or qlora_ok or "method" in fixed]
    micro_cap = fixed.get("micro_batch", target)
    for method in order:
        if method == "qlora" and base.device != "cuda":
            raise UserError("QLoRA needs a CUDA GPU with bitsandbytes; this machine has none (use `lora`)")
        run = replace(base, method=method)
        gc_options = [fixed["gradient_checkpointing"]] if "gradient_checkpointing" in fixed else [False, True]
        found: dict[bool, tuple[int, MemoryEstimate]] = {}
        for gc in gc_options:
            if "micro_batch" in fixed:
                est = _fits(shape, replace(run, gradient_checkpointing=gc, micro_batch=micro_cap), budget)
                hit = (micro_cap, est) if est else None
            else:
                hit = _largest_micro_batch(shape, replace(run, gradient_checkpointing=gc), budget, micro_cap)
            if hit:
                found[gc] = hit
        if not found:
            continue
        plain = found.get(False)
        if plain and (plain[0] >= min(MIN_USEFUL_MICRO_BATCH, micro_cap) or True not in found
                      or found[True][0] <= plain[0]):
            gc, (micro, est) = False, plain
            gc_why = "not needed: activations fit" + (f" at micro-batch {micro}" if micro > 1 else "")
        else:
            gc, (micro, est) = True, found[True]
            gc_why = (f"recomputing activations lets micro-batch {micro} fit (without it: "
                      f"{plain[0] if plain else 'nothing'}), for about 30% more compute")
        why = {"method": _method_reason(method, shape, order, est, budget),
               "micro_batch": f"the largest power of two up to {micro_cap} whose estimate ({gib(est.total)}) fits in "
                              f"{gib(budget)} ({SAFETY:.0%} of the free memory)",
               "gradient_checkpointing": gc_why}
        return method, micro, gc, est, why
    if "micro_batch" in fixed and "method" in fixed:
        # The user fixed the layout: keep it; the plan carries a warning that it will not fit.
        gc = fixed.get("gradient_checkpointing", True)
        est = estimate_memory(shape, replace(base, method=fixed["method"], micro_batch=micro_cap,
                                             gradient_checkpointing=gc))
        return fixed["method"], micro_cap, gc, est, {"method": "set by you", "micro_batch": "set by you",
                                                     "gradient_checkpointing": "the most memory it can save"}
    least = estimate_memory(shape, replace(base, method=order[-1] if "method" in fixed else
                                           ("qlora" if qlora_ok else "lora"), micro_batch=1,
                                           gradient_checkpointing=True))
    raise UserError(f"this model does not fit: even {least_name(order, fixed, qlora_ok)} at micro-batch 1 with "
                    f"gradient checkpointing and max_length {base.seq_len} needs about {gib(least.total)}, and "
                    f"{gib(budget)} is free to plan with; choose a smaller model or a shorter `max_length`")


def _choose_strategy(shape: ModelShape, base: TrainingShape, budget: int, target: int, fixed: dict[str, Any]
                     ) -> tuple[str, tuple[str, int, bool, MemoryEstimate, dict[str, str]]]:
    """Single device, DDP or FSDP with the memory layout it allows: DDP while a whole copy fits on each rank (it
    only exchanges gradients), FSDP when sharding lets the model, or a better method, fit."""
    n = base.ranks
    if n == 1:
        if fixed.get("strategy", "single") != "single":
            check_strategy(fixed["strategy"], n, base.device)
        layout = _choose_memory_layout(shape, base, budget, target, fixed)
        return "single", (*layout[:4], {**layout[4], "strategy": "one process on one device: nothing to distribute"})
    where = f"{n} GPUs" if base.device == "cuda" else f"{n} CPU processes (gloo)"
    if "strategy" in fixed:
        check_strategy(fixed["strategy"], n, base.device)
        layout = _choose_memory_layout(shape, replace(base, sharded=fixed["strategy"] in SHARDED), budget, target,
                                       fixed)
        return fixed["strategy"], (*layout[:4], {**layout[4], "strategy": f"over {where}"})
    whole = sharded = None
    refusal: UserError | None = None
    try:
        whole = _choose_memory_layout(shape, base, budget, target, fixed)
    except UserError as e:
        refusal = e
    try:
        sharded = _choose_memory_layout(shape, replace(base, sharded=True), budget, target, fixed)
    except UserError:
        if whole is None:
            raise refusal  # type: ignore[misc]
    if whole is not None and (sharded is None or sharded[0] == whole[0]):
        return "ddp", (*whole[:4], {**whole[4], "strategy": (
            f"a whole copy fits on each of the {where} ({gib(whole[3].total)} of {gib(budget)}): DDP only "
            "all-reduces gradients, less traffic than sharding")})
    assert sharded is not None
    one = "GPU" if base.device == "cuda" else "rank"
    why = (f"a whole copy does not fit on one {one} ({gib(budget)} to plan with); sharded over {where} it does "
           f"({gib(sharded[3].total)} per rank)" if whole is None else
           f"sharding over {where} lets {sharded[0]} fine-tuning fit ({gib(sharded[3].total)} per rank), where a "
           f"whole copy per rank allows only {whole[0]}")
    return "fsdp", (*sharded[:4], {**sharded[4], "strategy": why + " (FSDP2 through accelerate)"})


def least_name(order: list[str], fixed: dict[str, Any], qlora_ok: bool) -> str:
    if "method" in fixed:
        return fixed["method"]
    return "QLoRA" if qlora_ok else "LoRA"


def _method_reason(method: str, shape: ModelShape, order: list[str], est: MemoryEstimate, budget: int) -> str:
    size = f"{shape.n_params / 1e6:,.0f}M parameters"
    if method == "full":
        return f"{size}: small enough that training every weight is affordable ({gib(est.total)} of {gib(budget)})"
    if method == "lora" and order[0] == "lora":
        return f"{size}: adapters get close to full fine-tuning's quality for a fraction of the memory"
    if method == "lora":
        return f"full fine-tuning does not fit in {gib(budget)}; LoRA adapters do ({gib(est.total)})"
    return f"the base model in 16-bit does not fit in {gib(budget)}; 4-bit QLoRA does ({gib(est.total)})"


def _choose_batching(data: DataProfile, recipe: Recipe, max_length: int, micro: int, decide) -> tuple[bool, bool]:
    lengths = data.token_lengths
    median = statistics.median(lengths)
    spread = data.quantile(0.9) / max(1, data.quantile(0.1))
    if recipe in RL_RECIPES:
        packing = decide("packing", False, "GRPO generates its completions during training; there is nothing to pack")
        padding_free = decide("padding_free", False, "GRPO pads its generated completions (TRL has no padding-free mode)")
        return packing, padding_free
    if recipe == "sft" and median * 4 <= max_length:
        packing = decide("packing", True, f"examples are short (median {median:.0f} of {max_length} tokens): packing "
                                          "several into each sequence wastes no compute on padding")
        padding_free = decide("padding_free", False, "packing already removes padding")
        return packing, padding_free
    packing = decide("packing", False, "examples fill most of max_length; packing would gain little"
                     if recipe == "sft" else "DPO keeps each prompt with its own pair; TRL does not pack it")
    useful = micro > 1 and spread >= 1.5
    padding_free = decide("padding_free", useful,
                          f"lengths vary ({spread:.1f}× between the 10th and 90th percentile): concatenating each "
                          "micro-batch without padding saves the compute padding would waste" if useful else
                          "lengths are even or each micro-batch holds one example: little padding to remove")
    return packing, padding_free


def _choose_epochs(data: DataProfile, recipe: Recipe, decide) -> float:
    n = data.size
    if recipe == "sft":
        epochs = 3 if n < 1000 else 2 if n < 10000 else 1
    elif recipe == "dpo":
        epochs = 2 if n < 2000 else 1
    else:
        epochs = 2 if n < 500 else 1
    reason = (f"{n} examples: " + ("a few passes over little data" if epochs == 3 else
                                   "two passes" if epochs == 2 else "one pass is enough on this much data; more overfits"))
    if recipe != "sft":
        reason += f" ({recipe} drifts from the base model quickly, so it takes fewer passes than SFT)"
    return decide("epochs", epochs, reason)


def training_flops_per_token(shape: ModelShape, seq_len: int, method: str, checkpointing: bool) -> float:
    """Forward 2N; backward 4N for full (inputs and weights), 2N with adapters (inputs only); checkpointing
    repeats the forward. Attention adds 2 × layers × length × width per token per forward (causal half)."""
    n = shape.active_params - shape.n_embedding_params  # embedding look-ups cost nothing; the head is a matmul
    n += shape.vocab_size * shape.hidden_size
    forward = 2 * n + 2 * shape.num_layers * seq_len * shape.num_heads * shape.head_dim
    backward = 2 * forward if method == "full" else forward
    return forward + backward + (forward if checkpointing else 0)


def estimate_duration(shape: ModelShape, data: DataProfile, config: TrainingConfig, recipe: Recipe,
                      hardware: Hardware) -> tuple[int, float, float]:
    """(optimizer steps, training tokens/s, seconds) from a compute model: FLOPs per token over the device's
    peak rate times a typical utilisation; for rlvr/rlaif, generation adds a decode term. A rough figure."""
    device = hardware.device
    peak = hardware.peak_flops or 1e11
    if device == "cuda" and config.precision == "fp32":
        peak /= 8  # no tensor-core bf16 path
    rl = recipe in RL_RECIPES
    steps = optimizer_steps(data.size, config, recipe)
    tokens_per_example = _tokens_per_example(data, config, recipe)
    tokens = tokens_per_example * config.effective_batch * steps
    seq = config.max_length + (config.max_completion_length or 0)
    flops_token = training_flops_per_token(shape, seq, config.method, config.gradient_checkpointing)
    rate = peak * UTILISATION[device]
    if device == "cuda":
        rate *= config.processes  # each GPU computes its share; CPU ranks share the same cores
    seconds = tokens * flops_token / rate
    if rl:
        generated = config.effective_batch * (config.max_completion_length or 0) * steps
        seconds += generated * 2 * shape.active_params / (peak * DECODE_UTILISATION[device])
    tps = tokens / seconds if seconds else 0.0
    return steps, tps, seconds


def optimizer_steps(rows: int, config: TrainingConfig, recipe: Recipe) -> int:
    """The optimizer steps TRL takes on `rows` training rows (one process), counted as its trainers count them.

    SFT and DPO: a last, partial batch is still a step. GRPO (rlvr, rlaif) draws prompts in generation batches of
    micro_batch × gradient_accumulation × processes completions (TRL's default `steps_per_generation` is the
    accumulation), so each batch holds that many completions / num_generations prompts, and a last partial batch is
    dropped."""
    # Each rank reads its own micro-batches: one step takes micro_batch × processes rows per accumulation.
    per_epoch = math.ceil(math.ceil(rows / (config.micro_batch * config.processes)) / config.gradient_accumulation)
    if recipe in RL_RECIPES:
        prompts = config.micro_batch * config.gradient_accumulation * config.processes // (config.num_generations or 1)
        per_epoch = rows // max(1, prompts)
    # The Trainer counts at least one step an epoch, and rounds a fraction of epochs up to a whole step.
    return max(1, math.ceil(config.epochs * max(1, per_epoch)))


def _tokens_per_example(data: DataProfile, config: TrainingConfig, recipe: Recipe) -> float:
    """Tokens a step computes per example: real tokens when packed or padding-free, else each micro-batch is
    padded to its longest example (estimated from the lengths taken in order, as a shuffled loader would)."""
    lengths = [min(n, config.max_length) for n in data.token_lengths]
    if recipe in RL_RECIPES:
        return statistics.fmean(lengths) + (config.max_completion_length or 0)
    per = 2 if recipe == "dpo" else 1
    if config.packing or config.padding_free or config.micro_batch == 1:
        return per * statistics.fmean(lengths)
    groups = [lengths[i:i + config.micro_batch] for i in range(0, len(lengths), config.micro_batch)]
    return per * sum(max(g) * len(g) for g in groups) / len(lengths)

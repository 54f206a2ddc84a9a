"""`plan_finetune(ws, spec)`: a fine-tuning request turned into everything a job will do — the model, the checked
dataset, the real token lengths of its rows, the hardware, and the automatic configuration with the user's
overrides — as resolved job settings with an estimate and a plain-words explanation.

No side effects: it reads the catalog and the model's files, and never writes, submits or trains.
"""
from __future__ import annotations

import random
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from core.errors import UserError
from core.workspace import Workspace
from runtimes.training.auto_config import RL_RECIPES, DataProfile, TrainingConfig, TrainingPlan, auto_configure
from runtimes.training.hardware import Hardware, detect_hardware
from runtimes.training.jobs.spec import JobSpec
from runtimes.training.memory_estimate import ModelShape, gib
from runtimes.models.sources import ModelSource
from runtimes.training.plan_explanation import explain as explain_training
from runtimes.training.recovery import check_recovery, describe_recovery
from runtimes.training.recipes.generation_groups import too_few_prompts

# Rows whose lengths are measured; beyond this a seeded sample stands for the whole dataset.
MEASURE_SAMPLE = 2000
# Settings of the automatic configuration that become the recipe's knobs, by technique.
_SHARED = ("method", "precision", "micro_batch", "gradient_accumulation", "gradient_checkpointing", "max_length",
           "learning_rate", "epochs", "processes", "strategy")
_BY_TECHNIQUE = {"sft": ("packing", "padding_free"), "dpo": (),
                 "rlvr": ("num_generations", "max_completion_length"),
                 "rlaif": ("num_generations", "max_completion_length")}


@dataclass(frozen=True)
class FinetunePlan:
    """The plan of one fine-tuning job. `settings` is what the worker trains with (job settings and recipe
    knobs, the user's `--set` values included); `training` holds every automatic choice with its reason."""

    spec: JobSpec
    model: ModelSource
    dataset: dict[str, Any]          # `PreparedDataset.summary()`: SQL, mapping, row counts, hash
    dataset_description: str         # one line: rows, source, mapping, bad rows left out
    bad_rows: tuple[str, ...]        # "row 12: empty completion", at most 20
    profile: DataProfile
    measured_rows: int               # rows whose token lengths were measured (all, or a sample)
    training: TrainingPlan
    settings: dict[str, Any]
    measured: Any = None  # `duration.MeasuredDuration`: warm-up steps of the real trainer, when the plan timed them
    preemption: Any = None  # `preemption.PreemptionPlan` of a preemptible job

    @property
    def hardware(self) -> Hardware:
        return self.training.hardware

    @property
    def estimate(self) -> Any:
        return self.training.estimate

    @property
    def duration_s(self) -> float:
        return self.measured.total_s if self.measured else self.training.duration_s

    @property
    def decisions(self) -> tuple[Any, ...]:
        return self.training.decisions

    def explain(self) -> str:
        """The plan in plain words: model, data and its lengths, then hardware, memory, settings and duration."""
        lengths = self.profile.token_lengths
        measured = ("every row" if self.measured_rows == len(lengths) and self.measured_rows >= self.dataset["train_rows"]
                    else f"a sample of {self.measured_rows:,} rows")
        lines = [f"Model: {self.model.ref} ({self.model.family.name}) from {self.model.location}.",
                 f"Data: {self.dataset_description}; {self.dataset['train_rows']:,} rows to train on, "
                 f"{self.dataset['eval_rows']:,} held out for evaluation"
                 + (f", {self.dataset['duplicates_removed']:,} duplicates removed" if self.dataset['duplicates_removed']
                    else "") + "."]
        lines.extend(f"  Bad row left out: {b}." for b in self.bad_rows[:5])
        if len(self.bad_rows) > 5:
            lines.append(f"  … and {len(self.bad_rows) - 5} more bad rows.")
        lines.append(f"Token lengths, measured with the model's tokenizer on {measured}: median "
                     f"{statistics.median(lengths):.0f}, 99th percentile {self.profile.quantile(0.99)}, longest "
                     f"{max(lengths)}.")
        lines.append(explain_training(self.training) if self.measured is None else "\n".join(
            f"Duration: {self.measured.describe()}." if line.startswith("Duration:") else line
            for line in explain_training(self.training).splitlines()))
        rest = {k: v for k, v in self.settings.items() if k not in TrainingConfig.model_fields}
        if rest:
            lines.append("Other settings: " + ", ".join(f"{k} = {v}" for k, v in rest.items()) + ".")
        if self.settings.get("max_steps", -1) != -1:
            lines.append(max_steps_note(int(self.settings["max_steps"]), self.training.steps))
        if self.preemption is not None:
            lines.append(self.preemption.describe())
        if (recovery := describe_recovery(self.settings)) is not None:
            lines.append(recovery)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        t = self.training
        return {"model": {"ref": self.model.ref, "location": self.model.location, "family": self.model.family.name},
                "family": self.model.family.name, "technique": self.spec.technique, "data": self.dataset_description,
                "sql": self.dataset["sql"], "dataset": self.dataset, "bad_rows": list(self.bad_rows),
                "token_lengths": {"measured_rows": self.measured_rows,
                                  "median": statistics.median(self.profile.token_lengths),
                                  "p99": self.profile.quantile(0.99), "max": max(self.profile.token_lengths)},
                "hardware": self.hardware.describe(), "settings": self.settings,
                "decisions": [{"field": d.field, "value": d.value, "reason": d.reason, "overridden": d.overridden}
                              for d in t.decisions],
                "memory": {"total_bytes": t.estimate.total, "total": gib(t.estimate.total),
                           "budget_bytes": t.budget_bytes, "fits": t.fits,
                           "parts_bytes": t.estimate.parts(), "trainable_params": t.estimate.trainable_params},
                "steps": t.steps, "tokens_per_second": t.tokens_per_second, "duration_s": self.duration_s,
                "measured_duration": self.measured.to_json() if self.measured else None,
                "warnings": list(t.warnings), "explanation": self.explain(),
                "preemption": asdict(self.preemption) if self.preemption is not None else None}


def plan_finetune(ws: Workspace, spec: JobSpec, *, hardware: Hardware | None = None,
                  measure_speed: bool = True) -> FinetunePlan:
    """Resolve the model, check and prepare the data (in memory), measure its token lengths, detect the
    hardware and configure the run; with `measure_speed`, time a few warm-up steps for the duration. Every
    problem is a `UserError` raised before the warm-up's compute."""
    from runtimes.training.datasets.preparation import DatasetSpec, plan_dataset, prepare
    from runtimes.training.jobs.trainer_factory import resolve_settings
    from runtimes.models.sources import resolve_model

    given = resolve_settings(spec.settings, spec.technique)  # unknown or ill-typed keys are refused first
    source = resolve_model(spec.model, ws)
    dataset_plan = plan_dataset(ws, DatasetSpec(table=spec.table, sql=spec.sql, technique=spec.technique,
                                                eval_fraction=spec.eval_fraction, seed=given["seed"],
                                                mapping=spec.mapping))
    prepared = prepare(dataset_plan, ws)
    check_judge(ws, spec.technique, given)
    return plan_prepared(spec, source, prepared, hardware=hardware, description=dataset_plan.describe(),
                         measure_speed=measure_speed)


def check_judge(ws: Workspace, technique: str, settings: dict[str, Any]) -> str | None:
    """RLAIF: one probe call to the judge before any compute; an unreachable judge is refused naming its model
    and URL. Returns the judge's reply (None for techniques without one)."""
    if technique != "rlaif":
        return None
    from runtimes.judging.judge import judge_target, probe_judge

    return probe_judge(judge_target(ws, settings))


def plan_prepared(spec: JobSpec, source: ModelSource, prepared: Any, *, hardware: Hardware | None = None,
                  description: str | None = None, measure_speed: bool = False) -> FinetunePlan:
    """The plan for data already prepared (the worker's path, which keeps the prepared rows to train on)."""
    from runtimes.training.jobs.trainer_factory import recipe_config, resolve_settings
    from runtimes.models.sources import load_tokenizer

    settings = resolve_settings(spec.settings, spec.technique)
    if spec.technique in ("sft", "dpo") and "micro_batch" in spec.settings \
            and settings["micro_batch"] > len(prepared.train):  # GRPO's micro-batch counts completions
        raise UserError(f"setting `micro_batch` = {settings['micro_batch']:,} is more than the "
                        f"{len(prepared.train):,} rows to train on: it takes from 1 to {len(prepared.train):,}")
    tokenizer, _ = load_tokenizer(source)
    profile, measured = measure_lengths(tokenizer, prepared.train, spec.technique, seed=settings["seed"])
    overrides = {k: settings[k] for k in spec.settings
                 if k in TrainingConfig.model_fields and not (k == "precision" and settings[k] == "auto")}
    training = auto_configure(ModelShape.from_pretrained(source.location), profile,
                              hardware or detect_hardware(), spec.technique, overrides)
    cfg = training.config
    chosen = {k: getattr(cfg, k) for k in _SHARED + _BY_TECHNIQUE[spec.technique]}
    if cfg.method != "full":
        chosen.update(lora_rank=cfg.lora_rank, lora_alpha=cfg.lora_alpha)
    resolved = {**settings, **chosen, **{k: settings[k] for k in spec.settings}}  # the user's values win
    resolved.pop("effective_batch", None)  # micro_batch × gradient_accumulation says it
    recipe_config(spec.technique, resolved)  # the combination must be one the recipe accepts
    check_recovery(spec.technique, resolved)
    if spec.technique in RL_RECIPES and (short := too_few_prompts(
            resolved["micro_batch"], resolved["gradient_accumulation"], resolved["processes"],
            resolved["num_generations"], len(prepared.train))):
        raise UserError(short)
    summary = prepared.summary()
    timed = None
    if measure_speed and resolved["processes"] == 1:  # a warm-up in one process cannot time several ranks
        from runtimes.training.duration import measure_duration, planned_steps

        timed = measure_duration(spec.technique, resolved, source, prepared, planned_steps(resolved, training.steps))
    preemption = _preemption(training, resolved, timed, "checkpoint_every" in spec.settings)
    return FinetunePlan(spec=spec, model=source, dataset=summary,
                        dataset_description=description or _describe(prepared),
                        bad_rows=tuple(str(b) for b in prepared.bad_rows[:20]), profile=profile,
                        measured_rows=measured, training=training, settings=resolved, measured=timed,
                        preemption=preemption)


def _preemption(training: TrainingPlan, settings: dict[str, Any], timed: Any, yours: bool) -> Any:
    """A preemptible job's checkpoint interval, set in `settings` unless the user gave one, and its costing."""
    if not settings.get("preemptible"):
        return None
    from runtimes.training.preemption import plan_preemption

    est = training.estimate
    checkpoint_bytes = (est.weights if training.config.method == "full" else est.adapters) + est.optimizer
    steps = int(settings["max_steps"]) if settings.get("max_steps", -1) != -1 else training.steps
    step_s = timed.step_s if timed else training.duration_s / max(1, training.steps)
    restart = {"restart_s": timed.setup_s} if timed else {}
    p = plan_preemption(steps, step_s, checkpoint_bytes, float(settings["grace_period_s"]),
                        chosen_every=int(settings["checkpoint_every"]) if yours else None, **restart)
    settings["checkpoint_every"] = p.checkpoint_every
    return p


def max_steps_note(max_steps: int, planned: int) -> str:
    """What `max_steps` does to the planned epochs' steps: more takes longer, fewer takes less."""
    if max_steps > planned:
        return (f"max_steps = {max_steps} is more than the {planned} steps the planned epochs take: training goes "
                "on past them, so it will take longer than the epochs would.")
    if max_steps < planned:
        return (f"max_steps = {max_steps} stops training before the planned epochs end ({planned} steps), so it "
                "will take less time than the epochs would.")
    return f"max_steps = {max_steps} is the number of steps the planned epochs take."


def measure_lengths(tokenizer: Any, rows: Any, technique: str, *, seed: int = 42,
                    sample: int = MEASURE_SAMPLE) -> tuple[DataProfile, int]:
    """Each row's length in tokens as the recipe sees it (sft: the whole conversation; dpo: prompt and the
    longer answer; rlvr/rlaif: the prompt, and the reference answer as the completion length)."""
    indices = list(range(len(rows)))
    if len(indices) > sample:
        indices = sorted(random.Random(seed).sample(indices, sample))
    picked = rows.select(indices) if hasattr(rows, "select") else [rows[i] for i in indices]
    lengths: list[int] = []
    completions: list[int] = []
    for row in picked:
        if technique == "sft":
            conv = row.get("messages") or (list(row["prompt"]) + list(row["completion"]))
            lengths.append(_count(tokenizer, _render(tokenizer, conv)))
        elif technique == "dpo":
            lengths.append(max(_count(tokenizer, _render(tokenizer, list(row["prompt"]) + list(row[k])))
                               for k in ("chosen", "rejected")))
        else:
            lengths.append(_count(tokenizer, _render(tokenizer, list(row["prompt"]), generation=True)))
            reference = row.get("solution") or row.get("answer") if technique == "rlvr" else row.get("reference")
            if reference:
                completions.append(_count(tokenizer, str(reference)))
    return DataProfile.from_lengths([max(1, n) for n in lengths], completions if technique in RL_RECIPES else (),
                                    rows=len(rows)), len(indices)


def _render(tokenizer: Any, messages: list[dict[str, str]], *, generation: bool = False) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
    except Exception:  # a template that refuses this shape of conversation: count the plain text
        return "\n".join(str(m.get("content", "")) for m in messages)


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _describe(prepared: Any) -> str:
    bad = f", {len(prepared.bad_rows):,} bad rows left out" if prepared.bad_rows else ""
    return f"{prepared.rows_read:,} rows from {', '.join(prepared.tables) or 'the query'}; " \
           f"{prepared.mapping.describe()}{bad}"

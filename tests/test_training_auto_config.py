"""The automatic configuration: choices against the hardware's memory, max_length from real token lengths,
batching and rates by recipe, overrides with did-you-mean errors, the plan in words, and hardware detection."""
from __future__ import annotations

import math
import random

import pytest

from core.errors import UserError
from runtimes.training.auto_config import DataProfile, TrainingPlan, auto_configure
from runtimes.training.hardware import Gpu, Hardware, detect_hardware, parse_nvidia_smi
from runtimes.training.memory_estimate import TrainingShape, estimate_memory
from runtimes.training.plan_explanation import explain

GIB = 2**30


def cpu(ram_gib: float = 16) -> Hardware:
    return Hardware(cpu_cores=2, ram_total_bytes=int(32 * GIB), ram_available_bytes=int(ram_gib * GIB),
                    cpu_flops=50e9)


def gpu(free_gib: float, bf16: bool = True) -> Hardware:
    card = Gpu(index=0, name="NVIDIA H100 80GB HBM3" if bf16 else "Tesla T4", total_bytes=80 * GIB,
               free_bytes=int(free_gib * GIB), bf16=bf16, peak_flops=989e12)
    return Hardware(cpu_cores=16, ram_total_bytes=128 * GIB, ram_available_bytes=100 * GIB, gpus=(card,),
                    source="torch.cuda")


def lengths(n: int = 1000, seed: int = 0, lo: int = 40, hi: int = 400) -> DataProfile:
    rnd = random.Random(seed)
    return DataProfile.from_lengths([rnd.randint(lo, hi) for _ in range(n)])


def test_small_model_on_cpu_gets_full_fine_tuning_in_fp32(shape):
    plan = auto_configure(shape, lengths(), cpu(), "sft")
    c = plan.config
    assert (c.method, c.precision, c.lora_rank) == ("full", "fp32", None)
    assert c.micro_batch * c.gradient_accumulation == c.effective_batch == 16
    assert plan.fits and plan.estimate.total <= 0.9 * cpu().budget_bytes
    assert plan.steps == math.ceil(1000 / 16) * c.epochs and plan.duration_s > 0


def test_bf16_on_a_gpu_that_has_it_fp16_otherwise(shape):
    assert auto_configure(shape, lengths(), gpu(40), "sft").config.precision == "bf16"
    assert auto_configure(shape, lengths(), gpu(12, bf16=False), "sft").config.precision == "fp16"


def test_max_length_is_the_rounded_99th_percentile_and_says_how_many_are_cut(shape):
    data = DataProfile.from_lengths([100] * 980 + [300] * 19 + [900])
    plan = auto_configure(shape, data, cpu(), "sft")
    assert plan.config.max_length == 320  # p99 = 300, rounded up to a multiple of 64
    reason = plan.decision("max_length").reason
    assert "99th percentile of 1000 examples is 300 tokens" in reason and "1 examples (0.1%)" in reason
    capped = auto_configure(shape, DataProfile.from_lengths([5000] * 10), cpu(), "sft")
    assert capped.config.max_length == 1024 and "capped at the model's context" in capped.decision("max_length").reason


def needed(shape, **kw) -> int:
    """The estimate's total for one layout, and the RAM (GiB) that leaves just room for it."""
    return estimate_memory(shape, TrainingShape(**kw)).total


def ram_for(total: int) -> float:
    return total / 0.9 / GIB * 1.001


def test_tight_memory_moves_from_full_to_lora_then_refuses(shape):
    seq = auto_configure(shape, lengths(), cpu(), "sft").config.max_length
    lora_min = needed(shape, method="lora", lora_rank=16, micro_batch=1, seq_len=seq)
    assert needed(shape, method="full", micro_batch=1, seq_len=seq, gradient_checkpointing=True) > lora_min
    tight = auto_configure(shape, lengths(), cpu(ram_for(lora_min)), "sft")
    assert tight.fits and tight.config.method == "lora"
    assert "does not fit" in tight.decision("method").reason
    assert tight.config.lora_rank == 16 and tight.config.lora_alpha == 32  # 1000 examples: a medium rank
    with pytest.raises(UserError, match="this model does not fit.*max_length"):
        auto_configure(shape, lengths(), cpu(0.01), "sft")


def test_checkpointing_is_chosen_only_when_it_buys_a_larger_micro_batch(shape):
    data = DataProfile.from_lengths([1000] * 200)
    roomy = auto_configure(shape, data, cpu(16), "sft")
    assert not roomy.config.gradient_checkpointing and roomy.config.micro_batch == 8
    assert "not needed" in roomy.decision("gradient_checkpointing").reason
    gc2 = needed(shape, method="full", micro_batch=2, seq_len=1024, gradient_checkpointing=True)
    assert needed(shape, method="full", micro_batch=2, seq_len=1024) > gc2 / 0.999  # without it, only 1 fits
    plan = auto_configure(shape, data, cpu(ram_for(gc2)), "sft")
    assert (plan.config.method, plan.config.gradient_checkpointing, plan.config.micro_batch) == ("full", True, 2)
    assert plan.config.gradient_accumulation == 4
    assert "recomputing activations lets micro-batch 2 fit" in plan.decision("gradient_checkpointing").reason


def test_packing_for_short_sft_padding_free_for_varied_lengths_none_for_grpo(shape):
    short = DataProfile.from_lengths([20, 30, 40] * 30 + [400] * 10)
    assert auto_configure(shape, short, cpu(), "sft").config.packing
    varied = lengths(lo=100, hi=600)
    c = auto_configure(shape, varied, cpu(), "dpo").config
    assert (c.packing, c.padding_free) == (False, True)
    g = auto_configure(shape, varied, cpu(), "rlvr").config
    assert (g.packing, g.padding_free) == (False, False)
    assert g.num_generations == 4 and g.effective_batch % g.num_generations == 0
    assert g.max_completion_length == 256


def test_learning_rate_and_epochs_follow_recipe_and_data_size(shape):
    small, big = lengths(300), lengths(20000)
    assert auto_configure(shape, small, cpu(), "sft").config.epochs == 3
    assert auto_configure(shape, big, cpu(), "sft").config.epochs == 1
    assert auto_configure(shape, small, cpu(), "dpo").config.learning_rate == 1e-6
    lora = auto_configure(shape, small, cpu(), "sft", {"method": "lora"})
    assert lora.config.learning_rate == 2e-4 and lora.config.lora_rank == 8
    rl = auto_configure(shape, DataProfile.from_lengths([50] * 100, completion_lengths=[90] * 100), gpu(40), "rlaif")
    assert rl.config.max_completion_length == 128 and rl.config.num_generations == 8


def test_overrides_win_and_are_marked_and_validated(shape):
    plan = auto_configure(shape, lengths(), cpu(), "sft", {"micro_batch": 2, "learning_rate": 3e-4,
                                                            "max_length": 128})
    c = plan.config
    assert (c.micro_batch, c.gradient_accumulation, c.learning_rate, c.max_length) == (2, 8, 3e-4, 128)
    d = plan.decision("micro_batch")
    assert d.overridden and d.reason.startswith("set by you")
    with pytest.raises(UserError, match="no setting `micro_bach`; did you mean `micro_batch`"):
        auto_configure(shape, lengths(), cpu(), "sft", {"micro_bach": 2})
    with pytest.raises(UserError, match="override `method` = 'qlor'"):
        auto_configure(shape, lengths(), cpu(), "sft", {"method": "qlor"})
    with pytest.raises(UserError, match="greater than or equal to 1"):
        auto_configure(shape, lengths(), cpu(), "sft", {"micro_batch": 0})
    with pytest.raises(UserError, match="QLoRA needs a CUDA GPU"):
        auto_configure(shape, lengths(), cpu(), "sft", {"method": "qlora"})


def test_an_override_that_does_not_fit_is_kept_with_a_warning(shape):
    plan = auto_configure(shape, DataProfile.from_lengths([1000] * 50), cpu(0.3), "sft",
                          {"micro_batch": 64, "method": "full", "gradient_checkpointing": False})
    assert plan.config.micro_batch == 64 and not plan.fits
    assert any("run out of memory" in w for w in plan.warnings)


def test_bad_data_and_recipe_are_user_errors(shape):
    with pytest.raises(UserError, match="no rows"):
        DataProfile.from_lengths([])
    with pytest.raises(UserError, match="unknown recipe `ppo`"):
        auto_configure(shape, lengths(), cpu(), "ppo")  # type: ignore[arg-type]


def test_explanation_names_hardware_memory_parts_every_setting_and_duration(shape):
    plan: TrainingPlan = auto_configure(shape, lengths(), gpu(40), "sft", {"epochs": 1})
    text = explain(plan)
    assert "1 GPU(s) (GPU 0 NVIDIA H100 80GB HBM3: 40.0 of 80.0 GiB free, bf16)" in text
    for part in ("model weights", "optimizer states (Adam)", "gradients", "activations", "overhead"):
        assert f"  - {part}: " in text
    for name in type(plan.config).model_fields:
        assert f"  - {name} = " in text
    assert "  - epochs = 1 [yours]: set by you" in text
    assert "Duration: about" in text and "optimizer steps" in text


def test_nvidia_smi_rows_and_this_machine():
    gpus = parse_nvidia_smi("0, NVIDIA A100-SXM4-80GB, 81920, 80000, 8.0\n1, Tesla V100, 16384, 1000, 7.0\n")
    assert [(g.index, g.bf16, g.free_bytes) for g in gpus] == [(0, True, 80000 * 2**20), (1, False, 1000 * 2**20)]
    assert gpus[0].peak_flops == 312e12
    hw = detect_hardware()
    assert hw.cpu_cores >= 1 and 0 < hw.ram_available_bytes <= hw.ram_total_bytes
    if not hw.gpus:
        assert hw.device == "cpu" and hw.cpu_flops > 1e8 and hw.budget_bytes == hw.ram_available_bytes
        assert "no GPU; CPU with" in hw.describe()


@pytest.mark.parametrize("rows", [7, 10])
@pytest.mark.parametrize("batch", [dict(micro_batch=4, gradient_accumulation=1, num_generations=2, epochs=1),
                                   dict(micro_batch=2, gradient_accumulation=3, num_generations=2, epochs=2)])
def test_planned_grpo_steps_are_the_steps_trl_takes(shape, rows, batch, tmp_path):
    """A real GRPO run (tiny model, 4-token completions) on `rows` prompts ends at the plan's step count, also
    when the prompts do not fill the last generation batch (7 and 10 prompts, 2 or 3 prompts a step)."""
    import json

    from catalog.importers import import_paths
    from core.workspace import Workspace
    from runtimes.models.sources import resolve_model
    from runtimes.training.datasets.preparation import DatasetSpec, prepare_dataset
    from runtimes.training.recipes import parse_config, recipe
    from runtimes.training.tiny_models import build_tiny_model

    ws = Workspace(tmp_path / "ws")
    ws.create()
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} plus {i}?", "answer": f"#### {2 * i}"}) + "\n"
                            for i in range(rows)))
    import_paths(ws, [data])
    prepared = prepare_dataset(ws, DatasetSpec(table="sums", technique="rlvr", eval_fraction=0))
    assert len(prepared.train) == rows

    plan = auto_configure(shape, DataProfile.from_lengths([12] * rows, [2] * rows), cpu(), "rlvr", batch)
    model = build_tiny_model("qwen3", tmp_path / "tiny", [f"What is {i} plus {i}? {2 * i}" for i in range(20)])
    config = parse_config("rlvr", {"micro_batch": batch["micro_batch"], "grad_accum": batch["gradient_accumulation"],
                                   "num_generations": batch["num_generations"], "epochs": batch["epochs"],
                                   "max_completion_length": 4, "save_steps": 1000, "logging_steps": 1000,
                                   "rewards": [{"name": "regex", "pattern": r"\d"}]})
    trainer = recipe("rlvr").build_trainer(config, resolve_model(str(model)), prepared, tmp_path / "out", [])
    trainer.train()
    assert trainer.state.global_step == plan.steps > 0

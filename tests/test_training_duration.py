"""Duration estimates measured on warm-up steps of the real trainer with a tiny local model: the steps come from
the real row count (not the measured sample's), `max_steps` above the planned steps says it takes longer, and a
plan that measured its speed explains the figure it measured."""
from __future__ import annotations

import pytest

from runtimes.training.auto_config import DataProfile, auto_configure
from runtimes.training.hardware import Hardware
from runtimes.training.memory_estimate import ModelShape
from runtimes.training.planning import max_steps_note


def _cpu() -> Hardware:
    return Hardware(cpu_cores=2, ram_total_bytes=8 * 2**30, ram_available_bytes=6 * 2**30, cpu_flops=5e10)


def test_steps_follow_the_real_row_count_not_the_sample(ws):
    shape = ModelShape.from_pretrained(ws.root / "models" / "base" / "tiny")
    sample = [50 + i % 40 for i in range(2000)]
    whole = auto_configure(shape, DataProfile.from_lengths(sample, rows=50_000), _cpu(), "sft")
    measured_only = auto_configure(shape, DataProfile.from_lengths(sample), _cpu(), "sft")
    batch = whole.config.effective_batch
    assert whole.steps == pytest.approx(50_000 / batch * whole.config.epochs, abs=1)
    small = measured_only.config
    assert measured_only.steps == pytest.approx(2000 / small.effective_batch * small.epochs, abs=1)
    assert whole.duration_s > 5 * measured_only.duration_s
    assert DataProfile.from_lengths(sample, rows=50_000).size == 50_000
    assert "99th percentile of 2000 examples" in whole.decision("max_length").reason  # what was measured


@pytest.mark.parametrize(("max_steps", "planned", "words"), [
    (500, 40, "more than the 40 steps the planned epochs take: training goes on past them, so it will take longer"),
    (10, 40, "stops training before the planned epochs end (40 steps), so it will take less time"),
    (40, 40, "is the number of steps the planned epochs take"),
])
def test_max_steps_says_longer_or_shorter_by_the_planned_steps(max_steps, planned, words):
    assert words in max_steps_note(max_steps, planned)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    import json

    from catalog.importers import import_paths
    from core.workspace import Workspace
    from runtimes.training.tiny_models import build_tiny_model

    ws = Workspace(tmp_path_factory.mktemp("duration") / "ws")
    ws.create()
    rows = [{"prompt": f"Where is order {i}?" + " Please check." * (i % 4),
             "completion": f"Order {i} ships today." + " Thanks for waiting." * (i % 3)} for i in range(40)]
    f = tmp_path_factory.mktemp("data") / "orders.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_paths(ws, [f])
    build_tiny_model("qwen3", ws.root / "models" / "base" / "tiny", [r["prompt"] + " " + r["completion"] for r in rows],
                     hidden=32, layers=1, heads=2, kv_heads=1, vocab_size=320)
    return ws


def test_a_plan_measures_warm_up_steps_of_its_own_trainer(ws):
    from runtimes.training.jobs.spec import JobSpec
    from runtimes.training.planning import plan_finetune

    spec = JobSpec.parse({"model": "tiny", "table": "orders", "technique": "sft",
                          "settings": {"micro_batch": 4, "max_steps": 500}})
    plan = plan_finetune(ws, spec)
    m = plan.measured
    assert m.steps == 500 and m.warmup_steps == 2 and m.step_s > 0 and m.setup_s > 0 and m.evaluation_s > 0
    assert plan.duration_s == m.total_s == pytest.approx(m.setup_s + 500 * m.step_s + m.evaluation_s)
    text = plan.explain()
    assert "Duration: about" in text and "measured on 2 warm-up steps of this model and data" in text
    assert "× 500 steps" in text and "to evaluate base vs tuned" in text
    assert f"max_steps = 500 is more than the {plan.training.steps} steps the planned epochs take" in text
    assert plan.to_json()["measured_duration"]["steps"] == 500
    quick = plan_finetune(ws, spec, measure_speed=False)
    assert quick.measured is None and quick.duration_s == quick.training.duration_s

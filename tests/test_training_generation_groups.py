"""GRPO's completions per step must hold whole groups of `num_generations`: the automatic configuration chooses
a group size that fits the user's micro-batch × accumulation when the user did not set one (and says why in the
plan), fills in an accumulation or micro-batch the user left open, and refuses only values the user set that
cannot fit, naming ones that would. Also through a real plan (`plan_finetune`) and the recipe configs."""
from __future__ import annotations

import json

import pytest

from core.errors import UserError
from runtimes.training.auto_config import DataProfile, auto_configure
from runtimes.training.jobs.spec import JobSpec
from runtimes.training.plan_explanation import explain
from runtimes.training.recipes import parse_config
from runtimes.training.recipes.generation_groups import accumulation_for, fitting_generations
from tests.test_training_auto_config import cpu, gpu

PROMPTS = DataProfile.from_lengths([50] * 100, completion_lengths=[90] * 100)


def _batch(c) -> tuple[int, int, int]:
    return c.micro_batch, c.gradient_accumulation, c.num_generations


def test_the_group_size_follows_the_batch_when_the_user_did_not_set_it(shape):
    alone = auto_configure(shape, PROMPTS, cpu(), "rlvr", {"micro_batch": 2})
    assert _batch(alone.config) == (2, 8, 4)  # the accumulation is open: the usual group of 4 fits
    assert "micro_batch 2 × gradient_accumulation 8 = 16 completions per step hold 4 prompts' groups" in \
        alone.decision("num_generations").reason

    both = auto_configure(shape, PROMPTS, cpu(), "rlvr", {"micro_batch": 2, "gradient_accumulation": 3})
    assert _batch(both.config) == (2, 3, 3) and both.config.effective_batch == 6
    assert ("num_generations = 3: micro_batch 2 × gradient_accumulation 3 = 6 completions per step: a group size "
            "that fits whole, the nearest to the usual 4, which does not divide 6") in explain(both)
    assert _batch(auto_configure(shape, PROMPTS, gpu(40), "rlaif",
                                 {"micro_batch": 3, "gradient_accumulation": 2}).config) == (3, 2, 6)


def test_an_open_accumulation_or_micro_batch_follows_the_users_group_size(shape):
    acc = auto_configure(shape, PROMPTS, cpu(), "rlvr", {"num_generations": 8, "micro_batch": 3})
    micro, accumulation, n = _batch(acc.config)
    assert (micro, n) == (3, 8) and (micro * accumulation) % 8 == 0 and accumulation == 16
    assert "holds whole groups of your num_generations 8" in acc.decision("gradient_accumulation").reason
    # Little memory: the largest micro-batch that fits (4) cannot hold groups of 8 with 3 accumulations.
    tight = auto_configure(shape, PROMPTS, cpu(0.5), "rlvr", {"num_generations": 8, "gradient_accumulation": 3})
    assert _batch(tight.config) == (8, 3, 8)
    assert "(memory alone allowed 4)" in tight.decision("micro_batch").reason


def test_only_values_the_user_set_that_cannot_fit_are_refused_with_ones_that_would(shape):
    with pytest.raises(UserError, match=r"^micro_batch × gradient_accumulation \(2 × 1 = 2\) must be a multiple of "
                                        r"num_generations \(4\): each prompt's completions are scored as one group; "
                                        r"use gradient_accumulation=2 \(2 × 2 = 4\), or num_generations=2$"):
        auto_configure(shape, PROMPTS, cpu(), "rlvr", {"micro_batch": 2, "gradient_accumulation": 1,
                                                       "num_generations": 4})
    with pytest.raises(UserError, match=r"makes 1 per step: set gradient_accumulation=4 \(or micro_batch=4\)$"):
        auto_configure(shape, PROMPTS, cpu(), "rlvr", {"micro_batch": 1, "gradient_accumulation": 1})


def test_group_arithmetic():
    assert [fitting_generations(b, 8) for b in (1, 2, 6, 16, 24, 11)] == [None, 2, 6, 8, 8, 11]
    assert [fitting_generations(b, 4) for b in (6, 10, 12)] == [3, 2, 4]
    assert accumulation_for(3, 8) == 8 and accumulation_for(6, 4) == 2 and accumulation_for(3, 8, at_least=11) == 16


def test_recipe_configs_take_a_micro_batch_alone_and_explain_a_misfit():
    assert parse_config("rlvr", {"micro_batch": 2}).num_generations == 2
    assert parse_config("rlaif", {"micro_batch": 6, "judge_model": "openai/j"}).num_generations == 6
    alone = parse_config("rlvr", {"micro_batch": 1})  # a batch of one: whole groups by accumulation
    assert (alone.grad_accum, alone.num_generations) == (8, 8)
    with pytest.raises(UserError, match=r"use grad_accum=2 \(6 × 2 = 12\), or num_generations=2 or 3 or 6 "
                                        r"\(`grad_accum` is `gradient_accumulation` in a job's settings\)"):
        parse_config("rlvr", {"micro_batch": 6, "num_generations": 4})


@pytest.mark.slow
def test_grpo_evaluates_in_whole_groups(tmp_path):
    from runtimes.training.recipes.rlvr_recipe import grpo_arguments

    for micro, n, expected in ((2, 4, 4), (8, 4, 8), (6, 4, 4)):
        config = parse_config("rlvr", {"micro_batch": micro, "grad_accum": 4, "num_generations": n})
        args = grpo_arguments(config, tmp_path, has_eval=True)
        assert args.per_device_train_batch_size == micro and args.per_device_eval_batch_size == expected


@pytest.fixture(scope="module")
def qa_ws(tmp_path_factory):
    from catalog.importers import import_paths
    from core.workspace import Workspace
    from runtimes.training.tiny_models import build_tiny_model

    ws = Workspace(tmp_path_factory.mktemp("groups") / "ws")
    ws.create()
    rows = [{"question": f"What is {i} plus {i + 3}?", "answer": f"{i} + {i + 3} = {2 * i + 3}\n#### {2 * i + 3}"}
            for i in range(24)]
    path = ws.root / "sums.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import_paths(ws, [path])
    model = build_tiny_model("qwen3", tmp_path_factory.mktemp("models") / "tiny-qwen3",
                             [r["question"] + " " + r["answer"] for r in rows], hidden=32, layers=1, heads=2,
                             kv_heads=1, vocab_size=300)
    return ws, str(model)


@pytest.mark.slow
def test_a_plan_with_only_a_micro_batch_set_is_accepted_and_explained(qa_ws):
    from runtimes.training.jobs.trainer_factory import recipe_config, resolve_settings
    from runtimes.training.planning import plan_finetune

    ws, model = qa_ws
    plan = plan_finetune(ws, JobSpec.parse({"model": model, "table": "sums", "technique": "rlvr",
                                            "settings": {"micro_batch": 2}}), hardware=cpu(),
                        measure_speed=False)  # sizes only: a GRPO warm-up generates for every prompt
    s = plan.settings
    assert (s["micro_batch"], s["gradient_accumulation"], s["num_generations"]) == (2, 8, 4)
    assert recipe_config("rlvr", s).num_generations == 4  # what the worker will train with
    assert "num_generations = 4: completions per prompt that GRPO compares" in plan.explain()

    fitted = plan_finetune(ws, JobSpec.parse({"model": model, "table": "sums", "technique": "rlvr",
                                              "settings": {"micro_batch": 2, "gradient_accumulation": 1}}),
                           hardware=cpu(), measure_speed=False)
    assert (fitted.settings["num_generations"], fitted.settings["gradient_accumulation"]) == (2, 1)
    with pytest.raises(UserError, match=r"use grad_accum=2 \(2 × 2 = 4\), or num_generations=2 "
                                        r"\(`grad_accum` is `gradient_accumulation` in a job's settings\)"):
        resolve_settings({"micro_batch": 2, "gradient_accumulation": 1, "num_generations": 4}, "rlvr")

"""The recipes, for real: 4 optimizer steps each on a tiny model, with data prepared from a real DuckDB workspace
(the demo company), and the judge of RLAIF answered by a local OpenAI-compatible server. Losses stay finite and the
trained weights (or LoRA weights) change. RLVR with weighted rewards on GSM8K trains as a job on two ranks
(test_training_grpo_distributed.py)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from core.errors import UserError
from catalog.importers import import_paths
from core.workspace import Workspace
from runtimes.training.datasets.preparation import DatasetSpec, prepare_dataset
from runtimes.training.recipes import RECIPES, parse_config, recipe
from tests.scripted_llm import ScriptedLLM, say

pytestmark = pytest.mark.slow

STEPS = 4


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from catalog.workspace_setup import init_workspace

    ws = Workspace(tmp_path_factory.mktemp("demo") / "ws")
    init_workspace(ws, demo=True, scale=0.05)
    chats = ws.root / "chats.jsonl"
    chats.write_text("".join(json.dumps({"messages": [
        {"role": "system", "content": "Answer briefly."}, {"role": "user", "content": f"Where is order {i}?"},
        {"role": "assistant", "content": f"Order {i} ships on day {i % 5 + 1}."}]}) + "\n" for i in range(16)))
    import_paths(ws, [chats])
    return ws


@pytest.fixture(scope="module")
def tiny(demo, tmp_path_factory):
    """A tiny Qwen 3 whose tokenizer learned the demo's ticket text."""
    from runtimes.models.sources import resolve_model
    from runtimes.training.tiny_models import build_tiny_model, demo_texts

    path = build_tiny_model("qwen3", tmp_path_factory.mktemp("models") / "tiny-qwen3",
                            demo_texts(demo, limit=400) + ["Order 3 ships on day 4.", "#### 12"])
    return resolve_model(str(path))


def _train(technique: str, knobs: dict, source, prepared, out: Path):
    config = parse_config(technique, {"max_steps": STEPS, "logging_steps": 1, "save_steps": 100, **knobs})
    trainer = recipe(technique).build_trainer(config, source, prepared, out, [])
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if not p.requires_grad}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    changed = [n for n, p in before.items() if not (after[n].detach() == p).all()]
    frozen_changed = [n for n, p in frozen.items() if not (after[n].detach() == p).all()]
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert trainer.state.global_step == STEPS
    assert losses and all(math.isfinite(x) for x in losses), losses
    return trainer, changed, frozen_changed, losses


def test_sft_lora_on_conversations_learns_only_assistant_turns(demo, tiny, tmp_path):
    prepared = prepare_dataset(demo, DatasetSpec(table="chats", technique="sft", eval_fraction=0))
    trainer, changed, frozen_changed, losses = _train(
        "sft", {"micro_batch": 4, "max_length": 64, "learning_rate": 5e-3}, tiny, prepared, tmp_path / "sft")
    assert trainer.args.assistant_only_loss and changed and all("lora_" in n for n in changed)
    assert not frozen_changed  # the base stays as it was: only the adapter learns
    targets = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in changed}
    assert targets == set(tiny.family.lora_target_modules())
    # The loss covers the assistant's reply and its end token, nothing of the system or user turns.
    batch = next(iter(trainer.get_train_dataloader()))
    tok = trainer.processing_class
    learned = tok.decode([t for t, lab in zip(batch["input_ids"][0], batch["labels"][0]) if lab != -100])
    assert learned.startswith("Order ") and "ships on day" in learned and "Where is" not in learned
    assert "Answer briefly" not in learned


def test_sft_full_on_prompt_completion_from_the_demo_tickets(demo, tiny, tmp_path):
    sql = ("SELECT t.body AS prompt, r.body AS reply FROM support_tickets t JOIN ticket_replies r "
           "ON r.ticket_id = t.ticket_id WHERE r.quality_score >= 4 LIMIT 24")
    prepared = prepare_dataset(demo, DatasetSpec(sql=sql, technique="sft"))
    _, changed, _, losses = _train("sft", {"method": "full", "micro_batch": 2, "max_length": 96,
                                           "learning_rate": 1e-3}, tiny, prepared, tmp_path / "sft-full")
    assert "model.embed_tokens.weight" in changed and any("q_proj" in n for n in changed)
    assert 3.0 < losses[0] < 9.0  # near ln(vocabulary) for random weights


def test_dpo_lora_on_demo_preferences(demo, tiny, tmp_path):
    prepared = prepare_dataset(demo, DatasetSpec(table="reply_preferences", technique="dpo"))
    trainer, changed, frozen_changed, losses = _train(
        "dpo", {"micro_batch": 2, "max_length": 128, "beta": 0.2, "learning_rate": 5e-3}, tiny, prepared,
        tmp_path / "dpo")
    assert trainer.args.beta == 0.2 and changed and not frozen_changed
    assert abs(losses[0] - math.log(2)) < 0.02  # the policy starts equal to its reference (the bare base)


def test_rlaif_calls_the_judge_for_real_and_skips_a_failed_score(demo, tiny, tmp_path):
    prepared = prepare_dataset(demo, DatasetSpec(table="reply_preferences", technique="rlaif", eval_fraction=0))

    def grade(body: dict) -> object:
        text = body["messages"][-1]["content"]
        reply = text.split("## The assistant's reply", 1)[1].split("##", 1)[0]
        return say(f"Reasoning: brief.\nScore: {len(reply.strip()) % 11}")

    script = [say("I would rather not grade this.")] + [grade] * 200
    with ScriptedLLM(script) as llm:
        config = {"micro_batch": 4, "num_generations": 4, "max_completion_length": 12, "learning_rate": 5e-3,
                  "judge_model": "openai/judge", "judge_api_base": llm.url, "judge_retries": 0,
                  "judge_requests_per_second": 1000, "rubric": "helpfulness"}
        trainer, changed, _, _ = _train("rlaif", config, tiny, prepared, tmp_path / "rlaif")
    judge = trainer.lathe_judge
    assert changed and judge.calls == len(llm.requests) >= 8
    assert "## The conversation so far" in llm.prompt_text(1) and "Score: N" in llm.prompt_text(1)
    assert [f["reason"] for f in judge.failures] == ["the judge's reply has no score from 0 to 10"]
    recorded = (tmp_path / "rlaif" / "judge" / "failures.jsonl").read_text().splitlines()
    assert len(recorded) == 1 and "rather not grade" in json.loads(recorded[0])["reply"]
    logged = [e["rewards/judge_helpfulness/mean"] for e in trainer.state.log_history
              if "rewards/judge_helpfulness/mean" in e]
    assert logged and all(math.isfinite(x) and 0 <= x <= 1 for x in logged)


def test_configs_explain_every_knob_and_refuse_bad_ones(tiny, demo, tmp_path):
    for technique in RECIPES:
        knobs = recipe(technique).Config.knobs()
        assert all(k["help"] for k in knobs.values()), technique
        assert {"learning_rate", "max_steps", "micro_batch", "grad_accum", "method", "lora_rank",
                "precision", "gradient_checkpointing", "seed", "save_steps", "logging_steps"} <= set(knobs)
    assert recipe("dpo").Config.knobs()["beta"]["default"] == parse_config("dpo", {}).beta  # what a run gets
    assert {"num_generations", "max_completion_length", "rewards"} <= set(recipe("rlvr").Config.knobs())
    assert {"judge_model", "rubric"} <= set(recipe("rlaif").Config.knobs())
    with pytest.raises(UserError, match=r"no technique `ppo`"):
        recipe("ppo")
    with pytest.raises(UserError, match=r"SftRecipeConfig: `lora_rnak`: Extra inputs are not permitted"):
        parse_config("sft", {"lora_rnak": 8})
    with pytest.raises(UserError, match=r"must be a multiple of num_generations"):
        parse_config("rlvr", {"micro_batch": 6, "num_generations": 4})
    with pytest.raises(UserError, match=r"rewards.0.name"):
        parse_config("rlvr", {"rewards": [{"name": "vibes"}]})
    with pytest.raises(UserError, match="judge_model"):
        parse_config("rlaif", {})

    prepared = prepare_dataset(demo, DatasetSpec(table="reply_preferences", technique="dpo", eval_fraction=0))
    with pytest.raises(UserError, match=r"the SFT recipe needs a dataset prepared for `sft`.*prepared for `dpo`"):
        recipe("sft").build_trainer(parse_config("sft", {}), tiny, prepared, tmp_path / "x", [])
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="QLoRA .* needs a CUDA GPU; this machine has none: use `method: lora`"):
            recipe("dpo").build_trainer(parse_config("dpo", {"method": "qlora"}), tiny, prepared, tmp_path / "q", [])
        with pytest.raises(UserError, match="precision `bf16` needs a GPU"):
            recipe("dpo").build_trainer(parse_config("dpo", {"precision": "bf16"}), tiny, prepared, tmp_path / "b", [])

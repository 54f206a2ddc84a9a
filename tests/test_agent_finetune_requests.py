"""What a person says in the chat reaches the fine-tuning plan, or is refused with the reason: settings in words
("2 epochs, lr 1e-4"), model families as people say them, a table that does not exist, a column mapping, and the
judge of RLAIF (a running local endpoint offered). Through `agent.Session` on a real demo workspace; no job runs."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.planners.finetune_intents import stated_mapping, stated_settings
from agent.session import Session
from core.workspace import Workspace
from runtimes.jobs.store import JobStore
from tests.agent_events import collect, of, text_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Workspace:
    from catalog.workspace_setup import init_workspace
    from runtimes.training.tiny_models import install_demo_models

    ws = Workspace(Path(tmp_path_factory.mktemp("finetune-requests")) / "ws")
    init_workspace(ws, demo=True, scale=0.1)
    install_demo_models(ws)
    return ws


@pytest.mark.parametrize("text, settings", [
    ("2 epochs, lr 1e-4", {"epochs": 2, "learning_rate": 1e-4}),
    ("with a learning rate of 3e-5 for 3 epochs", {"learning_rate": 3e-5, "epochs": 3}),
    ("epochs=2 lr=0.0001", {"epochs": 2, "learning_rate": 1e-4}),
    ("max_steps=20, batch size 4, seed 7", {"max_steps": 20, "micro_batch": 4, "seed": 7}),
    ("train for 50 steps with lora rank 16", {"max_steps": 50, "lora_rank": 16}),
    ("fine-tune tiny-qwen3 on reply_preferences", {}),
])
def test_settings_stated_in_words(text, settings):
    assert stated_settings(text) == settings


def test_column_mapping_in_words():
    assert stated_mapping("use column question as the prompt") == {"prompt": "question"}
    assert stated_mapping("Use the column `body` as prompt and use column reply as the answer") == {
        "prompt": "body", "completion": "reply"}
    assert stated_mapping("use the demo data") == {}


def test_stated_settings_appear_in_the_plan_with_the_model_family_it_chose(demo):
    s = Session(demo, "settings")
    events = collect(s.send("fine-tune llama 3 with dpo on reply_preferences, 2 epochs, lr 1e-4, max_steps=2"))
    text = text_of(events)
    assert "model `tiny-llama` (the local llama3 model)" in text
    assert "learning_rate = 1e-04 [yours]" in text and "epochs = 2 [yours]" in text
    step = of(events, "approval_needed")[0].plan.steps[0]
    assert step.args["model"] == "tiny-llama"
    assert step.args["settings"] == {"epochs": 2, "learning_rate": 1e-4, "max_steps": 2}
    qwen = text_of(collect(Session(demo, "qwen").send("fine-tune qwen with dpo on reply_preferences")))
    assert "model `tiny-qwen3` (the local qwen model)" in qwen and "Model: tiny-qwen3" in qwen
    none = text_of(collect(Session(demo, "deepseek").send("fine-tune deepseek with dpo on reply_preferences")))
    assert "no local DeepSeek V2 model is in this workspace" in none and "Which base model?" in none
    bad = text_of(collect(Session(demo, "bad-lr").send("fine-tune tiny-llama with dpo on reply_preferences "
                                                       "lr 5")))
    assert "setting `learning_rate` = 5 is out of range: it takes strictly between 0 and 1" in bad
    assert JobStore(demo).list() == []


def test_a_table_that_does_not_exist_is_said_to_not_exist(demo):
    text = text_of(collect(Session(demo, "missing").send("fine-tune tiny-qwen3 on customer_feedback_2019")))
    assert text.startswith("There is no table `customer_feedback_2019`")
    assert "Which table should it learn from?" not in text
    close = text_of(collect(Session(demo, "close").send("fine-tune tiny-qwen3 on reply_preference")))
    assert "there is no table `reply_preference`; did you mean `reply_preferences`?" in close.lower()


def test_rlaif_asks_for_a_judge_and_offers_a_running_endpoint(demo):
    from runtimes.serving.endpoints.store import EndpointStore

    s = Session(demo, "judge")
    asked = text_of(collect(s.send("fine-tune tiny-qwen3 with rlaif on reply_preferences max_steps=2")))
    assert "Which judge should score the replies?" in asked and "No Lathe endpoint is running here" in asked
    store = EndpointStore(demo)
    store.create(name="grader", models=[{"ref": "tiny-qwen3", "id": "tiny-qwen3"}], mode="dedicated",
                 idle_timeout=0, host="127.0.0.1", fixed_port=None, key_hash="x", local_key_hash=None, engine={},
                 capture_rate=0.0)
    from runtimes.serving.endpoints.deploy import endpoint_dir

    endpoint_dir(demo, "grader").mkdir(parents=True, exist_ok=True)
    (endpoint_dir(demo, "grader") / "local.key").write_text("sk-local\n")
    store.update("grader", port=9, status="running")  # nothing listens on port 9: the plan's probe says so
    offered = text_of(collect(Session(demo, "judge2").send(
        "fine-tune tiny-qwen3 with rlaif on reply_preferences max_steps=2")))
    assert "1. `lathe/grader`: an endpoint running on this machine" in offered
    chose = text_of(collect(s.send("1")))
    assert "judge_model=lathe/grader" in chose
    assert "the judge `lathe/grader` (endpoint `grader` at http://127.0.0.1:9/v1) does not answer" in chose

"""Fine-tuning from the chat through `agent.Session` on a real demo workspace: the guided turns (one question
each, answers by number or name), the all-at-once form, approval stopping `start_finetune`, a real tiny job
started after approval and followed with `job_status`, a rejected plan starting nothing, and the LLM path."""
from __future__ import annotations

import pytest

from agent.session import Session
from core.workspace import Workspace
from runtimes.jobs import lifecycle as launcher
from runtimes.jobs.store import JobStore
from tests.agent_events import collect, done, of, text_of
from tests.scripted_llm import call
from tests.waiting import wait_for_job

pytestmark = pytest.mark.slow

GOAL = "fine-tune qwen on support tickets so it answers like our best agents"


@pytest.fixture(scope="module")
def demo(module_demo: Workspace) -> Workspace:
    return module_demo


def test_the_guided_turns_ask_one_question_each_and_a_rejected_plan_starts_nothing(demo):
    s = Session(demo, "guided")
    first = collect(s.send(GOAL))
    text = text_of(first)
    assert "Which table should it learn from?" in text and "Which technique" not in text
    assert "1. `support_tickets+ticket_replies` (support_tickets joined with ticket_replies" in text  # the best replies
    assert "`reply_preferences` (100 rows, preference: prompt ← prompt, chosen ← chosen" in text
    assert "→ dpo: preference pairs" in text
    assert of(first, "approval_needed") == [] and done(first).status == "answered"

    second = text_of(collect(s.send("reply_preferences")))
    assert "Noted: table `reply_preferences`" in second and "Which technique?" in second
    assert "1. dpo (recommended)" in second and "Which base model" not in second

    third = collect(s.send("dpo"))  # "qwen" in the goal chose the local Qwen model: no question about the model
    assert "model `tiny-qwen3` (the local qwen model)" in text
    assert "The plan:" in text_of(third) and "Model: tiny-qwen3" in text_of(third)
    assert of(third, "approval_needed")[0].plan.steps[0].args["model"] == "tiny-qwen3"
    assert done(collect(s.reject("another model"))).status == "rejected"

    s = Session(demo, "guided-model")
    asked = text_of(collect(s.send("finetune a model on reply_preferences with dpo")))
    assert "Which base model?" in asked and "for trying the pipeline, not for quality" in asked
    fourth = collect(s.send("tiny-llama max_steps=2"))
    assert "The plan:" in text_of(fourth) and "tiny-llama" in text_of(fourth)
    waiting = of(fourth, "approval_needed")[0]
    step = waiting.plan.steps[0]
    assert (step.tool, step.risk.value) == ("start_finetune", "compute") and waiting.needs_approval == ["s1"]
    assert step.args == {"model": "tiny-llama", "table": "reply_preferences", "sql": None, "technique": "dpo",
                         "settings": {"max_steps": 2}, "name": None, "eval_fraction": 0.1, "mapping": None}
    assert step.estimated_cost  # the estimate travels with the approval request
    rejected = collect(s.reject("not now"))
    assert done(rejected).status == "rejected"
    assert JobStore(demo).list() == []


def test_answers_by_name_a_bad_number_and_a_table_that_fits_no_format(demo):
    s = Session(demo, "names")
    collect(s.send("I want to finetune a model on our data"))
    bad = text_of(collect(s.send("7")))
    assert "there is no option 7: answer with 1 to 1" in bad
    wrong = text_of(collect(s.send("use customers")))
    assert "customers" in wrong and "Which table should it learn from?" in wrong
    ok = text_of(collect(s.send("use reply_preferences")))  # parses as SQL `USE` too: the flow reads it first
    assert "Noted: table `reply_preferences`" in ok and "Which technique?" in ok


def test_all_at_once_waits_for_approval_then_runs_a_real_job_reported_by_job_status(demo):
    s = Session(demo, "at-once")
    events = collect(s.send("fine-tune tiny-qwen3 with dpo on reply_preferences max_steps=2 max_length=64"))
    assert "Which" not in text_of(events)  # no questions: everything was given
    assert of(events, "step_started") == [] and done(events).status == "waiting_approval"
    assert JobStore(demo).list() == []  # approval stops the compute step
    ran = collect(s.approve())
    finished = of(ran, "step_finished")[0]
    assert finished.ok and finished.tool == "start_finetune" and "started job" in finished.text
    job_id = finished.text.split()[2]
    job = wait_for_job(demo, job_id)
    assert job.status == "succeeded", job.error
    assert job.spec["settings"] == {"max_steps": 2, "max_length": 64}

    status = collect(s.send("how is the job doing?"))
    said = of(status, "step_finished")[0].text
    assert f"job {job_id} is succeeded" in said and "step 2 of 2" in said
    assert "registered tiny-qwen3-dpo/1 (pending approval)" in said and "report:" in said
    fields = dict(of(status, "table")[0].table.rows)
    assert fields["status"] == "succeeded" and fields["step"] == 2


def test_the_llm_path_selects_the_finetuning_tools(demo, llm):
    llm.push(call("propose_finetune", goal=GOAL),
             call("start_finetune", model="tiny-qwen3", table="reply_preferences", technique="dpo",
                  settings={"max_steps": 1}))
    s = Session(demo, "llm")
    first = collect(s.send(GOAL))
    assert of(first, "step_finished")[0].tool == "propose_finetune"
    assert "reply_preferences" in of(first, "step_finished")[0].text
    system = llm.messages(0)[0]["content"]
    assert "preference pairs → DPO" in system and "`start_finetune`, which waits for approval" in system
    assert {"propose_finetune", "start_finetune", "job_status"} <= {t["function"]["name"] for t in llm.requests[0]["tools"]}
    second = collect(s.send("use tiny-qwen3 with dpo and go"))
    assert of(second, "approval_needed")[0].plan.steps[0].tool == "start_finetune"
    before = len(JobStore(demo).list())
    assert done(collect(s.reject("just looking"))).status == "rejected"
    assert len(JobStore(demo).list()) == before

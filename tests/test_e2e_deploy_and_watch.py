"""The whole of deploy-and-watch from the chat, on a real demo workspace: a tiny model fine-tuned and approved in
the conversation is deployed as a serverless endpoint (a real process on loopback), called with the official
`openai` client, run as a batch over a table, asked asynchronously through the queue (a worker starts for it), and after its
traffic shifts a monitor created in the chat raises a drift alert that the chat is given."""
from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pytest

from agent.session import Session
from core.workspace import Workspace
from tests.agent_events import collect, done, of, text_of
from tests.small_workspace import count_rows
from tests.waiting import files_state, wait_for, wait_for_job

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(module_demo: Workspace, tmp_path_factory) -> Workspace:
    from catalog.importers import import_paths

    questions = tmp_path_factory.mktemp("data") / "customer_questions.csv"
    questions.write_text("id,prompt\n" + "".join(f"{i},Where is my order {i}?\n" for i in range(6)), encoding="utf-8")
    import_paths(module_demo, [questions])
    return module_demo


def _approved(s: Session, request: str) -> list:
    """Send, check the plan waits for approval, approve it; the approved run's events."""
    asked = collect(s.send(request))
    assert done(asked).status == "waiting_approval", text_of(asked)
    events = collect(s.approve())
    finished = of(events, "step_finished")
    assert finished and all(f.ok for f in finished), [(f.tool, f.error) for f in finished]
    return events


def test_a_user_deploys_calls_batches_queues_and_sees_a_drift_alert_from_the_chat(demo):
    import openai

    from runtimes.monitoring.traffic import TrafficRecord, record
    from runtimes.serving.endpoints.deploy import list_endpoints, stop

    s = Session(demo, "deploy-and-watch")
    try:
        # Fine-tune, follow to the end, approve the version: all in the conversation.
        started = of(_approved(s, "fine-tune tiny-qwen3 with sft on reply_preferences max_steps=2 max_length=64"),
                     "step_finished")[0]
        wait_for_job(demo, started.job_id)
        last = list(s.follow_job(started.job_id, interval=0.5, timeout=0))[-1]
        assert last.status == "succeeded" and last.model_version == "tiny-qwen3-sft/1", last.text
        answer = text_of(_approved(s, "approve tiny-qwen3-sft version 1"))
        assert "`tiny-qwen3-sft` version 1 is approved" in answer

        # Deploy as serverless; the key is shown once, in the answer.
        events = _approved(s, "deploy the approved tiny-qwen3-sft model as serverless")
        deployed = [e for e in of(events, "step_finished") if e.tool == "deploy_model"][0]
        key = deployed.reveal["api_key"]
        assert key not in deployed.text and key not in json.dumps(s.state().model_dump(mode="json"))  # kept redacted
        (endpoint,) = list_endpoints(demo)
        assert endpoint.mode == "serverless" and endpoint.status in ("running", "idle")

        client = openai.OpenAI(base_url=endpoint.url, api_key=key, max_retries=0)
        reply = client.chat.completions.create(model="tiny-qwen3-sft@1", max_tokens=6, temperature=0,
                                               messages=[{"role": "user", "content": "Where is my order 3?"}])
        assert reply.choices[0].message.role == "assistant" and reply.usage.completion_tokens >= 1
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=endpoint.url, api_key="wrong", max_retries=0).models.list()

        # A batch over a catalog table writes a predictions table.
        batch = _approved(s, "run tiny-qwen3-sft as a batch over customer_questions")
        assert "customer_questions_predictions" in text_of(batch)
        answers: list[str] = []

        def batch_done() -> bool:
            answers.append(text_of(collect(s.send("how is the batch doing?"))))
            return " is succeeded" in answers[-1] or " is failed" in answers[-1]

        wait_for(batch_done, progress=lambda: (answers[-1:], files_state(demo.root / "runs")), poll_s=1,
                 what="the batch to end, followed from the chat")
        assert " is succeeded (`tiny-qwen3-sft@1` over `customer_questions`), 6 of 6 rows done" in answers[-1], answers[-1]
        assert "predictions in table `customer_questions_predictions`" in answers[-1]
        assert count_rows(demo, "customer_questions_predictions") == 6

        # An async request: queued at once, answered by a worker, read back from the chat.
        queued = of(_approved(s, 'submit an async request to tiny-qwen3-sft: "where is my refund?"'),
                    "step_finished")[0]
        request_id = queued.text.split("queued request ")[1].split()[0]
        assert "one started" in queued.text  # no worker was running: the queue started one for it
        statuses: list[str] = []

        def answered() -> bool:
            statuses.append(text_of(collect(s.send(f"what is the status of async request {request_id}?"))))
            return f"request {request_id} for `tiny-qwen3-sft@1` is done" in statuses[-1]

        wait_for(answered, progress=lambda: (statuses[-1:], files_state(demo.root / "runs" / "async")), poll_s=1,
                 what=f"async request {request_id} to be answered")
        assert f"request {request_id} for `tiny-qwen3-sft@1` is done: " in statuses[-1], statuses[-1]

        # A monitor from the chat; the last hour's traffic was short replies, now they are long.
        created = text_of(_approved(s, f"alert me when response length drifts on the {endpoint.name} endpoint"))
        assert "monitor" in created and "response_length" in created.replace(" ", "_")
        hour_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=90)
        record(demo, [TrafficRecord(request_id=uuid.uuid4().hex, endpoint=endpoint.name, model="tiny-qwen3-sft@1",
                                    ts=hour_ago + dt.timedelta(seconds=i), route="chat", prompt=f"user: order {i}?",
                                    response="Shipped." if i % 2 else "On its way.", prompt_tokens=6,
                                    completion_tokens=3, latency_ms=40.0) for i in range(60)])
        since = time.time()
        for i in range(30):
            client.chat.completions.create(model="tiny-qwen3-sft@1", max_tokens=40, temperature=0,
                                           messages=[{"role": "user", "content": f"Tell me all about order {i}."}])
        alerts = s.new_alerts(since)  # what a front-end pushes into the chat; due monitors run first
        assert [a.endpoint for a in alerts] == [endpoint.name] and "response_length" in alerts[0].message
        listed = collect(s.send("any alerts today?"))
        assert "1 alert in the last 1d" in text_of(listed)
        (table,) = of(listed, "table")
        assert [row[3] for row in table.table.rows] == ["response_length"]  # the feature column

        how = text_of(collect(s.send(f"how is the {endpoint.name} endpoint doing this week?")))
        assert "request" in how
    finally:
        for e in list_endpoints(demo):
            stop(demo, e.name)
        s.close()

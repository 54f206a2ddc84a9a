"""The real Slack bot (slack-bolt, HTTP mode) against a local server that speaks Slack's Web API: a question
answered in its thread, a plan approved by a linked approver and refused to a viewer, forged and stale
signatures refused with nothing run, a replayed event handled once, large results sent as CSV files, and a job
started from Slack followed in one message edited until its outcome."""
from __future__ import annotations

import json
import time

import pytest

from agent.channels.slack import SlackBot
from catalog.warehouse import connect_reader
from core.users import UserStore
from tests.scripted_llm import call
from tests.serving_http import serve
from tests.slack_api import SIGNING_SECRET, FakeSlack, action_body, event_body, signed_post
from tests.small_workspace import tables_in

EMEA_SQL = "SELECT * FROM customers WHERE region = 'EMEA'"
ENV = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SIGNING_SECRET}
TICKETS = 24


@pytest.fixture
def slack(small_ws, llm):
    store = UserStore(small_ws)
    for name, roles, slack_id in (("ana", ["analyst"], "U_ANA"), ("carol", ["approver"], "U_CAROL"),
                                  ("vic", ["viewer"], "U_VIC")):
        store.add(name, roles, "a long password")
        store.link_slack(name, slack_id)
    with FakeSlack() as api:
        small_ws.settings_path.write_text(small_ws.settings_path.read_text() + f'\n[slack]\napi_url = "{api.url}"\n')
        from core.workspace import Workspace

        bot = SlackBot(Workspace(small_ws.root), socket_mode=False, env=ENV)
        with serve(bot.http_app()) as base:
            yield api, base + "/slack/events", llm


def _plan_buttons(api) -> tuple[list, dict[str, str]]:
    """The plan message posted for approval: its blocks, and its buttons (action id → value)."""
    plan = api.wait_for("chat.postMessage", where=lambda p: p.get("text") == "A plan waits for approval")[0]
    blocks = json.loads(plan["blocks"]) if isinstance(plan["blocks"], str) else plan["blocks"]
    return blocks, {e["action_id"]: e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]}


def _mention(url, user, text, ts, event_id, **headers):
    event = {"type": "app_mention", "user": user, "text": f"<@UBOT> {text}", "channel": "C1", "ts": ts}
    return signed_post(url, event_body(event, event_id), "application/json", headers=headers)


def test_a_question_is_answered_in_its_thread(slack):
    api, url, llm = slack
    llm.push(call("run_sql", say="Counting the customers.", sql="SELECT count(*) AS customers FROM customers"))
    assert _mention(url, "U_ANA", "how many customers do we have?", "100.1", "Ev1").status_code == 200
    posted = api.wait_for("chat.postMessage", where=lambda p: p.get("thread_ts") == "100.1")[0]
    blocks = json.dumps(json.loads(posted["blocks"]) if isinstance(posted["blocks"], str) else posted["blocks"])
    assert "Counting the customers." in posted["text"] and "customers" in blocks and "6" in blocks


def test_a_plan_waits_a_viewer_is_refused_and_a_linked_approver_approves(slack, small_ws):
    api, url, llm = slack
    llm.push(call("create_derived_table", say="I will save the EMEA customers as a table.", name="emea_customers",
                  select_sql=EMEA_SQL, description="EMEA customers"))
    _mention(url, "U_ANA", "save the EMEA customers as a table", "200.1", "Ev2")
    blocks, buttons = _plan_buttons(api)
    assert set(buttons) == {"lathe_approve", "lathe_reject", "lathe_edit"}
    assert "SELECT * FROM customers WHERE region = 'EMEA'" in json.dumps(blocks)

    form = "application/x-www-form-urlencoded"
    signed_post(url, action_body("lathe_approve", buttons["lathe_approve"], "U_VIC", "C1", "9.9"), form)
    refused = api.wait_for("chat.postEphemeral")[0]
    assert refused["user"] == "U_VIC" and "may not approve" in refused["text"]
    assert "emea_customers" not in tables_in(small_ws)

    signed_post(url, action_body("lathe_approve", buttons["lathe_approve"], "U_CAROL", "C1", "9.9"), form)
    updated = api.wait_for("chat.update")[0]
    assert updated["ts"] == "9.9" and "Approved by <@U_CAROL>" in json.dumps(updated["blocks"])
    assert "lathe_approve" not in json.dumps(updated["blocks"])
    api.wait_for("chat.postMessage", where=lambda p: "created table" in json.dumps(p.get("blocks", "")))
    assert "emea_customers" in tables_in(small_ws)


def test_an_unlinked_slack_user_is_a_viewer(slack, small_ws):
    api, url, llm = slack
    llm.push(call("create_derived_table", say="I will save it.", name="emea_customers", select_sql=EMEA_SQL,
                  description="EMEA customers"))
    _mention(url, "U_STRANGER", "save the EMEA customers as a table", "300.1", "Ev3")
    answer = api.wait_for("chat.postMessage", where=lambda p: p.get("thread_ts") == "300.1")[0]
    assert "is a viewer" in json.dumps(answer["blocks"]) and "carol" in json.dumps(answer["blocks"])
    assert all(p.get("text") != "A plan waits for approval" for p in api.of("chat.postMessage"))


@pytest.mark.parametrize("how", ["forged", "stale", "unsigned"])
def test_requests_without_a_valid_signature_are_refused_and_run_nothing(slack, how):
    api, url, llm = slack
    body = event_body({"type": "app_mention", "user": "U_CAROL", "text": "<@UBOT> hi", "channel": "C1",
                       "ts": "400.1"}, "Ev4")
    if how == "forged":
        r = signed_post(url, body, "application/json", secret="not-the-secret")
    elif how == "stale":
        r = signed_post(url, body, "application/json", timestamp=int(time.time()) - 600)
    else:
        import httpx

        r = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    time.sleep(1.0)  # anything it would have started has had time to call Slack
    assert [m for m, _ in api.calls if m != "auth.test"] == []


def test_a_replayed_event_is_handled_once(slack):
    api, url, llm = slack
    llm.push(call("run_sql", say="Counting.", sql="SELECT count(*) AS n FROM customers"))
    _mention(url, "U_ANA", "how many customers?", "500.1", "Ev5")
    api.wait_for("chat.postMessage", where=lambda p: p.get("thread_ts") == "500.1")
    _mention(url, "U_ANA", "how many customers?", "500.1", "Ev5", **{"X-Slack-Retry-Num": "1",
                                                                        "X-Slack-Retry-Reason": "http_timeout"})
    llm.push(call("run_sql", say="Again.", sql="SELECT 1 AS one"))
    _mention(url, "U_ANA", "and one more", "600.1", "Ev6")
    api.wait_for("chat.postMessage", where=lambda p: p.get("thread_ts") == "600.1")
    assert len([p for p in api.of("chat.postMessage") if p.get("thread_ts") == "500.1"]) == 1


def test_a_large_result_is_sent_as_a_csv_file(slack):
    api, url, llm = slack
    llm.push(call("run_sql", say="All the numbers.", sql="SELECT range AS n FROM range(40)"))
    _mention(url, "U_ANA", "list 40 numbers", "700.1", "Ev7")
    api.wait_for("files.completeUploadExternal")
    (content,) = api.uploads.values()
    assert content.decode().splitlines()[:3] == ["n", "0", "1"] and len(content.decode().splitlines()) == 41


def test_socket_mode_answers_a_mention_and_acknowledges_it(small_ws, llm):
    from tests.slack_api import SocketMode

    UserStore(small_ws).add("ana", ["analyst"], "a long password")
    UserStore(small_ws).link_slack("ana", "U_ANA")
    with FakeSlack() as api:
        api.socket = SocketMode()
        small_ws.settings_path.write_text(small_ws.settings_path.read_text() + f'\n[slack]\napi_url = "{api.url}"\n')
        from core.workspace import Workspace
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        bot = SlackBot(Workspace(small_ws.root), socket_mode=True,
                       env={"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_APP_TOKEN": "xapp-test"})
        handler = SocketModeHandler(bot.app, bot.app_token)
        handler.connect()
        try:
            llm.push(call("run_sql", say="Counting.", sql="SELECT count(*) AS n FROM customers"))
            event = {"type": "app_mention", "user": "U_ANA", "text": "<@UBOT> how many customers?", "channel": "C9",
                     "ts": "800.1"}
            api.socket.send_event(event_body(event, "Ev8"), "env-1")
            answer = api.wait_for("chat.postMessage", where=lambda p: p.get("thread_ts") == "800.1")[0]
            assert "Counting." in answer["text"]
            assert api.socket.acks == ["env-1"]
        finally:
            handler.close()
            api.socket.close()


def test_missing_tokens_are_named(small_ws):
    from core.errors import UserError

    with pytest.raises(UserError, match="SLACK_APP_TOKEN"):
        SlackBot(small_ws, socket_mode=True, env={"SLACK_BOT_TOKEN": "xoxb-test"})
    with pytest.raises(UserError, match="SLACK_SIGNING_SECRET"):
        SlackBot(small_ws, socket_mode=False, env={"SLACK_BOT_TOKEN": "xoxb-test"})


def test_monitor_alerts_go_to_the_alerts_channel_once(small_ws):
    from runtimes.monitoring.monitor_store import Alert, MonitorStore

    with FakeSlack() as api:
        small_ws.settings_path.write_text(small_ws.settings_path.read_text()
                                          + f'\n[slack]\napi_url = "{api.url}"\nalerts_channel = "C_ALERTS"\n')
        from core.workspace import Workspace

        ws = Workspace(small_ws.root)
        bot = SlackBot(ws, socket_mode=False, env=ENV)
        assert bot.deliver_alerts() == 0  # nothing raised since the bot began

        def alert(i: int) -> Alert:
            return Alert(id=f"al{i}", monitor_id="m1", run_id="r1", created_at=time.time(), endpoint="support-bot",
                         rule="drift", feature="prompt_length", test="psi", statistic=0.4, threshold=0.2,
                         message=f"prompt length drifted ({i})")

        store = MonitorStore(ws)
        with store._db(immediate=True) as db:  # alerts as a monitor run records them
            db.executemany("INSERT INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                           [tuple(alert(i).to_json().values()) for i in (1, 2)])
        assert bot.deliver_alerts() == 2
        assert SlackBot(ws, socket_mode=False, env=ENV).deliver_alerts() == 0  # a restarted bot posts none again
        posted = [p for p in api.of("chat.postMessage") if p["channel"] == "C_ALERTS"]
        assert [p["text"] for p in posted] == [
            ":rotating_light: Alert on `support-bot` (drift): prompt length drifted (1)",
            ":rotating_light: Alert on `support-bot` (drift): prompt length drifted (2)"]


def test_the_slash_command_asks_in_a_new_thread(slack):
    import urllib.parse

    api, url, llm = slack
    llm.push(call("run_sql", say="Counting the customers.", sql="SELECT count(*) AS customers FROM customers"))
    body = urllib.parse.urlencode({"command": "/lathe", "text": "how many customers?", "user_id": "U_ANA",
                                   "channel_id": "C7", "team_id": "T1", "trigger_id": "t", "response_url": ""})
    assert signed_post(url, body.encode(), "application/x-www-form-urlencoded").status_code == 200
    asked = api.wait_for("chat.postMessage", where=lambda p: p.get("channel") == "C7" and "asked:" in p["text"])[0]
    assert asked["text"] == "<@U_ANA> asked: how many customers?"
    answer = api.wait_for("chat.postMessage", where=lambda p: p.get("thread_ts") is not None
                          and p.get("channel") == "C7")[0]
    assert "Counting the customers." in answer["text"]


def test_edit_opens_a_modal_and_its_submission_edits_the_waiting_plan(slack, small_ws):
    import urllib.parse

    api, url, llm = slack
    llm.push(call("create_derived_table", say="I will save the EMEA customers as a table.", name="emea_customers",
                  select_sql=EMEA_SQL, description="EMEA customers"))
    _mention(url, "U_ANA", "save the EMEA customers as a table", "900.1", "Ev9")
    value = _plan_buttons(api)[1]["lathe_edit"]
    form = "application/x-www-form-urlencoded"
    signed_post(url, action_body("lathe_edit", value, "U_ANA", "C1", "9.1"), form)
    opened = api.wait_for("views.open")[0]
    view = json.loads(opened["view"]) if isinstance(opened["view"], str) else opened["view"]
    assert view["callback_id"] == "lathe_edit" and '"name": "emea_customers"' in view["blocks"][0]["element"]["initial_value"]
    submitted = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U_ANA"}, "api_app_id": "A1",
                 "view": {"id": "V1", "type": "modal", "callback_id": "lathe_edit", "private_metadata": view["private_metadata"],
                          "state": {"values": {"s1": {"args": {"type": "plain_text_input",
                                                               "value": '{"name": "emea_only"}'}}}}}}
    r = signed_post(url, urllib.parse.urlencode({"payload": json.dumps(submitted)}).encode(), form)
    assert r.status_code == 200
    again = api.wait_for("chat.postMessage", count=2, where=lambda p: p.get("text") == "A plan waits for approval")
    assert "emea_only" in json.dumps(again[-1]["blocks"])
    from agent.session import Session

    assert Session(small_ws, "slack-C1-900.1").pending().plan.steps[0].args["name"] == "emea_only"


def test_a_chart_is_drawn_as_a_png_with_a_series_per_category():
    from agent.channels.chart_images import chart_png
    from agent.events import ChartSpec
    from agent.state import TableData

    table = TableData(columns=["month", "region", "revenue"],
                      rows=[["2026-01", "EMEA", 10.0], ["2026-02", "EMEA", 12.5], ["2026-01", "NA", 7.0],
                            ["2026-02", "NA", None]], row_count=4)
    line = chart_png(ChartSpec(step_id="s1", kind="line", x="month", y=["revenue"], color="region"), table)
    bars = chart_png(ChartSpec(step_id="s1", kind="bar", x="region", y=["revenue"]), table)
    for png in (line, bars):
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
    assert line != bars


@pytest.fixture
def jobs_ws(tmp_path):
    """Tickets to predict on, prompt/completion rows to fine-tune on, and a tiny local base model (`tiny`)."""
    from catalog.importers import import_paths
    from core.workspace import Workspace
    from runtimes.training.tiny_models import build_tiny_model

    ws = Workspace(tmp_path / "ws")
    ws.create()
    tickets = [{"ticket_id": i, "body": f"Where is order {i}? It was due on day {i % 7}."} for i in range(TICKETS)]
    demos = [{"prompt": f"Where is order {i}?", "completion": f"Order {i} ships on day {i % 7}."} for i in range(40)]
    for name, rows in (("tickets", tickets), ("demos", demos)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_paths(ws, [tmp_path / "tickets.jsonl", tmp_path / "demos.jsonl"])
    build_tiny_model("qwen3", ws.root / "models" / "base" / "tiny",
                     [t["body"] for t in tickets] + [d["prompt"] + " " + d["completion"] for d in demos],
                     hidden=32, layers=1, heads=2, kv_heads=1, vocab_size=320)
    return ws


JOBS = {  # what the LLM asks for, and what the end of each kind says
    "batch": (call("run_batch", say="I will run tiny over the tickets.", model="tiny", table="tickets",
                   into="ticket_replies", max_new_tokens=2, micro_batch=2),
              f"succeeded: {TICKETS} of {TICKETS} rows"),
    "finetune": (call("start_finetune", say="I will fine-tune tiny on the demos.", model="tiny", table="demos",
                      technique="sft", eval_fraction=0.1, settings={"max_steps": 3, "micro_batch": 2, "max_length": 32}),
                 "succeeded"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(JOBS))
def test_a_job_started_from_slack_is_followed_in_one_message_to_its_outcome(jobs_ws, llm, kind):
    """A job approved in Slack: one progress message, edited (same ts) at each change until the job's outcome,
    then a fine-tune's evaluation report (a batch has none). Waits follow the job, and the follower's thread is
    waited out so that nothing it posts later is missed."""
    import threading

    from runtimes.jobs.store import JobStore
    from tests.waiting import until

    store = UserStore(jobs_ws)
    for name, roles, slack_id in (("ana", ["analyst"], "U_ANA"), ("carol", ["approver"], "U_CAROL")):
        store.add(name, roles, "a long password")
        store.link_slack(name, slack_id)
    asked, outcome = JOBS[kind]
    with FakeSlack() as api:
        jobs_ws.settings_path.write_text(jobs_ws.settings_path.read_text() + f'\n[slack]\napi_url = "{api.url}"\n')
        from core.workspace import Workspace

        bot = SlackBot(Workspace(jobs_ws.root), socket_mode=False, env=ENV)
        with serve(bot.http_app()) as base:
            url = base + "/slack/events"
            llm.push(asked)
            _mention(url, "U_ANA", f"start a {kind} job", "950.1", "Ev10")
            value = _plan_buttons(api)[1]["lathe_approve"]
            signed_post(url, action_body("lathe_approve", value, "U_CAROL", "C1", "9.5"),
                        "application/x-www-form-urlencoded")

            started = api.wait_for("chat.postMessage", where=lambda p: str(p.get("text", "")).startswith("Job `"))[0]
            job_id = started["text"].split("`")[1]
            ts = api.answer_to(started)["ts"]

            def ended() -> list:
                return [u for u in api.of("chat.update") if u.get("ts") == ts and outcome in u["text"]]

            until(ended, jobs_ws)
            follower = next((t for t in threading.enumerate() if t.name == f"slack-follow-{job_id}"), None)
            if follower is not None:
                until(lambda: not follower.is_alive(), jobs_ws)

    assert JobStore(jobs_ws).get(job_id).kind == kind
    texts = [u["text"] for u in api.of("chat.update") if u.get("ts") == ts]
    assert len(texts) >= 2 and len(set(texts)) == len(texts), texts  # each edit shows a change
    assert outcome not in texts[0] and texts[-1] == ended()[0]["text"] and job_id in texts[-1]
    after = [p for m, p in api.calls[next(i for i, (_, p) in enumerate(api.calls) if p is started) + 1:]
             if m == "chat.postMessage"]
    if kind == "batch":
        assert "ticket_replies" in texts[-1] and "ticket_replies" in tables_in(jobs_ws)
        assert after == []  # one message, edited in place; a batch's last line is its outcome
    else:
        (report,) = after
        assert report["thread_ts"] == "950.1" and f"Evaluation of job `{job_id}`" in report["text"]
        assert "tiny-sft/1" in report["text"] and "lathe models approve tiny-sft 1" in report["text"]

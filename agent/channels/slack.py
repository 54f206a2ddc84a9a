"""The Slack bot (slack-bolt): a mention, a DM or `/lathe` runs through the same `Session` as every front-end, one
Lathe thread per Slack thread; plans that wait are posted with Approve / Reject / Edit buttons, decided by the
Slack user's linked Lathe user (an unlinked one is a viewer), and the message is updated in place with who decided.

Socket Mode (no public URL) or HTTP (an events endpoint whose requests slack-bolt verifies by signature). Tokens
come from the environment variables that `[slack]` in lathe.toml names. Roles are enforced by the session and the
graph below this module; it only presents and asks.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from agent.channels import slack_blocks as kit
from agent.channels.edits import parse_step_edit
from agent.channels.job_views import progress_line, report_markdown
from agent.session import Session
from core.errors import UserError
from core.principal import Principal
from core.state_db import ensure_schema, transaction
from core.users import UserStore
from core.workspace import Workspace

log = logging.getLogger(__name__)
_MENTION = re.compile(r"<@[A-Z0-9]+>")
_SEEN_SCHEMA = """
CREATE TABLE IF NOT EXISTS slack_events (event_id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS slack_alerts (alert_id TEXT PRIMARY KEY, posted_at REAL NOT NULL);
"""
ALERTS_INTERVAL_S = 15.0  # how often new monitor alerts are looked for
FOLLOW_INTERVAL_S = 2.0  # how often a followed job is looked at; an edit is sent only when it changed


class SlackSettings(BaseModel):
    """`[slack]` of lathe.toml: which environment variables hold the tokens, and where alerts go."""
    model_config = ConfigDict(extra="forbid")

    bot_token_env: str = "SLACK_BOT_TOKEN"
    app_token_env: str = "SLACK_APP_TOKEN"
    signing_secret_env: str = "SLACK_SIGNING_SECRET"
    alerts_channel: str | None = None
    api_url: str = "https://slack.com/api/"

    @classmethod
    def for_workspace(cls, ws: Workspace) -> "SlackSettings":
        try:
            return cls.model_validate((ws.settings.model_extra or {}).get("slack", {}))
        except ValidationError as e:
            err = e.errors()[0]
            raise UserError(f"{ws.settings_path}: `[slack] {'.'.join(map(str, err['loc']))}`: {err['msg']}") from None


def _env(env: Mapping[str, str], name: str, what: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise UserError(f"set the environment variable {name} to the Slack {what} (named by `[slack]` in lathe.toml)")
    return value


class SlackBot:
    def __init__(self, ws: Workspace, *, socket_mode: bool, env: Mapping[str, str] | None = None):
        from slack_bolt import App
        from slack_sdk import WebClient

        env = os.environ if env is None else env
        self.ws, self.settings = ws, SlackSettings.for_workspace(ws)
        token = _env(env, self.settings.bot_token_env, "bot token (xoxb-…)")
        self.app_token = _env(env, self.settings.app_token_env, "app-level token (xapp-…)") if socket_mode else None
        secret = "" if socket_mode else _env(env, self.settings.signing_secret_env, "signing secret")
        ensure_schema(ws.state_path, _SEEN_SCHEMA)
        self.app = App(client=WebClient(token=token, base_url=self.settings.api_url), signing_secret=secret,
                       process_before_response=False)
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        self.app.command("/lathe")(self._on_command)
        self.app.action(kit.APPROVE)(self._on_approve)
        self.app.action(kit.REJECT)(self._on_reject_button)
        self.app.action(kit.EDIT)(self._on_edit_button)
        self.app.view(kit.REJECT)(self._on_reject)
        self.app.view(kit.EDIT)(self._on_edit)

    # ---- running ------------------------------------------------------------------------------------------
    def start_socket_mode(self) -> None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        self.start_alerts()
        SocketModeHandler(self.app, self.app_token).start()

    def start_alerts(self) -> None:
        """Post monitor alerts to `[slack] alerts_channel` from a background thread, while the bot runs."""
        if not self.settings.alerts_channel:
            return

        def loop() -> None:
            while True:
                try:
                    self.deliver_alerts()
                except Exception:  # a Slack or state error is logged and tried again next round
                    log.exception("posting monitor alerts to Slack failed")
                time.sleep(ALERTS_INTERVAL_S)

        threading.Thread(target=loop, name="slack-alerts", daemon=True).start()

    def http_app(self) -> Any:
        """An ASGI app with Slack's events, actions and commands at `POST /slack/events`."""
        from slack_bolt.adapter.starlette import SlackRequestHandler
        from starlette.applications import Starlette
        from starlette.routing import Route

        handler = SlackRequestHandler(self.app)

        async def events(request: Any) -> Any:
            return await handler.handle(request)

        return Starlette(routes=[Route("/slack/events", events, methods=["POST"])])

    # ---- who is asking ------------------------------------------------------------------------------------
    def principal(self, slack_user: str) -> Principal:
        """The linked Lathe user, or a viewer named after the Slack user (`lathe users link-slack` links one)."""
        return UserStore(self.ws).principal_for_slack(slack_user) or Principal(name=f"slack:{slack_user}",
                                                                               roles={"viewer"})

    def _first_time(self, body: Mapping[str, Any]) -> bool:
        """Slack sends an event again when it thinks the first delivery failed: each event id is handled once."""
        event_id = body.get("event_id")
        if not event_id:
            return True
        with transaction(self.ws.state_path, immediate=True) as db:
            return db.execute("INSERT OR IGNORE INTO slack_events VALUES (?, ?)", (event_id, time.time())).rowcount == 1

    # ---- listeners ----------------------------------------------------------------------------------------
    def _on_mention(self, body: dict[str, Any], event: dict[str, Any], client: Any) -> None:
        if self._first_time(body):
            self._ask(client, event["channel"], event.get("thread_ts") or event["ts"], event["user"], event["text"])

    def _on_message(self, body: dict[str, Any], event: dict[str, Any], client: Any) -> None:
        # Direct messages only; channel messages reach the bot as mentions, and its own messages are not questions.
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return
        if self._first_time(body):
            self._ask(client, event["channel"], event.get("thread_ts") or event["ts"], event["user"], event["text"])

    def _on_command(self, ack: Any, command: dict[str, Any], client: Any) -> None:
        ack()
        question = command.get("text", "").strip()
        if not question:
            client.chat_postEphemeral(channel=command["channel_id"], user=command["user_id"],
                                      text="Ask a question after the command, e.g. `/lathe revenue by region`.")
            return
        posted = client.chat_postMessage(channel=command["channel_id"], text=f"<@{command['user_id']}> asked: {question}")
        self._ask(client, command["channel_id"], posted["ts"], command["user_id"], question)

    def _on_approve(self, ack: Any, body: dict[str, Any], client: Any) -> None:
        ack()
        self._decide(client, body, "approve")

    def _on_reject_button(self, ack: Any, body: dict[str, Any], client: Any) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=kit.reject_modal(self._ref(body)))

    def _on_edit_button(self, ack: Any, body: dict[str, Any], client: Any) -> None:
        ack()
        ref = json.loads(self._ref(body))
        waiting = Session(self.ws, ref["thread"], principal=self.principal(body["user"]["id"])).pending()
        if waiting is None:
            client.chat_postEphemeral(channel=ref["channel"], user=body["user"]["id"], text="No plan waits here now.")
            return
        client.views_open(trigger_id=body["trigger_id"],
                          view=kit.edit_modal(waiting.plan, waiting.needs_approval, self._ref(body)))

    def _on_reject(self, ack: Any, body: dict[str, Any], view: dict[str, Any], client: Any) -> None:
        reason = view["state"]["values"]["reason"]["text"].get("value") or ""
        if not reason.strip():
            ack(response_action="errors", errors={"reason": "Say why, so the person who asked knows what to change."})
            return
        ack()
        self._decide(client, body, "reject", ref=view["private_metadata"], reason=reason)

    def _on_edit(self, ack: Any, body: dict[str, Any], view: dict[str, Any], client: Any) -> None:
        edits: dict[str, dict[str, Any]] = {}
        with Session(self.ws, json.loads(view["private_metadata"])["thread"]) as session:
            pending = session.pending()  # read once: each step's edit keeps only what differs from it
        for step_id, block in view["state"]["values"].items():
            text = (block.get("args") or {}).get("value") or ""
            try:
                args = parse_step_edit(text, step_id)[step_id] if text.strip() else {}
            except UserError as e:
                ack(response_action="errors", errors={step_id: str(e)[:150]})
                return
            current = next((s.args for s in pending.plan.steps if s.id == step_id), {}) if pending else {}
            changed = {k: v for k, v in args.items() if current.get(k) != v}
            if changed:
                edits[step_id] = changed
        ack()
        if edits:
            self._decide(client, body, "edit", ref=view["private_metadata"], edits=edits)

    # ---- doing ---------------------------------------------------------------------------------------------
    @staticmethod
    def _ref(body: dict[str, Any]) -> str:
        """The button's plan reference, with the message it sits in (so a decision can update it)."""
        ref = json.loads(body["actions"][0]["value"])
        ref.update(channel=body["channel"]["id"], message_ts=body["container"]["message_ts"])
        return json.dumps(ref)

    def _ask(self, client: Any, channel: str, thread_ts: str, slack_user: str, text: str) -> None:
        question = _MENTION.sub("", text).strip()
        if not question:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text="Ask me about your data or models.")
            return
        session = Session(self.ws, _thread_id(channel, thread_ts), principal=self.principal(slack_user))
        try:
            events = list(session.send(question))
        except UserError as e:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=f":warning: {e}")
            return
        finally:
            session.close()
        self._render(client, channel, thread_ts, events)

    def _decide(self, client: Any, body: dict[str, Any], action: str, *, ref: str | None = None,
                reason: str = "", edits: dict[str, dict[str, Any]] | None = None) -> None:
        where = json.loads(ref or self._ref(body))
        user = body["user"]["id"]
        channel, thread_ts = where["channel"], _thread_ts(where["thread"])
        with Session(self.ws, where["thread"], principal=self.principal(user)) as session:
            waiting = session.pending()
            try:
                events = list(session.decide(action, reason=reason, edits=edits, plan_hash=where["hash"]))  # type: ignore[arg-type]
            except UserError as e:
                client.chat_postEphemeral(channel=channel, user=user, text=f"Not {_past(action)}: {e}")
                return
        if waiting is not None:
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            client.chat_update(channel=channel, ts=where["message_ts"], text=f"Plan {_past(action)} by <@{user}>",
                               blocks=kit.decided_blocks(waiting.plan, waiting.needs_approval,
                                                         f"{_past(action).capitalize()} by <@{user}> at {when}"
                                                         + (f": {reason}" if reason else "")))
        self._render(client, channel, thread_ts, events)

    def _render(self, client: Any, channel: str, thread_ts: str, events: Iterable[Any]) -> None:
        """Post a turn's events in the thread: the answer, tables (CSV files when large), charts as PNG, a waiting
        plan with its buttons, and the progress of a job a step started."""
        events = list(events)
        text = "".join(e.text for e in events if e.type == "text_delta").strip()
        done = next((e for e in events if e.type == "done"), None)
        blocks = [kit.section(kit.mrkdwn(text or (done.text if done else "") or "Done."))]
        tables = {e.step_id: e.table for e in events if e.type == "table"}
        files: list[tuple[str, str | bytes, str]] = []
        for step_id, table in tables.items():
            inline = kit.table_text(table)
            if inline is not None:
                blocks += [kit.section(inline), {"type": "context", "elements": [
                    {"type": "mrkdwn", "text": kit.table_note(table)}]}]
            else:
                files.append((f"{step_id}.csv", kit.table_csv(table), f"Result of {step_id} ({kit.table_note(table)})"))
        for chart in (e for e in events if e.type == "chart"):
            if chart.step_id in tables:
                from agent.channels.chart_images import chart_png

                files.append((f"{chart.step_id}.png", chart_png(chart, tables[chart.step_id]), chart.title or "Chart"))
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text or "Lathe answered", blocks=blocks)
        for name, content, title in files:
            client.files_upload_v2(channel=channel, thread_ts=thread_ts, filename=name, content=content, title=title)
        for asked in (e for e in events if e.type == "approval_needed"):
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text="A plan waits for approval",
                                    blocks=kit.plan_blocks(asked.plan, asked.needs_approval, asked.thread_id,
                                                           asked.plan_hash, asked.requested_by, asked.notice))
        for job_id in (e.job_id for e in events if e.type == "step_finished" and e.job_id):
            threading.Thread(target=self._follow, args=(client, channel, thread_ts, job_id), daemon=True,
                             name=f"slack-follow-{job_id}").start()

    def _follow(self, client: Any, channel: str, thread_ts: str, job_id: str) -> None:
        """One message per job, edited as it advances, its last text the outcome; a fine-tune that succeeded
        gets its evaluation report below it (a batch's last line already names its table)."""
        ts = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=f"Job `{job_id}` started")["ts"]
        last, shown = None, ""
        try:
            with Session(self.ws, _thread_id(channel, thread_ts)) as session:
                for p in session.follow_job(job_id, interval=FOLLOW_INTERVAL_S):
                    if (text := progress_line(p)) != shown:  # a change the line does not show costs no edit
                        client.chat_update(channel=channel, ts=ts, text=text)
                        shown = text
                    last = p
        except UserError as e:  # e.g. the job was deleted meanwhile: the message says so instead of standing still
            client.chat_update(channel=channel, ts=ts, text=f"Cannot follow job `{job_id}`: {e}")
            return
        if last is not None and last.status == "succeeded" and last.kind == "finetune":
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=kit.mrkdwn(report_markdown(last)))

    # ---- alerts ---------------------------------------------------------------------------------------------
    def deliver_alerts(self) -> int:
        """Post each monitor alert raised since the bot first ran, once (across restarts), to
        `[slack] alerts_channel`; answers how many were posted."""
        from tools.monitoring import alerts_after

        channel = self.settings.alerts_channel
        if not channel:
            return 0
        with transaction(self.ws.state_path, immediate=True) as db:
            db.execute("INSERT OR IGNORE INTO slack_alerts VALUES ('', ?)", (time.time(),))  # when alerts began
            start = db.execute("SELECT posted_at FROM slack_alerts WHERE alert_id = ''").fetchone()[0]
            posted = {r[0] for r in db.execute("SELECT alert_id FROM slack_alerts")}
        sent = 0
        for a in alerts_after(self.ws, start):
            if a["id"] in posted:
                continue
            self.app.client.chat_postMessage(channel=channel, text=(
                f":rotating_light: Alert on `{a['endpoint']}` ({a['rule']}): {a['message']}"))
            with transaction(self.ws.state_path, immediate=True) as db:
                db.execute("INSERT OR IGNORE INTO slack_alerts VALUES (?, ?)", (a["id"], time.time()))
            sent += 1
        return sent


def _thread_id(channel: str, thread_ts: str) -> str:
    return f"slack-{channel}-{thread_ts}"


def _thread_ts(thread_id: str) -> str:
    return thread_id.rsplit("-", 1)[1]


def _past(action: str) -> str:
    return {"approve": "approved", "reject": "rejected", "edit": "edited"}[action]

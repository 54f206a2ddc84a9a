"""Lathe's chat UI (Chainlit 2.12), started by `lathe ui`: one `agent.Session` per chat thread, rendering its
events as streamed answers, tool steps, a plan checklist with Approve / Reject / Edit, tables and Plotly
charts; a fine-tuning job a plan starts is followed in the background (one progress message, then the
evaluation report), and again when its thread is reopened while it runs; monitors run on their schedules in
this process (the workspace's scheduler) and their alerts are posted into open chats; CSV or Parquet files dropped into the chat become catalogued tables.

It only presents and asks: every plan, decision and run goes through `agent.Session`, and the agent's
threads in `state.sqlite` stay the source of truth (Chainlit's history only replays what was shown).
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import secrets
import shutil
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import chainlit as cl
from chainlit.config import config as cl_config
from chainlit.element import Element
from chainlit.types import ThreadDict
from chainlit.utils import utc_now

from agent.channels import chainlit_history
from agent.channels.edits import parse_step_edit
from agent.channels.element_files import add_route as add_element_route
from agent.channels.job_views import progress_markdown, report_markdown
from agent.channels.markdown_views import (csv_text, edit_prompt, endpoint_markdown, plan_checklist, pretty_sql,
                                           table_markdown)
from agent.channels.plotly_figures import figure
from agent.result_text import presented, semantic_labels
from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace

if TYPE_CHECKING:  # the agent (LangChain, LangGraph) loads in the background after start-up, not here
    from agent.events import Event
    from agent.state import Plan, TableData

WORKSPACE = Workspace.resolve(None).require()  # LATHE_HOME, set by `lathe ui`
UI_ROOT = Path(cl_config.root)
LOCAL = Principal.local_admin()  # the person at this machine, where the UI asks no one to sign in
WATCH_INTERVAL_S = 2.0  # how often a plan shown to its asker is checked for a decision made elsewhere
OTHER_THREADS_CHECKED = 10  # recent threads looked at for plans waiting for approval, at chat start
FOLLOW_INTERVAL_S = 2.0  # how often a followed job is polled
ALERTS_INTERVAL_S = 15.0  # how often an open chat looks for new alerts (the scheduler runs the monitors)
UPLOAD_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")

LLM_HOWTO = """To plan with an LLM, add to `lathe.toml` in the workspace and restart `lathe ui`:
```toml
[llm]
model = "ollama/llama3.1"                     # Ollama on this machine
# model = "openai/my-model", api_base = "http://127.0.0.1:8001/v1"   # an OpenAI-compatible server (vLLM, llama.cpp)
# model = "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0"        # Bedrock, with AWS credentials in the environment
```
or set `LATHE_MODEL` (and `LATHE_API_BASE`, `LATHE_API_KEY_ENV`) before starting it."""

WELCOME_MD = """# Lathe

Ask about your data in plain language or in SQL. Plans that change anything wait for your approval.
Drop a CSV or Parquet file into the chat to add it as a table.
"""


def _auth_secret(root: Path) -> str:
    """A per-workspace secret for Chainlit's session tokens, made once, so log-ins survive restarts."""
    path = root / "auth_secret"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _configure() -> None:
    """Chainlit settings Lathe needs, set in code so the repository holds no generated config."""
    os.environ.setdefault("CHAINLIT_AUTH_SECRET", _auth_secret(UI_ROOT))
    cl_config.ui.name = "Lathe"
    cl_config.ui.description = "Ask your data; review and approve plans."
    cl_config.ui.cot = "full"
    cl_config.ui.confirm_new_chat = False
    cl_config.features.edit_message = False  # editing a sent message cannot rewind the agent's thread
    upload = cl_config.features.spontaneous_file_upload
    if upload is not None:
        upload.enabled = True
        upload.accept = {"text/csv": [".csv", ".tsv"], "application/octet-stream": [".parquet", ".pq"]}
        upload.max_files = 5
        upload.max_size_mb = 500
    readme = UI_ROOT / "chainlit.md"
    if not readme.exists() or readme.read_text(encoding="utf-8").startswith("# Welcome to Chainlit!"):
        readme.write_text(WELCOME_MD, encoding="utf-8")


_configure()


class PlotlyJson(Element):
    """Chainlit's Plotly element from a figure already in plotly.js JSON (no plotly package on the server)."""
    type: ClassVar[str] = "plotly"

    def __post_init__(self) -> None:
        self.mime = "application/json"
        self.size = "large"
        super().__post_init__()


# ---- sessions -------------------------------------------------------------------------------
def _sessions() -> dict[str, Any]:
    found = cl.user_session.get("agent_sessions")
    if found is None:
        found = {}
        cl.user_session.set("agent_sessions", found)
    return found


async def _session(thread_id: str | None = None) -> Any:
    """The agent session of `thread_id` (default: this chat's thread), opened once per chat."""
    from agent.session import Session

    tid = thread_id or cl.context.session.thread_id
    sessions = _sessions()
    if tid not in sessions:
        sessions[tid] = await asyncio.to_thread(Session, WORKSPACE, tid, await _principal())
    return sessions[tid]


async def _events(produce: Callable[[], Iterator[Event]]) -> AsyncIterator[Event]:
    """The session's events as they come: the synchronous agent runs in a worker thread."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    end = object()

    def pump() -> None:
        try:
            for event in produce():
                loop.call_soon_threadsafe(queue.put_nowait, event)
        except BaseException as e:  # handed to the event loop, which raises it in the chat's task
            loop.call_soon_threadsafe(queue.put_nowait, e)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, end)

    worker = loop.run_in_executor(None, pump)
    while (item := await queue.get()) is not end:
        if isinstance(item, BaseException):
            await worker
            raise item
        yield item
    await worker


# ---- rendering ------------------------------------------------------------------------------
class ShownPlan(NamedTuple):
    """A plan's checklist message in the chat, kept to tick its steps as they finish."""
    message: cl.Message
    plan: Plan
    plan_hash: str
    needs: list[str]


class ChatView:
    """Draws one run's events: text streams into a message; each other event gets its own element."""

    def __init__(self, thread_id: str, shown: ShownPlan | None = None):
        self.thread_id = thread_id
        self.text: cl.Message | None = None
        # The checklist ticked as steps finish: this run's plan, or the one whose approval started the run.
        self.shown = shown
        self.finished: dict[str, bool] = {}
        self.steps: dict[str, cl.Step] = {}
        self.tables: dict[str, TableData] = {}
        self.sent: list[Any] = []  # messages and steps this view sent, in order

    async def _send(self, item: Any) -> None:
        await item.send()
        self.sent.append(item)

    async def show(self, produce: Callable[[], Iterator[Event]]) -> None:
        try:
            async for event in _events(produce):
                await self.render(event)
        except UserError as e:
            await self._close_text()
            await self._send(cl.Message(content=f"**Not done:** {e}"))
        except Exception as e:  # a defect, not the user's input: say so rather than leave the chat silent
            logging.getLogger("lathe.ui").exception("answering in thread %s failed", self.thread_id)
            await self._close_text()
            await self._send(cl.Message(content=f"**Failed:** an internal error stopped this answer "
                                                f"({type(e).__name__}: {e}); the server's log has the details."))
        await self._close_text()

    async def render(self, event: Event) -> None:
        kind = event.type
        if kind == "text_delta":
            if self.text is None:
                self.text = cl.Message(content="")
                self.sent.append(self.text)
            await self.text.stream_token(event.text)
            return
        await self._close_text()
        if kind == "plan_proposed":
            msg = cl.Message(content=plan_checklist(event.plan, event.needs_approval))
            self.shown, self.finished = ShownPlan(msg, event.plan, event.plan_hash, event.needs_approval), {}
            await self._send(msg)
        elif kind == "approval_needed":
            # The checklist just shown becomes the approval request, so the plan is not drawn twice.
            same = self.shown if self.shown is not None and self.shown.plan_hash == event.plan_hash else None
            msg = await send_approval(self.thread_id, event.plan, event.plan_hash, event.needs_approval,
                                      event.notice, message=same.message if same is not None else None)
            if same is None:
                self.sent.append(msg)
            watch_decision(self.thread_id, event.plan_hash)
        elif kind == "step_started":
            step = cl.Step(name=event.title, type="tool", default_open=False)
            step.input = event.tool
            step.start = utc_now()
            self.steps[event.step_id] = step
            await self._send(step)
        elif kind == "step_finished":
            self.finished[event.step_id] = event.ok
            step = self.steps.pop(event.step_id, None)
            if step is not None:
                step.output = event.text if event.ok else (event.error or "failed")
                step.is_error = not event.ok
                step.end = utc_now()
                await step.update()
            if self.shown is not None:
                self.shown.message.content = plan_checklist(self.shown.plan, self.shown.needs, self.finished)
                await self.shown.message.update()
            if event.job_id:
                start_following(self.thread_id, event.job_id)
            if event.reveal.get("api_key"):  # in the answer, once; the history keeps it redacted
                shown_once = endpoint_markdown(event.reveal)
                _keep_redacted(event.reveal, shown_once)
                await self._send(cl.Message(content=shown_once))
        elif kind == "table":
            self.tables[event.step_id] = event.table
            shown = presented(event.table, await _labels())
            name = "_".join("".join(ch for ch in c.lower() if ch.isalnum()) for c in shown.columns)[:60] or "result"
            download = cl.File(name=f"{name}.csv", content=csv_text(shown).encode(), mime="text/csv", display="inline")
            await self._send(cl.Message(content=table_markdown(shown), elements=[download]))
            if event.table.sql:
                sql = cl.Step(name="SQL", type="tool", language="sql", default_open=False, show_input=False)
                sql.output = pretty_sql(event.table.sql)
                await self._send(sql)
        elif kind == "chart":
            table = self.tables.get(event.step_id)
            if table is not None:
                fig = figure(event, table, await _labels())
                title = fig["layout"]["title"]["text"]
                chart = PlotlyJson(name=title or "chart", content=json.dumps(fig, default=str), display="inline")
                await self._send(cl.Message(content=f"Chart: {title}", elements=[chart]))
        elif kind == "error":
            await self._send(cl.Message(content=f"**Error:** {event.message}"))

    async def _close_text(self) -> None:
        if self.text is not None:
            await self.text.send()
            self.text = None


async def _labels() -> dict[str, str]:
    """The semantic layer's labels for column headers and axes (the store re-parses only changed files)."""
    from catalog.store import CatalogStore

    try:
        return semantic_labels(await asyncio.to_thread(CatalogStore(WORKSPACE).load_semantic))
    except UserError:  # a broken semantic file: humanised names still read well
        return {}


# ---- following a job ------------------------------------------------------------------------
def start_following(thread_id: str, job_id: str, after_s: float = 0.0) -> None:
    """Follow the job in a background task, so the chat stays free while it trains; `after_s` delays the first
    message (a resumed thread is redrawn right after its hook, which would drop one sent before)."""
    tasks: set[asyncio.Task[None]] = cl.user_session.get("followed_jobs") or set()
    task = asyncio.create_task(follow_job(thread_id, job_id, after_s))  # the Chainlit context is copied into it
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    cl.user_session.set("followed_jobs", tasks)


async def follow_job(thread_id: str, job_id: str, after_s: float = 0.0) -> None:
    """One progress message rewritten as the job moves; at its end the evaluation report with the curves.

    `Session.follow_job`'s loop, with the wait between looks in the event loop: a worker thread is held only
    for each look, never for the hours a job may take."""
    await asyncio.sleep(after_s)
    session = await _session(thread_id)
    message = cl.Message(content=f"**Job `{job_id}`** — following it until it ends.")
    await message.send()
    while True:
        try:
            progress = await asyncio.to_thread(session.job_progress, job_id)
        except UserError as e:
            message.content = f"**Cannot follow job `{job_id}`:** {e}"
            await message.update()
            return
        shown = progress_markdown(progress)
        if shown != message.content:  # only a change is sent to the page
            message.content = shown
            await message.update()
        if progress.final:
            break
        await asyncio.sleep(FOLLOW_INTERVAL_S)
    if progress.status == "succeeded" and progress.kind == "finetune":  # a batch's last line names its table
        curves = progress.curves
        elements = [cl.Image(path=curves, name=f"{job_id} curves", display="inline")] if curves else []
        await cl.Message(content=report_markdown(progress), elements=elements).send()


# ---- alerts ---------------------------------------------------------------------------------
def watch_alerts(thread_id: str) -> None:
    """Post the alerts that scheduled monitor runs raise into this chat, while it is open."""
    if cl.user_session.get("alerts_task") is None:
        cl.user_session.set("alerts_task", asyncio.create_task(post_alerts(thread_id, time.time())))


async def post_alerts(thread_id: str, since: float) -> None:
    session = await _session(thread_id)
    while True:
        try:
            alerts = await asyncio.to_thread(session.new_alerts, since, run_due=False)
        except UserError as e:  # e.g. a damaged state file: say it once a round, keep watching
            alerts = []
            await cl.Message(content=f"**Alerts could not be read:** {e}").send()
        for alert in alerts:
            await cl.Message(content=f"**Alert on `{alert.endpoint}`** ({alert.rule}): {alert.message}").send()
            since = max(since, alert.created_at)
        await asyncio.sleep(ALERTS_INTERVAL_S)


async def send_approval(thread_id: str, plan: Plan, plan_hash: str, needs: list[str], notice: str | None,
                        title: str | None = None, message: cl.Message | None = None) -> cl.Message:
    """The plan as a checklist with Approve / Reject / Edit buttons bound to this plan of this thread
    (in `message` when the checklist is already on screen)."""
    payload = {"thread_id": thread_id, "plan_hash": plan_hash}
    actions = [cl.Action(name="approve_plan", payload=payload, label="Approve", icon="check"),
               cl.Action(name="reject_plan", payload=payload, label="Reject", icon="x")]
    for sid in needs:
        actions.append(cl.Action(name="edit_plan", payload={**payload, "step_id": sid},
                                 label=f"Edit {sid}" if len(needs) > 1 else "Edit", icon="pencil"))
    from agent.review import who_approves
    from core.principal import may_approve

    where = f" in “{title}”" if title else ""
    whose = ("your approval" if may_approve((await _principal()).roles)
             else f"approval by {await asyncio.to_thread(who_approves, WORKSPACE)}")
    body = [f"**Waiting for {whose}**{where}: " + ", ".join(f"`{s}`" for s in needs), "",
            plan_checklist(plan, needs)]
    if notice:
        body += ["", f"_Note: {notice}_"]
    if message is None:
        message = cl.Message(content="\n".join(body), actions=actions)
        await message.send()
    else:
        message.content, message.actions = "\n".join(body), actions
        await message.update()
    cl.user_session.set(f"approval:{thread_id}:{plan_hash}", ShownPlan(message, plan, plan_hash, needs))
    return message


def watch_decision(thread_id: str, plan_hash: str) -> None:
    """Watch a plan shown in this chat, so that when someone decides it elsewhere (another browser, Slack, the
    terminal) this thread goes on by itself and shows the outcome."""
    tasks: set[asyncio.Task[None]] = cl.user_session.get("watched_plans") or set()
    task = asyncio.create_task(_await_decision(thread_id, plan_hash))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    cl.user_session.set("watched_plans", tasks)


async def _await_decision(thread_id: str, plan_hash: str) -> None:
    from agent import audit_log

    session = await _session(thread_id)

    def settled() -> Any:
        """(the decision, the thread's state) once the plan is decided and any run it started has ended."""
        waiting = session.pending()
        if waiting is not None and waiting.plan_hash == plan_hash:
            return None
        decided = [e for e in audit_log.entries(WORKSPACE, thread_id)
                   if e.plan_hash == plan_hash and e.decision in ("approved", "rejected", "edited")]
        state = session.state()
        ran_here = state.plan is not None and state.plan.hash() == plan_hash
        if not decided or (waiting is None and ran_here and not state.outcome):
            return None
        return decided[-1], state, waiting

    while (found := await asyncio.to_thread(settled)) is None:
        await asyncio.sleep(WATCH_INTERVAL_S)
    decision, state, waiting = found
    if decision.principal == session.principal.name:
        return  # decided by this chat's user: the view of that decision shows the run
    lines = [f"**The plan was {decision.decision} by {decision.principal}** elsewhere"
             + (f": {decision.reason}" if decision.reason else ".")]
    ran = state.plan is not None and state.plan.hash() == plan_hash and decision.decision == "approved"
    if ran and state.history and state.history[-1].role == "assistant":
        lines += ["", state.history[-1].text]
    await cl.Message(content="\n".join(lines)).send()
    for result in (state.results.values() if ran else ()):
        if result.table is not None:
            await cl.Message(content=table_markdown(presented(result.table, await _labels()))).send()
    if waiting is not None and decision.decision == "edited":  # the edited plan waits here too
        await send_approval(thread_id, waiting.plan, waiting.plan_hash, waiting.needs_approval, waiting.notice)
        watch_decision(thread_id, waiting.plan_hash)


async def _decided(action: cl.Action, produce: Callable[[Any], Iterator[Event]]) -> None:
    thread_id = action.payload["thread_id"]
    verb = {"approve_plan": "Approved", "reject_plan": "Rejected", "edit_plan": "Edited"}.get(action.name, "Decided")
    about = next((t.title for t in await asyncio.to_thread(_threads) if t.thread_id == thread_id), "a plan")
    await _name_thread(f"{verb}: {about}")
    shown: ShownPlan | None = cl.user_session.get(f"approval:{thread_id}:{action.payload['plan_hash']}")
    if shown is not None:
        await shown.message.remove_actions()
        shown.message.actions = []
    session = await _session(thread_id)
    await ChatView(thread_id, shown).show(lambda: produce(session))
    await _mark_shown(thread_id)


def _threads() -> list[Any]:
    from agent.session import Session

    return Session.threads(WORKSPACE)


# ---- Chainlit hooks -------------------------------------------------------------------------
def _warm_up() -> None:
    """Loads the agent (LangGraph, tools, the catalog's search index) once, with no thread touched."""
    from agent.session import Session

    with Session(WORKSPACE, "ui-warm-up", LOCAL) as s:
        s.resources.catalog.search  # noqa: B018 - built or loaded here, not on the first question


_SCHEDULER: list[Any] = []  # the workspace's scheduler, while the app runs


@cl.on_app_startup
async def warm_up() -> None:
    # In the background: the server answers at once, and the agent is ready by the time a page has loaded.
    asyncio.get_running_loop().run_in_executor(None, _warm_up)
    from runtimes.scheduling.monitor_schedules import start_monitor_schedules
    from runtimes.scheduling.scheduler import build_scheduler

    scheduler = build_scheduler(WORKSPACE)
    start_monitor_schedules(scheduler, WORKSPACE)
    scheduler.start()
    _SCHEDULER.append(scheduler)


@cl.on_app_shutdown
async def stop_scheduler() -> None:
    while _SCHEDULER:
        from runtimes.scheduling.scheduler import stop

        stop(_SCHEDULER.pop())


def _auth_mode() -> str:
    """`[ui] auth` of lathe.toml: `password` (the workspace's users), `header` (a reverse proxy names the user in
    `[ui] user_header`), `local` (no sign-in: the person at this machine), or `auto` (the default): password once
    the workspace has users, local before."""
    from core.users import UserStore

    mode = str(((WORKSPACE.settings.model_extra or {}).get("ui") or {}).get("auth", "auto"))
    if mode == "auto":
        return "password" if UserStore(WORKSPACE).list() else "local"
    return mode


def _user_header() -> str:
    return str(((WORKSPACE.settings.model_extra or {}).get("ui") or {}).get("user_header", "X-Forwarded-User"))


@cl.header_auth_callback
async def header_user(headers: Any) -> cl.User | None:
    from core.users import UserStore

    mode = await asyncio.to_thread(_auth_mode)
    if mode == "local":
        return cl.User(identifier=LOCAL.name, metadata={"provider": "local"})
    if mode == "header":
        name = (headers.get(_user_header()) or "").strip().lower()
        user = next((u for u in await asyncio.to_thread(UserStore(WORKSPACE).list) if u.name == name), None)
        if user is not None and not user.disabled:
            return cl.User(identifier=user.name, metadata={"provider": "header"})
    return None  # the sign-in form


@cl.password_auth_callback
async def password_user(username: str, password: str) -> cl.User | None:
    from core.users import UserStore

    if await asyncio.to_thread(_auth_mode) != "password":
        return None
    who = await asyncio.to_thread(UserStore(WORKSPACE).authenticate, username, password)
    return cl.User(identifier=who.name, metadata={"provider": "password"}) if who is not None else None


async def _principal() -> Principal:
    """Who this chat acts for, read from the users table each time, so a role change or a disabled user applies
    at once; the local user where no one signs in."""
    from core.errors import UserError
    from core.users import UserStore

    user = cl.context.session.user
    if user is None or (user.metadata or {}).get("provider") == "local":
        return LOCAL
    found = await asyncio.to_thread(UserStore(WORKSPACE).get, user.identifier)
    if found.disabled:
        raise UserError(f"`{found.name}` is disabled: ask an admin")
    return found.principal()


@cl.data_layer
def chat_history() -> Any:
    layer = chainlit_history.data_layer(UI_ROOT / "chat_history.sqlite", WORKSPACE, UI_ROOT / "elements")
    from chainlit.server import app as server

    add_element_route(server, layer.storage_provider)
    return layer


async def _name_thread(name: str) -> None:
    """Names this chat's thread after what started it (an upload, a button) and lists it at once; a typed first
    message names it by itself."""
    from chainlit.data import get_data_layer

    if cl.user_session.get("thread_named"):
        return
    cl.user_session.set("thread_named", True)
    layer = get_data_layer()
    if layer is None:
        return
    thread_id = cl.context.session.thread_id
    name = name if len(name) <= 80 else name[:79] + "…"
    await layer.update_thread(thread_id, name=name, user_id=getattr(cl.context.session.user, "id", None))
    await cl.context.emitter.emit("first_interaction", {"interaction": name, "thread_id": thread_id})


def _keep_redacted(reveal: dict[str, str], message: str) -> None:
    """The chat's history keeps the endpoint's message with its key redacted, and any other mention of the key."""
    from chainlit.data import get_data_layer
    from tools.serving import redacted

    layer = get_data_layer()
    if layer is not None and hasattr(layer, "keep_redacted"):
        kept = redacted(reveal["api_key"]) or ""
        layer.keep_redacted(message, endpoint_markdown(reveal, kept))
        layer.keep_redacted(reveal["api_key"], kept)


async def _mark_shown(thread_id: str) -> None:
    from chainlit.data import get_data_layer

    layer = get_data_layer()
    if layer is not None and hasattr(layer, "mark_shown"):
        await layer.mark_shown(thread_id)


@cl.on_chat_start
async def start() -> None:
    from agent.llm import llm_settings

    session = await _session()
    settings = llm_settings(WORKSPACE)
    planner = getattr(session.resources.planner, "name", "")
    if settings.configured:
        who = f"Planning with the LLM `{settings.model}`" + (f" at {settings.api_base}." if settings.api_base else ".")
        how = ""
    else:
        who = ("No LLM is configured: the built-in offline planner answers catalog and metric questions and SQL. "
               "The demo's local models are for trying the pipeline, not for quality answers.")
        if planner == "fallback":
            who = ("No LLM is configured: type SQL (for example `SELECT region, count(*) FROM customers GROUP BY "
                   "region`). The demo's local models are for trying the pipeline, not for quality answers.")
        how = "\n\n" + LLM_HOWTO
    await cl.Message(content=f"Lathe on workspace `{WORKSPACE.root.name}`. {who} Try “revenue by region last "
                             f"quarter”, or SQL. Plans that change anything wait for your approval; drop a CSV "
                             f"or Parquet file here to add it as a table.{how}").send()
    await _waiting_elsewhere(session.thread_id)
    watch_alerts(session.thread_id)


async def _waiting_elsewhere(current: str) -> None:
    """Plans waiting in other threads (from this UI, `lathe chat` or `lathe ask`), so they can be decided here."""
    from core.principal import may_approve
    from agent.session import Session

    who = await _principal()

    def find() -> list[tuple[Any, Any]]:
        out = []
        for info in Session.threads(WORKSPACE)[:OTHER_THREADS_CHECKED]:
            if info.thread_id == current:
                continue
            with Session(WORKSPACE, info.thread_id, who) as s:
                waiting = s.pending()
            # An approver sees every plan waiting for a decision; anyone else only the plans they asked for.
            if waiting is not None and (may_approve(who.roles) or waiting.requested_by == who.name):
                out.append((info, waiting))
        return out

    for info, waiting in await asyncio.to_thread(find):
        await send_approval(info.thread_id, waiting.plan, waiting.plan_hash, waiting.needs_approval, waiting.notice,
                            title=info.title)


@cl.on_chat_resume
async def resume(thread: ThreadDict) -> None:
    cl.user_session.set("thread_named", True)
    session = await _session(thread["id"])
    view = ChatView(session.thread_id)
    await view.show(session.resume)  # finishes a run a crash cut short, if any
    waiting = await asyncio.to_thread(session.pending)
    if waiting is not None:
        view.sent.append(await send_approval(session.thread_id, waiting.plan, waiting.plan_hash,
                                             waiting.needs_approval, waiting.notice))
    # Chainlit redraws the resumed thread from `thread` right after this hook, which would drop what was
    # just sent: it goes into that history too (its buttons, sent separately, stay).
    thread["steps"] = [*thread.get("steps", []), *(item.to_dict() for item in view.sent)]
    watch_alerts(session.thread_id)
    try:
        running = await asyncio.to_thread(session.running_jobs)
    except sqlite3.ProgrammingError:  # the page went away while it resumed, and the chat's end closed the session
        return
    for job_id in running:  # a reload or restart mid-job follows it again
        start_following(session.thread_id, job_id, after_s=FOLLOW_INTERVAL_S)


@cl.on_message
async def on_message(message: cl.Message) -> None:
    files = [e for e in (message.elements or []) if getattr(e, "path", None)]
    text = (message.content or "").strip()
    if text:
        cl.user_session.set("thread_named", True)  # Chainlit names it after the message
    elif files:
        await _name_thread("Upload: " + ", ".join(Path(str(f.name)).name for f in files))
    replacing = await _import_uploads(files) if files else []
    if text:
        session = await _session()
        await ChatView(session.thread_id).show(lambda: session.send(text))
        await _mark_shown(session.thread_id)
    if replacing:  # after the message's own question, which may be about the table as it is now
        await _ask_to_replace(replacing)


@cl.on_chat_end
async def end() -> None:
    for task in [*(cl.user_session.get("followed_jobs") or ()), *(cl.user_session.get("watched_plans") or ()),
                 cl.user_session.get("alerts_task")]:
        if task is not None:
            task.cancel()  # stops following; the jobs and monitors themselves go on
    for s in _sessions().values():
        s.close()
    cl.user_session.set("agent_sessions", {})


def _as_task(callback: Callable[[cl.Action], Any]) -> Callable[[cl.Action], Any]:
    """Marks the chat busy while a button's work runs. Chainlit does not for action callbacks, and an
    AskUserMessage inside one would otherwise leave the UI busy for good (it restarts the task when answered)."""

    @functools.wraps(callback)
    async def run(action: cl.Action) -> None:
        await cl.context.emitter.task_start()
        try:
            await callback(action)
        finally:
            await cl.context.emitter.task_end()

    return run


@cl.action_callback("approve_plan")
@_as_task
async def approve_plan(action: cl.Action) -> None:
    plan_hash = action.payload["plan_hash"]
    await _decided(action, lambda s: s.approve(plan_hash=plan_hash))


@cl.action_callback("reject_plan")
@_as_task
async def reject_plan(action: cl.Action) -> None:
    answer = await cl.AskUserMessage(content="Why do you reject this plan? (the reason goes to the audit log)",
                                     timeout=600).send()
    if answer is None:
        await cl.Message(content="No reason came, so the plan still waits.").send()
        return
    reason = (answer.get("output") or "").strip() or "no reason given"
    plan_hash = action.payload["plan_hash"]
    await _decided(action, lambda s: s.reject(reason, plan_hash=plan_hash))


@cl.action_callback("edit_plan")
@_as_task
async def edit_plan(action: cl.Action) -> None:
    session = await _session(action.payload["thread_id"])
    waiting = await asyncio.to_thread(session.pending)
    if waiting is None or waiting.plan_hash != action.payload["plan_hash"]:
        await cl.Message(content="That plan no longer waits for a decision.").send()
        return
    step_id = action.payload["step_id"]
    answer = await cl.AskUserMessage(content=edit_prompt(waiting.plan, step_id), timeout=600).send()
    if answer is None:
        await cl.Message(content="No edit came, so the plan still waits as it was.").send()
        return
    try:
        edits = parse_step_edit(answer.get("output") or "", step_id)
    except UserError as e:
        await cl.Message(content=f"**Not changed:** {e}").send()
        return
    plan_hash = action.payload["plan_hash"]
    await _decided(action, lambda s: s.edit(edits, plan_hash=plan_hash))


async def _import_uploads(files: list[Any]) -> list[tuple[Any, str, str]]:
    """Files dropped into the chat become warehouse tables with catalog entries. Those whose table exists are
    returned (file, name, table), to be asked for as a replacement that waits for an approver."""
    from catalog.importers import import_paths
    from catalog.importers.discovery import table_name_for
    from catalog.warehouse import connect_reader

    wrong = [f.name for f in files if not str(f.name).lower().endswith(UPLOAD_SUFFIXES)]
    if wrong:
        await cl.Message(content=f"**Not imported:** {', '.join(wrong)}: upload CSV, TSV or Parquet files "
                                 f"(named .csv, .tsv, .parquet or .pq).").send()
        return []

    def taken_tables() -> set[str]:
        with connect_reader(WORKSPACE) as con:
            return {r[0].lower() for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}

    try:
        taken = await asyncio.to_thread(taken_tables)
        named = [(f, Path(str(f.name)).name, table_name_for(Path(Path(str(f.name)).name))) for f in files]
    except UserError as e:
        await cl.Message(content=f"**Not imported:** {e}").send()
        return []
    fresh = [(f, name) for f, name, table in named if table not in taken]
    who = await _principal()
    from core.principal import may_propose

    if not may_propose(who.roles):
        await cl.Message(content=f"**Not imported:** `{who.name}` is a viewer; adding tables needs the analyst "
                                 "role or more.").send()
        return []

    def run() -> list[str]:
        with tempfile.TemporaryDirectory(dir=WORKSPACE.cache_dir) as tmp:
            paths = []
            for f, name in fresh:  # the file's own name becomes the table's name
                target = Path(tmp) / name
                shutil.copyfile(f.path, target)
                paths.append(target)
            lines = import_paths(WORKSPACE, paths, replace=False, principal=who).lines()
            return [line.replace(f"{tmp}/", "") for line in lines]  # name the file, not its temporary copy

    if fresh:
        try:
            lines = await asyncio.to_thread(run)
        except UserError as e:
            await cl.Message(content=f"**Not imported:** {e}").send()
        else:
            await cl.Message(content="Imported:\n" + "\n".join(f"- {line}" for line in lines)).send()
    return [(f, name, table) for f, name, table in named if table in taken]


async def _ask_to_replace(replacing: list[tuple[Any, str, str]]) -> None:
    """Keeps each file under `uploads/<upload id>/` (a later upload of the same name cannot change a plan
    already shown) and sends the replacement through this chat's session, where it waits for approval."""
    folder = WORKSPACE.root / "uploads" / f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    await asyncio.to_thread(folder.mkdir, parents=True)
    paths = []
    for f, name, _ in replacing:
        await asyncio.to_thread(shutil.copyfile, f.path, folder / name)
        paths.append(str((folder / name).relative_to(WORKSPACE.root)))
    tables = ", ".join(f"`{t}`" for _, _, t in replacing)
    await cl.Message(content=f"**Not imported yet:** table {tables} already exists. Replacing it is a change to the "
                             f"warehouse, so I asked for it below: only an approver's Approve replaces its rows "
                             f"(its catalog metadata is kept); Reject leaves it as it is.").send()
    s = "s" if len(replacing) > 1 else ""
    request = (f"replace table{s} {', '.join(t for _, _, t in replacing)} with the uploaded file{s} "
               f"{' '.join(paths)}")
    session = await _session()
    await ChatView(session.thread_id).show(lambda: session.send(request))

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
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import chainlit as cl
from chainlit.config import config as cl_config
from chainlit.element import Element
from chainlit.types import ThreadDict
from chainlit.utils import utc_now

from agent.channels import chainlit_history
from agent.channels.element_files import add_route as add_element_route
from agent.channels.job_views import progress_markdown, report_markdown
from agent.channels.markdown_views import csv_text, endpoint_markdown, pretty_sql, table_markdown
from agent.channels.plan_views import explanation_markdown, form_fields, plan_markdown, read_fields
from agent.channels.plotly_figures import figure
from agent.result_text import presented, readable, said_names, semantic_labels
from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace

if TYPE_CHECKING:  # the agent (LangChain, LangGraph) loads in the background after start-up, not here
    from agent.events import Event
    from agent.events import TableEvent
    from agent.state import Plan

WORKSPACE = Workspace.resolve(None).require()  # LATHE_HOME, set by `lathe ui`
UI_ROOT = Path(cl_config.root)
LOCAL = Principal.local_admin()  # the person at this machine, where the UI asks no one to sign in
WATCH_INTERVAL_S = 2.0  # how often a plan shown to its asker is checked for a decision made elsewhere
OTHER_THREADS_CHECKED = 10  # recent threads looked at for plans waiting for approval, at chat start
FOLLOW_INTERVAL_S = 2.0  # how often a followed job is polled
ALERTS_INTERVAL_S = 15.0  # how often an open chat looks for new alerts (the scheduler runs the monitors)
UPLOAD_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")

LLM_HOWTO = "to plan with one, see “To plan with an LLM” in the README"

LOGO_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="160" height="48" viewBox="0 0 160 48">'
            '<text x="80" y="36" text-anchor="middle" font-family="sans-serif" font-size="34" font-weight="700" '
            'fill="#e8590c">Lathe</text></svg>')

# Decisions (Approve, Reject, Edit, approving a version) are buttons of their own, ahead of and apart from the
# message's copy and feedback icons; Approve is the primary one.
LATHE_CSS = """button[id^="lathe-act-"] { order: -1; margin-right: .375rem; border: 1px solid hsl(var(--border));
  color: hsl(var(--foreground)); }
button[id^="lathe-act-"]:not(:has(~ button[id^="lathe-act-"])) { margin-right: 1.5rem; }
button[id^="lathe-act-approve"] { background: hsl(var(--primary)); color: hsl(var(--primary-foreground));
  border-color: hsl(var(--primary)); }
/* A chart's chosen Table / Bar / Line / Pie button: Plotly fills it inline with a fixed near-white (#F4FAFF), faint on
   a light page, so it takes the theme's primary colour; Plotly uses that fill on hover too, so hover has its own. */
.js-plotly-plot .updatemenu-button rect.updatemenu-item-rect[style*="244, 250, 255"] {
  fill: hsl(var(--primary)) !important; }
.js-plotly-plot .updatemenu-button:has(rect[style*="244, 250, 255"]) text.updatemenu-item-text {
  fill: hsl(var(--primary-foreground)) !important; font-weight: 600; }
.js-plotly-plot .updatemenu-button:hover rect.updatemenu-item-rect[style] { fill: hsl(var(--accent)) !important; }
.js-plotly-plot .updatemenu-button:hover:has(rect) text.updatemenu-item-text[style] {
  fill: hsl(var(--accent-foreground)) !important; }
"""

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


QUIET_LOGGERS = ("chainlit", "apscheduler", "bm25s", "httpx", "mlflow", "alembic", "urllib3")  # chatty at INFO


def _configure() -> None:
    """Chainlit settings Lathe needs, set in code so the repository holds no generated config."""
    for name in QUIET_LOGGERS:  # the start-up says where the UI is (`lathe ui`); libraries speak up on trouble only
        logging.getLogger(name).setLevel(logging.WARNING)
    # Renamed arguments inside transformers itself (a plan's warm-up steps load it): nothing a user can change.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
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
    _set_footer()
    logo = UI_ROOT / "public" / "lathe-logo.svg"  # the empty chat's heading names Lathe, not the framework
    logo.parent.mkdir(parents=True, exist_ok=True)
    if not logo.exists() or logo.read_text(encoding="utf-8") != LOGO_SVG:
        logo.write_text(LOGO_SVG, encoding="utf-8")
    cl_config.ui.logo_file_url = "/public/lathe-logo.svg"
    css = UI_ROOT / "public" / "lathe.css"
    if not css.exists() or css.read_text(encoding="utf-8") != LATHE_CSS:
        css.write_text(LATHE_CSS, encoding="utf-8")
    cl_config.ui.custom_css = "/public/lathe.css"
    elements = UI_ROOT / "public" / "elements"  # the custom elements' JSX, served to the page by Chainlit
    elements.mkdir(parents=True, exist_ok=True)
    for jsx in (Path(__file__).parent / "agent" / "channels" / "elements").glob("*.jsx"):
        if not (elements / jsx.name).exists() or (elements / jsx.name).read_bytes() != jsx.read_bytes():
            shutil.copyfile(jsx, elements / jsx.name)
    for readme in (UI_ROOT / "chainlit.md", UI_ROOT / "chainlit_en-US.md"):  # the second, so none is looked for
        if not readme.exists() or readme.read_text(encoding="utf-8").startswith("# Welcome to Chainlit!"):
            readme.write_text(WELCOME_MD, encoding="utf-8")


def _set_footer() -> None:
    """The message box and the line under it say who answers: the LLM's usual caution only where an LLM plans,
    and where none does, that the offline planner answers (the box says it on the empty chat already)."""
    from chainlit.config import TRANSLATIONS_DIR, config_translation_dir

    from agent.llm import llm_settings

    settings = llm_settings(WORKSPACE)
    for path in Path(config_translation_dir).glob("*.json"):
        text = json.loads(path.read_text(encoding="utf-8"))
        library = Path(TRANSLATIONS_DIR) / path.name
        chat = json.loads(library.read_text(encoding="utf-8"))["chat"] if library.exists() else {}
        if settings.configured:
            watermark = f"Planning with the LLM {settings.model}. {chat.get('watermark', '')}".strip()
            placeholder = "Ask about your data, or type SQL"
        else:
            watermark = (f"No LLM is configured: the offline planner answers ({LLM_HOWTO}). "
                         "Plans that change anything wait for approval.")
            placeholder = "Ask about your data, or type SQL (no LLM is configured: the offline planner answers)"
        ours = text.setdefault("chat", {})
        if (ours.get("watermark"), ours.get("input", {}).get("placeholder")) != (watermark, placeholder):
            ours["watermark"] = watermark
            ours.setdefault("input", {})["placeholder"] = placeholder
            path.write_text(json.dumps(text, ensure_ascii=False, indent=2), encoding="utf-8")


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
    said: str = ""  # the answer's text shown just before it


class ChatView:
    """Draws one run's events: text streams into a message; each other event gets its own element."""

    def __init__(self, thread_id: str, shown: ShownPlan | None = None):
        self.thread_id = thread_id
        self.text: cl.Message | None = None
        self.said: cl.Message | None = None  # the text message last shown, which a plan's summary may repeat
        # The checklist ticked as steps finish: this run's plan, or the one whose approval started the run.
        self.shown = shown
        self.finished: dict[str, bool] = {}
        self.steps: dict[str, cl.Step] = {}
        self.tables: dict[str, TableEvent] = {}
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
            said = ""
            if self.said is not None:  # the planner's explanation, laid out as a list
                said = self.said.content
                tidy = explanation_markdown(said)
                if tidy != said:
                    self.said.content = tidy
                    await self.said.update()
            msg = cl.Message(content=plan_markdown(event.plan, event.needs_approval, said=said),
                             metadata={"lathe_plan": event.plan_hash})
            self.shown, self.finished = ShownPlan(msg, event.plan, event.plan_hash, event.needs_approval, said), {}
            await self._send(msg)
        elif kind == "approval_needed":
            # The checklist just shown becomes the approval request, so the plan is not drawn twice.
            same = self.shown if self.shown is not None and self.shown.plan_hash == event.plan_hash else None
            msg = await send_approval(self.thread_id, event.plan, event.plan_hash, event.needs_approval,
                                      event.notice, message=same.message if same is not None else None,
                                      said=same.said if same is not None else "")
            if same is None:
                self.sent.append(msg)
            watch_decision(self.thread_id, event.plan_hash)
        elif kind == "step_started":
            step = cl.Step(name=said_names(event.title).replace("`", ""), type="tool", default_open=False)
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
                self.shown.message.content = plan_markdown(self.shown.plan, self.shown.needs, self.finished,
                                                           said=self.shown.said)
                await self.shown.message.update()
            if event.job_id:
                start_following(self.thread_id, event.job_id)
            if event.reveal.get("api_key"):  # in the answer, once; the history keeps it redacted
                shown_once = endpoint_markdown(event.reveal)
                _keep_redacted(event.reveal, shown_once)
                await self._send(cl.Message(content=shown_once))
        elif kind == "table":
            self.tables[event.step_id] = event
            labels = {**await _labels(), **event.labels}
            shown = presented(event.table, labels, event.units)  # the CSV keeps raw numbers
            name = "_".join("".join(ch for ch in c.lower() if ch.isalnum()) for c in
                            presented(event.table, labels).columns)[:60] or "result"
            download = cl.File(name=f"{name}.csv", content=csv_text(shown).encode(), mime="text/csv", display="inline")
            await self._send(cl.Message(content=table_markdown(readable(event.table, labels, event.units)),
                                        elements=[download]))
            if event.table.sql:
                sql = cl.Step(name="SQL", type="tool", language="sql", default_open=False, show_input=False)
                sql.output = pretty_sql(event.table.sql)
                await self._send(sql)
        elif kind == "chart":
            shown_table = self.tables.get(event.step_id)
            if shown_table is not None:
                fig = figure(event, shown_table.table, {**await _labels(), **shown_table.labels}, shown_table.units)
                title = fig["layout"]["title"]["text"]
                chart = PlotlyJson(name=title or "chart", content=json.dumps(fig, default=str), display="inline")
                await self._send(cl.Message(content=f"Chart: {title}", elements=[chart]))
        elif kind == "error":
            await self._send(cl.Message(content=f"**Error:** {event.message}"))

    async def _close_text(self) -> None:
        if self.text is not None:
            await self.text.send()
            self.said, self.text = self.text, None


async def _labels() -> dict[str, str]:
    """The semantic layer's labels for column headers and axes (the store re-parses only changed files)."""
    from catalog.store import CatalogStore

    try:
        return semantic_labels(await asyncio.to_thread(CatalogStore(WORKSPACE).load_semantic))
    except UserError:  # a broken semantic file: humanised names still read well
        return {}


# ---- following a job ------------------------------------------------------------------------
JOB_VIEW = "lathe_job"  # a job's messages carry {JOB_VIEW: job id, "view": "progress" | "report", "final": bool}


def start_following(thread_id: str, job_id: str, after_s: float = 0.0, shown: dict[str, Any] | None = None) -> None:
    """Follow the job in a background task, so the chat stays free while it trains; `after_s` delays the first
    message (a resumed thread is redrawn right after its hook, which would drop one sent before); `shown` is the
    job's progress message already in the thread, updated in place rather than sent again."""
    tasks: set[asyncio.Task[None]] = cl.user_session.get("followed_jobs") or set()
    task = asyncio.create_task(follow_job(thread_id, job_id, after_s, shown))  # the Chainlit context is copied
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    cl.user_session.set("followed_jobs", tasks)


def _job_message(job_id: str, content: str, shown: dict[str, Any] | None) -> cl.Message:
    """The job's progress message: the one the thread already shows (same id and place), or a new one."""
    meta = {JOB_VIEW: job_id, "view": "progress", "final": False}
    if shown is None:
        return cl.Message(content=content, metadata=meta)
    return cl.Message(content=shown.get("output") or content, id=shown["id"], metadata=meta,
                      created_at=shown.get("createdAt"))


async def follow_job(thread_id: str, job_id: str, after_s: float = 0.0, shown: dict[str, Any] | None = None) -> None:
    """One progress message rewritten as the job moves; at its end the evaluation report with the curves.

    `Session.follow_job`'s loop, with the wait between looks in the event loop: a worker thread is held only
    for each look, never for the hours a job may take."""
    await asyncio.sleep(after_s)
    session = await _session(thread_id)
    message = _job_message(job_id, f"**Job `{job_id}`** — following it until it ends.", shown)
    if shown is None:
        await message.send()
    while True:
        try:
            progress = await asyncio.to_thread(session.job_progress, job_id)
        except UserError as e:
            message.content = f"**Cannot follow job `{job_id}`:** {e}"
            message.metadata = {**(message.metadata or {}), "final": True}
            await message.update()
            return
        text = progress_markdown(progress)
        if text != message.content or progress.final:  # only a change is sent to the page
            message.content = text
            message.metadata = {**(message.metadata or {}), "final": progress.final}
            await message.update()
        if progress.final:
            break
        await asyncio.sleep(FOLLOW_INTERVAL_S)
    if progress.status == "succeeded" and progress.kind == "finetune":  # a batch's last line names its table
        await _send_report(thread_id, progress)


async def _send_report(thread_id: str, progress: Any) -> None:
    """The evaluation report with its curves, and an Approve button for the new version where this chat's user
    may approve it."""
    from core.principal import may_approve

    curves = progress.curves
    elements = [cl.Image(path=curves, name=f"{progress.job_id} curves", display="inline")] if curves else []
    actions = []
    if progress.model_version and may_approve((await _principal()).roles):
        name, _, version = progress.model_version.rpartition("/")
        actions.append(decision("approve_version", {"thread_id": thread_id, "name": name, "version": version},
                                f"Approve {name} v{version}", "badge-check"))
    await cl.Message(content=report_markdown(progress), elements=elements, actions=actions,
                     metadata={JOB_VIEW: progress.job_id, "view": "report", "final": True}).send()


def _metadata(step: dict[str, Any]) -> dict[str, Any]:
    """A history step's metadata (stored as JSON text by the data layer)."""
    meta = step.get("metadata") or {}
    return json.loads(meta) if isinstance(meta, str) else meta


def _shown_jobs(steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The job views a thread's history shows: job id -> its progress message (the last one), and whether its
    report was posted (under "report")."""
    found: dict[str, dict[str, Any]] = {}
    for step in steps:
        meta = _metadata(step)
        job_id = meta.get(JOB_VIEW)
        if job_id:
            seen = found.setdefault(job_id, {})
            if meta.get("view") == "report":
                seen["report"] = True
            else:
                seen.update(step=step, final=bool(meta.get("final")))
    return found


@cl.action_callback("approve_version")
async def approve_version(action: cl.Action) -> None:
    """The model version a report names, approved through the `approve_model_version` tool as this chat's user."""
    session = await _session(action.payload["thread_id"])
    tool = session.resources.tools.get("approve_model_version")
    args = {"name": action.payload["name"], "version": action.payload["version"]}
    try:
        if tool is None:
            raise UserError("approving a model version needs the `approve_model_version` tool")
        out = await asyncio.to_thread(tool.run_validated, tool.schema().model_validate(args))
    except UserError as e:
        await cl.Message(content=f"**Not approved:** {e}").send()
        return
    await action.remove()
    await cl.Message(content=f"**Approved:** {out.text}; it is now the champion version served by default.").send()


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


def decision(name: str, payload: dict[str, Any], label: str, icon: str) -> cl.Action:
    """A decision's button; its id marks it for `lathe.css`, which sets it apart from the feedback icons."""
    return cl.Action(name=name, payload=payload, label=label, icon=icon, id=f"lathe-act-{name}-{secrets.token_hex(6)}")


async def send_approval(thread_id: str, plan: Plan, plan_hash: str, needs: list[str], notice: str | None,
                        title: str | None = None, message: cl.Message | None = None, said: str = "",
                        shown: dict[str, Any] | None = None) -> cl.Message:
    """The plan as a checklist with Approve / Reject / Edit buttons bound to this plan of this thread: in `message`
    when the checklist is already on screen, in `shown` (a step of the thread's history) when a resumed thread
    shows it already, else in a new message."""
    payload = {"thread_id": thread_id, "plan_hash": plan_hash}
    actions = [decision("approve_plan", payload, "Approve", "check"), decision("reject_plan", payload, "Reject", "x")]
    for sid in needs:
        actions.append(decision("edit_plan", {**payload, "step_id": sid}, f"Edit {sid}" if len(needs) > 1 else "Edit",
                                "pencil"))
    from agent.review import who_approves
    from core.principal import may_approve

    where = f" in “{title}”" if title else ""
    whose = ("your approval" if may_approve((await _principal()).roles)
             else f"approval by {await asyncio.to_thread(who_approves, WORKSPACE)}")
    body = [f"**Waiting for {whose}**{where}: " + ", ".join(f"`{s}`" for s in needs), "",
            plan_markdown(plan, needs, said=said)]
    if notice:
        body += ["", f"_Note: {notice}_"]
    meta = {"lathe_plan": plan_hash}
    if message is None and shown is not None:  # the same message, in its place, with its buttons again
        message = cl.Message(content="", id=shown["id"], created_at=shown.get("createdAt"), metadata=meta)
    if message is None:
        message = cl.Message(content="\n".join(body), actions=actions, metadata=meta)
        await message.send()
    else:
        message.content, message.actions, message.metadata = "\n".join(body), actions, meta
        await message.update()
    cl.user_session.set(f"approval:{thread_id}:{plan_hash}", ShownPlan(message, plan, plan_hash, needs, said))
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
            labels = {**await _labels(), **(result.data.get("labels") or {})}
            await cl.Message(content=table_markdown(readable(result.table, labels, result.data.get("units")))).send()
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

    try:
        import bm25s  # noqa: F401 - the catalog's search index; it sets its own logger to DEBUG when imported
    except ImportError:
        pass
    logging.getLogger("bm25s").setLevel(logging.WARNING)
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


@cl.set_starters
async def starter_questions(user: cl.User | None = None) -> list[cl.Starter]:
    """The empty chat's suggestions, drawn from this workspace's metrics, tables and models."""
    from agent.channels.starters import starters
    from catalog.store import CatalogStore

    found = await asyncio.to_thread(lambda: starters(WORKSPACE, CatalogStore(WORKSPACE).load()))
    return [cl.Starter(label=s.label, message=s.message) for s in found]


@cl.on_chat_start
async def start() -> None:
    # Nothing is said here, so the empty chat shows its starters; the footer says who plans.
    session = await _session()
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
    if waiting is not None:  # its buttons on the plan the history shows, or the plan anew where it shows none
        steps = thread.get("steps") or []
        shown_plan = next((step for step in reversed(steps) if _metadata(step).get("lathe_plan") == waiting.plan_hash),
                          None)
        # What the thread said before the plan, so its summary is not read again in the plan's header.
        said = "\n".join(str(s.get("output") or "") for s in steps[:steps.index(shown_plan)]) if shown_plan else ""
        message = await send_approval(session.thread_id, waiting.plan, waiting.plan_hash, waiting.needs_approval,
                                      waiting.notice, said=said, shown=shown_plan)
        if shown_plan is None:
            view.sent.append(message)
        else:  # the redraw below would put back the plan as stored, without its "Waiting for …" header
            shown_plan["output"] = message.content
    # Chainlit redraws the resumed thread from `thread` right after this hook, which would drop what was
    # just sent: it goes into that history too (its buttons, sent separately, stay).
    thread["steps"] = [*thread.get("steps", []), *(item.to_dict() for item in view.sent)]
    watch_alerts(session.thread_id)
    try:
        running = await asyncio.to_thread(session.running_jobs)
    except sqlite3.ProgrammingError:  # the page went away while it resumed, and the chat's end closed the session
        return
    shown = _shown_jobs(thread.get("steps") or [])
    for job_id in running:  # a reload or restart mid-job follows it again, in the progress message it shows
        start_following(session.thread_id, job_id, after_s=FOLLOW_INTERVAL_S, shown=shown.get(job_id, {}).get("step"))
    for job_id, seen in shown.items():  # one that ended while no page was open: its last state and its report
        if job_id not in running and "step" in seen and not seen["final"] and not seen.get("report"):
            start_following(session.thread_id, job_id, after_s=FOLLOW_INTERVAL_S, shown=seen["step"])


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
    step = waiting.plan.step(step_id)
    form = cl.CustomElement(name="StepEdit", props={"fields": form_fields(step)}, display="inline")
    answer = await cl.AskElementMessage(content=f"Edit step `{step_id}` ({step.tool}): change what you need and "
                                                "save; the plan is checked again and waits for approval.",
                                        element=form, timeout=600).send()
    if not answer or not answer.get("submitted"):
        await cl.Message(content="No edit was saved, so the plan still waits as it was.").send()
        return
    try:
        changed = read_fields(step, {k: str(v) for k, v in (answer.get("fields") or {}).items()})
    except ValueError as e:
        await cl.Message(content=f"**Not changed:** {e}").send()
        return
    if not changed:
        await cl.Message(content="Nothing was changed, so the plan still waits as it was.").send()
        return
    plan_hash = action.payload["plan_hash"]
    await _decided(action, lambda s: s.edit({step_id: changed}, plan_hash=plan_hash))


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

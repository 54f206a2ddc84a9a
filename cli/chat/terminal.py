"""The terminal chat: renders a session's events with rich (streamed Markdown text, plans as the chat UI shows them,
tables with their units), asks
for decisions on waiting plans (approve, reject with a reason, edit a step's arguments as JSON), and follows a
job a run started until it ends, with a progress bar on a terminal and a line per change elsewhere (Ctrl-C stops
following, never the job).

It reads and writes the terminal only; plans, approvals and runs all go through `agent.Session`.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from agent.channels.edits import parse_step_edit
from agent.channels.job_views import approve_hint, evaluation_rows, progress_line, remaining_s
from agent.channels.markdown_views import SHOWN_ROWS, endpoint_markdown, plain_cell
from agent.channels.plan_views import explanation_markdown, plan_markdown
from agent.channels.plotly_figures import chart_title
from agent.result_text import readable, said_names
from core.errors import UserError

if TYPE_CHECKING:  # the agent loads while the first prompt waits (see `cli/chat/command.py`), not here
    from agent.events import Done, Event, JobProgress
    from agent.state import TableData

Ask = Callable[[str], str]  # shows a prompt, returns the line typed; raises EOFError when input ends

HELP = ("Type a question or SQL. Commands: /threads (list conversations), /help, /quit. "
        "When a plan waits: y approves, n rejects (with a reason), e edits a step's arguments. "
        "A job a plan starts is followed until it ends; Ctrl-C stops following, not the job.")
FOLLOW_INTERVAL_S = 1.0  # how often a followed job is polled


class TerminalView:
    """Draws events as they come: a block of text as Markdown (streamed in place on a terminal), everything else on
    its own lines; a plan once, as the chat UI shows it."""

    def __init__(self, console: Console):
        self.console = console
        self._text = ""  # the block of text being streamed, drawn as Markdown when it ends
        self._live: Any = None  # on a terminal, that block drawn as it comes (rich Live, erased when it ends)
        self.said = ""  # the last block of text shown, which a plan's summary may repeat
        self.shown_plan = ""  # hash of the plan last drawn, so a waiting plan is not drawn twice in a row
        self.started_jobs: list[str] = []  # jobs the runs shown so far started, not yet followed
        self.tables: dict[str, Any] = {}  # the tables shown, by step, for their charts' titles

    def show(self, events: Iterable[Event]) -> Done | None:
        """Render every event; the closing `Done` is returned."""
        done = None
        for event in events:
            self.render(event)
            if event.type == "done":
                done = event
        self._end_text()
        return done

    def render(self, event: Event) -> None:
        kind = event.type
        if kind == "text_delta":
            self._stream(event.text)
            return
        self._end_text(tidy=kind == "plan_proposed")
        if kind == "plan_proposed":
            self.shown_plan = event.plan_hash
            self.console.print(Markdown(plan_markdown(event.plan, event.needs_approval, said=self.said)))
        elif kind == "approval_needed":
            if event.plan_hash != self.shown_plan:
                self.shown_plan = event.plan_hash
                self.console.print(Markdown(plan_markdown(event.plan, event.needs_approval)))
            if event.notice:
                self.console.print(f"[yellow]note:[/] {event.notice}", highlight=False)
            steps = ", ".join(event.needs_approval)
            self.console.print(f"[bold yellow]Waiting for approval[/] (plan {event.plan_hash}): steps {steps}",
                               highlight=False)
        elif kind == "step_started":
            title = escape(said_names(event.title).replace("`", ""))
            self.console.print(f"[dim]→ {event.step_id}: {title} ({event.tool})…[/]", highlight=False)
        elif kind == "step_finished":
            if event.ok:
                first = event.text.splitlines()[0] if event.text else "done"
                self.console.print(f"[green]✓[/] {event.step_id}: ", end="", highlight=False)
                self._inline(first)
                self.console.print()
            else:
                self.console.print(f"[red]✗[/] {event.step_id}: {event.error}", highlight=False)
            if event.job_id:
                self.started_jobs.append(event.job_id)
            if event.reveal.get("api_key"):  # shown this once; the thread keeps it redacted
                self.console.print(Markdown(endpoint_markdown(event.reveal)))
        elif kind == "table":
            self.tables[event.step_id] = event
            self.console.print(rich_table(readable(event.table, event.labels, event.units)))
        elif kind == "chart":
            shown = self.tables.get(event.step_id)
            title = chart_title(event, shown.labels if shown is not None else None)
            self.console.print(f"[dim]chart: {escape(title)} ({event.kind}; drawn in the chat UI, lathe ui)[/]",
                               highlight=False)
        elif kind == "error":
            self.console.print(f"[bold red]error:[/] {event.message}", highlight=False)
        elif kind == "job_progress":
            self._job_progress(event)
        elif kind == "done":
            if event.status in ("failed", "rejected"):
                self.console.print(f"[dim]({event.status})[/]")

    def _job_progress(self, p: JobProgress) -> None:
        style = {"succeeded": "green", "failed": "red", "cancelled": "yellow"}.get(p.status, "dim")
        self.console.print(f"[{style}]{escape(progress_line(p))}[/]", highlight=False)
        if p.status != "succeeded":
            return
        for name, value in evaluation_rows(p.evaluation):
            self.console.print(f"  {name}: {value}", markup=False, highlight=False)
        if p.report:
            self.console.print(f"  report: {p.report}" + (f" (curves: {p.curves})" if p.curves else ""),
                               markup=False, highlight=False)
        if p.model_version:
            self.console.print(f"  {approve_hint(p.model_version)}".replace("`", ""), markup=False, highlight=False)

    def _inline(self, text: str) -> None:
        """One line of Markdown text with its `code` spans styled, as the UI shows them, never as backticks."""
        for i, part in enumerate(text.split("`")):
            if part:
                self.console.print(part, end="", markup=False, highlight=False, soft_wrap=True,
                                   style="bold cyan" if i % 2 else None)

    def _stream(self, text: str) -> None:
        """A piece of the text block: kept, and on a terminal drawn in place as Markdown so far."""
        self._text += text
        if not self.console.is_terminal:
            return
        if self._live is None:
            from rich.live import Live

            self._live = Live(console=self.console, transient=True, auto_refresh=False)
            self._live.start()
        self._live.update(Markdown(self._text), refresh=True)

    def _end_text(self, tidy: bool = False) -> None:
        """The text block, drawn for good as Markdown; a planner's explanation (`tidy`: a plan follows) laid out as
        the chat UI lays it out, a clean list."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._text:
            text, self._text = self._text, ""
            self.said = text
            self.console.print(Markdown(explanation_markdown(text) if tidy else text))


def rich_table(table: TableData, max_rows: int = SHOWN_ROWS) -> Table:
    from catalog.results import json_value

    total = max(table.row_count, len(table.rows))
    note = f"{total:,} row{'s' if total != 1 else ''}"
    if total > max_rows:
        note = f"showing {max_rows:,} of {total:,} rows"
    if table.masked_columns:
        note += "; masked (PII): " + ", ".join(table.masked_columns)
    t = Table(caption=note, show_lines=False)
    for c in table.columns:
        t.add_column(str(c), overflow="fold")
    numeric = [bool(col) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in col)
               for col in ([v for v in c if v is not None] for c in zip(*table.rows[:max_rows]))]
    for i, column in enumerate(t.columns):
        if i < len(numeric) and numeric[i]:
            column.justify = "right"
    for row in table.rows[:max_rows]:
        t.add_row(*[plain_cell(json_value(v)) for v in row])
    return t


def follow_started(session: Any, view: TerminalView, interval: float = FOLLOW_INTERVAL_S) -> JobProgress | None:
    """Follow each job the runs shown so far started, one after another; the last one's last progress."""
    last = None
    while view.started_jobs:
        last = follow(session, view, view.started_jobs.pop(0), interval)
    return last


def follow(session: Any, view: TerminalView, job_id: str, interval: float = FOLLOW_INTERVAL_S) -> JobProgress | None:
    """Print the job's progress until it ends; Ctrl-C stops following, never the job (its process runs apart)."""
    view.console.print(f"[dim]Following job {job_id} until it ends (Ctrl-C stops following; the job goes on).[/]",
                       highlight=False)
    last = None
    bar = JobBar(view.console) if view.console.is_terminal else None
    try:
        for progress in session.follow_job(job_id, interval=interval):
            if bar is not None and not progress.final:
                bar.update(progress)
            else:
                view.render(progress)
            last = progress
            if progress.final and bar is not None:
                bar.stop()
                view.render(progress)
    except KeyboardInterrupt:
        view.console.print(f"Stopped following job {job_id}; the job keeps running. Ask “how is the job doing?” "
                           f"or run `lathe jobs show {job_id}`.", markup=False, highlight=False)
    except UserError as e:
        view.console.print(f"[bold red]error:[/] cannot follow job {job_id}: {e}", highlight=False)
    finally:
        if bar is not None:
            bar.stop()
    return last


class JobBar:
    """A running job as one rich progress bar, redrawn in place: step of steps, percentage, elapsed and remaining
    time, the last loss."""

    def __init__(self, console: Console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TaskProgressColumn(), TextColumn("{task.fields[times]}"), console=console,
                                 transient=False, auto_refresh=False)
        self.task: Any = None

    def update(self, p: JobProgress) -> None:
        from tools.job_figures import duration_text

        times = [f"elapsed {duration_text(p.elapsed_s)}"] if p.elapsed_s is not None else []
        if (left := remaining_s(p)) is not None:
            times.append(f"~{duration_text(left)} left")
        if "loss" in p.metrics:
            times.append(f"loss {p.metrics['loss']:.4g}")
        fields = {"description": f"job {p.job_id} {p.status}", "completed": p.step, "total": p.max_steps,
                  "times": " · ".join(times)}
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(**fields)
        else:
            self.progress.update(self.task, **fields)
        self.progress.refresh()

    def stop(self) -> None:
        if self.task is not None:
            self.progress.stop()
            self.task = None


def decide(session: Any, view: TerminalView, ask: Ask) -> Done | None:
    """Ask what to do with the waiting plan until it is decided; returns the last `Done` (None if left waiting)."""
    while (waiting := session.pending()) is not None:
        if waiting.plan_hash != view.shown_plan:  # e.g. a plan that waited before this chat began
            view.shown_plan = waiting.plan_hash
            view.console.print(Markdown(plan_markdown(waiting.plan, waiting.needs_approval)))
            if waiting.notice:
                view.console.print(f"[yellow]note:[/] {waiting.notice}", highlight=False)
        answer = ask("Approve this plan? [y]es / [n]o / [e]dit / [l]ater: ").strip().lower()
        try:
            if answer in ("y", "yes", "approve"):
                done = view.show(session.approve(plan_hash=waiting.plan_hash))
            elif answer in ("n", "no", "reject"):
                reason = ask("Why reject it? ").strip()
                done = view.show(session.reject(reason, plan_hash=waiting.plan_hash))
            elif answer in ("e", "edit"):
                step_id = waiting.needs_approval[0]
                if len(waiting.needs_approval) > 1:
                    step_id = ask(f"Which step ({', '.join(waiting.needs_approval)})? ").strip() or step_id
                step = waiting.plan.step(step_id)
                view.console.print(f"Arguments of {step.id} now: {json.dumps(step.args, ensure_ascii=False)}",
                                   markup=False, highlight=False)
                edits = parse_step_edit(ask("Arguments to change, as one line of JSON: "), step.id)
                done = view.show(session.edit(edits, plan_hash=waiting.plan_hash))
            elif answer in ("l", "later", ""):
                view.console.print(f"The plan keeps waiting in thread {session.thread_id}.", highlight=False)
                return None
            else:
                view.console.print("Answer y, n, e or l.")
                continue
        except UserError as e:
            view.console.print(f"[bold red]error:[/] {e}", highlight=False)
            continue
        follow_started(session, view)
        if done is not None and done.status != "waiting_approval":
            return done
    return None


def show_alerts(session: Any, console: Console, since: float) -> float:
    """Alerts raised since `since` (due monitors run first), printed before the next prompt; the new `since`."""
    if not getattr(session, "ready", True):  # still loading: the next prompt looks
        return since
    try:
        alerts = session.new_alerts(since)
    except UserError as e:
        console.print(f"[bold red]monitors could not run:[/] {escape(str(e))}", highlight=False)
        return since
    for alert in alerts:
        console.print(f"[bold yellow]alert[/] on {escape(alert.endpoint)} ({escape(alert.rule)}): "
                      f"{escape(alert.message)}", highlight=False)
        since = max(since, alert.created_at)
    return since


def chat(session: Any, console: Console, ask: Ask, threads: Callable[[], list[Any]]) -> None:
    """The conversation loop: one turn per line typed, until /quit or the end of input."""
    import time

    view = TerminalView(console)
    console.print(f"Lathe chat, thread [bold]{session.thread_id}[/]. {HELP}", highlight=False)
    since = time.time()
    try:
        if not getattr(session, "new", False) and session.pending() is not None:
            decide(session, view, ask)
        while True:
            since = show_alerts(session, console, since)
            text = ask("you> ").strip()
            if not text:
                continue
            if text in ("/quit", "/exit", "/q"):
                break
            if text == "/help":
                console.print(HELP, highlight=False)
                continue
            if text == "/threads":
                for t in threads()[:20]:
                    console.print(f"{t.thread_id}  {t.updated_at[:16]}  {t.turns:>3} turns  {t.title}",
                                  markup=False, highlight=False)
                continue
            try:
                done = view.show(session.send(text))
            except UserError as e:
                console.print(f"[bold red]error:[/] {e}", highlight=False)
                continue
            follow_started(session, view)
            if done is not None and done.status == "waiting_approval":
                decide(session, view, ask)
    except (EOFError, KeyboardInterrupt):
        console.print()
    console.print(f"Bye. Continue later with `lathe chat --thread {session.thread_id}`.", highlight=False)

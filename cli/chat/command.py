"""`lathe chat` (the conversation in a terminal) and `lathe ask` (one turn, for scripts). Both follow a job
their turn started until it ends, printing its progress (`lathe ask --no-follow` returns at once).

Both talk to `agent.Session`; the agent and rich are imported inside the commands so `lathe --help`
stays fast.
"""
from __future__ import annotations

import typer

from cli.context import command, print_json, workspace

# `lathe ask` exit codes, for scripts: answered, failed or rejected, waiting for approval.
EXIT_FAILED = 1
EXIT_WAITING = 3


def _quiet() -> None:
    """Renamed arguments inside transformers itself (a fine-tune plan's warm-up steps load it) warn on every plan:
    nothing a user can change, so the conversation does not show them (as the chat UI does not)."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")


def register(app: typer.Typer) -> None:
    @app.command("chat")
    @command
    def chat(
        thread: str | None = typer.Option(None, "--thread", "-t", help="Continue this thread (default: a new one)."),
    ) -> None:
        """Talk to the agent in the terminal: questions, SQL, and approval of plans that change things."""
        from rich.console import Console

        from cli.chat.loading import LoadingSession
        from cli.chat.terminal import chat as run_chat

        ws = workspace()
        _quiet()
        console = Console()
        with LoadingSession(ws, thread) as session:  # the agent loads while the first prompt waits
            # Prompts such as "[y]es / [n]o" are plain text, not rich markup.
            run_chat(session, console, lambda prompt: console.input(prompt, markup=False), session.threads)

    @app.command("ask")
    @command
    def ask(
        text: str | None = typer.Argument(None, help="The question or SQL. Leave out with --thread --approve to "
                                                     "approve the plan waiting in that thread."),
        approve: bool = typer.Option(False, "--approve", help="Approve the plan this turn proposes (or the one "
                                     "waiting in --thread) and run it."),
        as_json: bool = typer.Option(False, "--json", help="Print the events as JSON, one object per line."),
        thread: str | None = typer.Option(None, "--thread", "-t", help="Ask in this thread (default: a new one)."),
        follow: bool = typer.Option(True, "--follow/--no-follow", help="Follow a job this turn starts until it "
                                    "ends, printing its progress (Ctrl-C stops following, not the job)."),
    ) -> None:
        """One turn, for scripts: exit 0 answered, 1 failed or rejected (or the job it followed failed),
        3 a plan waits for approval."""
        from core.errors import UserError
        from agent.session import Session

        if text is None and not (thread and approve):
            raise UserError("give a question or SQL, e.g. lathe ask \"SELECT count(*) FROM orders\"; or approve a "
                            "waiting plan with lathe ask --thread ID --approve")
        ws = workspace()
        _quiet()
        view = None
        if not as_json:
            from rich.console import Console

            from cli.chat.terminal import TerminalView

            view = TerminalView(Console())

        started: list[str] = []

        def show(events) -> object:
            if view is not None:
                done = view.show(events)
                started.extend(view.started_jobs)
                view.started_jobs.clear()
                return done
            last = None
            for e in events:
                print_json(e.to_json())
                last = e if e.type == "done" else last
                if e.type == "step_finished" and e.job_id:
                    started.append(e.job_id)
            return last

        def follow_started(session) -> str | None:
            """Each started job followed to its end; the status the last one ended in."""
            from cli.chat.terminal import follow as follow_in_terminal

            ended = None
            while started:
                job_id = started.pop(0)
                if view is not None:
                    last = follow_in_terminal(session, view, job_id)
                    ended = last.status if last is not None and last.final else None
                    continue
                try:
                    for p in session.follow_job(job_id):
                        print_json(p.to_json())
                        ended = p.status if p.final else None
                except KeyboardInterrupt:
                    typer.echo(f"Stopped following job {job_id}; the job keeps running.", err=True)
                    ended = None
            return ended

        with Session(ws, thread) as session:
            done = None if text is None else show(session.send(text))
            if approve and (text is None or (done is not None and done.status == "waiting_approval")):
                waiting = session.pending()
                if waiting is None:
                    raise UserError(f"no plan waits for approval in thread {session.thread_id}")
                done = show(session.approve(plan_hash=waiting.plan_hash))
            status = done.status if done is not None else "failed"
            if follow and follow_started(session) == "failed":
                status = "failed"
            if status == "waiting_approval":
                if view is not None:
                    typer.echo(f"Approve it with: lathe ask --thread {session.thread_id} --approve", err=True)
                raise typer.Exit(EXIT_WAITING)
            if status in ("failed", "rejected"):
                raise typer.Exit(EXIT_FAILED)

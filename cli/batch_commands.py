"""`lathe batch …` and `lathe async …`: run a model over a table or query into a predictions table (a job with a
progress bar, resumable), and submit requests to the async queue, follow them and run its workers.

`lathe batch MODEL --data …` is short for `lathe batch run MODEL --data …`. Every `batch` command first restarts
batches whose process died. Serving libraries are imported only when a command runs, so `lathe --help` stays fast.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click
import typer
from typer.core import TyperGroup

from cli.context import command, data_source, print_json, print_table, workspace


class _RunByDefault(TyperGroup):
    """`lathe batch MODEL …` runs a batch: a first word that is no sub-command is the model of `run`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


batch_app = typer.Typer(cls=_RunByDefault, no_args_is_help=True,
                        help="Batch inference: `lathe batch MODEL --data TABLE|SQL` writes a predictions table; "
                             "list, status, events, cancel, resume.")
async_app = typer.Typer(help="Async inference: submit requests, follow them, run the workers.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(batch_app, name="batch")
    app.add_typer(async_app, name="async")


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def _recovered_ws():
    from runtimes.jobs.lifecycle import recover

    ws = workspace()
    for job_id in recover(ws):
        typer.echo(f"restarted {job_id}: its process had died; what it finished is kept", err=True)
    return ws


def _batch_json(job: Any) -> dict[str, Any]:
    return {**job.to_json(), "rows_done": job.rows_done, "rows_total": job.rows_total}


def _score_table(ws: Any, model: str, data: str, into: str | None, replace: bool, chunk_rows: int,
                 dry_run: bool) -> str | None:
    """A table model's scoring job over the rows (its id; None for a dry run); not for a language model."""
    from runtimes.jobs.lifecycle import submit
    from runtimes.tabular.score_kind import planned
    from runtimes.tabular.table_scoring import plan_score

    source = data_source(ws, data)
    plan = plan_score(ws, {"model": model, "source": source, "into": into, "replace": replace,
                           "chunk_rows": chunk_rows})
    typer.echo(plan.explain(), err=True)
    if dry_run:
        typer.echo("dry run: nothing was started")
        return None
    return submit(ws, "score", planned=planned(plan)).id


# ---- batch ------------------------------------------------------------------------------------------------
@batch_app.command("run")
@command
def batch_run(
    model: str = typer.Argument(..., help="A registered model (NAME, NAME@N, NAME@latest) or a workspace base model."),
    data: str = typer.Option(..., "--data", "-d", help="A catalog table, or one read-only SQL query."),
    prompt_column: str | None = typer.Option(None, "--prompt-column", "-p", help="The column with the prompts "
                                             "(default: detected)."),
    key_column: str | None = typer.Option(None, "--key-column", help="The column naming each row (default: the "
                                          "table's key or a unique *_id column)."),
    into: str | None = typer.Option(None, "--into", help="The predictions table (default: <source>_predictions)."),
    fmt: str = typer.Option("auto", "--format", help="auto, chat, prompt or messages."),
    system: str | None = typer.Option(None, "--system", help="A system prompt for every row (chat formats)."),
    max_tokens: int = typer.Option(64, "--max-tokens", help="New tokens per row at most."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 (default) is greedy."),
    micro_batch: int = typer.Option(16, "--micro-batch", help="Rows per committed chunk."),
    chunk_rows: int = typer.Option(10_000, "--chunk-rows", help="Table models: rows scored and saved together."),
    replace: bool = typer.Option(False, "--replace", help="Replace a predictions table an earlier batch made."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check everything and print the plan; start nothing."),
    detach: bool = typer.Option(False, "--detach", help="Start the job and return (no progress bar)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run a model over a table or query and write a predictions table (a resumable job with a progress bar)."""
    from runtimes.serving.batch.transform import BatchSpec, plan_batch, run_batch

    from runtimes.tabular.scoring import is_table_model

    ws = _recovered_ws()
    if is_table_model(ws, model):
        if (job_id := _score_table(ws, model, data, into, replace, chunk_rows, dry_run)) is not None:
            typer.echo(f"{job_id}: started", err=True)
            _follow(ws, job_id, detach, as_json)
        return
    spec = BatchSpec.parse({"model": model, "source": data_source(ws, data), "prompt_column": prompt_column,
                            "key_column": key_column,
                            "into": into, "format": fmt, "system_prompt": system, "max_new_tokens": max_tokens,
                            "temperature": temperature, "micro_batch": micro_batch, "replace": replace})
    plan = plan_batch(ws, spec)
    if dry_run:
        if as_json:
            print_json(plan.model_dump(mode="json"))
        else:
            typer.echo(plan.explain())
            typer.echo("dry run: nothing was started")
        return
    job = run_batch(ws, plan)
    if not as_json:
        typer.echo(plan.explain(), err=True)
        typer.echo(f"{job.id}: started", err=True)
    _follow(ws, job.id, detach, as_json)


@batch_app.command("resume")
@command
def batch_resume(job_id: str, detach: bool = typer.Option(False, "--detach"),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """Continue a cancelled or failed batch; the rows already done are not redone."""
    from runtimes.jobs.lifecycle import resume

    ws = _recovered_ws()
    job = resume(ws, job_id)
    if not as_json:
        typer.echo(f"{job.id}: {job.status} ({job.rows_done:,} of {job.rows_total:,} rows already done)", err=True)
    _follow(ws, job.id, detach, as_json)


@batch_app.command("list")
@command
def batch_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """All batch jobs, oldest first (`lathe jobs list` shows every kind)."""
    from runtimes.jobs.store import JobStore

    store = JobStore(_recovered_ws())
    found = sorted(store.list(kind="batch") + store.list(kind="score"), key=lambda j: j.created_at)
    if as_json:
        print_json([_batch_json(j) for j in found])
        return
    print_table(["job", "status", "model", "rows", "output", "created"],
                [[j.id, j.status, j.plan.get("model_id", ""), f"{j.rows_done:,}/{j.rows_total:,}",
                  j.output_table or j.plan.get("into", ""), _when(j.created_at)] for j in found])


@batch_app.command("status")
@command
def batch_status(job_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One batch job: status, rows done, output table, error."""
    from runtimes.jobs.store import JobStore

    job = JobStore(_recovered_ws()).get(job_id)
    if as_json:
        print_json(_batch_json(job))
        return
    print_table(["field", "value"], [[k, v] for k, v in _batch_json(job).items()
                                     if k != "plan" and v not in (None, "")], title=job_id)


@batch_app.command("events")
@command
def batch_events(job_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Status changes and progress of a batch job, in order."""
    from runtimes.jobs.store import JobStore

    found = JobStore(_recovered_ws()).events(job_id)
    if as_json:
        print_json([e.__dict__ for e in found])
        return
    for e in found:
        typer.echo(f"{_when(e.at)}  {e.kind:<10} {e.message}")


@batch_app.command("cancel")
@command
def batch_cancel(job_id: str) -> None:
    """Stop a batch after the rows in hand (resumable with `lathe batch resume`)."""
    from runtimes.jobs.lifecycle import cancel

    job = cancel(_recovered_ws(), job_id)
    typer.echo(f"{job.id}: {job.status}" + (" (stopping after the rows in hand)" if job.status != "cancelled" else ""))


def _follow(ws: Any, job_id: str, detach: bool, as_json: bool) -> None:
    """A progress bar until the job ends (Ctrl-C leaves it running), then its outcome."""
    from runtimes.jobs.lifecycle import wait
    from runtimes.jobs.store import JobStore

    if detach:
        job = JobStore(ws).get(job_id)
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      transient=as_json) as bar:
            task = bar.add_task(job_id, total=None)

            def show(j: Any) -> None:
                bar.update(task, total=j.rows_total or None, completed=j.rows_done, description=f"{job_id} {j.status}")

            try:
                job = wait(ws, job_id, timeout_s=None, on_progress=show)
            except KeyboardInterrupt:
                typer.echo(f"\n{job_id} goes on in the background: `lathe batch status {job_id}`", err=True)
                raise typer.Exit(0) from None
    if as_json:
        print_json(_batch_json(job))
    elif detach:
        typer.echo(f"{job.id}: {job.status}; follow it with `lathe batch status {job.id}`")
    elif job.status == "succeeded":
        what = f"rows scored with {job.plan.get('model_id')}" if job.kind == "score" else "predictions"
        typer.echo(f"{job.id}: succeeded, {job.rows_done:,} {what} in table `{job.output_table}`")
    else:
        typer.echo(f"{job.id}: {job.status}" + (f" ({job.error})" if job.error else "")
                   + f"; `lathe batch resume {job.id}` continues it")
    if job.status == "failed":
        raise typer.Exit(1)


# ---- async ------------------------------------------------------------------------------------------------
@async_app.command("submit")
@command
def async_submit(
    target: str = typer.Argument(..., help="An endpoint, or a model (NAME, NAME@N, a base model)."),
    text: str | None = typer.Argument(None, help="The message to send (or use --file)."),
    file: str | None = typer.Option(None, "--file", "-f", help="A JSON request body (messages or prompt, and "
                                    "decoding) of any size up to 64 MiB; the queue keeps a copy."),
    completion: bool = typer.Option(False, "--completion", help="Send TEXT as a plain prompt, not a chat message."),
    model: str | None = typer.Option(None, "--model", "-m", help="Which of an endpoint's models answers."),
    max_tokens: int = typer.Option(64, "--max-tokens"),
    temperature: float = typer.Option(1.0, "--temperature"),
    webhook: str | None = typer.Option(None, "--webhook", help="POST the result to this URL when it is ready."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Queue a request and print its id at once."""
    from core.errors import UserError
    from runtimes.serving.queue.store import submit

    ws = workspace()
    if (text is None) == (file is None):
        raise UserError("give the request as TEXT or as --file PATH (a JSON body), one of them")
    if file is not None:
        request_id = submit(ws, target, payload_file=file, webhook=webhook)
    else:
        body: dict[str, Any] = ({"prompt": text} if completion else {"messages": [{"role": "user", "content": text}]})
        body.update(max_tokens=max_tokens, temperature=temperature, **({"model": model} if model else {}))
        request_id = submit(ws, target, body, webhook=webhook)
    if as_json:
        print_json({"id": request_id})
    else:
        typer.echo(request_id)


@async_app.command("status")
@command
def async_status(request_id: str | None = typer.Argument(None, help="A request id; the queue's summary without."),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """A request's status (and webhook delivery), or the queue's counts and workers."""
    from runtimes.serving.queue.store import status, summary

    ws = workspace()
    if request_id is None:
        s = summary(ws)
        if as_json:
            print_json(s)
            return
        statuses = ("queued", "running", "done", "failed", "cancelled")
        print_table(["model", *statuses], [[m, *[c.get(x, 0) for x in statuses]] for m, c in s["requests"].items()],
                    title="async requests")
        _print_workers(s["workers"])
        return
    st = status(ws, request_id)
    if as_json:
        print_json(st.to_json())
        return
    print_table(["field", "value"], [[k, json.dumps(v) if isinstance(v, dict) else v]
                                     for k, v in st.to_json().items() if v not in (None, "")], title=request_id)


@async_app.command("result")
@command
def async_result(request_id: str, wait: float = typer.Option(0.0, "--wait", help="Seconds to wait for it."),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """A done request's answer."""
    from runtimes.serving.queue.store import result

    r = result(workspace(), request_id, wait_s=wait)
    if as_json:
        print_json(r.to_json())
    else:
        typer.echo(r.text)


@async_app.command("cancel")
@command
def async_cancel(request_id: str) -> None:
    """Cancel a queued or running request (a worker answering it drops its answer)."""
    from runtimes.serving.queue.store import cancel

    st = cancel(workspace(), request_id)
    typer.echo(f"{st.id}: {st.status}")


@async_app.command("workers")
@command
def async_workers(
    models: list[str] = typer.Option([], "--model", "-m", help="A model or endpoint to serve (repeatable); "
                                     "without one, list the workers seen."),
    workers: int = typer.Option(1, "--workers", "-n", help="Worker processes."),
    exit_when_idle: bool = typer.Option(False, "--exit-when-idle", help="Stop once nothing is left to do."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run async workers in the foreground (Ctrl-C stops them gracefully), or list the workers seen."""
    from runtimes.serving.queue.store import summary

    ws = workspace()
    if not models:
        s = summary(ws)
        if as_json:
            print_json(s["workers"])
        else:
            _print_workers(s["workers"])
        return
    from runtimes.serving.queue.worker import main as worker_main

    argv = [str(ws.root), "--workers", str(workers), *[x for m in models for x in ("--model", m)]]
    argv += ["--exit-when-idle"] if exit_when_idle else []
    raise typer.Exit(worker_main(argv))


def _print_workers(rows: list[dict[str, Any]]) -> None:
    print_table(["worker", "models", "pid", "answered", "started", "last seen", "alive"],
                [[w["name"], ", ".join(w["models"]), w["pid"], w["completed"], _when(w["started_at"]),
                  _when(w["seen_at"]), "yes" if w["alive"] else "no"] for w in rows], title="workers")

"""`lathe finetune`, `lathe jobs …` and `lathe models …`: start fine-tuning jobs, watch, cancel and resume
them, and review the versions they register.

Every `jobs` and `models` command first recovers jobs whose process died, so a restart resumes them without
asking. Training libraries are imported only when a command runs, so `lathe --help` stays fast.
"""
from __future__ import annotations

import datetime as dt

import typer

from core.errors import UserError
from cli.context import command, data_source, print_json, print_table, workspace
from runtimes.training.recipes import TECHNIQUES

jobs_app = typer.Typer(help="Fine-tuning jobs: list, show, logs, events, cancel, resume, delete.", no_args_is_help=True)
models_app = typer.Typer(help="Registered model versions: list, show, approve, reject.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("finetune")(command(finetune))
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(models_app, name="models")


def finetune(
    model: str = typer.Option(..., "--model", "-m", help="Base model: a folder, a workspace model (tiny-qwen3) or a hub id."),
    data: str = typer.Option(..., "--data", "-d", help="A catalog table, or one read-only SQL query."),
    technique: str = typer.Option("sft", "--technique", "-t", help="One of: " + ", ".join(TECHNIQUES) + "."),
    settings: list[str] = typer.Option([], "--set", help="Override a setting: key=value (repeatable)."),
    name: str | None = typer.Option(None, "--name", help="Registered model name (default: <model>-<technique>)."),
    mapping: str | None = typer.Option(None, "--map", help="Which column plays which role, when the columns' names "
                                       "do not say: prompt=COLUMN,completion=COLUMN (or chosen=, rejected=, …)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check the model and data, print the resolved plan with "
                                 "its reasons, memory and duration estimates; start nothing."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the job to end and print its final status."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    processes: int | None = typer.Option(None, "--processes", min=1, help="Ranks training together on this "
                                         "machine (default: one per GPU; on CPU, N processes with gloo)."),
    nodes: int | None = typer.Option(None, "--nodes", min=1, help="Machines to train on; more than 1 runs on a Ray "
                                     "cluster (`[cluster] ray_address` in lathe.toml; `pip install lathe-ml[ray]`)."),
    gpus_per_node: int | None = typer.Option(None, "--gpus-per-node", min=1, help="GPUs to use on each machine."),
    preemptible: bool = typer.Option(False, "--preemptible", help="Spot machines: the plan chooses the checkpoint "
                                     "interval and shows the expected saving; SIGTERM checkpoints and requeues."),
    grace_period: float | None = typer.Option(None, "--grace-period", min=1, help="Seconds a SIGTERM leaves to "
                                              "checkpoint and exit (default 30)."),
    recovery: str | None = typer.Option(None, "--recovery", help="A lost rank of several: disk (restart every rank "
                                        "from the last checkpoint, the default) or peer (healed from a live rank, "
                                        "torchft)."),
) -> None:
    """Fine-tune a model on a catalog table or a SQL query, as a job that survives crashes."""
    from runtimes.jobs import lifecycle
    from runtimes.training.distribution import topology_settings
    from runtimes.training.jobs.spec import JobSpec
    from runtimes.training.jobs.trainer_factory import parse_assignments

    hardware = None
    if gpus_per_node is not None:
        from runtimes.training.hardware import detect_hardware

        hardware = detect_hardware(measure_cpu=False)
    topology = topology_settings(nodes, gpus_per_node, processes, hardware)
    ws = workspace()
    spec = JobSpec.parse({"model": model, "technique": technique,
                          "settings": {**parse_assignments(settings), **topology,
                                       **({"preemptible": True} if preemptible else {}),
                                       **({"grace_period_s": grace_period} if grace_period is not None else {}),
                                       **({"recovery": recovery} if recovery else {})},
                          "name": name, "mapping": parse_mapping(mapping) if mapping else None,
                          "source": data_source(ws, data)})
    if dry_run:
        from runtimes.training.planning import plan_finetune

        plan = plan_finetune(ws, spec)
        if as_json:
            print_json(plan.to_json())
        else:
            typer.echo(plan.explain())
            typer.echo("dry run: nothing was started (change any setting with --set key=value)")
        return
    job = lifecycle.submit(ws, "finetune", spec)
    if wait:
        job = lifecycle.wait(ws, job.id, timeout_s=None)
    if as_json:
        print_json(job.to_json())
    else:
        typer.echo(f"{job.id}: {job.status}" + (f" ({job.error})" if job.error else "")
                   + ("" if wait else f"; follow it with `lathe jobs events {job.id}`"))
    if job.status == "failed":
        raise typer.Exit(1)


def parse_mapping(text: str) -> dict[str, str]:
    """`prompt=question,completion=answer` → {"prompt": "question", "completion": "answer"}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        role, sep, column = (x.strip() for x in part.partition("="))
        if not sep or not role or not column:
            raise UserError(f"`--map {text}`: write it as role=COLUMN pairs separated by commas, "
                            "e.g. --map prompt=question,completion=answer")
        out[role] = column
    return out


def _recovered_ws():
    from runtimes.jobs.lifecycle import recover

    ws = workspace()
    for job_id in recover(ws):
        typer.echo(f"recovered {job_id}: its process had died; resuming from what it saved", err=True)
    return ws


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


@jobs_app.command("list")
@command
def jobs_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """All jobs of every kind (fine-tuning, batch), oldest first."""
    from runtimes.jobs.store import JobStore

    jobs = JobStore(_recovered_ws()).list()
    if as_json:
        print_json([j.to_json() for j in jobs])
        return
    print_table(["job", "kind", "status", "model", "progress", "created", "result"],
                [[j.id, j.kind, j.status, j.spec.get("model", ""), j.progress.describe(), _when(j.created_at),
                  j.model_version or j.output_table or ""] for j in jobs])


@jobs_app.command("show")
@command
def jobs_show(job_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One job: status, settings, lineage, last metrics."""
    from runtimes.jobs.store import JobStore

    store = JobStore(_recovered_ws())
    job = store.get(job_id)
    data = {**job.to_json(), "latest_metrics": {k: v for k, (_, v) in store.latest_metrics(job_id).items()}}
    if as_json:
        print_json(data)
        return
    print_table(["field", "value"], [[k, v] for k, v in data.items() if v not in (None, {}, "")], title=job_id)


@jobs_app.command("logs")
@command
def jobs_logs(job_id: str, tail: int = typer.Option(200, "--tail", "-n", min=1)) -> None:
    """The last lines of the job process's log."""
    from runtimes.jobs.lifecycle import log_path
    from runtimes.jobs.store import JobStore

    ws = _recovered_ws()
    JobStore(ws).get(job_id)
    path = log_path(ws, job_id)
    if not path.exists():
        typer.echo(f"{job_id} has no log yet (it has not started)")
        return
    typer.echo("\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-tail:]))


@jobs_app.command("events")
@command
def jobs_events(job_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Status changes, checkpoints and warnings of a job, in order."""
    from runtimes.jobs.store import JobStore

    events = JobStore(_recovered_ws()).events(job_id)
    if as_json:
        print_json([e.__dict__ for e in events])
        return
    for e in events:
        typer.echo(f"{_when(e.at)}  {e.kind:<10} {e.message}")


@jobs_app.command("cancel")
@command
def jobs_cancel(job_id: str) -> None:
    """Cancel a queued job, or stop a running one once it has saved its work (resumable)."""
    from runtimes.jobs.lifecycle import cancel

    job = cancel(_recovered_ws(), job_id)
    stopping = " (stopping: it saves its work first)" if job.status != "cancelled" else ""
    typer.echo(f"{job.id}: {job.status}{stopping}")


@jobs_app.command("delete")
@command
def jobs_delete(job_id: str) -> None:
    """Delete a job that has ended (cancel a running one first): its records and its run folder."""
    from runtimes.jobs.lifecycle import delete

    job = delete(_recovered_ws(), job_id)
    typer.echo(f"{job.id}: deleted (was {job.status})")


@jobs_app.command("resume")
@command
def jobs_resume(job_id: str) -> None:
    """Continue a cancelled or failed job from what it saved (a checkpoint, the rows done)."""
    from runtimes.jobs.lifecycle import resume

    job = resume(_recovered_ws(), job_id)
    typer.echo(f"{job.id}: {job.status}")


@models_app.command("list")
@command
def models_list(name: str | None = typer.Argument(None), as_json: bool = typer.Option(False, "--json")) -> None:
    """Registered versions with their approval status."""
    from runtimes.models.registry import list_versions

    versions = list_versions(_recovered_ws(), name)
    if as_json:
        print_json([v.to_json() for v in versions])
        return
    print_table(["model", "version", "approval", "job", "base", "dataset"],
                [[v.name, v.version, v.approval, v.lineage.get("job_id", ""), v.lineage.get("base_model", ""),
                  str(v.lineage.get("dataset_hash", ""))[:12]] for v in versions])


@models_app.command("show")
@command
def models_show(name: str, version: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One version with its lineage: base model, dataset hash and SQL, recipe, config, job, metrics."""
    from runtimes.models.registry import get_version

    v = get_version(_recovered_ws(), name, version)
    if as_json:
        print_json(v.to_json())
        return
    print_table(["field", "value"], [[k, val] for k, val in {**v.to_json(), **v.lineage}.items()
                                     if k != "lineage" and val not in (None, "")], title=f"{name} v{version}")


def _decide(name: str, version: str, decision: str, note: str, by: str | None) -> None:
    from core.errors import UserError
    from core.principal import Principal
    from runtimes.models.registry import decide

    who = Principal.local_admin()  # the signed-in user: a decision is never recorded under a name typed in
    if by is not None:
        raise UserError(f"--by is not taken: a decision is recorded as the user who makes it (`{who.name}`); "
                        "run the command as the approver")
    v = decide(_recovered_ws(), name, version, decision, who.name, note)  # type: ignore[arg-type]
    typer.echo(f"{v.name} version {v.version}: {v.approval} by {who.name}")


_REFUSED_BY = typer.Option(None, "--by", hidden=True, help="Refused: decisions are recorded as the current user.")


@models_app.command("approve")
@command
def models_approve(name: str, version: str, note: str = typer.Option("", "--note"),
                   by: str | None = _REFUSED_BY) -> None:
    """Approve a pending version, as the current user."""
    _decide(name, version, "approved", note, by)


@models_app.command("reject")
@command
def models_reject(name: str, version: str, note: str = typer.Option("", "--note"),
                  by: str | None = _REFUSED_BY) -> None:
    """Reject a pending version, as the current user."""
    _decide(name, version, "rejected", note, by)

"""`lathe train`: train a model on a catalog table (and feature views), tuned with Optuna, as a job. A plain request
("predict which customers will churn next month") is read as the chat reads it and proposed from the catalog (label
in words and SQL, features, split); explicit options say it all instead. It shows the plan (task, split, baseline,
search space, budget, each with its reason), asks for approval and submits it; the job registers a version pending
approval (`lathe models approve`)."""
from __future__ import annotations

from typing import Any

import typer

from cli.context import command, print_json, workspace
from core.errors import UserError


def register(app: typer.Typer) -> None:
    app.command("train")(command(train))


def train(
    request: str | None = typer.Argument(None, help="What to predict, in words: \"predict which customers will "
                                         "churn next month from their orders\". Or give --label and --target."),
    label: str | None = typer.Option(None, "--label", "-l", help="The labels: a catalog table, or one read-only SQL "
                                     "query."),
    target: str | None = typer.Option(None, "--target", "-y", help="The label column to predict."),
    entity: str | None = typer.Option(None, "--entity", help="The entity key column (to join feature views)."),
    time: str | None = typer.Option(None, "--time", help="The label time column: features as of then, split by time."),
    features: list[str] = typer.Option([], "--features", "-f", help="A feature view reference (repeatable): "
                                       "view, view:feature, view@2."),
    columns: list[str] = typer.Option([], "--column", "-c", help="A column of the labels used as a feature (repeatable)."),
    sensitive: list[str] = typer.Option([], "--sensitive", help="A column of the labels to check for bias by group "
                                        "(repeatable), besides those tagged `sensitive` in the catalog."),
    task: str | None = typer.Option(None, "--task", help="classification or regression (default: from the label)."),
    family: str | None = typer.Option(None, "--family", help="lightgbm (default), sklearn or xgboost."),
    metric: str | None = typer.Option(None, "--metric", help="roc_auc, accuracy, f1, log_loss; rmse, mae, r2."),
    trials: int | None = typer.Option(None, "--trials", help="Tuning budget in trials (default 20)."),
    minutes: float | None = typer.Option(None, "--minutes", help="Tuning budget in minutes."),
    name: str | None = typer.Option(None, "--name", help="Registered model name (default: <target>-<family>)."),
    yes: bool = typer.Option(False, "--yes", help="Approve the plan without asking."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan with its reasons; start nothing."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the job to end and print its final status."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Train a model on tables: plan, approve, tune and register, as a job."""
    from runtimes.jobs import lifecycle
    from runtimes.tabular.planning import plan_train
    from runtimes.tabular.train_kind import planned

    ws = workspace()
    overrides = {"task": task, "family": family, "metric": metric, "trials": trials, "minutes": minutes, "name": name,
                 "sensitive": sensitive or None}
    if request is not None:
        if label or target or features or columns or entity or time:
            raise UserError("give either a request in words or --label/--target (with --entity, --time, --features, "
                            "--column), not both")
        plan = _proposed(ws, request, {k: v for k, v in overrides.items() if v is not None}, quiet=as_json)
    elif label is None or target is None:
        raise UserError("say what to predict: lathe train \"predict which customers will churn next month\", or "
                        "--label TABLE_OR_QUERY --target COLUMN")
    else:
        spec = {"label": {"source": label, "column": target, "entity": entity, "time": time}, "features": features,
                "columns": columns, **overrides}
        plan = plan_train(ws, {k: v for k, v in spec.items() if v is not None})
    if as_json and dry_run:
        print_json(plan.model_dump(mode="json"))
        return
    if not as_json:
        typer.echo(plan.explain())
    if dry_run:
        typer.echo("dry run: nothing was started")
        return
    if not yes and not typer.confirm("Approve this plan and start training?", default=False):
        typer.echo("not approved: nothing was started")
        raise typer.Exit(1)
    job = lifecycle.submit(ws, "train", planned=planned(plan))
    if wait:
        job = lifecycle.wait(ws, job.id, timeout_s=None)
    if as_json:
        print_json(job.to_json())
    else:
        from runtimes.jobs.store import JobStore

        last = JobStore(ws).events(job.id)[-1].message if wait else f"follow it with `lathe jobs events {job.id}`"
        typer.echo(f"{job.id}: {job.status}; {last}")
    if job.status == "failed":
        raise typer.Exit(1)


def _proposed(ws: Any, request: str, overrides: dict[str, Any], quiet: bool) -> Any:
    """The plan of a request in words, read as the offline planner reads it; the proposal is printed first."""
    from agent.planners.question_words import tokenize
    from agent.planners.train_intents import read_request
    from catalog.store import CatalogStore
    from tools.tabular_training import choices_of, plan_of, proposal_of

    reading = read_request(request, tokenize(request), CatalogStore(ws).load())
    if reading.problem:
        raise UserError(reading.problem)
    settings = {**reading.settings, **overrides}
    choices = choices_of({"goal": request, "entity": reading.entity, "target": reading.target,
                          "sources": reading.sources, "only": reading.only, **settings})
    proposed = proposal_of(ws, choices)
    if not quiet:
        typer.echo(proposed.proposal)  # the label, its SQL and the features; the plan follows
    return plan_of(ws, proposed.spec)

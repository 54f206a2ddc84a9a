"""MLflow tracking for training jobs: one run per job in the workspace's SQLite store (`mlflow.db`), so that
`mlflow ui --backend-store-uri sqlite:///<workspace>/mlflow.db` shows every job.

It talks to MLflow through `MlflowClient` only (no global active run), and never leaves the workspace:
artifacts go under `runs/mlflow-artifacts`.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any

from catalog.workspace import Workspace

EXPERIMENT = "lathe-finetune"
_PARAM_MAX = 6000  # MLflow's limit on one parameter value


def tracking_uri(ws: Workspace) -> str:
    return f"sqlite:///{ws.mlflow_db}"


def client(ws: Workspace) -> Any:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    from mlflow.tracking import MlflowClient

    # Creating the schema logs alembic's progress at INFO; a job log needs none of it.
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = tracking_uri(ws)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(ws: Workspace, c: Any | None = None) -> str:
    c = c or client(ws)
    exp = c.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    artifacts = ws.root / "runs" / "mlflow-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    return c.create_experiment(EXPERIMENT, artifact_location=artifacts.as_uri())


class JobRun:
    """The MLflow run of one job; a resumed job continues its run."""

    def __init__(self, ws: Workspace, job_id: str, run_id: str | None = None) -> None:
        self.client = client(ws)
        if run_id is None:
            run = self.client.create_run(experiment_id(ws, self.client), run_name=job_id,
                                         tags={"lathe.job_id": job_id})
            run_id = run.info.run_id
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.run_id: str = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        existing = self.client.get_run(self.run_id).data.params
        new = [Param(k, str(v)[:_PARAM_MAX]) for k, v in params.items() if k not in existing]
        if new:  # MLflow refuses to change a logged parameter; a resumed job logs the same ones again
            self.client.log_batch(self.run_id, params=new)

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def finish(self, status: str) -> None:
        """`status`: FINISHED, FAILED or KILLED."""
        self.client.set_terminated(self.run_id, status=status)

"""MLflow tracking for training jobs: one run per job in the workspace's SQLite store (`mlflow.db`), so that
`mlflow ui --backend-store-uri sqlite:///<workspace>/mlflow.db` shows every job, with its training data as a
dataset input (named by the SQL and tables it came from) and the trained model among its artifacts.

It talks to MLflow through `MlflowClient` only (no global active run), and never leaves the workspace:
artifacts go under `runs/mlflow-artifacts`.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from core.workspace import Workspace

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


def experiment_id(ws: Workspace, c: Any | None = None, name: str = EXPERIMENT) -> str:
    """The id of the workspace's experiment `name`, made on first use with its artifacts in the workspace."""
    c = c or client(ws)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    artifacts = ws.root / "runs" / "mlflow-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    return c.create_experiment(name, artifact_location=artifacts.as_uri())


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

    def log_dataset(self, prepared: Any, context: str = "train") -> None:
        """The prepared rows as an MLflow dataset input: schema, row count, content hash as digest, and as source
        the SQL and tables of the workspace's warehouse they were read with."""
        import mlflow.data
        from mlflow.entities import DatasetInput, InputTag

        rows = prepared.train if context == "train" else prepared.eval
        if rows is None:
            return
        source = _warehouse_source_class()(sql=prepared.sql, tables=list(prepared.tables))
        name = "+".join(prepared.tables) or "query"
        dataset = mlflow.data.from_pandas(rows.to_pandas(), source=source, name=f"{name} ({context})",
                                          digest=prepared.content_hash[:16])
        self.client.log_inputs(self.run_id, datasets=[DatasetInput(
            dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)])])

    def log_model(self, folder: Path) -> str:
        """The saved model (weights or adapter, tokenizer) as the run's `model` artifacts; returns their URI."""
        self.client.log_artifacts(self.run_id, str(folder), "model")
        return f"runs:/{self.run_id}/model"

    def finish(self, status: str) -> None:
        """`status`: FINISHED, FAILED or KILLED."""
        self.client.set_terminated(self.run_id, status=status)


@functools.cache
def _warehouse_source_class() -> type:
    """MLflow's `DatasetSource` for rows read by a SQL query over the workspace's DuckDB warehouse (defined on
    first use: importing MLflow's data module is slow)."""
    from mlflow.data.dataset_source import DatasetSource

    class WarehouseQuerySource(DatasetSource):
        def __init__(self, sql: str, tables: list[str]) -> None:
            self.sql, self.tables = sql, tables

        @staticmethod
        def _get_source_type() -> str:
            return "lathe_warehouse_sql"

        def load(self, **kwargs: Any) -> Any:
            raise NotImplementedError("run the SQL in the workspace (`lathe query`) to read these rows again")

        @staticmethod
        def _can_resolve(raw_source: Any) -> bool:
            return False

        @classmethod
        def _resolve(cls, raw_source: Any) -> Any:
            raise NotImplementedError

        def to_dict(self) -> dict[str, Any]:
            return {"sql": self.sql, "tables": self.tables}

        @classmethod
        def from_dict(cls, source_dict: dict[str, Any]) -> Any:
            return cls(sql=source_dict["sql"], tables=list(source_dict.get("tables", [])))

    return WarehouseQuerySource


def dataset_inputs(ws: Workspace, run_id: str) -> list[dict[str, Any]]:
    """The run's dataset inputs: name, digest, context, source (SQL and tables) and profile."""
    run = client(ws).get_run(run_id)
    out = []
    for d in run.inputs.dataset_inputs:
        tags = {t.key: t.value for t in d.tags}
        out.append({"name": d.dataset.name, "digest": d.dataset.digest, "context": tags.get("mlflow.data.context"),
                    "source_type": d.dataset.source_type, "source": json.loads(d.dataset.source),
                    "profile": json.loads(d.dataset.profile or "{}")})
    return out

"""MLflow for training jobs on tables: one parent run per job in the workspace's `lathe-train` experiment and one
child run per tuning trial (MLflow's `mlflow.parentRunId` tag), through `MlflowClient` only."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from core.workspace import Workspace
from runtimes.models.tracking import client, experiment_id

EXPERIMENT = "lathe-train"


class Run:
    def __init__(self, ws: Workspace, name: str, tags: dict[str, str], parent: "Run | None" = None) -> None:
        self.client = parent.client if parent else client(ws)
        if parent:
            tags = {**tags, "mlflow.parentRunId": parent.run_id}
        self.run_id: str = self.client.create_run(experiment_id(ws, self.client, EXPERIMENT), run_name=name,
                                                  tags=tags).info.run_id

    def log(self, params: dict[str, Any] | None = None, metrics: dict[str, float] | None = None, step: int = 0) -> None:
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in (params or {}).items()],
                              metrics=[Metric(k, float(v), now, step) for k, v in (metrics or {}).items()])

    def artifacts(self, folder: Path, path: str) -> str:
        self.client.log_artifacts(self.run_id, str(folder), path)
        return f"runs:/{self.run_id}/{path}"

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)

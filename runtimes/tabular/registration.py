"""A trained table model into the MLflow registry, pending approval like every version: its lineage (the training
rows' SQL, tables and content hash, feature view versions, the split), the tuning study and its best parameters,
the held-out metrics and the bias verdicts; and the training rows as the job run's MLflow dataset input."""
from __future__ import annotations

from typing import Any

from core.workspace import Workspace
from runtimes.models.registry import ModelVersion, register_version


def lineage(p: Any, data: Any, job_id: str, report: dict[str, Any], model_uri: str) -> dict[str, Any]:
    m = report["metric"]
    return {"job_id": job_id, "technique": f"tabular-{p.task}", "base_model": p.spec.family,
            "dataset_hash": p.dataset_hash, "dataset_sql": p.dataset_sql,
            "dataset": {"label": p.spec.label.model_dump(exclude_none=True), "features": p.features,
                        "tables": data.tables, "rows": p.rows, "split": p.split, "sensitive": data.sensitive},
            "feature_views": p.feature_views, "study": report["tuning"], "config": report["tuning"]["best_params"],
            "metrics": {f"test_{m}": report["value"], f"test_{m}_ci95": report["ci95"], f"baseline_{m}": report["baseline"],
                        **{f"test_{k}": v for k, v in report["other_metrics"].items()}},
            "fairness": {c: {"review": f["review"], "before": f["before"]["verdict"], "after": f["after"]["verdict"]}
                         for c, f in report["fairness"].items()},
            "model_uri": model_uri}


def register(ws: Workspace, p: Any, data: Any, job_id: str, run: Any, report: dict[str, Any], model_dir: Any,
             model_uri: str) -> tuple[ModelVersion, dict[str, Any]]:
    """Log the training rows as the run's dataset input and register the model at `model_dir`, pending approval;
    returns the version and its whole lineage (the registry's tags hold each part up to MLflow's length limit)."""
    log_dataset(run, data, p.dataset_hash)
    full = lineage(p, data, job_id, report, model_uri)
    return register_version(ws, p.name, str(model_dir), run.run_id, full), full


def log_dataset(run: Any, data: Any, digest: str) -> None:
    """The labelled rows as an MLflow dataset input named by the tables read, with their SQL as the source."""
    import warnings

    import mlflow.data
    from mlflow.entities import DatasetInput, InputTag

    from runtimes.models.tracking import _warehouse_source_class

    source = _warehouse_source_class()(sql=data.sql, tables=list(data.tables))
    with warnings.catch_warnings():  # MLflow's hint on integer columns in an inferred schema: these rows are read, not served
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(data.frame, source=source, name=f"{'+'.join(data.tables) or 'query'} (train)",
                                          digest=digest[:16])
        entity = dataset._to_mlflow_entity()
    run.client.log_inputs(run.run_id, datasets=[DatasetInput(entity, tags=[InputTag("mlflow.data.context", "train")])])

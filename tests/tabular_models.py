"""A tiny churn model made in a second for the serving and monitoring tests: LightGBM fitted on the churn
workspace's labels joined to the `activity` feature view, saved and registered as the `train` job saves it (model
folder with `model.joblib` and `inputs.json`, lineage with the entity key and feature views), approved, and the
view materialized online. Holds no tests."""
from __future__ import annotations

import json
from pathlib import Path

from core.workspace import Workspace
from tests.tabular_workspace import build_churn_workspace, churn_spec

NAME = "churn-lgbm"


def churn_workspace(tmp_path_factory) -> tuple[Workspace, object]:
    """A copy of a workspace with the approved `churn-lgbm@1`, and the frame the model trained on. The workspace
    copied is made once per test session, shared by the xdist workers (the first one makes it, under a lock)."""
    import fcntl
    import os

    import pandas as pd

    from tests.conftest import copy_workspace

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    template = shared / "churn-template"
    with open(shared / "churn-template.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (template / "frame.parquet").exists():
                import shutil

                shutil.rmtree(template, ignore_errors=True)  # what a worker stopped half-way left
                template.mkdir()
                _, frame = churn_model(template)
                frame.to_parquet(template / "frame.parquet")  # written last: the template is whole
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return copy_workspace(template / "ws", tmp_path_factory.mktemp("churn")), pd.read_parquet(template / "frame.parquet")


def churn_model(root: Path, customers: int = 80, months: int = 3) -> tuple[Workspace, object]:
    """A workspace with the approved `churn-lgbm@1`; returns it and the frame the model trained on."""
    import joblib
    import lightgbm as lgb

    from runtimes.features.materialize import materialize
    from runtimes.models.registry import decide, register_version
    from runtimes.tabular.data import load, model_inputs
    from runtimes.tabular.spec import TrainSpec

    ws = Workspace(root / "ws")
    ws.create()
    build_churn_workspace(ws, customers=customers, months=months)
    spec = TrainSpec.parse(churn_spec())
    data = load(ws, spec)
    x = model_inputs(data.frame, data.features)
    y = data.frame["churned"].astype(int).to_numpy()
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=4, min_child_samples=5, verbose=-1, n_jobs=1,
                               random_state=0).fit(x, y)
    folder = ws.root / "runs" / "jobs" / "job-test" / "model"
    folder.mkdir(parents=True)  # where the job would save it; the copies read the template's
    joblib.dump(model, folder / "model.joblib")
    (folder / "inputs.json").write_text(json.dumps({
        "features": data.features, "task": "classification", "classes": ["0", "1"], "family": "lightgbm",
        "categories": {c: [str(v) for v in x[c].cat.categories] for c in x.columns if str(x[c].dtype) == "category"}}))
    lineage = {"job_id": "job-test", "technique": "tabular-classification", "base_model": "lightgbm",
               "dataset_hash": data.content_hash, "dataset_sql": data.sql,
               "dataset": {"label": spec.label.model_dump(exclude_none=True), "features": data.features,
                           "rows": len(data.frame)},
               "feature_views": data.feature_views}
    register_version(ws, NAME, str(folder), None, lineage)
    decide(ws, NAME, 1, "approved", "tester")
    materialize(ws)
    return ws, data.frame

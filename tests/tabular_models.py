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
_TEMPLATE: dict[str, tuple[Path, object]] = {}


def churn_workspace(tmp_path_factory) -> tuple[Workspace, object]:
    """A copy of a workspace with the approved `churn-lgbm@1` (made once per test process), and the frame the
    model trained on."""
    from tests.conftest import copy_workspace

    if "ws" not in _TEMPLATE:
        ws, frame = churn_model(tmp_path_factory.mktemp("churn-template"))
        _TEMPLATE["ws"] = (ws.root, frame)
    root, frame = _TEMPLATE["ws"]
    return copy_workspace(root, tmp_path_factory.mktemp("churn")), frame


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

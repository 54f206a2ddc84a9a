"""Reference data for drift: a baseline of traffic features computed over the training data of a registered
model version, or the traffic of an earlier window.

A baseline reads the training rows again through the registry's lineage (`dataset_sql`, a guarded read query)
and stores their features as `runs/monitoring/baselines/<model>@<version>.parquet` with a JSON note beside it,
and the data-quality constraints suggested from them (`.constraints.json`, which a person may edit).
It never changes the warehouse, the registry or the training data.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.workspace import Workspace
from runtimes.monitoring.data_quality import Constraints, suggest_constraints
from runtimes.monitoring.features import TRAFFIC_ONLY, Topics, compute_features, user_text
from runtimes.monitoring.traffic import render_chat

_MODEL_REF = re.compile(r"^(?P<name>[^@\s]+)@(?P<version>\d+)$")


@dataclass(frozen=True)
class Baseline:
    model: str  # name@version
    path: Path
    rows: int
    dataset_hash: str | None
    dataset_sql: str
    created_at: float
    mapping: str  # the column mapping the prompts and replies were read with
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "path": str(self.path), "rows": self.rows, "dataset_hash": self.dataset_hash,
                "dataset_sql": self.dataset_sql, "created_at": self.created_at, "mapping": self.mapping,
                "warnings": self.warnings}


def parse_model_ref(ref: str) -> tuple[str, str]:
    """`tiny-qwen3-sft@2` → (`tiny-qwen3-sft`, `2`)."""
    m = _MODEL_REF.match(ref.strip())
    if not m:
        raise UserError(f"`{ref}` does not name a registered model version: write NAME@VERSION, "
                        "e.g. tiny-qwen3-sft@2 (`lathe models list` shows them)")
    return m["name"], m["version"]


def baseline_dir(ws: Workspace) -> Path:
    return ws.root / "runs" / "monitoring" / "baselines"


def build_baseline(ws: Workspace, model_ref: str) -> Baseline:
    """Compute and store the features of the training prompts and replies of a registered model version."""
    from runtimes.training.datasets.examples import to_example
    from runtimes.training.datasets.formats import ColumnMapping, DatasetFormat, detect_mapping
    from runtimes.training.datasets.row_problems import RowProblem
    from catalog.data_source import Query
    from runtimes.training.datasets.sources import read_source
    from runtimes.models.registry import get_version

    name, version = parse_model_ref(model_ref)
    mv = get_version(ws, name, version)
    sql = mv.lineage.get("dataset_sql")
    if not sql:
        raise UserError(f"`{name}@{version}` records no training data (no dataset_sql in its lineage): "
                        "use the previous window of traffic as the reference instead")
    source = read_source(ws, Query(sql=str(sql)))
    recorded = mv.lineage.get("dataset") if isinstance(mv.lineage.get("dataset"), dict) else {}
    if recorded.get("mapping") and recorded.get("format"):
        # The mapping training used wins over a fresh guess, so the baseline reads the same columns.
        mapping = ColumnMapping(format=DatasetFormat(recorded["format"]), columns=dict(recorded["mapping"]))
        mapping.check_columns(source.columns)
    else:
        mapping = detect_mapping(source.columns, source.rows)
    prompts, replies, skipped = [], [], 0
    for row in source.rows:
        try:
            ex = to_example(mapping, dict(zip(source.columns, row)))
        except RowProblem:
            skipped += 1  # training left the same rows out
            continue
        reply = ex.completion if ex.completion is not None else ex.chosen
        prompts.append(render_chat(ex.prompt))
        replies.append(reply or "")
    if not prompts:
        raise UserError(f"none of the {len(source.rows):,} training rows of `{name}@{version}` gives a prompt and a reply")
    warnings = []
    if skipped:
        warnings.append(f"{skipped:,} rows had no usable prompt and reply and were left out, as in training")
    if recorded.get("rows_read") not in (None, len(source.rows)):
        warnings.append(f"the training query returns {len(source.rows):,} rows now but read {recorded['rows_read']:,} "
                        "when the model was trained: the data changed since")
    topics = Topics.from_catalog(ws)
    frame = compute_features(prompts, replies, topics=topics).drop(columns=list(TRAFFIC_ONLY))
    frame.insert(0, "prompt", prompts)
    frame.insert(1, "response", replies)
    folder = baseline_dir(ws)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}@{version}.parquet"
    base = Baseline(model=f"{name}@{version}", path=path, rows=len(frame), dataset_hash=mv.lineage.get("dataset_hash"),
                    dataset_sql=str(sql), created_at=time.time(), mapping=mapping.describe(), warnings=warnings)
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)  # a reader never sees half a file
    path.with_suffix(".json").write_text(json.dumps({**base.to_json(), "topics_key": topics.key}, indent=2),
                                         encoding="utf-8")
    _write_constraints(constraints_path(ws, model_ref), frame)
    return base


def constraints_path(ws: Workspace, model_ref: str) -> Path:
    name, version = parse_model_ref(model_ref)
    return baseline_dir(ws) / f"{name}@{version}.constraints.json"


def _write_constraints(path: Path, frame: Any) -> Constraints:
    constraints = suggest_constraints(frame.drop(columns=["prompt", "response"], errors="ignore"))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(constraints.model_dump_json(indent=2), encoding="utf-8")
    tmp.replace(path)
    return constraints


def load_constraints(ws: Workspace, model_ref: str) -> Constraints:
    """The data-quality constraints of a model version's baseline: the stored file (as a person may have edited
    it), or suggested from the baseline's features and stored when there is none yet."""
    path = constraints_path(ws, model_ref)
    if not path.exists():
        _, frame = load_baseline(ws, model_ref)
        return _write_constraints(path, frame)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: line {e.lineno}: not JSON ({e.msg}); delete the file to have constraints "
                        "suggested again from the baseline") from None
    return Constraints.parse(data, str(path))


def load_baseline(ws: Workspace, model_ref: str, *, build: bool = True) -> tuple[Baseline, Any]:
    """The stored baseline of a model version and its features (built first when missing and `build`).
    Topics are recomputed when the catalog's vocabulary changed since it was stored."""
    import pandas as pd

    name, version = parse_model_ref(model_ref)
    path = baseline_dir(ws) / f"{name}@{version}.parquet"
    note = path.with_suffix(".json")
    if not (path.exists() and note.exists()):
        if not build:
            raise UserError(f"no baseline for `{name}@{version}` yet: create it with `lathe monitors baseline "
                            f"{name}@{version}`")
        build_baseline(ws, model_ref)
    meta = json.loads(note.read_text(encoding="utf-8"))
    frame = pd.read_parquet(path)
    topics = Topics.from_catalog(ws)
    if meta.get("topics_key") != topics.key:
        frame["topic"] = topics.of([user_text(p) for p in frame["prompt"]])
    meta.pop("topics_key", None)
    return Baseline(**{**meta, "path": Path(meta["path"])}), frame


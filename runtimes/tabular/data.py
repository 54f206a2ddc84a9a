"""The labelled frame a model trains on: the label source read through the SQL guard (masked for the principal),
joined point-in-time to feature views when asked, with a content hash so a job trains on the rows it was approved
for, and the columns turned into what estimators take (categories, numbers)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import duckdb

from catalog.data_source import parse_source
from catalog.pii_masking import mask_at_source
from catalog.query_schema import warehouse_catalog
from catalog.sql_guard import guard, unknown_in
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader
from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace
from runtimes.tabular.spec import TrainSpec


@dataclass
class Labelled:
    frame: Any  # pandas DataFrame: label source columns and feature columns
    features: list[str]  # the feature columns, in order
    sql: str  # the label source's statement as read
    feature_views: list[str]  # `view@version` of each view joined
    content_hash: str
    sensitive: list[str] = field(default_factory=list)  # columns to check for bias: asked for, or tagged in the catalog
    tables: list[str] = field(default_factory=list)  # the catalog tables the label source reads


def load(ws: Workspace, spec: TrainSpec, principal: Principal | None = None) -> Labelled:
    principal = principal or Principal.local_admin()
    frame, sql, tables, tagged = _read_source(ws, spec.label.source, principal)
    columns = [str(c) for c in frame.columns]
    needed = [("label column", spec.label.column), ("entity key", spec.label.entity),
              ("label time", spec.label.time)] + [("feature column", c) for c in spec.columns] \
        + [("column to check for bias, named as sensitive", c) for c in spec.sensitive]
    for what, name in needed:
        if name is not None and name not in columns:
            raise UserError(unknown_in("column", name, columns, "the label source") + f" (the {what})")
    views: list[str] = []
    features = list(spec.columns)
    if spec.features:
        from runtimes.features.offline_store import training_set
        from runtimes.features.selection import select_features

        selections = select_features(ws, spec.features)
        views = [f"{s.version.name}@{s.version.version}" for s in selections]
        before = set(columns)
        frame = training_set(ws, spec.label.source, spec.features, timestamp_column=spec.label.time,
                             principal=principal)
        features += [str(c) for c in frame.columns if c not in before]
    if len(frame) == 0:
        raise UserError(f"the label source has no rows: {sql}")
    sensitive = list(dict.fromkeys([*spec.sensitive, *(c for c in columns if c.lower() in tagged)]))
    keep = [spec.label.column] + [c for c in (spec.label.entity, spec.label.time) if c] + features + sensitive
    frame = in_content_order(frame[list(dict.fromkeys(keep))])
    return Labelled(frame=frame, features=features, sql=sql, feature_views=views, content_hash=content_hash(frame),
                    sensitive=sensitive, tables=tables)


def _read_source(ws: Workspace, source: str, principal: Principal) -> tuple[Any, str, list[str], set[str]]:
    """The rows, the statement read, the tables it reads and the (lower-case) names of their columns tagged
    `sensitive` in the catalog."""
    from sqlglot import exp

    catalog = CatalogStore(ws).load()
    with connect_reader(ws) as con:
        tables = warehouse_catalog(con, catalog)
        guarded = guard(parse_source(source, tables.tables).statement(), "duckdb", tables)
        if guarded.query is None:
            raise UserError("the label source must be a catalog table or one SELECT query")
        tree = guarded.tree if principal.is_admin else mask_at_source(guarded.tree, principal, tables)
        sql = tree.sql(dialect="duckdb")
        read = sorted({t.name for t in guarded.tree.find_all(exp.Table)})
        tagged = {c.name.lower() for name in read if (t := catalog.table(name)) for c in t.columns
                  if any(tag.lower() == "sensitive" for tag in c.tags)}
        try:
            return con.execute(sql).df(), sql, read, tagged
        except duckdb.Error as e:
            raise UserError(f"the label source could not be read: {str(e).strip().splitlines()[0]}") from None


def in_content_order(frame: Any) -> Any:
    """The rows in an order that depends on their content only: a query without ORDER BY returns them in any order
    (DuckDB reads in parallel), and the split, the model and the hash must not change with it."""
    import pandas as pd

    order = pd.util.hash_pandas_object(frame, index=False).to_numpy().argsort(kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def content_hash(frame: Any) -> str:
    """The hash of the columns and the rows, whatever order the rows come in."""
    import numpy as np
    import pandas as pd

    h = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    h.update(np.sort(pd.util.hash_pandas_object(frame, index=False).to_numpy()).tobytes())
    return h.hexdigest()


def model_inputs(frame: Any, features: list[str]) -> Any:
    """The feature columns as estimators take them: text as categories, times as epoch seconds, flags as 0/1."""
    import pandas as pd

    out = {}
    for c in features:
        col = frame[c]
        if pd.api.types.is_bool_dtype(col):
            out[c] = col.astype("float64")
        elif pd.api.types.is_datetime64_any_dtype(col):
            out[c] = col.astype("int64") // 10**9
        elif pd.api.types.is_numeric_dtype(col):
            out[c] = col.astype("float64")
        else:
            out[c] = col.astype("string").astype("category")
    return pd.DataFrame(out, index=frame.index)

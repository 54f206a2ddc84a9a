"""The differential comparison of the semantic layer with MetricFlow: real MetricFlow projects on DuckDB data
(the tutorial's seeds; deterministic generated rows for MetricFlow's own test manifests), every metric by a
deterministic sample of group-bys and filters, Lathe's rows beside MetricFlow's (from `tests/metricflow_oracle.py`
run in MetricFlow's own environment). Used by the test and by `python -m tests.metricflow_diff` (prints counts).
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import yaml

from core.errors import UserError
from catalog.semantic.compiler import TimeSpineTable, compile_query, dimensions_for
from catalog.semantic.join_graph import JoinGraph
from catalog.semantic.query import MetricQuery
from catalog.semantic.spec import DimensionType, EntityType, SemanticManifest
from catalog.store import load_semantic_file
from tests.waiting import run

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL = Path(__file__).parent / "fixtures" / "external"
MF_PYTHON = ROOT / ".venv-mf" / "bin" / "python"
ORACLE = Path(__file__).parent / "metricflow_oracle.py"
# MetricFlow's test manifests compared on generated rows (the others repeat these, or test name resolution).
MANIFESTS = ("simple_manifest", "multi_hop_join_manifest", "join_types_manifest", "sg_02_single_join",
             "derived_metrics_manifest", "simple_multi_hop_join_manifest", "extended_date_manifest")
PER_PROJECT = 160  # queries sampled per project
START = dt.date(2020, 1, 1)
DAYS = 120


@dataclass
class Project:
    name: str
    files: list[Path]
    manifest: SemanticManifest
    database: Path
    spine: TimeSpineTable | None
    extra_yaml: str = ""


@dataclass
class Case:
    id: str
    metrics: list[str]
    group_by: list[str]
    where: list[str]


# ---- the projects and their data ----------------------------------------------------------------------------


def _manifest(files: list[Path]) -> SemanticManifest:
    m = SemanticManifest()
    for f in files:
        m = m.merged(load_semantic_file(f))
    return m.with_measure_metrics()


def tutorial(tmp: Path) -> Project:
    root = EXTERNAL / "mf_tutorial"
    db = tmp / "mf_tutorial.duckdb"
    con = duckdb.connect(str(db))
    for n in ("transactions", "customers", "countries"):
        con.read_csv(str(root / "seeds" / f"{n}_seed.csv")).create(n)
    con.execute("CREATE TABLE metricflow_time_spine AS SELECT CAST(range AS DATE) AS date_day "
                "FROM range(DATE '2021-01-01', DATE '2025-01-01', INTERVAL 1 DAY)")
    con.close()
    files = sorted((root / "sample_models").glob("*.yml"))
    extra = ("project_configuration:\n  time_spines:\n    - node_relation: {alias: metricflow_time_spine, "
             "schema_name: main}\n      primary_column: {name: date_day, time_granularity: day}\n")
    return Project("mf_tutorial", files, _manifest(files), db, TimeSpineTable("metricflow_time_spine", "date_day"),
                   extra)


def _columns(text: str) -> list[str]:
    import sqlglot
    from sqlglot import exp
    return [c.name for c in sqlglot.parse_one(str(text), read="duckdb").find_all(exp.Column)]


def generated(name: str, tmp: Path) -> Project:
    """A MetricFlow test manifest over generated rows: keys unique where an entity is primary, foreign keys
    that sometimes miss (so joins find no row) or are NULL, small value sets so groups and filters bite."""
    from tests.test_semantic_manifests import empty_warehouse
    root = EXTERNAL / "mf_manifests" / name
    files = sorted(f for f in root.rglob("*.y*ml"))
    manifest = _manifest(files)
    con = empty_warehouse(manifest)
    keys: dict[str, set[str]] = {}  # table -> columns of its primary/unique/natural entities
    for sm in manifest.semantic_models:
        for e in sm.entities:
            if e.type != EntityType.foreign:
                keys.setdefault(sm.table, set()).update(_columns(e.column_expr))
    grains = {d.column_expr: d.grain for sm in manifest.semantic_models for d in sm.dimensions
              if d.type == DimensionType.time}
    entity_columns = {c for sm in manifest.semantic_models for e in sm.entities for c in _columns(e.column_expr)}
    db = tmp / f"{name}.duckdb"
    out = duckdb.connect(str(db))
    rnd = random.Random(name)
    for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
        cols = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                           "ORDER BY ordinal_position", [table]).fetchall()
        rows = []
        for i in range(30):
            row = []
            for c, t in cols:
                if c in keys.get(table, ()):
                    v = f"k{i}"
                elif rnd.random() < 0.1:
                    v = None
                elif t == "VARCHAR":
                    v = f"k{rnd.randrange(36)}" if c.endswith("id") or c in entity_columns else \
                        rnd.choice(["a", "b", "c"])
                elif t == "DOUBLE":
                    v = float(rnd.randrange(100))
                elif t == "BOOLEAN":
                    v = rnd.random() < 0.5
                else:  # a time at the grain its dimension declares
                    v = dt.datetime.combine(START + dt.timedelta(days=rnd.randrange(DAYS)), dt.time())
                    if grains.get(c) == "month":
                        v = v.replace(day=1)
                row.append(v)
            rows.append(row)
        defs = ", ".join(f'"{c}" {t}' for c, t in cols)
        out.execute(f'CREATE TABLE "{table}" ({defs})')
        if rows:
            out.executemany(f'INSERT INTO "{table}" VALUES ({", ".join("?" * len(cols))})', rows)
    con.close()
    spine = _spines(out, root)
    out.close()
    return Project(name, files, manifest, db, spine)


_DATE_GRAINS = ("day", "week", "month", "quarter", "year")


def _spines(con: duckdb.DuckDBPyConnection, root: Path) -> TimeSpineTable | None:
    """The time spine tables the project configuration names, over the generated dates (and a margin)."""
    config = root / "project_configuration.yaml"
    if not config.exists():
        config = root.parent / "shared" / "project_configuration.yaml"
    pc = (yaml.safe_load(config.read_text()) or {}).get("project_configuration", {})
    tables: dict[str, dict[str, str]] = {}
    day = None
    for s in pc.get("time_spines", []):
        alias, col = s["node_relation"]["alias"], s["primary_column"]["name"]
        grain = s["primary_column"].get("time_granularity", "day")
        tables.setdefault(alias, {})[col] = grain
        for cg in s.get("custom_granularities", []) or []:
            tables[alias][cg.get("column_name") or cg["name"]] = "custom"
        if grain == "day":
            day = TimeSpineTable(alias, col)
    for alias, cols in tables.items():
        step = "1 HOUR" if any(g in ("hour", "minute", "second", "millisecond", "microsecond", "nanosecond")
                              for g in cols.values()) else "1 DAY"
        sel = ", ".join(f"'x' AS \"{c}\"" if g == "custom" else
                        f"CAST(date_trunc('{g}', range) AS DATE) AS \"{c}\"" if g in _DATE_GRAINS else
                        f"range AS \"{c}\"" for c, g in cols.items())
        con.execute(f'CREATE TABLE "{alias}" AS SELECT DISTINCT {sel} FROM range(TIMESTAMP \'2019-10-01\', '
                    f"TIMESTAMP '2020-08-01', INTERVAL {step})")
    return day


# ---- the queries --------------------------------------------------------------------------------------------


def _template(name: str) -> str:
    """`a__b__c` as MetricFlow's filter spelling: Dimension('b__c', entity_path=['a'])."""
    parts = name.split("__")
    if len(parts) > 2:
        return f"{{{{ Dimension('{'__'.join(parts[-2:])}', entity_path={parts[:-2]!r}) }}}}"
    return f"{{{{ Dimension('{name}') }}}}"


def cases(p: Project) -> list[Case]:
    rnd = random.Random(p.name)
    graph = JoinGraph(p.manifest)
    out: list[Case] = []
    for m in sorted(x.name for x in p.manifest.metrics):
        try:
            dims = dimensions_for(p.manifest, [m])
        except UserError:
            dims = []
        try:
            own = set().union(*[graph.self_names(model) for model in _models_of(p, m)])
        except UserError:
            own = set()
        # the names MetricFlow spells: not the model's own entity before a joined path
        dims = [d for d in dims if not (d.count("__") >= 2 and d.split("__")[0] in own)
                and not ("__" in d and d.split("__")[0] == d.split("__")[1])]
        cats = [d for d in dims if d != "metric_time" and _kind(graph, p, m, d) == "dimension"]
        ents = [d for d in dims if _kind(graph, p, m, d) == "entity"]
        timed = "metric_time" in dims
        groups: list[list[str]] = [[]]
        if timed:
            groups += [["metric_time__day"], ["metric_time__month"]]
        groups += [[d] for d in rnd.sample(cats, min(3, len(cats)))]
        groups += [[e] for e in rnd.sample(ents, min(1, len(ents)))]
        if timed and cats:
            groups.append([rnd.choice(cats), "metric_time__month"])
        wheres: list[list[str]] = [[]]
        for d in rnd.sample(cats, min(2, len(cats))):
            v = _value_for(p, m, d)
            if v is not None:
                wheres.append([f"{_template(d)} = {v}"])
        for g in groups:
            for w in wheres:
                out.append(Case(f"{p.name}:{len(out)}", [m], g, w))
    rnd.shuffle(out)
    return sorted(out[:PER_PROJECT], key=lambda c: int(c.id.rsplit(":", 1)[1]))


def _models_of(p: Project, metric: str) -> set[str]:
    from catalog.semantic.metric_plan import MetricPlanner
    planner = MetricPlanner(p.manifest)
    planner.value(metric)
    return {leaf.model for leaf in planner.leaves.values()}


def _kind(graph: JoinGraph, p: Project, metric: str, name: str) -> str | None:
    from catalog.semantic.metric_plan import MetricPlanner
    from catalog.semantic.names import parse_name
    planner = MetricPlanner(p.manifest)
    planner.value(metric)
    leaf = next(iter(planner.leaves.values()))
    try:
        return graph.resolve(leaf.model, parse_name(name), leaf.agg_time_dimension).kind
    except UserError:
        return None


def _value_for(p: Project, metric: str, dim: str) -> str | None:
    """A value `dim` takes in the data, as a SQL literal: the filter then keeps some rows and drops others."""
    got = lathe_rows(p, Case("", [metric], [dim], []))
    if isinstance(got, str):
        return None
    values = sorted((r[0] for r in got[1] if r[0] is not None), key=repr)
    if not values:
        return None
    v = values[len(values) // 2]
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float, decimal.Decimal)):
        return str(v)
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return None


# ---- running both -------------------------------------------------------------------------------------------


def _plain(v):
    if isinstance(v, str) and len(v) >= 10 and v[4:5] == "-" and v[7:8] == "-":
        try:
            v = dt.datetime.fromisoformat(v)
        except ValueError:
            return v
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time() else v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float, decimal.Decimal)):
        return float(f"{float(v):.9g}")
    return v


def _rows(columns: list[str], rows: list, order: list[str]) -> list[tuple] | None:
    low = [c.lower() for c in columns]
    if sorted(low) != sorted(c.lower() for c in order):
        return None
    idx = [low.index(c.lower()) for c in order]
    return sorted((tuple(_plain(r[i]) for i in idx) for r in rows), key=repr)


def lathe_rows(p: Project, c: Case) -> tuple[list[str], list[tuple]] | str:
    try:
        compiled = compile_query(p.manifest, MetricQuery(metrics=c.metrics, group_by=c.group_by, where=c.where),
                                 p.spine)
    except UserError as e:
        return f"refused: {e}"
    con = duckdb.connect(str(p.database), read_only=True)
    try:
        cur = con.execute(compiled.sql)
        return compiled.columns, [list(r) for r in cur.fetchall()]
    except duckdb.Error as e:
        return f"failed: {str(e).splitlines()[0]}"
    finally:
        con.close()


def metricflow_rows(projects: list[Project], tmp: Path) -> dict[str, dict]:
    job = {"projects": [{"files": [str(f) for f in p.files], "extra_yaml": p.extra_yaml, "database": str(p.database),
                         "queries": [c.__dict__ for c in cases(p)]} for p in projects]}
    (tmp / "job.json").write_text(json.dumps(job))
    run([str(MF_PYTHON), str(ORACLE), str(tmp / "job.json"), str(tmp / "out.json")], check=True)
    return json.loads((tmp / "out.json").read_text())


@dataclass
class Outcome:
    compared: int = 0
    agree: int = 0
    lathe_refused: int = 0
    metricflow_refused: int = 0
    both_refused: int = 0
    differences: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # Lathe's message where MetricFlow answered


def compare(projects: list[Project], tmp: Path) -> Outcome:
    ref = metricflow_rows(projects, tmp)
    o = Outcome()
    for p in projects:
        for c in cases(p):
            mine, theirs = lathe_rows(p, c), ref[c.id]
            if isinstance(mine, str) and mine.startswith("failed"):
                o.differences.append(f"{c}: Lathe's SQL {mine}")
                continue
            if isinstance(mine, str):
                o.both_refused += "error" in theirs
                if "error" not in theirs:
                    o.lathe_refused += 1
                    o.refusals.append(f"{c.metrics} by {c.group_by}: {mine}")
                continue
            if "error" in theirs:
                o.metricflow_refused += 1
                continue
            o.compared += 1
            cols, rows = mine
            a, b = _rows(cols, rows, cols), _rows(theirs["columns"], theirs["rows"], cols)
            if a == b:
                o.agree += 1
            else:
                o.differences.append(f"{c}: Lathe {a[:6] if a else a} != MetricFlow {theirs['columns']} "
                                     f"{b[:6] if b else theirs['rows'][:6]}")
    return o


def all_projects(tmp: Path) -> list[Project]:
    return [tutorial(tmp)] + [generated(n, tmp) for n in MANIFESTS]


if __name__ == "__main__":  # python -m tests.metricflow_diff [DIR to keep the databases and rows in]
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        keep = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(d)
        keep.mkdir(parents=True, exist_ok=True)
        out = compare(all_projects(keep), keep)
    print(f"compared {out.compared}, agree {out.agree}; refused by Lathe {out.lathe_refused}, "
          f"by MetricFlow {out.metricflow_refused}, by both {out.both_refused}")
    for line in out.refusals + out.differences:
        print(line)
    sys.exit(1 if out.differences else 0)

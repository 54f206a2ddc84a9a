"""Reference rows from MetricFlow itself, for the differential test of the semantic layer. Runs in MetricFlow's
own environment (`.venv-mf`, made by `make mf-env`), never imports Lathe: reads a job (JSON: projects, their
YAML files, a DuckDB file and queries), has MetricFlow write the SQL of each query, runs it on the DuckDB file
read-only, and writes rows or MetricFlow's refusal as JSON.

    .venv-mf/bin/python tests/metricflow_oracle.py JOB.json OUT.json
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import sys
from string import Template

import duckdb
import yaml
from metricflow.engine.metricflow_engine import MetricFlowEngine, MetricFlowQueryRequest
from metricflow.protocols.sql_client import SqlEngine
from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer
from metricflow_semantic_interfaces.parsing.dir_to_model import parse_yaml_files_to_validation_ready_semantic_manifest
from metricflow_semantic_interfaces.parsing.objects import YamlConfigFile
from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

_PLURAL = {"semantic_models": "semantic_model", "metrics": "metric", "saved_queries": "saved_query"}
_REF = re.compile(r"""^\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*$""")


class _DuckDbPlanOnly:
    """What MetricFlow needs of a SQL client to write SQL for DuckDB; the SQL is run by this script."""
    sql_engine_type = SqlEngine.DUCKDB
    sql_plan_renderer = DuckDbSqlPlanRenderer()

    def render_bind_parameter_key(self, key: str) -> str:
        return f"${key}"


def _as_metricflow_yaml(text: str, schema: str) -> str:
    """dbt's `model: ref('x')` becomes MetricFlow's `node_relation` in `schema`; `$source_schema` is `schema`."""
    docs = []
    for doc in yaml.safe_load_all(Template(text).safe_substitute(source_schema=schema)):
        for key, items in (doc or {}).items():
            # dbt writes lists (`semantic_models: [...]`); MetricFlow reads one object per document
            for item in (items if key in _PLURAL else [items]):
                model = item.pop("model", "") if key in ("semantic_models", "semantic_model") else ""
                m = _REF.match(str(model or ""))
                if m:
                    item["node_relation"] = {"alias": m.group(1), "schema_name": schema}
                if key in ("metrics", "metric"):
                    _long_form(item.get("type_params") or {})
                docs.append({_PLURAL.get(key, key): item})
    return yaml.safe_dump_all(docs, sort_keys=False)


def _long_form(tp: dict) -> None:
    """dbt's shorthands (`numerator: cancellations`) in the long form MetricFlow parses (`{name: ...}`)."""
    for k in ("measure", "numerator", "denominator", "base_measure", "conversion_measure"):
        if isinstance(tp.get(k), str):
            tp[k] = {"name": tp[k]}
    if isinstance(tp.get("metrics"), list):
        tp["metrics"] = [{"name": m} if isinstance(m, str) else m for m in tp["metrics"]]
    for k in ("conversion_type_params", "cumulative_type_params"):
        if isinstance(tp.get(k), dict):
            _long_form(tp[k])


def _value(v):
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    return v


def run_project(project: dict) -> dict:
    files = [YamlConfigFile(filepath=p, contents=_as_metricflow_yaml(open(p).read(), "main"))
             for p in project["files"]]
    if project.get("extra_yaml"):
        files.append(YamlConfigFile(filepath="extra.yaml", contents=project["extra_yaml"]))
    manifest = parse_yaml_files_to_validation_ready_semantic_manifest(files).semantic_manifest
    engine = MetricFlowEngine(SemanticManifestLookup(manifest), _DuckDbPlanOnly())
    out = {}
    con = duckdb.connect(project["database"], read_only=True)
    for q in project["queries"]:
        try:
            req = MetricFlowQueryRequest.create(metric_names=q["metrics"], group_by_names=q["group_by"],
                                                where_constraints=q["where"] or None)
            stmt = engine.explain(req).sql_statement
            cur = con.execute(stmt.sql)
            cols = [d[0] for d in cur.description]
            out[q["id"]] = {"columns": cols, "rows": [[_value(v) for v in r] for r in cur.fetchall()]}
        except Exception as e:  # MetricFlow's refusal (or its SQL's failure) is a reference answer too
            out[q["id"]] = {"error": f"{type(e).__name__}: {str(e).strip()[:1500]}"}
    con.close()
    return out


def main(job_path: str, out_path: str) -> None:
    job = json.load(open(job_path))
    results = {}
    for project in job["projects"]:
        results.update(run_project(project))
    json.dump(results, open(out_path, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:3])

"""What a metric query may carry: `--where` filters, metric filters and the `expr:` of semantic models are one
SQL expression over columns with plain scalar functions, and filter templates are calls, never programs.
Everything else (queries, table functions, settings, errors raised on purpose, loops, huge strings) is refused
with one line before anything runs; engine errors come back as one line without the data they hit.
"""
from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import UserError
from catalog.semantic.compiler import compile_query
from catalog.semantic.query import MetricQuery
from catalog.store import CatalogStore
from catalog.warehouse import connect_writer
from core.workspace import Workspace
from cli.main import app

from tests.semantic_shop import SHOP, build_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Workspace:
    return build_shop(tmp_path_factory.mktemp("shop_guard"))


@pytest.fixture(scope="module")
def manifest(shop):
    return CatalogStore(shop).load_semantic()


def lathe(ws: Workspace, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(ws.root), "query", *args])


# ---- hostile `--where` filters, in several styles ----------------------------------------------------------
SUBQUERIES = [
    "customer__region = (SELECT min(full_name) FROM customers)",
    "{{ Dimension('customer__region') }} IN (SELECT full_name FROM customers)",
    "EXISTS (SELECT 1 FROM customers WHERE full_name LIKE 'A%')",
    "customer__region = (WITH x AS (SELECT full_name FROM customers) SELECT min(full_name) FROM x)",
    "customer__region || (FROM customers SELECT max(full_name)) = 'x'",
    "customer__region = ANY (SELECT full_name FROM customers)",
    "(SELECT count(*) FROM duckdb_settings()) > 0",
    "customer__region = ARRAY(SELECT full_name FROM customers)[1]",
]
FUNCTIONS = [
    "error(customer__region) IS NULL",
    "customer__region = error('boom ' || customer__region)",
    "query('SELECT full_name FROM customers') IS NOT NULL",
    "query_table('customers') IS NOT NULL",
    "current_setting('home_directory') = 'x'",
    "getenv('HOME') = customer__region",
    "length(read_text('/etc/passwd')) > 0",
    "read_csv('/etc/passwd') IS NULL",
    "read_parquet('x.parquet') IS NULL",
    "customer__region = getvariable('secret')",
    "list_transform([1, 2], x -> error('y')) IS NULL",
    "len(range(1000000000)) > 0",
    "repeat('x', 1000000000) = customer__region",
    "customer__region = $secret",
    "sum(1) > 0",
    "row_number() OVER () > 0",
]
NOT_ONE_EXPRESSION = [
    "customer__region = 'EMEA'; DROP TABLE orders",
    "1 = 1 UNION SELECT full_name FROM customers",
    "SELECT 1",
]
TEMPLATES = [
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %} customer__region = 'x'",
    "{{ 'x' * 1000000000 }} = customer__region",
    "{{ range(100000000) | list | length }} > 0",
    "{% set x = 'a' %}{{ Dimension('customer__region') }} = '{{ x }}'",
    "{{ Dimension('customer__region').__class__ }} = 'x'",
    "{{ cycler.__init__.__globals__ }} = 'x'",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }} = 1",
    "{{ Dimension('customer__' ~ 'region') }} = 'x'",
    "{{ Dimension('customer__region') }} = '" + "x" * 30000 + "'",
]


@pytest.mark.parametrize("where", SUBQUERIES + FUNCTIONS + NOT_ONE_EXPRESSION + TEMPLATES)
def test_hostile_filters_are_refused_before_anything_runs(manifest, where):
    start = time.monotonic()
    with pytest.raises(UserError) as e:
        compile_query(manifest, MetricQuery(metrics=["revenue"], group_by=["customer__region"], where=[where]))
    msg = str(e.value)
    assert "\n" not in msg
    assert time.monotonic() - start < 5, "refused at once, never rendered or run"
    assert "Ann" not in msg and "Bo" not in msg


@pytest.mark.parametrize("where", SUBQUERIES[:2] + FUNCTIONS[:4] + TEMPLATES[:1])
def test_the_cli_refuses_them_with_one_line_and_no_data(shop, where):
    r = lathe(shop, "--metrics", "revenue", "--where", where)
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ") and r.output.count("\n") == 1, r.output
    assert "Traceback" not in r.output and "Ann" not in r.output


@pytest.mark.parametrize("where, rows", [
    ("{{ Dimension('customer__region') }} = 'EMEA'", [["EMEA", 105.5]]),
    ("lower(customer__region) LIKE 'em%'", [["EMEA", 105.5]]),
    ("coalesce(customer__region, 'none') IN ('none')", [[None, 35.0]]),
    ("CAST(customer__region AS VARCHAR) = 'NA' AND NOT customer__region IS NULL", [["NA", 355.0]]),
    ("date_trunc('month', {{ TimeDimension('metric_time', 'day') }}) = DATE '2024-02-01' "
     "AND customer__region = 'NA'", [["NA", 275.0]]),
    ("CASE WHEN customer__region = 'NA' THEN true ELSE false END", [["NA", 355.0]]),
])
def test_ordinary_filters_still_work(shop, where, rows):
    import json
    r = lathe(shop, "--metrics", "revenue", "--group-by", "customer__region", "--where", where, "--json")
    assert r.exit_code == 0, r.output
    assert [[x[0], float(x[1])] for x in json.loads(r.stdout)["rows"]] == rows


def test_an_engine_error_is_one_line_without_the_values(shop):
    # a type mismatch the compiler cannot see: DuckDB fails while reading rows
    r = lathe(shop, "--metrics", "revenue", "--where", "CAST(customer__region AS INTEGER) > 1")
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ") and r.output.count("\n") == 1, r.output
    assert "Traceback" not in r.output
    assert "EMEA" not in r.output and "'NA'" not in r.output


# ---- hostile YAML: model expressions and metric filters ---------------------------------------------------
MODEL = """
semantic_models:
  - name: people
    model: ref('customers')
    entities:
      - {{name: person, type: primary, expr: customer_id}}
    dimensions:
      - {{name: region, type: categorical, expr: {dim}}}
    measures:
      - {{name: heads, agg: sum, expr: {measure}}}
metrics:
  - name: heads
    type: simple
    type_params: {{measure: heads}}
    filter: {filter}
"""


@pytest.mark.parametrize("dim, measure, filt", [
    ('"(SELECT min(full_name) FROM customers)"', '"1"', "null"),
    ('"current_setting(\'home_directory\')"', '"1"', "null"),
    ("region", "\"length(read_text('/etc/passwd'))\"", "null"),
    ("region", '"query(\'SELECT 1\')"', "null"),
    ("region", '"1"', "\"{{ Dimension('person__region') }} = error('x')\""),
    ("region", '"1"', "\"{% for i in range(9) %}{% endfor %}{{ Dimension('person__region') }} = 'x'\""),
    ("region", '"1"', "\"{{ Dimension('person__region') }} IN (SELECT full_name FROM customers)\""),
])
def test_hostile_model_expressions_and_metric_filters_are_refused(tmp_path, dim, measure, filt):
    ws = Workspace(tmp_path / "ws")
    ws.create()
    with connect_writer(ws) as con:
        con.execute((SHOP / "data.sql").read_text())
    (ws.catalog_dir / "semantic" / "people.yml").write_text(MODEL.format(dim=dim, measure=measure, filter=filt))
    r = lathe(ws, "--metrics", "heads", "--group-by", "person__region")
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ") and r.output.count("\n") == 1, r.output
    assert "Ann" not in r.output and "Traceback" not in r.output


# ---- import: what would fail at query time fails at import, with file and line -----------------------------
def _project(root: Path, body: str) -> Path:
    proj = root / "proj"
    proj.mkdir(parents=True)
    (proj / "models.yml").write_text(textwrap.dedent(body))
    return proj


ORDERS = """\
semantic_models:
  - name: orders
    model: ref('orders')
    entities:
      - {name: order, type: primary, expr: order_id}
    measures:
      - {name: order_total, agg: sum, expr: %s}
metrics:
  - name: total
    type: simple
    type_params: {measure: %s}
"""


@pytest.mark.parametrize("expr, measure, says, line", [
    ("order_id", "order_totl", "order_totl", 9),
    ("\"'order_id; DROP TABLE orders'\"", "order_total", None, None),  # a SQL string literal: fine
    ("'order_id; DROP TABLE orders'", "order_total", "not one SQL expression", 2),
    ('"order_id) FROM orders; SELECT (1"', "order_total", "not", 2),
    ('"(SELECT 1)"', "order_total", "not one SQL expression", 2),
    ('"read_csv(\'x.csv\')"', "order_total", "not allowed", 2),
    ('"current_setting(\'home_directory\')"', "order_total", "not allowed", 2),
])
def test_import_refuses_missing_measures_and_bad_expressions(tmp_path, expr, measure, says, line):
    from catalog.importers import import_paths
    ws = Workspace(tmp_path / "ws")
    ws.create()
    with connect_writer(ws) as con:
        con.execute("CREATE TABLE orders (order_id INTEGER)")
    proj = _project(tmp_path, ORDERS % (expr, measure))
    if says is None:
        import_paths(ws, [proj])
        return
    with pytest.raises(UserError) as e:
        import_paths(ws, [proj])
    msg = str(e.value)
    assert "\n" not in msg and says in msg
    assert msg.startswith(f"{proj / 'models.yml'}:{line}:"), msg
    assert not list((ws.catalog_dir / "semantic").glob("*.yml")), "nothing written"


def test_import_refuses_ratio_and_derived_inputs_that_do_not_exist(tmp_path):
    from catalog.importers import import_paths
    ws = Workspace(tmp_path / "ws")
    ws.create()
    with connect_writer(ws) as con:
        con.execute("CREATE TABLE orders (order_id INTEGER)")
    proj = _project(tmp_path, (ORDERS % ("order_id", "order_total")) + """\
  - name: share
    type: ratio
    type_params: {numerator: total, denominator: totl}
""")
    with pytest.raises(UserError) as e:
        import_paths(ws, [proj])
    assert str(e.value).startswith(f"{proj / 'models.yml'}:12:") and "totl" in str(e.value), str(e.value)

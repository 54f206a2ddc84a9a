"""`import_paths` with MetricFlow projects: the dbt-metricflow tutorial lands in the catalog; unknown refs,
names defined twice and malformed YAML are refused with file and line; a re-import replaces the project."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import UserError
from catalog.importers import import_paths
from catalog.semantic.spec import MetricType
from catalog.store import CatalogStore
from catalog.warehouse import connect_writer
from tests.conftest import external

TUTORIAL_TABLES = ("transactions", "customers", "countries")


def _tutorial_data(tmp_path: Path) -> Path:
    """The tutorial's seeds under the names its models `ref()`: `transactions_seed.csv` -> `transactions.csv`."""
    data = tmp_path / "data"
    data.mkdir()
    for t in TUTORIAL_TABLES:
        shutil.copy(external("mf_tutorial") / "seeds" / f"{t}_seed.csv", data / f"{t}.csv")
    return data


def test_the_metricflow_tutorial_project_lands_in_the_catalog(workspace, tmp_path):
    models = external("mf_tutorial") / "sample_models"
    report = import_paths(workspace, [_tutorial_data(tmp_path), models])

    assert sorted(t.name for t in report.tables) == sorted(TUTORIAL_TABLES)
    [sem] = report.semantic
    assert (sem.project, sem.catalog_file) == ("sample_models", "sample_models.yml")
    assert sorted(sem.semantic_models_added) == ["countries", "customers", "transactions"]
    assert len(sem.metrics_added) == 13 and not sem.metrics_updated
    assert any("saved_queries" in n for n in report.notes)
    assert any(n.endswith("transactions.sql: SQL models are not imported (import their tables' data instead)")
               for n in report.notes)
    assert (workspace.catalog_dir / "semantic" / "sample_models.yml").exists()

    semantic = CatalogStore(workspace).load_semantic()
    assert semantic.model("transactions").table == "transactions"
    assert [m.name for m in semantic.model("transactions").measures][:2] == ["transaction_amount_usd", "transactions"]
    revenue = semantic.metric("revenue_usd")
    assert revenue.type is MetricType.derived
    assert revenue.type_params.expr == "transaction_amount - cancellations + alterations"
    assert semantic.metric("cancellation_rate").type_params.numerator.name == "cancellations"
    assert semantic.metric("cumulative_transactions_in_last_7_days").type_params.cumulative.window == "7 days"


def test_a_ref_to_a_missing_table_names_file_line_and_the_tables_there_are(workspace, tmp_path):
    seeds = external("mf_tutorial") / "seeds"  # tables `countries_seed` ...: not what the models ref()
    before = sorted(p.name for p in workspace.catalog_dir.rglob("*"))
    with pytest.raises(UserError) as e:
        import_paths(workspace, [seeds, external("mf_tutorial") / "sample_models"])
    msg = str(e.value)
    assert msg.startswith(str(external("mf_tutorial") / "sample_models" / "countries.yml") + ":2: ")
    assert "semantic model `countries` reads `ref('countries')`: no table `countries`; did you mean `countries_seed`?" in msg
    assert "Tables in the warehouse: `countries_seed`, `customers_seed`, `transactions_seed`" in msg
    assert sorted(p.name for p in workspace.catalog_dir.rglob("*")) == before
    with connect_writer(workspace) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)


def test_the_singular_one_per_document_form_is_read(workspace):
    with connect_writer(workspace) as con:
        con.execute("CREATE TABLE bookings_source AS SELECT 1 AS booking, DATE '2024-01-01' AS booking_time")
    report = import_paths(workspace, [external("mf_manifests") / "sg_00_minimal_manifest"])
    [sem] = report.semantic
    assert (sem.project, sem.semantic_models_added, sem.metrics_added) == (
        "sg_00_minimal_manifest", ["bookings_source"], ["bookings"])
    assert any("project_configuration" in n for n in report.notes)
    assert CatalogStore(workspace).load_semantic().model("bookings_source").table == "bookings_source"


def _project(root: Path, metrics: list[str], model: str = "orders") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "models.yml").write_text(
        "semantic_models:\n"
        f"  - name: {model}\n"
        "    model: ref('orders')\n"
        "    entities: [{name: order, type: primary, expr: order_id}]\n"
        "    measures: [{name: amount_" + model + ", agg: sum, expr: amount}]\n", encoding="utf-8")
    (root / "metrics.yml").write_text(
        "metrics:\n" + "".join(f"  - name: {m}\n    type: simple\n    type_params: {{measure: amount_{model}}}\n"
                               for m in metrics), encoding="utf-8")
    return root


def _orders(workspace) -> None:
    with connect_writer(workspace) as con:
        con.execute("CREATE TABLE orders AS SELECT range AS order_id, range * 2.0 AS amount FROM range(4)")


def test_a_reimport_replaces_the_project(workspace, tmp_path):
    _orders(workspace)
    proj = _project(tmp_path / "shop", ["revenue", "gross"])
    import_paths(workspace, [proj])
    _project(proj, ["revenue", "net"])
    [sem] = import_paths(workspace, [proj]).semantic
    assert (sem.metrics_added, sem.metrics_updated, sem.metrics_removed) == (["net"], ["revenue"], ["gross"])
    assert sem.semantic_models_updated == ["orders"]
    assert sorted(m.name for m in CatalogStore(workspace).load_semantic().metrics) == ["net", "revenue"]
    assert [p.name for p in (workspace.catalog_dir / "semantic").iterdir()] == ["shop.yml"]


def test_a_name_another_project_defines_is_an_error_naming_both_files(workspace, tmp_path):
    _orders(workspace)
    import_paths(workspace, [_project(tmp_path / "finance", ["revenue"], model="orders_fin")])
    other = _project(tmp_path / "sales", ["revenue"], model="orders_sales")
    with pytest.raises(UserError) as e:
        import_paths(workspace, [other])
    msg = str(e.value)
    assert "metric `revenue` is defined twice" in msg
    assert str(workspace.catalog_dir / "semantic" / "finance.yml") + ":" in msg
    assert str(other / "metrics.yml") + ":2" in msg
    assert not (workspace.catalog_dir / "semantic" / "sales.yml").exists()

    # Two projects in one import clash the same way.
    with pytest.raises(UserError, match="semantic model `orders` is defined twice"):
        import_paths(workspace, [_project(tmp_path / "a", ["m_a"]), _project(tmp_path / "b", ["m_b"])])


def test_malformed_yaml_names_file_and_line(workspace, tmp_path):
    _orders(workspace)
    bad = tmp_path / "proj" / "metrics.yml"
    bad.parent.mkdir()
    bad.write_text("metrics:\n  - name: revenue\n    type: simple\n   type_params: {measure: x}\n", encoding="utf-8")
    with pytest.raises(UserError, match=f"^{bad}:4: malformed YAML"):
        import_paths(workspace, [bad.parent])

    bad.write_text("metrics:\n  - name: revenue\n    type: ratio\n", encoding="utf-8")
    with pytest.raises(UserError, match=f"^{bad}:2: .*needs type_params.numerator"):
        import_paths(workspace, [bad.parent])

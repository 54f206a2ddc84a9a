"""The catalog store: YAML round trips, errors with file and line, all-or-nothing changes and crash recovery."""
from __future__ import annotations

import pytest

from catalog.metadata import Column, GlossaryTerm, Owner, PiiTag, Table
from catalog.semantic.spec import SemanticManifest
from catalog.store import CatalogStore, CatalogTransaction
from core.yaml_files import CatalogFileError
from tests.conftest import external


def _table(name: str = "orders") -> Table:
    return Table(name=name, description="One row per order.", owner="sales",
                 columns=[Column(name="order_id", type="BIGINT", description="key"),
                          Column(name="email", type="VARCHAR", pii=PiiTag.email)])


def test_round_trip_of_every_kind(workspace):
    store = CatalogStore(workspace)
    with store.transaction() as txn:
        txn.put_table(_table())
        txn.put_glossary([GlossaryTerm(name="revenue", synonyms=["sales", "turnover"], related=["metric:revenue"])])
        txn.put_owners([Owner(name="sales", email="sales@example.com")])
    cat = store.load()
    assert cat.tables["orders"] == _table()
    assert cat.glossary["revenue"].synonyms == ["sales", "turnover"]
    assert cat.owners["sales"].email == "sales@example.com"
    assert cat.table("ORDERS").column("EMAIL").pii is PiiTag.email


def test_error_inside_a_transaction_changes_nothing(workspace):
    store = CatalogStore(workspace)
    with store.transaction() as txn:
        txn.put_table(_table("keep"))
    before = sorted(p.name for p in (workspace.catalog_dir / "tables").iterdir())
    with pytest.raises(RuntimeError):
        with store.transaction() as txn:
            txn.put_table(_table("new"))
            txn.delete_table("keep")
            raise RuntimeError("boom")
    assert sorted(p.name for p in (workspace.catalog_dir / "tables").iterdir()) == before
    assert not list(workspace.catalog_dir.glob(".staging-*"))


def test_committed_staging_is_finished_after_a_crash(workspace):
    store = CatalogStore(workspace)
    txn = CatalogTransaction(store)
    txn.put_table(_table("a"))
    txn.put_table(_table("b"))
    txn.stage()
    (txn.staging / "COMMIT").touch()  # apply had marked it committed when the process "died"
    assert store.load_table("a") is not None  # recovery on the next read finishes it
    assert set(store.load().tables) == {"a", "b"}


def test_uncommitted_staging_is_dropped(workspace):
    store = CatalogStore(workspace)
    txn = CatalogTransaction(store)
    txn.put_table(_table("a"))
    txn.stage()  # the process "dies" before apply
    assert store.load().tables == {}
    assert not list(workspace.catalog_dir.glob(".staging-*"))


def test_bad_value_names_file_line_and_allowed_values(workspace):
    f = workspace.catalog_dir / "tables" / "bad.yml"
    f.write_text("name: bad\ncolumns:\n  - name: a\n  - name: b\n    pii: emial\n")
    with pytest.raises(CatalogFileError) as e:
        CatalogStore(workspace).load()
    assert e.value.line == 5 and e.value.path == str(f)
    assert "columns.1.pii" in str(e.value) and "'email'" in str(e.value)


def test_malformed_yaml_names_the_line(workspace):
    f = workspace.catalog_dir / "glossary.yml"
    f.write_text("glossary:\n  - name: a\n    synonyms: [x, y\n  - name: b\n")
    with pytest.raises(CatalogFileError) as e:
        CatalogStore(workspace).load()
    assert e.value.path == str(f) and e.value.line in (3, 4)
    assert "malformed YAML" in str(e.value)


def test_unknown_key_is_refused_with_its_line(workspace):
    (workspace.catalog_dir / "owners.yml").write_text("owners:\n  - name: a\n    emial: a@b.c\n")
    with pytest.raises(CatalogFileError) as e:
        CatalogStore(workspace).load()
    assert e.value.line == 3 and "emial" in str(e.value)


def test_metricflow_files_of_a_real_project_load(workspace):
    src = external("mf_tutorial") / "sample_models"
    for f in src.glob("*.yml"):
        (workspace.catalog_dir / "semantic" / f.name).write_text(f.read_text())
    sem = CatalogStore(workspace).load_semantic()
    assert {m.name for m in sem.semantic_models} == {"transactions", "customers", "countries"}
    assert sem.model("customers").table == "customers"
    assert sem.metric("cancellation_rate").type_params.numerator.name == "cancellations"
    assert sem.metric("cumulative_transactions_in_last_7_days").type_params.cumulative.window == "7 days"


def test_metricflows_own_manifests_parse(tmp_path):
    from catalog.store import load_semantic_file

    root = external("mf_manifests")
    names = set()
    # MetricFlow's linter fixture of a key given twice (two models without a `---`) is refused here too.
    linted = root / "config_linter_manifest" / "multiple_semantic_models_without_divider.yml"
    with pytest.raises(CatalogFileError, match=rf"^{linted}:22: key `semantic_model` appears twice"):
        load_semantic_file(linted)
    for f in sorted(set(root.rglob("*.y*ml")) - {linted}):
        part = load_semantic_file(f)
        names |= {m.name for m in part.semantic_models}
    assert {"bookings_source", "listings_latest", "users_latest"} <= names


def test_same_metric_in_two_files_is_an_error_naming_both(workspace):
    sem = workspace.catalog_dir / "semantic"
    doc = "metrics:\n  - name: m\n    type: simple\n    type_params: {measure: x}\n"
    (sem / "a.yml").write_text(doc)
    (sem / "b.yml").write_text(doc)
    with pytest.raises(CatalogFileError) as e:
        CatalogStore(workspace).load_semantic()
    assert "a.yml" in str(e.value) and "b.yml" in str(e.value) and "`m`" in str(e.value)


def test_put_semantic_round_trips_through_metricflow_yaml(workspace):
    m = SemanticManifest.model_validate({
        "semantic_models": [{"name": "orders", "model": "ref('orders')",
                             "entities": [{"name": "order", "type": "primary", "expr": "order_id"}],
                             "measures": [{"name": "order_count", "agg": "sum", "expr": 1, "create_metric": True}],
                             "dimensions": [{"name": "ordered_at", "type": "time",
                                             "type_params": {"time_granularity": "day"}}]}],
        "metrics": [{"name": "orders", "type": "SIMPLE", "type_params": {"measure": "order_count"}}],
    })
    store = CatalogStore(workspace)
    with store.transaction() as txn:
        txn.put_semantic("shop", m)
    sem = store.load_semantic()
    assert sem.model("orders").measures[0].expr == "1"
    # create_metric adds a metric named after the measure, as MetricFlow does
    assert {x.name for x in sem.metrics} == {"orders", "order_count"}


def test_metric_without_its_params_is_refused(workspace):
    (workspace.catalog_dir / "semantic" / "x.yml").write_text(
        "metrics:\n  - name: aov\n    type: ratio\n    type_params:\n      numerator: revenue\n")
    with pytest.raises(CatalogFileError) as e:
        CatalogStore(workspace).load_semantic()
    assert "type_params.denominator" in str(e.value) and e.value.line == 2

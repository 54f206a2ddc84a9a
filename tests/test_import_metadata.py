"""`import_paths` with metadata: dbt `schema.yml` descriptions, owners, PII and tags; Lathe's own YAML for
tables, glossary and owners, including tables documented before their data arrive."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import UserError
from catalog.importers import import_paths
from catalog.metadata import GlossaryTerm, PiiTag
from catalog.store import CatalogStore
from tests.conftest import FIXTURES

IMPORT = FIXTURES / "import"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_dbt_schema_descriptions_owner_pii_and_tags(workspace):
    import_paths(workspace, [IMPORT / "shop"])
    report = import_paths(workspace, [IMPORT / "dbt" / "schema.yml"])

    [applied] = report.metadata
    assert (applied.format, applied.tables) == ("dbt", ["orders", "customers"])
    assert report.warnings == [f"{IMPORT / 'dbt' / 'schema.yml'}:34: dbt model `stg_payments` has no table in "
                               "the warehouse; its descriptions were not applied (import its data first)"]
    cat = CatalogStore(workspace).load()
    orders, customers = cat.tables["orders"], cat.tables["customers"]
    assert orders.description == "One row per order placed in the web shop."
    assert (orders.owner, orders.tags) == ("@sales-analytics", ["finance", "core"])
    assert orders.column("amount").description == "Order total in EUR, taxes included."
    assert orders.column("status").synonyms == ["state", "order state"]
    assert orders.column("amount").type == "DOUBLE" and orders.row_count == 5  # the data's facts stay
    assert customers.owner == "crm-team"
    assert customers.column("email").pii is PiiTag.email
    assert customers.column("name").pii is PiiTag.other
    assert customers.column("country").pii is None
    assert "stg_payments" not in cat.tables


def test_dbt_columns_missing_from_the_table_warn_and_bad_pii_is_an_error(workspace, tmp_path):
    import_paths(workspace, [IMPORT / "shop" / "orders.csv"])
    schema = _write(tmp_path / "schema.yml", "models:\n  - name: orders\n    columns:\n      - name: coupon\n"
                                             "        description: gone\n")
    report = import_paths(workspace, [schema])
    assert report.warnings == [f"{schema}:2: table `orders` has no column `coupon` in the warehouse; "
                               "that metadata was not kept"]
    assert CatalogStore(workspace).load_table("orders").column("coupon") is None

    _write(schema, "models:\n  - name: orders\n    columns:\n      - name: status\n        meta:\n"
                   "          pii: maybe\n")
    with pytest.raises(UserError, match=f"^{schema}:6: meta.pii `maybe` is not a PII tag; use true, false or one of: email"):
        import_paths(workspace, [schema])


def test_lathe_yaml_tables_glossary_owners_and_a_table_documented_before_its_data(workspace, tmp_path):
    import_paths(workspace, [IMPORT / "shop"])
    store = CatalogStore(workspace)
    with store.transaction() as txn:
        txn.put_glossary([GlossaryTerm(name="churn", definition="Customers lost in a period.")])
    meta = IMPORT / "lathe" / "shop_metadata.yml"
    report = import_paths(workspace, [meta])

    [applied] = report.metadata
    assert (applied.format, applied.tables, applied.glossary, applied.owners) == (
        "lathe", ["orders", "returns"], ["revenue"], ["sales-analytics"])
    assert report.warnings == [f"{meta}:10: table `returns` is not in the warehouse; its metadata was kept "
                               "for when the data arrive"]
    cat = store.load()
    orders = cat.tables["orders"]
    assert (orders.description, orders.synonyms, orders.primary_key) == (
        "Orders, as curated by the analytics team.", ["purchases", "sales"], ["order_id"])
    assert orders.column("customer_id").description == "Who placed the order."
    assert [c.name for c in orders.columns] == ["order_id", "customer_id", "amount", "status", "ordered_at"]
    assert orders.source == str(IMPORT / "shop" / "orders.csv")  # not touched by metadata
    assert sorted(cat.glossary) == ["churn", "revenue"]
    assert cat.owners["sales-analytics"].team == "Sales"
    assert cat.tables["returns"].column("return_id").description == "Key of the return."

    # The data arrive: the documented column keeps its description, the new columns come with their types.
    returns = _write(tmp_path / "returns.csv", "return_id,order_id,reason\n1,3,damaged\n")
    report = import_paths(workspace, [returns])
    assert [(t.name, t.action) for t in report.tables] == [("returns", "created")]
    t = store.load_table("returns")
    assert t.description == "Returned items; the data arrive next quarter."
    assert [(c.name, c.type, c.description) for c in t.columns] == [
        ("return_id", "BIGINT", "Key of the return."), ("order_id", "BIGINT", ""), ("reason", "VARCHAR", "")]


def test_one_table_document_as_in_the_catalog_folder(workspace, tmp_path):
    import_paths(workspace, [IMPORT / "shop" / "customers.ndjson"])
    doc = _write(tmp_path / "customers.yml",
                 "name: customers\ndescription: People who bought at least once.\ncolumns:\n"
                 "  - name: email\n    pii: email\n    synonyms: [mail]\n")
    import_paths(workspace, [doc])
    t = CatalogStore(workspace).load_table("customers")
    assert t.description == "People who bought at least once."
    assert (t.column("email").pii, t.column("email").synonyms, t.column("email").type) == (
        PiiTag.email, ["mail"], "VARCHAR")

    _write(doc, "name: customers\ncolumns:\n  - name: email\n    pii: mail\n")
    with pytest.raises(UserError, match=f"^{doc}:4: columns.0.pii: Input should be 'email'"):
        import_paths(workspace, [doc])
    _write(doc, "name: customers\ndescripton: typo\ncolumns: []\n")
    with pytest.raises(UserError, match=f"^{doc}:2: descripton: Extra inputs are not permitted"):
        import_paths(workspace, [doc])


def test_yaml_without_catalog_content_and_dbt_config_are_skipped_with_a_note(workspace, tmp_path):
    proj = tmp_path / "proj"
    _write(proj / "dbt_project.yml", "name: shop\nversion: '1.0'\n")
    _write(proj / "docker-compose.yml", "services:\n  db: {image: postgres}\n")
    _write(proj / "target" / "manifest.json", "{}")
    _write(proj / "README.md", "# shop\n")
    report = import_paths(workspace, [proj])
    assert not report.changed
    assert report.notes == [
        f"skipped {proj / 'target'}/: dbt build output or installed packages",
        f"skipped {proj / 'dbt_project.yml'}: dbt configuration, not catalog content",
        "skipped 1 file(s) that are neither data nor YAML: README.md",
        f"skipped {proj / 'docker-compose.yml'}: no catalog content (semantic_models, metrics, models, tables, "
        "glossary, owners, or one table's metadata)",
    ]


def test_a_whole_catalog_ahead_of_its_data_gets_one_warning(workspace, tmp_path):
    doc = _write(tmp_path / "tables.yml", "tables:\n" + "".join(f"  - name: t{i:02d}\n" for i in range(12)))
    report = import_paths(workspace, [doc])
    assert report.warnings == [f"12 tables are not in the warehouse (`t00`, `t01`, `t02`, `t03`, `t04`, `t05`, "
                               f"`t06`, `t07`, `t08`, `t09`, …; the first at {doc}:2); their metadata was kept "
                               "for when the data arrive"]
    assert len(CatalogStore(workspace).load().tables) == 12

"""`import_paths` with data files: CSV, Parquet and JSON become tables; re-imports keep analyst metadata;
bad files are refused with file and line; a failed import leaves warehouse and catalog untouched."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

from core.errors import UserError
from catalog.importers import import_paths
from catalog.metadata import ColumnStats, PiiTag
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader
from tests.conftest import FIXTURES

SHOP = FIXTURES / "import" / "shop"


def _rows(ws, sql: str) -> list[tuple]:
    with connect_reader(ws) as con:
        return con.execute(sql).fetchall()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _parquet(path: Path, sql: str) -> Path:
    with duckdb.connect() as con:
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
    return path


def test_csv_parquet_and_json_become_tables_with_sniffed_types(workspace, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(SHOP, data)
    _parquet(data / "products.parquet",
             "SELECT range AS product_id, 'p' || range AS title, (range * 1.5)::DOUBLE AS price FROM range(7)")
    _write(data / "reviews.json", '[{"review_id": 1, "stars": 5, "text": "great"}, {"review_id": 2, "stars": 2}]')

    report = import_paths(workspace, [data])

    assert [(t.name, t.action, t.rows) for t in report.tables] == [
        ("customers", "created", 4), ("orders", "created", 5), ("products", "created", 7), ("reviews", "created", 2)]
    assert _rows(workspace, "SELECT sum(amount), max(ordered_at)::VARCHAR FROM orders") == [(194.74, "2024-02-11")]
    assert _rows(workspace, "SELECT name FROM customers WHERE customer_id = 12") == [("Edsger Dijkstra",)]
    assert _rows(workspace, "SELECT count(*), max(price) FROM products") == [(7, 9.0)]
    assert _rows(workspace, "SELECT text FROM reviews ORDER BY review_id") == [("great",), (None,)]

    orders = CatalogStore(workspace).load_table("orders")
    assert orders.source == str(data / "orders.csv")
    assert orders.row_count == 5
    assert [(c.name, c.type) for c in orders.columns] == [
        ("order_id", "BIGINT"), ("customer_id", "BIGINT"), ("amount", "DOUBLE"), ("status", "VARCHAR"),
        ("ordered_at", "DATE")]
    products = CatalogStore(workspace).load_table("products")
    assert [(c.name, c.type) for c in products.columns] == [
        ("product_id", "BIGINT"), ("title", "VARCHAR"), ("price", "DOUBLE")]


def test_reimport_replaces_data_and_keeps_analyst_metadata(workspace, tmp_path):
    csv = _write(tmp_path / "orders.csv", "order_id,email,amount,legacy_code\n1,a@x.io,10,A\n2,b@x.io,20,B\n")
    import_paths(workspace, [csv])
    store = CatalogStore(workspace)
    t = store.load_table("orders")
    email, amount, legacy = t.column("email"), t.column("amount"), t.column("legacy_code")
    analyst = t.model_copy(update={
        "description": "One row per order.", "owner": "sales", "synonyms": ["purchases"], "primary_key": ["order_id"],
        "columns": [t.column("order_id"),
                    email.model_copy(update={"pii": PiiTag.email, "description": "buyer's address",
                                             "stats": ColumnStats(row_count=2, distinct_count=2)}),
                    amount.model_copy(update={"description": "EUR", "synonyms": ["total"]}),
                    legacy.model_copy(update={"description": "old system code"})]})
    with store.transaction() as txn:
        txn.put_table(analyst)

    # The new export drops `legacy_code`, adds `currency` and has more rows.
    _write(csv, "order_id,email,amount,currency\n1,a@x.io,10.5,EUR\n2,b@x.io,20,EUR\n3,c@x.io,7,USD\n")
    report = import_paths(workspace, [csv], replace=True)

    assert [(t.name, t.action, t.rows) for t in report.tables] == [("orders", "replaced", 3)]
    assert _rows(workspace, "SELECT sum(amount) FROM orders") == [(37.5,)]
    after = store.load_table("orders")
    assert (after.description, after.owner, after.synonyms, after.primary_key) == (
        "One row per order.", "sales", ["purchases"], ["order_id"])
    assert [c.name for c in after.columns] == ["order_id", "email", "amount", "currency"]
    assert after.column("email").pii is PiiTag.email
    assert after.column("email").description == "buyer's address"
    assert after.column("email").stats is None  # described the old data
    assert after.column("amount").synonyms == ["total"]
    assert after.column("amount").type == "DOUBLE"
    assert after.column("legacy_code") is None
    assert after.row_count == 3
    assert any("legacy_code" in w for w in report.warnings)


def test_file_names_become_identifiers(workspace, tmp_path):
    _write(tmp_path / "d" / "Order Items 2024.csv", "a\n1\n")
    _write(tmp_path / "d" / "2024.csv", "a\n1\n")
    report = import_paths(workspace, [tmp_path / "d"])
    assert sorted(t.name for t in report.tables) == ["order_items_2024", "t_2024"]
    assert _rows(workspace, "SELECT a FROM order_items_2024") == [(1,)]


def test_two_files_for_one_table_name_are_an_error_naming_both(workspace, tmp_path):
    a = _write(tmp_path / "orders.csv", "a\n1\n")
    b = _parquet(tmp_path / "Orders.parquet", "SELECT 1 AS a")
    with pytest.raises(UserError, match="would both become table `orders`") as e:
        import_paths(workspace, [tmp_path])
    assert str(a) in str(e.value) and str(b) in str(e.value)


def test_ragged_csv_rows_are_reported_with_their_line(workspace, tmp_path):
    short = _write(tmp_path / "short.csv", "id,name,amount\n1,a,1.5\n2,b,2.5\n3,c\n4,d,4.5\n")
    with pytest.raises(UserError) as e:
        import_paths(workspace, [short])
    assert str(e.value).startswith(f"{short}:4: too few values")
    assert "`3,c`" in str(e.value)

    long = _write(tmp_path / "long.csv", "id,name\n1,a\n2,b,extra\n3,c\n4,d,x,y\n")
    with pytest.raises(UserError) as e:
        import_paths(workspace, [long])
    assert str(e.value).startswith(f"{long}:3: too many values")
    assert "(and 1 more bad line)" in str(e.value)  # line 5

    # Past DuckDB's sniffing sample too.
    lines = ["id,name,amount"] + [f"{i},n{i},{i}.5" for i in range(30_000)]
    lines[25_000] = "24999,n24999"
    late = _write(tmp_path / "late.csv", "\n".join(lines) + "\n")
    with pytest.raises(UserError, match=f"^{late}:25001: too few values"):
        import_paths(workspace, [late])
    assert _rows(workspace, "SELECT count(*) FROM duckdb_tables()") == [(0,)]


def test_text_past_the_sniff_sample_widens_the_type_instead_of_failing(workspace, tmp_path):
    lines = ["id,code"] + [f"{i},{i}" for i in range(30_000)]
    lines[25_001] = "25000,X-1"
    csv = _write(tmp_path / "codes.csv", "\n".join(lines) + "\n")
    import_paths(workspace, [csv])
    assert _rows(workspace, "SELECT typeof(code), count(*) FROM codes GROUP BY 1") == [("VARCHAR", 30_000)]


@pytest.mark.parametrize("name, content, message", [
    ("broken.parquet", b"PAR1 not really", "not a readable Parquet file"),
    ("numbers.json", b"[1, 2, 3]", "JSON that is not records"),
    ("mixed.ndjson", b'{"a": 1}\n[1, 2]\n', "JSON that is not records"),
    ("empty.csv", b"", "the file is empty"),
])
def test_unreadable_files_are_refused(workspace, tmp_path, name, content, message):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(UserError, match=message) as e:
        import_paths(workspace, [f])
    assert str(e.value).startswith(str(f))


def test_malformed_json_names_the_line(workspace, tmp_path):
    f = _write(tmp_path / "events.json", '[\n{"a": 1},\n{"a": }\n]\n')
    with pytest.raises(UserError, match=f"^{f}:3: malformed JSON"):
        import_paths(workspace, [f])


def test_missing_and_unsupported_paths(workspace, tmp_path):
    with pytest.raises(UserError, match="no such file or directory"):
        import_paths(workspace, [tmp_path / "nope.csv"])
    with pytest.raises(UserError, match="not a file Lathe can import"):
        import_paths(workspace, [_write(tmp_path / "notes.txt", "hello")])


def test_no_replace_refuses_an_existing_table(workspace, tmp_path):
    csv = _write(tmp_path / "orders.csv", "a\n1\n")
    import_paths(workspace, [csv])
    with pytest.raises(UserError, match="table `orders` already exists"):
        import_paths(workspace, [csv], replace=False)


def _snapshot(ws) -> tuple[str, list[str], list[tuple]]:
    h = hashlib.sha256(ws.warehouse_path.read_bytes()).hexdigest()
    files = sorted(str(p.relative_to(ws.catalog_dir)) + ":" + hashlib.sha256(p.read_bytes()).hexdigest()
                   for p in ws.catalog_dir.rglob("*") if p.is_file())
    tables = _rows(ws, "SELECT table_name FROM duckdb_tables() ORDER BY 1")
    return h, files, tables


@pytest.mark.parametrize("bad_name, bad_content, message", [
    ("c_bad.csv", "id,name\n1,a\n2\n", "c_bad.csv:3: too few values"),
    ("c_bad.yml", "tables:\n  - name: x\n    columns: [\n", "c_bad.yml:4: malformed YAML"),
    ("c_bad.parquet", "junk", "not a readable Parquet file"),
])
def test_a_bad_third_file_leaves_warehouse_and_catalog_as_they_were(workspace, tmp_path, bad_name, bad_content,
                                                                     message):
    import_paths(workspace, [SHOP / "orders.csv"])
    before = _snapshot(workspace)

    batch = tmp_path / "batch"
    _write(batch / "a_orders.csv", "id\n1\n")
    _parquet(batch / "b_items.parquet", "SELECT range AS id FROM range(3)")
    _write(batch / "orders.csv", "order_id\n99\n")  # would replace the existing table
    _write(batch / bad_name, bad_content)
    with pytest.raises(UserError, match=message):
        import_paths(workspace, [batch / "a_orders.csv", batch / "b_items.parquet", batch / "orders.csv",
                                 batch / bad_name], replace=True)

    assert _snapshot(workspace) == before
    assert not list(workspace.catalog_dir.glob(".staging-*"))

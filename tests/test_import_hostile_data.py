"""Hostile data imports: CSVs with an unclosed quote, ragged rows, a huge line, a byte-order mark or the wrong
encoding; an import over an existing table without `--replace`; and metadata that would remove or change a PII
tag, done by someone who is not an admin. Each is refused with where and why, and nothing changes."""
from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from core.errors import UserError
from catalog.importers import import_paths
from catalog.metadata import PiiTag
from core.principal import Principal
from catalog.store import CatalogStore
from tests.conftest import FIXTURES

SHOP = FIXTURES / "import" / "shop"
ANALYST = Principal(name="ann", roles={"analyst"})


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _snapshot(ws) -> tuple:
    files = sorted(str(p.relative_to(ws.catalog_dir)) + ":" + hashlib.sha256(p.read_bytes()).hexdigest()
                   for p in ws.catalog_dir.rglob("*") if p.is_file())
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    try:
        tables = con.execute("SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = 'main' "
                             "ORDER BY 1").fetchall()
        has_orders = any(t == "orders" for t, _ in tables)
        orders = con.execute("SELECT * FROM orders ORDER BY ALL").fetchall() if has_orders else []
    finally:
        con.close()
    return files, tables, orders


@pytest.fixture
def seeded(workspace):
    import_paths(workspace, [SHOP / "orders.csv"])
    return workspace


BAD_CSV = {
    # name: (content, what the one-line error says, its line)
    "unclosed quote mid-file": ('id,name\n1,"alice\n2,bob\n3,carol\n', "a quoted value is never closed", 2),
    "unclosed quote on the last line": ('id,name\n1,alice\n2,bob\n3,"carol\n', "a quoted value is never closed", 4),
    "unclosed quote among quoted values": ('id,name\n1,"a, b"\n2,"bob\n3,carol\n', "too many values", 2),
    "too many values": ("id,name\n1,alice,extra\n2,bob\n", "too many values", 2),
    "too few values": ("id,name,city\n1,alice,paris\n2,bob\n", "too few values", 3),
    "latin-1 bytes": (b"id,name\n1,caf\xe9\n", "invalid encoding", 2),
    "utf-16 file": ("id,name\n1,alice\n".encode("utf-16"), "", None),
    "a binary file named .csv": (bytes(range(256)) * 40, "", None),
    "empty file": ("", "the file is empty", None),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_bad_csv_files_are_refused_where_they_go_wrong_and_nothing_changes(seeded, tmp_path, case):
    content, says, line = BAD_CSV[case]
    f = _write(tmp_path / "incoming.csv", content)
    before = _snapshot(seeded)
    with pytest.raises(UserError) as e:
        import_paths(seeded, [SHOP / "orders.csv", f], replace=True)
    message = str(e.value)
    assert message.startswith(f"{f}:{line}: " if line else str(f)), message
    assert says in message and "\n" not in message
    assert _snapshot(seeded) == before
    assert not list(seeded.catalog_dir.glob(".staging-*"))


def test_quotes_that_are_closed_or_inside_a_value_still_load(workspace, tmp_path):
    f = _write(tmp_path / "fine.csv", 'id,name,size\n1,"Smith, Ann","5"" screen"\n2,Bo,5" screen\n')
    import_paths(workspace, [f])
    con = duckdb.connect(str(workspace.warehouse_path), read_only=True)
    try:
        assert con.execute("SELECT name, size FROM fine ORDER BY id").fetchall() == [
            ("Smith, Ann", '5" screen'), ("Bo", '5" screen')]
    finally:
        con.close()


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(workspace, tmp_path):
    f = _write(tmp_path / "bom.csv", b"\xef\xbb\xbfid,name\n1,alice\n")
    import_paths(workspace, [f])
    assert [c.name for c in CatalogStore(workspace).load_table("bom").columns] == ["id", "name"]


@pytest.mark.slow
def test_a_huge_line_is_an_error_or_a_value_never_a_crash(seeded, tmp_path):
    f = _write(tmp_path / "wide.csv", "id,text\n1," + "x" * 20_000_000 + "\n2,short\n")
    before = _snapshot(seeded)
    try:
        import_paths(seeded, [f])
    except UserError as e:
        assert str(e).startswith(str(f)) and "\n" not in str(e)
        assert _snapshot(seeded) == before
    else:
        assert CatalogStore(seeded).load_table("wide").row_count == 2


# ---- replacing an existing table ---------------------------------------------------------------------------

def test_an_import_over_an_existing_table_needs_replace(seeded, tmp_path):
    other = _write(tmp_path / "elsewhere" / "orders.csv", "order_id\n99\n")
    before = _snapshot(seeded)
    for paths in ([other], [SHOP / "orders.csv"], [tmp_path / "elsewhere"]):
        with pytest.raises(UserError, match=r"table `orders` already exists in the warehouse .*import with --replace"):
            import_paths(seeded, paths)
        assert _snapshot(seeded) == before

    from cli.main import app

    r = CliRunner().invoke(app, ["--workspace", str(seeded.root), "catalog", "import", str(other)])
    assert r.exit_code == 2 and "--replace" in r.output and _snapshot(seeded) == before
    r = CliRunner().invoke(app, ["--workspace", str(seeded.root), "catalog", "import", "--replace", str(other)])
    assert r.exit_code == 0 and "table orders: replaced, 1 rows" in r.output


def test_an_upper_case_file_name_is_the_same_table(seeded, tmp_path):
    other = _write(tmp_path / "ORDERS.csv", "order_id\n99\n")
    with pytest.raises(UserError, match="already exists"):
        import_paths(seeded, [other])


# ---- PII tags ------------------------------------------------------------------------------------------------

@pytest.fixture
def tagged(workspace):
    import_paths(workspace, [SHOP])
    import_paths(workspace, [FIXTURES / "import" / "dbt" / "schema.yml"])
    assert CatalogStore(workspace).load_table("customers").column("email").pii is PiiTag.email
    return workspace


PII_EDITS = {
    "dbt meta pii false": ("schema.yml", "models:\n  - name: customers\n    columns:\n      - name: email\n"
                                         "        meta:\n          pii: false\n", "remove its PII tag `email`"),
    "lathe yaml pii null": ("customers.yml", "name: customers\ncolumns:\n  - name: email\n    pii: null\n",
                            "remove its PII tag `email`"),
    "lathe list changes the tag": ("catalog.yml", "tables:\n  - name: customers\n    columns:\n      - name: email\n"
                                                  "        pii: other\n", "change its PII tag `email` to `other`"),
}


@pytest.mark.parametrize("case", sorted(PII_EDITS))
def test_removing_or_changing_a_pii_tag_needs_an_admin(tagged, tmp_path, case):
    name, text, says = PII_EDITS[case]
    f = _write(tmp_path / name, text)
    before = _snapshot(tagged)
    with pytest.raises(UserError) as e:
        import_paths(tagged, [f], principal=ANALYST)
    assert f"table `customers` column `email`: this import would {says}" in str(e.value)
    assert "only an admin may do (`ann` is not one)" in str(e.value)
    assert _snapshot(tagged) == before

    import_paths(tagged, [f], principal=Principal(name="root", roles={"admin"}))
    assert CatalogStore(tagged).load_table("customers").column("email").pii is not PiiTag.email


def test_a_non_admin_may_add_tags_and_replace_data_keeping_them(tagged, tmp_path):
    f = _write(tmp_path / "more.yml", "name: customers\ncolumns:\n  - name: country\n    pii: address\n")
    import_paths(tagged, [f], principal=ANALYST)
    import_paths(tagged, [SHOP / "customers.ndjson"], replace=True, principal=ANALYST)
    t = CatalogStore(tagged).load_table("customers")
    assert (t.column("email").pii, t.column("country").pii) == (PiiTag.email, PiiTag.address)

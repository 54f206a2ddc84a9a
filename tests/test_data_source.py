"""Reading a data source: a catalog table's name (bare, quoted, schema-qualified, in any case) is a `Table`, one
SELECT or WITH query is a `Query`, and anything else is refused in one line that says which it is not; the specs
that read data share the one "exactly one of `table` and `sql`" check and keep their JSON."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from catalog.data_source import Query, Table, parse_source, source_of
from core.errors import UserError

TABLES = ["tickets", "support_replies", "Order Items"]


@pytest.mark.parametrize("text, name", [
    ("tickets", "tickets"),
    ("  tickets\n", "tickets"),
    ('"tickets"', "tickets"),
    ("TICKETS", "tickets"),
    ("Tickets", "tickets"),
    ("main.tickets", "tickets"),
    ('"main"."tickets"', "tickets"),
    ("tickets;", "tickets"),
    ("support_replies", "support_replies"),
    ('"Order Items"', "Order Items"),
    ('"order items"', "Order Items"),
    ("Order Items", "Order Items"),
])
def test_the_name_of_a_catalog_table_is_a_table(text, name):
    assert parse_source(text, TABLES) == Table(name=name)


@pytest.mark.parametrize("text, sql", [
    ("SELECT * FROM tickets", "SELECT * FROM tickets"),
    ("select subject from tickets where id > 3", "select subject from tickets where id > 3"),
    ("SELECT * FROM tickets;", "SELECT * FROM tickets"),
    ("  SELECT * FROM tickets ;\n", "SELECT * FROM tickets"),
    ("WITH t AS (SELECT 1 AS x) SELECT x FROM t", "WITH t AS (SELECT 1 AS x) SELECT x FROM t"),
    ("with recent as (select * from tickets) select * from recent;",
     "with recent as (select * from tickets) select * from recent"),
    ("SELECT 'a' AS prompt UNION ALL SELECT 'b'", "SELECT 'a' AS prompt UNION ALL SELECT 'b'"),
    ("SELECT ';' AS prompt", "SELECT ';' AS prompt"),
    # A query's tables are checked by the SQL guard when it runs, as every query's are.
    ("SELECT * FROM nowhere", "SELECT * FROM nowhere"),
])
def test_one_read_query_is_a_query(text, sql):
    assert parse_source(text, TABLES) == Query(sql=sql)


@pytest.mark.parametrize("text, message", [
    ("tickts", r"^no table `tickts`; did you mean `tickets`\?"),
    ("invoices", r"^no table `invoices`; known: `Order Items`, `support_replies`, `tickets`"),
    ("my table", r"^`my table` is neither a catalog table nor a SELECT or WITH query"),
    ("Order Itms", r"^`Order Itms` is neither a catalog table nor a SELECT or WITH query.*`Order Items`"),
    ("other.tickets", r"^`other.tickets` names the schema `other`: catalog tables are in schema `main`"),
    ("DROP TABLE tickets", r"^DROP refused: `DROP TABLE tickets` is not a read; give a catalog table or one SELECT "
                           r"or WITH query$"),
    ("create table t as select 1", r"^CREATE TABLE refused: `create table t as select 1` is not a read"),
    ("DELETE FROM tickets", r"^DELETE refused: `DELETE FROM tickets` is not a read"),
    ("read_csv('/etc/passwd')", r"^READ_CSV refused: `read_csv\('/etc/passwd'\)` is not a read"),
    ("SELECT 1; SELECT 2", r"^`SELECT 1; SELECT 2` holds 2 statements: give one table name or one query$"),
    ("tickets; DROP TABLE tickets", r"holds 2 statements"),
    ("", r"^no data given: name a catalog table or write one SELECT or WITH query$"),
    ("  ;  ", r"^no data given"),
    ("SELECT * FROM", r"^`SELECT \* FROM` does not parse as SQL"),
])
def test_anything_else_is_refused_in_one_line(text, message):
    with pytest.raises(UserError, match=message) as refused:
        parse_source(text, TABLES)
    assert "\n" not in str(refused.value)


def test_exactly_one_of_table_and_sql():
    assert source_of("tickets", None) == Table(name="tickets")
    assert source_of(None, "SELECT 1") == Query(sql="SELECT 1")
    for table, sql in (("tickets", "SELECT 1"), (None, None)):
        with pytest.raises(UserError, match="^give exactly one of `table` and `sql`"):
            source_of(table, sql)
    assert Table(name="order items").statement() == 'SELECT * FROM "order items"'
    assert Query(sql="SELECT 1").statement() == "SELECT 1"


@pytest.mark.parametrize("parse, base", [
    (lambda d: __import__("runtimes.training.datasets.preparation", fromlist=["x"]).DatasetSpec.parse(d),
     {"technique": "sft"}),
    (lambda d: __import__("runtimes.serving.batch.transform", fromlist=["x"]).BatchSpec.parse(d),
     {"model": "tiny"}),
    (lambda d: __import__("runtimes.training.jobs.spec", fromlist=["x"]).JobSpec.parse(d),
     {"model": "tiny"}),
])
def test_every_spec_reads_one_source_and_keeps_its_json(parse, base):
    on_table = parse({**base, "table": "tickets"})
    assert on_table.source == Table(name="tickets")
    assert on_table.model_dump(exclude_none=True)["table"] == "tickets"
    on_query = parse({**base, "sql": "SELECT 1"})
    assert on_query.source == Query(sql="SELECT 1") and on_query.table is None
    assert parse({**base, "source": Table(name="tickets")}) == on_table
    assert parse({**base, "source": {"kind": "query", "sql": "SELECT 1"}}) == on_query
    assert parse({**base, "source": Query(sql="SELECT 1"), "table": None}) == on_query
    for empty in ("table", "sql"):
        with pytest.raises(UserError, match=f"`{empty}`: String should have at least 1 character"):
            parse({**base, empty: ""})
    assert parse(on_table.model_dump()) == on_table
    for bad in ({}, {"table": "tickets", "sql": "SELECT 1"}, {"source": Table(name="tickets"), "table": "tickets"}):
        with pytest.raises(UserError, match="give exactly one of `table` and `sql`"):
            parse({**base, **bad})
    for bad, why in ((None, "Input should be a valid dictionary"), ({"kind": "file", "name": "x"}, "tag 'file'"),
                     ({"kind": "table"}, "`name` Field required"), ("tickets", "Input should be a valid dictionary")):
        with pytest.raises(UserError, match=r"`source` is a table \(\{\"kind\": \"table\", \"name\": …\}\) or a "
                                            rf"query .*{why}") as refused:
            parse({**base, "source": bad})
        assert "\n" not in str(refused.value)


@pytest.fixture
def shop(tmp_path):
    from tests.sql_workspace import build_workspace

    return build_workspace(tmp_path / "ws")


@pytest.mark.parametrize("data, message", [
    ("custmers", "no table `custmers`; did you mean `customers`?"),
    ("DROP TABLE customers", "DROP refused: `DROP TABLE customers` is not a read"),
    ("all customers", "`all customers` is neither a catalog table nor a SELECT or WITH query"),
])
def test_the_cli_reads_a_data_argument_by_parsing_it(shop, data, message):
    from cli.main import app

    for command in (["finetune", "--model", "tiny", "--data", data, "--dry-run"],
                    ["batch", "run", "tiny", "--data", data, "--dry-run"]):
        out = CliRunner().invoke(app, ["-w", str(shop.root), *command])
        assert out.exit_code != 0 and message in out.output, out.output

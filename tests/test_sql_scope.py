"""Table references resolved by scope: a CTE name never opens a system relation, and harmless forms run."""
from __future__ import annotations

import pytest

from core.errors import UserError
from catalog.safe_sql import run_sql
from tests.hostile_sql import HARMLESS, SCOPE_ESCAPES
from tests.sql_workspace import build_workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("scope") / "ws")


@pytest.mark.parametrize("sql", SCOPE_ESCAPES, ids=lambda s: s[:70])
def test_scope_escape_is_refused_for_an_admin(ws, sql):
    with pytest.raises(UserError) as refused:
        run_sql(ws, sql)
    text = str(refused.value)
    assert "\n" not in text
    # Refused by the guard before DuckDB ever saw it: DuckDB's own wording never reaches the user here.
    assert "DuckDB could not run" not in text, text


@pytest.mark.parametrize("sql, rows", HARMLESS, ids=lambda s: str(s)[:70])
def test_harmless_statement_runs(ws, sql, rows):
    assert run_sql(ws, sql).rows == rows


def test_cte_that_shadows_a_pii_table_reads_the_cte_unmasked(ws):
    from core.principal import Principal

    r = run_sql(ws, "WITH customers AS (SELECT 'x@y.z' AS email) SELECT email FROM customers",
                principal=Principal(name="ana", roles={"analyst"}))
    assert r.rows == [["x@y.z"]] and r.masked_columns == []

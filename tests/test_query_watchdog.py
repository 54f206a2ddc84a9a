"""The query watchdog: sizes bounded before a query runs, the timeout and a memory cap enforced while it runs,
and the connection usable afterwards."""
from __future__ import annotations

import pytest

from core.errors import UserError
from catalog.safe_sql import run_sql
from tests.hostile_sql import RESOURCE_ATTACKS
from tests.sql_workspace import build_workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("watch") / "ws", timeout_s=0.5, memory_limit="100MB")


@pytest.fixture(scope="module")
def roomy(tmp_path_factory):
    """A long timeout, so what stops a query here is the memory cap and nothing else."""
    return build_workspace(tmp_path_factory.mktemp("roomy") / "ws", timeout_s=60, memory_limit="100MB")


@pytest.mark.parametrize("sql", RESOURCE_ATTACKS, ids=lambda s: s[:60])
def test_resource_attack_is_refused_or_stopped(ws, sql):
    with pytest.raises(UserError) as stopped:
        run_sql(ws, sql)
    assert "\n" not in str(stopped.value)
    assert run_sql(ws, "SELECT count(*) AS n FROM numbers").rows == [[3000]]


def test_small_sizes_still_run(ws):
    assert run_sql(ws, "SELECT len(range(1000)) AS a, length(repeat('x', 50)) AS b, "
                       "len(range(0, 100, 10)) AS c, length(lpad('x', 5, 'y')) AS d").rows == [[1000, 50, 10, 5]]
    assert run_sql(ws, "SELECT len(range(n)) AS m FROM numbers WHERE n = 7").rows == [[7]]
    assert run_sql(ws, "SELECT count(*) AS n FROM range(100000)").rows == [[100000]]


@pytest.mark.parametrize("sql", [
    # within the per-call bound, but one vectorised chunk of rows holds hundreds of MiB outside DuckDB's buffers
    "SELECT max(len(l)) AS n FROM (SELECT range(9000000) AS l FROM range(40))",
    "SELECT length(string_agg(repeat('x', 1000), '')) AS n FROM range(2000000)",
])
def test_memory_is_capped_whatever_makes_it(roomy, sql):
    with pytest.raises(UserError, match="(?i)memory"):
        run_sql(roomy, sql)
    assert run_sql(roomy, "SELECT 1 AS one").rows == [[1]]


def test_the_heap_cap_is_lifted_after_each_query(roomy):
    import resource

    before = resource.getrlimit(resource.RLIMIT_DATA)
    run_sql(roomy, "SELECT count(*) AS n FROM orders")
    with pytest.raises(UserError):
        run_sql(roomy, "SELECT max(len(l)) AS n FROM (SELECT range(9000000) AS l FROM range(40))")
    assert resource.getrlimit(resource.RLIMIT_DATA) == before
    assert len(bytearray(600 * 2**20)) == 600 * 2**20  # the process can allocate past the cap again

"""MetricFlow's own test manifests (shipped in the metricflow package, no data): every metric the compiler
supports compiles to SQL that DuckDB can plan (EXPLAIN) over empty tables with the columns the manifest
names; the rest are refused with a clear "not supported yet".
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from core.errors import UserError
from catalog.semantic.compiler import compile_query
from catalog.semantic.join_graph import JoinGraph
from catalog.semantic.query import MetricQuery
from catalog.semantic.spec import AggregationType, DimensionType, SemanticManifest
from catalog.store import load_semantic_file
from tests.conftest import external

# simple_manifest's metrics that are refused, and why
SIMPLE_UNSUPPORTED = {
    **{m: "conversion metrics are not supported yet" for m in (
        "visit_buy_conversion_rate_7days", "visit_buy_conversion_rate", "visit_buy_conversions",
        "visit_buy_conversion_rate_with_monthly_conversion", "visit_buy_conversion_rate_by_session",
        "visit_buy_conversion_rate_7days_fill_nulls_with_0", "visit_buy_conversion_rate_with_filter",
        "visit_buy_conversion_rate_with_base_measure_filter")},
    **{m: "in a filter is not supported yet" for m in ("active_listings", "popular_listing_bookings_per_booker")},
    **{m: "custom granularities are not supported yet" for m in (
        "bookings_offset_alien_day", "bookings_offset_one_alien_day", "bookings_alien_day_over_alien_day")},
}
# Columns the manifests compare with numbers or use as conditions, which their names alone do not say.
_NUMERIC = {"capacity", "account_balance", "revenue", "booking_value"}


def load_manifest(name: str) -> SemanticManifest:
    m = SemanticManifest()
    for f in sorted(external("mf_manifests").joinpath(name).rglob("*.y*ml")):
        m = m.merged(load_semantic_file(f))
    return m.with_measure_metrics()


def _columns(text: str) -> list[str]:
    return [c.name for c in sqlglot.parse_one(str(text), read="duckdb").find_all(exp.Column)]


def empty_warehouse(manifest: SemanticManifest) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one empty table per model, typed from how the manifest uses each column."""
    rank = ["VARCHAR", "DOUBLE", "BOOLEAN", "TIMESTAMP"]
    types: dict[str, dict[str, str]] = {}

    def put(table: str, column: str, kind: str) -> None:
        cur = types.setdefault(table, {}).get(column)
        if column in _NUMERIC and kind == "VARCHAR":
            kind = "DOUBLE"
        if cur is None or rank.index(kind) > rank.index(cur):
            types[table][column] = kind

    for sm in manifest.semantic_models:
        for e in sm.entities:
            for c in _columns(e.column_expr):
                put(sm.table, c, "VARCHAR")
        for d in sm.dimensions:
            kind = "TIMESTAMP" if d.type == DimensionType.time else "BOOLEAN" if d.name.startswith("is_") else "VARCHAR"
            for c in _columns(d.column_expr):
                put(sm.table, c, kind)
        for ms in sm.measures:
            kind = ("BOOLEAN" if ms.agg == AggregationType.sum_boolean else
                    "VARCHAR" if ms.agg in (AggregationType.count, AggregationType.count_distinct) else "DOUBLE")
            for c in _columns(ms.column_expr):
                put(sm.table, c, kind)
    con = duckdb.connect()
    for table, cols in types.items():
        body = exp.Schema(this=exp.to_table(table), expressions=[
            exp.ColumnDef(this=exp.to_identifier(c), kind=exp.DataType.build(t)) for c, t in cols.items()])
        con.execute(exp.Create(this=body, kind="TABLE").sql("duckdb"))
    return con


def compile_default(manifest: SemanticManifest, metric: str, group_by: list[str]) -> str:
    """The metric by `group_by`; a metric whose model has no time is asked for without metric_time."""
    try:
        return compile_query(manifest, MetricQuery(metrics=[metric], group_by=group_by)).sql
    except UserError as e:
        if "agg_time_dimension" not in str(e):
            raise
        return compile_query(manifest, MetricQuery(metrics=[metric])).sql


def check_manifest(name: str, group_bys: list[list[str]]) -> dict[str, str]:
    manifest = load_manifest(name)
    con = empty_warehouse(manifest)
    refused: dict[str, str] = {}
    for m in manifest.metrics:
        for gb in group_bys:
            try:
                sql = compile_default(manifest, m.name, gb)
            except UserError as e:
                refused[m.name] = str(e)
                break
            con.execute("EXPLAIN " + sql)  # DuckDB binds every name and type: the SQL is runnable
    return refused


def test_every_supported_metric_of_simple_manifest_plans_on_duckdb():
    refused = check_manifest("simple_manifest", [["metric_time"]])
    assert set(refused) == set(SIMPLE_UNSUPPORTED)
    for metric, reason in SIMPLE_UNSUPPORTED.items():
        assert reason in refused[metric], refused[metric]


def test_simple_manifest_by_joined_dimensions():
    manifest = load_manifest("simple_manifest")
    con = empty_warehouse(manifest)
    cases = [
        (["bookings", "booking_value", "bookers"], ["listing__country_latest", "metric_time__day"]),
        (["bookings_per_listing", "views_times_booking_value"], ["listing__is_lux_latest"]),
        (["revenue"], ["user__home_state_latest", "user__company_name"]),  # two models reached by `user`
        (["total_account_balance_first_day", "current_account_balance_by_user"], ["metric_time__month", "user"]),
        (["lux_booking_value_rate_expr", "instant_lux_booking_value_rate"], ["metric_time__day"]),
        (["bookings_growth_2_weeks", "bookings_month_start_compared_to_1_month_prior"], ["metric_time__day"]),
        (["bookings_growth_2_weeks"], ["metric_time__week"]),
        (["bookings_growth_2_weeks", "bookings_mom", "bookings_yoy", "bookers"], ["metric_time__month"]),
        (["every_2_days_bookers_2_days_ago", "booking_fees_since_start_of_month"], ["metric_time__day"]),
        (["trailing_2_months_revenue", "revenue_mtd", "revenue_all_time"], ["metric_time__quarter"]),
        (["subdaily_cumulative_window_metric", "subdaily_offset_window_metric"], ["metric_time__hour"]),
    ]
    for metrics, group_by in cases:
        c = compile_query(manifest, MetricQuery(metrics=metrics, group_by=group_by))
        assert c.columns == [*group_by, *metrics]
        con.execute("EXPLAIN " + c.sql)
    # MetricFlow reads an offset_to_grain at the metric's own grain (the first day of the month): a coarser
    # grain is refused rather than answered differently
    with pytest.raises(UserError, match="offset_to_grain at `metric_time__week`"):
        compile_query(manifest, MetricQuery(metrics=["bookings_month_start_compared_to_1_month_prior"],
                                            group_by=["metric_time__week"]))


OTHER_MANIFESTS = sorted(p.name for p in Path(external("mf_manifests")).iterdir()
                         if p.is_dir() and p.name not in ("simple_manifest", "shared", "__pycache__",
                                                          "config_linter_manifest"))  # lint errors: test_store


@pytest.mark.parametrize("name", OTHER_MANIFESTS)
def test_metricflow_test_manifests_plan_on_duckdb(name):
    refused = check_manifest(name, [["metric_time"]])
    assert all("not supported yet" in why for why in refused.values()), refused


def test_multi_hop_and_versioned_joins():
    manifest = load_manifest("scd_manifest")
    c = compile_query(manifest, MetricQuery(metrics=["family_bookings"], group_by=["listing__country"]))
    join = c.tree.args["joins"][0]
    # a slowly changing dimension is joined at the booking's own time: one version per booking
    assert "bookings_source.ds >= listing.active_from" in join.sql("duckdb")
    assert "listing.active_to IS NULL" in join.sql("duckdb")
    manifest = load_manifest("multi_hop_join_manifest")
    con = empty_warehouse(manifest)
    graph = JoinGraph(manifest)
    for m in manifest.metrics:
        source = next(sm.name for sm in manifest.semantic_models for ms in sm.measures
                      if ms.name == m.type_params.measure.name)
        two_hops = [n for n in graph.names(source) if n.count("__") == 2][:3]
        assert two_hops, "the manifest reaches dimensions two joins away"
        c = compile_query(manifest, MetricQuery(metrics=[m.name], group_by=two_hops))
        assert len(c.tree.args["joins"]) >= 2
        con.execute("EXPLAIN " + c.sql)

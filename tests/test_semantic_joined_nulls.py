"""Dimensions of a joined model are NULL where the join found no row, whatever their expression: a constant
flag (`expr: "1"`, "a row exists"), a CASE, a COALESCE, a function of several columns, one or two joins away,
as MetricFlow makes them by projecting dimensions inside the joined model. Expected rows are worked out by hand.
"""
from __future__ import annotations

import decimal

import pytest

from catalog.semantic.query import MetricQuery
from catalog.semantic.runner import run_metric_query
from core.workspace import Workspace
from catalog.warehouse import connect_writer

DATA = """
CREATE TABLE orders (order_id INT, customer_id VARCHAR, amount DOUBLE, ordered_at DATE);
INSERT INTO orders VALUES (1, 'c1', 10, '2024-01-01'), (2, 'c1', 20, '2024-01-02'), (3, 'c2', 30, '2024-01-02'),
                          (4, 'c3', 40, '2024-01-03'), (5, 'c9', 50, '2024-01-03');
CREATE TABLE customers (customer_id VARCHAR, region_id VARCHAR, tier VARCHAR);
INSERT INTO customers VALUES ('c1', 'r1', 'gold'), ('c2', 'r2', 'silver'), ('c3', 'r3', 'gold');
CREATE TABLE regions (region_id VARCHAR, zone VARCHAR);
INSERT INTO regions VALUES ('r1', 'north'), ('r2', 'south');
CREATE TABLE vips (customer_id VARCHAR, since DATE, tag VARCHAR, level INT);
INSERT INTO vips VALUES ('c1', '2020-05-01', NULL, 2), ('c3', NULL, 'x', 1);
"""

MODELS = """
semantic_models:
  - name: orders
    model: ref('orders')
    defaults: {agg_time_dimension: ordered_at}
    entities:
      - {name: order, type: primary, expr: order_id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
    measures:
      - {name: revenue, agg: sum, expr: amount}
      - {name: order_count, agg: count, expr: order_id}
  - name: customers
    model: ref('customers')
    entities:
      - {name: customer, type: primary, expr: customer_id}
      - {name: region, type: foreign, expr: region_id}
    dimensions:
      - {name: tier, type: categorical}
  - name: regions
    model: ref('regions')
    entities:
      - {name: region, type: primary, expr: region_id}
    dimensions:
      - {name: zone, type: categorical}
      - {name: has_zone_row, type: categorical, expr: "1"}
  - name: vips
    model: ref('vips')
    entities:
      - {name: customer, type: primary, expr: customer_id}
    dimensions:
      - {name: is_vip, type: categorical, expr: "1"}
      - {name: vip_flag, type: categorical, expr: "true"}
      - {name: vip_label, type: categorical, expr: "CASE WHEN since IS NULL THEN 'no date' ELSE 'dated' END"}
      - {name: vip_tag, type: categorical, expr: "coalesce(tag, 'none')"}
      - {name: vip_code, type: categorical, expr: "concat(coalesce(tag, 't'), level)"}
metrics:
  - {name: revenue, type: simple, type_params: {measure: revenue}}
  - {name: order_count, type: simple, type_params: {measure: order_count}}
  - name: vip_revenue
    type: simple
    type_params: {measure: revenue}
    filter: "{{ Dimension('customer__is_vip') }} = 1"
  - name: other_revenue
    type: simple
    type_params: {measure: revenue}
    filter: "{{ Dimension('customer__is_vip') }} IS NULL"
  - name: vip_orders
    type: simple
    type_params: {measure: order_count}
    filter: "{{ Dimension('customer__vip_flag') }}"
  - name: vip_share
    type: ratio
    type_params: {numerator: vip_revenue, denominator: revenue}
  - name: vip_minus_other
    type: derived
    type_params:
      expr: vip_revenue - other_revenue
      metrics: [{name: vip_revenue}, {name: other_revenue}]
  - name: managed_revenue
    type: simple
    type_params: {measure: revenue}
    filter: "{{ Dimension('customer__region__has_zone_row') }} = 1"
"""


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    w = Workspace(tmp_path_factory.mktemp("joined") / "ws")
    w.create()
    with connect_writer(w) as con:
        con.execute(DATA)
    (w.catalog_dir / "semantic" / "shop.yml").write_text(MODELS)
    return w


def rows(ws: Workspace, metrics: list[str], **kw) -> list[tuple]:
    res = run_metric_query(ws, MetricQuery(metrics=metrics, **kw))
    out = [tuple(round(float(v), 6) if isinstance(v, (float, decimal.Decimal)) else v for v in r) for r in res.rows]
    return sorted(out, key=repr)


def test_a_constant_flag_is_null_where_the_joined_row_is_missing(ws):
    # c1 and c3 are VIPs (30 + 40); c2 is not, and c9 is no customer at all (30 + 50)
    assert rows(ws, ["revenue"], group_by=["customer__is_vip"]) == [(1, 70.0), (None, 80.0)]
    assert rows(ws, ["revenue"], group_by=["customer__vip_flag"]) == [(None, 80.0), (True, 70.0)]


def test_a_where_on_a_constant_flag_keeps_only_joined_rows(ws):
    assert rows(ws, ["revenue"], where=["{{ Dimension('customer__is_vip') }} = 1"]) == [(70.0,)]
    assert rows(ws, ["revenue"], where=["customer__is_vip IS NULL"]) == [(80.0,)]
    assert rows(ws, ["order_count"], where=["{{ Dimension('customer__vip_flag') }}"]) == [(3,)]


def test_metric_filters_on_joined_flags(ws):
    assert rows(ws, ["vip_revenue", "other_revenue", "vip_orders"]) == [(70.0, 80.0, 3)]
    by_day = {str(r[0])[:10]: r[1:] for r in rows(ws, ["vip_revenue", "other_revenue"], group_by=["metric_time__day"])}
    assert by_day == {"2024-01-01": (10.0, None), "2024-01-02": (20.0, 30.0), "2024-01-03": (40.0, 50.0)}


def test_derived_and_ratio_metrics_over_filtered_inputs_keep_null_arithmetic(ws):
    by_day = {str(r[0])[:10]: r[1:] for r in rows(ws, ["vip_share", "vip_minus_other"], group_by=["metric_time__day"])}
    assert by_day == {"2024-01-01": (1.0, None), "2024-01-02": (0.4, -10.0), "2024-01-03": (0.444444, -10.0)}
    assert rows(ws, ["vip_share", "vip_minus_other"]) == [(0.466667, -10.0)]


def test_case_coalesce_and_several_column_expressions_of_a_joined_model(ws):
    assert rows(ws, ["revenue"], group_by=["customer__vip_label"]) == [
        ("dated", 30.0), ("no date", 40.0), (None, 80.0)]
    assert rows(ws, ["revenue"], group_by=["customer__vip_tag"]) == [("none", 30.0), ("x", 40.0), (None, 80.0)]
    assert rows(ws, ["revenue"], group_by=["customer__vip_code"]) == [("t2", 30.0), ("x1", 40.0), (None, 80.0)]
    assert rows(ws, ["revenue"], where=["customer__vip_tag = 'none'"]) == [(30.0,)]


def test_dimensions_two_joins_away(ws):
    # c1 (r1) and c2 (r2) reach a region row; c3's r3 is no region and c9 no customer
    assert rows(ws, ["revenue"], group_by=["customer__region__has_zone_row"]) == [(1, 60.0), (None, 90.0)]
    assert rows(ws, ["managed_revenue"]) == [(60.0,)]
    assert rows(ws, ["revenue"], where=["{{ Dimension('customer__region__has_zone_row') }} = 1"]) == [(60.0,)]
    assert rows(ws, ["revenue"], group_by=["customer__region__zone"]) == [("north", 30.0), ("south", 30.0),
                                                                         (None, 90.0)]


def test_entities_reached_through_a_join(ws):
    assert rows(ws, ["revenue"], group_by=["customer__region"]) == [("r1", 30.0), ("r2", 30.0), ("r3", 40.0),
                                                                   (None, 50.0)]
    assert rows(ws, ["revenue"], group_by=["customer"]) == [("c1", 30.0), ("c2", 30.0), ("c3", 40.0), ("c9", 50.0)]

"""Profiling: exact statistics on a small real table, PII proposals with reasons (applied only with
--accept-pii), an analyst's metadata kept, `lathe catalog profile` and `lathe catalog describe`."""
from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from catalog.metadata import Column, ColumnLineage, Owner, PiiTag, Table
from catalog.profiling import ProfileReport, profile_report, profile_table
from catalog.store import CatalogStore
from catalog.table_description import describe_table, filter_dimensions
from catalog.warehouse import connect_writer
from cli.main import app

PEOPLE = """
CREATE TABLE people AS SELECT * FROM (VALUES
    (1, 'a', 10.50, 'maria.garcia@example.com', 40001, DATE '2025-01-03', 'vip'),
    (2, 'a', 20.00, 'james.smith@example.net',  40002, DATE '2025-01-01', NULL),
    (3, 'b', NULL,  'wei.zhang@example.org',    40003, DATE '2025-02-10', NULL),
    (4, 'a', 5.25,  'aisha.khan@example.com',   40004, DATE '2025-03-01', NULL),
    (5, 'c', 7.00,  'lucas.martin@example.com', 40005, NULL,              NULL),
    (6, 'b', 7.00,  'emma.rossi@example.com',   40006, DATE '2025-01-03', NULL),
    (7, 'a', 99.99, 'noah.silva@example.com',   40007, DATE '2025-04-30', NULL),
    (8, 'c', 1.00,  'grace.kim@example.com',    40008, DATE '2025-04-01', NULL),
    (9, 'a', 3.30,  'omar.haddad@example.com',  40009, DATE '2025-02-02', NULL),
    (10, 'b', 4.40, 'lena.weber@example.com',   40010, DATE '2025-02-03', NULL)
) v(person_id, status, price, email, order_ref, joined, note)
"""
SEMANTIC = """
semantic_models:
  - name: people
    model: ref('people')
    defaults:
      agg_time_dimension: joined
    entities:
      - name: person
        type: primary
        expr: person_id
    dimensions:
      - name: status
        type: categorical
      - name: joined
        type: time
        type_params:
          time_granularity: day
    measures:
      - name: spend
        agg: sum
        expr: price
metrics:
  - name: total_spend
    type: simple
    type_params:
      measure: spend
  - name: spend_per_head
    type: derived
    type_params:
      expr: total_spend / 10
      metrics: [total_spend]
  - name: vip_spend
    type: simple
    type_params:
      measure: spend
    filter: "{{ Dimension('person__status') }} = 'a'"
"""


@pytest.fixture
def people(workspace):
    with connect_writer(workspace) as con:
        con.execute(PEOPLE)
    return workspace


def _cli(ws, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(ws.root), *args])


def test_exact_stats_on_a_small_table(people):
    table = profile_table(people, "people")
    assert table.row_count == 10
    assert [c.name for c in table.columns] == ["person_id", "status", "price", "email", "order_ref", "joined", "note"]
    assert [c.type for c in table.columns] == ["INTEGER", "VARCHAR", "DECIMAL(4,2)", "VARCHAR", "INTEGER", "DATE", "VARCHAR"]
    stats = {c.name: c.stats for c in table.columns}
    assert (stats["person_id"].null_count, stats["person_id"].distinct_count) == (0, 10)
    assert (stats["person_id"].min, stats["person_id"].max) == (1, 10)
    assert (stats["price"].null_count, stats["price"].distinct_count, stats["price"].min, stats["price"].max) == (1, 8, 1.0, 99.99)
    assert (stats["joined"].null_count, stats["joined"].min, stats["joined"].max) == (1, "2025-01-01", "2025-04-30")
    assert stats["status"].top_values == [("a", 5), ("b", 3), ("c", 2)]
    assert table.column("status").sample_values == ["a", "b", "c"]
    assert (stats["note"].null_count, stats["note"].distinct_count) == (9, 1)
    assert stats["status"].min is None  # text gets top values or samples, not a lexical min/max
    assert table.column("person_id").sample_values == [1, 2, 3, 4, 5]
    # written to the catalog, in one file
    assert CatalogStore(people).load_table("people") == table


def test_pii_is_proposed_with_its_reason_and_not_applied(people):
    report = profile_report(people, "people")
    assert [(p.column, p.tag) for p in report.proposed_pii] == [("email", PiiTag.email)]
    assert report.proposed_pii[0].reason == "10 of 10 sampled values look like e-mail addresses; " \
                                            "the column name `email` says so too"
    assert report.applied_pii == []
    stored = CatalogStore(people).load_table("people")
    assert all(c.pii is None for c in stored.columns)  # ids, prices, order refs, dates: no false positives
    # The values of a personal-data column never reach the catalog files.
    text = (people.catalog_dir / "tables" / "people.yml").read_text()
    assert "@example" not in text
    assert stored.column("email").stats.distinct_count == 10


def test_accept_pii_applies_and_keeps_analyst_metadata(people):
    store = CatalogStore(people)
    with store.transaction() as txn:
        txn.put_table(Table(name="people", description="Our members.", owner="crm", tags=["core"], columns=[
            Column(name="person_id", description="Member number."),
            Column(name="note", description="Free text.", pii=PiiTag.other, tags=["sensitive"]),
            Column(name="legacy_code", description="Removed last year."),
        ]))
    report = profile_report(people, "people", accept_pii=True)
    assert report.applied_pii == ["email"] and report.dropped_columns == ["legacy_code"]
    t = store.load_table("people")
    assert (t.description, t.owner, t.tags) == ("Our members.", "crm", ["core"])
    assert t.column("person_id").description == "Member number."
    assert (t.column("note").pii, t.column("note").tags) == (PiiTag.other, ["sensitive"])
    assert t.column("note").sample_values == []  # tagged by the analyst: no values copied
    assert t.column("email").pii == PiiTag.email
    assert t.column("legacy_code") is None
    # Once tagged, nothing is proposed again and an analyst's tag is never overwritten.
    again = profile_report(people, "people", accept_pii=True)
    assert again.proposed_pii == [] and store.load_table("people").column("note").pii == PiiTag.other


def test_profile_cli_json_then_accept(people):
    r = _cli(people, "catalog", "profile", "people", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["table"]["row_count"] == 10
    assert data["proposed_pii"][0]["column"] == "email" and data["applied_pii"] == []
    r = _cli(people, "catalog", "profile", "people")
    assert r.exit_code == 0 and "Proposed PII tags (rerun with --accept-pii" in r.stdout
    assert "email: email (10 of 10 sampled values look like e-mail addresses" in r.stdout
    r = _cli(people, "catalog", "profile", "people", "--accept-pii")
    assert r.exit_code == 0 and "PII tags applied:" in r.stdout
    assert CatalogStore(people).load_table("people").column("email").pii == PiiTag.email


def test_unknown_table_is_a_clear_error(people):
    r = _cli(people, "catalog", "profile", "peeple")
    assert r.exit_code == 2
    assert "no table `peeple`; did you mean `people`?" in r.output
    assert not (people.catalog_dir / "tables" / "peeple.yml").exists()


def test_large_tables_get_estimated_distinct_counts(workspace):
    with connect_writer(workspace) as con:
        con.execute("CREATE TABLE big AS SELECT range AS id, range % 7 AS bucket FROM range(1000001)")
    report = profile_report(workspace, "big")
    stats = {c.name: c.stats for c in report.table.columns}
    assert report.approximate_distinct
    assert abs(stats["id"].distinct_count - 1_000_001) < 50_000
    assert stats["bucket"].top_values[0] == (0, 142858)


def test_describe_shows_owner_metrics_dimensions_and_lineage(people):
    profile_report(people, "people", accept_pii=True)
    store = CatalogStore(people)
    t = store.load_table("people")
    t.owner = "crm"
    with store.transaction() as txn:
        txn.put_table(t)
        txn.put_owners([Owner(name="crm", team="CRM", email="crm@example.com")])
        txn.put_semantic("people", yaml.safe_load(SEMANTIC))
        txn.put_lineage([ColumnLineage(table="people", column="price", sources=["raw_people.amount"])])
    d = describe_table(people, "PEOPLE")
    assert d.owner.email == "crm@example.com"
    assert d.semantic_models == ["people"] and d.entities == ["person"]
    assert d.dimensions == ["person__status", "person__joined"] and d.measures == ["spend"]
    assert d.metrics == ["spend_per_head", "total_spend", "vip_spend"]
    assert [x.sources for x in d.lineage] == [["raw_people.amount"]]
    r = _cli(people, "catalog", "describe", "people", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["metrics"] == d.metrics and data["owner"]["team"] == "CRM"
    assert {c["name"]: c.get("pii") for c in data["table"]["columns"]}["email"] == "email"
    r = _cli(people, "catalog", "describe", "people")
    assert r.exit_code == 0
    assert "owner crm, CRM, crm@example.com" in r.stdout and "Metrics: spend_per_head, total_spend, vip_spend" in r.stdout
    assert "price <- raw_people.amount" in r.stdout


def test_describe_a_table_the_catalog_does_not_list(people):
    d = describe_table(people, "people")
    assert not d.catalogued and [(c.name, c.type) for c in d.table.columns][:2] == [("person_id", "INTEGER"), ("status", "VARCHAR")]
    r = _cli(people, "catalog", "describe", "people")
    assert "Not in the catalog yet: run `lathe catalog profile people`" in r.stdout
    r = _cli(people, "catalog", "describe", "nobody")
    assert r.exit_code == 2 and "no table `nobody`" in r.output


def test_filter_dimensions_reads_jinja_not_text():
    assert filter_dimensions(["{{ Dimension('customer__region') }} = 'EMEA'",
                              "{{ TimeDimension('metric_time', 'month') }} > '2025-01-01'",
                              "{{ Dimension('country__region', entity_path=['customer']) }} = 'NA'"]) == \
        ["customer__region", "metric_time", "country__region"]


def test_report_json_round_trips(people):
    report = profile_report(people, "people")
    assert ProfileReport.model_validate(report.to_json()) == report

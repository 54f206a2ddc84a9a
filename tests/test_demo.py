"""`lathe init --demo`: the demo company's tables, sizes, determinism and realistic shapes, its text,
metadata and MetricFlow YAML; refusal, `--force`, clean failure; and `lathe tour`."""
from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from catalog.demo.company import DEMO_TABLES
from catalog.metadata import PiiTag
from catalog.semantic.spec import MetricType
from catalog.store import CatalogStore
from catalog.table_description import filter_dimensions, primary_entity
from core.workspace import Workspace
from cli import tour_command
from cli.main import app

if "tour" not in {c.name for c in app.registered_commands}:
    tour_command.register(app)

INIT_OUTPUT: dict[Path, str] = {}
PRIMARY_KEYS = {"customers": "customer_id", "products": "product_id", "orders": "order_id",
                "order_items": "order_item_id", "support_agents": "agent_id", "support_tickets": "ticket_id",
                "ticket_replies": "reply_id", "reply_preferences": "pair_id"}


def _cli(root: Path, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


def _init(root: Path, *args: str) -> Workspace:
    r = _cli(root, "init", "--demo", *args)
    assert r.exit_code == 0, r.output
    return Workspace(root)


def _query(ws: Workspace, sql: str) -> list[tuple]:
    with duckdb.connect(str(ws.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _one(ws: Workspace, sql: str):
    return _query(ws, sql)[0][0]


def _digest(ws: Workspace) -> dict[str, str]:
    out = {}
    with duckdb.connect(str(ws.warehouse_path), read_only=True) as con:
        for table, pk in PRIMARY_KEYS.items():
            rows = con.table(table).order(pk).fetchall()
            out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Workspace:
    """The demo company at scale 1, made once through the CLI."""
    root = tmp_path_factory.mktemp("demo") / "ws"
    r = _cli(root, "init", "--demo")
    assert r.exit_code == 0, r.output
    INIT_OUTPUT[root] = r.stdout
    return Workspace(root)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Workspace:
    return _init(tmp_path_factory.mktemp("small") / "ws", "--scale", "0.1")


def test_tables_and_row_counts(demo):
    counts = {t: _one(demo, f"SELECT count(*) FROM {t}") for t in DEMO_TABLES}
    assert counts["customers"] == 5000 and counts["products"] == 200 and counts["support_agents"] == 40
    assert counts["orders"] == 40_000 and counts["support_tickets"] == 4000 and counts["reply_preferences"] == 1000
    assert 2.3 * 40_000 < counts["order_items"] < 2.7 * 40_000
    assert 4000 <= counts["ticket_replies"] <= 8000
    for t, n in counts.items():  # the CLI says what it made
        assert re.search(rf"^\s+{t}\s+{n:,}$", INIT_OUTPUT[demo.root], re.M), INIT_OUTPUT[demo.root]
    types = dict(_query(demo, "SELECT column_name, data_type FROM information_schema.columns "
                              "WHERE table_name = 'order_items'"))
    assert types == {"order_item_id": "BIGINT", "order_id": "BIGINT", "customer_id": "INTEGER",
                     "product_id": "INTEGER", "ordered_at": "TIMESTAMP", "quantity": "INTEGER",
                     "unit_price": "DECIMAL(10,2)", "discount": "DECIMAL(4,2)", "amount": "DECIMAL(12,2)"}
    # primary keys are unique
    for t, pk in PRIMARY_KEYS.items():
        assert _one(demo, f"SELECT count(DISTINCT {pk}) = count(*) FROM {t}")


def test_fact_tables_scale_and_dimensions_do_not(demo, small):
    assert _one(small, "SELECT count(*) FROM orders") == 4000
    assert _one(small, "SELECT count(*) FROM support_tickets") == 400
    assert _one(small, "SELECT count(*) FROM reply_preferences") == 100
    assert 2.3 * 4000 < _one(small, "SELECT count(*) FROM order_items") < 2.7 * 4000
    for t in ("customers", "products", "support_agents"):
        assert _one(small, f"SELECT count(*) FROM {t}") == _one(demo, f"SELECT count(*) FROM {t}")


@pytest.mark.slow
def test_same_seed_gives_the_same_data_on_any_thread_count(small, tmp_path):
    root = tmp_path / "again"
    root.mkdir()
    # Settings written before init are kept: this one generates on a single thread.
    (root / "lathe.toml").write_text('[sql]\nthreads = 1\n')
    again = _init(root, "--scale", "0.1")
    assert again.settings.sql.threads == 1
    assert _digest(again) == _digest(small)
    other = _init(tmp_path / "other", "--scale", "0.1", "--seed", "7")
    assert _digest(other)["orders"] != _digest(small)["orders"]


def test_everything_happens_inside_the_two_years_and_in_order(demo):
    lo, hi = "TIMESTAMP '2024-11-01 00:00:00'", "TIMESTAMP '2026-10-31 23:59:59'"
    assert _one(demo, f"SELECT min(ordered_at) >= {lo} AND max(ordered_at) <= {hi} FROM orders")
    assert _one(demo, f"SELECT min(opened_at) >= {lo} AND max(coalesce(resolved_at, opened_at)) <= {hi} FROM support_tickets")
    assert _one(demo, "SELECT count(*) FROM orders o JOIN customers c USING (customer_id) "
                      "WHERE CAST(o.ordered_at AS DATE) < c.signup_date") == 0
    assert _one(demo, "SELECT count(*) FROM order_items i JOIN products p USING (product_id) "
                      "WHERE CAST(i.ordered_at AS DATE) < p.launched_on") == 0
    assert _one(demo, "SELECT count(*) FROM support_tickets t JOIN orders o USING (order_id) "
                      "WHERE t.opened_at < o.ordered_at") == 0
    assert _one(demo, "SELECT count(*) FROM ticket_replies r JOIN support_tickets t USING (ticket_id) "
                      f"WHERE r.replied_at < t.opened_at OR r.replied_at > coalesce(t.resolved_at, {hi})") == 0
    assert _one(demo, "SELECT count(*) FROM order_items i JOIN orders o USING (order_id) "
                      "WHERE i.customer_id <> o.customer_id OR i.ordered_at <> o.ordered_at") == 0
    assert _one(demo, "SELECT count(*) FROM order_items WHERE amount <> round(quantity * unit_price * (1 - discount), 2)") == 0
    assert dict(_query(demo, "SELECT region, count(DISTINCT country) FROM customers GROUP BY region")).keys() == \
        {"EMEA", "NA", "APAC", "LATAM"}
    assert _one(demo, "SELECT count(*) FROM customers WHERE region = 'NA' AND country NOT IN ('United States', 'Canada')") == 0


def test_growth_and_november_december_peaks(demo):
    monthly = dict(_query(demo, "SELECT strftime(ordered_at, '%Y-%m'), count(*) FROM orders GROUP BY 1"))
    first_year = sum(n for m, n in monthly.items() if m < "2025-11")
    second_year = sum(n for m, n in monthly.items() if m >= "2025-11")
    assert second_year > 1.3 * first_year
    ordinary_2025 = sum(monthly[f"2025-{m:02d}"] for m in range(2, 10)) / 8
    assert monthly["2025-12"] > 1.5 * ordinary_2025 and monthly["2025-11"] > 1.3 * ordinary_2025
    assert monthly["2026-01"] < monthly["2025-12"] * 0.7  # the January dip


def test_regional_mix_and_bigger_enterprise_baskets(demo):
    regions = dict(_query(demo, "SELECT region, count(*) FROM customers GROUP BY region"))
    assert regions["EMEA"] > regions["APAC"] > regions["LATAM"] and regions["NA"] > regions["APAC"]
    basket = dict(_query(demo, "SELECT c.segment, avg(s.total) FROM (SELECT order_id, customer_id, sum(amount) AS total "
                               "FROM order_items GROUP BY ALL) s JOIN customers c USING (customer_id) GROUP BY 1"))
    assert basket["enterprise"] > 2 * basket["mid-market"] > 2 * basket["consumer"]
    assert basket["smb"] > basket["consumer"]
    status = dict(_query(demo, "SELECT status, count(*) FROM orders GROUP BY 1"))
    assert 0.04 < status["returned"] / 40_000 < 0.12 and 0.02 < status["cancelled"] / 40_000 < 0.08


def test_returns_bring_returns_tickets(demo):
    by_category = dict(_query(demo, "SELECT t.category, avg(CASE WHEN o.status = 'returned' THEN 1 ELSE 0 END) "
                                    "FROM support_tickets t LEFT JOIN orders o USING (order_id) GROUP BY 1"))
    assert by_category["returns"] == 1.0  # every returns ticket is about a returned order
    rate = dict(_query(demo, "SELECT o.status, count(DISTINCT t.order_id) / count(DISTINCT o.order_id) "
                             "FROM orders o LEFT JOIN support_tickets t USING (order_id) GROUP BY 1"))
    assert rate["returned"] > 5 * rate["completed"]
    assert _one(demo, "SELECT count(*) FROM support_tickets WHERE order_id IS NULL AND category NOT IN ('account', 'billing')") == 0


def test_resolution_time_by_priority_and_slow_tickets_score_lower(demo):
    hours = dict(_query(demo, "SELECT priority, median(resolution_hours) FROM support_tickets GROUP BY 1"))
    assert hours["urgent"] < hours["high"] < hours["medium"] < hours["low"]
    assert _one(demo, "SELECT count(*) FROM support_tickets WHERE (status = 'open') <> (resolved_at IS NULL) "
                      "OR (resolved_at IS NULL) <> (resolution IS NULL) OR (status = 'open' AND csat IS NOT NULL)") == 0
    csat = _query(demo, "SELECT resolution_hours > median(resolution_hours) OVER (PARTITION BY priority) AS slow, "
                        "csat FROM support_tickets WHERE csat IS NOT NULL")
    slow = [c for s, c in csat if s]
    fast = [c for s, c in csat if not s]
    assert sum(fast) / len(fast) > sum(slow) / len(slow) + 0.3
    assert _one(demo, "SELECT min(csat) = 1 AND max(csat) = 5 FROM support_tickets")


def test_ticket_text_reads_like_support_mail(demo):
    rows = _query(demo, "SELECT t.subject, t.body, t.order_id, p.product_name, c.full_name, t.resolution "
                        "FROM support_tickets t JOIN customers c USING (customer_id) "
                        "LEFT JOIN (SELECT order_id, list(product_id) AS products FROM order_items GROUP BY 1) i USING (order_id) "
                        "LEFT JOIN products p ON list_contains(i.products, p.product_id) AND t.body LIKE '%' || p.product_name || '%' "
                        "QUALIFY row_number() OVER (PARTITION BY t.ticket_id ORDER BY p.product_id) = 1")
    assert len(rows) == 4000
    greeting = re.compile(r"^(Hi|Hello|Dear|Good morning)\b")
    for subject, body, order_id, product, full_name, resolution in rows:
        assert greeting.match(body), body
        assert "{" not in subject + body + (resolution or "")
        assert body.rstrip().endswith(full_name.split()[0])  # signed with the customer's first name
        assert 2 <= len(subject.split()) and len(body) > 60
        if order_id is not None:
            assert f"#{order_id}" in body, body
    linked = [r for r in rows if r[2] is not None]
    # the product named in the mail is one of the order's products, for nearly every order-linked ticket
    assert sum(r[3] is not None for r in linked) / len(linked) > 0.6


def test_replies_and_preference_pairs(demo):
    pairs = _query(demo, "SELECT p.prompt, p.chosen, p.rejected, t.body, c.full_name FROM reply_preferences p "
                         "JOIN support_tickets t USING (ticket_id) JOIN customers c USING (customer_id)")
    assert len(pairs) == 1000
    for prompt, chosen, rejected, body, full_name in pairs:
        assert prompt == body and chosen != rejected
        assert len(chosen) > 2 * len(rejected)
        assert chosen.startswith(("Hi ", "Hello ")) and full_name.split()[0] in chosen
    assert _one(demo, "SELECT count(DISTINCT ticket_id) FROM reply_preferences") == 1000
    quality = dict(_query(demo, "SELECT quality_score >= 4, avg(length(body)) FROM ticket_replies GROUP BY 1"))
    assert quality[True] > 2 * quality[False]
    assert _one(demo, "SELECT count(*) FROM ticket_replies WHERE body LIKE '%{%'") == 0


def test_metadata_describes_every_column_and_tags_pii(demo):
    catalog = CatalogStore(demo).load()
    assert set(catalog.tables) == set(DEMO_TABLES)
    columns = _query(demo, "SELECT table_name, column_name, data_type FROM information_schema.columns "
                           "WHERE table_schema = 'main'")
    for table, column, data_type in columns:
        c = catalog.tables[table].column(column)
        assert c is not None and c.description and c.type == data_type, (table, column)
    pii = {(t.name, c.name): c.pii for t in catalog.tables.values() for c in t.columns if c.pii}
    assert pii == {("customers", "full_name"): PiiTag.name, ("customers", "email"): PiiTag.email,
                   ("customers", "phone"): PiiTag.phone, ("support_agents", "agent_name"): PiiTag.name}
    for t in catalog.tables.values():
        assert t.description and t.owner in catalog.owners and t.primary_key == [PRIMARY_KEYS[t.name]]
        assert t.row_count == _one(demo, f"SELECT count(*) FROM {t.name}")
    assert all(o.email and o.email.endswith(".example") for o in catalog.owners.values())
    synonyms = {g.name: set(g.synonyms) for g in catalog.glossary.values()}
    assert {"sales", "turnover"} <= synonyms["revenue"] and {"AOV", "basket size"} <= synonyms["average order value"]
    assert "satisfaction" in synonyms["CSAT"] and {"time to resolve", "TTR"} <= synonyms["resolution time"]
    assert {"territory", "geo"} <= synonyms["region"] and {"tier", "customer type"} <= synonyms["segment"]
    assert {"enterprise customer", "ticket volume", "return rate"} <= set(synonyms)
    # Profiled at init, with no personal data copied into the catalog files.
    assert catalog.tables["orders"].column("status").stats.top_values[0][0] == "completed"
    email = _one(demo, "SELECT email FROM customers LIMIT 1")
    agent = _one(demo, "SELECT agent_name FROM support_agents LIMIT 1")
    text = "".join(p.read_text() for p in (demo.catalog_dir / "tables").glob("*.yml"))
    assert email not in text and agent not in text


def test_semantic_layer_loads_and_refers_to_what_exists(demo):
    manifest = CatalogStore(demo).load_semantic()
    assert (demo.catalog_dir / "semantic" / "demo.yml").exists()
    assert {m.name for m in manifest.metrics} >= {
        "revenue", "orders", "average_order_value", "units_sold", "customers_with_orders", "new_customers",
        "ticket_volume", "resolution_time", "median_resolution_time", "csat", "resolved_tickets",
        "resolution_rate", "returned_orders", "return_rate", "revenue_growth_mom", "cumulative_revenue",
        "revenue_mtd", "revenue_last_30_days", "emea_revenue"}
    columns = {}
    for table, column in _query(demo, "SELECT table_name, column_name FROM information_schema.columns"):
        columns.setdefault(table, set()).add(column)
    measures = {ms.name for m in manifest.semantic_models for ms in m.measures}
    dimensions = {f"{primary_entity(m)}__{d.name}" for m in manifest.semantic_models for d in m.dimensions}
    metric_names = {m.name for m in manifest.metrics}
    for m in manifest.semantic_models:
        assert m.table in columns, m.name
        for item in [*m.entities, *m.dimensions]:
            assert item.column_expr in columns[m.table], (m.name, item.name)
        for ms in m.measures:
            # an expr is either a column or a small SQL expression over the model's columns
            assert ms.column_expr in columns[m.table] or ms.column_expr in ("1", "status <> 'open'"), ms.name
    for metric in manifest.metrics:
        tp = metric.type_params
        if metric.type in (MetricType.simple, MetricType.cumulative):
            assert tp.measure.name in measures, metric.name
        for inp in [x for x in (tp.numerator, tp.denominator) if x] + list(tp.metrics or []):
            assert inp.name in metric_names, metric.name
        for name in filter_dimensions(metric.filter):
            assert name in dimensions, (metric.name, name)
    assert {"customer__region", "product__category", "order__channel", "customer__segment"} <= dimensions


def test_existing_workspace_is_refused_then_force_replaces_data_only(tmp_path):
    root = tmp_path / "ws"
    ws = _init(root, "--scale", "0.05")
    (root / "models" / "keep.txt").write_text("a model card")
    (root / "lathe.toml").write_text('name = "mine"\n[sql]\nrow_limit = 7\n')
    r = _cli(root, "init", "--demo")
    assert r.exit_code == 2 and "already exists" in r.output and "--force" in r.output
    assert _one(ws, "SELECT count(*) FROM orders") == 2000
    r = _cli(root, "init", "--demo", "--scale", "0.1", "--force")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("Replaced the warehouse and catalog of workspace")
    assert _one(ws, "SELECT count(*) FROM orders") == 4000
    assert (root / "models" / "keep.txt").read_text() == "a model card"
    assert Workspace(root).settings.sql.row_limit == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]  # no staging folders left beside it
    assert not [p for p in root.iterdir() if p.name.startswith(".init-")]


def test_failed_init_leaves_nothing_half_made(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "lathe.toml").write_text('[sql]\nmemory_limit = "1MB"\n')  # too small to generate anything
    r = _cli(root, "init", "--demo", "--scale", "0.1")
    assert r.exit_code == 2 and "ran out of memory" in r.output and "memory_limit" in r.output
    assert [p.name for p in root.iterdir()] == ["lathe.toml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]
    # A failed --force puts the old workspace back as it was.
    (root / "lathe.toml").write_text("")
    ws = _init(root, "--scale", "0.05")
    before = _digest(ws)
    (root / "lathe.toml").write_text('[sql]\nmemory_limit = "1MB"\n')
    r = _cli(root, "init", "--demo", "--force")
    assert r.exit_code == 2
    (root / "lathe.toml").write_text("")
    assert _digest(ws) == before
    assert CatalogStore(ws).load().tables.keys() == set(DEMO_TABLES)
    assert not [p for p in root.iterdir() if p.name.startswith(".init-")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]


def test_bad_scale_is_refused_before_anything_is_made(tmp_path):
    for scale in ("0", "-1", "5000"):
        r = _cli(tmp_path / "ws", "init", "--demo", "--scale", scale)
        assert r.exit_code == 2 and "--scale must be above 0" in r.output
    assert not (tmp_path / "ws").exists()


def test_tour_shows_tables_metrics_glossary_and_commands_to_try(demo):
    r = _cli(demo.root, "tour")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert re.search(r"^\s+order_items\s+\d{3},\d{3} rows\s+One row per order line", out, re.M)
    assert "Metrics (19): revenue, orders," in out
    assert "average order value (AOV, basket size)" in out
    tries = [line.strip() for line in out.split("Try:")[1].splitlines() if line.strip()]
    assert len(tries) == 5 and all(t.startswith("lathe ") for t in tries)
    assert tries[0] == "lathe query --metrics revenue --group-by customer__region,metric_time__quarter"
    manifest = CatalogStore(demo).load_semantic()
    known_dims = {f"{primary_entity(m)}__{d.name}" for m in manifest.semantic_models for d in m.dimensions}
    for t in tries:
        args = shlex.split(t)
        if args[1] == "query":
            metrics = args[args.index("--metrics") + 1].split(",")
            assert all(manifest.metric(m) for m in metrics), t
            dims = args[args.index("--group-by") + 1].split(",")
            assert all(d in known_dims or d.startswith("metric_time__") for d in dims), t
        if args[1] == "sql":
            assert _query(demo, args[2])  # the example SQL runs on the demo warehouse


def test_plain_init_and_tour_of_an_empty_catalog(tmp_path):
    r = _cli(tmp_path / "ws", "init")
    assert r.exit_code == 0 and "Created workspace" in r.stdout
    assert Workspace(tmp_path / "ws").exists
    r = _cli(tmp_path / "ws", "tour")
    assert r.exit_code == 0 and "The catalog is empty" in r.stdout

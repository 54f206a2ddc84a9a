"""Catalog search on a real workspace: ranking, glossary synonyms, `why`, kinds, index reuse and rebuild,
the dense path through LiteLLM to a local embeddings server, and the CLI."""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.errors import UserError
from catalog.metadata import Column, GlossaryTerm, Owner, PiiTag, Table
from catalog.search import CatalogSearch
from catalog.store import CatalogStore
from core.workspace import Workspace
from tests.waiting import run

ROOT = Path(__file__).resolve().parent.parent

TABLES = [
    Table(name="customers", description="One row per customer: who they are and where they live.",
          owner="alice", tags=["crm"], columns=[
              Column(name="customer_id", type="BIGINT", description="Unique identifier of the customer"),
              Column(name="email", type="VARCHAR", description="Contact email address", pii=PiiTag.email),
              Column(name="full_name", type="VARCHAR", description="First and last name", pii=PiiTag.name),
              Column(name="country", type="VARCHAR", description="Country of residence"),
              Column(name="signup_date", type="DATE", description="Day the account was opened"),
              Column(name="loyaltyTier", type="VARCHAR", description="Programme level: bronze, silver or gold"),
          ]),
    Table(name="orders", description="Customer purchases, one row per order.", owner="bob", tags=["finance"],
          columns=[
              Column(name="order_id", type="BIGINT", description="Unique identifier of the order"),
              Column(name="customer_id", type="BIGINT", description="Customer who placed the order"),
              Column(name="order_date", type="DATE", description="Day the order was placed"),
              Column(name="amount", type="DECIMAL(10,2)", description="Order total in euros after discounts"),
              Column(name="status", type="VARCHAR", description="completed, cancelled or refunded"),
          ]),
    Table(name="support_tickets", description="Help requests raised by customers, with the complaint text.",
          owner="carol", columns=[
              Column(name="ticket_id", type="BIGINT", description="Unique identifier of the ticket"),
              Column(name="body", type="VARCHAR", description="Free text written by the customer"),
              Column(name="priority", type="VARCHAR", description="Urgency: low, normal, high"),
              Column(name="opened_at", type="TIMESTAMP", description="When the ticket was opened"),
          ]),
    Table(name="products", description="Catalogue of the items we sell.", owner="bob", columns=[
        Column(name="product_id", type="BIGINT", description="Unique identifier of the product"),
        Column(name="product_name", type="VARCHAR", description="Display name of the item"),
        Column(name="unit_price", type="DECIMAL(10,2)", description="List price per unit in euros"),
        Column(name="category", type="VARCHAR", description="Product family such as shoes or bags"),
    ]),
]

GLOSSARY = [
    GlossaryTerm(name="revenue", definition="Money earned from completed orders.", synonyms=["sales", "turnover"],
                 related=["metric:revenue", "orders.amount"]),
    GlossaryTerm(name="churn", definition="Customers who stopped buying from us.", synonyms=["attrition"],
                 related=["customers"]),
    GlossaryTerm(name="active customer", definition="Someone who ordered in the last 90 days.",
                 synonyms=["engaged buyer"]),
]

OWNERS = [Owner(name="alice", team="growth"), Owner(name="bob", team="finance"), Owner(name="carol", team="support")]

SEMANTIC = {
    "semantic_models": [{
        "name": "orders_sm", "model": "ref('orders')", "description": "Orders for metrics",
        "defaults": {"agg_time_dimension": "order_date"},
        "entities": [{"name": "order_id", "type": "primary"}, {"name": "customer", "type": "foreign",
                                                               "expr": "customer_id"}],
        "measures": [{"name": "order_total", "agg": "sum", "expr": "amount", "description": "Sum of order amounts"},
                     {"name": "order_count", "agg": "count", "expr": "order_id"}],
        "dimensions": [{"name": "order_date", "type": "time", "type_params": {"time_granularity": "day"},
                        "description": "Day the order was placed"},
                       {"name": "status", "type": "categorical", "description": "Order status"}],
    }],
    "metrics": [
        {"name": "revenue", "type": "simple", "description": "Total value of completed orders",
         "type_params": {"measure": "order_total"}},
        {"name": "order_count", "type": "simple", "description": "Number of orders placed",
         "type_params": {"measure": "order_count"}},
        {"name": "average_order_value", "type": "ratio", "label": "AOV",
         "description": "Average order value: revenue divided by the number of orders",
         "type_params": {"numerator": "revenue", "denominator": "order_count"}},
    ],
}


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    with CatalogStore(workspace).transaction() as txn:
        for t in TABLES:
            txn.put_table(t)
        txn.put_glossary(GLOSSARY)
        txn.put_owners(OWNERS)
        txn.put_semantic("orders", SEMANTIC)
    return workspace


def cached_indexes(ws: Workspace) -> list[str]:
    d = ws.cache_dir / "search"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def first(hits) -> tuple[str, str | None, str]:
    return hits[0].kind, hits[0].table, hits[0].name


@pytest.mark.parametrize("query, expected", [
    ("customer email address", ("column", "customers", "email")),
    ("loyalty tier", ("column", "customers", "loyaltyTier")),
    ("support tickets", ("table", "support_tickets", "support_tickets")),
    ("price per unit", ("column", "products", "unit_price")),
    ("average order value", ("metric", None, "average_order_value")),
    ("AOV", ("metric", None, "average_order_value")),
    ("revenue metric", ("metric", "orders", "revenue")),
    ("attrition", ("glossary", None, "churn")),
    ("engaged buyer", ("glossary", None, "active customer")),
    ("country of residence", ("column", "customers", "country")),
    ("complaint text", ("table", "support_tickets", "support_tickets")),
    ("finance team tables", ("table", "orders", "orders")),
])
def test_obvious_answer_ranks_first(ws, query, expected):
    hits = CatalogSearch.for_workspace(ws).search(query, k=5)
    assert first(hits) == expected, [(h.kind, h.table, h.name, h.score) for h in hits]


def test_glossary_synonym_finds_the_term_it_stands_for(ws):
    hits = CatalogSearch.for_workspace(ws).search("sales", k=5)
    found = {(h.kind, h.name): h for h in hits}
    assert ("metric", "revenue") in found and ("glossary", "revenue") in found
    assert found[("metric", "revenue")].why == ["'sales' in related glossary term `revenue`",
                                                "glossary synonym 'sales' → revenue"]
    assert found[("glossary", "revenue")].why == ["'sales' in synonyms"]
    # orders.amount is linked to the term by the glossary's `related` list.
    amount = found[("column", "amount")]
    assert amount.table == "orders"
    assert "'sales' in related glossary term `revenue`" in amount.why
    # Without the glossary no document says "sales": nothing would be found.
    assert all(h.score > 0 for h in hits)


def test_why_names_each_matching_field(ws):
    search = CatalogSearch.for_workspace(ws)
    email = search.search("customer email address", k=1)[0]
    # With the stemmer, 'customer' also matches the table `customers` that the column belongs to.
    assert email.why == ["'customer' in table name `customers`", "'email' in column name", "'address' in description"]
    assert email.snippet == "Contact email address"
    assert search.search("loyalty tier", k=1)[0].why == ["'loyalty' in column name", "'tier' in column name"]
    by_owner = search.search("finance", k=5, kinds=["table"])
    assert [(h.name, h.why) for h in by_owner] == [("orders", ["'finance' in tags"]),
                                                   ("products", ["'finance' in owner"])]
    status = search.search("order status", k=1)[0]
    assert (status.kind, status.table, status.name) == ("dimension", "orders", "status")
    assert status.why == ["'order' in table name `orders`", "'status' in dimension name"]
    names = search.search("name", k=3)
    assert [(h.kind, h.name) for h in names] == [("column", "full_name"), ("column", "product_name"),
                                                 ("table", "customers")]
    assert names[2].why == ["'name' in PII tag"]
    country = search.search("customers country", k=1)[0]
    assert country.why == ["'customers' in table name `customers`", "'country' in column name"]


def test_kinds_filter_and_bad_input(ws):
    search = CatalogSearch.for_workspace(ws)
    assert {h.kind for h in search.search("order", k=20, kinds=["metric"])} == {"metric"}
    both = search.search("order date", k=20, kinds=["dimension", "column"])
    assert {h.kind for h in both} == {"dimension", "column"}
    assert first(search.search("order date", k=1, kinds=["dimension"])) == ("dimension", "orders", "order_date")
    assert search.search("zebra xylophone") == []
    with pytest.raises(UserError, match=r"no search kind `metrics`; did you mean `metric`\?"):
        search.search("revenue", kinds=["metrics"])
    with pytest.raises(UserError, match="search text is empty"):
        search.search("   ")
    with pytest.raises(UserError, match="at least 1"):
        search.search("revenue", k=0)


def test_index_is_reused_then_rebuilt_after_a_change(ws):
    first_search = CatalogSearch.for_workspace(ws)
    assert first_search.built
    again = CatalogSearch.for_workspace(ws)
    assert not again.built and again.index.path == first_search.index.path

    # A fresh index never reads the YAML: a file broken behind the index's back (same size and mtime)
    # goes unnoticed, while any visible change is seen.
    path = ws.catalog_dir / "tables" / "products.yml"
    st = path.stat()
    text = path.read_text()
    path.write_text("!" * len(text.encode()))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not CatalogSearch.for_workspace(ws).built
    path.write_text(text)

    with CatalogStore(ws).transaction() as txn:
        txn.put_table(Table(name="invoices", description="Bills sent to business clients",
                            columns=[Column(name="invoice_id", description="Unique invoice number")]))
    rebuilt = CatalogSearch.for_workspace(ws)
    assert rebuilt.built and rebuilt.index.path != first_search.index.path
    assert first(rebuilt.search("bills for business clients")) == ("table", "invoices", "invoices")
    # Earlier indexes are removed; a process still holding one keeps reading its open documents file.
    assert cached_indexes(ws) == [rebuilt.index.path.name]
    assert first(first_search.search("customer email address")) == ("column", "customers", "email")

    with CatalogStore(ws).transaction() as txn:
        txn.delete_table("invoices")
    assert CatalogSearch.for_workspace(ws).search("invoices bills", kinds=["table"]) == []


def test_damaged_cache_is_rebuilt(ws):
    index = CatalogSearch.for_workspace(ws).index.path
    (index / "kinds.npy").write_bytes(b"not numpy")
    again = CatalogSearch.for_workspace(ws)
    assert again.built and again.index.path == index
    assert first(again.search("unit price")) == ("column", "products", "unit_price")


def test_broken_catalog_file_is_reported_and_nothing_is_cached(ws):
    (ws.catalog_dir / "tables" / "broken.yml").write_text("name: broken\ncolumns:\n  - nme: x\n")
    with pytest.raises(UserError, match=r"broken\.yml:3: columns\.0\.name"):
        CatalogSearch.for_workspace(ws)
    assert cached_indexes(ws) == []


def test_empty_catalog_finds_nothing(workspace):
    assert CatalogSearch.for_workspace(workspace).search("anything") == []


# ---- dense path: LiteLLM to a local OpenAI-compatible /v1/embeddings server ------------------------------

# Words that mean the same thing share a vector dimension, as a real embedding model would place them close.
CONCEPTS = {"purchases": "order", "purchase": "order", "orders": "order", "order": "order",
            "buyers": "customer", "buyer": "customer", "customers": "customer", "customer": "customer",
            "mail": "email", "email": "email"}


def bag_of_words_vector(text: str, dims: int = 64) -> list[float]:
    v = [0.0] * dims
    for w in re.findall(r"[a-z]+", text.lower()):
        h = int(hashlib.sha256(CONCEPTS.get(w, w).encode()).hexdigest(), 16)
        v[h % dims] += 1.0
    return v


class EmbeddingServer:
    def __init__(self):
        self.requests: list[list[str]] = []
        calls = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                calls.append(texts)
                out = json.dumps({"object": "list", "model": body["model"],
                                  "data": [{"object": "embedding", "index": i, "embedding": bag_of_words_vector(t)}
                                           for i, t in enumerate(texts)],
                                  "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
                self.send_response(200 if self.path == "/v1/embeddings" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = EmbeddingServer()
    yield s
    s.close()


def with_embeddings(ws: Workspace, api_base: str) -> Workspace:
    ws.settings_path.write_text(f'name = "t"\n[search]\nembedding_model = "openai/tiny-embed"\n'
                                f'embedding_api_base = "{api_base}"\n')
    return Workspace(ws.root)  # settings are read once per Workspace object


@pytest.mark.slow
def test_dense_path_through_litellm_and_fusion(ws, server):
    assert not CatalogSearch.for_workspace(ws).search("buyers", kinds=["table"])  # no document says it
    dense_ws = with_embeddings(ws, server.url)
    search = CatalogSearch.for_workspace(dense_ws)
    assert search.built  # the embedder is part of the index's key
    embedded = sum(len(r) for r in server.requests)
    assert embedded == search.index.size == search.index.vectors.shape[0]

    hit = search.search("buyers", k=1, kinds=["table"])[0]
    assert (hit.kind, hit.name) == ("table", "customers")
    assert len(hit.why) == 1 and re.fullmatch(r"dense similarity 0\.\d\d", hit.why[0])

    both = search.search("customer email", k=1)[0]
    assert (both.kind, both.table, both.name) == ("column", "customers", "email")
    assert "'email' in column name" in both.why and both.why[-1].startswith("dense similarity")
    assert both.score == round(2 / 61, 4)  # reciprocal rank fusion: first in both rankings

    # A fresh index is reused: only the query is embedded, never the documents again.
    before = len(server.requests)
    again = CatalogSearch.for_workspace(dense_ws)
    assert not again.built
    again.search("buyers")
    assert server.requests[before:] == [["buyers"]]


@pytest.mark.slow
def test_unreachable_embedding_server_is_a_clear_error_and_writes_nothing(ws, server):
    url = server.url
    server.close()
    bad_ws = with_embeddings(ws, url)
    with pytest.raises(UserError, match=r"embedding model `openai/tiny-embed` at http://127\.0\.0\.1:\d+/v1 failed"):
        CatalogSearch.for_workspace(bad_ws)
    assert cached_indexes(ws) == []


# ---- CLI -------------------------------------------------------------------------------------------------

def test_cli_json_and_kind(ws):
    from typer.testing import CliRunner

    from cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["--workspace", str(ws.root), "catalog", "search", "sales", "--kind", "metric", "--json"])
    assert res.exit_code == 0, res.output
    hits = json.loads(res.stdout)
    assert hits[0]["kind"] == "metric" and hits[0]["name"] == "revenue" and hits[0]["table"] == "orders"
    assert "glossary synonym 'sales' → revenue" in hits[0]["why"]
    assert {h["kind"] for h in hits} == {"metric"}

    res = runner.invoke(app, ["--workspace", str(ws.root), "catalog", "search", "x", "--kind", "colum"])
    assert res.exit_code == 2 and "error: no search kind `colum`; did you mean `column`?" in res.stderr


@pytest.mark.slow
def test_cli_as_a_process_prints_a_table(ws):
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "MLFLOW_DISABLE_TELEMETRY": "true",
           "DO_NOT_TRACK": "true", "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    out = run([sys.executable, "-m", "cli.main", "--workspace", str(ws.root), "catalog", "search", "customer email",
               "--limit", "3"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if "email" in ln]
    assert lines and "column" in lines[0] and "customers" in lines[0] and "in column name" in lines[0]

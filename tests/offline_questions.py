"""The offline planner's question table on the demo company (`lathe init --demo --scale 0.1`), with today fixed
at `TODAY`: each question with the rows its answer must hold, computed by hand-written SQL on the warehouse
(never the SQL the planner produced), or the words its reply must say. Holds no tests itself.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

TODAY = dt.date(2026, 11, 15)  # so: last quarter = Q3 2026, last month = October 2026, this year = 2026


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    sql: str | None = None  # the answer's table holds exactly these rows
    ordered: bool = False  # ... in this order
    first_column_sql: str | None = None  # the answer's first column holds exactly these values (any order)
    says: tuple[str, ...] = ()  # the answer's text holds each of these
    tool: str | None = None  # the one planned step runs this tool
    status: str = "answered"
    before: tuple[str, ...] = ()  # earlier turns of the same thread


# Revenue lines with their customer, order and product, for the hand-written expectations.
LINES = """(SELECT oi.*, c.region, c.country, c.segment, o.channel, o.status, p.category, p.product_name
            FROM order_items oi LEFT JOIN customers c ON c.customer_id = oi.customer_id
            LEFT JOIN orders o ON o.order_id = oi.order_id LEFT JOIN products p ON p.product_id = oi.product_id)"""
ORDERS = "(SELECT o.*, c.region, c.country, c.segment FROM orders o LEFT JOIN customers c ON c.customer_id = o.customer_id)"
TICKETS = """(SELECT t.*, c.region, c.segment, a.team FROM support_tickets t
              LEFT JOIN customers c ON c.customer_id = t.customer_id LEFT JOIN support_agents a ON a.agent_id = t.agent_id)"""
Q3_2026 = "ordered_at >= DATE '2026-07-01' AND ordered_at < DATE '2026-10-01'"
Y2025 = "ordered_at >= DATE '2025-01-01' AND ordered_at < DATE '2026-01-01'"
Y2026 = "ordered_at >= DATE '2026-01-01' AND ordered_at < DATE '2027-01-01'"

CATALOG = [
    Question("list-tables", "list tables", tool="list_tables",
             first_column_sql="SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"),
    Question("what-tables", "What tables do we have?", tool="list_tables",
             first_column_sql="SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"),
    Question("list-metrics", "which metrics are defined?", tool="list_metrics",
             says=("19 metrics", "`revenue`", "`return_rate`", "`emea_revenue`")),
    Question("search-email", "where is customer email stored?", tool="search_catalog", says=("column `customers.email`",)),
    Question("search-discount", "find the discount column", tool="search_catalog", says=("column `order_items.discount`",)),
    Question("describe-orders", "describe the orders table", tool="describe_table",
             first_column_sql="SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'"),
    Question("columns-customers", "what columns does customers have?", tool="describe_table",
             first_column_sql="SELECT column_name FROM information_schema.columns WHERE table_name = 'customers'"),
    Question("about-products", "tell me about the products table", tool="describe_table",
             first_column_sql="SELECT column_name FROM information_schema.columns WHERE table_name = 'products'"),
    Question("owner-orders", "who owns orders?", says=("`orders` is owned by `sales-analytics`",
                                                       "sales-analytics@demo-company.example")),
    Question("owner-tickets", "who is responsible for the support_tickets table?",
             says=("`support_tickets` is owned by `support-operations`",)),
    Question("owner-term", "who owns revenue?", says=("glossary term `revenue` is owned by `sales-analytics`",)),
    Question("pii-all", "which columns are PII?",
             says=("4 columns", "`customers.full_name` (name)", "`customers.email` (email)", "`customers.phone` (phone)",
                   "`support_agents.agent_name` (name)")),
    Question("pii-table", "is there personal data in support_agents?", says=("1 column of table `support_agents`",
                                                                          "`support_agents.agent_name` (name)")),
    Question("row-count", "how many rows does order_items have?", tool="run_sql", sql="SELECT count(*) FROM order_items"),
    Question("typed-sql", "SELECT count(*) AS n FROM orders WHERE channel = 'web'", tool="run_sql",
             sql="SELECT count(*) FROM orders WHERE channel = 'web'"),
    Question("define-term", "what does AOV mean?",
             says=("`average order value`: Revenue divided by the number of orders.", "Also called \"AOV\"",
                   "Metric `average_order_value`", "computed as `revenue` divided by `orders`")),
    Question("define-metric", "how is cumulative revenue calculated?",
             says=("Metric `cumulative_revenue`", "sum of `amount` over table `order_items`, accumulated over all time")),
    Question("define-filtered", "what does returned orders mean?",
             says=("count of `order_id` over table `orders`", "only where `order__status = 'returned'`")),
    Question("help", "help", says=("`revenue`", "top 5 products by revenue", "now split that by month",
                                   "which columns are PII?")),
    Question("what-can-you-do", "What can you do?", says=("metric questions on 19 metrics", "create a table of")),
]

METRICS = [
    Question("by-region-last-quarter", "revenue by region last quarter", tool="query_metrics",
             says=("last quarter (2026-07-01 to 2026-09-30)",),
             sql=f"SELECT region, sum(amount) FROM {LINES} WHERE {Q3_2026} GROUP BY 1"),
    Question("total", "total revenue", sql="SELECT sum(amount) FROM order_items"),
    Question("in-2025", "revenue in 2025", sql=f"SELECT sum(amount) FROM order_items WHERE {Y2025}"),
    Question("by-month-2025", "revenue by month in 2025", ordered=True,
             sql=f"SELECT date_trunc('month', ordered_at), sum(amount) FROM order_items WHERE {Y2025} GROUP BY 1 ORDER BY 1"),
    Question("orders-by-channel", "orders by channel", sql="SELECT channel, count(*) FROM orders GROUP BY 1"),
    Question("mobile-since-march", "how many orders via the mobile channel since March",
             says=("since March (from 2026-03-01)",),
             sql="SELECT count(*) FROM orders WHERE channel = 'mobile' AND ordered_at >= DATE '2026-03-01'"),
    Question("top-products", "top 5 products by revenue", ordered=True,
             sql=f"SELECT product_name, sum(amount) FROM {LINES} GROUP BY 1 ORDER BY 2 DESC LIMIT 5"),
    Question("top-countries", "top 3 countries by orders this year", ordered=True,
             sql=f"SELECT country, count(*) FROM {ORDERS} WHERE {Y2026} GROUP BY 1 ORDER BY 2 DESC LIMIT 3"),
    Question("aov-by-segment", "average order value by segment",
             sql=f"""SELECT r.segment, r.revenue / o.orders FROM
                     (SELECT segment, sum(amount) AS revenue FROM {LINES} GROUP BY 1) r
                     JOIN (SELECT segment, count(*) AS orders FROM {ORDERS} GROUP BY 1) o ON o.segment = r.segment"""),
    Question("aov-enterprise", "AOV for enterprise customers", says=("glossary term `average order value`",),
             sql=f"""SELECT (SELECT sum(amount) FROM {LINES} WHERE segment = 'enterprise')
                          / (SELECT count(*) FROM {ORDERS} WHERE segment = 'enterprise')"""),
    Question("sales-emea-30-days", "sales in EMEA last 30 days", says=("2026-10-16 to 2026-11-14",),
             sql=f"""SELECT sum(amount) FROM {LINES} WHERE region = 'EMEA'
                     AND ordered_at >= DATE '2026-10-16' AND ordered_at < DATE '2026-11-15'"""),
    Question("csat-by-priority", "csat by ticket priority", sql="SELECT priority, avg(csat) FROM support_tickets GROUP BY 1"),
    Question("ttr-q3", "resolution time by priority in Q3 2026",
             sql="""SELECT priority, avg(resolution_hours) FROM support_tickets
                    WHERE opened_at >= DATE '2026-07-01' AND opened_at < DATE '2026-10-01' GROUP BY 1"""),
    Question("median-ttr-team", "median resolution time by team",
             sql=f"SELECT team, median(resolution_hours) FROM {TICKETS} GROUP BY 1"),
    Question("tickets-category-this-year", "ticket volume by category this year",
             sql="""SELECT category, count(*) FROM support_tickets
                    WHERE opened_at >= DATE '2026-01-01' AND opened_at < DATE '2027-01-01' GROUP BY 1"""),
    Question("return-rate-channel", "return rate by channel",
             sql="SELECT channel, count(*) FILTER (WHERE status = 'returned') / count(*) FROM orders GROUP BY 1"),
    Question("new-customers-quarterly", "new customers by quarter", ordered=True,
             sql="SELECT date_trunc('quarter', signup_date)::TIMESTAMP, count(*) FROM customers GROUP BY 1 ORDER BY 1"),
    Question("emea-enterprise-monthly", "revenue for enterprise customers in EMEA by month", ordered=True,
             sql=f"""SELECT date_trunc('month', ordered_at), sum(amount) FROM {LINES}
                     WHERE segment = 'enterprise' AND region = 'EMEA' GROUP BY 1 ORDER BY 1"""),
    Question("units-by-category", "units sold by product category",
             sql=f"SELECT category, sum(quantity) FROM {LINES} GROUP BY 1"),
    Question("synonyms", "turnover by territory", says=("`turnover` is glossary term `revenue`", "`territory`"),
             sql=f"SELECT region, sum(amount) FROM {LINES} GROUP BY 1"),
    Question("highest-region", "which region has the highest revenue?", ordered=True,
             sql=f"SELECT region, sum(amount) FROM {LINES} GROUP BY 1 ORDER BY 2 DESC LIMIT 1"),
    Question("bottom-countries", "bottom 3 countries by revenue", ordered=True,
             sql=f"SELECT country, sum(amount) FROM {LINES} GROUP BY 1 ORDER BY 2 LIMIT 3"),
    Question("excluding", "revenue excluding EMEA by region",
             sql=f"SELECT region, sum(amount) FROM {LINES} WHERE region <> 'EMEA' GROUP BY 1"),
    Question("two-values", "revenue in EMEA and APAC by segment",
             sql=f"SELECT segment, sum(amount) FROM {LINES} WHERE region IN ('EMEA', 'APAC') GROUP BY 1"),
    Question("glossary-value", "revenue from small businesses", says=("`customer__segment` = `smb`",),
             sql=f"SELECT sum(amount) FROM {LINES} WHERE segment = 'smb'"),
    Question("country", "revenue in Germany", sql=f"SELECT sum(amount) FROM {LINES} WHERE country = 'Germany'"),
    Question("typo", "revnue by region", says=("read `revnue` as `revenue`",),
             sql=f"SELECT region, sum(amount) FROM {LINES} GROUP BY 1"),
    Question("growth", "revenue growth by month in 2026", ordered=True,
             sql="""WITH m AS (SELECT date_trunc('month', ordered_at) AS month, sum(amount) AS revenue
                               FROM order_items GROUP BY 1),
                    g AS (SELECT month, (revenue - lag(revenue) OVER (ORDER BY month))
                                        / lag(revenue) OVER (ORDER BY month) AS growth FROM m)
                    SELECT month, growth FROM g WHERE month >= DATE '2026-01-01' AND month < DATE '2027-01-01'
                    ORDER BY 1"""),
    Question("cumulative", "cumulative revenue by month in 2026", ordered=True,
             sql=f"""SELECT m.month, (SELECT sum(amount) FROM order_items WHERE ordered_at < m.month + INTERVAL 1 DAY)
                     FROM (SELECT DISTINCT date_trunc('month', ordered_at) AS month FROM order_items WHERE {Y2026}) m
                     ORDER BY 1"""),
    Question("between", "revenue between January and March 2026", says=("2026-01-01 to 2026-03-31",),
             sql="SELECT sum(amount) FROM order_items WHERE ordered_at >= DATE '2026-01-01' AND ordered_at < DATE '2026-04-01'"),
    Question("since-date", "revenue since 2026-06-01",
             sql="SELECT sum(amount) FROM order_items WHERE ordered_at >= DATE '2026-06-01'"),
    Question("daily-october", "daily orders in October 2026", ordered=True,
             sql="""SELECT date_trunc('day', ordered_at), count(*) FROM orders
                    WHERE ordered_at >= DATE '2026-10-01' AND ordered_at < DATE '2026-11-01' GROUP BY 1 ORDER BY 1"""),
    Question("ytd", "revenue ytd", says=("2026-01-01 to 2026-11-15",),
             sql="SELECT sum(amount) FROM order_items WHERE ordered_at >= DATE '2026-01-01' AND ordered_at < DATE '2026-11-16'"),
    Question("last-two-quarters", "revenue last 2 quarters by quarter", ordered=True,
             sql="""SELECT date_trunc('quarter', ordered_at), sum(amount) FROM order_items
                    WHERE ordered_at >= DATE '2026-04-01' AND ordered_at < DATE '2026-10-01' GROUP BY 1 ORDER BY 1"""),
    Question("web-march", "revenue from the web channel in March 2026",
             sql=f"""SELECT sum(amount) FROM {LINES} WHERE channel = 'web'
                     AND ordered_at >= DATE '2026-03-01' AND ordered_at < DATE '2026-04-01'"""),
    Question("two-metrics", "revenue and orders by region",
             sql=f"""SELECT r.region, r.revenue, o.orders FROM (SELECT region, sum(amount) AS revenue FROM {LINES} GROUP BY 1) r
                     JOIN (SELECT region, count(*) AS orders FROM {ORDERS} GROUP BY 1) o ON o.region = r.region"""),
    Question("tickets-last-month", "tickets by priority last month", says=("2026-10-01 to 2026-10-31",),
             sql="""SELECT priority, count(*) FROM support_tickets
                    WHERE opened_at >= DATE '2026-10-01' AND opened_at < DATE '2026-11-01' GROUP BY 1"""),
    Question("active-customers", "customers with orders by region this year",
             sql=f"SELECT region, count(DISTINCT customer_id) FROM {ORDERS} WHERE {Y2026} GROUP BY 1"),
    Question("resolution-rate", "resolution rate by priority",
             sql="SELECT priority, count(*) FILTER (WHERE status <> 'open') / count(*) FROM support_tickets GROUP BY 1"),
    Question("orders-by-status", "orders by status in 2026",
             sql=f"SELECT status, count(*) FROM orders WHERE {Y2026} GROUP BY 1"),
    Question("returned-last-year", "returned orders by month last year", ordered=True,
             sql=f"""SELECT date_trunc('month', ordered_at), count(*) FROM orders WHERE status = 'returned' AND {Y2025}
                     GROUP BY 1 ORDER BY 1"""),
    Question("emea-revenue-metric", "EMEA revenue by quarter", ordered=True,
             sql=f"SELECT date_trunc('quarter', ordered_at), sum(amount) FROM {LINES} WHERE region = 'EMEA' GROUP BY 1 ORDER BY 1"),
    Question("product-value", "revenue of Nimbus Laptop 14 by month this year", ordered=True,
             sql=f"""SELECT date_trunc('month', ordered_at), sum(amount) FROM {LINES}
                     WHERE product_name = 'Nimbus Laptop 14' AND {Y2026} GROUP BY 1 ORDER BY 1"""),
    Question("weekly", "weekly orders last 3 months", ordered=True, says=("2026-08-01 to 2026-10-31",),
             sql="""SELECT date_trunc('week', ordered_at), count(*) FROM orders
                    WHERE ordered_at >= DATE '2026-08-01' AND ordered_at < DATE '2026-11-01' GROUP BY 1 ORDER BY 1"""),
    Question("busiest-month", "which month had the most orders?", ordered=True,
             sql="SELECT date_trunc('month', ordered_at), count(*) FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 1"),
    Question("top-customers", "top 5 customers by revenue", ordered=True,
             sql="SELECT customer_id, sum(amount) FROM order_items GROUP BY 1 ORDER BY 2 DESC LIMIT 5"),
    Question("billing-team", "csat for the billing team", says=("`agent__team` = `billing`",),
             sql=f"SELECT avg(csat) FROM {TICKETS} WHERE team = 'billing'"),
    Question("cancelled-2025", "how many orders were cancelled in 2025?",
             sql=f"SELECT count(*) FROM orders WHERE status = 'cancelled' AND {Y2025}"),
    Question("tickets-enterprise", "number of tickets by category for enterprise customers",
             sql=f"SELECT category, count(*) FROM {TICKETS} WHERE segment = 'enterprise' GROUP BY 1"),
    Question("partner-categories", "revenue by product category for the partner channel",
             sql=f"SELECT category, sum(amount) FROM {LINES} WHERE channel = 'partner' GROUP BY 1"),
    Question("monthly-urgent", "monthly csat in 2026 for urgent priority", ordered=True,
             sql="""SELECT date_trunc('month', opened_at), avg(csat) FROM support_tickets WHERE priority = 'urgent'
                    AND opened_at >= DATE '2026-01-01' AND opened_at < DATE '2027-01-01' GROUP BY 1 ORDER BY 1"""),
    Question("aov-channel-last-year", "average order value by channel last year",
             sql=f"""SELECT r.channel, r.revenue / o.orders FROM
                     (SELECT channel, sum(amount) AS revenue FROM {LINES} WHERE {Y2025} GROUP BY 1) r
                     JOIN (SELECT channel, count(*) AS orders FROM orders WHERE {Y2025} GROUP BY 1) o ON o.channel = r.channel"""),
    Question("years-side-by-side", "compare revenue 2025 vs 2026", ordered=True,
             sql="""SELECT date_trunc('year', ordered_at), sum(amount) FROM order_items
                    WHERE ordered_at >= DATE '2025-01-01' AND ordered_at < DATE '2027-01-01' GROUP BY 1 ORDER BY 1"""),
    Question("future", "revenue next quarter", says=("can't forecast", "has not happened yet")),
    Question("qualifying-entity", "average resolution time for urgent tickets in 2026",
             sql="""SELECT avg(resolution_hours) FROM support_tickets WHERE priority = 'urgent'
                    AND opened_at >= DATE '2026-01-01' AND opened_at < DATE '2027-01-01'"""),
    Question("open-tickets", "open tickets by priority",
             sql="SELECT priority, count(*) FROM support_tickets WHERE status = 'open' GROUP BY 1"),
    Question("own-model-first", "csat by status", says=("by `ticket__status`",),
             sql="SELECT status, avg(csat) FROM support_tickets GROUP BY 1"),
    Question("since-september", "units sold by month since September", ordered=True, says=("from 2026-09-01",),
             sql="""SELECT date_trunc('month', ordered_at), sum(quantity) FROM order_items
                    WHERE ordered_at >= DATE '2026-09-01' GROUP BY 1 ORDER BY 1"""),
]

UNCLEAR = [
    Question("ambiguous-value", "csat for billing",
             says=("`billing` is a value of `agent__team` or `ticket__category`: which one?",)),
    Question("ambiguous-metric", "how many customers?",
             says=("could mean the metric `customers_with_orders` or `new_customers`: which one?",)),
    Question("unknown-metric", "churn rate by region",
             says=("I know no metric `churn rate`; did you mean `return_rate`", "I did not understand `churn`")),
    Question("unknown-dimension", "revenue by colour", says=("I know no dimension `colour` for `revenue`",)),
    Question("unreachable-value", "ticket volume for hardware",
             says=("`hardware` is a value of `products.category`, which `ticket_volume` cannot be filtered by",)),
    Question("unreachable-dimension", "new customers by channel", says=("`new_customers` cannot be split by `channel`",)),
    Question("unknown-value", "revenue for atlantis", says=("I found `atlantis` in no dimension",)),
    Question("gibberish", "blah blah", says=("I could not turn this into a query", "I did not understand `blah`",
                                             "Try, for example")),
    Question("top-of-what", "top 5 by revenue", says=("of what?",)),
]

FOLLOW_UPS = [
    Question("split-by-month", "now split that by month", before=("revenue by region last quarter",),
             sql=f"SELECT region, date_trunc('month', ordered_at), sum(amount) FROM {LINES} WHERE {Q3_2026} GROUP BY 1, 2"),
    Question("only-emea", "only for EMEA", before=("revenue by region last quarter", "now split that by month"),
             sql=f"""SELECT region, date_trunc('month', ordered_at), sum(amount) FROM {LINES}
                     WHERE {Q3_2026} AND region = 'EMEA' GROUP BY 1, 2"""),
    Question("what-about-csat", "what about csat?", before=("revenue by region last quarter", "only for EMEA"),
             sql=f"""SELECT region, avg(csat) FROM {TICKETS} WHERE region = 'EMEA'
                     AND opened_at >= DATE '2026-07-01' AND opened_at < DATE '2026-10-01' GROUP BY 1"""),
    Question("instead", "by segment instead", before=("orders by channel in 2025",),
             sql=f"SELECT segment, count(*) FROM {ORDERS} WHERE {Y2025} GROUP BY 1"),
    Question("other-year", "and in 2026?", before=("revenue by quarter in 2025",), ordered=True,
             sql=f"SELECT date_trunc('quarter', ordered_at), sum(amount) FROM order_items WHERE {Y2026} GROUP BY 1 ORDER BY 1"),
    Question("top-then-filter", "only in EMEA", before=("top 5 products by revenue",), ordered=True,
             sql=f"SELECT product_name, sum(amount) FROM {LINES} WHERE region = 'EMEA' GROUP BY 1 ORDER BY 2 DESC LIMIT 5"),
    Question("fresh-question", "how many orders are there?", before=("revenue by region",),
             sql="SELECT count(*) FROM orders"),
    Question("add-metric", "and orders too", before=("revenue by region",),
             sql=f"""SELECT r.region, r.revenue, o.orders FROM (SELECT region, sum(amount) AS revenue FROM {LINES} GROUP BY 1) r
                     JOIN (SELECT region, count(*) AS orders FROM {ORDERS} GROUP BY 1) o ON o.region = r.region"""),
]

DERIVED = [
    Question("derived-table", "create a table of EMEA enterprise customers' revenue by month",
             tool="create_derived_table", status="waiting_approval"),
]

Y2025_OPENED = "opened_at >= DATE '2025-01-01' AND opened_at < DATE '2026-01-01'"
TOP5_2025 = f"""(SELECT product_name FROM {LINES} WHERE {Y2025} GROUP BY 1 ORDER BY sum(amount) DESC LIMIT 5)"""

# Each class of reading, in several people's styles (terse, chatty, with typos, with filler).
READING = [
    # filler and unknown words lower confidence; they never sink the question
    Question("filler-all-told", "revenue all told in 2025", says=("I read this as",),
             sql=f"SELECT sum(amount) FROM order_items WHERE {Y2025}"),
    Question("filler-roughly", "what was revenue in total, roughly, for 2025?",
             sql=f"SELECT sum(amount) FROM order_items WHERE {Y2025}"),
    Question("filler-chatty", "hey so umm could you pull up orders by channel for me real quick",
             sql="SELECT channel, count(*) FROM orders GROUP BY 1"),
    Question("period-second-half", "revnue in the second half of 2025", says=("2025-07-01 to 2025-12-31",),
             sql="SELECT sum(amount) FROM order_items WHERE ordered_at >= DATE '2025-07-01' AND ordered_at < DATE '2026-01-01'"),
    Question("period-h1", "orders H1 2026", says=("2026-01-01 to 2026-06-30",),
             sql="SELECT count(*) FROM orders WHERE ordered_at >= DATE '2026-01-01' AND ordered_at < DATE '2026-07-01'"),
    Question("period-holidays", "how many orders did we get over the holiday season 2025?",
             says=("2025-11-01 to 2025-12-31",),
             sql="SELECT count(*) FROM orders WHERE ordered_at >= DATE '2025-11-01' AND ordered_at < DATE '2026-01-01'"),
    # ordinary words that are also catalog names or values
    Question("value-low", "tickets with low priority",
             sql="SELECT count(*) FROM support_tickets WHERE priority = 'low'"),
    Question("owns-verb", "which region owns the most revenue?", ordered=True,
             sql=f"SELECT region, sum(amount) FROM {LINES} GROUP BY 1 ORDER BY 2 DESC LIMIT 1"),
    Question("whom-to-ask", "who should I ask about the support tickets data?", says=("support-operations",)),
    Question("contact-owner", "whos the contact for order lines", says=("sales-analytics",)),
    # comparisons give one row per side
    Question("vs-regions", "revenue EMEA vs APAC",
             sql=f"SELECT region, sum(amount) FROM {LINES} WHERE region IN ('EMEA', 'APAC') GROUP BY 1"),
    Question("versus-chatty", "could you show me revenue in EMEA versus NA please",
             sql=f"SELECT region, sum(amount) FROM {LINES} WHERE region IN ('EMEA', 'NA') GROUP BY 1"),
    Question("compared-with", "revenue for enterprise compared with smb",
             sql=f"SELECT segment, sum(amount) FROM {LINES} WHERE segment IN ('enterprise', 'smb') GROUP BY 1"),
    Question("between-values", "difference in orders between web and mobile",
             sql="SELECT channel, count(*) FROM orders WHERE channel IN ('web', 'mobile') GROUP BY 1"),
    Question("or-values", "csat for urgent or high priority tickets?",
             sql="SELECT priority, avg(csat) FROM support_tickets WHERE priority IN ('urgent', 'high') GROUP BY 1"),
    Question("vs-periods", "revenue Q1 2026 vs Q2 2026", ordered=True,
             sql="""SELECT date_trunc('quarter', ordered_at), sum(amount) FROM order_items
                    WHERE ordered_at >= DATE '2026-01-01' AND ordered_at < DATE '2026-07-01' GROUP BY 1 ORDER BY 1"""),
    # aggregates over any catalogued column
    Question("avg-column", "average discount by region",
             sql=f"SELECT region, avg(discount) FROM {LINES} GROUP BY 1"),
    Question("median-column", "median line amount", sql="SELECT median(amount) FROM order_items"),
    Question("max-column", "max csat by team", sql=f"SELECT team, max(csat) FROM {TICKETS} GROUP BY 1"),
    Question("min-column-typo", "minimum resolutoin hours for urgent tickets",
             sql="SELECT min(resolution_hours) FROM support_tickets WHERE priority = 'urgent'"),
    Question("sum-column", "total discount in 2026", sql=f"SELECT sum(discount) FROM order_items WHERE {Y2026}"),
    Question("distinct-count", "number of distinct countries in customers",
             sql="SELECT count(DISTINCT country) FROM customers"),
    Question("percentile", "90th percentile of resolution hours",
             sql="SELECT quantile_cont(resolution_hours, 0.9) FROM support_tickets"),
    Question("share-of-rows", "what share of orders were returned?",
             sql="SELECT count(*) FILTER (WHERE status = 'returned') / count(*) FROM orders"),
    Question("percentage-of-rows", "percentage of tickets that are urgent, by category",
             sql="SELECT category, count(*) FILTER (WHERE priority = 'urgent') / count(*) FROM support_tickets GROUP BY 1"),
    Question("per-entity", "avg quantity per order",
             sql="SELECT sum(quantity) / count(DISTINCT order_id) FROM order_items"),
    Question("per-entity-metric", "revenue per customer in 2025",
             sql=f"SELECT sum(amount) / count(DISTINCT customer_id) FROM order_items WHERE {Y2025}"),
    # a clarification keeps the rest of the question
    Question("clarified", "customers_with_orders", before=("how many customers by region in 2025?",),
             sql=f"SELECT region, count(DISTINCT customer_id) FROM {ORDERS} WHERE {Y2025} GROUP BY 1"),
    # follow-ups
    Question("top-n-by-month", "now split that by month", before=("top 5 products by revenue in 2025",),
             sql=f"""SELECT product_name, date_trunc('month', ordered_at), sum(amount) FROM {LINES}
                     WHERE {Y2025} AND product_name IN {TOP5_2025} GROUP BY 1, 2"""),
    Question("excluding-follow-up", "excluding returned orders", before=("revenue by region",),
             sql=f"SELECT region, sum(amount) FROM {LINES} WHERE status <> 'returned' GROUP BY 1"),
    # catalog questions in common wordings
    Question("stand-for", "what does AOV stand for?", says=("Revenue divided by the number of orders",)),
    Question("meaning-of", "meaning of TTR", says=("`resolution time`",)),
    Question("values-come-from", "where do the values of customers.segment come from?", says=("customers.segment",)),
    # honest declines
    Question("forecast", "forecast revenue for next quarter", says=("forecast",)),
    # A word asking for another computation than the metric's own is never dropped into a different figure.
    Question("median-of-a-count", "median order value in 2025", says=("can't compute the `median`",)),
    Question("percentile-of-a-count", "p90 of orders in 2025", says=("can't compute the `p90`",)),
    Question("predict", "can you predict how many orders we'll get in 2027", says=("forecast",)),
    Question("drop-table", "drop the orders table", says=("write",)),
    Question("delete-rows", "pls delete all returned orders", says=("write",)),
    Question("periods-apart", "orders in October 2026 versus October 2025", ordered=True,
             sql="""SELECT date_trunc('month', ordered_at), count(*) FROM orders WHERE month(ordered_at) = 10
                    AND year(ordered_at) IN (2025, 2026) GROUP BY 1 ORDER BY 1"""),
    Question("share-above-zero", "what percent of order lines had a discount?",
             sql="SELECT count(*) FILTER (WHERE discount > 0) / count(*) FROM order_items"),
    Question("rows-per-entity", "order lines per order", sql="SELECT count(*) / count(DISTINCT order_id) FROM order_items"),
    Question("count-rows", "count customers in LATAM", sql="SELECT count(*) FROM customers WHERE region = 'LATAM'"),
    Question("column-words-apart", "average resolution in hours by priority",
             sql="SELECT priority, avg(resolution_hours) FROM support_tickets GROUP BY 1"),
    Question("bare-metric-swap", "average order value", before=("value of orders by region in 2026",),
             sql=f"""SELECT r.region, r.revenue / o.orders FROM
                     (SELECT region, sum(amount) AS revenue FROM {LINES} WHERE {Y2026} GROUP BY 1) r
                     JOIN (SELECT region, count(*) AS orders FROM {ORDERS} WHERE {Y2026} GROUP BY 1) o
                     ON o.region = r.region"""),
    # the SQL of the last answer
    Question("show-sql", "show me the SQL", before=("revenue by region last quarter",), says=("SELECT", "2026-07-01")),
    Question("how-did-you", "how did you get that?", before=("orders by channel",), says=("SELECT", "channel")),
]

QUESTIONS = CATALOG + METRICS + UNCLEAR + FOLLOW_UPS + DERIVED + READING

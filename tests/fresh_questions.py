"""A held-out set of analyst questions on the demo company (`lathe init --demo --scale 0.1`, today fixed at
`TODAY`), written from the demo's documentation and catalog alone, in five styles (terse, chatty, with typos,
with filler, formal). Each answerable question carries the rows its answer must hold, computed by hand-written
SQL on the base tables, or the words its reply must say; each should-decline question the kinds of reason an
honest decline gives. Holds no tests itself.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

TODAY = dt.date(2026, 11, 15)  # last quarter = Q3 2026, last month = October 2026, this year = 2026
# Relative ranges end at TODAY: "last 90 days" starts on TODAY - 90 days (where counting TODAY itself moves a
# row over the edge, the one-day-later start is given as `alt_sql`). "The holiday season" is November-December.

STYLES = ("terse", "chatty", "typos", "filler", "formal")
CATEGORIES = ("periods", "comparisons", "aggregates", "collisions", "top_n_follow_ups", "clarifications",
              "catalog", "show_sql", "uploaded_csv", "declines")


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    category: str
    style: str
    sql: str | None = None  # the answer's last table holds exactly these rows (its other columns aside)
    alt_sql: str | None = None  # another reading an analyst would accept
    ordered: bool = False  # ... in this order (rows tied on the last column in either order)
    labels_free: bool = False  # only the numeric columns are compared (sides named by periods, in any words)
    share: bool = False  # a share: a fraction or the same as a percentage
    says: tuple[str | tuple[str, ...], ...] = ()  # the reply holds each (a tuple: any one of), any case
    shows_sql: tuple[str, ...] = ()  # the reply shows a SELECT reading each of these tables
    status: str = "answered"  # or "declined": no rows, nothing run, and a reason
    reason: tuple[str, ...] = ()  # a decline's reply holds one of these (and not only because the question did)
    before: tuple[str, ...] = ()  # earlier turns of the same thread


def between(col: str, start: str, end: str) -> str:
    """`col` in [start, end): dates as 'YYYY-MM-DD'."""
    return f"{col} >= DATE '{start}' AND {col} < DATE '{end}'"


# Order lines with their customer, order and product; orders with their customer; tickets with customer and agent.
SOLD = """(SELECT oi.order_item_id, oi.order_id, oi.customer_id, oi.product_id, oi.ordered_at, oi.quantity,
                  oi.unit_price, oi.discount, oi.amount, c.region, c.country, c.segment, o.channel, o.status,
                  p.category, p.product_name
           FROM order_items oi JOIN orders o ON o.order_id = oi.order_id
           JOIN customers c ON c.customer_id = oi.customer_id JOIN products p ON p.product_id = oi.product_id)"""
PLACED = """(SELECT o.order_id, o.customer_id, o.ordered_at, o.status, o.channel, c.region, c.country, c.segment
             FROM orders o JOIN customers c ON c.customer_id = o.customer_id)"""
CASES = """(SELECT t.ticket_id, t.opened_at, t.category, t.priority, t.status, t.csat, t.resolution_hours,
                   a.team FROM support_tickets t JOIN support_agents a ON a.agent_id = t.agent_id)"""

Q3_26 = ("2026-07-01", "2026-10-01")
H2_25 = ("2025-07-01", "2026-01-01")
XMAS_25 = ("2025-11-01", "2026-01-01")
XMAS_24 = ("2024-11-01", "2025-01-01")
YTD = ("2026-01-01", "2026-11-16")
D90 = ("2026-08-17", "2026-11-15")
D90_ALT = ("2026-08-18", "2026-11-16")
SINCE_MARCH = ("2026-03-01", "2026-11-16")
OCT_26 = ("2026-10-01", "2026-11-01")
Y25 = ("2025-01-01", "2026-01-01")
Y26 = ("2026-01-01", "2027-01-01")


def lines_in(period: tuple[str, str]) -> str:
    return between("ordered_at", *period)


def aov(by: str, where: str) -> str:
    """Average order value per `by` (revenue of the lines / number of orders), both under `where`."""
    return f"""SELECT r.{by}, r.rev / n.cnt FROM
               (SELECT {by}, sum(amount) AS rev FROM {SOLD} WHERE {where} GROUP BY 1) r JOIN
               (SELECT {by}, count(*) AS cnt FROM {PLACED} WHERE {where} GROUP BY 1) n USING ({by})"""


def total_aov(where: str) -> str:
    return f"""SELECT (SELECT sum(amount) FROM order_items WHERE {where}) /
                      (SELECT count(*) FROM orders WHERE {where})"""


PERIODS = [
    Question("h2-revenue", "revenue h2 2025", "periods", "terse",
             sql=f"SELECT sum(amount) FROM order_items WHERE {lines_in(H2_25)}"),
    Question("h2-orders-channel", "hey, could you pull up how many orders we got over the second half of 2025, "
             "split by channel?", "periods", "chatty",
             sql=f"SELECT channel, count(*) FROM orders WHERE {lines_in(H2_25)} GROUP BY 1"),
    Question("h2-orders-month", "Please provide the number of orders per month for the second half of 2025.",
             "periods", "formal",
             sql=f"SELECT date_trunc('month', ordered_at), count(*) FROM orders WHERE {lines_in(H2_25)} GROUP BY 1"),
    Question("holiday-revenue-2025", "Please report total revenue for the 2025 holiday season (November and December).",
             "periods", "formal", sql=f"SELECT sum(amount) FROM order_items WHERE {lines_in(XMAS_25)}"),
    Question("holiday-orders-last", "basically how many orders did we get over last holiday season, all told?",
             "periods", "filler", sql=f"SELECT count(*) FROM orders WHERE {lines_in(XMAS_25)}"),
    Question("holiday-2024-region", "revenu by regoin for the holiday season 2024", "periods", "typos",
             sql=f"SELECT region, sum(amount) FROM {SOLD} WHERE {lines_in(XMAS_24)} GROUP BY 1"),
    Question("ytd-revenue", "revenue ytd", "periods", "terse",
             sql=f"SELECT sum(amount) FROM order_items WHERE {lines_in(YTD)}"),
    Question("ytd-new-customers", "how are we doing on new customers so far this year? just the total is fine",
             "periods", "chatty", sql=f"SELECT count(*) FROM customers WHERE {between('signup_date', *YTD)}"),
    Question("ytd-tickets-priority", "What is the year-to-date ticket volume by priority?", "periods", "formal",
             sql=f"SELECT priority, count(*) FROM support_tickets WHERE {between('opened_at', *YTD)} GROUP BY 1"),
    Question("tickets-90-days", "tickets last 90 days", "periods", "terse",
             sql=f"SELECT count(*) FROM support_tickets WHERE {between('opened_at', *D90)}",
             alt_sql=f"SELECT count(*) FROM support_tickets WHERE {between('opened_at', *D90_ALT)}"),
    Question("aov-90-days", "roughly what was our average order value over the last 90 days, more or less?",
             "periods", "filler", sql=total_aov(lines_in(D90)), alt_sql=total_aov(lines_in(D90_ALT))),
    Question("orders-since-march", "ordres since march by chanel", "periods", "typos",
             sql=f"SELECT channel, count(*) FROM orders WHERE {lines_in(SINCE_MARCH)} GROUP BY 1"),
    Question("revenue-since-march-category", "Kindly provide revenue by product category since March.", "periods",
             "formal", sql=f"SELECT category, sum(amount) FROM {SOLD} WHERE {lines_in(SINCE_MARCH)} GROUP BY 1"),
    Question("csat-march", "csat march 2026", "periods", "terse",
             sql=f"SELECT avg(csat) FROM support_tickets WHERE {between('opened_at', '2026-03-01', '2026-04-01')}"),
    Question("revenue-sept-region", "what did revenue look like back in September 2025, by region if you can?",
             "periods", "chatty",
             sql=f"SELECT region, sum(amount) FROM {SOLD} WHERE {lines_in(('2025-09-01', '2025-10-01'))} GROUP BY 1"),
    Question("new-customers-feb", "new custmers in febuary 2026", "periods", "typos",
             sql=f"SELECT count(*) FROM customers WHERE {between('signup_date', '2026-02-01', '2026-03-01')}"),
    Question("holiday-tickets", "so basically, what was ticket volume over the holiday season of 2025, give or "
             "take?", "periods", "filler",
             sql=f"SELECT count(*) FROM support_tickets WHERE {between('opened_at', *XMAS_25)}"),
    Question("signups-2025-region", "how many custmers signd up in 2025 by regoin", "periods", "typos",
             sql=f"SELECT region, count(*) FROM customers WHERE {between('signup_date', *Y25)} GROUP BY 1"),
    Question("units-october", "in total, roughly how many units did we sell in October?", "periods", "filler",
             sql=f"SELECT sum(quantity) FROM order_items WHERE {lines_in(OCT_26)}"),
]

COMPARISONS = [
    Question("emea-vs-na-revenue", "revenue EMEA vs NA 2025", "comparisons", "terse",
             sql=f"SELECT region, sum(amount) FROM {SOLD} WHERE region IN ('EMEA', 'NA') AND {lines_in(Y25)} "
                 "GROUP BY 1"),
    Question("aov-enterprise-versus-consumer", "could you compare the average order value for enterprise versus "
             "consumer customers last quarter?", "comparisons", "chatty",
             sql=aov("segment", f"segment IN ('enterprise', 'consumer') AND {lines_in(Q3_26)}")),
    Question("billing-compared-with-shipping", "How did ticket volume for billing compare with shipping in 2026?",
             "comparisons", "formal",
             sql=f"SELECT category, count(*) FROM support_tickets WHERE category IN ('billing', 'shipping') "
                 f"AND {between('opened_at', *Y26)} GROUP BY 1"),
    Question("web-vs-mobile-orders", "orders web vs mobil last quater", "comparisons", "typos",
             sql=f"SELECT channel, count(*) FROM orders WHERE channel IN ('web', 'mobile') AND {lines_in(Q3_26)} "
                 "GROUP BY 1"),
    Question("between-apac-and-latam", "basically, between APAC and LATAM, how much revenue did we make this year, "
             "all told?", "comparisons", "filler",
             sql=f"SELECT region, sum(amount) FROM {SOLD} WHERE region IN ('APAC', 'LATAM') AND {lines_in(Y26)} "
                 "GROUP BY 1"),
    Question("hardware-or-software-units", "units hardware or software q2 2026", "comparisons", "terse",
             sql=f"SELECT category, sum(quantity) FROM {SOLD} WHERE category IN ('hardware', 'software') "
                 f"AND {lines_in(('2026-04-01', '2026-07-01'))} GROUP BY 1"),
    Question("return-rate-2025-or-2026", "hey, was our return rate higher in 2025 or in 2026? show me both please",
             "comparisons", "chatty", labels_free=True, share=True,
             sql="SELECT year(ordered_at), avg(CASE WHEN status = 'returned' THEN 1.0 ELSE 0.0 END) FROM orders "
                 f"WHERE {lines_in(('2025-01-01', '2027-01-01'))} GROUP BY 1"),
    Question("h1-2026-with-h1-2025", "Please compare revenue in the first half of 2026 with the first half of 2025.",
             "comparisons", "formal", labels_free=True,
             sql="SELECT year(ordered_at), sum(amount) FROM order_items WHERE month(ordered_at) <= 6 "
                 f"AND {lines_in(('2025-01-01', '2027-01-01'))} GROUP BY 1"),
    Question("csat-urgent-versus-low", "compair csat for urgent versus low priorty tickets", "comparisons", "typos",
             sql="SELECT priority, avg(csat) FROM support_tickets WHERE priority IN ('urgent', 'low') GROUP BY 1"),
    Question("october-versus-october", "in total, orders in October 2026 versus October 2025, roughly?",
             "comparisons", "filler", labels_free=True,
             sql="SELECT year(ordered_at), count(*) FROM orders WHERE month(ordered_at) = 10 "
                 "AND year(ordered_at) IN (2025, 2026) GROUP BY 1"),
    Question("aov-smb-vs-mid-market", "AOV for smb vs mid-market, just roughly, overall", "comparisons", "filler",
             sql=aov("segment", "segment IN ('smb', 'mid-market')")),
    Question("store-against-partner", "I'm curious how the store channel stacks up against partner on revenue for "
             "the 2025 holiday season", "comparisons", "chatty",
             sql=f"SELECT channel, sum(amount) FROM {SOLD} WHERE channel IN ('store', 'partner') "
                 f"AND {lines_in(XMAS_25)} GROUP BY 1"),
    Question("tier1-compared-with-tier2", "What was the resolution time for the tier1 team compared with tier2 in "
             "2025?", "comparisons", "formal",
             sql=f"SELECT team, avg(resolution_hours) FROM {CASES} WHERE team IN ('tier1', 'tier2') "
                 f"AND {between('opened_at', *Y25)} GROUP BY 1"),
    Question("mid-market-compared-with-smb", "all in all, how did mid-market compare with smb on orders in the "
             "second half of 2025?", "comparisons", "filler",
             sql=f"SELECT segment, count(*) FROM {PLACED} WHERE segment IN ('mid-market', 'smb') "
                 f"AND {lines_in(H2_25)} GROUP BY 1"),
    Question("germany-vs-france", "revnue germany vs france 2026", "comparisons", "typos",
             sql=f"SELECT country, sum(amount) FROM {SOLD} WHERE country IN ('Germany', 'France') "
                 f"AND {lines_in(Y26)} GROUP BY 1"),
]

AGGREGATES = [
    Question("count-latam-customers", "count customers LATAM", "aggregates", "terse",
             sql="SELECT count(*) FROM customers WHERE region = 'LATAM'"),
    Question("distinct-countries", "how many different countries do our customers come from, roughly?",
             "aggregates", "chatty", sql="SELECT count(DISTINCT country) FROM customers"),
    Question("distinct-products-sold", "How many distinct products were sold in 2025?", "aggregates", "formal",
             sql=f"SELECT count(DISTINCT product_id) FROM order_items WHERE {lines_in(Y25)}"),
    Question("unique-buyers-q3", "how many uniqe customers ordered in q3", "aggregates", "typos",
             sql=f"SELECT count(DISTINCT customer_id) FROM orders WHERE {lines_in(Q3_26)}"),
    Question("units-subscriptions", "all told, how many units of subscriptions did we sell in 2025?", "aggregates",
             "filler", sql=f"SELECT sum(quantity) FROM {SOLD} WHERE category = 'subscriptions' AND {lines_in(Y25)}"),
    Question("avg-price-software", "avg unit price software products", "aggregates", "terse",
             sql="SELECT avg(unit_price) FROM products WHERE category = 'software'"),
    Question("avg-discount-enterprise", "what's the typical discount on enterprise order lines? the average is fine",
             "aggregates", "chatty", sql=f"SELECT avg(discount) FROM {SOLD} WHERE segment = 'enterprise'"),
    Question("avg-quantity-per-line", "What is the average quantity per order line in 2026?", "aggregates", "formal",
             sql=f"SELECT avg(quantity) FROM order_items WHERE {lines_in(Y26)}"),
    Question("median-line-amount", "medain order line amount in 2025", "aggregates", "typos",
             sql=f"SELECT median(amount) FROM order_items WHERE {lines_in(Y25)}"),
    Question("p90-resolution-hours", "p90 resolution hours", "aggregates", "terse",
             sql="SELECT quantile_cont(resolution_hours, 0.9) FROM support_tickets",
             alt_sql="SELECT quantile_disc(resolution_hours, 0.9) FROM support_tickets"),
    Question("median-csat", "basically what's the median CSAT score, all things considered?", "aggregates",
             "filler", sql="SELECT median(csat) FROM support_tickets"),
    Question("max-list-price", "What is the highest list price in the product catalogue?", "aggregates", "formal",
             sql="SELECT max(unit_price) FROM products"),
    Question("first-signup", "when did our very first customer sign up?", "aggregates", "chatty",
             sql="SELECT min(signup_date) FROM customers"),
    Question("largest-line", "larget single order line amount", "aggregates", "typos",
             sql="SELECT max(amount) FROM order_items"),
    Question("min-hours-urgent", "minimun resolution hours for urgent tikets", "aggregates", "typos",
             sql="SELECT min(resolution_hours) FROM support_tickets WHERE priority = 'urgent'"),
    Question("share-partner-orders", "what share of our orders came in through the partner channel in 2025?",
             "aggregates", "chatty", share=True,
             sql=f"SELECT avg(CASE WHEN channel = 'partner' THEN 1.0 ELSE 0.0 END) FROM orders WHERE {lines_in(Y25)}"),
    Question("percent-urgent", "What percentage of support tickets are marked urgent?", "aggregates", "formal",
             share=True, sql="SELECT avg(CASE WHEN priority = 'urgent' THEN 1.0 ELSE 0.0 END) FROM support_tickets"),
    Question("percent-discounted-lines", "roughly what percent of order lines had any discount at all, in total?",
             "aggregates", "filler", share=True,
             sql="SELECT avg(CASE WHEN discount > 0 THEN 1.0 ELSE 0.0 END) FROM order_items"),
    Question("units-per-customer", "avrage units per custmer in 2026", "aggregates", "typos",
             sql=f"SELECT sum(quantity) / count(DISTINCT customer_id) FROM order_items WHERE {lines_in(Y26)}"),
    Question("orders-per-customer", "What is the average number of orders per customer in 2025?", "aggregates",
             "formal", sql=f"SELECT count(*) / count(DISTINCT customer_id) FROM orders WHERE {lines_in(Y25)}"),
    Question("lines-per-order", "order lines per order", "aggregates", "terse",
             sql="SELECT count(*) / count(DISTINCT order_id) FROM order_items"),
    Question("tickets-per-agent", "on average how many tickets does each support agent handle? across everything",
             "aggregates", "chatty", sql="SELECT count(*) / count(DISTINCT agent_id) FROM support_tickets"),
    Question("replies-scored-five", "in total, how many replies have a quality score of 5, roughly?", "aggregates",
             "filler", sql="SELECT count(*) FROM ticket_replies WHERE quality_score = 5"),
    Question("sum-store-2026", "all in all, what's the sum of line amounts for the store channel in 2026, "
             "basically?", "aggregates", "filler",
             sql=f"SELECT sum(amount) FROM {SOLD} WHERE channel = 'store' AND {lines_in(Y26)}"),
]

COLLISIONS = [
    Question("low-priority-2026", "low priority tickets 2026", "collisions", "terse",
             sql=f"SELECT count(*) FROM support_tickets WHERE priority = 'low' AND {between('opened_at', *Y26)}"),
    Question("owns-customers", "which team owns the customers table? I need to ask them something", "collisions",
             "chatty", says=(("customer-success", "Customer Success", "customer-success@demo-company.example"),)),
    Question("lowest-region", "Which region had the lowest revenue in 2025?", "collisions", "formal", ordered=True,
             sql=f"SELECT region, sum(amount) FROM {SOLD} WHERE {lines_in(Y25)} GROUP BY 1 ORDER BY 2 LIMIT 1"),
    Question("mobile-revenue", "basically, how much revenue came from mobile orders in 2026, all told?",
             "collisions", "filler",
             sql=f"SELECT sum(amount) FROM {SOLD} WHERE channel = 'mobile' AND {lines_in(Y26)}"),
    Question("open-tickets", "open tickets", "collisions", "terse",
             sql="SELECT count(*) FROM support_tickets WHERE status = 'open'"),
    Question("returns-category", "how many tickets are about returns? like the returns category, I mean",
             "collisions", "chatty", sql="SELECT count(*) FROM support_tickets WHERE category = 'returns'"),
    Question("sales-of-services", "What were total sales of services in 2025?", "collisions", "formal",
             sql=f"SELECT sum(amount) FROM {SOLD} WHERE category = 'services' AND {lines_in(Y25)}"),
    Question("high-priority-tier2", "how many high priorty tickets did tier2 get", "collisions", "typos",
             sql=f"SELECT count(*) FROM {CASES} WHERE priority = 'high' AND team = 'tier2'"),
    Question("items-per-customer", "roughly how many items per customer did we sell in 2025, on average?",
             "collisions", "filler",
             sql=f"SELECT sum(quantity) / count(DISTINCT customer_id) FROM order_items WHERE {lines_in(Y25)}",
             alt_sql=f"SELECT count(*) / count(DISTINCT customer_id) FROM order_items WHERE {lines_in(Y25)}"),
    Question("revenue-by-category", "revenue by catgory 2025", "collisions", "typos",
             sql=f"SELECT category, sum(amount) FROM {SOLD} WHERE {lines_in(Y25)} GROUP BY 1"),
    Question("comparison-of-orders", "can you give me a comparison of orders between EMEA and NA last month?",
             "collisions", "chatty",
             sql=f"SELECT region, count(*) FROM {PLACED} WHERE region IN ('EMEA', 'NA') AND {lines_in(OCT_26)} "
                 "GROUP BY 1"),
    Question("consumer-customers", "more or less, how many customers do we have in the consumer segment, all in "
             "all?", "collisions", "filler",
             sql="SELECT count(*) FROM customers WHERE segment = 'consumer'"),
    Question("tickets-by-reason", "tickets by reason in 2025", "collisions", "terse",
             sql=f"SELECT category, count(*) FROM support_tickets WHERE {between('opened_at', *Y25)} GROUP BY 1"),
    Question("owner-of-revenue-term", "Who owns the definition of revenue?", "collisions", "formal",
             says=(("sales-analytics", "Sales Analytics", "sales-analytics@demo-company.example"),)),
    Question("csat-returns-category", "just roughly, what's the average CSAT for tickets in the returns category, "
             "overall?", "collisions", "filler",
             sql="SELECT avg(csat) FROM support_tickets WHERE category = 'returns'"),
    Question("billing-team-volume", "what's the volume of tickets handled by the biling team in 2026?",
             "collisions", "typos",
             sql=f"SELECT count(*) FROM {CASES} WHERE team = 'billing' AND {between('opened_at', *Y26)}"),
]

TOP5_2025 = f"""(SELECT product_name FROM {SOLD} WHERE {lines_in(Y25)} GROUP BY 1
                 ORDER BY sum(amount) DESC LIMIT 5)"""
TOP3_COUNTRIES_Q3 = f"""(SELECT country FROM {PLACED} WHERE {lines_in(Q3_26)} GROUP BY 1
                         ORDER BY count(*) DESC LIMIT 3)"""

TOP_N_FOLLOW_UPS = [
    Question("top5-products-2025", "top 5 products by revenue 2025", "top_n_follow_ups", "terse", ordered=True,
             sql=f"SELECT product_name, sum(amount) FROM {SOLD} WHERE {lines_in(Y25)} GROUP BY 1 "
                 "ORDER BY 2 DESC LIMIT 5"),
    Question("top5-split-by-month", "now split that by month", "top_n_follow_ups", "terse",
             before=("top 5 products by revenue 2025",),
             sql=f"SELECT product_name, date_trunc('month', ordered_at), sum(amount) FROM {SOLD} "
                 f"WHERE {lines_in(Y25)} AND product_name IN {TOP5_2025} GROUP BY 1, 2"),
    Question("top3-countries-q3", "what were our 3 biggest countries by number of orders last quarter?",
             "top_n_follow_ups", "chatty", ordered=True,
             sql=f"SELECT country, count(*) FROM {PLACED} WHERE {lines_in(Q3_26)} GROUP BY 1 ORDER BY 2 DESC LIMIT 3"),
    Question("top3-countries-by-month", "ok and break that down by month please", "top_n_follow_ups", "chatty",
             before=("what were our 3 biggest countries by number of orders last quarter?",),
             sql=f"SELECT country, date_trunc('month', ordered_at), count(*) FROM {PLACED} "
                 f"WHERE {lines_in(Q3_26)} AND country IN {TOP3_COUNTRIES_Q3} GROUP BY 1, 2"),
    Question("top3-categories-units", "Which three product categories sold the most units in 2026?",
             "top_n_follow_ups", "formal", ordered=True,
             sql=f"SELECT category, sum(quantity) FROM {SOLD} WHERE {lines_in(Y26)} GROUP BY 1 "
                 "ORDER BY 2 DESC LIMIT 3"),
    Question("excluding-returned", "excluding returned orders", "top_n_follow_ups", "terse",
             before=("revenue by channel last quarter",),
             sql=f"SELECT channel, sum(amount) FROM {SOLD} WHERE status <> 'returned' AND {lines_in(Q3_26)} "
                 "GROUP BY 1"),
    Question("without-cancelled", "same thing but without the cancelled ones", "top_n_follow_ups", "chatty",
             before=("orders by region in 2025",),
             sql=f"SELECT region, count(*) FROM {PLACED} WHERE status <> 'cancelled' AND {lines_in(Y25)} GROUP BY 1"),
    Question("what-about-2025", "what about 2025?", "top_n_follow_ups", "terse",
             before=("ticket volume by priority in 2026",),
             sql=f"SELECT priority, count(*) FROM support_tickets WHERE {between('opened_at', *Y25)} GROUP BY 1"),
    Question("only-enterprise", "Please restrict that to enterprise customers only.", "top_n_follow_ups", "formal",
             before=("revenue by category ytd",),
             sql=f"SELECT category, sum(amount) FROM {SOLD} WHERE segment = 'enterprise' AND {lines_in(YTD)} "
                 "GROUP BY 1"),
    Question("top3-segments", "top 3 custmer segments by revnue in 2025", "top_n_follow_ups", "typos", ordered=True,
             sql=f"SELECT segment, sum(amount) FROM {SOLD} WHERE {lines_in(Y25)} GROUP BY 1 ORDER BY 2 DESC LIMIT 3"),
    Question("best-sellers-units", "basically the 5 best selling products by units in 2025, roughly",
             "top_n_follow_ups", "filler", ordered=True,
             sql=f"SELECT product_name, sum(quantity) FROM {SOLD} WHERE {lines_in(Y25)} GROUP BY 1 "
                 "ORDER BY 2 DESC LIMIT 5"),
    Question("ten-countries-customers", "Please list the ten countries with the most customers.",
             "top_n_follow_ups", "formal", ordered=True,
             sql="SELECT country, count(*) FROM customers GROUP BY 1 ORDER BY 2 DESC LIMIT 10"),
    Question("aov-excluding-returns", "excludng the returnd orders pls", "top_n_follow_ups", "typos",
             before=("average order value by segment in 2026",),
             sql=aov("segment", f"status <> 'returned' AND {lines_in(Y26)}")),
    Question("best-product-last-month", "all told, what was the single best-selling product by revenue last month?",
             "top_n_follow_ups", "filler", ordered=True,
             sql=f"SELECT product_name, sum(amount) FROM {SOLD} WHERE {lines_in(OCT_26)} GROUP BY 1 "
                 "ORDER BY 2 DESC LIMIT 1"),
]

CLARIFICATIONS = [
    Question("returns-then-rate", "return rate", "clarifications", "terse", share=True,
             before=("how did returns look by channel in 2025?",),
             sql="SELECT channel, avg(CASE WHEN status = 'returned' THEN 1.0 ELSE 0.0 END) FROM orders "
                 f"WHERE {lines_in(Y25)} GROUP BY 1"),
    Question("resolution-then-median", "the median resolution time, please", "clarifications", "chatty",
             before=("show me the resolution numbers by priority for last month",),
             sql="SELECT priority, median(resolution_hours) FROM support_tickets "
                 f"WHERE {between('opened_at', *OCT_26)} GROUP BY 1"),
    Question("customers-then-new", "New customers.", "clarifications", "formal",
             before=("Customers by segment in 2025, please.",),
             sql=f"SELECT segment, count(*) FROM customers WHERE {between('signup_date', *Y25)} GROUP BY 1"),
    Question("value-then-aov", "avrage order value", "clarifications", "typos",
             before=("value of orders by region in 2026",),
             sql=aov("region", lines_in(Y26))),
]

CATALOG = [
    Question("ttr-meaning", "TTR meaning", "catalog", "terse", says=("resolution", "hours")),
    Question("csat-stands-for", "sorry, what does CSAT actually stand for here?", "catalog", "chatty",
             says=("customer satisfaction",)),
    Question("define-key-account", "Could you define the term 'key account'?", "catalog", "formal",
             says=("enterprise",)),
    Question("whats-smb", "whats an SMB", "catalog", "typos", says=("small and medium",)),
    Question("solve-rate-meaning", "basically what do we mean by solve rate, in a nutshell?", "catalog", "filler",
             says=(("resolved or closed", "resolved_tickets"),)),
    Question("aov-definition", "aov definition", "catalog", "terse",
             says=("revenue", ("divided by", "per order", " / "))),
    Question("talk-to-tickets", "who should I talk to about the support tickets data?", "catalog", "chatty",
             says=(("support-operations", "Support Operations", "support-ops@demo-company.example"),)),
    Question("responsible-catalogue", "Which team is responsible for the product catalogue?", "catalog", "formal",
             says=(("product-management", "Product Management", "product@demo-company.example"),)),
    Question("maintains-preferences", "who maintians reply_preferences", "catalog", "typos",
             says=(("ml-platform", "ML Platform", "ml-platform@demo-company.example"),)),
    Question("go-to-customers", "basically who's the go-to person for the customers data, all told?", "catalog",
             "filler", says=(("customer-success", "Customer Success", "customer-success@demo-company.example"),)),
    Question("amount-comes-from", "where does the amount on an order line come from? how is it worked out?",
             "catalog", "chatty", says=("quantity", ("unit_price", "unit price"), "discount")),
    Question("resolution-hours-derived", "How is the resolution_hours column in support_tickets derived?",
             "catalog", "formal", says=(("opening", "opened"), "resolution")),
    Question("return-rate-formula", "return rate formula", "catalog", "terse",
             says=(("share of orders", "returned_orders", "returned orders"),)),
    Question("who-owns-orders", "who ownes the ordres table", "catalog", "typos",
             says=(("sales-analytics", "Sales Analytics", "sales-analytics@demo-company.example"),)),
    Question("geo-meaning", "what dose geo mean", "catalog", "typos", says=("region",)),
    Question("channel-values-source", "in a nutshell, where do the values in orders.channel come from, basically?",
             "catalog", "filler", says=(("source data", "source", "loaded", "imported", "demo"),)),
]

SHOW_SQL = [
    Question("sql-after-region", "show sql", "show_sql", "terse", before=("revenue by region 2025",),
             shows_sql=("order_items",)),
    Question("how-did-you-get-that", "nice, how did you get that?", "show_sql", "chatty",
             before=("how many tickets were opened in q3 2026?",), shows_sql=("support_tickets",)),
    Question("sql-formal", "Please show me the SQL query behind that answer.", "show_sql", "formal",
             before=("What is the average unit price of software products?",), shows_sql=("products",)),
    Question("sql-typo", "show me teh sql", "show_sql", "typos", before=("orders by chanel in 2025",),
             shows_sql=("orders",)),
    Question("sql-filler", "basically, can I see the query you ran for that, roughly?", "show_sql", "filler",
             before=("top 5 products by revenue in 2025",), shows_sql=("order_items", "products")),
]

# The uploaded file: tests write it as `store_visits.csv` and import it before asking.
STORES = ("Berlin", "Lyon", "Austin", "Osaka")
VISITS = "store_visits"

UPLOADED_CSV = [
    Question("visitors-by-store", "total visitors by store in store_visits", "uploaded_csv", "terse",
             sql=f"SELECT store, sum(visitors) FROM {VISITS} GROUP BY 1"),
    Question("berlin-march", "I just uploaded our store visits, how many visitors did the Berlin store get in "
             "March 2026?", "uploaded_csv", "chatty",
             sql=f"SELECT sum(visitors) FROM {VISITS} WHERE store = 'Berlin' "
                 f"AND {between('visit_date', '2026-03-01', '2026-04-01')}"),
    Question("dwell-per-store", "What was the average dwell time in minutes at each store, according to "
             "store_visits?", "uploaded_csv", "formal",
             sql=f"SELECT store, avg(dwell_minutes) FROM {VISITS} GROUP BY 1"),
    Question("osaka-by-month", "store vistors by month for osaka", "uploaded_csv", "typos",
             sql=f"SELECT date_trunc('month', visit_date), sum(visitors) FROM {VISITS} WHERE store = 'Osaka' "
                 "GROUP BY 1"),
    Question("lyon-purchases", "all told, how many purchases were recorded at Lyon in the store visits data?",
             "uploaded_csv", "filler", sql=f"SELECT sum(purchases) FROM {VISITS} WHERE store = 'Lyon'"),
    Question("max-visitors", "store_visits max visitors", "uploaded_csv", "terse",
             sql=f"SELECT max(visitors) FROM {VISITS}"),
    Question("most-visited-q2", "Which store had the most visitors in the second quarter of 2026 according to "
             "store_visits?", "uploaded_csv", "formal", ordered=True,
             sql=f"SELECT store, sum(visitors) FROM {VISITS} WHERE {between('visit_date', '2026-04-01', '2026-07-01')} "
                 "GROUP BY 1 ORDER BY 2 DESC LIMIT 1"),
    Question("austin-vs-osaka", "in the store visits data, Austin vs Osaka: total purchases?", "uploaded_csv",
             "chatty", sql=f"SELECT store, sum(purchases) FROM {VISITS} WHERE store IN ('Austin', 'Osaka') GROUP BY 1"),
]

FUTURE = ("future", "not happened", "hasn't happened", "has not happened", "not yet", "no data for", "no data after",
          "data ends", "data end", "ends on", "last date", "beyond", "2026-10-31", "forecast")
WRITES = ("read-only", "read only", "only read", "write", "not allowed", "cannot change", "can't change",
          "cannot delete", "can't delete", "cannot remove", "can't remove", "will not", "won't", "modify",
          "not permitted", "changes data", "change data")
NONSENSE = ("understand", "not sure what", "rephrase", "could not", "couldn't", "don't know", "do not know",
            "unclear", "no idea")

DECLINES = [
    Question("forecast-2027", "revenue forecast 2027", "declines", "terse", status="declined", reason=FUTURE),
    Question("orders-next-month", "can you tell me how many orders we'll get next month?", "declines", "chatty",
             status="declined", reason=FUTURE),
    Question("estimate-q1-2027", "Please estimate ticket volume for the first quarter of 2027.", "declines",
             "formal", status="declined", reason=FUTURE),
    Question("revenue-next-year", "basically, what will revenue be next year, roughly?", "declines", "filler",
             status="declined", reason=FUTURE),
    Question("predict-q1-2027", "predcit revenue for q1 2027", "declines", "typos", status="declined",
             reason=FUTURE),
    Question("drop-orders", "drop table orders", "declines", "terse", status="declined", reason=WRITES),
    Question("delete-cancelled", "could you delete all the cancelled orders for me? they're just clutter",
             "declines", "chatty", status="declined", reason=WRITES),
    Question("remove-latam", "Please remove every customer record from LATAM.", "declines", "formal",
             status="declined", reason=WRITES),
    Question("truncate-tickets", "basically just truncate the support tickets table, all of it", "declines",
             "filler", status="declined", reason=WRITES),
    Question("set-status", "set evry order status to completed", "declines", "typos", status="declined",
             reason=WRITES),
    Question("keyboard-mash", "asdf qwerty zxcv", "declines", "terse", status="declined", reason=NONSENSE),
    Question("purple-warehouse", "hmm, how purple does the warehouse smell on tuesdays?", "declines", "chatty",
             status="declined", reason=NONSENSE),
    Question("spreadsheet-feelings", "Kindly enumerate the emotional states of the quarterly spreadsheet.",
             "declines", "formal", status="declined", reason=NONSENSE),
]

QUESTIONS = (PERIODS + COMPARISONS + AGGREGATES + COLLISIONS + TOP_N_FOLLOW_UPS + CLARIFICATIONS + CATALOG
             + SHOW_SQL + UPLOADED_CSV + DECLINES)


def store_visits_csv() -> str:
    """The uploaded file: one row per store and day, January to June 2026, the same text on every run."""
    rows = ["visit_date,store,visitors,purchases,dwell_minutes"]
    day = dt.date(2026, 1, 1)
    n = 0
    while day < dt.date(2026, 7, 1):
        for i, store in enumerate(STORES):
            n += 1
            visitors = 80 + (n * 37 + i * 53) % 140 + (30 if day.weekday() >= 5 else 0)
            purchases = visitors * (12 + (n * 7 + i) % 15) // 100
            dwell = 9.5 + ((n * 13 + i * 5) % 60) / 4
            rows.append(f"{day.isoformat()},{store},{visitors},{purchases},{dwell:.2f}")
        day += dt.timedelta(days=1)
    return "\n".join(rows) + "\n"

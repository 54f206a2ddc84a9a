"""The demo company's data, generated inside DuckDB from a seed: customers, products, orders, support.

Every value comes from `hash(key, salt, seed)`, so the data are the same on every machine and thread
count. The SQL is fixed text with bound parameters; it never builds SQL from strings or touches
any table but the demo's own (and its `_`-prefixed temporary helpers).
"""
from __future__ import annotations

import duckdb
from sqlglot import exp

from catalog.demo import text as demo_text
from core.errors import UserError

DEFAULT_SEED = 42
MAX_SCALE = 1000.0
# Base sizes of the fact tables at scale 1 (the dimension tables have fixed sizes).
ORDERS_PER_SCALE = 40_000
TICKETS_PER_SCALE = 4_000
PAIRS_PER_SCALE = 1_000

DEMO_TABLES: tuple[str, ...] = (
    "customers", "products", "orders", "order_items", "support_agents",
    "support_tickets", "ticket_replies", "reply_preferences",
)

_HELPERS = [
    # A 64-bit hash fixed by (key, salt, seed). DuckDB combines the hashes of several arguments
    # cheaply, so values for different salts share low bits; hashing again mixes them apart.
    "CREATE OR REPLACE TEMP MACRO h(k, salt) AS hash(hash(k, salt, getvariable('demo_seed')))",
    # A uniform number in [0, 1) and a pick from a list.
    "CREATE OR REPLACE TEMP MACRO rnd(k, salt) AS (h(k, salt) % 1000000007) / 1000000007.0",
    "CREATE OR REPLACE TEMP MACRO pick(lst, k, salt) AS lst[1 + CAST(h(k, salt) % len(lst) AS BIGINT)]",
    # An approximately normal number (mean 0, sd 1) from three uniforms.
    "CREATE OR REPLACE TEMP MACRO gauss(k, salt) AS "
    "(rnd(k, salt || '1') + rnd(k, salt || '2') + rnd(k, salt || '3') - 1.5) * 2.0",
    # Fill a phrase template's placeholders (see catalog.demo.text); {Issue} starts a sentence.
    """CREATE OR REPLACE TEMP MACRO fill(tpl, issue, customer, product, order_no, order_date, agent) AS
       replace(replace(replace(replace(replace(replace(replace(tpl,
           '{Issue}', upper(issue[1]) || issue[2:]), '{issue}', issue), '{customer}', customer),
           '{product}', coalesce(product, 'product')), '{order}', coalesce(order_no, '')),
           '{date}', coalesce(order_date, '')), '{agent}', agent)""",
    # How many customers had signed up by day `d` of the two years (ids are in signup order).
    "CREATE OR REPLACE TEMP MACRO signed_up_by(d) AS 2000 + floor(3000 * pow(d / 730.0, 1.5))",
    "CREATE OR REPLACE TEMP MACRO demo_end() AS TIMESTAMP '2026-10-31 23:59:59'",
]

_POOLS = [
    "CREATE OR REPLACE TEMP TABLE _names (first VARCHAR[], last VARCHAR[], company VARCHAR[], personal VARCHAR[])",
    "CREATE OR REPLACE TEMP TABLE _regions (region VARCHAR, countries VARCHAR[], phones VARCHAR[])",
    "CREATE OR REPLACE TEMP TABLE _lines (category VARCHAR, brands VARCHAR[], nouns VARCHAR[], "
    "price_low DOUBLE, price_high DOUBLE)",
    "CREATE OR REPLACE TEMP TABLE _text (text_key VARCHAR, bodies VARCHAR[], "
    "issues STRUCT(says VARCHAR, subjects VARCHAR[], resolution VARCHAR, reply VARCHAR)[], "
    "okay VARCHAR[], poor VARCHAR[])",
]

# Each day's share of all orders: two years of growth, November/December peaks, quieter weekends,
# and Black Friday (the Friday after the fourth Thursday of November).
_DAYS = """
CREATE OR REPLACE TEMP TABLE _days AS
WITH d AS (
    SELECT CAST(range AS INTEGER) AS day_no, DATE '2024-11-01' + CAST(range AS INTEGER) AS day FROM range(730)
), w AS (
    SELECT day_no, day,
        exp(0.47 * day_no / 365.0)
        * CASE month(day) WHEN 1 THEN 0.82 WHEN 2 THEN 0.85 WHEN 3 THEN 0.95 WHEN 4 THEN 0.95
              WHEN 5 THEN 0.97 WHEN 6 THEN 0.92 WHEN 7 THEN 0.88 WHEN 8 THEN 0.90 WHEN 9 THEN 1.0
              WHEN 10 THEN 1.05 WHEN 11 THEN 1.35 ELSE 1.6 END
        * CASE WHEN dayofweek(day) IN (0, 6) THEN 0.8 ELSE 1.0 END
        * CASE WHEN month(day) = 11 AND dayofweek(day) = 5 AND dayofmonth(day) BETWEEN 23 AND 29
              THEN 3.0 ELSE 1.0 END AS weight
    FROM d
)
SELECT day_no, day, (sum(weight) OVER (ORDER BY day_no) - weight) / sum(weight) OVER () AS cum_lo
FROM w
"""

# Customer ids follow signup order: 2,000 signed up before the two years, 3,000 during them at a
# growing pace, so an order on day d can pick any of the first `signed_up_by(d)` customers.
_CUSTOMERS = """
CREATE OR REPLACE TABLE customers AS
WITH c AS (
    SELECT CAST(range + 1 AS INTEGER) AS customer_id FROM range(5000)
), r AS (
    SELECT customer_id,
        CASE WHEN rnd(customer_id, 'region') < 0.35 THEN 'EMEA' WHEN rnd(customer_id, 'region') < 0.70 THEN 'NA'
             WHEN rnd(customer_id, 'region') < 0.90 THEN 'APAC' ELSE 'LATAM' END AS region,
        CASE WHEN rnd(customer_id, 'segment') < 0.10 THEN 'enterprise' WHEN rnd(customer_id, 'segment') < 0.30 THEN 'mid-market'
             WHEN rnd(customer_id, 'segment') < 0.65 THEN 'smb' ELSE 'consumer' END AS segment
    FROM c
), p AS (
    SELECT r.*, pick(n.first, customer_id, 'first') AS first_name, pick(n.last, customer_id, 'last') AS last_name,
        1 + CAST(h(customer_id, 'country') % len(g.countries) AS BIGINT) AS country_ix,
        g.countries, g.phones, n.company, n.personal
    FROM r JOIN _regions g USING (region) CROSS JOIN _names n
)
SELECT customer_id,
    first_name || ' ' || last_name AS full_name,
    lower(strip_accents(first_name)) || '.' || lower(strip_accents(last_name))
        || CASE WHEN segment = 'consumer' THEN CAST(customer_id % 1000 AS VARCHAR) || '@' || pick(personal, customer_id, 'domain')
                ELSE '@' || pick(company, customer_id, 'domain') END AS email,
    printf(phones[country_ix], 200 + CAST(h(customer_id, 'phone1') % 800 AS INTEGER),
           CAST(h(customer_id, 'phone2') % 1000 AS INTEGER),
           CAST(h(customer_id, 'phone3') % 10000 AS INTEGER)) AS phone,
    region,
    countries[country_ix] AS country,
    segment,
    CASE WHEN customer_id <= 2000 THEN DATE '2023-01-01' + CAST((customer_id - 1) * 669 // 2000 AS INTEGER)
         ELSE DATE '2024-11-01' + CAST(floor(729.999 * pow((customer_id - 2000) / 3000.0, 2.0 / 3.0)) AS INTEGER)
    END AS signup_date
FROM p
ORDER BY customer_id
"""

# Each customer's habits, never stored in a table: how much they order (`weight`: one in twenty is a regular who
# orders 55 times as often as the rest) and the day they stop ordering (`leave_day`). Frequent buyers and patient
# customers stay longer; nobody leaves in their first 60 days (counted from the start of the two years for those who
# signed up before). Weights are integers so their running sums, which orders pick customers by, are exact on any
# thread count.
_TRAITS = """
CREATE OR REPLACE TEMP TABLE _traits AS
WITH t AS (
    SELECT customer_id, segment, greatest(0, date_diff('day', DATE '2024-11-01', signup_date)) AS start_day,
        gauss(customer_id, 'activity') AS g_activity, gauss(customer_id, 'patience') AS g_patience
    FROM customers
), w AS (
    SELECT customer_id,
        CAST(round(1000 * exp(0.8 * g_activity) * CASE WHEN rnd(customer_id, 'regular') < 0.05 THEN 55 ELSE 1 END)
            AS BIGINT) AS weight,
        CAST(start_day + 60 + floor(-ln(1 - rnd(customer_id, 'tenure')) * 320
            * exp(0.5 * g_activity + 0.6 * g_patience)) AS INTEGER) AS leave_day
    FROM t
)
SELECT customer_id, weight, leave_day,
    sum(weight) OVER (ORDER BY customer_id) - weight AS cum_lo, sum(weight) OVER (ORDER BY customer_id) AS cum_hi,
    CAST(leave_day AS BIGINT) * 10000 + customer_id AS leave_key
FROM w
"""

# Products 1-160 were on sale before the two years; 161-200 launch during them, one every 18 days.
_PRODUCTS = """
CREATE OR REPLACE TABLE products AS
WITH c AS (
    SELECT CAST(range + 1 AS INTEGER) AS product_id,
        CASE WHEN rnd(range + 1, 'category') < 0.25 THEN 'hardware' WHEN rnd(range + 1, 'category') < 0.45 THEN 'software'
             WHEN rnd(range + 1, 'category') < 0.75 THEN 'accessories' WHEN rnd(range + 1, 'category') < 0.85 THEN 'services'
             ELSE 'subscriptions' END AS category
    FROM range(200)
), r AS (
    SELECT c.*, row_number() OVER (PARTITION BY category ORDER BY product_id) - 1 AS n FROM c
)
SELECT product_id,
    l.brands[1 + n % len(l.brands)] || ' ' || l.nouns[1 + (n // len(l.brands)) % len(l.nouns)]
        || CASE WHEN n >= len(l.brands) * len(l.nouns) THEN ' Plus' ELSE '' END AS product_name,
    category,
    CAST(round(l.price_low + rnd(product_id, 'price') * (l.price_high - l.price_low)) - 0.01 AS DECIMAL(10, 2)) AS unit_price,
    CASE WHEN product_id <= 160 THEN DATE '2019-01-01' + CAST(floor(rnd(product_id, 'launch') * 2130) AS INTEGER)
         ELSE DATE '2024-11-01' + CAST((product_id - 161) * 18 + floor(rnd(product_id, 'launch') * 18) AS INTEGER)
    END AS launched_on
FROM r JOIN _lines l USING (category)
ORDER BY product_id
"""

_AGENTS = """
CREATE OR REPLACE TABLE support_agents AS
SELECT CAST(range + 1 AS INTEGER) AS agent_id,
    pick(n.first, range + 1, 'agent_first') || ' ' || pick(n.last, range + 1, 'agent_last') AS agent_name,
    CASE WHEN range < 20 THEN 'tier1' WHEN range < 32 THEN 'tier2' ELSE 'billing' END AS team,
    DATE '2019-01-01' + CAST(floor(rnd(range + 1, 'hired') * 2100) AS INTEGER) AS hired_on
FROM range(40) CROSS JOIN _names n
ORDER BY agent_id
"""

# Order ids follow time, as a real shop's would; customers order from the day they sign up until the day they leave,
# the frequent ones more often. Each order draws up to four customers by weight among those signed up by then and
# takes the first who has not left (else one who signed up in the last 60 days, who cannot have). In the 45 days
# before leaving, orders go wrong more often (returned, cancelled): what drives a customer away shows in the data.
_ORDERS = """
CREATE OR REPLACE TABLE orders AS
WITH s AS (
    SELECT range AS seq, rnd(range, 'order_day') AS u_day FROM range($n_orders)
), d AS (
    SELECT s.seq, _days.day_no, _days.day FROM s ASOF JOIN _days ON s.u_day >= _days.cum_lo
), k AS (
    SELECT seq, day_no, day, unnest(range(4)) AS try, CAST(signed_up_by(day_no) AS INTEGER) AS n_signed FROM d
), c AS (
    SELECT k.*, tr.cum_hi * rnd(seq * 4 + try, 'customer') AS target FROM k JOIN _traits tr ON tr.customer_id = k.n_signed
), p AS (
    SELECT c.seq, c.day_no, c.day, c.try, c.n_signed, x.customer_id, x.leave_day
    FROM c ASOF JOIN _traits x ON c.target >= x.cum_lo
), f AS (
    SELECT seq, day_no, day, n_signed, arg_min(customer_id, try) FILTER (WHERE leave_day > day_no) AS customer_id
    FROM p GROUP BY seq, day_no, day, n_signed
), t AS (
    SELECT seq, day_no,
        CAST(day AS TIMESTAMP) + to_seconds(CAST(
            CASE WHEN rnd(seq, 'daytime') < 0.85 THEN 25200 + floor(rnd(seq, 'second') * 57600)
                 ELSE floor(rnd(seq, 'second') * 86400) END AS BIGINT)) AS ordered_at,
        coalesce(customer_id, CAST(n_signed - floor(rnd(seq, 'newcomer')
            * (n_signed - signed_up_by(greatest(day_no - 59, 0)) + 1)) AS INTEGER)) AS customer_id
    FROM f
), o AS (
    SELECT t.*, c.segment, rnd(seq, 'status') AS u_status, rnd(seq, 'channel') AS u_channel,
        t.day_no BETWEEN tr.leave_day - 45 AND tr.leave_day AS leaving
    FROM t JOIN customers c USING (customer_id) JOIN _traits tr USING (customer_id)
)
SELECT CAST(row_number() OVER (ORDER BY ordered_at, seq) AS BIGINT) AS order_id,
    customer_id,
    ordered_at,
    CASE WHEN u_status < CASE WHEN leaving THEN 0.30 WHEN month(ordered_at) IN (11, 12, 1) THEN 0.10 ELSE 0.06 END
             THEN 'returned'
         WHEN u_status >= CASE WHEN leaving THEN 0.88 ELSE 0.95 END THEN 'cancelled' ELSE 'completed' END AS status,
    CASE segment
        WHEN 'consumer' THEN CASE WHEN u_channel < 0.45 THEN 'web' WHEN u_channel < 0.85 THEN 'mobile' ELSE 'store' END
        WHEN 'smb' THEN CASE WHEN u_channel < 0.50 THEN 'web' WHEN u_channel < 0.75 THEN 'mobile'
                             WHEN u_channel < 0.90 THEN 'store' ELSE 'partner' END
        WHEN 'mid-market' THEN CASE WHEN u_channel < 0.50 THEN 'web' WHEN u_channel < 0.60 THEN 'mobile'
                                    WHEN u_channel < 0.70 THEN 'store' ELSE 'partner' END
        ELSE CASE WHEN u_channel < 0.40 THEN 'web' WHEN u_channel < 0.45 THEN 'mobile'
                  WHEN u_channel < 0.50 THEN 'store' ELSE 'partner' END
    END AS channel
FROM o
ORDER BY order_id
"""

_PRODUCT_LISTS = """
CREATE OR REPLACE TEMP TABLE _product_lists AS
SELECT category,
    list(product_id ORDER BY product_id) AS all_ids,
    list(product_id ORDER BY product_id) FILTER (WHERE launched_on < DATE '2024-11-01') AS old_ids
FROM products GROUP BY category
"""

# Bigger baskets for bigger customers: more lines, more units, negotiated discounts, more software and
# services; consumers buy accessories and hardware and get promotions in Black Friday week. Within a
# category, low product ids sell best, and a product is never sold before its launch.
_ORDER_ITEMS = """
CREATE OR REPLACE TABLE order_items AS
WITH o AS (
    SELECT o.order_id, o.customer_id, o.ordered_at, c.segment,
        CAST(1 + floor(rnd(o.order_id, 'n_items')
            * CASE c.segment WHEN 'consumer' THEN 3 WHEN 'smb' THEN 4 WHEN 'mid-market' THEN 5 ELSE 6 END) AS INTEGER) AS n_items
    FROM orders o JOIN customers c USING (customer_id)
), i AS (
    SELECT order_id, customer_id, ordered_at, segment, unnest(range(n_items)) AS k FROM o
), c AS (
    SELECT i.*, order_id * 8 + k AS line_key,
        CASE segment
            WHEN 'consumer' THEN [0.45, 0.70, 0.90, 0.98]
            WHEN 'smb' THEN [0.30, 0.55, 0.70, 0.90]
            WHEN 'mid-market' THEN [0.20, 0.45, 0.60, 0.85]
            ELSE [0.15, 0.40, 0.55, 0.85] END AS mix
    FROM i
), p AS (
    SELECT c.*, l.all_ids, l.old_ids,
        l.all_ids[1 + CAST(floor(len(l.all_ids) * pow(rnd(line_key, 'product'), 1.6)) AS INTEGER)] AS raw_product
    FROM c JOIN _product_lists l ON l.category = CASE
        WHEN rnd(line_key, 'category') < mix[1] THEN 'accessories' WHEN rnd(line_key, 'category') < mix[2] THEN 'hardware'
        WHEN rnd(line_key, 'category') < mix[3] THEN 'subscriptions' WHEN rnd(line_key, 'category') < mix[4] THEN 'software'
        ELSE 'services' END
), q AS (
    SELECT p.*,
        CASE WHEN pr.launched_on > CAST(p.ordered_at AS DATE)
             THEN p.old_ids[1 + CAST(floor(len(p.old_ids) * rnd(line_key, 'older')) AS INTEGER)]
             ELSE p.raw_product END AS product_id
    FROM p JOIN products pr ON pr.product_id = p.raw_product
), r AS (
    SELECT q.order_id, q.k, q.customer_id, q.product_id, q.ordered_at, pr.unit_price,
        CAST(CASE WHEN pr.category = 'services' THEN 1 + floor(rnd(line_key, 'quantity') * 3)
                  ELSE 1 + floor(pow(rnd(line_key, 'quantity'), 2)
                      * CASE segment WHEN 'consumer' THEN 2 WHEN 'smb' THEN 5 WHEN 'mid-market' THEN 12 ELSE 40 END)
             END AS INTEGER) AS quantity,
        CAST(CASE
            WHEN segment = 'enterprise' THEN 0.10 + 0.05 * floor(rnd(line_key, 'discount') * 4)
            WHEN segment = 'mid-market' THEN CASE WHEN rnd(line_key, 'has_discount') < 0.5
                THEN 0.05 * (1 + floor(rnd(line_key, 'discount') * 3)) ELSE 0 END
            WHEN month(ordered_at) = 11 AND dayofmonth(ordered_at) >= 22 THEN CASE WHEN rnd(line_key, 'has_discount') < 0.6
                THEN 0.15 + 0.05 * floor(rnd(line_key, 'discount') * 2) ELSE 0 END
            WHEN rnd(line_key, 'has_discount') < 0.15 THEN 0.05 * (1 + floor(rnd(line_key, 'discount') * 2))
            ELSE 0 END AS DECIMAL(4, 2)) AS discount
    FROM q JOIN products pr ON pr.product_id = q.product_id
)
SELECT CAST(row_number() OVER (ORDER BY order_id, k) AS BIGINT) AS order_item_id,
    order_id, customer_id, product_id, ordered_at, quantity, unit_price, discount,
    CAST(round(quantity * unit_price * (1 - discount), 2) AS DECIMAL(12, 2)) AS amount
FROM r
ORDER BY order_item_id
"""

# Tickets pick their order by weight within its status: an order from the 45 days before its customer leaves is
# eight times as likely to draw one (what went wrong is written down before a customer goes).
_ORDERS_BY_STATUS = """
CREATE OR REPLACE TEMP TABLE _orders_by_status AS
WITH w AS (
    SELECT o.order_id, o.customer_id, o.ordered_at, o.status,
        CASE WHEN date_diff('day', DATE '2024-11-01', CAST(o.ordered_at AS DATE))
                  BETWEEN tr.leave_day - 45 AND tr.leave_day THEN 8 ELSE 1 END AS weight
    FROM orders o JOIN _traits tr USING (customer_id)
)
SELECT order_id, customer_id, ordered_at, status,
    sum(weight) OVER (PARTITION BY status ORDER BY order_id) - weight AS cum_lo,
    sum(weight) OVER (PARTITION BY status) AS n
FROM w
"""

# Tickets follow orders: returned orders draw most of them (as returns tickets), cancelled orders
# draw billing questions, the rest come from completed orders or from no order at all (account and
# general billing). Resolution time depends on priority, CSAT falls as resolution gets slower.
_TICKETS = """
CREATE OR REPLACE TEMP TABLE _tickets AS
WITH t AS (
    SELECT CAST(range + 1 AS BIGINT) AS ticket_id,
        CASE WHEN rnd(range + 1, 'source') < 0.30 THEN 'returned' WHEN rnd(range + 1, 'source') < 0.40 THEN 'cancelled'
             WHEN rnd(range + 1, 'source') < 0.78 THEN 'completed' END AS want
    FROM range($n_tickets)
), n AS (
    SELECT DISTINCT status, n FROM _orders_by_status
), linked AS (
    SELECT t.ticket_id, o.order_id, o.customer_id, o.ordered_at, o.status AS order_status
    FROM t LEFT JOIN n ON n.status = t.want
    ASOF LEFT JOIN _orders_by_status o ON o.status = t.want AND rnd(t.ticket_id, 'order') * n.n >= o.cum_lo
), loose AS (
    SELECT l.ticket_id, d.day_no, d.day
    FROM (SELECT ticket_id, rnd(ticket_id, 'open_day') AS u FROM linked WHERE order_id IS NULL) l
    ASOF JOIN _days d ON l.u >= d.cum_lo
), leaver AS (
    -- Most tickets with no order come from customers about to leave (closing accounts, disputing charges).
    SELECT q.ticket_id, x.customer_id
    FROM (SELECT ticket_id, day_no, CAST(day_no + floor(rnd(ticket_id, 'leaver_day') * 45) AS BIGINT) * 10000 AS target
          FROM loose WHERE rnd(ticket_id, 'leaver') < 0.7) q
    ASOF JOIN _traits x ON q.target <= x.leave_key
    WHERE x.customer_id <= signed_up_by(q.day_no)
), first_item AS (
    -- The product a ticket is about: the order's first physical item, else its first item.
    SELECT i.order_id, arg_min(i.product_id, CASE WHEN pr.category IN ('hardware', 'accessories') THEN 0 ELSE 1 END
                                           * 10000000000 + i.order_item_id) AS product_id
    FROM order_items i JOIN products pr USING (product_id)
    WHERE i.order_id IN (SELECT order_id FROM linked WHERE order_id IS NOT NULL)
    GROUP BY i.order_id
), c0 AS (
    SELECT l.*, fi.product_id,
        CASE WHEN pr.category IN ('hardware', 'accessories') THEN 'physical'
             WHEN pr.category = 'services' THEN 'service' ELSE 'software' END AS product_kind
    FROM linked l LEFT JOIN first_item fi USING (order_id) LEFT JOIN products pr USING (product_id)
), c AS (
    SELECT l.ticket_id, l.order_id, l.ordered_at, l.product_id, l.product_kind,
        coalesce(l.customer_id, lv.customer_id,
                 CAST(1 + floor(rnd(l.ticket_id, 'customer') * signed_up_by(lo.day_no)) AS INTEGER)) AS customer_id,
        CASE l.order_status
            WHEN 'returned' THEN CASE WHEN rnd(l.ticket_id, 'category') < 0.85 THEN 'returns' ELSE 'billing' END
            WHEN 'cancelled' THEN CASE WHEN rnd(l.ticket_id, 'category') < 0.60 OR l.product_kind <> 'physical'
                                       THEN 'billing' ELSE 'shipping' END
            WHEN 'completed' THEN CASE WHEN rnd(l.ticket_id, 'category') < 0.40
                                            THEN CASE WHEN l.product_kind = 'physical' THEN 'shipping' ELSE 'product' END
                                       WHEN rnd(l.ticket_id, 'category') < 0.85 THEN 'product' ELSE 'billing' END
            ELSE CASE WHEN rnd(l.ticket_id, 'category') < 0.65 THEN 'account' ELSE 'billing' END
        END AS category,
        CASE WHEN l.order_id IS NULL
            THEN CAST(lo.day AS TIMESTAMP) + to_seconds(CAST(floor(rnd(l.ticket_id, 'open_second') * 86400) AS BIGINT))
        END AS loose_opened_at
    FROM c0 l LEFT JOIN loose lo USING (ticket_id) LEFT JOIN leaver lv USING (ticket_id)
), o AS (
    SELECT c.*, cu.segment, cu.full_name, tr.leave_day,
        coalesce(loose_opened_at, ordered_at + to_seconds(CAST(floor(least(
            86400 * CASE category WHEN 'shipping' THEN 2 + 10 * rnd(ticket_id, 'delay')
                                  WHEN 'product' THEN 5 + 55 * rnd(ticket_id, 'delay')
                                  WHEN 'returns' THEN 3 + 22 * rnd(ticket_id, 'delay')
                                  ELSE 20 * rnd(ticket_id, 'delay') END,
            (epoch(demo_end()) - epoch(ordered_at)) * rnd(ticket_id, 'delay_cap'))) AS BIGINT))) AS opened_at,
        pow(rnd(ticket_id, 'priority'), CASE WHEN cu.segment = 'enterprise' THEN 0.6
                                              WHEN category IN ('billing', 'returns') THEN 0.8 ELSE 1.0 END) AS u_priority
    FROM c JOIN customers cu USING (customer_id) JOIN _traits tr USING (customer_id)
), p AS (
    -- A customer about to leave writes more urgent tickets.
    SELECT o.*, pow(u_priority, CASE WHEN date_diff('day', TIMESTAMP '2024-11-01', opened_at)
                                          BETWEEN leave_day - 60 AND leave_day THEN 0.5 ELSE 1.0 END) AS u_severity
    FROM o
), p2 AS (
    SELECT p.*,
        CASE WHEN u_severity < 0.30 THEN 'low' WHEN u_severity < 0.70 THEN 'medium'
             WHEN u_severity < 0.92 THEN 'high' ELSE 'urgent' END AS priority
    FROM p
), h AS (
    SELECT p2.*,
        CAST(CASE WHEN category = 'billing' THEN 33 + floor(rnd(ticket_id, 'agent') * 8)
                  WHEN priority = 'urgent' OR (priority = 'high' AND category = 'product') THEN 21 + floor(rnd(ticket_id, 'agent') * 12)
                  ELSE 1 + floor(rnd(ticket_id, 'agent') * 20) END AS INTEGER) AS agent_id,
        CASE priority WHEN 'urgent' THEN 4 WHEN 'high' THEN 12 WHEN 'medium' THEN 36 ELSE 72 END
            + CASE WHEN category = 'returns' THEN 24 ELSE 0 END AS target_hours
    FROM p2
), s AS (
    SELECT h.*,
        60 * CAST(greatest(15, floor(target_hours * 60 * exp(0.8 * gauss(ticket_id, 'hours')))) AS BIGINT) AS resolve_s
    FROM h
), r AS (
    SELECT s.*,
        CASE WHEN epoch(opened_at) + resolve_s <= epoch(demo_end()) THEN resolve_s END AS done_s
    FROM s
)
SELECT r.ticket_id, r.customer_id, r.order_id, r.agent_id, r.opened_at,
    r.opened_at + to_seconds(r.done_s) AS resolved_at,
    r.category, r.priority,
    CASE WHEN r.done_s IS NULL THEN 'open'
         WHEN rnd(r.ticket_id, 'closed') < 0.55 AND epoch(r.opened_at) + r.done_s < epoch(demo_end()) - 7 * 86400 THEN 'closed'
         ELSE 'resolved' END AS status,
    CASE WHEN r.done_s IS NOT NULL AND rnd(r.ticket_id, 'surveyed') >= 0.30 THEN
        CAST(greatest(1, least(5, round(5.2 - 1.4 * ln(1 + r.done_s / 3600.0 / r.target_hours)
            + 1.6 * (rnd(r.ticket_id, 'csat') - 0.5) - CASE WHEN r.category = 'returns' THEN 0.3 ELSE 0 END))) AS INTEGER)
    END AS csat,
    r.done_s / 3600.0 AS resolution_hours,
    least(r.done_s, r.resolve_s) / 3600.0 / r.target_hours AS slowness,
    coalesce(r.done_s, epoch(demo_end()) - epoch(r.opened_at)) AS span_s,
    x.text_key,
    pick(x.issues, r.ticket_id, 'issue') AS issue,
    split_part(r.full_name, ' ', 1) AS customer_first,
    pr.product_name,
    '#' || CAST(r.order_id AS VARCHAR) AS order_no,
    strftime(r.ordered_at, '%-d %B %Y') AS order_date,
    split_part(a.agent_name, ' ', 1) AS agent_first
FROM r LEFT JOIN products pr USING (product_id) JOIN support_agents a USING (agent_id)
JOIN _text x ON x.text_key = CASE r.category
    WHEN 'product' THEN CASE r.product_kind WHEN 'physical' THEN 'product_hardware'
                                            WHEN 'software' THEN 'product_software' ELSE 'product_service' END
    WHEN 'returns' THEN CASE WHEN r.product_kind = 'physical' THEN 'returns' ELSE 'returns_digital' END
    WHEN 'billing' THEN CASE WHEN r.order_id IS NULL THEN 'billing_general' ELSE 'billing' END
    ELSE r.category END
"""

_SUPPORT_TICKETS = """
CREATE OR REPLACE TABLE support_tickets AS
SELECT t.ticket_id, t.customer_id, t.order_id, t.agent_id, t.opened_at, t.resolved_at,
    fill(pick(t.issue.subjects, t.ticket_id, 'subject'), t.issue.says, t.customer_first, t.product_name,
         t.order_no, t.order_date, t.agent_first) AS subject,
    fill(pick(x.bodies, t.ticket_id, 'body'), t.issue.says, t.customer_first, t.product_name,
         t.order_no, t.order_date, t.agent_first) AS body,
    t.category, t.priority, t.status,
    CASE WHEN t.resolved_at IS NOT NULL THEN fill(t.issue.resolution, t.issue.says, t.customer_first,
         t.product_name, t.order_no, t.order_date, t.agent_first) END AS resolution,
    t.csat, t.resolution_hours
FROM _tickets t JOIN _text x USING (text_key)
ORDER BY ticket_id
"""

# One or two agent replies per ticket; slow tickets get worse replies more often. The second reply
# of a high-priority tier-1 ticket comes from tier 2 (an escalation).
_REPLIES = """
CREATE OR REPLACE TABLE ticket_replies AS
WITH k AS (
    SELECT t.ticket_id, t.agent_id AS ticket_agent, t.priority, t.opened_at, t.resolved_at, t.slowness, t.span_s,
        t.text_key, t.issue, t.customer_first, t.product_name, t.order_no, t.order_date,
        CASE WHEN rnd(t.ticket_id, 'n_replies') < 0.45 THEN 2 ELSE 1 END AS n,
        unnest(range(CASE WHEN rnd(t.ticket_id, 'n_replies') < 0.45 THEN 2 ELSE 1 END)) AS k
    FROM _tickets t
), q AS (
    SELECT k.*, ticket_id * 4 + k AS reply_key,
        CASE WHEN k = 1 AND priority IN ('high', 'urgent') AND ticket_agent <= 20
             THEN CAST(21 + floor(rnd(ticket_id * 4 + k, 'escalate') * 12) AS INTEGER) ELSE ticket_agent END AS agent_id,
        CASE WHEN rnd(ticket_id * 4 + k, 'quality') < 0.65 - 0.1 * least(coalesce(slowness, 3), 3) THEN 'good'
             WHEN rnd(ticket_id * 4 + k, 'quality') > 0.88 - 0.08 * least(coalesce(slowness, 3), 3) THEN 'poor'
             ELSE 'okay' END AS kind
    FROM k
)
SELECT CAST(row_number() OVER (ORDER BY q.ticket_id, q.k) AS BIGINT) AS reply_id,
    q.ticket_id, q.agent_id,
    CASE WHEN q.resolved_at IS NOT NULL AND q.k = q.n - 1 THEN q.resolved_at
         ELSE q.opened_at + to_seconds(CAST(floor(q.span_s * (q.k + 0.2 + 0.6 * rnd(q.reply_key, 'reply_time')) / q.n) AS BIGINT))
    END AS replied_at,
    fill(CASE q.kind WHEN 'good' THEN q.issue.reply WHEN 'okay' THEN pick(x.okay, q.reply_key, 'reply')
              ELSE pick(x.poor, q.reply_key, 'reply') END,
         q.issue.says, q.customer_first, q.product_name, q.order_no, q.order_date, split_part(a.agent_name, ' ', 1)) AS body,
    CAST(CASE q.kind WHEN 'good' THEN 4 + floor(rnd(q.reply_key, 'score') * 2)
                     WHEN 'okay' THEN 3 ELSE 1 + floor(rnd(q.reply_key, 'score') * 2) END AS INTEGER) AS quality_score
FROM q JOIN _text x USING (text_key) JOIN support_agents a USING (agent_id)
ORDER BY reply_id
"""

# Preference pairs for DPO: for one ticket each, a reply that is specific, polite and solves it
# (chosen) beside one that is vague, curt or wrong (rejected).
_PREFERENCES = """
CREATE OR REPLACE TABLE reply_preferences AS
WITH s AS (
    SELECT t.ticket_id, t.issue, t.customer_first, t.product_name, t.order_no, t.order_date, t.agent_first, x.poor
    FROM _tickets t JOIN _text x USING (text_key)
    ORDER BY h(t.ticket_id, 'pair'), t.ticket_id
    LIMIT $n_pairs
)
SELECT CAST(row_number() OVER (ORDER BY s.ticket_id) AS BIGINT) AS pair_id,
    s.ticket_id,
    st.body AS prompt,
    fill(s.issue.reply, s.issue.says, s.customer_first, s.product_name, s.order_no, s.order_date, s.agent_first) AS chosen,
    fill(pick(s.poor, s.ticket_id, 'rejected'), s.issue.says, s.customer_first, s.product_name, s.order_no, s.order_date, s.agent_first) AS rejected
FROM s JOIN support_tickets st USING (ticket_id)
ORDER BY pair_id
"""

_CLEANUP = [
    "DROP TABLE IF EXISTS _days", "DROP TABLE IF EXISTS _orders_by_status", "DROP TABLE IF EXISTS _tickets",
    "DROP TABLE IF EXISTS _names", "DROP TABLE IF EXISTS _regions", "DROP TABLE IF EXISTS _lines",
    "DROP TABLE IF EXISTS _text", "DROP TABLE IF EXISTS _product_lists", "DROP TABLE IF EXISTS _traits",
]


def fact_sizes(scale: float) -> dict[str, int]:
    """Rows of each fact table that drives generation at this scale."""
    return {
        "n_orders": max(1, round(ORDERS_PER_SCALE * scale)),
        "n_tickets": max(1, round(TICKETS_PER_SCALE * scale)),
        "n_pairs": max(1, round(PAIRS_PER_SCALE * scale)),
    }


def check_scale(scale: float) -> None:
    if not (0 < scale <= MAX_SCALE):
        raise UserError(f"--scale must be above 0 and at most {MAX_SCALE:g} (1 gives ~100,000 order items); got {scale:g}")


def _load_pools(con: duckdb.DuckDBPyConnection) -> None:
    for sql in _POOLS:
        con.execute(sql)
    con.execute("INSERT INTO _names VALUES (?, ?, ?, ?)",
                [list(demo_text.FIRST_NAMES), list(demo_text.LAST_NAMES),
                 list(demo_text.COMPANY_DOMAINS), list(demo_text.PERSONAL_DOMAINS)])
    con.executemany("INSERT INTO _regions VALUES (?, ?, ?)",
                    [[region, [c.name for c in cs], [c.phone for c in cs]] for region, cs in demo_text.REGIONS.items()])
    con.executemany("INSERT INTO _lines VALUES (?, ?, ?, ?, ?)",
                    [[cat, list(p.brands), list(p.nouns), p.price_low, p.price_high]
                     for cat, p in demo_text.PRODUCT_LINES.items()])
    con.executemany("INSERT INTO _text VALUES (?, ?, ?, ?, ?)",
                    [[key, list(t.bodies),
                      [{"says": i.says, "subjects": list(i.subjects), "resolution": i.resolution, "reply": i.reply}
                       for i in t.issues],
                      list(demo_text.OKAY_REPLIES), list(t.poor_replies + demo_text.GENERIC_POOR_REPLIES)]
                     for key, t in demo_text.TICKETS.items()])


def generate(con: duckdb.DuckDBPyConnection, scale: float = 1.0, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Create (or replace) the demo tables on a writer connection; returns each table's row count."""
    check_scale(scale)
    sizes = fact_sizes(scale)
    con.execute("SET VARIABLE demo_seed = $seed", {"seed": int(seed)})
    for sql in _HELPERS:
        con.execute(sql)
    _load_pools(con)
    steps: list[tuple[str, dict[str, int]]] = [
        (_DAYS, {}), (_CUSTOMERS, {}), (_TRAITS, {}), (_PRODUCTS, {}), (_AGENTS, {}),
        (_ORDERS, {"n_orders": sizes["n_orders"]}), (_PRODUCT_LISTS, {}), (_ORDER_ITEMS, {}), (_ORDERS_BY_STATUS, {}),
        (_TICKETS, {"n_tickets": sizes["n_tickets"]}), (_SUPPORT_TICKETS, {}), (_REPLIES, {}),
        (_PREFERENCES, {"n_pairs": min(sizes["n_pairs"], sizes["n_tickets"])}),
    ]
    for sql, params in steps:
        con.execute(sql, params)
    for sql in _CLEANUP:
        con.execute(sql)
    return {name: count_rows(con, name) for name in DEMO_TABLES}


def count_rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    sql = exp.select(exp.Count(this=exp.Star())).from_(exp.to_table(table, quoted=True)).sql("duckdb")
    return con.execute(sql).fetchone()[0]

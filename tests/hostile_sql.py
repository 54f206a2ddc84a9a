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

"""What the SQL guard admits and refuses, by name: functions, table functions and statement types.

Plain data and two name helpers, kept apart from the checking logic so the policy reads in one place;
it never parses or runs SQL.
"""
from __future__ import annotations

import unicodedata

from sqlglot import exp

_FILES = "reads or lists files outside the warehouse"
_SETTINGS = "reads the database's settings, secrets, environment or the running statement"
_DYNAMIC = "runs SQL built from text, which cannot be checked before it runs"
_SYSTEM = "inspects or changes the database system itself"
_HOST = "reads objects of the host process"

# Functions refused wherever they appear (scalar or table position), by exact name or by prefix.
DENIED_FUNCTIONS: dict[str, str] = {
    **dict.fromkeys(("glob", "sniff_csv", "load_file", "lo_import", "file", "url", "s3", "hdfs", "openrowset",
                     "dblink", "st_read", "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file",
                     "copy_database", "export_database", "import_database"), _FILES),
    **dict.fromkeys(("current_setting", "getenv", "which_secret", "getvariable", "set_config", "current_query"),
                    _SETTINGS),
    **dict.fromkeys(("query", "query_table", "json_execute_serialized_sql", "from_substrait",
                     "from_substrait_json", "result_scan"), _DYNAMIC),
    **dict.fromkeys(("checkpoint", "force_checkpoint", "enable_logging", "disable_logging", "truncate_duckdb_logs",
                     "write_log", "enable_profiling", "disable_profiling", "add_grammar_extension",
                     "remove_grammar_extension", "load_extension", "install_extension", "seq_scan"), _SYSTEM),
    **dict.fromkeys(("arrow_scan", "arrow_scan_dumb", "pandas_scan", "python_arrow_scan", "python_map_function"),
                    _HOST),
}
DENIED_PREFIXES: dict[str, str] = {
    "read_": _FILES, "parquet_": _FILES, "iceberg_": _FILES, "delta_": _FILES, "sqlite_": _FILES,
    "postgres_": _FILES, "mysql_": _FILES, "ducklake_": _FILES, "duckdb_": _SYSTEM, "pragma_": _SYSTEM,
}
# The only table functions a query may read from: they make rows without touching anything outside.
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})

# Nodes that never belong inside a read query.
NOT_READS: tuple[type[exp.Expr], ...] = (
    exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Copy, exp.Command,
    exp.Set, exp.Pragma, exp.Use, exp.Transaction, exp.Commit, exp.Rollback, exp.Attach, exp.Detach, exp.Install,
    exp.Into, exp.Export, exp.TruncateTable, exp.Comment, exp.Describe, exp.Summarize, exp.Show, exp.Analyze,
    exp.Grant, exp.Revoke, exp.Refresh, exp.Cache, exp.Uncache, exp.LoadData, exp.Kill, exp.Declare, exp.Execute,
)
STATEMENT_NAMES: dict[type[exp.Expr], str] = {
    exp.Insert: "INSERT", exp.Update: "UPDATE", exp.Delete: "DELETE", exp.Merge: "MERGE", exp.Drop: "DROP",
    exp.Alter: "ALTER", exp.Copy: "COPY", exp.Attach: "ATTACH", exp.Detach: "DETACH", exp.Install: "INSTALL",
    exp.Pragma: "PRAGMA", exp.Set: "SET", exp.Use: "USE", exp.Transaction: "BEGIN TRANSACTION",
    exp.Commit: "COMMIT", exp.Rollback: "ROLLBACK", exp.TruncateTable: "TRUNCATE", exp.Comment: "COMMENT",
    exp.Export: "EXPORT", exp.Into: "SELECT INTO", exp.Pivot: "PIVOT", exp.Analyze: "ANALYZE",
    exp.Grant: "GRANT", exp.Revoke: "REVOKE", exp.Refresh: "REFRESH", exp.Cache: "CACHE",
    exp.Uncache: "UNCACHE", exp.LoadData: "LOAD DATA", exp.Kill: "KILL", exp.Declare: "DECLARE",
    exp.Execute: "EXECUTE", exp.Union: "UNION", exp.Intersect: "INTERSECT", exp.Except: "EXCEPT",
    exp.Select: "SELECT", exp.Describe: "DESCRIBE", exp.Summarize: "SUMMARIZE", exp.Show: "SHOW",
}


def normal_name(name: str) -> str:
    """A function or table name as DuckDB compares it: NFKC-folded, invisible characters dropped, lower case."""
    folded = unicodedata.normalize("NFKC", name)
    return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf").lower()


def denied_reason(name: str) -> str | None:
    """Why a function of this name is refused, or None where it is not."""
    low = normal_name(name)
    if low in DENIED_FUNCTIONS:
        return DENIED_FUNCTIONS[low]
    return next((why for prefix, why in DENIED_PREFIXES.items() if low.startswith(prefix)), None)

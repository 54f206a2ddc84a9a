"""Join checks: count, beside a query's answer, whether its joins multiply rows or drop unmatched rows.

Each inner or left join is measured in isolation (its FROM side, then joined) with count queries built as
sqlglot trees, under a time budget and only while the joined tables are small enough. It only reads,
on the connection it is given, and reports what it skipped; it never changes the query it checks.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import duckdb
from sqlglot import exp

from catalog.warehouse import QueryTimeout, fetch_with_timeout

MAX_ROWS = 20_000_000  # rows of the tables a query reads, past which the checks are skipped
MAX_JOINS = 8          # joins checked in one query

# Fixed text, no user input: DuckDB's own row estimates for the default database's tables.
_SIZES_SQL = """
SELECT table_name, estimated_size FROM duckdb_tables()
WHERE database_name = current_database() AND schema_name = 'main'
"""


@dataclass
class _Join:
    select: exp.Select
    index: int
    kind: str  # "inner" or "left"
    left: str
    right: str
    key: list[str]


def join_warnings(con: duckdb.DuckDBPyConnection, query: exp.Query, tables: set[str], *,
                  timeout_s: float, max_rows: int = MAX_ROWS) -> list[str]:
    """Warnings (with exact counts) for the inner and left joins of a qualified query; notes when skipped."""
    joins = [j for sel in query.find_all(exp.Select) for j in _joins_of(sel)]
    if not joins:
        return []
    sizes = {name: size for name, size in con.execute(_SIZES_SQL).fetchall()}
    total = sum(sizes.get(t, 0) or 0 for t in tables)
    if total > max_rows:
        return [f"join checks skipped: the tables read hold {total:,} rows, more than the {max_rows:,} they count"]
    notes: list[str] = []
    if len(joins) > MAX_JOINS:
        notes.append(f"join checks cover the first {MAX_JOINS} of {len(joins)} joins")
        joins = joins[:MAX_JOINS]
    with_ = query.args.get("with_")
    deadline = time.monotonic() + timeout_s
    for join in joins:
        remaining = deadline - time.monotonic()
        sql = _count_query(join, with_).sql(dialect="duckdb")
        try:
            if remaining <= 0:
                raise QueryTimeout("out of time")
            _, rows, _ = fetch_with_timeout(con, sql, remaining, max_rows=1)
        except QueryTimeout:
            notes.append(f"join checks stopped: counting took longer than {timeout_s:g} s")
            break
        except duckdb.Error:
            continue  # a join the count cannot isolate (e.g. it needs the query's other parts)
        base, joined, unmatched = rows[0]
        matched = base - unmatched if join.kind == "inner" else base
        if joined > matched:
            key = ", ".join(join.key) if join.key else f"a key of {join.right}"
            notes.append(f"join of {join.left} to {join.right} multiplies rows: {base:,} → {joined:,} "
                         f"({key} is not unique)")
        if join.kind == "inner" and unmatched:
            notes.append(f"inner join drops {unmatched:,} of {base:,} rows of {join.left} "
                         f"that have no match in {join.right}")
    return notes


def _joins_of(select: exp.Select) -> list[_Join]:
    items = [select.args.get("from_").this] if select.args.get("from_") else []
    out = []
    for i, join in enumerate(select.args.get("joins") or []):
        items.append(join.this)
        side, kind, on = join.side.upper(), join.kind.upper(), join.args.get("on")
        if on is None or join.method or not isinstance(join.this, (exp.Table, exp.Subquery)):
            continue
        if side == "" and kind in ("", "INNER"):
            how = "inner"
        elif side == "LEFT" and kind in ("", "OUTER"):
            how = "left"
        else:
            continue
        names = {it.alias_or_name: _label(it) for it in items if isinstance(it, (exp.Table, exp.Subquery))}
        if len(names) != len(items) or any(isinstance(it, exp.Table) and isinstance(it.this, exp.Func) for it in items):
            continue
        refs = {c.table for c in on.find_all(exp.Column)}
        if not refs <= set(names) or on.find(exp.Query):
            continue  # correlated with an outer query, or a subquery inside ON: not isolable
        right_alias = join.this.alias_or_name
        left = sorted({names[r] for r in refs if r != right_alias}) or [_label(items[0])]
        key = sorted({f"{names[right_alias]}.{c.name}" for c in on.find_all(exp.Column) if c.table == right_alias})
        out.append(_Join(select, i, how, " and ".join(left), names[right_alias], key))
    return out


def _label(item: exp.Expr) -> str:
    return item.name if isinstance(item, exp.Table) and item.name else item.alias_or_name


def _count(select: exp.Select, joins: list[exp.Join], where: exp.Expr | None = None) -> exp.Subquery:
    q = exp.select(exp.Count(this=exp.Star()))
    q.set("from_", select.args["from_"].copy())
    if joins:
        q.set("joins", [j.copy() for j in joins])
    if where is not None:
        q.set("where", exp.Where(this=where))
    return exp.Subquery(this=q)


def _count_query(join: _Join, with_: exp.With | None) -> exp.Select:
    """SELECT (rows before the join), (rows after it), (rows before it with no match)."""
    before = join.select.args["joins"][: join.index]
    this = join.select.args["joins"][join.index]
    right, on = this.this, this.args["on"]
    joined = exp.Join(this=right.copy(), on=on.copy(), side="LEFT" if join.kind == "left" else None)
    no_match = exp.Not(this=exp.Exists(this=exp.select(exp.Literal.number(1)).from_(right.copy()).where(on.copy())))
    counts = exp.select(_count(join.select, before), _count(join.select, before + [joined]),
                        _count(join.select, before, no_match))
    ctes = [c.copy() for w in {id(w): w for w in (with_, join.select.args.get("with_")) if w}.values()
            for c in w.expressions]
    if ctes:
        counts.set("with_", exp.With(expressions=ctes, recursive=bool(with_ and with_.args.get("recursive"))))
    return counts

"""PII masking of query answers: which output columns derive from PII the principal may not see, and the
rewritten query that shows them masked.

Decided from each output column's lineage (a value computed from a PII column is masked, a count of it
is not); the rewrite wraps the query in an outer SELECT, so the query itself is never edited. Where the
lineage cannot be told for certain and the query touches hidden PII, it masks or refuses; it never guesses open.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
from sqlglot import exp

from catalog.column_lineage import lineage_by_position
from catalog.errors import UserError
from catalog.metadata import Catalog
from catalog.principal import Principal
from catalog.sql_guard import GuardedQuery

MASK = "****"
# The columns of DuckDB's SUMMARIZE that show values of the summarized column.
SUMMARY_VALUE_COLUMNS = ("min", "max", "avg", "std", "q25", "q50", "q75")
_INNER = "_lathe_q"


@dataclass
class MaskedQuery:
    tree: exp.Expr
    masked_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Hidden PII columns the query names anywhere (WHERE included): DuckDB's error messages quote values.
    hidden_read: list[str] = field(default_factory=list)


def hidden_pii(catalog: Catalog, principal: Principal, columns: set[str]) -> dict[str, str]:
    """Of `table.column`s, those tagged PII that `principal` may not see, with their tag."""
    out = {}
    for ref in columns:
        table, _, column = ref.partition(".")
        t = catalog.table(table)
        c = t.column(column) if t else None
        if c is not None and c.pii is not None and not principal.may_see(t.name, c.name, c.pii.value):
            out[f"{t.name}.{c.name}"] = c.pii.value
    return out


def mask_pii(con: duckdb.DuckDBPyConnection, guarded: GuardedQuery, catalog: Catalog,
             principal: Principal) -> MaskedQuery:
    """The query to run for `principal`: `guarded.tree` itself when nothing it shows is hidden PII."""
    everything = {f"{t}.{c}" for t in guarded.tables for c in guarded.schema.get(t, {})}
    hidden = hidden_pii(catalog, principal, everything)
    touched = sorted(set(hidden) & guarded.columns)
    if guarded.query is None or not hidden or guarded.kind in ("DESCRIBE", "EXPLAIN", "EXPLAIN ANALYZE"):
        return MaskedQuery(guarded.tree, hidden_read=touched)  # shapes and plans show no values
    masked = _mask_outputs(con, guarded, hidden, touched)
    masked.hidden_read = touched
    return masked


def _mask_outputs(con: duckdb.DuckDBPyConnection, guarded: GuardedQuery, hidden: dict[str, str],
                  touched: list[str]) -> MaskedQuery:
    assert guarded.query is not None
    outputs = lineage_by_position(guarded.query, guarded.schema, ignore_counted=True)
    positions: dict[int, list[str]] = {}
    for i, out in enumerate(outputs):
        bad = [s for s in out.sources if s in hidden]
        if not bad and out.uncertain:
            bad = touched  # lineage cannot see inside: assume the worst of what the query names
        if bad:
            positions[i] = bad
    if not positions:
        return MaskedQuery(guarded.tree)
    if guarded.kind == "SUMMARIZE":
        return _mask_summary(guarded, [outputs[i].name for i in positions], positions)
    return _mask_select(con, guarded, len(outputs), positions)


def _masked(value: exp.Expr) -> exp.Expr:
    # Keep NULL visible (a missing value is not PII); every other value becomes the same constant.
    return exp.Case().when(value.is_(exp.null()), exp.null()).else_(exp.Literal.string(MASK))


def _mask_select(con: duckdb.DuckDBPyConnection, guarded: GuardedQuery, expected: int,
                 positions: dict[int, list[str]]) -> MaskedQuery:
    # The output names are DuckDB's own (it names `count(*)` itself); DESCRIBE binds without running.
    try:
        described = con.execute(exp.Describe(this=guarded.tree.copy()).sql(dialect="duckdb")).fetchall()
    except duckdb.Error as e:  # binding only: the message names the problem, never a value
        raise UserError(f"DuckDB could not run the query: {str(e).strip().splitlines()[0]}") from None
    names = [r[0] for r in described]
    if len(names) != expected:
        raise UserError(
            f"cannot tell which of the {len(names)} output columns come from PII columns you have no grant "
            f"for ({', '.join(sorted({s for v in positions.values() for s in v}))}); list the columns explicitly")
    inner = [f"c{i}" for i in range(len(names))]
    sub = exp.Subquery(this=guarded.tree.copy(),
                       alias=exp.TableAlias(this=exp.to_identifier(_INNER),
                                            columns=[exp.to_identifier(c) for c in inner]))
    projections = []
    for i, name in enumerate(names):
        ref = exp.column(inner[i], table=_INNER)
        projections.append(exp.alias_(_masked(ref) if i in positions else ref, name, quoted=True))
    masked = [names[i] for i in sorted(positions)]
    sources = sorted({s for v in positions.values() for s in v})
    warning = (f"masked {len(masked)} column(s) computed from PII you have no grant for: "
               f"{', '.join(masked)} (from {', '.join(sources)})")
    return MaskedQuery(exp.select(*projections).from_(sub), masked, [warning])


def _mask_summary(guarded: GuardedQuery, names: list[str], positions: dict[int, list[str]]) -> MaskedQuery:
    hide = exp.column("column_name").isin(*[exp.Literal.string(n) for n in names])
    star = exp.Star(replace=[exp.alias_(exp.Case().when(hide, exp.null()).else_(exp.column(c)), c)
                             for c in SUMMARY_VALUE_COLUMNS])
    sub = exp.Subquery(this=guarded.tree.copy(), alias=exp.TableAlias(this=exp.to_identifier(_INNER)))
    sources = sorted({s for v in positions.values() for s in v})
    warning = (f"{', '.join(SUMMARY_VALUE_COLUMNS)} hidden for PII column(s) you have no grant for: "
               f"{', '.join(names)} (from {', '.join(sources)})")
    return MaskedQuery(exp.select(star).from_(sub), list(names), [warning])

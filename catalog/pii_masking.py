"""PII masking for a principal without the grant, in two layers: at the source, every reference to a table
with hidden PII becomes a projection of that table whose PII columns hold masked tokens, so predicates, joins,
ordering and aggregates only ever compute on masked values (as dynamic data masking does); at the output,
columns computed from PII show the mask itself. A token keeps NULL and equality (counts of distinct values
and joins on PII still work) but is salted per query, so it says nothing about the value behind it.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import duckdb
from sqlglot import exp

from catalog.column_lineage import lineage_by_position
from core.errors import UserError
from catalog.metadata import Catalog
from core.principal import Principal
from catalog.sql_guard import GuardedQuery, RefusedStatement, stored_relations

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
    rewritten: bool = False  # masked at the source: join checks, which count raw rows, are skipped


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


def mask_at_source(tree: exp.Expr, principal: Principal, catalog: Catalog) -> exp.Expr:
    """A copy of `tree` (a query) in which every reference to a stored table holding PII `principal` may not
    see reads a derived table of the same name and columns instead, whose hidden PII columns hold tokens.
    References are resolved through scopes, so a CTE of the same name is left alone. The one entry point
    for every path that runs SQL over the catalog's tables (ad hoc SQL, metrics)."""
    out = tree.copy()
    salt = secrets.token_hex(16)  # per query: a token seen in one answer matches nothing in the next
    for table in stored_relations(out):
        projection = _masked_projection(table, principal, catalog, salt)
        if projection is not None:
            table.replace(projection)
    return out


def mask_sql_at_source(con: duckdb.DuckDBPyConnection, sql: str, principal: Principal, catalog: Catalog) -> str:
    """`sql`, DuckDB text Lathe composed (a compiled metric query, with filters a person wrote), admitted by the
    same guard as any SQL and masked at the source for `principal`. Raises `RefusedStatement` or `UserError`."""
    from catalog.query_schema import warehouse_catalog
    from catalog.sql_guard import guard

    tables = warehouse_catalog(con, catalog)
    guarded = guard(sql, "duckdb", tables)
    if principal.is_admin:
        return guarded.sql
    return mask_at_source(guarded.tree, principal, tables).sql(dialect="duckdb")


def _masked_projection(table: exp.Table, principal: Principal, catalog: Catalog, salt: str) -> exp.Subquery | None:
    meta = catalog.table(table.name)
    if meta is None or not any(c.pii is not None and not principal.may_see(meta.name, c.name, c.pii.value)
                               for c in meta.columns):
        return None
    extra = [k for k, v in table.args.items() if v and k not in ("this", "db", "catalog", "alias", *_MOVABLE)]
    if extra:
        raise RefusedStatement("SELECT", f"`{table.sql(dialect='duckdb')}` ({', '.join(extra)}) cannot be read "
                                         "with PII masked; read the table plainly")
    columns = []
    for c in meta.columns:
        ref = exp.column(exp.to_identifier(c.name, quoted=True))
        hidden = c.pii is not None and not principal.may_see(meta.name, c.name, c.pii.value)
        columns.append(exp.alias_(_token(ref, salt), exp.to_identifier(c.name, quoted=True)) if hidden else ref)
    # Schema-qualified, so no CTE of the same name in an enclosing scope can stand in for the table.
    source = exp.Table(this=exp.to_identifier(meta.name, quoted=True), db=exp.to_identifier("main"))
    quoted = isinstance(table.this, exp.Identifier) and table.this.quoted
    alias = (table.args["alias"].copy() if table.args.get("alias")
             else exp.TableAlias(this=exp.to_identifier(table.name, quoted=quoted)))
    sub = exp.Subquery(this=exp.select(*columns).from_(source), alias=alias)
    for key in _MOVABLE:
        if table.args.get(key):
            sub.set(key, table.args[key])
    return sub


_MOVABLE = ("joins", "laterals", "sample")


def _token(value: exp.Expr, salt: str) -> exp.Expr:
    digest = exp.func("md5", exp.DPipe(this=exp.Literal.string(salt), expression=exp.cast(value.copy(), "VARCHAR")))
    return exp.Case().when(value.is_(exp.null()), exp.null()).else_(
        exp.DPipe(this=exp.Literal.string(MASK), expression=digest))


def mask_pii(con: duckdb.DuckDBPyConnection, guarded: GuardedQuery, catalog: Catalog,
             principal: Principal) -> MaskedQuery:
    """The statement to run for `principal`: `guarded.tree` itself when it reads no PII hidden from them;
    else masked at the source and, where output columns show values computed from PII, at the output."""
    everything = {f"{t}.{c}" for t in guarded.tables for c in guarded.schema.get(t, {})}
    hidden = hidden_pii(catalog, principal, everything)
    touched = sorted(set(hidden) & guarded.columns)
    if not hidden or guarded.kind == "DESCRIBE":
        return MaskedQuery(guarded.tree, hidden_read=touched)  # shapes show no values
    if guarded.kind == "EXPLAIN ANALYZE":
        raise RefusedStatement(guarded.kind, "it shows the row counts of every step, which tell about PII values "
                                             f"you have no grant for ({', '.join(sorted(hidden))}); use EXPLAIN")
    tree = _at_source(guarded, principal, catalog)
    if guarded.query is None or guarded.kind == "EXPLAIN":
        return MaskedQuery(tree, hidden_read=touched, rewritten=True)
    masked = _mask_outputs(con, guarded, tree, hidden, touched)
    masked.hidden_read, masked.rewritten = touched, True
    return masked


def _at_source(guarded: GuardedQuery, principal: Principal, catalog: Catalog) -> exp.Expr:
    tree = guarded.tree
    if isinstance(tree, exp.Command):  # EXPLAIN: the query inside is kept as text
        import sqlglot

        inner = mask_at_source(sqlglot.parse_one(tree.expression.name, read="duckdb"), principal, catalog)
        return exp.Command(this=tree.this, expression=exp.Literal.string(inner.sql(dialect="duckdb")))
    if isinstance(tree, exp.Summarize):
        target = tree.this
        query = exp.select("*").from_(target.copy()) if isinstance(target, exp.Table) else target
        return exp.Summarize(this=mask_at_source(query, principal, catalog))
    return mask_at_source(tree, principal, catalog)


def _mask_outputs(con: duckdb.DuckDBPyConnection, guarded: GuardedQuery, tree: exp.Expr, hidden: dict[str, str],
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
        return MaskedQuery(tree)
    if guarded.kind == "SUMMARIZE":
        return _mask_summary(tree, [outputs[i].name for i in positions], positions)
    return _mask_select(con, tree, len(outputs), positions)


def _masked(value: exp.Expr) -> exp.Expr:
    # Keep NULL visible (a missing value is not PII); every other value becomes the same constant.
    return exp.Case().when(value.is_(exp.null()), exp.null()).else_(exp.Literal.string(MASK))


def _mask_select(con: duckdb.DuckDBPyConnection, tree: exp.Expr, expected: int,
                 positions: dict[int, list[str]]) -> MaskedQuery:
    # The output names are DuckDB's own (it names `count(*)` itself); DESCRIBE binds without running.
    try:
        described = con.execute(exp.Describe(this=tree.copy()).sql(dialect="duckdb")).fetchall()
    except duckdb.Error as e:  # binding only: the message names the problem, never a value
        raise UserError(f"DuckDB could not run the query: {str(e).strip().splitlines()[0]}") from None
    names = [r[0] for r in described]
    if len(names) != expected:
        raise UserError(
            f"cannot tell which of the {len(names)} output columns come from PII columns you have no grant "
            f"for ({', '.join(sorted({s for v in positions.values() for s in v}))}); list the columns explicitly")
    inner = [f"c{i}" for i in range(len(names))]
    sub = exp.Subquery(this=tree.copy(),
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


def _mask_summary(tree: exp.Expr, names: list[str], positions: dict[int, list[str]]) -> MaskedQuery:
    hide = exp.column("column_name").isin(*[exp.Literal.string(n) for n in names])
    star = exp.Star(replace=[exp.alias_(exp.Case().when(hide, exp.null()).else_(exp.column(c)), c)
                             for c in SUMMARY_VALUE_COLUMNS])
    sub = exp.Subquery(this=tree.copy(), alias=exp.TableAlias(this=exp.to_identifier(_INNER)))
    sources = sorted({s for v in positions.values() for s in v})
    warning = (f"{', '.join(SUMMARY_VALUE_COLUMNS)} hidden for PII column(s) you have no grant for: "
               f"{', '.join(names)} (from {', '.join(sources)})")
    return MaskedQuery(exp.select(star).from_(sub), list(names), [warning])

"""The SQL guard: admits one read statement, decided on sqlglot's parsed tree, and names what it refuses.

It transpiles other dialects to DuckDB, refuses writes, commands, file and settings functions, dynamic SQL
and other databases by name, and checks every table and column against the catalog. It is one layer of
two: the statement still runs on DuckDB's sandboxed reader. It never looks at SQL text with regexes.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.tokens import TokenType

from core.errors import UserError
from catalog.metadata import Catalog
from catalog.sql_bounds import bound_sizes
from catalog.query_schema import sqlglot_schema
from catalog.sql_policy import NOT_READS, STATEMENT_NAMES, TABLE_FUNCTIONS, denied_reason, normal_name
from catalog.suggestions import close_matches, unknown

READS = "SELECT, WITH … SELECT, UNION/INTERSECT/EXCEPT, DESCRIBE, SHOW, SUMMARIZE and EXPLAIN"
_ONLY_READS = (f"only read statements run here ({READS}); a new table is made with "
               "`lathe catalog derive` or an approved plan step")

_ONE_STATEMENT = "send exactly one statement; several in one text are never run"
_SHOW_ONLY = "only SHOW TABLES, SHOW ALL TABLES and SHOW <table> run here"
_SHOWABLE = frozenset({"TABLES", "ALL TABLES"})
_PATH_CHARS = frozenset("./\\:*?~@$")


class RefusedStatement(UserError):
    """A statement the guard will not run; the message names its type and why."""

    def __init__(self, statement: str, why: str):
        self.statement, self.why = statement, why
        super().__init__(f"{statement} refused: {why}")

    def __reduce__(self):  # keeps it picklable (checkpoints and job results carry errors)
        return (type(self), (self.statement, self.why))


@dataclass
class GuardedQuery:
    """One admitted statement, ready to run on the sandboxed reader."""
    tree: exp.Expr
    kind: str
    tables: set[str] = field(default_factory=set)
    columns: set[str] = field(default_factory=set)  # `table.column` of every column it names
    # The read query inside (the statement itself for SELECT), qualified against the catalog; None where the
    # statement reads no rows (DESCRIBE of a table, SHOW).
    query: exp.Query | None = None
    schema: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def sql(self) -> str:
        return self.tree.sql(dialect="duckdb")


def guard(sql: str, dialect: str | None, catalog: Catalog, *, database: str = "warehouse") -> GuardedQuery:
    """Parse `sql` (in `dialect`, default DuckDB), admit it only if it is one read statement over the
    catalog's tables, and return it transpiled to DuckDB. Raises `RefusedStatement` or `UserError`."""
    read = _dialect(dialect)
    if not sql or not sql.strip():
        raise UserError("no SQL given: write one read statement, e.g. SELECT * FROM orders LIMIT 10")
    guarded = _Checker(catalog, database).statement(_parse_one(sql, read), read)
    if read != "duckdb":
        # Judged once as written (refusals speak the user's dialect), then again as the DuckDB text that
        # will run, so nothing the translation adds escapes the checks.
        duck = _duckdb_text(guarded.tree)
        guarded = _Checker(catalog, database).statement(_parse_one(duck, "duckdb"), "duckdb")
    _final_check(guarded)
    guarded.tree = _bounded(guarded.tree)
    return guarded


def _bounded(tree: exp.Expr) -> exp.Expr:
    """The statement with every size-making call bounded (see `catalog.sql_bounds`), EXPLAIN's query included."""
    if isinstance(tree, exp.Command):
        inner = bound_sizes(_parse_one(tree.expression.name, "duckdb"))
        return exp.Command(this=tree.this, expression=exp.Literal.string(inner.sql(dialect="duckdb")))
    return bound_sizes(tree)


def unknown_in(kind: str, name: str, candidates: list[str] | dict, where: str) -> str:
    """`unknown(…)` with the place named: "no column `emial` in table `customers`; did you mean `email`?"."""
    message = unknown(kind, name, candidates)
    head = f"no {kind} `{name}`"
    return head + f" in {where}" + message[len(head):]


def statement_name(node: exp.Expr | None, sql: str = "") -> str:
    """The SQL keyword a statement starts with, as a person would name it (`DELETE`, `CREATE TABLE`)."""
    if isinstance(node, exp.Create):
        return f"CREATE {node.args.get('kind') or ''}".strip()
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    for cls in type(node).__mro__ if node is not None else ():
        if cls in STATEMENT_NAMES:
            return STATEMENT_NAMES[cls]
    words = _tokens(sql)
    return words[0].text.upper() if words else "statement"


# ---- parsing -----------------------------------------------------------------------------------------


def _dialect(dialect: str | None) -> str:
    name = (dialect or "duckdb").lower()
    try:
        Dialect.get_or_raise(name)
    except ValueError:
        known = [d for d in Dialect.classes if d]
        raise UserError(unknown("SQL dialect", name, known)) from None
    return name


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    # sqlglot logs a warning when it falls back to a raw Command; the guard decides on those itself.
    log = logging.getLogger("sqlglot")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _tokens(sql: str, dialect: str = "duckdb") -> list:
    try:
        return sqlglot.tokenize(sql, read=dialect)
    except SqlglotError:
        return []


_READ_STARTS = {"SELECT", "WITH", "FROM", "VALUES", "(", "DESCRIBE", "DESC", "SHOW", "SUMMARIZE", "EXPLAIN", "TABLE"}


def _parse_one(sql: str, read: str) -> exp.Expr:
    try:
        with _quiet_sqlglot():
            # A comment after the last `;` parses as an empty statement of its own.
            parsed = sqlglot.parse(sql, read=read)
            statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    except SqlglotError as e:
        starts = _statement_starts(sql, read)
        if len(starts) > 1:
            raise RefusedStatement(f"{len(starts)} statements ({', '.join(starts)})", _ONE_STATEMENT) from None
        if starts and starts[0] not in _READ_STARTS:
            raise RefusedStatement(starts[0], _ONLY_READS) from None
        raise UserError(f"the SQL does not parse as {read}: {_parse_problem(e)}") from None
    if not statements:
        raise UserError("no SQL statement given (only comments or semicolons)")
    if len(statements) > 1:
        kinds = ", ".join(statement_name(s) for s in statements)
        raise RefusedStatement(f"{len(statements)} statements ({kinds})", _ONE_STATEMENT)
    return statements[0]


def _parse_problem(e: SqlglotError) -> str:
    errors = getattr(e, "errors", None)
    if not errors:
        return _first_line(e)
    first = errors[0]
    what = str(first.get("description", "")).split(" but got <Token", 1)[0]
    near = first.get("highlight")
    return f"{what} near `{near}` (line {first.get('line')}, column {first.get('col')})" if near else what


def _statement_starts(sql: str, read: str) -> list[str]:
    """The first word of each statement, split at the tokenizer's semicolons (for text that does not parse)."""
    starts, expect = [], True
    for tok in _tokens(sql, read) or _tokens(sql):
        if tok.token_type == TokenType.SEMICOLON:
            expect = True
        elif expect:
            starts.append(tok.text.upper())
            expect = False
    return starts


def _duckdb_text(tree: exp.Expr) -> str:
    try:
        return tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as e:
        raise UserError(f"this query cannot be written in DuckDB's SQL: {_first_line(e)}") from None


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


# ---- the checks --------------------------------------------------------------------------------------


class _Checker:
    def __init__(self, catalog: Catalog, database: str):
        self.catalog = catalog
        self.database = database.lower()
        self.schema = sqlglot_schema(catalog)
        self.tables: set[str] = set()
        self.columns: set[str] = set()

    def statement(self, node: exp.Expr, read: str) -> GuardedQuery:
        if isinstance(node, exp.Command):
            return self.command(node, read)
        if isinstance(node, (exp.Select, exp.SetOperation)):
            query = self.read_query(node, statement_name(node))
            return self.result(node, statement_name(node), query)
        if isinstance(node, exp.Describe):
            return self.describe_like(node, "DESCRIBE")
        if isinstance(node, exp.Summarize):
            return self.describe_like(node, "SUMMARIZE")
        if isinstance(node, exp.Show):
            what = str(node.this or "").upper()
            if what not in _SHOWABLE or any(v for k, v in node.args.items() if k != "this"):
                raise RefusedStatement(f"SHOW {what}".strip(), _SHOW_ONLY)
            return self.result(node, "SHOW", None)
        raise RefusedStatement(statement_name(node, node.sql(dialect=read)), _ONLY_READS)

    def result(self, tree: exp.Expr, kind: str, query: exp.Query | None) -> GuardedQuery:
        return GuardedQuery(tree=tree, kind=kind, tables=set(self.tables), columns=set(self.columns),
                            query=query, schema=self.schema)

    def command(self, node: exp.Command, read: str) -> GuardedQuery:
        keyword = str(node.this).upper()
        rest = node.expression.name if isinstance(node.expression, exp.Literal) else str(node.expression or "")
        if keyword == "SHOW":
            # `SHOW orders` is DuckDB's DESCRIBE; anything else SHOW can list stays out.
            try:
                table = exp.to_table(rest.strip(), dialect=read)
            except SqlglotError:
                table = None
            if table is None or table.name.lower() not in self._known_tables():
                hint = ""
                if table is not None and (hits := close_matches(table.name, self.schema)):
                    hint = "; did you mean " + " or ".join(f"`SHOW {h}`" for h in hits) + "?"
                raise RefusedStatement(f"SHOW {rest.strip()}", _SHOW_ONLY + hint)
            return self.describe_like(exp.Describe(this=table), "DESCRIBE")
        if keyword != "EXPLAIN":
            raise RefusedStatement(keyword, _ONLY_READS)
        words = _tokens(rest, read)
        analyze = bool(words) and words[0].text.upper() == "ANALYZE"
        kind = "EXPLAIN ANALYZE" if analyze else "EXPLAIN"
        first = 1 if analyze else 0
        if len(words) <= first:
            raise UserError(f"{kind} needs a query to explain, e.g. {kind} SELECT * FROM orders")
        start = words[first].start
        inner = _parse_one(rest[start:], read)
        if not isinstance(inner, (exp.Select, exp.SetOperation)):
            raise RefusedStatement(f"{kind} {statement_name(inner, rest[start:])}",
                                   f"{kind} runs only of a read query ({READS})")
        query = self.read_query(inner, kind)
        tree = exp.Command(this=kind, expression=exp.Literal.string(inner.sql(dialect="duckdb")))
        return self.result(tree, kind, query)

    def describe_like(self, node: exp.Describe | exp.Summarize, kind: str) -> GuardedQuery:
        target = node.this
        if isinstance(target, (exp.Select, exp.SetOperation)):
            return self.result(node, kind, self.read_query(target, kind))
        if isinstance(target, exp.Table) and not isinstance(target.this, exp.Func):
            self.check_table(target, kind)
            if kind == "DESCRIBE":
                return self.result(node, kind, None)
            # SUMMARIZE shows values (min, max): analyse it as the query over the whole table.
            whole = exp.select("*").from_(target.copy())
            return self.result(node, kind, self.read_query(whole, kind))
        raise RefusedStatement(f"{kind} {statement_name(target)}", f"{kind} takes a table name or a read query")

    # -- a read query ---------------------------------------------------------------------------------

    def read_query(self, query: exp.Query, kind: str) -> exp.Query:
        """Check a SELECT or set operation; return its copy qualified against the catalog."""
        for node in query.walk():
            if isinstance(node, NOT_READS):
                name = statement_name(node)
                raise RefusedStatement(name, f"a query may only read; this one holds a {name}")
            if isinstance(node, exp.Pivot):
                # Their output columns are made from data values, which name checks and lineage cannot follow.
                raise RefusedStatement(kind, "PIVOT and UNPIVOT are not supported here; aggregate with "
                                             "count(*) FILTER (WHERE …) or CASE instead")
            if isinstance(node, exp.Columns):
                raise RefusedStatement(kind, "COLUMNS(…) star expressions are not supported here; list the columns")
            if isinstance(node, exp.Func):
                self.check_function(node, kind)
            elif isinstance(node, exp.PositionalColumn):
                raise RefusedStatement(kind, f"positional column references ({node.sql('duckdb')}) are not "
                                             "supported here; name the column")
        for table in stored_relations(query, kind):
            self.check_table(table, kind)
        try:
            qualified = qualify(query.copy(), schema=self.schema, dialect="duckdb", validate_qualify_columns=False,
                                allow_partial_qualification=True, quote_identifiers=False, identify=False)
        except SqlglotError as e:
            raise UserError(f"cannot check the names in this query: {_first_line(e)}") from None
        self.check_columns(qualified)
        return qualified

    def check_function(self, func: exp.Func, kind: str) -> None:
        for name in _function_names(func):
            why = denied_reason(name)
            if why:
                raise RefusedStatement(kind, f"function `{name}()` {why}")
        in_from = isinstance(func.parent, (exp.Table, exp.Lateral)) and func.parent.this is func
        if in_from or isinstance(func, exp.Unnest):
            names = _function_names(func) or {normal_name(func.sql_name())}
            if not names & TABLE_FUNCTIONS:
                name = sorted(names)[0]
                raise RefusedStatement(kind, f"table function `{name}()` is not allowed here; "
                                             f"the allowed ones are {', '.join(sorted(TABLE_FUNCTIONS))}")

    def check_table(self, table: exp.Table, kind: str) -> None:
        """A reference that scope analysis found to name a stored relation: it must be a catalogued table."""
        if isinstance(table.this, exp.Func):
            return  # checked as a function
        name = table.name
        shown = table.sql(dialect="duckdb")
        if set(name) & _PATH_CHARS or not name:
            raise RefusedStatement(kind, f"table reference `{name}` is a file path or URL; only the warehouse's "
                                         "tables can be read")
        if table.catalog and table.catalog.lower() != self.database:
            raise RefusedStatement(kind, f"`{shown}` names another database (`{table.catalog}`); only the "
                                         "warehouse's tables can be read")
        if table.db and table.db.lower() != "main":
            raise RefusedStatement(kind, f"`{shown}` names the schema or database `{table.db}`; only the "
                                         "warehouse's own tables (schema `main`) can be read")
        real = self._known_tables().get(name.lower())
        if real is None:
            raise UserError(unknown("table", name, self.schema))
        self.tables.add(real)

    def check_columns(self, qualified: exp.Query) -> None:
        for whole in qualified.find_all(exp.TableColumn):
            # DuckDB reads `SELECT c FROM customers c` as the whole row, as one struct value.
            raise UserError(f"`{whole.name}` stands for a whole row of a table; name the columns you need instead")
        for scope in traverse_scope(qualified):
            query = scope.expression
            outputs = {s.lower() for s in query.named_selects} if isinstance(query, exp.Query) else set()
            for col in scope.columns:
                name = col.name
                if not name or isinstance(col.this, exp.Star):
                    continue
                if not col.table:
                    if name.lower() in outputs and not _in_projection(col, scope.expression):
                        continue  # WHERE / GROUP BY naming an output column, as DuckDB allows
                    whole = _find_source(scope, name)
                    if whole is not None:
                        raise UserError(f"`{name}` stands for a whole row of `{_source_label(whole, name)}`; "
                                        "name the columns you need instead")
                    raise UserError(unknown("column", name, self._columns_in(scope)))
                source = _find_source(scope, col.table)
                if source is None:
                    names = [k for k in scope.sources]
                    where = f"this query (`{col.sql('duckdb')}`)"
                    raise UserError(unknown_in("table or alias", col.table, names, where))
                if isinstance(source, exp.Table):
                    if isinstance(source.this, exp.Func):
                        continue
                    real = self._known_tables().get(source.name.lower())
                    if real is None:
                        continue  # a CTE name resolved through an outer scope
                    cols = list(self.schema[real])
                    # `FROM customers AS c(id, nm, …)` renames the first columns, in order.
                    alias = source.args.get("alias")
                    renamed = [c.name for c in alias.columns] if alias is not None else []
                    names = renamed + cols[len(renamed):]
                    index = next((i for i, c in enumerate(names) if c.lower() == name.lower()), None)
                    if index is None or index >= len(cols):
                        raise UserError(unknown_in("column", name, names, f"table `{real}`"))
                    self.columns.add(f"{real}.{cols[index]}")
                elif isinstance(source, Scope) and isinstance(source.expression, exp.Query):
                    outs = source.expression.named_selects
                    if outs and "*" not in outs and name.lower() not in {o.lower() for o in outs}:
                        raise UserError(unknown_in("column", name, outs, f"`{col.table}`"))

    def _known_tables(self) -> dict[str, str]:
        return {t.lower(): t for t in self.schema}

    def _columns_in(self, scope: Scope) -> list[str]:
        out: list[str] = []
        for source in scope.sources.values():
            if isinstance(source, exp.Table):
                out += list(self.schema.get(self._known_tables().get(source.name.lower(), ""), {}))
            elif isinstance(source, Scope) and isinstance(source.expression, exp.Query):
                out += source.expression.named_selects
        return out


def stored_relations(query: exp.Expr, kind: str = "SELECT") -> list[exp.Table]:
    """Every table reference of `query` that names a stored relation, found through sqlglot's scopes: a name
    bound to a CTE visible where it stands is not one, whatever that name means elsewhere in the statement;
    table functions are not either. A reference no scope places is refused rather than guessed at."""
    # Scopes are built on a copy with DuckDB's case-insensitive names folded; both trees walk in one order.
    folded = normalize_identifiers(query.copy(), dialect="duckdb")
    original = dict(zip(map(id, folded.walk()), query.walk()))
    placed: set[int] = set()
    out: list[exp.Table] = []
    try:
        scopes = traverse_scope(folded)
    except (SqlglotError, ValueError) as e:
        raise RefusedStatement(kind, f"cannot tell what each table name refers to: {_first_line(e)}") from None
    for scope in scopes:
        for table in scope.tables:
            placed.add(id(table))
            if isinstance(table.this, exp.Func):
                continue
            is_cte = not table.db and not table.catalog and table.name in scope.cte_sources
            if not is_cte:
                out.append(original[id(table)])  # type: ignore[arg-type]
    for table in folded.find_all(exp.Table):
        if id(table) not in placed and not isinstance(table.this, exp.Func):
            raise RefusedStatement(kind, f"cannot tell what `{table.sql(dialect='duckdb')}` refers to here; "
                                         "read tables in FROM, JOIN or a subquery")
    return out


def _find_source(scope: Scope | None, name: str) -> exp.Table | Scope | None:
    """The FROM item called `name` in this scope or an enclosing one (for correlated subqueries)."""
    low = name.lower()
    while scope is not None:
        for key, source in scope.sources.items():
            if key.lower() == low:
                return source
        scope = scope.parent
    return None


def _in_projection(col: exp.Column, query: exp.Expr) -> bool:
    node: exp.Expr = col
    while node.parent is not None and node.parent is not query:
        node = node.parent
    return node.parent is query and node.arg_key == "expressions"


def _source_label(source: exp.Table | Scope, fallback: str) -> str:
    return source.name if isinstance(source, exp.Table) else fallback


def _function_names(func: exp.Func) -> set[str]:
    if isinstance(func, exp.Anonymous):
        return {normal_name(func.name)}
    return {normal_name(n) for n in type(func).sql_names()}


def _final_check(guarded: GuardedQuery) -> None:
    """Read back the exact text DuckDB will get and check it again: a transpiler that turned a read into
    something else (`SELECT … INTO` becomes `CREATE TABLE … AS` in DuckDB) is caught here."""
    text = _duckdb_text(guarded.tree)
    if isinstance(guarded.tree, exp.Command):
        text = guarded.tree.expression.name
        expected: tuple[type, ...] = (exp.Select, exp.SetOperation)
    else:
        expected = (type(guarded.tree),)
    try:
        with _quiet_sqlglot():
            again = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except SqlglotError as e:
        raise RefusedStatement(guarded.kind, f"its DuckDB form does not read back cleanly: {_first_line(e)}") from None
    if len(again) != 1 or not isinstance(again[0], expected):
        raise RefusedStatement(guarded.kind, f"its DuckDB form is {statement_name(again[0] if again else None, text)}, "
                                             "not a read")
    for node in again[0].walk():
        if isinstance(node, NOT_READS) and node is not again[0]:
            raise RefusedStatement(statement_name(node), "a query may only read")
    words = _tokens(text)
    for i, tok in enumerate(words[:-1]):
        if tok.token_type != TokenType.STRING and words[i + 1].token_type == TokenType.L_PAREN:
            why = denied_reason(tok.text)
            if why:
                raise RefusedStatement(guarded.kind, f"function `{normal_name(tok.text)}()` {why}")

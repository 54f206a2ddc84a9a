"""Where rows come from: a catalog `Table` or one read `Query` (together a `DataSource`), the one check that a spec
gives exactly one of `table` and `sql` (`SourceFields`), and the parsing of one argument that may be either.

Parsing only tells the two apart; what a query reads is checked by the SQL guard when it runs.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

import sqlglot
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from sqlglot import exp

from catalog.suggestions import close_matches, unknown
from core.errors import UserError

ONE_SOURCE = ("give exactly one of `table` and `sql`: the rows come from exactly one of a catalog table and a SQL "
              "query")
_ASK = "a catalog table or one SELECT or WITH query"


class Table(BaseModel):
    """All rows of a catalog table."""
    model_config = ConfigDict(frozen=True)

    kind: Literal["table"] = "table"
    name: str = Field(min_length=1, description="the catalog table's name")

    def statement(self) -> str:
        return exp.select(exp.Star()).from_(exp.to_table(self.name)).sql(dialect="duckdb")

    def fields(self) -> dict[str, str]:
        return {"table": self.name}


class Query(BaseModel):
    """The rows of one read-only SQL query."""
    model_config = ConfigDict(frozen=True)

    kind: Literal["query"] = "query"
    sql: str = Field(min_length=1, description="one read-only SQL query")

    def statement(self) -> str:
        return self.sql

    def fields(self) -> dict[str, str]:
        return {"sql": self.sql}


DataSource = Annotated[Table | Query, Field(discriminator="kind")]
_SOURCE: TypeAdapter[Table | Query] = TypeAdapter(DataSource)


def source_of(table: str | None, sql: str | None) -> Table | Query:
    """The source that exactly one of `table` and `sql` names."""
    if (table is None) == (sql is None):
        raise UserError(ONE_SOURCE)
    return Table(name=table) if table is not None else Query(sql=str(sql))


class SourceFields(BaseModel):
    """The `table` or `sql` a spec reads, exactly one; `source=` (a `Table` or `Query`) is taken as input too."""

    table: str | None = Field(None, min_length=1, description="a catalog table whose rows are read")
    sql: str | None = Field(None, min_length=1, description="or one read-only SQL query whose rows are read")

    @model_validator(mode="before")
    @classmethod
    def _from_source(cls, data: Any) -> Any:
        if isinstance(data, dict) and "source" in data:
            data = dict(data)
            given = data.pop("source")
            if data.get("table") is not None or data.get("sql") is not None:
                raise UserError(ONE_SOURCE)
            try:
                data.update(_SOURCE.validate_python(given).fields())
            except ValidationError as e:
                err = e.errors()[0]
                where = "".join(f"`{x}` " for x in err["loc"][1:])
                raise UserError(f"`source` is a table ({{\"kind\": \"table\", \"name\": …}}) or a query "
                                f"({{\"kind\": \"query\", \"sql\": …}}): {where}{err['msg']}") from None
        return data

    @model_validator(mode="after")
    def _one_source(self) -> Any:
        source_of(self.table, self.sql)
        return self

    @property
    def source(self) -> Table | Query:
        return source_of(self.table, self.sql)


def parse_source(text: str, tables: Iterable[str]) -> Table | Query:
    """One argument as a source: a name of one of `tables` (bare, quoted, `main.`-qualified, any case) is a `Table`,
    one SELECT or WITH query a `Query`; anything else is a `UserError` saying why."""
    known = {t.lower(): t for t in tables}
    given = text.strip().rstrip(";").strip()
    if not given:
        raise UserError("no data given: name a catalog table or write one SELECT or WITH query")
    if given.lower() in known:  # the name as the catalog spells it, spaces and all
        return Table(name=known[given.lower()])
    try:
        trees = [t for t in sqlglot.parse(given, dialect="duckdb") if t is not None]
    except sqlglot.errors.SqlglotError as e:
        first = str(e).splitlines()[0]
        raise UserError(f"`{given}` does not parse as SQL ({first}): give {_ASK}") from None
    if len(trees) != 1:
        raise UserError(f"`{given}` holds {len(trees)} statements: give one table name or one query")
    tree = trees[0]
    if isinstance(tree, exp.Column) and isinstance(tree.this, exp.Identifier):
        return _table(given, exp.to_table(tree.sql(dialect="duckdb"), dialect="duckdb"), known)
    if isinstance(tree, exp.Query):
        return Query(sql=given)
    if isinstance(tree, (exp.Alias, exp.Column, exp.Identifier, exp.Literal)):
        hits = close_matches(given, known.values())
        hint = f"; did you mean `{hits[0]}`? (quote a name with spaces: \"{hits[0]}\")" if hits else ""
        raise UserError(f"`{given}` is neither a catalog table nor a SELECT or WITH query{hint}")
    from catalog.sql_guard import RefusedStatement, statement_name  # the guard's names for what it refuses

    raise RefusedStatement(statement_name(tree, given), f"`{given}` is not a read; give {_ASK}")


def _table(given: str, table: exp.Table, known: dict[str, str]) -> Table:
    if table.catalog or (table.db and table.db.lower() != "main"):
        where = table.db if not table.catalog else f"{table.catalog}.{table.db}"
        raise UserError(f"`{given}` names the schema `{where}`: catalog tables are in schema `main`")
    real = known.get(table.name.lower())
    if real is None:
        raise UserError(unknown("table", table.name, known.values()))
    return Table(name=real)

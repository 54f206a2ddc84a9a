"""A training request proposed from the catalog: the label (churn from an activity table, or a column of the entity or
a sum over its lines) in words and as one read-only query built as sqlglot trees, the features (feature views on the
entity key, the entity's and its parents' columns, activity before the label time), each with why, and what was left
out and why (PII, identifiers, free text, values from after the label time, the label's own source). Starts nothing."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlglot import exp, parse_one

from catalog.metadata import Catalog, Table
from catalog.store import CatalogStore
from catalog.suggestions import unknown
from catalog.warehouse import connect_reader
from core.errors import UserError
from core.workspace import Workspace
from runtimes.tabular.spec import Family, Task, TrainSpec

CHURN = "churn"
_TIME_TYPES = ("TIMESTAMP", "DATE")
_NUMBER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL",
                 "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_FREE_TEXT_SHARE = 0.2  # text columns with more distinct values than this share of rows describe one row, not a kind
_FREE_TEXT_MIN = 50


class TrainAsk(BaseModel):
    """What a plain request asks, read into catalog names; the proposal fills in everything else."""
    model_config = ConfigDict(extra="forbid")
    entity: str = Field(min_length=1, description="the catalog table with one row per thing predicted")
    target: str = Field(min_length=1, description="`churn`, a column of the entity, or `table.column` of its lines")
    horizon_days: int = Field(30, ge=1, description="churn: days after the cutoff without activity")
    lookback_days: int = Field(90, ge=1, description="activity features: days before the label time")
    snapshots: int = Field(12, ge=2, description="churn: monthly cutoffs, the latest with a whole horizon after it")
    sources: list[str] = Field(default_factory=list, description="tables to draw features from (default: all related)")
    only: list[str] = Field(default_factory=list, description="the columns of the entity and its parents to use, "
                                                              "when the request names them (default: every usable one)")
    task: Task | None = None
    family: Family = "lightgbm"
    metric: str | None = None
    trials: int | None = None
    minutes: float | None = None
    name: str | None = None


@dataclass
class Proposal:
    spec: TrainSpec
    entity: str
    definition: str  # the label in plain words
    features: list[tuple[list[str], str]]  # (feature columns or views, why)
    left_out: list[tuple[list[str], str]]  # (columns, why)

    def explain(self) -> str:
        label = self.spec.label
        lines = [f"label: `{label.column}` for each row of `{self.entity}` — {self.definition}",
                 "label SQL (read-only, checked by the SQL guard):",
                 *("    " + line for line in parse_one(label.source, dialect="duckdb").sql(
                     dialect="duckdb", pretty=True).splitlines()),
                 f"features ({len(self.spec.columns) + len(self.spec.features)}):"]
        lines += [f"  - {', '.join(f'`{n}`' for n in names)} — {why}" for names, why in self.features]
        if self.left_out:
            lines.append("left out:")
            lines += [f"  - {', '.join(f'`{n}`' for n in names)} — {why}" for names, why in self.left_out]
        return "\n".join(lines)


@dataclass
class _Source:
    """One table as features see it: its catalog entry and the key its rows join on."""
    table: Table
    key: str  # the column joining it to the row (the entity key or a parent's key)


def propose(ws: Workspace, ask: TrainAsk | dict[str, Any]) -> Proposal:
    if not isinstance(ask, TrainAsk):
        try:
            ask = TrainAsk.model_validate(ask)
        except ValidationError as e:
            err = e.errors()[0]
            raise UserError(f"training request: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    catalog = CatalogStore(ws).load()
    entity = _table(catalog, ask.entity)
    if not entity.primary_key:
        raise UserError(f"table `{entity.name}` has no primary key in the catalog: one row per thing predicted needs "
                        "one (set `primary_key` in its catalog YAML)")
    key = entity.primary_key[0]
    for name in ask.sources:
        _table(catalog, name)
    with connect_reader(ws) as con:
        build = _Builder(ws, con, catalog, entity, key, ask)
        if ask.target.lower() == CHURN:
            build.churn()
        else:
            build.column_target()
        build.features()
    tree = build.tree
    spec = TrainSpec.parse({
        "label": {"source": tree.sql(dialect="duckdb"), "column": build.label, "entity": key, "time": build.time},
        "features": build.views, "columns": build.columns, "task": ask.task, "family": ask.family,
        "metric": ask.metric, "trials": ask.trials, "minutes": ask.minutes, "name": ask.name})
    return Proposal(spec=spec, entity=entity.name, definition=build.definition, features=build.why,
                    left_out=[(cols, why) for why, cols in build.left_out.items() if cols])


def _table(catalog: Catalog, name: str) -> Table:
    t = catalog.table(name)
    if t is None:
        raise UserError(unknown("table", name, sorted(catalog.tables)))
    return t


def _is_time(c: Any) -> bool:
    return str(c.type).upper().startswith(_TIME_TYPES)


def _is_number(c: Any) -> bool:
    return str(c.type).upper().split("(")[0] in _NUMBER_TYPES


@lru_cache(maxsize=64)
def _template(sql: str) -> exp.Expr:
    return parse_one(sql, dialect="duckdb")


def _fill(sql: str, names: dict[str, str], **values: Any) -> exp.Expr:
    """A fixed query shape with its upper-case identifiers replaced by catalog names and `:placeholders` by values."""
    def rename(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Identifier) and node.this in names:
            return exp.to_identifier(names[node.this])
        return node

    tree = _template(sql).copy().transform(rename)
    return exp.replace_placeholders(tree, **values) if values else tree


def _put(tree: exp.Expr, column: str, value: exp.Expr) -> exp.Expr:
    """`tree` with every bare column named `column` (a slot of a query shape) replaced by a copy of `value`."""
    return tree.transform(lambda n: value.copy() if isinstance(n, exp.Column) and not n.table and n.name == column
                          else n)


def _days(n: int) -> exp.Expr:
    return exp.Interval(this=exp.Literal.string(str(n)), unit=exp.Var(this="DAY"))


_CHURN = """
WITH cutoffs AS (SELECT CAST(range AS TIMESTAMP) AS cutoff
                 FROM range(CAST(:first AS TIMESTAMP), CAST(:last AS TIMESTAMP), INTERVAL 1 MONTH)),
snapshots AS (SELECT DISTINCT a.FK, c.cutoff FROM ACTIVITY AS a JOIN cutoffs AS c
              ON a.AT >= c.cutoff - :lookback AND a.AT < c.cutoff),
after AS (SELECT s.FK, s.cutoff, count(a.FK) AS n FROM snapshots AS s LEFT JOIN ACTIVITY AS a
          ON a.FK = s.FK AND a.AT >= s.cutoff AND a.AT < s.cutoff + :horizon GROUP BY s.FK, s.cutoff)
SELECT s.FK AS KEY, s.cutoff, CASE WHEN s.n > 0 THEN 0 ELSE 1 END AS LABEL
FROM after AS s JOIN ENTITY AS e ON e.KEY = s.FK
"""
_OWN = "SELECT e.KEY, e.AT, LABELVALUE AS LABEL FROM ENTITY AS e WHERE NOT LABELVALUE IS NULL"
_OWN_NO_TIME = "SELECT e.KEY, LABELVALUE AS LABEL FROM ENTITY AS e WHERE NOT LABELVALUE IS NULL"
_SUMMED = "(SELECT sum(l.COL) FROM LINES AS l WHERE l.FK = e.KEY)"
# One grouped join per activity table (correlated subqueries, one per feature, grow slow together).
_ACTIVITY = """
SELECT r.k, r.at, count(x.FK) FILTER (WHERE x.AT >= r.at - :lookback) AS n,
       date_diff('day', CAST(max(x.AT) AS TIMESTAMP), CAST(r.at AS TIMESTAMP)) AS since
FROM ROWS AS r JOIN T AS x ON x.FK = r.k AND x.AT < r.at GROUP BY r.k, r.at
"""
_WINDOW_SUM = "sum(x.COL) FILTER (WHERE x.AT >= r.at - :lookback)"
_AGE = "date_diff('day', CAST(R.COL AS TIMESTAMP), CAST(ROWAT AS TIMESTAMP))"


class _Builder:
    """Builds the label query and its feature columns, recording why each column is in or out."""

    def __init__(self, ws: Workspace, con: Any, catalog: Catalog, entity: Table, key: str, ask: TrainAsk):
        self.ws, self.con, self.catalog, self.entity, self.key, self.ask = ws, con, catalog, entity, key, ask
        self.tree: exp.Select
        self.label = ""
        self.time: str | None = None
        self.time_expr: exp.Expr | None = None  # the row's label time in the outer query
        self.key_expr: exp.Expr = exp.column(key, "e")
        self.definition = ""
        self.columns: list[str] = []
        self.views: list[str] = []
        self.why: list[tuple[list[str], str]] = []
        self.left_out: dict[str, list[str]] = {}
        self.label_source: tuple[str, str | None] = (entity.name, None)  # (table, column) the label is made of

    # ---- the label ----------------------------------------------------------------------------
    def churn(self) -> None:
        events = self._event_tables(self.key)
        if not events:
            raise UserError(f"no catalog table records activity of `{self.entity.name}` (a table with `{self.key}` "
                            "and a time column): churn needs one")
        named = [e for e in events if e.name in self.ask.sources]
        activity = named[0] if named else max(events, key=lambda t: (self._referenced(t, events), -(t.row_count or 0)))
        at = self._time_column(activity)
        first_seen, last_seen = self.con.execute(
            exp.select(exp.func("min", exp.column(at)), exp.func("max", exp.column(at)))
            .from_(exp.to_table(activity.name)).sql(dialect="duckdb")).fetchone()
        if last_seen is None:
            raise UserError(f"`{activity.name}` has no rows: there is no activity to learn churn from")
        last = _month_start(_as_datetime(last_seen) - dt.timedelta(days=self.ask.horizon_days))
        earliest = _as_datetime(first_seen) + dt.timedelta(days=self.ask.lookback_days)
        cutoffs = [c for c in (_add_months(last, -i) for i in range(self.ask.snapshots)) if c >= earliest]
        if len(cutoffs) < 2:
            raise UserError(f"`{activity.name}` spans too little time for monthly cutoffs with {self.ask.lookback_days} "
                            f"days before and {self.ask.horizon_days} after each")
        self.label, self.time = "churned", "cutoff"
        self.tree = _fill(_CHURN, {"FK": self.key, "KEY": self.key, "ACTIVITY": activity.name, "AT": at,
                                   "ENTITY": self.entity.name, "LABEL": self.label},
                          first=exp.Literal.string(str(cutoffs[-1])), last=exp.Literal.string(str(cutoffs[0] + dt.timedelta(days=1))),
                          lookback=_days(self.ask.lookback_days), horizon=_days(self.ask.horizon_days))
        self.time_expr, self.key_expr = exp.column("cutoff", "s"), exp.column(self.key, "s")
        noun = _noun(self.entity.name)
        self.definition = (f"1 when a {noun} with a row in `{activity.name}` in the {self.ask.lookback_days} days "
                           f"before a monthly cutoff has no {_noun(activity.name)} in the {self.ask.horizon_days} "
                           f"days after it, else 0; {len(cutoffs)} cutoffs from {cutoffs[-1]:%Y-%m-%d} to "
                           f"{cutoffs[0]:%Y-%m-%d} (the last with a whole {self.ask.horizon_days} days of data after it)")
        self.label_source = (activity.name, None)

    def column_target(self) -> None:
        table, _, column = self.ask.target.rpartition(".")
        table = table or self.entity.name
        at = self._time_column(self.entity, required=False)
        label = column if table == self.entity.name else f"{_noun(self.entity.name)}_{column}"
        names = {"KEY": self.key, "ENTITY": self.entity.name, "AT": at or "", "LABEL": label, "COL": column}
        shape = _fill(_OWN if at else _OWN_NO_TIME, names)
        if table == self.entity.name:
            if self.entity.column(column) is None:
                raise UserError(unknown("column", column, [c.name for c in self.entity.columns]) +
                                f" (of `{self.entity.name}`)")
            self.tree = _put(shape, "LABELVALUE", exp.column(column, "e"))
            self.definition = f"`{self.entity.name}.{column}` as recorded" + ("" if at else "; rows with it empty left out")
        else:
            lines = _table(self.catalog, table)
            if lines.column(column) is None or lines.column(self.key) is None:
                raise UserError(f"`{table}.{column}` cannot be summed per `{self.entity.name}` row: `{table}` needs "
                                f"columns `{column}` and `{self.key}`")
            summed = _fill(_SUMMED, {"COL": column, "LINES": table, "FK": self.key, "KEY": self.key})
            self.tree = _put(shape, "LABELVALUE", summed)
            self.definition = f"the sum of `{table}.{column}` over each {_noun(self.entity.name)}'s rows in `{table}`"
        self.label, self.time = label, at
        self.time_expr = exp.column(at, "e") if at else None
        self.label_source = (table, column)
        if at:
            self.definition += f", at `{at}`"

    # ---- the features -------------------------------------------------------------------------
    def features(self) -> None:
        self._views()
        self._own_columns(self.entity, exp.to_identifier("e"), self.entity.name, own=True)
        for parent, fk in self._parents():
            alias = f"p_{len(self.tree.args.get('joins') or [])}"
            self.tree = self.tree.join(exp.to_table(parent.name).as_(alias), join_type="left",
                                       on=exp.EQ(this=exp.column(parent.primary_key[0], alias),
                                                 expression=exp.column(fk, "e")))
            self._own_columns(parent, exp.to_identifier(alias), parent.name, own=False)
        if self.time_expr is not None:
            # Churn reads every activity of the entity; another label only the activity of the tables named, by the
            # parent they hang on (a ticket's customer's orders): unnamed, they would add much noise and little signal.
            keys = [(self.key, self.key_expr)] if self.ask.target.lower() == CHURN else [
                (fk, exp.column(fk, "e")) for _, fk in self._parents()] if self.ask.sources else []
            for fk, key_expr in keys:
                for t in self._event_tables(fk):
                    if t.name != self.entity.name and (not self.ask.sources or t.name in self.ask.sources):
                        self._activity(t, fk, key_expr)
        if not self.columns and not self.views:
            raise UserError(f"no usable feature for `{self.label}`: every related column was left out "
                            f"({'; '.join(f'{w}: ' + ', '.join(c) for w, c in self.left_out.items() if c)})")

    def _views(self) -> None:
        from runtimes.features.registry import latest

        found = [v for v in latest(self.ws).values() if v.view.entity.join_key == self.key
                 and (not self.ask.sources or v.view.source.table in self.ask.sources)] if self.time else []
        if found:
            self.views = [v.name for v in found]
            self.why.append(([v.ref for v in found], f"feature views on `{self.key}`, joined as of each label's "
                                                       f"`{self.time}` (point in time: no later value)"))

    def _own_columns(self, table: Table, alias: exp.Identifier, source: str, own: bool) -> None:
        stats = self._text_stats(table)
        later = self._filled_later(table) if own and self.ask.target.lower() != CHURN else {}
        kept, aged = [], []
        for c in table.columns:
            if c.name in table.primary_key or c.name == self.key or (own and c.name == self.label):
                continue
            # a parent's column is named with its table where the entity has a column of that name
            shown = c.name if own or self.entity.column(c.name) is None else f"{table.name}.{c.name}"
            if self.label_source == (table.name, c.name):
                self._out("the label's own source", shown)
            elif c.pii is not None:
                self._out("PII: personal data is never a feature", shown)
            elif c.name.endswith("_id") or any(c.name in t.primary_key for t in self.catalog.tables.values()):
                self._out("an identifier, not a property", shown)
            elif c.name in later:
                self._out(later[c.name], shown)
            elif _is_time(c) and self.ask.only and c.name not in self.ask.only:
                if not (own and c.name == self.time):
                    self._out("not among the columns asked for", shown)
            elif _is_time(c):
                if own and c.name == self.time:
                    continue
                if self.time_expr is None:
                    self._out("a time with no label time to measure it from", shown)
                    continue
                name = self._name(f"{c.name}_days", source)
                age = _put(_fill(_AGE, {"R": alias.this, "COL": c.name}), "ROWAT", self.time_expr)
                self.tree = self.tree.select(age.as_(name), append=True)
                aged.append(name)
            elif c.name in stats:
                self._out("free text or a label per row (too many distinct values)", shown)
            elif self.ask.only and c.name not in self.ask.only:
                self._out("not among the columns asked for", shown)
            else:
                name = self._name(c.name if own or self.entity.column(c.name) is None else f"{table.name}_{c.name}",
                                  source)
                self.tree = self.tree.select(exp.column(c.name, alias.this).as_(name), append=True)
                kept.append(name)
        self.columns += kept + aged
        whose = f"the {_noun(self.entity.name)}'s" if own else f"the {_noun(table.name)}'s (joined on its key)"
        if kept:
            self.why.append((kept, f"{whose} attributes in `{table.name}`, as categories or numbers"))
        if aged:
            self.why.append((aged, f"days from {whose} dates to the label time: an age, never a date after it"))

    def _activity(self, t: Table, fk: str, key_expr: exp.Expr) -> None:
        assert self.time_expr is not None
        at = self._time_column(t)
        times = [c for c in t.columns if _is_time(c)]
        one_time = len(times) == 1  # a row with a second time (resolved_at) changes later: only counted
        n = self.ask.lookback_days
        rows = exp.select(key_expr.copy().as_("k"), self.time_expr.copy().as_("at")).distinct().from_(
            self.tree.args["from_"].this.copy())
        names = {"T": t.name, "FK": fk, "AT": at}
        agg = _fill(_ACTIVITY, names, lookback=_days(n)).transform(
            lambda node: rows.subquery("r") if isinstance(node, exp.Table) and node.name == "ROWS" else node)
        alias = f"f_{len(self.tree.args.get('joins') or [])}"
        made = [self._name(f"{t.name}_{n}d", t.name), self._name(f"days_since_{t.name}", t.name)]
        outputs: list[exp.Expr] = [exp.func("coalesce", exp.column("n", alias), exp.Literal.number(0)),
                                   exp.column("since", alias)]
        if one_time:
            for c in t.columns:
                if (_is_number(c) and c.pii is None and not c.name.endswith("_id") and c.name not in t.primary_key
                        and (t.name, c.name) != self.label_source):
                    part = f"s_{len(outputs)}"
                    agg = agg.select(_fill(_WINDOW_SUM, {**names, "COL": c.name}, lookback=_days(n)).as_(part),
                                     append=True)
                    outputs.append(exp.func("coalesce", exp.column(part, alias), exp.Literal.number(0)))
                    made.append(self._name(f"{t.name}_{c.name}_{n}d", t.name))
        on = exp.and_(exp.EQ(this=exp.column("k", alias), expression=key_expr.copy()),
                      exp.EQ(this=exp.column("at", alias), expression=self.time_expr.copy()))
        self.tree = self.tree.join(agg.subquery(alias), join_type="left", on=on)
        for name, value in zip(made, outputs):
            self.tree = self.tree.select(value.as_(name), append=True)
        self.columns += made
        before = "cutoff" if self.ask.target.lower() == CHURN else f"label time (`{self.time}`)"
        how = "rows, days since the last" + (", sums of its numbers" if len(made) > 2 else "")
        self.why.append((made, f"`{t.name}` of the same `{fk}` in the {n} days before the {before} ({how}): only "
                               "what had happened by then" + ("" if one_time else
                                                               f"; its other columns change later ({times[1].name})")))

    # ---- reading the catalog and the data -----------------------------------------------------------
    def _event_tables(self, fk: str) -> list[Table]:
        return [t for t in self.catalog.tables.values() if t.column(fk) is not None and fk not in t.primary_key
                and any(_is_time(c) for c in t.columns)]

    def _referenced(self, t: Table, among: list[Table]) -> int:
        """How many of the other activity tables refer to this one: the main activity is the one the rest hang on."""
        return sum(1 for o in among if o is not t and t.primary_key and o.column(t.primary_key[0]) is not None)

    def _parents(self) -> list[tuple[Table, str]]:
        out = []
        for c in self.entity.columns:
            if c.name == self.key:
                continue
            parent = next((t for t in self.catalog.tables.values() if t.primary_key == [c.name]
                           and t.name != self.entity.name), None)
            if parent is not None and (not self.ask.sources or parent.name in self.ask.sources
                                       or self.ask.target.lower() != CHURN):
                out.append((parent, c.name))
        return out

    def _time_column(self, t: Table, required: bool = True) -> str | None:
        times = [c.name for c in t.columns if _is_time(c)]
        if not times and required:
            raise UserError(f"`{t.name}` has no time column")
        return times[0] if times else None

    def _text_stats(self, t: Table) -> set[str]:
        """Text columns with so many distinct values that they describe one row (free text, names, codes)."""
        text = [c.name for c in t.columns if str(c.type).upper().startswith("VARCHAR") and c.pii is None]
        if not text:
            return set()
        q = exp.select(exp.func("count", exp.Star()), *[exp.func("count", exp.Distinct(
            expressions=[exp.column(c)])) for c in text]).from_(exp.to_table(t.name))
        rows, *distinct = self.con.execute(q.sql(dialect="duckdb")).fetchone()
        return {c for c, d in zip(text, distinct) if d > _FREE_TEXT_MIN and d > _FREE_TEXT_SHARE * rows}

    def _filled_later(self, t: Table) -> dict[str, str]:
        """Columns recorded after the label time: later times themselves, and columns that are empty (or hold one
        value) exactly while a later time is: they are filled in when it happens, so a prediction never has them."""
        if not self.time:
            return {}
        later = [c.name for c in t.columns if _is_time(c) and c.name != self.time]
        out: dict[str, str] = {}
        for lt in later:
            after = self.con.execute(exp.select(exp.func("count", exp.Star())).from_(exp.to_table(t.name)).where(
                exp.GT(this=exp.column(lt), expression=exp.column(self.time))).sql(dialect="duckdb")).fetchone()[0]
            if not after:
                continue
            out[lt] = f"after the label time: `{lt}` comes after `{self.time}`"
            pending = exp.column(lt).is_(exp.null())
            for c in t.columns:
                if c.name in (lt, self.time, self.label) or c.name in out:
                    continue
                col = exp.column(c.name)
                q = exp.select(
                    exp.func("count_if", pending.copy()),
                    exp.func("count_if", exp.and_(pending.copy(), exp.Not(this=col.copy().is_(exp.null())))),
                    exp.func("count", exp.Distinct(expressions=[exp.If(this=pending.copy(), true=col.copy())])),
                    exp.func("count_if", exp.and_(exp.Not(this=pending.copy()), exp.column(c.name).isin(
                        exp.select(col.copy()).from_(exp.to_table(t.name)).where(pending.copy()).subquery()))),
                ).from_(exp.to_table(t.name))
                n_pending, filled_while_pending, values_while_pending, shared = self.con.execute(
                    q.sql(dialect="duckdb")).fetchone()
                if not n_pending:
                    continue
                if filled_while_pending == 0 or (values_while_pending == 1 and shared == 0):
                    out[c.name] = f"filled in when `{lt}` is, after the label time"
        return out

    def _out(self, why: str, column: str) -> None:
        self.left_out.setdefault(why, [])
        if column not in self.left_out[why]:
            self.left_out[why].append(column)

    def _name(self, name: str, source: str) -> str:
        taken = set(self.columns) | {self.key, self.label, self.time or ""}
        if name in taken:
            name = f"{source}_{name}"
        return name


def _noun(table: str) -> str:
    word = table.split("_")[-1]
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def _as_datetime(v: Any) -> dt.datetime:
    return v if isinstance(v, dt.datetime) else dt.datetime.combine(v, dt.time())


def _month_start(t: dt.datetime) -> dt.datetime:
    return dt.datetime(t.year, t.month, 1)


def _add_months(t: dt.datetime, n: int) -> dt.datetime:
    m = t.year * 12 + t.month - 1 + n
    return dt.datetime(m // 12, m % 12 + 1, 1)

"""What a semantic-layer expression may contain: the `expr:` of measures, dimensions and entities, metric
filters, derived metric formulas and `--where` filters are values over columns, with operators and an
allow-list of plain scalar functions. Queries, table functions, settings, variables, deliberate errors,
aggregates and windows are refused by walking the sqlglot tree, before anything is compiled or run.
"""
from __future__ import annotations

from sqlglot import exp

from core.errors import UserError

# Scalar functions sqlglot knows by class: pure computations on a row's values.
_ALLOWED: tuple[type[exp.Expression], ...] = (
    exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Cast, exp.TryCast,
    exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Sqrt, exp.Ln, exp.Log, exp.Exp, exp.Pow, exp.Sign,
    exp.Greatest, exp.Least,
    exp.Lower, exp.Upper, exp.Length, exp.Trim, exp.Substring, exp.Concat, exp.ConcatWs, exp.Replace,
    exp.Left, exp.Right, exp.StartsWith, exp.Contains, exp.SplitPart, exp.StrPosition, exp.RegexpLike,
    exp.TimestampTrunc, exp.DateTrunc, exp.Extract, exp.DateDiff, exp.DateAdd, exp.DateSub, exp.TimeToStr,
    exp.StrToTime, exp.StrToDate, exp.CurrentDate, exp.CurrentTimestamp, exp.Year, exp.Month, exp.Day,
    exp.DayOfWeek, exp.DayOfYear, exp.Quarter, exp.Week, exp.TsOrDsToDate, exp.Date,
)
# Operators and literals sqlglot also models as functions.
_OPERATORS: tuple[type[exp.Expression], ...] = (exp.Connector, exp.Binary, exp.Unary, exp.Array, exp.Struct)
# ... and by name, for the ones it parses as anonymous calls.
_ALLOWED_NAMES = {"date_part", "datepart", "iff", "now", "today", "epoch", "dayname", "monthname", "strptime",
                  "hour", "minute", "second", "isodow", "dayofmonth", "yearweek", "last_day", "make_date",
                  "ifnull", "nvl", "length", "char_length", "lpad", "rpad", "reverse", "md5", "instr",
                  "ends_with", "suffix", "prefix", "regexp_replace", "regexp_extract", "to_date", "date_diff",
                  "date_add", "date_sub", "trunc", "mod", "power", "ceiling", "bit_length", "to_timestamp"}
# Nodes that are never an expression over one row's values.
_REFUSED: tuple[tuple[type[exp.Expression], str], ...] = (
    (exp.Query, "a query"), (exp.Subquery, "a sub-query"), (exp.Placeholder, "a parameter"),
    (exp.Parameter, "a parameter"), (exp.SessionParameter, "a setting"), (exp.Window, "a window function"),
    (exp.AggFunc, "an aggregate"), (exp.Lambda, "a lambda"), (exp.Star, "`*`"),
)

MAX_TEXT = 10_000  # characters of one expression or filter


def function_name(node: exp.Func) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def check_expression(tree: exp.Expression) -> None:
    """Raise `UserError` (one line) naming the first part of `tree` an expression may not contain."""
    for node in tree.walk():
        for kind, what in _REFUSED:
            if isinstance(node, kind):
                raise UserError(f"{what} is not allowed here: write one value or condition over the model's "
                                "columns (no queries, tables, settings, aggregates or windows)")
        if isinstance(node, exp.Func) and not isinstance(node, _ALLOWED + _OPERATORS):
            name = function_name(node)
            if isinstance(node, exp.Anonymous) and name in _ALLOWED_NAMES:
                continue
            raise UserError(f"function `{name}` is not allowed here; use plain scalar functions such as "
                            "coalesce, lower, cast, date_trunc or CASE (no table functions, settings or queries)")

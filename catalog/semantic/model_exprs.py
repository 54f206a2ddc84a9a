"""SQL expressions written in a semantic model's YAML (`expr:` of measures, dimensions and entities),
parsed with sqlglot and qualified with the table alias the compiled query gives that model.

Parses and rewrites trees only; never formats SQL by joining strings.
"""
from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp

from core.errors import UserError
from catalog.semantic.expr_guard import MAX_TEXT, check_expression


@lru_cache(maxsize=4096)
def _parse(text: str) -> exp.Expression | None:
    trees = [t for t in sqlglot.parse(text, read="duckdb") if t is not None]
    # One expression, never a statement: `x = 1; DROP TABLE t` or a bare query is refused.
    if len(trees) != 1 or not isinstance(trees[0], exp.Condition):
        return None
    return trees[0]


def sql_expression(text: str) -> exp.Expression:
    """One SQL expression (a value or a condition) of what `expr_guard` allows, parsed; `UserError` for
    anything else."""
    text = str(text).strip()
    if len(text) > MAX_TEXT:
        raise UserError(f"{len(text)} characters is too long for one expression (at most {MAX_TEXT})")
    try:
        tree = _parse(text)
    except sqlglot.errors.SqlglotError as e:  # parse and tokenizer errors (an unclosed quote)
        errors = getattr(e, "errors", None)
        raise UserError(errors[0]["description"] if errors else str(e).splitlines()[0]) from None
    if tree is None:
        raise UserError("not one SQL expression (a single value or condition, not a statement or a query)")
    check_expression(tree)
    return tree.copy()


def parse_expr(text: str, where: str) -> exp.Expression:
    """One SQL expression; `where` names its place (`semantic model orders, measure revenue`) in errors."""
    try:
        return sql_expression(text)
    except UserError as e:
        raise UserError(f"{where}: `expr: {text}` is not a SQL expression over the model's columns ({e})") from None


def qualify(tree: exp.Expression, alias: str) -> exp.Expression:
    """Every column of `tree` read from `alias` (an expression has no sub-query: the guard refused them)."""
    tree = tree.copy()
    for col in list(tree.find_all(exp.Column)):
        if isinstance(col.this, exp.Star):
            continue
        col.set("table", exp.to_identifier(alias))
        col.set("db", None)
        col.set("catalog", None)
    return tree


def grouped(e: exp.Expression) -> exp.Expression:
    """`e` in parentheses where putting it inside another expression could change its meaning."""
    if isinstance(e, (exp.Column, exp.Literal, exp.Func, exp.Paren, exp.Case, exp.Cast, exp.Window, exp.Boolean,
                      exp.Null)):
        return e
    return exp.Paren(this=e)


def model_column(text: str, alias: str, where: str) -> exp.Expression:
    return qualify(parse_expr(text, where), alias)

"""Size bounds for functions that make a list or a string of a size given by an argument (`range(n)`,
`repeat(s, n)`, `lpad(s, n)`, …): DuckDB builds such a value in one call, without checking its memory limit
or an interrupt, so the bound is checked before the call instead.

A literal size over the bound is refused when the statement is checked; any other size is checked when the
query runs, by a CASE that raises DuckDB's `error()` first. Works on sqlglot trees only; never runs SQL.
"""
from __future__ import annotations

import re

from sqlglot import exp

from core.errors import UserError

MAX_VALUES = 10_000_000  # elements of one list, or characters of one string, a single call may make

_WIDTH = re.compile(r"\d+")  # digits in a printf/format pattern: widths and precisions


class TooLarge(UserError):
    """A function call whose literal size argument is over the bound."""


def bound_sizes(tree: exp.Expr) -> exp.Expr:
    """`tree` with every size-making call bounded (a copy); raises `TooLarge` for literal sizes over the bound."""
    return tree.transform(_bound, copy=True)


def _bound(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.GenerateSeries):
        if isinstance(node.parent, (exp.Table, exp.Lateral)):
            return node  # a table function streams its rows and stops at an interrupt
        return _guarded(node, "end", _series_count(node), "range()/generate_series()", _series_static(node))
    if isinstance(node, exp.Repeat):
        times = node.args.get("times")
        if times is None:
            return node
        text = exp.func("length", exp.TryCast(this=node.this.copy(), to=exp.DataType.build("VARCHAR")))
        size = exp.Mul(this=_number(times), expression=exp.func("greatest", exp.Literal.number(1), text))
        n, text_len = _literal(times), len(node.this.this) if isinstance(node.this, exp.Literal) else None
        static = None if n is None or text_len is None else n * max(text_len, 1)
        return _guarded(node, "times", size, "repeat()", static)
    if isinstance(node, exp.Pad):
        return _guarded(node, "expression", _number(node.expression), "lpad()/rpad()", _literal(node.expression))
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        args = node.expressions
        if name in ("list_resize", "array_resize") and len(args) >= 2:
            return _guarded(node, 1, _number(args[1]), f"{name}()", _literal(args[1]))
        if name == "bar" and len(args) >= 4:
            return _guarded(node, 3, _number(args[3]), "bar()", _literal(args[3]))
        if name == "printf" and args:
            _check_pattern(args[0], name)
    if isinstance(node, exp.Format):
        _check_pattern(node.this, "format")
    return node


def _series_static(node: exp.GenerateSeries) -> float | None:
    start, end, step = (node.args.get(k) for k in ("start", "end", "step"))
    lo = _literal(start) if start is not None else 0.0
    hi, per = _literal(end), (_literal(step) if step is not None else 1.0)
    if lo is None or hi is None or per is None:
        return None
    return abs(hi - lo) / (abs(per) or 1.0)


def _series_count(node: exp.GenerateSeries) -> exp.Expr:
    start, end, step = node.args.get("start"), node.args.get("end"), node.args.get("step")
    if isinstance(step, exp.Interval):  # dates and timestamps: counted in seconds
        span = exp.Sub(this=exp.func("epoch", end.copy()), expression=exp.func("epoch", start.copy()))
        per = exp.func("nullif", exp.Abs(this=exp.func("epoch", step.copy())), exp.Literal.number(0))
        return exp.Abs(this=exp.Div(this=exp.paren(span), expression=per))
    lo = _number(start) if start is not None else exp.Literal.number(0)
    span = exp.Sub(this=_number(end), expression=lo)
    per = exp.func("coalesce", exp.func("nullif", exp.Abs(this=_number(step)), exp.Literal.number(0)),
                   exp.Literal.number(1)) if step is not None else exp.Literal.number(1)
    return exp.Abs(this=exp.Div(this=exp.paren(span), expression=per))


def _unknown_size(node: exp.Expr, size: exp.Expr) -> exp.Expr:
    """True where the size cannot be counted (bounds of a type counted neither as numbers nor in seconds)
    though every argument is there: such a call is refused rather than left unbounded."""
    present = [exp.Not(this=exp.Is(this=a.copy(), expression=exp.null()))
               for a in node.iter_expressions() if not isinstance(a, (exp.Literal, exp.Interval))]
    return exp.and_(exp.Is(this=size.copy(), expression=exp.null()), *present) if present else exp.false()


def _guarded(node: exp.Expr, arg: str | int, size: exp.Expr, what: str, literal: float | None) -> exp.Expr:
    """`node` as is where its size is a literal within the bound; refused where a literal over it; else with
    its size argument `arg` (a key, or an index into its arguments) behind a check of `size` that raises
    first. The argument is wrapped rather than the call, so that DuckDB's constant folding, which evaluates
    a call of constants while planning, meets the check before the call."""
    static = abs(literal) if literal is not None else None
    if static is not None and static > MAX_VALUES:
        raise TooLarge(f"{what} would make {static:,.0f} values or characters in one call, more than the "
                       f"{MAX_VALUES:,} allowed; make the size smaller or aggregate over a table instead")
    if static is not None:
        return node
    error = exp.func("error", exp.Literal.string(
        f"{what} would make more than {MAX_VALUES:,} values or characters in one call"))
    too_big = exp.GT(this=size, expression=exp.Literal.number(MAX_VALUES))
    if isinstance(node, exp.GenerateSeries):
        too_big = exp.or_(too_big, _unknown_size(node, size))
    out = node.copy()
    if isinstance(arg, int):
        args = list(out.expressions)
        args[arg] = exp.Case().when(too_big, error).else_(args[arg])
        out.set("expressions", args)
    else:
        out.set(arg, exp.Case().when(too_big, error).else_(out.args[arg]))
    return out


def _number(value: exp.Expr) -> exp.Expr:
    # Temporal bounds cast to NULL (their spans are not counted here); numbers count as themselves.
    return exp.TryCast(this=value.copy(), to=exp.DataType.build("DOUBLE"))


def _literal(value: exp.Expr | None) -> float | None:
    if isinstance(value, exp.Neg):
        inner = _literal(value.this)
        return -inner if inner is not None else None
    if isinstance(value, exp.Literal) and not value.is_string:
        try:
            return float(value.this)
        except ValueError:
            return None
    return None


def _check_pattern(pattern: exp.Expr, name: str) -> None:
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        raise TooLarge(f"{name}() takes a literal pattern here (its widths are checked before the query runs)")
    widths = [int(w) for w in _WIDTH.findall(pattern.this)]
    if widths and max(widths) > MAX_VALUES:
        raise TooLarge(f"{name}() pattern asks for a width of {max(widths):,}, more than the {MAX_VALUES:,} allowed")

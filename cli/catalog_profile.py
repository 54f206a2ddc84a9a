"""`lathe catalog profile TABLE` (stats and proposed PII tags) and `lathe catalog describe TABLE`."""
from __future__ import annotations

from typing import Any

import typer

from cli.context import command, print_json, print_table, workspace

_CELL_CHARS = 48


def _short(v: Any) -> str:
    if isinstance(v, float):
        v = f"{v:.6g}"
    text = "" if v is None else str(v).replace("\n", " ")
    return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 1] + "…"


def _values(column: Any) -> str:
    """Top values with counts for a categorical column, else min to max, else a few samples."""
    stats = column.stats
    if stats and stats.top_values:
        return _short(", ".join(f"{_short(v)} ({n:,})" for v, n in stats.top_values[:5]))
    if stats and stats.min is not None:
        return f"{_short(stats.min)} … {_short(stats.max)}"
    return _short(", ".join(_short(v) for v in column.sample_values[:3]))


def _count(n: int | None) -> str:
    return "" if n is None else f"{n:,}"


def _column_rows(columns: list[Any], with_description: bool) -> list[list[Any]]:
    rows = []
    for c in columns:
        s = c.stats
        row = [c.name, c.type, c.pii.value if c.pii else ""]
        if with_description:
            row.append(_short(c.description))
        counts = f"{_count(s.null_count)} / {_count(s.distinct_count)}" if s else ""
        row += [counts, _values(c)]
        rows.append(row)
    return rows


def register(app: typer.Typer) -> None:
    @app.command("profile")
    @command
    def profile(
        table: str = typer.Argument(..., help="Warehouse table to profile."),
        accept_pii: bool = typer.Option(False, "--accept-pii", help="Apply the proposed PII tags to the catalog."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Count rows, nulls and distinct values, find min/max and top values, and propose PII tags."""
        from catalog.profiling import profile_report

        report = profile_report(workspace(), table, accept_pii=accept_pii)
        if as_json:
            print_json(report.to_json())
            return
        t = report.table
        exact = "estimated distinct counts, " if report.approximate_distinct else ""
        typer.echo(f"Profiled {t.name}: {t.row_count:,} rows, {len(t.columns)} columns ({exact}stats saved to the catalog).")
        print_table(["column", "type", "pii", "nulls / distinct", "range or top values"],
                    _column_rows(t.columns, with_description=False))
        if report.dropped_columns:
            typer.echo("No longer in the table, dropped from the catalog: " + ", ".join(report.dropped_columns))
        if report.proposed_pii:
            applied = set(report.applied_pii)
            head = "PII tags applied:" if applied else "Proposed PII tags (rerun with --accept-pii to apply them):"
            typer.echo(head)
            for p in report.proposed_pii:
                typer.echo(f"  {p.column}: {p.tag.value} ({p.reason})")

    @app.command("describe")
    @command
    def describe(
        table: str = typer.Argument(..., help="Table to describe."),
        as_json: bool = typer.Option(False, "--json", help="Print the description as JSON."),
    ) -> None:
        """What the catalog knows about a table: meaning, owner, columns, stats, metrics, lineage."""
        from catalog.table_description import describe_table

        d = describe_table(workspace(), table)
        if as_json:
            print_json(d.to_json())
            return
        t = d.table
        typer.echo(f"{t.name}: {t.description or '(no description)'}")
        facts = []
        if d.owner:
            facts.append("owner " + ", ".join(x for x in (d.owner.name, d.owner.team, d.owner.email) if x))
        elif t.owner:
            facts.append(f"owner {t.owner}")
        if t.row_count is not None:
            facts.append(f"{t.row_count:,} rows")
        if t.primary_key:
            facts.append("primary key " + ", ".join(t.primary_key))
        if t.source:
            facts.append(f"source {t.source}")
        if facts:
            typer.echo("  " + "; ".join(facts))
        if not d.catalogued:
            typer.echo(f"  Not in the catalog yet: run `lathe catalog profile {t.name}` to add its stats.")
        print_table(["column", "type", "pii", "description", "nulls / distinct", "range or top values"],
                    _column_rows(t.columns, with_description=True))
        for label, items in (("Semantic models", d.semantic_models), ("Dimensions", d.dimensions),
                             ("Measures", d.measures), ("Metrics", d.metrics), ("Glossary", d.glossary)):
            if items:
                typer.echo(f"{label}: " + ", ".join(items))
        if d.lineage:
            typer.echo("Lineage:")
            for x in d.lineage:
                typer.echo(f"  {x.column} <- " + ", ".join(x.sources))

"""`lathe catalog lineage TABLE.COLUMN` and `lathe catalog derive NAME "SELECT …"`.

Lineage prints a column's upstream columns, recursively through derived tables; derive is the CLI's
explicit write path that creates such a table. Heavy imports happen inside the commands.
"""
from __future__ import annotations

from typing import Any

import typer

from cli.context import command, print_json, workspace


def register(app: typer.Typer) -> None:
    @app.command("lineage")
    @command
    def lineage(
        target: str = typer.Argument(..., metavar="TABLE[.COLUMN]",
                                     help="A column (orders_by_month.revenue) or a whole table."),
        as_json: bool = typer.Option(False, "--json", help="Print the lineage tree as JSON."),
    ) -> None:
        """Show where a column's values come from, through every derived table."""
        from catalog.column_lineage import trace_upstream
        from core.errors import UserError
        from catalog.query_schema import warehouse_catalog
        from catalog.store import CatalogStore
        from catalog.suggestions import unknown
        from catalog.warehouse import connect_reader

        ws = workspace()
        with connect_reader(ws) as con:  # the warehouse knows source tables the catalog may not describe
            catalog = warehouse_catalog(con, CatalogStore(ws).load())
        table_name, _, column = target.partition(".")
        if column:
            trees = [trace_upstream(catalog, table_name, column)]
        else:
            table = catalog.table(table_name)
            if table is None:
                raise UserError(unknown("table", table_name, catalog.tables))
            trees = [trace_upstream(catalog, table.name, c.name) for c in table.columns]
        if as_json:
            print_json(trees[0] if column else trees)
            return
        from rich.console import Console

        console = Console()
        for tree in trees:
            console.print(_render(tree))

    @app.command("derive")
    @command
    def derive(
        name: str = typer.Argument(..., help="Name of the new table."),
        query: str = typer.Argument(..., help="The SELECT whose rows the table holds."),
        replace: bool = typer.Option(False, "--replace", help="Rebuild the table if it exists (derived tables only)."),
        description: str = typer.Option("", "--description", help="What the table holds, for the catalog."),
        dialect: str | None = typer.Option(None, "--dialect", "-d", help="Dialect of the SELECT (default duckdb)."),
        as_json: bool = typer.Option(False, "--json", help="Print the new table's catalog entry as JSON."),
    ) -> None:
        """Create a table from a SELECT and record its metadata and column lineage in the catalog."""
        from catalog.derived_tables import create_derived_table
        from core.principal import Principal

        table = create_derived_table(workspace(), name, query, principal=Principal.local_admin(),
                                     dialect=dialect, description=description, replace=replace)
        if as_json:
            print_json(table.model_dump(mode="json", exclude_none=True))
            return
        columns = ", ".join(f"{c.name} {c.type}" + (f" (PII {c.pii.value})" if c.pii else "") for c in table.columns)
        typer.echo(f"created {table.name}: {table.row_count:,} rows, columns {columns}")
        typer.echo(f"lineage: lathe catalog lineage {table.name}")


def _render(node: dict[str, Any]) -> Any:
    from rich.tree import Tree

    def grow(branch: Tree, item: dict[str, Any]) -> None:
        for source in item["sources"]:
            grow(branch.add(source["column"]), source)

    label = node["column"]
    if not node["derived"]:
        label += "  (source data: no recorded lineage)"
    elif not node["sources"]:
        label += "  (computed from no column, e.g. COUNT(*))"
    root = Tree(label)
    grow(root, node)
    return root

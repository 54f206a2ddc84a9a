"""`lathe catalog import PATH...`: data files, MetricFlow projects, dbt schema.yml and Lathe YAML.

A thin front over `catalog.importers.import_paths`; the import itself (DuckDB, YAML) is loaded only
when the command runs, so `lathe --help` stays fast.
"""
from __future__ import annotations

from pathlib import Path

import typer

from cli.context import command, print_json, workspace


def register(app: typer.Typer) -> None:
    @app.command("import")
    @command
    def import_(
        paths: list[Path] = typer.Argument(..., help="Files or directories: CSV, Parquet, JSON/NDJSON data; "
                                           "MetricFlow, dbt schema.yml or Lathe YAML metadata.",
                                           show_default=False),
        replace: bool = typer.Option(False, "--replace",
                                     help="Replace the data of tables that already exist (metadata is kept); "
                                     "without it an existing table is an error."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Import data and metadata into the workspace: all of it, or nothing if anything is wrong."""
        from catalog.importers import import_paths

        report = import_paths(workspace(), paths, replace=replace)
        if as_json:
            print_json(report.to_json())
        else:
            for line in report.lines():
                typer.echo(line)

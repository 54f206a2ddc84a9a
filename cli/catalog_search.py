"""`lathe catalog search TEXT`: find tables, columns, glossary terms, metrics and dimensions by meaning.

Prints a table (or `--json`, a list of hits each with its `why`). Imports the search engine only when
the command runs, so `lathe --help` stays fast; it never changes the catalog.
"""
from __future__ import annotations

import typer

from cli.context import command, print_json, print_table, workspace


def register(app: typer.Typer) -> None:
    @app.command("search")
    @command
    def search(
        text: str = typer.Argument(..., help="What to look for, in plain words: `customer email`, `sales by region`."),
        kind: list[str] = typer.Option(
            None, "--kind", "-k", show_default=False,
            help="Only this kind: table, column, glossary, metric or dimension (repeat for several)."),
        limit: int = typer.Option(10, "--limit", "-n", min=1, help="How many hits to show."),
        as_json: bool = typer.Option(False, "--json", help="Print the hits as JSON, each with why it matched."),
    ) -> None:
        """Search the catalog: BM25, fused with embeddings when lathe.toml sets `search.embedding_model`."""
        from catalog.search import CatalogSearch

        hits = CatalogSearch.for_workspace(workspace()).search(text, k=limit, kinds=kind or None)
        if as_json:
            print_json([h.model_dump() for h in hits])
            return
        if not hits:
            typer.echo(f"nothing in the catalog matches `{text}`", err=True)
            return
        print_table(["kind", "name", "table", "score", "why"],
                    [[h.kind, h.name, h.table or "", f"{h.score:.3f}", "; ".join(h.why)] for h in hits])

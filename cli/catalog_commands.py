"""`lathe catalog …`: import, profile, search, describe and lineage of the workspace's data catalog."""
from __future__ import annotations

import typer

from cli import catalog_import, catalog_lineage, catalog_profile, catalog_search

catalog_app = typer.Typer(help="The data catalog: import data and metadata, profile, search, describe, lineage.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    for module in (catalog_import, catalog_profile, catalog_search, catalog_lineage):
        module.register(catalog_app)
    app.add_typer(catalog_app, name="catalog")

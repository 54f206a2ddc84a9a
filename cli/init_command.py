"""`lathe init`: make a workspace, optionally with the generated demo company (`--demo`)."""
from __future__ import annotations

from pathlib import Path

import typer

from cli.context import command, workspace
from cli.users_command import read_password_file


def register(app: typer.Typer) -> None:
    @app.command("init")
    @command
    def init(
        demo: bool = typer.Option(False, "--demo", help="Fill the workspace with the demo company: data, metadata, metrics."),
        scale: float = typer.Option(1.0, "--scale", help="Demo size: 1 gives ~100,000 order items, 100 about 10 million; "
                                    "below 1 (e.g. 0.1) for quick tries."),
        seed: int = typer.Option(42, "--seed", help="Seed of the demo data; the same seed gives the same data everywhere."),
        force: bool = typer.Option(False, "--force", help="Replace an existing workspace's warehouse and catalog "
                                   "(settings, state, models and runs are kept)."),
        models: bool = typer.Option(True, "--models/--no-models", help="With --demo, also build the tiny local base "
                                    "models (tiny-qwen3, tiny-llama) for trying fine-tuning with no download."),
        admin_password_file: Path | None = typer.Option(None, "--admin-password-file", help="The first user's "
                                                        "(`admin`) password, from this file's first line; without it "
                                                        "a password is made and printed once."),
    ) -> None:
        """Create a workspace (settings, warehouse, catalog); with --demo, a demo company to explore."""
        from catalog.workspace_setup import init_workspace

        ws = workspace(require=False)
        from core.users import check_password

        # Checked before anything is made, so a bad password file leaves no workspace behind.
        given = check_password(read_password_file(admin_password_file)) if admin_password_file else None
        summary = init_workspace(ws, demo=demo, scale=scale, seed=seed, force=force)
        verb = "Replaced the warehouse and catalog of" if summary.replaced else "Created"
        first_admin(ws, given)
        if not demo:
            typer.echo(f"{verb} workspace {summary.root}.")
            typer.echo("Next: import data with `lathe catalog import FILE`, or try `lathe init --demo --force`.")
            return
        total = sum(summary.row_counts.values())
        typer.echo(f"{verb} workspace {summary.root} with the demo company (scale {scale:g}, seed {seed}) "
                   f"in {summary.seconds:.1f} s: {total:,} rows in {len(summary.row_counts)} tables.")
        width = max(len(t) for t in summary.row_counts)
        for table, n in summary.row_counts.items():
            typer.echo(f"  {table:<{width}}  {n:>12,}")
        if models:
            from runtimes.training.tiny_models import install_demo_models

            built = install_demo_models(ws)
            typer.echo(f"Base models for trying fine-tuning (random weights: for the pipeline, not for quality): "
                       f"{', '.join(p.name for p in built) if built else 'already present'} in models/base/.")
        typer.echo("Metadata, owners, glossary and metrics are in catalog/. Next: `lathe tour`.")


def first_admin(ws, password: str | None) -> None:
    """A fresh workspace's one admin (`admin`), its password printed once; a workspace with users keeps them."""
    from core.principal import ADMIN
    from core.users import UserStore

    store = UserStore(ws)
    if store.list():
        return
    made = store.add("admin", [ADMIN], password)
    typer.echo("Added user `admin` (admin)" + (f"; password (shown once): {made}" if password is None else "") + ".")

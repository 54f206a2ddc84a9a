"""`lathe models merge NAME@N`: merge a registered LoRA adapter version into its base model, registered as a new
version (pending approval) whose lineage names the adapter version.

Training libraries are imported only when the command runs, so `lathe --help` stays fast.
"""
from __future__ import annotations

import typer

from cli.context import command, print_json, workspace


def register(models_app: typer.Typer) -> None:
    models_app.command("merge")(command(models_merge))


def models_merge(ref: str = typer.Argument(..., help="The adapter version, as NAME@VERSION (e.g. tiny-qwen3-sft@2)."),
                 as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Merge an adapter version into its base model as a new registered version."""
    from runtimes.training.merge import merge_adapter, parse_ref

    name, version = parse_ref(ref)
    merged = merge_adapter(workspace(), name, version)
    if as_json:
        print_json(merged.to_json())
        return
    typer.echo(f"{merged.name} version {merged.version}: {name}@{version} merged into its base at {merged.source} "
               "(pending approval)")

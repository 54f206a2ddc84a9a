"""`lathe features …`: apply feature view YAML from the catalog, list and describe the versions, materialize
them into the online store, get online values by entity key, and import a Feast feature repository's views.

The feature store is imported only when a command runs, so `lathe --help` stays fast.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from cli.context import command, print_json, print_table, workspace

features_app = typer.Typer(help="Feature views: apply, list, describe, materialize, get, import.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")


@features_app.command("apply")
@command
def features_apply(
    files: list[Path] = typer.Argument(None, help="YAML files to copy into catalog/features/ first; default: apply "
                                                  "what catalog/features/ holds."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check every feature view against the warehouse; record each changed one as a new version."""
    from core.yaml_files import write_atomic
    from runtimes.features.definitions import features_dir, load_file
    from runtimes.features.registry import apply

    ws = workspace()
    for f in files or []:
        load_file(f)  # a bad file is refused before anything is copied
    for f in files or []:
        write_atomic(features_dir(ws) / f.name, f.read_text(encoding="utf-8"))
    done = apply(ws)
    if as_json:
        print_json([{"view": a.version.name, "version": a.version.version, "change": a.change} for a in done])
        return
    for a in done:
        typer.echo(f"{a.version.ref}: {a.change} ({len(a.version.view.features)} features, from {a.version.defined_at})")


@features_app.command("list")
@command
def features_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every applied feature view: newest version, entity, features, TTL, owner and last materialization."""
    from runtimes.features.materialize import watermark
    from runtimes.features.registry import latest, versions

    ws = workspace()
    rows = []
    for vv in latest(ws).values():
        v = vv.view
        rows.append({"view": v.name, "version": vv.version, "versions": len(versions(ws, v.name)),
                     "entity": f"{v.entity.name} ({', '.join(v.entity.keys)})", "features": len(v.features),
                     "ttl": v.ttl or "", "owner": v.owner, "materialized_to": watermark(ws, vv) or ""})
    if as_json:
        print_json(rows)
        return
    print_table(["view", "version", "entity", "features", "ttl", "owner", "materialized to"],
                [[r["view"], r["version"], r["entity"], r["features"], r["ttl"], r["owner"], r["materialized_to"]]
                 for r in rows])


@features_app.command("describe")
@command
def features_describe(view: str = typer.Argument(..., help="A view, or view@VERSION."),
                      as_json: bool = typer.Option(False, "--json")) -> None:
    """One view version: its source, features with types and descriptions, and each feature's source columns."""
    from runtimes.features.definitions import parse_refs
    from runtimes.features.materialize import watermark
    from runtimes.features.registry import get_version, versions

    ws = workspace()
    name, version, _ = parse_refs([view])[0]
    vv = get_version(ws, name, version)
    v = vv.view
    data = {"view": v.name, "version": vv.version, "versions": [x.version for x in versions(ws, v.name)],
            "description": v.description, "owner": v.owner, "entity": v.entity.model_dump(),
            "source": v.source.source.fields(), "event_time": v.event_time, "ttl": v.ttl,
            "defined_at": vv.defined_at, "applied_by": vv.applied_by,
            "applied_at": dt.datetime.fromtimestamp(vv.applied_at, dt.timezone.utc).isoformat(timespec="seconds"),
            "materialized_to": watermark(ws, vv),
            "features": [{**f.model_dump(exclude_none=True), "sources": vv.lineage.get(f.name, [])} for f in v.features]}
    if as_json:
        print_json(data)
        return
    print_table(["field", "value"], [[k, val] for k, val in data.items() if k != "features" and val not in (None, "")],
                title=vv.ref)
    print_table(["feature", "type", "description", "sources"],
                [[f["name"], f["type"], f["description"], ", ".join(f["sources"])] for f in data["features"]])


@features_app.command("materialize")
@command
def features_materialize(
    views: list[str] = typer.Argument(None, help="Views to materialize; default: every applied view."),
    until: str | None = typer.Option(None, "--until", help="Materialize rows up to this time (ISO); default: now."),
    full: bool = typer.Option(False, "--full", help="Start again from the first row instead of the last run."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Copy the latest values per entity into the online store, from where the last run ended."""
    from core.errors import UserError
    from runtimes.features.materialize import materialize

    try:
        end = dt.datetime.fromisoformat(until) if until else None
    except ValueError:
        raise UserError(f"--until `{until}` is not an ISO time such as 2025-06-01 or 2025-06-01T12:00") from None
    if end is not None and end.tzinfo is None:
        end = end.replace(tzinfo=dt.timezone.utc)
    done = materialize(workspace(), views or None, until=end, full=full)
    if as_json:
        print_json([m.__dict__ for m in done])
        return
    for m in done:
        typer.echo(f"{m.ref}: {m.rows} entities written, rows after {m.start or 'the start'} up to {m.end}")


@features_app.command("get")
@command
def features_get(
    features: list[str] = typer.Argument(..., help="view, view:feature or view@VERSION:feature (several)."),
    keys: list[str] = typer.Option(..., "--key", "-k", help="An entity key (repeatable); for a view keyed by "
                                   "several columns, column=value pairs: driver_id=1001,customer_id=5."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Online values by entity key (empty where none is stored or the value is older than the view's TTL)."""
    from runtimes.features.online_features import get_online_features

    rows = get_online_features(workspace(), features, [_key(k) for k in keys])
    if as_json:
        print_json([{"key": k, **r} for k, r in zip(keys, rows)])
        return
    names = list(rows[0]) if rows else []
    print_table(["key", *names], [[k, *r.values()] for k, r in zip(keys, rows)])



@features_app.command("import")
@command
def features_import(
    repo: Path = typer.Argument(..., help="A Feast feature repository (the folder with feature_store.yaml)."),
    owner: str | None = typer.Option(None, "--owner", help="Owner of views that name none; default: you."),
    skip_unsupported: bool = typer.Option(False, "--skip-unsupported", help="Leave out, and list, what has no "
                                          "Lathe equivalent (on-demand views, non-file sources) instead of stopping."),
    out: Path | None = typer.Option(None, "--out", help="The YAML file to write; default: "
                                    "catalog/features/<repository>.yml."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Read a Feast repository's definitions (without running its code) and write them as feature view YAML."""
    from core.principal import Principal
    from runtimes.features.feast_import import import_feast_repo

    ws = workspace()
    target, got = import_feast_repo(ws, repo, owner=owner or Principal.local_admin().name,
                                    skip_unsupported=skip_unsupported, out=out)
    if as_json:
        print_json({"file": str(target), "views": [v.name for v in got.views], "skipped": got.skipped,
                    "tables": got.files})
        return
    typer.echo(f"wrote {len(got.views)} feature views to {target}: {', '.join(v.name for v in got.views)}")
    for s in got.skipped:
        typer.echo(f"  not imported: {s}")
    typer.echo("The views read these warehouse tables; load any not there yet (`lathe catalog import FILE`):")
    for table, path in got.files.items():  # Feast reads a relative path from the repository's folder
        typer.echo(f"  {table}: from {path if '://' in path or Path(path).is_absolute() else repo / path}")
    typer.echo("Then `lathe features apply` checks them against the warehouse and records them.")


def _key(text: str) -> str | dict[str, str]:
    """`1001`, or `driver_id=1001,customer_id=5` for a key of several columns."""
    if "=" not in text:
        return text
    pairs = [p.split("=", 1) for p in text.split(",")]
    if any(len(p) != 2 or not p[0].strip() for p in pairs):
        from core.errors import UserError

        raise UserError(f"--key `{text}` mixes forms: give one value, or column=value pairs joined by commas "
                        "(driver_id=1001,customer_id=5)")
    return {c.strip(): v.strip() for c, v in pairs}

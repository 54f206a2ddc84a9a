"""Make a workspace, optionally holding the demo company (data, metadata, semantic layer).

Everything is built in a staging folder beside the workspace and moved into place only when it is
complete, so a failed or interrupted init never leaves a half-made workspace, and `--force` never
loses the old warehouse and catalog unless the new ones are ready.
"""
from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import duckdb

from catalog.demo import company as demo_company, metadata as demo_metadata
from core.errors import UserError
from catalog.profiling import build_profile
from core.settings import DEFAULT_TOML
from core.workspace import Workspace, WorkspaceError
from core.yaml_files import write_atomic

# What `--force` replaces; everything else a workspace holds (settings, state, models, runs) is kept.
REPLACED = ("warehouse.duckdb", "warehouse.duckdb.wal", "catalog", ".cache")
DEMO_SEMANTIC_FILE = "demo.yml"


@dataclass
class InitSummary:
    root: Path
    demo: bool
    replaced: bool
    row_counts: dict[str, int] = field(default_factory=dict)
    scale: float | None = None
    seed: int | None = None
    seconds: float = 0.0


def demo_semantic_text() -> str:
    """The demo's MetricFlow YAML as shipped with Lathe (package data)."""
    return resources.files("catalog.demo").joinpath("semantic.yml").read_text(encoding="utf-8")


def install_demo(ws: Workspace, *, scale: float = 1.0, seed: int = demo_company.DEFAULT_SEED) -> dict[str, int]:
    """Generate the demo data into a fresh workspace, then write its metadata (one catalog transaction)
    and its semantic models; returns the row count of each table."""
    from catalog.store import CatalogStore

    from catalog.warehouse import connect_writer

    with _memory_advice(), connect_writer(ws) as con:
        counts = demo_company.generate(con, scale, seed)
        # Profiling fills in types, stats and samples around the hand-written descriptions.
        tables = [build_profile(con, t.name, t).table for t in demo_metadata.TABLES]
    write_atomic(ws.catalog_dir / "semantic" / DEMO_SEMANTIC_FILE, demo_semantic_text())
    store = CatalogStore(ws)
    with store.transaction() as txn:
        for t in tables:
            txn.put_table(t)
        txn.put_owners(list(demo_metadata.OWNERS))
        txn.put_glossary(list(demo_metadata.GLOSSARY))
    store.load()  # the shipped files must read back; a broken package fails the init, not a later command
    return counts


@contextmanager
def _memory_advice() -> Iterator[None]:
    """Running out of memory is the user's to fix (settings or scale); other DuckDB errors are bugs."""
    try:
        yield
    except duckdb.OutOfMemoryException as e:
        raise UserError(f"the warehouse ran out of memory ({str(e).splitlines()[0]}); raise `memory_limit` "
                        "under [sql] in lathe.toml or use a smaller --scale") from None


def init_workspace(ws: Workspace, *, demo: bool = False, scale: float = 1.0,
                   seed: int = demo_company.DEFAULT_SEED, force: bool = False) -> InitSummary:
    """Create the workspace at `ws.root` (with the demo company when `demo`); refuse an existing one
    unless `force`, which replaces its warehouse and catalog and keeps its settings, state and models."""
    started = time.monotonic()
    if demo:
        demo_company.check_scale(scale)
        if not 0 <= seed < 2**63:
            raise UserError(f"--seed must be a whole number from 0 to {2**63 - 1}; got {seed}")
    root = ws.root
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root} is a file, not a directory: choose another --workspace")
    existing = ws.warehouse_path.exists() or ws.catalog_dir.exists()
    if existing and not force:
        raise WorkspaceError(f"a Lathe workspace already exists at {root}: use `lathe init --force` to replace its "
                             "warehouse and catalog (settings, state, models and runs are kept), or choose "
                             "another --workspace")

    missing_parents = [p for p in reversed(root.parents) if not p.exists()]
    root.parent.mkdir(parents=True, exist_ok=True)
    stage = root.parent / f".{root.name}.init-{uuid.uuid4().hex[:10]}"
    trash = root / f".init-replaced-{uuid.uuid4().hex[:10]}"
    moved: list[Path] = []
    try:
        stage.mkdir()
        staged = Workspace(stage)
        settings = (ws.settings_path.read_text(encoding="utf-8") if ws.settings_path.exists()
                    else DEFAULT_TOML.format(name=root.name))
        staged.settings_path.write_text(settings, encoding="utf-8")
        staged.create()
        counts = install_demo(staged, scale=scale, seed=seed) if demo else {}
        _move_into_place(stage, root, trash, moved, replace=existing)
    except BaseException:
        for target in moved:  # undo a move that stopped half-way
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        _restore(root, trash)
        shutil.rmtree(stage, ignore_errors=True)
        for p in reversed(missing_parents):
            if p.exists() and not any(p.iterdir()):
                p.rmdir()
        raise
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(stage, ignore_errors=True)
    return InitSummary(root=root, demo=demo, replaced=existing, row_counts=counts,
                       scale=scale if demo else None, seed=seed if demo else None,
                       seconds=time.monotonic() - started)


def _move_into_place(stage: Path, root: Path, trash: Path, moved: list[Path], *, replace: bool) -> None:
    if not root.exists():
        stage.rename(root)  # one rename: the workspace appears whole or not at all
        return
    if replace:
        trash.mkdir()
        for name in REPLACED:
            if (root / name).exists():
                (root / name).rename(trash / name)
    for entry in sorted(stage.iterdir()):
        target = root / entry.name
        if not target.exists():
            entry.rename(target)
            moved.append(target)


def _restore(root: Path, trash: Path) -> None:
    """Put back what a failed `--force` had moved aside."""
    if not trash.exists():
        return
    for entry in trash.iterdir():
        target = root / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        entry.rename(target)
    trash.rmdir()

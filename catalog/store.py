"""The catalog on disk: YAML files under `workspace/catalog/`, read into a `Catalog` and written atomically.

Layout: `tables/<name>.yml` (one table each), `glossary.yml`, `owners.yml`, `lineage.yml`, and
`semantic/**/*.yml` in MetricFlow's own format. A change is staged whole, then applied with a
journal, so a crash or an error never leaves half of a change behind; a change staged together with a warehouse
change is settled by what the warehouse committed (see `catalog.warehouse_change`).
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from catalog.metadata import Catalog, ColumnLineage, GlossaryTerm, Owner, Table
from catalog.semantic.spec import SemanticManifest
from core.workspace import Workspace
from core.yaml_files import CatalogFileError, dump_yaml, load_documents, load_yaml, validate

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_MARKER = "COMMIT"
_INTENT = "INTENT"  # a change that goes with a warehouse change; locked while the process that staged it lives
_SEMANTIC_CACHE: dict[str, tuple[tuple, SemanticManifest]] = {}
_DELETE = ".delete"


def table_filename(name: str) -> str:
    return _SAFE_NAME.sub("_", name) + ".yml"


def _dump_model(obj: Any) -> Any:
    return obj.model_dump(mode="json", exclude_none=True, exclude_defaults=True, by_alias=True)


def load_semantic_file(path: Path) -> SemanticManifest:
    """One MetricFlow YAML file (any number of documents) as a manifest; other top-level keys are ignored."""
    models, metrics = [], []
    for data, lines in load_documents(path):
        if not isinstance(data, dict):
            continue
        # MetricFlow's own manifests hold one `semantic_model:` or `metric:` per document.
        for one_key, key in (("semantic_model", "semantic_models"), ("metric", "metrics")):
            if one_key in data and key not in data:
                data[key] = [data.pop(one_key)]
                lines.update({(key, 0) + k[1:]: v for k, v in list(lines.items()) if k[:1] == (one_key,)})
        for key, bucket in (("semantic_models", models), ("metrics", metrics)):
            items = data.get(key) or []
            if not isinstance(items, list):
                raise CatalogFileError(path, lines.get((key,)), f"`{key}` must be a list")
            for i, item in enumerate(items):
                one = validate(SemanticManifest, {key: [item]}, path, lines, prefix=())
                got = getattr(one, key)[0]
                got.__pydantic_extra__ = {**(got.__pydantic_extra__ or {}), "_source": f"{path}:{lines.get((key, i), '?')}"}
                bucket.append(got)
    return SemanticManifest(semantic_models=models, metrics=metrics)


class CatalogStore:
    def __init__(self, workspace: Workspace):
        self.ws = workspace
        self.dir = workspace.catalog_dir

    # ---- reading -------------------------------------------------------------------------
    def load(self) -> Catalog:
        self.recover()
        cat = Catalog()
        tdir = self.dir / "tables"
        if tdir.exists():
            for f in sorted(tdir.glob("*.yml")):
                t = self._read_table(f)
                cat.tables[t.name] = t
        cat.glossary = {g.name: g for g in self._read_list("glossary.yml", "glossary", GlossaryTerm)}
        cat.owners = {o.name: o for o in self._read_list("owners.yml", "owners", Owner)}
        cat.lineage = self._read_list("lineage.yml", "lineage", ColumnLineage)
        cat.semantic = self.load_semantic()
        return cat

    def load_table(self, name: str) -> Table | None:
        self.recover()
        f = self.dir / "tables" / table_filename(name)
        return self._read_table(f) if f.exists() else None

    def load_semantic(self) -> SemanticManifest:
        """Every MetricFlow file of the workspace as one manifest (shared and cached: treat it as read-only)."""
        self.recover()
        sdir = self.dir / "semantic"
        files = sorted(sdir.rglob("*.y*ml")) if sdir.exists() else []
        # Parsed once per process while the files are unchanged: a long-running agent compiles many queries.
        key = tuple((str(f), st.st_ino, st.st_mtime_ns, st.st_size) for f in files for st in (f.stat(),))
        hit = _SEMANTIC_CACHE.get(str(sdir))
        if hit is not None and hit[0] == key:
            return hit[1]
        manifest = self._read_semantic(files)
        _SEMANTIC_CACHE[str(sdir)] = (key, manifest)
        return manifest

    def _read_semantic(self, files: list[Path]) -> SemanticManifest:
        models: dict[str, Any] = {}
        metrics: dict[str, Any] = {}
        for f in files:
            part = load_semantic_file(f)
            for bucket, items, kind in ((models, part.semantic_models, "semantic model"), (metrics, part.metrics, "metric")):
                for it in items:
                    if it.name in bucket:
                        first = (bucket[it.name].__pydantic_extra__ or {}).get("_source", "?")
                        here = (it.__pydantic_extra__ or {}).get("_source", str(f))
                        raise CatalogFileError(f, None, f"{kind} `{it.name}` is defined twice: at {first} and at {here}")
                    bucket[it.name] = it
        return SemanticManifest(semantic_models=list(models.values()), metrics=list(metrics.values())).with_measure_metrics()

    def _read_table(self, f: Path) -> Table:
        data, lines = load_yaml(f)
        t = validate(Table, data, f, lines)
        if table_filename(t.name) != f.name:  # the file is how a table is found: a mismatch hides or shadows one
            raise CatalogFileError(f, lines.get(("name",)), f"name `{t.name}` does not match the file name; "
                                   f"rename the file to {table_filename(t.name)} or set `name: {f.stem}`")
        return t

    def _read_list(self, filename: str, key: str, model: type) -> list:
        f = self.dir / filename
        if not f.exists():
            return []
        data, lines = load_yaml(f)
        items = (data or {}).get(key, []) if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise CatalogFileError(f, 1, f"expected a mapping with a `{key}:` list")
        return [validate(model, it, f, lines, prefix=(key, i)) for i, it in enumerate(items)]

    # ---- writing -------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator["CatalogTransaction"]:
        """Collect changes; on leaving the block without error they are applied all together."""
        txn = CatalogTransaction(self)
        try:
            yield txn
            txn.stage()
        except BaseException:
            txn.abort()
            raise
        txn.apply()

    def recover(self, warehouse: Any = None) -> None:
        """Finish a change that was committed but not fully applied; drop one that was never committed.

        A change staged with a warehouse change whose process died is applied or dropped as the warehouse says
        (asked on `warehouse`, a writer connection, when given); one whose process lives is left to it."""
        if not self.dir.exists():
            return
        for staging in self.dir.glob(".staging-*"):
            if (staging / _MARKER).exists():
                CatalogTransaction.apply_dir(self.dir, staging)
            elif (staging / _INTENT).exists():
                self._settle(staging, warehouse)
            else:
                shutil.rmtree(staging, ignore_errors=True)

    def _settle(self, staging: Path, warehouse: Any) -> None:
        from catalog.warehouse_change import ledger_holds

        try:
            fd = os.open(staging / _INTENT, os.O_RDONLY)
        except FileNotFoundError:  # settled meanwhile by its own process
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # its process is still at work
            committed = ledger_holds(self.ws, staging.name, warehouse)
            if committed:
                (staging / _MARKER).touch()
                CatalogTransaction.apply_dir(self.dir, staging)
            elif committed is False:
                shutil.rmtree(staging, ignore_errors=True)
        finally:
            os.close(fd)


class CatalogTransaction:
    """Pending catalog changes: files to write and files to delete, relative to `catalog/`."""

    def __init__(self, store: CatalogStore):
        self.store = store
        self.writes: dict[str, str] = {}
        self.deletes: set[str] = set()
        self.staging: Path | None = None
        self._intent_fd: int | None = None

    def put_table(self, table: Table) -> None:
        self.writes[f"tables/{table_filename(table.name)}"] = dump_yaml(_dump_model(table))

    def delete_table(self, name: str) -> None:
        self.deletes.add(f"tables/{table_filename(name)}")

    def put_glossary(self, terms: list[GlossaryTerm]) -> None:
        self.writes["glossary.yml"] = dump_yaml({"glossary": [_dump_model(t) for t in terms]})

    def put_owners(self, owners: list[Owner]) -> None:
        self.writes["owners.yml"] = dump_yaml({"owners": [_dump_model(o) for o in owners]})

    def put_lineage(self, lineage: list[ColumnLineage]) -> None:
        self.writes["lineage.yml"] = dump_yaml({"lineage": [_dump_model(x) for x in lineage]})

    def put_semantic(self, name: str, manifest: SemanticManifest | dict) -> None:
        """Write one MetricFlow file `semantic/<name>.yml`, replacing an earlier import of the same name."""
        if isinstance(manifest, SemanticManifest):
            data = {}
            for key in ("semantic_models", "metrics"):
                items = [{k: v for k, v in _dump_model(x).items() if not k.startswith("_")} for x in getattr(manifest, key)]
                if items:
                    data[key] = items
        else:
            data = manifest
        self.writes[f"semantic/{_SAFE_NAME.sub('_', name)}.yml"] = dump_yaml(data)

    def stage(self, *, intent: bool = False) -> None:
        """Write every change under a staging folder; nothing visible changes, and a crash now drops it.

        `intent`: the change goes with a warehouse change, and a crash is settled by what the warehouse committed."""
        root = self.store.dir
        root.mkdir(parents=True, exist_ok=True)
        self.staging = root / f".staging-{uuid.uuid4().hex[:12]}"
        self.staging.mkdir()
        if intent:
            self._intent_fd = os.open(self.staging / _INTENT, os.O_RDONLY | os.O_CREAT, 0o644)
            fcntl.flock(self._intent_fd, fcntl.LOCK_EX)
        for rel, text in self.writes.items():
            p = self.staging / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
        for rel in self.deletes - set(self.writes):
            p = self.staging / (rel + _DELETE)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
        _fsync_tree(self.staging)

    def apply(self) -> None:
        """Mark the staged change committed, then move it into place (a crash from here on is finished later).

        Callers that also change the warehouse commit DuckDB between `stage` and `apply`: a crash in between
        leaves data without their new metadata, which a re-import repairs, never metadata without data.
        """
        if self.staging is not None:
            (self.staging / _MARKER).touch()
            self.apply_dir(self.store.dir, self.staging)
            self.staging = None
        self._unlock()

    def abort(self) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        self._unlock()

    def _unlock(self) -> None:
        if self._intent_fd is not None:
            os.close(self._intent_fd)
            self._intent_fd = None

    @staticmethod
    def apply_dir(root: Path, staging: Path) -> None:
        # Idempotent: a crash part-way through is finished by running it again (see `recover`).
        for p in sorted(staging.rglob("*")):
            if p.is_dir() or (p.parent == staging and p.name in (_MARKER, _INTENT)):
                continue
            rel = p.relative_to(staging)
            if p.name.endswith(_DELETE):
                (root / str(rel)[: -len(_DELETE)]).unlink(missing_ok=True)
                p.unlink()
            else:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(p, root / rel)
        shutil.rmtree(staging, ignore_errors=True)


def _fsync_tree(d: Path) -> None:
    for p in d.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())

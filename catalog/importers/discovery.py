"""Which files an import reads: paths given by the user, directories walked, each file sorted by kind.

Only looks at names and the file system; it never opens a file's content. Files it will not import
are listed as notes (and an explicitly named one it cannot import is an error).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import UserError

DATA_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
                 ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson"}
COMPRESSED = (".gz", ".zst")
YAML_SUFFIXES = (".yml", ".yaml")
# dbt's own configuration: read by dbt, not catalog content.
DBT_CONFIG_FILES = {"dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml", "selectors.yml",
                    "sources.yml", "package-lock.yml"}
# Inside a dbt project these hold build output and installed packages, never the project's own files.
DBT_OUTPUT_DIRS = {"target", "dbt_packages", "dbt_modules", "logs"}

_NOT_IDENT = re.compile(r"[^0-9a-z_]+")


class ImportPathError(UserError):
    """A path that does not exist or cannot be imported."""


@dataclass(frozen=True)
class DataFile:
    path: Path
    format: str  # csv, parquet, json, ndjson
    table: str


@dataclass(frozen=True)
class YamlFile:
    path: Path
    project_dir: Path  # the directory a MetricFlow project in this file is named after


@dataclass
class Discovered:
    data: list[DataFile] = field(default_factory=list)
    yaml: list[YamlFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def data_format(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    return DATA_SUFFIXES.get(suffixes[-1]) if suffixes else None


def table_name_for(path: Path) -> str:
    """`orders.csv` -> `orders`, `Order Items 2024.csv.gz` -> `order_items_2024`: a plain SQL identifier."""
    name = path.name
    for _ in range(2):  # the data suffix and a compression suffix
        stem, dot, suffix = name.rpartition(".")
        if dot and ("." + suffix.lower() in DATA_SUFFIXES or "." + suffix.lower() in COMPRESSED):
            name = stem
    ident = _NOT_IDENT.sub("_", name.lower()).strip("_")
    if not ident:
        raise ImportPathError(f"{path}: cannot make a table name from this file name; rename the file")
    return f"t_{ident}" if ident[0].isdigit() else ident


def discover(paths: list[Path]) -> Discovered:
    """Every file under the given paths, by kind; a missing path or an explicit unsupported file is an error."""
    found = Discovered()
    seen: set[Path] = set()
    skipped_other: list[str] = []
    for given in paths:
        p = Path(given).expanduser()
        if not p.exists():
            raise ImportPathError(f"{given}: no such file or directory")
        p = p.resolve()
        if p.is_dir():
            for f in _walk(p, found.notes):
                if f not in seen:
                    seen.add(f)
                    _classify(f, p, found, skipped_other, explicit=False)
        elif p not in seen:
            seen.add(p)
            _classify(p, p.parent, found, skipped_other, explicit=True)
    if skipped_other:
        shown = ", ".join(skipped_other[:5]) + (f" and {len(skipped_other) - 5} more" if len(skipped_other) > 5 else "")
        found.notes.append(f"skipped {len(skipped_other)} file(s) that are neither data nor YAML: {shown}")
    _check_table_names(found.data)
    return found


def _walk(root: Path, notes: list[str]) -> list[Path]:
    out: list[Path] = []
    stack = [root]
    while stack:
        d = stack.pop()
        is_dbt_project = (d / "dbt_project.yml").exists()
        children = sorted(d.iterdir())
        for c in children:
            if c.name.startswith(".") or c.name == "__pycache__":
                continue
            if c.is_dir():
                if is_dbt_project and c.name in DBT_OUTPUT_DIRS:
                    notes.append(f"skipped {c}/: dbt build output or installed packages")
                    continue
                stack.append(c)
            elif c.is_file():
                out.append(c)
    return sorted(out)


def _classify(f: Path, project_dir: Path, found: Discovered, skipped_other: list[str], *, explicit: bool) -> None:
    low = f.name.lower()
    fmt = data_format(f)
    if fmt is not None:
        found.data.append(DataFile(f, fmt, table_name_for(f)))
    elif low in DBT_CONFIG_FILES:
        found.notes.append(f"skipped {f}: dbt configuration, not catalog content")
    elif low.endswith(YAML_SUFFIXES):
        found.yaml.append(YamlFile(f, project_dir))
    elif low.endswith(".sql"):
        found.notes.append(f"skipped {f}: SQL models are not imported (import their tables' data instead)")
    elif explicit:
        kinds = ", ".join(sorted(DATA_SUFFIXES) + list(YAML_SUFFIXES))
        raise ImportPathError(f"{f}: not a file Lathe can import; expected one of {kinds} (data may be .gz)")
    else:
        skipped_other.append(f.name)


def _check_table_names(data: list[DataFile]) -> None:
    by_name: dict[str, DataFile] = {}
    for d in data:
        other = by_name.setdefault(d.table, d)
        if other is not d:
            raise ImportPathError(
                f"{other.path} and {d.path} would both become table `{d.table}`; rename one or import them separately")

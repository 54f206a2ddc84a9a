"""Benchmark: import Lathe YAML metadata for 10,000 tables / 200,000 columns (budget: 60 s).

Times `import_paths` on one file with a `tables:` list and on 10,000 one-table files, and prints each
beside the time to merely parse the same YAML with the C loader (the floor), as a ratio.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catalog.importers import import_paths  # noqa: E402
from core.workspace import Workspace  # noqa: E402

PII = ["email", "phone", None, None, None]


def table_doc(i: int, n_cols: int) -> dict:
    return {"name": f"table_{i:05d}", "description": f"Table number {i}, generated for the benchmark.",
            "owner": f"team_{i % 17}", "tags": ["bench", f"group_{i % 50}"],
            "columns": [{"name": f"col_{j:02d}", "type": "VARCHAR" if j % 2 else "BIGINT",
                         "description": f"Column {j} of table {i}.",
                         **({"pii": PII[j % 5]} if PII[j % 5] else {})} for j in range(n_cols)]}


def parse_floor(files: list[Path]) -> float:
    t0 = time.perf_counter()
    for f in files:
        yaml.load(f.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return time.perf_counter() - t0


def run(kind: str, root: Path, n_tables: int, n_cols: int) -> tuple[float, float]:
    src = root / f"src_{kind}"
    src.mkdir()
    dumper = yaml.CSafeDumper
    if kind == "one_file":
        files = [src / "tables.yml"]
        files[0].write_text(yaml.dump({"tables": [table_doc(i, n_cols) for i in range(n_tables)]}, Dumper=dumper))
    else:
        files = []
        for i in range(n_tables):
            f = src / f"table_{i:05d}.yml"
            f.write_text(yaml.dump(table_doc(i, n_cols), Dumper=dumper))
            files.append(f)
    ws = Workspace.resolve(root / f"ws_{kind}")
    ws.create()
    floor = parse_floor(files)
    t0 = time.perf_counter()
    report = import_paths(ws, [src])
    took = time.perf_counter() - t0
    assert sum(len(m.tables) for m in report.metadata) == n_tables
    return took, floor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tables", type=int, default=10_000)
    ap.add_argument("--columns", type=int, default=20, help="columns per table")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lathe-bench-") as tmp:
        for kind in ("one_file", "one_file_per_table"):
            took, floor = run(kind, Path(tmp), args.tables, args.columns)
            print(f"{kind:>20}: {args.tables:,} tables / {args.tables * args.columns:,} columns "
                  f"imported in {took:.1f} s (budget 60 s); bare YAML parse {floor:.1f} s; ratio {took / floor:.1f}x")


if __name__ == "__main__":
    main()

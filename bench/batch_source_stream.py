"""A batch's source streamed from DuckDB in chunks vs fetched whole, on a 1,000,000-row table: rows per second and
peak resident memory of each, side by side, and their ratios. Only the source reading is measured (the rows read,
keyed, turned into prompts and hashed, as a batch's plan and worker do); no model runs.

Run: .venv/bin/python bench/batch_source_stream.py [--rows 1000000]
Each way runs in a fresh process of its own, so the peak memory of one never counts for the other; rows per CPU
second are printed beside rows per wall-clock second, since on a shared machine the wall clock measures the load.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STATEMENT = "SELECT doc_id, body FROM docs"


def _build(root: Path, rows: int) -> Path:
    """A workspace whose catalog holds `docs` (doc_id, body) with `rows` rows, imported from a Parquet file."""
    import duckdb

    from catalog.importers import import_paths
    from core.workspace import Workspace

    ws = Workspace(root / "ws")
    ws.create()
    parquet = root / "docs.parquet"
    duckdb.connect().execute(
        f"COPY (SELECT i AS doc_id, 'Where is order ' || i || '? It was due on day ' || (i % 7) || '.' AS body "
        f"FROM range({rows}) t(i)) TO '{parquet}' (FORMAT parquet)")
    import_paths(ws, [parquet])
    return ws.root


def _measure(ws_root: str, how: str) -> dict:
    """One way of reading the source, in this process: rows, seconds, peak resident MiB."""
    from core.offline import apply_offline_env

    apply_offline_env()
    from catalog.pii_masking import mask_pii
    from catalog.query_schema import warehouse_catalog
    from catalog.sql_guard import guard
    from catalog.store import CatalogStore
    from catalog.warehouse import connect_reader
    from core.principal import Principal
    from core.workspace import Workspace
    from runtimes.serving.batch.source import SourceRows, scan_rows, stream_rows

    ws = Workspace.resolve(ws_root)
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime  # CPU time is what a shared, busy machine leaves comparable
    started = time.perf_counter()
    if how == "stream":
        scan = scan_rows(stream_rows(ws, STATEMENT), "body", "doc_id", "chat")
    else:  # the whole result in memory at once, then the same rows, prompts and hash
        with connect_reader(ws) as con:
            tables = warehouse_catalog(con, CatalogStore(ws).load())
            masked = mask_pii(con, guard(STATEMENT, None, tables), tables, Principal.local_admin())
            cur = con.execute(masked.tree.sql(dialect="duckdb"))
            columns, rows = [d[0] for d in cur.description], [list(r) for r in cur.fetchall()]
        scan = scan_rows([SourceRows(sql=STATEMENT, columns=columns, rows=rows, tables=["docs"])], "body", "doc_id",
                         "chat")
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    return {"how": how, "rows": scan.rows, "seconds": round(seconds, 2), "cpu_s": round(cpu, 2),
            "rows_per_s": round(scan.rows / seconds), "rows_per_cpu_s": round(scan.rows / cpu),
            "peak_mib": round(usage.ru_maxrss / 1024, 1), "hash": scan.content_hash}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--measure", nargs=2, metavar=("WORKSPACE", "HOW"), help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.measure:
        print(json.dumps(_measure(*a.measure)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        ws_root = _build(Path(tmp), a.rows)
        results = {}
        for how in ("stream", "full"):
            out = subprocess.run([sys.executable, __file__, "--measure", str(ws_root), how], check=True,
                                 capture_output=True, text=True, cwd=ROOT).stdout
            results[how] = json.loads(out.strip().splitlines()[-1])
    s, f = results["stream"], results["full"]
    assert s["rows"] == f["rows"] == a.rows and s["hash"] == f["hash"], "the two ways read different rows"
    print(f"{'':<8}{'rows':>11}{'wall s':>8}{'CPU s':>8}{'rows/s':>10}{'rows/CPU s':>12}{'peak MiB':>10}")
    for r in (s, f):
        print(f"{r['how']:<8}{r['rows']:>11,}{r['seconds']:>8}{r['cpu_s']:>8}{r['rows_per_s']:>10,}"
              f"{r['rows_per_cpu_s']:>12,}{r['peak_mib']:>10}")
    print(f"stream/full: rows/s {s['rows_per_s'] / f['rows_per_s']:.2f}, rows per CPU second "
          f"{s['rows_per_cpu_s'] / f['rows_per_cpu_s']:.2f}, peak memory {s['peak_mib'] / f['peak_mib']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

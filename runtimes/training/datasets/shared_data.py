"""Importers for the public training sets kept beside the project: GSM8K (SFT, RLVR) and HH-RLHF (DPO).

Each becomes a warehouse table with its catalog entry, through the ordinary all-or-nothing
`import_paths`; the files are read where they lie and never changed.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from core.errors import UserError
from catalog.importers import ImportReport, import_paths
from catalog.store import CatalogStore
from core.workspace import Workspace

GSM8K_FILE = "gsm8k_test.jsonl"
HH_RLHF_FILE = "hh_rlhf_harmless_base_test.jsonl.gz"
_DESCRIPTIONS = {
    GSM8K_FILE: ("GSM8K test split: grade-school math word problems; `answer` is a worked solution ending "
                 "with `#### n`, the verifiable final answer (SFT and RLVR)."),
    HH_RLHF_FILE: ("Anthropic HH-RLHF, harmless-base test split: `chosen` and `rejected` are whole "
                   "`Human:`/`Assistant:` dialogues that differ only in the last reply (DPO). Some rows hold "
                   "offensive text on purpose."),
}


def shared_data_dir() -> Path:
    """`LATHE_SHARED_DATA`, else `shared/data` beside the project folder."""
    env = os.environ.get("LATHE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"


def import_gsm8k(ws: Workspace, path: Path | None = None, table: str = "gsm8k") -> ImportReport:
    return _import(ws, path or shared_data_dir() / GSM8K_FILE, table, GSM8K_FILE)


def import_hh_rlhf(ws: Workspace, path: Path | None = None, table: str = "hh_rlhf_harmless") -> ImportReport:
    return _import(ws, path or shared_data_dir() / HH_RLHF_FILE, table, HH_RLHF_FILE)


def _import(ws: Workspace, path: Path, table: str, kind: str) -> ImportReport:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no {kind} file at {path}: set LATHE_SHARED_DATA to the folder that holds it")
    suffix = ".jsonl.gz" if path.name.endswith(".gz") else ".jsonl"
    # `import_paths` names a table after its file (links resolved): a copy under the wanted name gives
    # the table its name. The files are a few MB.
    ws.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="import-", dir=ws.cache_dir) as tmp:
        copy = Path(tmp) / f"{table}{suffix}"
        shutil.copyfile(path, copy)
        report = import_paths(ws, [copy], replace=True)  # the shared file is the source of truth
    store = CatalogStore(ws)
    entry = store.load_table(table)
    with store.transaction() as txn:
        txn.put_table(entry.model_copy(update={"source": str(path.resolve()),
                                               "description": entry.description or _DESCRIPTIONS[kind],
                                               "tags": sorted(set(entry.tags) | {"training-data"})}))
    return report

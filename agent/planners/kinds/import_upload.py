"""Uploaded files into tables: "replace table orders with the uploaded file uploads/orders.csv", "import
uploads/x.csv". Read only when a path under uploads/ is named; the import is a write, so it waits for approval.
"""
from __future__ import annotations

import re
from pathlib import PurePosixPath

from agent.planners.base import PlannerReply
from agent.planners.intent_registry import Context, Question, Reading
from agent.state import Plan, Step

_PATH = re.compile(r"""(?<![\w./])(?:\./)?uploads/[^\s,;'"`]+""", re.IGNORECASE)
_IMPORT = frozenset({"import", "load", "upload", "uploaded", "ingest", "add", "bring", "put", "replace",
                     "replacing", "replaces", "overwrite", "overwriting", "reload", "refresh"})
# the name after "table x", "into x", "into the table x"
_NAMED = re.compile(r"\b(?:tables?|into)\s+(?:(?:the\s+)?tables?\s+)?([A-Za-z_]\w*)", re.IGNORECASE)
_NOT_NAMES = frozenset({"table", "tables", "the", "a", "an", "my", "our", "with", "from", "using", "by", "it",
                        "warehouse", "database", "db", "catalog", "workspace", "lathe"})
_REPLACE = frozenset({"replace", "replacing", "replaces", "overwrite", "overwriting", "reload", "refresh"})


def _paths(text: str) -> list[str]:
    return [m.group(0).removeprefix("./").rstrip(".!?:)") for m in _PATH.finditer(text)]


def match(question: Question, context: Context) -> Reading | None:
    paths = _paths(question.text)
    words = {t.low for t in question.tokens}
    if not paths or not words & _IMPORT:
        return None
    return Reading("import_upload", 0.95, {t.index for t in question.tokens},
                   {"paths": paths, "replace": bool(words & _REPLACE)},
                   describe="an import of uploaded files", exclusive=True)


def plan(reading: Reading, context: Context) -> PlannerReply:
    from catalog.importers.discovery import table_name_for

    paths: list[str] = reading.data["paths"]
    replace: bool = reading.data["replace"]
    tables = {p: table_name_for(PurePosixPath(p)) for p in paths}  # type: ignore[arg-type]
    named = [n.lower() for n in _NAMED.findall(context.request.text) if n.lower() not in _NOT_NAMES]
    other = next((n for n in named if n not in tables.values()), None)
    if other is not None:  # the import names tables after their files: say so rather than load another name
        path = paths[0]
        return PlannerReply(text=f"A file becomes the table of its own name: {path} becomes table "
                                 f"`{tables[path]}`, not `{other}`. To load it as `{other}`, rename the file to "
                                 f"{other}{PurePosixPath(path).suffix} and upload it again.")
    existing = [t for t in tables.values() if context.catalog.table(t) is not None]
    if existing and not replace:
        t = existing[0]
        path = next(p for p, name in tables.items() if name == t)
        return PlannerReply(text=f"A table `{t}` already exists. To replace its rows with {path} (its catalog "
                                 f"metadata is kept), say \"replace table {t} with {path}\"; or rename the file.")
    names = ", ".join(f"`{t}`" for t in tables.values())
    verb = "replace" if existing else "create"
    step = Step(id="s1", tool="import_files", title=f"Import {', '.join(paths)} as {names}",
                args={"paths": paths, "replace": replace})
    summary = (f"I will {verb} table{'s' if len(tables) > 1 else ''} {names} from {', '.join(paths)}; it changes "
               "the warehouse, so it waits for approval.")
    return PlannerReply(plan=Plan(steps=[step], summary=summary))

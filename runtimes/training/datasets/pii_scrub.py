"""Replace values of the catalog's PII-tagged columns where they appear in training text, with `[tag]`.

Reads the values through the sandboxed reader; it changes only the prepared copies of the text, never the
warehouse. Person names are also matched by their parts, since text often says "Hi Maria".
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

from core.errors import UserError
from catalog.metadata import PiiTag
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader
from core.workspace import Workspace

_MAX_VALUES = 200_000  # per column: beyond this the pattern would be slower than training itself
_MIN_LEN = 3  # shorter values ("Al", "12") would replace ordinary words and numbers


@dataclass
class PiiScrubber:
    patterns: list[tuple[str, re.Pattern[str]]]  # (placeholder, values to replace)
    columns: list[str]  # the PII-tagged `table.column`s the values came from
    replaced: int = 0

    def scrub(self, text: str) -> str:
        for placeholder, pattern in self.patterns:
            text, n = pattern.subn(placeholder, text)
            self.replaced += n
        return text


def build_scrubber(ws: Workspace, tables: list[str]) -> PiiScrubber:
    """A scrubber for the PII-tagged columns of `tables` (names in the catalog)."""
    catalog = CatalogStore(ws).load()
    known = {name.lower(): t for name, t in catalog.tables.items()}
    values: dict[str, set[str]] = {}
    columns: list[str] = []
    with connect_reader(ws) as con:
        for name in tables:
            table = known.get(name.lower())
            if table is None:
                from catalog.suggestions import unknown

                raise UserError(unknown("catalog table", name, catalog.tables) + " (to scrub its PII)")
            for col in table.pii_columns:
                query = (exp.select(exp.cast(exp.column(col.name), "VARCHAR")).distinct()
                         .from_(exp.to_table(table.name)).where(exp.column(col.name).is_(exp.null()).not_())
                         .limit(_MAX_VALUES))
                found = {str(r[0]).strip() for r in con.execute(query.sql(dialect="duckdb")).fetchall()}
                if col.pii == PiiTag.name:
                    found |= {part for v in found for part in v.split() if len(part) >= _MIN_LEN}
                tag = col.pii.value if col.pii else "pii"
                values.setdefault(tag, set()).update(v for v in found if len(v) >= _MIN_LEN)
                columns.append(f"{table.name}.{col.name}")
    patterns = []
    for tag, vals in sorted(values.items()):
        if vals:
            # Longest first, so "Maria Garcia" is replaced whole before "Maria" alone.
            alternation = "|".join(re.escape(v) for v in sorted(vals, key=len, reverse=True))
            patterns.append((f"[{tag}]", re.compile(rf"(?<!\w)(?:{alternation})(?!\w)")))
    return PiiScrubber(patterns=patterns, columns=columns)

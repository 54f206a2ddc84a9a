"""Keys that link catalog tables: a column of one table that holds the key of another, read from the metadata only
(semantic entities, column descriptions that name `table.column`, a column named like another table's key).

Pure lookups over the `Catalog` model: it never reads the warehouse and never guesses a link no metadata states.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from catalog.metadata import Catalog

_REFERENCE = re.compile(r"\b([A-Za-z_][\w]*)\.([A-Za-z_][\w]*)\b")


@dataclass(frozen=True)
class TableLink:
    """`child.column` holds values of `parent.key` (many child rows to one parent row)."""
    child: str
    column: str
    parent: str
    key: str
    source: str  # where the metadata says so, in words


def table_links(catalog: Catalog) -> list[TableLink]:
    """Every link the metadata states, one per (child, column, parent), in a stable order."""
    found: dict[tuple[str, str, str], TableLink] = {}

    def add(child: str, column: str, parent: str, key: str, source: str) -> None:
        c, p = catalog.table(child), catalog.table(parent)
        if c is None or p is None or c.name == p.name or c.column(column) is None or p.column(key) is None:
            return
        found.setdefault((c.name, c.column(column).name, p.name),
                         TableLink(c.name, c.column(column).name, p.name, p.column(key).name, source))

    # A semantic entity that is primary in one model and foreign in another.
    models = catalog.semantic.semantic_models
    primaries = {e.name: (m.table, e.column_expr) for m in models for e in m.entities if e.type.value == "primary"}
    for m in models:
        for e in m.entities:
            if e.type.value == "foreign" and e.name in primaries:
                add(m.table, e.column_expr, *primaries[e.name], f"semantic entity `{e.name}`")
    for table in catalog.tables.values():
        for col in table.columns:
            # A description that names the column it holds: "The ticket answered (support_tickets.ticket_id)."
            for parent, key in _REFERENCE.findall(col.description):
                add(table.name, col.name, parent, key, f"the description of `{table.name}.{col.name}`")
            # A column named like another table's one-column primary key.
            for other in catalog.tables.values():
                if other.primary_key == [col.name] and other.name != table.name \
                        and table.primary_key != [col.name]:
                    add(table.name, col.name, other.name, col.name, f"`{other.name}`'s key `{col.name}`")
    return sorted(found.values(), key=lambda x: (x.child, x.column, x.parent))

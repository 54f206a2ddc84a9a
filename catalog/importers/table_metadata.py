"""Merging a table's catalog entry with what an import brings: new metadata, or the warehouse's new columns.

Analyst-written metadata (descriptions, PII tags, owners, synonyms, tags) survives a re-import for every
column that still exists; pure functions over `Table` models, they never read or write files.
"""
from __future__ import annotations

from catalog.metadata import Column, Table

# What a person wrote about a column, as opposed to what the data say (type, stats, samples).
_ANALYST_COLUMN_FIELDS = ("description", "pii", "tags", "synonyms")


def merge_metadata(base: Table | None, update: Table) -> Table:
    """`base` with every field that `update` sets explicitly; columns are matched by name, new ones appended."""
    if base is None:
        return update
    fields = {k: getattr(update, k) for k in update.model_fields_set - {"name", "columns"}}
    merged = base.model_copy(update=fields)
    if "columns" in update.model_fields_set:
        columns = list(base.columns)
        index = {c.name.lower(): i for i, c in enumerate(columns)}
        for uc in update.columns:
            i = index.get(uc.name.lower())
            if i is None:
                index[uc.name.lower()] = len(columns)
                columns.append(uc)
            else:
                columns[i] = columns[i].model_copy(update={k: getattr(uc, k) for k in uc.model_fields_set - {"name"}})
        merged = merged.model_copy(update={"columns": columns})
    return merged


def fit_to_warehouse(table: Table, columns: list[tuple[str, str]], *, data_replaced: bool) -> tuple[Table, list[str]]:
    """The entry with exactly the warehouse's columns, in its order and with its types.

    Returns the entry and the names of columns whose analyst metadata had to go because the column is gone.
    A column's stats and sample values are dropped when the data were replaced: they described the old data.
    """
    old = {c.name.lower(): c for c in table.columns}
    fitted: list[Column] = []
    for name, dtype in columns:
        c = old.pop(name.lower(), None)
        if c is None:
            fitted.append(Column(name=name, type=dtype))
            continue
        update: dict[str, object] = {"name": name, "type": dtype}
        if data_replaced:
            update |= {"stats": None, "sample_values": []}
        fitted.append(c.model_copy(update=update))
    lost = [c.name for c in old.values() if any(getattr(c, f) for f in _ANALYST_COLUMN_FIELDS)]
    names = {n.lower() for n, _ in columns}
    update_t: dict[str, object] = {"columns": fitted}
    if table.primary_key and not all(k.lower() in names for k in table.primary_key):
        update_t["primary_key"] = []
    return table.model_copy(update=update_t), lost
